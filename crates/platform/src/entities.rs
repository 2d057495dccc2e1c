//! Actions and packages as OpenWhisk stores them: the PUT body, validation of limits
//! (with OpenWhisk's 400 texts), the merge of an update into the stored entity (patch
//! version bump, annotations `exec` and `provide-api-key`), and the in-memory store.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::config::{LimitsConfig, valid_name};
use super::runtime::Kind;

/// A `{"key", "value"}` pair (parameters and annotations).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct KeyVal {
    pub key: String,
    pub value: Value,
}

/// Action limits as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Limits {
    pub timeout: u64,
    pub memory: u64,
    pub logs: u64,
    pub concurrency: u64,
}

/// The code of an action.
#[derive(Clone, Debug, Serialize)]
pub struct Exec {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub binary: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main: Option<String>,
    #[serde(skip)]
    pub runtime: Kind,
}

/// A stored action.
#[derive(Clone, Debug, Serialize)]
pub struct Action {
    /// `guest` or `guest/pkg`.
    pub namespace: String,
    pub name: String,
    pub version: String,
    pub exec: Exec,
    pub annotations: Vec<KeyVal>,
    pub parameters: Vec<KeyVal>,
    pub limits: Limits,
    pub publish: bool,
    pub updated: u64,
    /// Unique revision: warm containers serve only the revision they were initialised with.
    #[serde(skip)]
    pub rev: u64,
    /// Parameters of the enclosing package (merged under the action's).
    #[serde(skip)]
    pub package_params: Vec<KeyVal>,
}

impl Action {
    /// `ns/name` or `ns/pkg/name`.
    pub fn path(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The package-qualified name (`pkg/name` or `name`).
    pub fn qualified_name(&self) -> String {
        match self.namespace.split_once('/') {
            Some((_, pkg)) => format!("{pkg}/{}", self.name),
            None => self.name.clone(),
        }
    }

    /// JSON for GET, without the code when `code` is false.
    pub fn to_json(&self, code: bool) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if !code && let Some(e) = v.get_mut("exec").and_then(Value::as_object_mut) {
            e.remove("code");
        }
        v
    }

    /// The summary of a list.
    pub fn summary(&self) -> Value {
        serde_json::json!({
            "namespace": self.namespace, "name": self.name, "version": self.version,
            "publish": self.publish, "annotations": self.annotations, "limits": self.limits,
            "exec": {"binary": self.exec.binary}, "updated": self.updated,
        })
    }
}

/// A stored package.
#[derive(Clone, Debug, Serialize)]
pub struct Package {
    pub namespace: String,
    pub name: String,
    pub version: String,
    pub publish: bool,
    pub annotations: Vec<KeyVal>,
    pub parameters: Vec<KeyVal>,
    pub binding: Map<String, Value>,
    pub updated: u64,
}

/// The body of an action PUT (every field optional on update).
#[derive(Debug, Default, Deserialize)]
pub struct ActionPut {
    pub exec: Option<ExecPut>,
    pub parameters: Option<Vec<KeyVal>>,
    pub annotations: Option<Vec<KeyVal>>,
    pub limits: Option<LimitsPut>,
    pub publish: Option<bool>,
    pub version: Option<Value>,
    pub namespace: Option<Value>,
    pub name: Option<Value>,
}

/// `exec` of a PUT.
#[derive(Debug, Deserialize)]
pub struct ExecPut {
    pub kind: String,
    pub code: Option<String>,
    pub main: Option<String>,
    pub binary: Option<bool>,
    pub image: Option<String>,
    pub components: Option<Value>,
}

/// `limits` of a PUT.
#[derive(Debug, Default, Deserialize)]
pub struct LimitsPut {
    pub timeout: Option<Value>,
    pub memory: Option<Value>,
    pub logs: Option<Value>,
    pub concurrency: Option<Value>,
}

/// The body of a package PUT.
#[derive(Debug, Default, Deserialize)]
pub struct PackagePut {
    pub parameters: Option<Vec<KeyVal>>,
    pub annotations: Option<Vec<KeyVal>>,
    pub publish: Option<bool>,
    pub binding: Option<Value>,
}

/// Why a PUT is refused (400 with this text).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EntityError {
    #[error("{0}")]
    Invalid(String),
}

