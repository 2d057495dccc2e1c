//! Activation records shaped exactly as OpenWhisk's, and the bounded store that keeps
//! them (oldest dropped first), optionally appended to a JSON-lines file and reloaded at
//! start so a restart keeps them (the file is compacted to the kept records whenever it
//! holds twice as many lines).
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::entities::KeyVal;

/// `response` of a record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Response {
    pub result: Value,
    pub size: usize,
    pub status: String,
    pub success: bool,
}

/// The four outcomes and their status codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Success,
    ApplicationError,
    DeveloperError,
    InternalError,
}

impl Status {
    /// The `status` string.
    pub fn text(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::ApplicationError => "application error",
            Status::DeveloperError => "action developer error",
            Status::InternalError => "whisk internal error",
        }
    }

    /// The numeric `statusCode` of list summaries.
    pub fn code(self) -> u8 {
        self as u8
    }

    fn from_text(s: &str) -> Status {
        match s {
            "success" => Status::Success,
            "application error" => Status::ApplicationError,
            "action developer error" => Status::DeveloperError,
            _ => Status::InternalError,
        }
    }
}

impl Response {
    /// A response with `result`.
    pub fn new(status: Status, result: Value) -> Response {
        let size = serde_json::to_vec(&result).map(|v| v.len()).unwrap_or(0);
        Response {
            result,
            size,
            status: status.text().into(),
            success: status == Status::Success,
        }
    }

    /// A failure with `{"error": msg}`.
    pub fn error(status: Status, msg: &str) -> Response {
        Response::new(status, serde_json::json!({ "error": msg }))
    }

    /// The outcome.
    pub fn status(&self) -> Status {
        Status::from_text(&self.status)
    }
}

/// An activation record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Activation {
    pub namespace: String,
    pub name: String,
    pub version: String,
    pub subject: String,
    #[serde(rename = "activationId")]
    pub activation_id: String,
    pub start: u64,
    pub end: u64,
    pub duration: u64,
    pub response: Response,
    pub logs: Vec<String>,
    pub publish: bool,
    pub annotations: Vec<KeyVal>,
}

impl Activation {
    /// The list summary (no response, no logs, numeric `statusCode`).
    pub fn summary(&self) -> Value {
        serde_json::json!({
            "namespace": self.namespace, "name": self.name, "version": self.version,
            "subject": self.subject, "activationId": self.activation_id,
            "start": self.start, "end": self.end, "duration": self.duration,
            "publish": self.publish, "annotations": self.annotations,
            "statusCode": self.response.status().code(),
        })
    }

    /// Value of annotation `key`.
    pub fn annotation(&self, key: &str) -> Option<&Value> {
        self.annotations
            .iter()
            .find(|a| a.key == key)
            .map(|a| &a.value)
    }

    /// `pkg/name` or `name` of the action (from the `path` annotation).
    fn qualified_name(&self) -> String {
        match self.namespace.split_once('/') {
            Some((_, pkg)) => format!("{pkg}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// Filters of a list.
#[derive(Debug, Default)]
pub struct ListQuery<'a> {
    pub name: Option<&'a str>,
    pub since: Option<u64>,
    pub upto: Option<u64>,
    pub skip: usize,
    pub limit: usize,
}

struct Inner {
    by_id: HashMap<String, Arc<Activation>>,
    order: VecDeque<Arc<Activation>>,
}

/// The bounded store.
pub struct ActivationStore {
    inner: Mutex<Inner>,
    max: usize,
    file: Option<Mutex<Persist>>,
}

/// The persistence file.
struct Persist {
    path: PathBuf,
    w: std::io::BufWriter<std::fs::File>,
    lines: usize,
}

fn write_all(path: &Path, recs: &VecDeque<Arc<Activation>>) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    for a in recs {
        serde_json::to_writer(&mut w, &**a)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    std::fs::rename(&tmp, path)
}

fn open_append(path: &Path) -> std::io::Result<std::io::BufWriter<std::fs::File>> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    Ok(std::io::BufWriter::new(f))
}

/// Errors of the persistence file.
#[derive(Debug, thiserror::Error)]
#[error("activation store {path}: {source}")]
pub struct StoreFileError {
    path: PathBuf,
    source: std::io::Error,
}

impl ActivationStore {
    /// A store of at most `max` records, persisted to `persist` when given.
    pub fn open(max: usize, persist: Option<&Path>) -> Result<ActivationStore, StoreFileError> {
        let mut inner = Inner {
            by_id: HashMap::new(),
            order: VecDeque::new(),
        };
        let mut file = None;
        if let Some(p) = persist {
            let err = |source| StoreFileError {
                path: p.to_path_buf(),
                source,
            };
            if let Ok(text) = std::fs::read_to_string(p) {
                for line in text.lines() {
                    if let Ok(a) = serde_json::from_str::<Activation>(line) {
                        let a = Arc::new(a);
                        inner.by_id.insert(a.activation_id.clone(), a.clone());
                        inner.order.push_back(a);
                    }
                }
                while inner.order.len() > max {
                    if let Some(old) = inner.order.pop_front() {
                        inner.by_id.remove(&old.activation_id);
                    }
                }
                // Rewrite so the file stays bounded too.
                write_all(p, &inner.order).map_err(err)?;
            }
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d).map_err(err)?;
            }
            file = Some(Mutex::new(Persist {
                path: p.to_path_buf(),
                w: open_append(p).map_err(err)?,
                lines: inner.order.len(),
            }));
        }
        Ok(ActivationStore {
            inner: Mutex::new(inner),
            max: max.max(1),
            file,
        })
    }

