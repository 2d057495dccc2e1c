//! Where the function suite's libraries are (the repository's `functions/`: the venv
//! with Wand, node_modules with sharp, the object store modules) and how a platform
//! config points its runtimes at them; used by `faasload load --embedded` so that an
//! original trace replays on the real suite. `FAASLOAD_STORE_DIR` (of the faasload
//! process) becomes the platform's object store.
use std::path::{Path, PathBuf};

use crate::platform::config::{PlatformConfig, RuntimesConfig};

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
        let store_py = crate::trace::resolve::repo_file(
            Path::new("."),
            "functions/python/lib/faasload_store.py",
        )?;
        let functions = store_py.parent()?.parent()?.parent()?;
        SuitePaths::under(functions)
    }
}

/// Points `cfg`'s runtimes at the suite's libraries when they are installed and the
/// runtimes are the defaults, and sets the store from `FAASLOAD_STORE_DIR` when the config
/// has none. Returns whether the suite was found.
pub fn configure_platform(cfg: &mut PlatformConfig) -> bool {
    if cfg.store_dir.is_none() {
        if let Some(d) = std::env::var_os("FAASLOAD_STORE_DIR").filter(|d| !d.is_empty()) {
            cfg.store_dir = Some(PathBuf::from(d));
        }
    }
    let default = RuntimesConfig::default();
    if cfg.runtimes.python != default.python
        || !cfg.runtimes.python_path.is_empty()
        || !cfg.runtimes.node_path.is_empty()
    {
        return false;
    }
    match SuitePaths::locate() {
        Some(s) => {
            cfg.runtimes.python = s.python;
            cfg.runtimes.python_path = s.python_path;
            cfg.runtimes.node_path = s.node_path;
            true
        }
        None => false,
    }
}