fn invalid<T>(m: impl Into<String>) -> Result<T, EntityError> {
    Err(EntityError::Invalid(m.into()))
}

fn whole(v: &Value, what: &str) -> Result<u64, EntityError> {
    match v.as_u64() {
        Some(n) => Ok(n),
        None if v.as_f64().is_some_and(|f| f < 0.0) => Ok(0),
        None => invalid(format!("{what} limit must be whole number")),
    }
}

/// Checks limits against the configured ranges and fills defaults from `base`.
pub(crate) fn limits(
    put: Option<&LimitsPut>,
    base: &Limits,
    cfg: &LimitsConfig,
) -> Result<Limits, EntityError> {
    let mut l = base.clone();
    let Some(p) = put else { return Ok(l) };
    if let Some(v) = &p.timeout {
        let t = whole(v, "time")?;
        if t < cfg.timeout_min {
            return invalid(format!(
                "duration {t} milliseconds below allowed threshold of {} milliseconds",
                cfg.timeout_min
            ));
        }
        if t > cfg.timeout_max {
            return invalid(format!(
                "duration {t} milliseconds exceeds allowed threshold of {} milliseconds",
                cfg.timeout_max
            ));
        }
        l.timeout = t;
    }
    if let Some(v) = &p.memory {
        let m = whole(v, "memory")?;
        if m < cfg.memory_min {
            return invalid(format!(
                "memory size {m} MB below allowed threshold of {} MB",
                cfg.memory_min
            ));
        }
        if m > cfg.memory_max {
            return invalid(format!(
                "memory size {m} MB exceeds allowed threshold of {} MB",
                cfg.memory_max
            ));
        }
        l.memory = m;
    }
    if let Some(v) = &p.logs {
        let m = whole(v, "log")?;
        if m < cfg.logs_min {
            return invalid(format!(
                "log size {m} MB below allowed threshold of {} MB",
                cfg.logs_min
            ));
        }
        if m > cfg.logs_max {
            return invalid(format!(
                "log size {m} MB exceeds allowed threshold of {} MB",
                cfg.logs_max
            ));
        }
        l.logs = m;
    }
    if let Some(v) = &p.concurrency {
        let c = whole(v, "concurrency")?;
        if c < 1 {
            return invalid(format!("concurrency {c} below allowed threshold of 1"));
        }
        if c > cfg.concurrency_max {
            return invalid(format!(
                "concurrency {c} exceeds allowed threshold of {}",
                cfg.concurrency_max
            ));
        }
        l.concurrency = c;
    }
    Ok(l)
}

/// Builds the stored exec from a PUT's.
fn exec(e: &ExecPut) -> Result<Exec, EntityError> {
    let Some(runtime) = Kind::parse(&e.kind) else {
        return match e.kind.as_str() {
            "blackbox" => invalid(
                "kind 'blackbox' needs the Docker backend, this platform runs the process backend",
            ),
            "sequence" => invalid("kind 'sequence' is not supported by this platform"),
            k => invalid(format!("kind '{k}' not in Set({})", Kind::NAMES.join(", "))),
        };
    };
    let Some(code) = &e.code else {
        return invalid("exec malformed: code is missing");
    };
    let binary = e
        .binary
        .unwrap_or(runtime == Kind::Native || looks_binary(code));
    if runtime == Kind::Native && !binary && !code.starts_with("#!") {
        return invalid("native actions need base64 code (binary) or a script starting with #!");
    }
    Ok(Exec {
        kind: runtime.canonical(&e.kind).to_string(),
        code: Some(code.clone()),
        binary,
        main: e.main.clone().filter(|m| !m.is_empty()),
        runtime,
    })
}

/// Heuristic of the `wsk` CLI: base64 zip archives start with `UEsDB`.
fn looks_binary(code: &str) -> bool {
    code.starts_with("UEsDB")
}

fn merge_annotations(base: &mut Vec<KeyVal>, new: &[KeyVal]) {
    for kv in new {
        match base.iter_mut().find(|b| b.key == kv.key) {
            Some(b) => b.value = kv.value.clone(),
            None => base.push(kv.clone()),
        }
    }
}

fn bump(version: &str) -> String {
    let mut p: Vec<u64> = version.split('.').filter_map(|s| s.parse().ok()).collect();
    if p.len() != 3 {
        p = vec![0, 0, 0];
    }
    format!("{}.{}.{}", p[0], p[1], p[2] + 1)
}

