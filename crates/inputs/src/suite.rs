//! Where the function suite's libraries are (the repository's `functions/`: the venv
//! with Wand, node_modules with sharp, the object store modules) and how a platform
//! config can point its runtimes at them; used by `faasload load --embedded` so that an
//! original trace replays on the real suite. `FAASLOAD_STORE_DIR` (of the faasload
//! process) becomes the platform's object store.
use std::path::{Path, PathBuf};

/// The suite's install paths under a `functions/` directory.
#[derive(Clone, Debug, PartialEq)]
pub struct SuitePaths {
    pub python: PathBuf,
    pub python_path: Vec<PathBuf>,
    pub node_path: Vec<PathBuf>,
}

impl SuitePaths {
    /// The paths under `functions`, when the venv exists (`cargo xtask ensure-functions`).
    pub fn under(functions: &Path) -> Option<SuitePaths> {
        let python = functions.join(".venv").join("bin").join("python");
        if !python.is_file() {
            return None;
        }
        Some(SuitePaths {
            python,
            python_path: vec![functions.join("python").join("lib")],
            node_path: vec![
                functions.join("nodejs").join("node_modules"),
                functions.join("nodejs").join("lib"),
            ],
        })
    }

    /// The repository's (found from the current directory or the build's source tree).
    pub fn locate() -> Option<SuitePaths> {
        let store_py =
            faasload_trace::repo_file(Path::new("."), "functions/python/lib/faasload_store.py")?;
        let functions = store_py.parent()?.parent()?.parent()?;
        SuitePaths::under(functions)
    }
}

/// Largest number of invocations scanned, and of distinct inputs generated, by
/// [`generated_store`] (beyond: give a store with `FAASLOAD_STORE_DIR`).
const SCAN_MAX: u64 = 10_000_000;
const GENERATE_MAX: usize = 10_000;

/// The inputs a trace names (`kind/N.ext` with a known kind), as (kind, N).
pub(crate) fn named_inputs(
    trace: &faasload_trace::Trace,
) -> std::collections::BTreeSet<(super::Kind, u32)> {
    let mut set = std::collections::BTreeSet::new();
    if trace.total.is_none_or(|t| t > SCAN_MAX) {
        return set;
    }
    for inv in trace.invocations() {
        let Some((kind, n)) = inv.input.as_deref().and_then(parse_input) else {
            continue;
        };
        set.insert((kind, n));
        if set.len() >= GENERATE_MAX {
            break;
        }
    }
    set
}

/// `image/17.jpg` -> (Image, 17) when the container is a kind and the name `<N>.<ext>`
/// with one of its extensions.
pub(crate) fn parse_input(input: &str) -> Option<(super::Kind, u32)> {
    let (cont, name) = input.split_once('/')?;
    let kind = super::Kind::parse(cont)?;
    let (n, ext) = name.split_once('.')?;
    if !kind.extensions().contains(&ext) {
        return None;
    }
    Some((kind, n.parse().ok().filter(|n| *n > 0)?))
}

/// For a one-command replay without a store: `dir/store` with the inputs the trace names,
/// generated with the default seed ([`super::DEFAULT_SEED`]). None when it names none.
pub fn generated_store(
    trace: &faasload_trace::Trace,
    dir: &Path,
) -> anyhow::Result<Option<PathBuf>> {
    use anyhow::Context;
    let wanted = named_inputs(trace);
    if wanted.is_empty() {
        return Ok(None);
    }
    let store = dir.join("store");
    for (kind, n) in wanted {
        let cont = store.join(kind.name());
        std::fs::create_dir_all(&cont).with_context(|| format!("creating {}", cont.display()))?;
        for (ext, bytes) in super::render(super::DEFAULT_SEED, kind, n)? {
            let p = cont.join(format!("{n}.{ext}"));
            std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
        }
    }
    Ok(Some(store))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;

    #[test]
    fn trace_inputs_name_generated_files() {
        assert_eq!(parse_input("image/17.jpg"), Some((Kind::Image, 17)));
        assert_eq!(parse_input("text/2.txt"), Some((Kind::Text, 2)));
        assert_eq!(parse_input("image/17.txt"), None);
        assert_eq!(parse_input("user004/19.jpg"), None);
        assert_eq!(parse_input("image/0.jpg"), None);
        assert_eq!(parse_input("17.jpg"), None);
    }

    #[test]
    fn a_sample_trace_gets_its_inputs() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../config/traces/faasload-sample");
        let catalog = faasload_trace::FunctionCatalog::for_dir(&dir).unwrap();
        let trace = faasload_trace::load_faasload_dir(&dir, &catalog).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let store = generated_store(&trace, tmp.path()).unwrap().unwrap();
        for n in 1..=3 {
            let f = store.join(format!("image/{n}.jpg"));
            assert!(f.is_file(), "{}", f.display());
        }
    }
}
