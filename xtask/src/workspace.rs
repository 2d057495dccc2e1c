//! Where things are: the workspace root, its target directory and the eBPF object.

use std::path::{Path, PathBuf};

/// Paths every command needs, resolved once.
pub(crate) struct Workspace {
    /// The main workspace's root (the parent of `xtask/`).
    pub root: PathBuf,
    /// The shared target directory (`CARGO_TARGET_DIR` if set, else `<root>/target`).
    pub target_dir: PathBuf,
}

impl Workspace {
    pub(crate) fn locate() -> Self {
        // `cargo run` sets CARGO_MANIFEST_DIR for the program too: prefer it, so a binary
        // built from another checkout sharing this target directory still works here.
        let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        let root = manifest
            .parent()
            .expect("xtask lives inside the workspace")
            .to_path_buf();
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
            // Cargo resolves a relative CARGO_TARGET_DIR against its working directory;
            // `cargo xtask` is run from the root, and the monitor's build.rs agrees.
            Some(dir) => root.join(dir),
            None => root.join("target"),
        };
        Workspace { root, target_dir }
    }

    /// The faasload binary built by `cargo build` (debug profile).
    pub(crate) fn faasload_bin(&self) -> PathBuf {
        self.target_dir.join("debug").join("faasload")
    }
}
