//! Shared support for the end-to-end tests: finds the built `faasload` binary, makes sure
//! the tests run as root (they fail, never skip, otherwise), creates test cgroups under
//! faasload's own subtree, runs the monitor daemon and the workload process, and talks to
//! the monitor's sockets.
pub mod attribution;
pub mod behaviours;
pub mod cgroups;
pub mod docker;
pub mod loader;
pub mod monitor;
pub mod openwhisk_fake;
pub mod platform;
pub mod store_rows;
pub mod suite;
pub mod workload;

use std::path::{Path, PathBuf};

/// The `faasload` binary under test: `$FAASLOAD_BIN`, else `target/debug/faasload`.
pub fn bin() -> PathBuf {
    if let Ok(p) = std::env::var("FAASLOAD_BIN") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/faasload");
    assert!(
        p.exists(),
        "{} is missing: build it first (`cargo xtask test` does everything)",
        p.display()
    );
    p
}

/// Fails the test unless it runs as root: these tests need cgroups and eBPF. They never
/// skip silently, in CI (CI=true) or elsewhere.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this end-to-end test needs root (cgroups, eBPF); run `sudo cargo xtask test`"
    );
}

/// A name unique to this test process and call (for cgroups and sockets).
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The status and rows of the last load in the SQLite store `db`.
pub fn last_load(db: &Path) -> (faasload_results::store::LoadStatus, Vec<faasload_results::store::StoredRow>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = faasload_results::store::Store::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let last = s.loads().await.unwrap().pop().expect("a load in the store");
        let rows = s.rows(last.id).await.unwrap();
        s.close().await;
        (last.status, rows)
    })
}
