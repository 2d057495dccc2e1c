//! The function suite for end-to-end tests: its installed libraries (`cargo xtask
//! ensure-functions`), object stores filled by `faasload inputs`, and an in-process
//! platform whose runtimes use both.
use std::path::Path;
use std::process::{Command, Stdio};

use crate::bin;
use crate::platform::{TestPlatform, functions};

/// The suite's install paths; fails (never skips) when they are missing.
pub fn suite_paths() -> faasload_inputs::suite::SuitePaths {
    faasload_inputs::suite::SuitePaths::under(&functions()).expect(
        "functions/.venv is missing: run `cargo xtask ensure-functions` (part of `cargo xtask test`)",
    )
}

/// A store readable by the action user, with inputs from `faasload inputs` (`kinds` as
/// its `--kinds`, seed 11).
pub fn store_with_inputs(kinds: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::Builder::new()
        .prefix("faasload-store-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = Command::new(bin())
        .args(["inputs", "--seed", "11", "--kinds", kinds, "--dir"])
        .arg(tmp.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    tmp
}

/// A platform running the suite with `store` as its object store.
pub fn start_platform(store: &Path) -> TestPlatform {
    let s = suite_paths();
    let store = store.to_path_buf();
    TestPlatform::start(move |c| {
        c.runtimes.python = s.python;
        c.runtimes.python_path = s.python_path;
        c.runtimes.node_path = s.node_path;
        c.store_dir = Some(store);
        c.limits.memory_max = 1024;
        c.pool.user_memory_mb = 4096;
    })
}