/// Checks parameters' size.
fn check_params(p: &[KeyVal], max: usize) -> Result<(), EntityError> {
    let n = serde_json::to_vec(p).map(|v| v.len()).unwrap_or(0);
    if n > max {
        return invalid(format!(
            "The parameters are larger than allowed: {n} > {max} bytes."
        ));
    }
    Ok(())
}

static REV: AtomicU64 = AtomicU64::new(1);

/// Creates the stored action from a PUT body, or merges it into `old` (update).
pub(crate) fn build_action(
    namespace: &str,
    name: &str,
    put: ActionPut,
    old: Option<&Action>,
    cfg: &LimitsConfig,
    now_ms: u64,
) -> Result<Action, EntityError> {
    let default_limits = Limits {
        timeout: cfg.timeout_default,
        memory: cfg.memory_default,
        logs: cfg.logs_default,
        concurrency: 1,
    };
    let base_limits = old.map(|o| o.limits.clone()).unwrap_or(default_limits);
    let limits = limits(put.limits.as_ref(), &base_limits, cfg)?;
    let exec = match (&put.exec, old) {
        (Some(e), _) => exec(e)?,
        (None, Some(o)) => o.exec.clone(),
        (None, None) => return invalid("exec undefined"),
    };
    let parameters = match (put.parameters, old) {
        (Some(p), _) => p,
        (None, Some(o)) => o.parameters.clone(),
        (None, None) => vec![],
    };
    check_params(&parameters, cfg.payload_max)?;
    let mut annotations = old.map(|o| o.annotations.clone()).unwrap_or_default();
    if let Some(a) = &put.annotations {
        merge_annotations(&mut annotations, a);
    }
    if !annotations.iter().any(|a| a.key == "provide-api-key") {
        annotations.push(KeyVal {
            key: "provide-api-key".into(),
            value: Value::Bool(false),
        });
    }
    merge_annotations(
        &mut annotations,
        &[KeyVal {
            key: "exec".into(),
            value: Value::String(exec.kind.clone()),
        }],
    );
    Ok(Action {
        namespace: namespace.to_string(),
        name: name.to_string(),
        version: old
            .map(|o| bump(&o.version))
            .unwrap_or_else(|| "0.0.1".into()),
        exec,
        annotations,
        parameters,
        limits,
        publish: put.publish.or(old.map(|o| o.publish)).unwrap_or(false),
        updated: now_ms,
        rev: REV.fetch_add(1, Ordering::Relaxed),
        package_params: vec![],
    })
}

/// Creates or merges a package.
pub(crate) fn build_package(
    namespace: &str,
    name: &str,
    put: PackagePut,
    old: Option<&Package>,
    cfg: &LimitsConfig,
    now_ms: u64,
) -> Result<Package, EntityError> {
    if put
        .binding
        .as_ref()
        .is_some_and(|b| b.as_object().is_some_and(|o| !o.is_empty()))
    {
        return invalid("package bindings are not supported by this platform");
    }
    let parameters = put
        .parameters
        .or(old.map(|o| o.parameters.clone()))
        .unwrap_or_default();
    check_params(&parameters, cfg.payload_max)?;
    let mut annotations = old.map(|o| o.annotations.clone()).unwrap_or_default();
    if let Some(a) = &put.annotations {
        merge_annotations(&mut annotations, a);
    }
    Ok(Package {
        namespace: namespace.to_string(),
        name: name.to_string(),
        version: old
            .map(|o| bump(&o.version))
            .unwrap_or_else(|| "0.0.1".into()),
        publish: put.publish.or(old.map(|o| o.publish)).unwrap_or(false),
        annotations,
        parameters,
        binding: Map::new(),
        updated: now_ms,
    })
}

/// Splits `name` or `pkg/name` and checks each part.
pub(crate) fn split_name(s: &str) -> Option<(Option<&str>, &str)> {
    match s.split_once('/') {
        Some((p, n)) if valid_name(p) && valid_name(n) => Some((Some(p), n)),
        None if valid_name(s) => Some((None, s)),
        _ => None,
    }
}

