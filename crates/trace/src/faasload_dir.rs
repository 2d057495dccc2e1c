//! The original FaaSLoad trace directory <-> the model: one file per user and function
//! (`USER-ACTION-MEMORY-DURATION-AVGIAT`, lines `WAIT<TAB>INPUT<TAB>name:value...`), each
//! an explicit stream; actions resolved through a [`FunctionCatalog`].
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::Map;

use super::catalog::{DIR_CATALOG, FunctionCatalog};
use super::error::{Errors, TraceError};
use super::model::{Function, Trace, User};
use super::schedule::{Explicit, Parts, Stream, StreamKind};
use super::seed::DEFAULT_SEED;
use super::tsv::{TsvFile, TsvName, format_value, format_wait, parse_value, parse_wait_ns};

/// Whether a directory entry is a trace file (not hidden, not a catalog or a note).
fn is_trace_file(name: &str) -> bool {
    !(name.starts_with('.')
        || name == DIR_CATALOG
        || [".yaml", ".yml", ".md", ".txt"]
            .iter()
            .any(|e| name.ends_with(e)))
}

/// Reads an original FaaSLoad trace directory. Every file must be well-formed and name
/// an action the catalog knows; all defects are reported together.
pub fn load_faasload_dir(
    dir: impl AsRef<Path>,
    catalog: &FunctionCatalog,
) -> Result<Trace, TraceError> {
    Ok(read_faasload_dir(dir, catalog)?.into_trace())
}

/// Reads an original FaaSLoad trace directory into its parts (streams keep their file
/// names as labels, for a lossless write-back).
pub fn read_faasload_dir(
    dir: impl AsRef<Path>,
    catalog: &FunctionCatalog,
) -> Result<Parts, TraceError> {
    let dir = dir.as_ref();
    let label = dir.display().to_string();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| TraceError::file(&label, format!("cannot list: {e}")))?;
    let mut paths = Vec::new();
    for e in entries {
        let e = e.map_err(|e| TraceError::file(&label, format!("cannot list: {e}")))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if is_trace_file(&name) {
            paths.push(e.path());
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(TraceError::file(
            &label,
            "no trace files (named USER-ACTION-MEMORY-DURATION-AVGIAT)",
        ));
    }

    let mut errors = Errors::default();
    let mut files = Vec::new();
    for p in &paths {
        if p.is_dir() {
            errors.push(TraceError::file(
                p.display().to_string(),
                "a directory, not a trace file",
            ));
            continue;
        }
        match TsvFile::read(p) {
            Ok(f) => files.push((p, f)),
            Err(e) => {
                for x in match e {
                    TraceError::Many(v) => v,
                    e => vec![e],
                } {
                    errors.push(x);
                }
            }
        }
    }

    let mut users: Vec<User> = Vec::new();
    let mut keys: Vec<(String, u32)> = Vec::new();
    let mut streams = Vec::new();
    let mut per_pair: HashMap<(u32, u32), u32> = HashMap::new();
    for (path, f) in &files {
        let plabel = path.display().to_string();
        if catalog.get(&f.name.action).is_none() {
            let from = if catalog.origin.is_empty() {
                "no function catalog found".to_string()
            } else {
                format!("not in the function catalog {}", catalog.origin)
            };
            errors.push(TraceError::file(
                &plabel,
                format!("unknown action '{}' ({from})", f.name.action),
            ));
            continue;
        }
        let user = match users.iter().position(|u| u.name == f.name.user) {
            Some(i) => i as u32,
            None => {
                users.push(User {
                    name: f.name.user.clone(),
                    namespace: f.name.user.clone(),
                    auth: None,
                    api_host: None,
                    create: false,
                });
                (users.len() - 1) as u32
            }
        };
        let key = (f.name.action.clone(), f.name.memory_mb());
        let function = match keys.iter().position(|k| *k == key) {
            Some(i) => i as u32,
            None => {
                keys.push(key);
                (keys.len() - 1) as u32
            }
        };
        let mut at: u64 = 0;
        let mut list = Vec::with_capacity(f.lines.len());
        for (n, l) in f.lines.iter().enumerate() {
            let wait = parse_wait_ns(&l.wait).unwrap_or(0);
            let Some(t) = at.checked_add(wait) else {
                errors.push(TraceError::at(
                    &plabel,
                    n + 1,
                    1,
                    "the waits add up past the longest trace span",
                ));
                break;
            };
            at = t;
            list.push(Explicit {
                at_ns: at,
                input: (!l.input.is_empty()).then(|| l.input.clone()),
                params: l
                    .params
                    .iter()
                    .map(|(k, v)| (k.clone(), parse_value(v)))
                    .collect(),
            });
        }
        let i = per_pair.entry((user, function)).or_insert(0);
        streams.push(Stream {
            user,
            function,
            seed: DEFAULT_SEED,
            pair_index: *i,
            label: Some(f.name.to_string()),
            kind: StreamKind::Explicit(list),
            params: Vec::new(),
            inputs: None,
        });
        *i += 1;
    }
    errors.into_result()?;

    let functions = keys
        .iter()
        .map(|(action, memory_mb)| {
            let several = keys.iter().filter(|(a, _)| a == action).count() > 1;
            let e = catalog.get(action).expect("checked above");
            Function {
                name: if several {
                    format!("{action}-{memory_mb}")
                } else {
                    action.clone()
                },
                action: action.clone(),
                kind: e.kind.clone(),
                code: e.code.clone(),
                main: e.main.clone(),
                memory_mb: *memory_mb,
                timeout_ms: e.timeout_ms,
                parameters: e.parameters.clone(),
                input_kind: e.input_kind.clone(),
            }
        })
        .collect();
    Ok(Parts {
        origin: label,
        users,
        functions,
        seed: DEFAULT_SEED,
        streams,
    })
}

