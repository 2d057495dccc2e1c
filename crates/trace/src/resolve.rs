//! Finding the files a trace names: action code relative to the trace's directory or
//! to the repository's `functions/`, and the repository's default files (the function
//! catalog) from the trace's directory, the working directory or the source tree.
use std::fs::File;
use std::path::{Path, PathBuf};

/// Directories whose `rel` child may be the repository's file or folder `rel`: the
/// ancestors of `base`, of the working directory, then the source tree this binary was
/// built from.
fn repo_candidates(base: &Path, rel: &Path) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    let mut push_ancestors = |p: &Path| {
        for a in p.ancestors() {
            if !roots.iter().any(|r| r == a) {
                roots.push(a.to_path_buf());
            }
        }
    };
    push_ancestors(&std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf()));
    if let Ok(cwd) = std::env::current_dir() {
        push_ancestors(&cwd);
    }
    if let Some(src) = Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2) {
        push_ancestors(src);
    }
    roots.into_iter().map(|r| r.join(rel)).collect()
}

/// The repository's file `rel` (e.g. `config/traces/catalog.yaml`) seen from `base`.
pub fn repo_file(base: &Path, rel: &str) -> Option<PathBuf> {
    repo_candidates(base, Path::new(rel))
        .into_iter()
        .find(|p| p.is_file())
}

/// Resolves an action's code file: absolute, else relative to `base` (the trace's or
/// catalog's directory), else under the repository's `functions/`. It must be a
/// readable file.
pub(crate) fn resolve_code(code: &str, base: &Path) -> Result<PathBuf, String> {
    if code.is_empty() {
        return Err("empty code path".into());
    }
    let p = Path::new(code);
    let candidates = if p.is_absolute() {
        vec![p.to_path_buf()]
    } else {
        let mut c = vec![base.join(p)];
        c.extend(repo_candidates(base, &Path::new("functions").join(p)));
        c
    };
    let Some(found) = candidates.iter().find(|c| c.exists()) else {
        return Err(format!(
            "code file '{code}' not found (looked in {} and the repository's functions/)",
            base.display()
        ));
    };
    if !found.is_file() {
        return Err(format!("code '{}' is not a file", found.display()));
    }
    File::open(found).map_err(|e| format!("code file '{}' is unreadable: {e}", found.display()))?;
    Ok(found.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_found_beside_the_trace_or_in_functions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mine.py"), "def main(a): return a").unwrap();
        assert_eq!(
            resolve_code("mine.py", dir.path()).unwrap(),
            dir.path().join("mine.py")
        );
        let f = resolve_code("python/hello.py", dir.path()).unwrap();
        assert!(f.ends_with("functions/python/hello.py"), "{}", f.display());
        let e = resolve_code("python/nope.py", dir.path()).unwrap_err();
        assert!(e.contains("'python/nope.py' not found"), "{e}");
        std::fs::create_dir(dir.path().join("d")).unwrap();
        assert!(
            resolve_code("d", dir.path())
                .unwrap_err()
                .contains("not a file")
        );
        assert!(repo_file(dir.path(), "functions/README.md").is_some());
    }
}