/// In-memory store of actions and packages, keyed by path (`ns/name`, `ns/pkg/name`).
#[derive(Default)]
pub struct Entities {
    actions: RwLock<HashMap<String, Arc<Action>>>,
    packages: RwLock<HashMap<String, Arc<Package>>>,
}

/// Why a store operation fails.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StoreError {
    #[error("resource already exists")]
    Exists,
    #[error("The requested resource does not exist.")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    #[error("Package not empty (contains {0} {1}). Set force param or delete package contents.")]
    NotEmpty(usize, &'static str),
}

impl From<EntityError> for StoreError {
    fn from(e: EntityError) -> Self {
        match e {
            EntityError::Invalid(m) => StoreError::Invalid(m),
        }
    }
}

impl Entities {
    /// The action at `ns` + `pkg/name`, with its package's parameters attached.
    pub fn action(&self, ns: &str, qname: &str) -> Option<Arc<Action>> {
        let key = format!("{ns}/{qname}");
        self.actions.read().ok()?.get(&key).cloned()
    }

    /// Creates or (with `overwrite`) updates an action.
    pub fn put_action(
        &self,
        ns: &str,
        qname: &str,
        put: ActionPut,
        overwrite: bool,
        cfg: &LimitsConfig,
    ) -> Result<Arc<Action>, StoreError> {
        let (pkg, name) = split_name(qname).ok_or(StoreError::NotFound)?;
        let entity_ns = match pkg {
            Some(p) => format!("{ns}/{p}"),
            None => ns.to_string(),
        };
        let package_params = match pkg {
            Some(p) => self
                .package(ns, p)
                .ok_or(StoreError::NotFound)?
                .parameters
                .clone(),
            None => vec![],
        };
        let key = format!("{ns}/{qname}");
        let mut map = self.actions.write().map_err(|_| StoreError::NotFound)?;
        let old = map.get(&key);
        if old.is_some() && !overwrite {
            return Err(StoreError::Exists);
        }
        let mut a = build_action(
            &entity_ns,
            name,
            put,
            old.map(|a| &**a),
            cfg,
            super::ids::now_ms(),
        )?;
        a.package_params = package_params;
        let a = Arc::new(a);
        map.insert(key, a.clone());
        Ok(a)
    }

    /// Deletes an action, returning it.
    pub fn delete_action(&self, ns: &str, qname: &str) -> Option<Arc<Action>> {
        let key = format!("{ns}/{qname}");
        self.actions.write().ok()?.remove(&key)
    }

    /// Actions of namespace `ns` (packages included, or only package `pkg`), newest first.
    pub fn list_actions(&self, ns: &str, pkg: Option<&str>) -> Vec<Arc<Action>> {
        let Ok(map) = self.actions.read() else {
            return vec![];
        };
        let mut v: Vec<Arc<Action>> = map
            .values()
            .filter(|a| match pkg {
                Some(p) => a.namespace.split_once('/') == Some((ns, p)),
                None => {
                    a.namespace == ns || a.namespace.split_once('/').is_some_and(|(n, _)| n == ns)
                }
            })
            .cloned()
            .collect();
        v.sort_by(|a, b| b.updated.cmp(&a.updated).then(a.name.cmp(&b.name)));
        v
    }

    /// The package `ns/name`.
    pub fn package(&self, ns: &str, name: &str) -> Option<Arc<Package>> {
        self.packages
            .read()
            .ok()?
            .get(&format!("{ns}/{name}"))
            .cloned()
    }

    /// Creates or updates a package (its actions see the new parameters).
    pub fn put_package(
        &self,
        ns: &str,
        name: &str,
        put: PackagePut,
        overwrite: bool,
        cfg: &LimitsConfig,
    ) -> Result<Arc<Package>, StoreError> {
        if !valid_name(name) {
            return Err(StoreError::NotFound);
        }
        let key = format!("{ns}/{name}");
        let p = {
            let mut map = self.packages.write().map_err(|_| StoreError::NotFound)?;
            let old = map.get(&key);
            if old.is_some() && !overwrite {
                return Err(StoreError::Exists);
            }
            let p = Arc::new(build_package(
                ns,
                name,
                put,
                old.map(|p| &**p),
                cfg,
                super::ids::now_ms(),
            )?);
            map.insert(key.clone(), p.clone());
            p
        };
        if let Ok(mut acts) = self.actions.write() {
            let prefix = format!("{key}/");
            for (k, a) in acts.iter_mut() {
                if k.starts_with(&prefix) {
                    let mut n = (**a).clone();
                    n.package_params = p.parameters.clone();
                    *a = Arc::new(n);
                }
            }
        }
        Ok(p)
    }

