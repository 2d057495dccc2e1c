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

/// An input a trace names that faasload can generate: `<container>/<N>.<ext>` where the
/// container is a kind (`image/17.jpg`, as `faasload inputs` writes them) or anything
/// else, e.g. a user (`user001/15.jpg`, the original FaaSLoad's per-user containers),
/// the kind then coming from the extension.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct InputRef {
    pub container: String,
    pub kind: super::Kind,
    /// From 1.
    pub n: u32,
}

impl InputRef {
    /// The files of this input relative to a store's root: one per extension of its
    /// kind (`user001/15.jpg` and `user001/15.png`), with the content of input `n` of
    /// the kind, whatever the container.
    pub fn files(&self, seed: u64) -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
        Ok(super::render(seed, self.kind, self.n)?
            .into_iter()
            .map(|(ext, bytes)| {
                (
                    Path::new(&self.container).join(format!("{}.{ext}", self.n)),
                    bytes,
                )
            })
            .collect())
    }
}

/// The inputs a trace names that faasload can generate (see [`InputRef`]).
pub fn named_inputs(trace: &faasload_trace::Trace) -> std::collections::BTreeSet<InputRef> {
    let mut set = std::collections::BTreeSet::new();
    if trace.total.is_none_or(|t| t > SCAN_MAX) {
        return set;
    }
    for inv in trace.invocations() {
        let Some(r) = inv.input.as_deref().and_then(parse_input) else {
            continue;
        };
        set.insert(r);
        if set.len() >= GENERATE_MAX {
            break;
        }
    }
    set
}

/// The kind of a file extension.
fn kind_of_extension(ext: &str) -> Option<super::Kind> {
    super::Kind::ALL
        .into_iter()
        .find(|k| k.extensions().contains(&ext))
}

/// `image/17.jpg` -> (image, Image, 17); `user001/15.jpg` -> (user001, Image, 15). The
/// container must be one plain path component; the name `<N>.<ext>` with N from 1 and
/// an extension of its kind (the container's when it names a kind, else the
/// extension's).
pub fn parse_input(input: &str) -> Option<InputRef> {
    let (cont, name) = input.split_once('/')?;
    if cont.is_empty() || cont.starts_with('.') || cont.contains('\\') {
        return None;
    }
    let (n, ext) = name.split_once('.')?;
    let kind = match super::Kind::parse(cont) {
        Some(k) => k.extensions().contains(&ext).then_some(k)?,
        None => kind_of_extension(ext)?,
    };
    Some(InputRef {
        container: cont.to_string(),
        kind,
        n: n.parse().ok().filter(|n| *n > 0)?,
    })
}

/// Writes the files of `inputs` under `root` (each written to a temporary name, then
/// renamed); returns the files written.
pub fn write_inputs<'a>(
    root: &Path,
    seed: u64,
    inputs: impl IntoIterator<Item = &'a InputRef>,
) -> anyhow::Result<Vec<PathBuf>> {
    use anyhow::Context;
    let mut written = Vec::new();
    for r in inputs {
        let cont = root.join(&r.container);
        std::fs::create_dir_all(&cont).with_context(|| format!("creating {}", cont.display()))?;
        for (rel, bytes) in r.files(seed)? {
            let p = root.join(&rel);
            let tmp = cont.join(format!(
                ".{}.tmp",
                rel.file_name()
                    .map(|f| f.to_string_lossy())
                    .unwrap_or_default()
            ));
            std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &p).with_context(|| format!("renaming to {}", p.display()))?;
            written.push(p);
        }
    }
    Ok(written)
}

/// For a one-command replay without a store: `dir/store` with the inputs the trace names,
/// generated with the default seed ([`super::DEFAULT_SEED`]). None when it names none.
pub fn generated_store(
    trace: &faasload_trace::Trace,
    dir: &Path,
) -> anyhow::Result<Option<PathBuf>> {
    let wanted = named_inputs(trace);
    if wanted.is_empty() {
        return Ok(None);
    }
    let store = dir.join("store");
    write_inputs(&store, super::DEFAULT_SEED, &wanted)?;
    Ok(Some(store))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;

    fn r(container: &str, kind: Kind, n: u32) -> Option<InputRef> {
        Some(InputRef {
            container: container.into(),
            kind,
            n,
        })
    }

    #[test]
    fn trace_inputs_name_generated_files() {
        assert_eq!(parse_input("image/17.jpg"), r("image", Kind::Image, 17));
        assert_eq!(parse_input("text/2.txt"), r("text", Kind::Text, 2));
        assert_eq!(parse_input("image/17.txt"), None);
        // The original FaaSLoad's per-user containers: the kind from the extension.
        assert_eq!(parse_input("user004/19.jpg"), r("user004", Kind::Image, 19));
        assert_eq!(parse_input("user001/3.png"), r("user001", Kind::Image, 3));
        assert_eq!(parse_input("user002/7.csv"), r("user002", Kind::Matrix, 7));
        assert_eq!(parse_input("user004/19.mp4"), None);
        assert_eq!(parse_input("image/0.jpg"), None);
        assert_eq!(parse_input("17.jpg"), None);
        assert_eq!(parse_input("../1.jpg"), None);
        assert_eq!(parse_input("a/b/1.jpg"), None);
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

    #[test]
    fn per_user_inputs_are_generated_where_the_trace_names_them() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("trace");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(
            dir.join("user001-wand_blur-256-1-0.1"),
            "0\tuser001/15.jpg\tsigma:2\n1\tuser001/2.png\tsigma:3\n",
        )
        .unwrap();
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let catalog =
            faasload_trace::FunctionCatalog::load(repo.join("config/traces/catalog.yaml")).unwrap();
        let trace = faasload_trace::load_faasload_dir(&dir, &catalog).unwrap();
        let store = generated_store(&trace, tmp.path()).unwrap().unwrap();
        let a = std::fs::read(store.join("user001/15.jpg")).unwrap();
        // The same bytes as input 15 of the kind in its own container.
        assert_eq!(
            a,
            crate::render(crate::DEFAULT_SEED, Kind::Image, 15).unwrap()[0].1
        );
        assert!(store.join("user001/2.png").is_file());
        let names: Vec<String> = std::fs::read_dir(store.join("user001"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }
}