    /// Stores a record (dropping the oldest beyond the bound).
    pub fn insert(&self, a: Arc<Activation>) {
        // Lock order: file, then records; the file lock spans the whole insert so that
        // a compaction sees every record written before it.
        let mut file = self
            .file
            .as_ref()
            .map(|f| f.lock().unwrap_or_else(|e| e.into_inner()));
        if let Some(f) = file.as_mut() {
            let ok = serde_json::to_writer(&mut f.w, &*a).is_ok()
                && f.w.write_all(b"\n").is_ok()
                && f.w.flush().is_ok();
            if !ok {
                tracing::warn!("could not persist activation {}", a.activation_id);
            }
            f.lines += 1;
        }
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.by_id.insert(a.activation_id.clone(), a.clone());
        g.order.push_back(a);
        while g.order.len() > self.max {
            if let Some(old) = g.order.pop_front() {
                g.by_id.remove(&old.activation_id);
            }
        }
        if let Some(f) = file.as_mut()
            && f.lines > 2 * self.max
        {
            let r = write_all(&f.path, &g.order).and_then(|()| open_append(&f.path));
            match r {
                Ok(w) => {
                    f.w = w;
                    f.lines = g.order.len();
                }
                Err(e) => tracing::warn!("compacting {}: {e}", f.path.display()),
            }
        }
    }

    /// The record `id` if it belongs to namespace `ns`.
    pub fn get(&self, ns: &str, id: &str) -> Option<Arc<Activation>> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.by_id
            .get(id)
            .filter(|a| {
                a.namespace == ns || a.namespace.split_once('/').is_some_and(|(n, _)| n == ns)
            })
            .cloned()
    }

    /// Records of `ns`, newest first, filtered.
    pub fn list(&self, ns: &str, q: &ListQuery<'_>) -> Vec<Arc<Activation>> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.order
            .iter()
            .rev()
            .filter(|a| {
                a.namespace == ns || a.namespace.split_once('/').is_some_and(|(n, _)| n == ns)
            })
            .filter(|a| {
                q.name
                    .is_none_or(|n| a.qualified_name() == n || a.name == n)
            })
            .filter(|a| q.since.is_none_or(|s| a.start >= s))
            .filter(|a| q.upto.is_none_or(|u| a.start <= u))
            .skip(q.skip)
            .take(q.limit)
            .cloned()
            .collect()
    }

    /// Number of records kept.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .order
            .len()
    }

    /// Is the store empty?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, start: u64, name: &str) -> Arc<Activation> {
        Arc::new(Activation {
            namespace: "guest".into(),
            name: name.into(),
            version: "0.0.1".into(),
            subject: "guest".into(),
            activation_id: id.into(),
            start,
            end: start + 1,
            duration: 1,
            response: Response::new(Status::Success, serde_json::json!({})),
            logs: vec![],
            publish: false,
            annotations: vec![],
        })
    }

    #[test]
    fn bounded_filtered_and_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jsonl");
        let s = ActivationStore::open(2, Some(&p)).unwrap();
        s.insert(rec("a", 1, "x"));
        s.insert(rec("b", 2, "y"));
        s.insert(rec("c", 3, "x"));
        assert!(s.get("guest", "a").is_none());
        assert!(s.get("other", "b").is_none());
        let q = ListQuery {
            name: Some("x"),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(s.list("guest", &q).len(), 1);
        let q = ListQuery {
            since: Some(3),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(s.list("guest", &q)[0].activation_id, "c");
        s.insert(rec("d", 4, "x"));
        s.insert(rec("e", 5, "x"));
        let lines = std::fs::read_to_string(&p).unwrap().lines().count();
        assert!(lines <= 4, "the file is compacted: {lines} lines");
        drop(s);
        let s = ActivationStore::open(2, Some(&p)).unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.get("guest", "e").is_some() && s.get("guest", "d").is_some());
        let r = Response::error(Status::DeveloperError, "boom");
        assert_eq!(r.status, "action developer error");
        assert!(!r.success);
        assert_eq!(r.size, r#"{"error":"boom"}"#.len());
    }
}