    /// Deletes an empty package.
    pub fn delete_package(&self, ns: &str, name: &str) -> Result<Arc<Package>, StoreError> {
        let n = self.list_actions(ns, Some(name)).len();
        if n > 0 {
            return Err(StoreError::NotEmpty(
                n,
                if n == 1 { "entity" } else { "entities" },
            ));
        }
        self.packages
            .write()
            .map_err(|_| StoreError::NotFound)?
            .remove(&format!("{ns}/{name}"))
            .ok_or(StoreError::NotFound)
    }

    /// Packages of `ns`, newest first.
    pub fn list_packages(&self, ns: &str) -> Vec<Arc<Package>> {
        let Ok(map) = self.packages.read() else {
            return vec![];
        };
        let mut v: Vec<Arc<Package>> = map
            .values()
            .filter(|p| p.namespace == ns)
            .cloned()
            .collect();
        v.sort_by(|a, b| b.updated.cmp(&a.updated).then(a.name.cmp(&b.name)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(v: Value) -> ActionPut {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn create_update_and_annotations() {
        let cfg = LimitsConfig::default();
        let a = build_action(
            "guest",
            "hello",
            put(serde_json::json!({"exec": {"kind": "python:3", "code": "def main(a): return a"}})),
            None,
            &cfg,
            1,
        )
        .unwrap();
        assert_eq!(a.version, "0.0.1");
        assert_eq!(
            a.limits,
            Limits {
                timeout: 60000,
                memory: 256,
                logs: 10,
                concurrency: 1
            }
        );
        assert_eq!(
            a.annotations[0],
            KeyVal {
                key: "provide-api-key".into(),
                value: false.into()
            }
        );
        assert_eq!(a.annotations[1].key, "exec");
        let b = build_action(
            "guest",
            "hello",
            put(serde_json::json!({"limits": {"memory": 128}, "annotations": [{"key": "provide-api-key", "value": true}]})),
            Some(&a),
            &cfg,
            2,
        )
        .unwrap();
        assert_eq!(b.version, "0.0.2");
        assert_eq!(b.limits.memory, 128);
        assert_eq!(b.limits.timeout, 60000);
        assert_eq!(b.annotations.len(), 2);
        assert_eq!(b.annotations[0].value, Value::Bool(true));
        assert_ne!(a.rev, b.rev);
    }

    #[test]
    fn limit_texts() {
        let cfg = LimitsConfig::default();
        let base = Limits {
            timeout: 60000,
            memory: 256,
            logs: 10,
            concurrency: 1,
        };
        let l = |v: Value| {
            limits(Some(&serde_json::from_value(v).unwrap()), &base, &cfg)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            l(serde_json::json!({"memory": 1024})),
            "memory size 1024 MB exceeds allowed threshold of 512 MB"
        );
        assert_eq!(
            l(serde_json::json!({"memory": 64})),
            "memory size 64 MB below allowed threshold of 128 MB"
        );
        assert_eq!(
            l(serde_json::json!({"timeout": 50})),
            "duration 50 milliseconds below allowed threshold of 100 milliseconds"
        );
        assert_eq!(
            l(serde_json::json!({"logs": 11})),
            "log size 11 MB exceeds allowed threshold of 10 MB"
        );
        assert_eq!(
            l(serde_json::json!({"concurrency": 2})),
            "concurrency 2 exceeds allowed threshold of 1"
        );
    }

    #[test]
    fn names_and_kinds() {
        assert_eq!(split_name("a/b"), Some((Some("a"), "b")));
        assert_eq!(split_name("a"), Some((None, "a")));
        assert_eq!(split_name("a/b/c"), None);
        let e = exec(&ExecPut {
            kind: "cobol:1".into(),
            code: Some("x".into()),
            main: None,
            binary: None,
            image: None,
            components: None,
        });
        assert!(
            e.unwrap_err()
                .to_string()
                .starts_with("kind 'cobol:1' not in Set(")
        );
    }
}