/// Minutes as written in a file name: an integer when whole, else up to 3 decimals.
fn minutes(ns: u64) -> String {
    let m = ns as f64 / 60e9;
    let s = format!("{m:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

struct Out {
    tmp: PathBuf,
    w: BufWriter<File>,
    user: u32,
    function: u32,
    last: u64,
    count: u64,
    first_line: bool,
}

fn io_err(p: &Path, e: std::io::Error) -> TraceError {
    TraceError::file(p.display().to_string(), e.to_string())
}

/// Writes a trace as an original FaaSLoad directory (one file per user and function;
/// DURATION is the span of the file's invocations from the start and AVGIAT their mean
/// gap, both in minutes). Returns the files written. Users with `-` in their name, and
/// values with tabs or newlines, cannot be written.
pub(crate) fn write_faasload_dir(
    trace: &Trace,
    dir: impl AsRef<Path>,
) -> Result<Vec<PathBuf>, TraceError> {
    write_faasload_dir_labeled(trace, dir, &HashMap::new())
}

/// Writes the parts of a trace as an original FaaSLoad directory; a stream that came
/// from such a file (its label) gets its original file name back, so DURATION and
/// AVGIAT are kept as written rather than recomputed.
pub fn write_faasload_parts(
    parts: &Parts,
    dir: impl AsRef<Path>,
) -> Result<Vec<PathBuf>, TraceError> {
    let mut labels: HashMap<(u32, u32), String> = HashMap::new();
    let mut several: Vec<(u32, u32)> = Vec::new();
    for s in &parts.streams {
        if let Some(l) = &s.label
            && labels.insert((s.user, s.function), l.clone()).is_some()
        {
            several.push((s.user, s.function));
        }
    }
    for k in several {
        labels.remove(&k);
    }
    write_faasload_dir_labeled(&parts.clone().into_trace(), dir, &labels)
}

fn write_faasload_dir_labeled(
    trace: &Trace,
    dir: impl AsRef<Path>,
    labels: &HashMap<(u32, u32), String>,
) -> Result<Vec<PathBuf>, TraceError> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    for u in &trace.users {
        if u.name.is_empty() || u.name.contains(['-', '/']) {
            return Err(TraceError::file(
                dir.display().to_string(),
                format!(
                    "user '{}' cannot name a trace file (empty, '-' or '/')",
                    u.name
                ),
            ));
        }
    }
    for f in &trace.functions {
        if f.action.is_empty() || f.action.contains('/') {
            return Err(TraceError::file(
                dir.display().to_string(),
                format!("action '{}' cannot name a trace file", f.action),
            ));
        }
    }
    let mut outs: Vec<Out> = Vec::new();
    let mut index: HashMap<(u32, u32), usize> = HashMap::new();
    for inv in trace.invocations() {
        let i = match index.get(&(inv.user, inv.function)) {
            Some(&i) => i,
            None => {
                let tmp = dir.join(format!(".faasload-tmp-{}", outs.len()));
                let f = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
                outs.push(Out {
                    tmp,
                    w: BufWriter::new(f),
                    user: inv.user,
                    function: inv.function,
                    last: 0,
                    count: 0,
                    first_line: true,
                });
                index.insert((inv.user, inv.function), outs.len() - 1);
                outs.len() - 1
            }
        };
        let o = &mut outs[i];
        let mut line = String::new();
        if !o.first_line {
            line.push('\n');
        }
        line.push_str(&format_wait(inv.at_ns.saturating_sub(o.last)));
        line.push('\t');
        let input = inv.input.clone().unwrap_or_default();
        if input.contains(['\t', '\n', '\r']) {
            return Err(TraceError::file(
                o.tmp.display().to_string(),
                format!("input {input:?} cannot be written in a TSV trace"),
            ));
        }
        line.push_str(&input);
        let params: &Map<String, serde_json::Value> = &inv.params;
        for (k, v) in params {
            if k.is_empty() || k.contains([':', '\t', '\n', '\r']) {
                return Err(TraceError::file(
                    o.tmp.display().to_string(),
                    format!("parameter name {k:?} cannot be written in a TSV trace"),
                ));
            }
            let v =
                format_value(v).map_err(|m| TraceError::file(o.tmp.display().to_string(), m))?;
            line.push('\t');
            line.push_str(k);
            line.push(':');
            line.push_str(&v);
        }
        o.w.write_all(line.as_bytes())
            .map_err(|e| io_err(&o.tmp, e))?;
        o.first_line = false;
        o.last = inv.at_ns;
        o.count += 1;
    }
    let mut written = Vec::new();
    for mut o in outs {
        o.w.write_all(b"\n").map_err(|e| io_err(&o.tmp, e))?;
        o.w.flush().map_err(|e| io_err(&o.tmp, e))?;
        let (Some(f), Some(u)) = (
            trace.functions.get(o.function as usize),
            trace.users.get(o.user as usize),
        ) else {
            return Err(TraceError::file(
                o.tmp.display().to_string(),
                "an invocation names a user or function the trace does not have",
            ));
        };
        let computed = TsvName {
            user: u.name.clone(),
            action: f.action.clone(),
            memory: f.memory_mb.to_string(),
            duration: minutes(o.last),
            avgiat: minutes(o.last / o.count.max(1)),
        };
        // The original name when it still describes this stream's user, action, memory.
        let name = match labels
            .get(&(o.user, o.function))
            .and_then(|l| TsvName::parse(l).ok())
        {
            Some(n)
                if n.user == computed.user
                    && n.action == computed.action
                    && n.memory_mb() == f.memory_mb =>
            {
                n
            }
            _ => computed,
        };
        let path = dir.join(name.to_string());
        if written.contains(&path) {
            return Err(TraceError::file(
                path.display().to_string(),
                "two functions of the trace map to the same file (same action and memory)",
            ));
        }
        std::fs::rename(&o.tmp, &path).map_err(|e| io_err(&path, e))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Invocation;
    use crate::catalog::CatalogEntry;

    const EXAMPLE: &str = "284\tuser004/19.jpg\tsigma:39.64642930244718\n\
        0.5\tuser004/3.jpg\tsigma:0.3\n\
        12.25\tuser004/7.jpg\tsigma:100\n";

    fn catalog() -> FunctionCatalog {
        let entry = |kind: &str| CatalogEntry {
            kind: kind.into(),
            code: PathBuf::from("functions/python/burn.py"),
            main: None,
            timeout_ms: 1000,
            input_kind: Some("image".into()),
            parameters: Map::new(),
        };
        FunctionCatalog {
            origin: "test catalog".into(),
            entries: [
                ("wand_blur".to_string(), entry("python:3")),
                ("sharp_resize".to_string(), entry("nodejs:20")),
            ]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn the_reference_example_loads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("user004-wand_blur-3072-120-4"), EXAMPLE).unwrap();
        std::fs::write(
            dir.path().join("user001-sharp_resize-256-1-1"),
            "0\timage/1.jpg\twidth:100\n1\t\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.md"), "ignored").unwrap();
        let t = load_faasload_dir(dir.path(), &catalog()).unwrap();
        assert_eq!(
            t.users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
            ["user001", "user004"]
        );
        assert_eq!(t.functions[1].name, "wand_blur");
        assert_eq!(t.functions[1].memory_mb, 3072);
        assert_eq!(t.functions[1].kind, "python:3");
        assert_eq!(t.total, Some(5));
        let v: Vec<Invocation> = t.invocations().collect();
        let blur: Vec<&Invocation> = v.iter().filter(|x| x.user == 1).collect();
        assert_eq!(
            blur.iter().map(|x| x.at_ns).collect::<Vec<_>>(),
            [284_000_000_000, 284_500_000_000, 296_750_000_000]
        );
        assert_eq!(blur[0].input.as_deref(), Some("user004/19.jpg"));
        assert_eq!(blur[0].params["sigma"], json!(39.64642930244718));
        assert_eq!(blur[2].params["sigma"], json!(100));
        assert_eq!(v[1].input, None, "an empty INPUT is no input");
        assert_eq!(v[1].at_ns, 1_000_000_000);
        assert!(v.windows(2).all(|w| w[0].at_ns <= w[1].at_ns));
    }

    #[test]
    fn write_then_read_gives_the_same_lines_and_schedule() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("user004-wand_blur-3072-120-4"), EXAMPLE).unwrap();
        let t = load_faasload_dir(dir.path(), &catalog()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let files = write_faasload_dir(&t, out.path()).unwrap();
        assert_eq!(files.len(), 1);
        let name = files[0].file_name().unwrap().to_str().unwrap();
        // 296.75 s = 4.946 min over 3 invocations: mean 1.649 min.
        assert_eq!(name, "user004-wand_blur-3072-4.946-1.649");
        assert_eq!(
            std::fs::read_to_string(&files[0]).unwrap(),
            EXAMPLE,
            "lines byte for byte"
        );
        let back = load_faasload_dir(out.path(), &catalog()).unwrap();
        let a: Vec<Invocation> = t.invocations().collect();
        let b: Vec<Invocation> = back.invocations().collect();
        assert_eq!(a, b);
    }

    #[test]
    fn defects_of_a_directory_are_reported_together() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("u-nope-128-1-1"), "1\tx\n").unwrap();
        std::fs::write(
            dir.path().join("u-wand_blur-128-1-1"),
            "1\tx\n-2\ty\n3\tz\tbad\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("badname"), "1\tx\n").unwrap();
        let e = load_faasload_dir(dir.path(), &catalog()).unwrap_err();
        let d = dir.path().display();
        let got: Vec<String> = e.errors().iter().map(|e| e.to_string()).collect();
        assert_eq!(
            got,
            [
                format!("{d}/badname: 'badname' is not named USER-ACTION-MEMORY-DURATION-AVGIAT"),
                format!(
                    "{d}/u-wand_blur-128-1-1:2:1: WAIT must be a finite number of seconds >= 0, not '-2'"
                ),
                format!(
                    "{d}/u-wand_blur-128-1-1:3:5: expected a parameter name:value, found 'bad'"
                ),
                format!(
                    "{d}/u-nope-128-1-1: unknown action 'nope' (not in the function catalog test catalog)"
                ),
            ]
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(
            load_faasload_dir(empty.path(), &catalog())
                .unwrap_err()
                .to_string()
                .contains("no trace files")
        );
    }
}
