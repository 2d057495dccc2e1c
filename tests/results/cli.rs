//! The reading commands and the store's errors through the real binary: `report` into a
//! pipe whose reader is gone ends quietly; `report` and `loads` on a mistyped SQLite
//! path create nothing; an unreachable PostgreSQL says why at once (connection refused,
//! not a pool timeout after 10 s); an immutable SQLite file gives SQLite's own error.
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use faasload_results::store::{LoadMeta, LoadStatus, Store};
use faasload_tests::store_rows::synth;
use faasload_tests::{bin, require_root};

fn faasload(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("FAASLOAD_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A SQLite store at `db` with one completed load of `n` synthetic rows.
fn store_with_a_load(db: &Path, n: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = Store::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let id = s.begin_load(&LoadMeta::new("t.yaml", 5)).await.unwrap();
        let rows: Vec<_> = (0..n).map(synth).collect();
        s.write_now(id, &mut Default::default(), &rows)
            .await
            .unwrap();
        s.end_load(id, LoadStatus::Completed).await.unwrap();
        s.close().await;
    });
}

#[test]
fn report_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    store_with_a_load(&db, 500);
    let mut fds = [0; 2];
    // SAFETY: a valid two-int array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just created and are owned here.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    let o = Command::new(bin())
        .arg("report")
        .arg(format!("sqlite://{}", db.display()))
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(0), "{err}");
    // And `| head -1` in a shell: the first line, no panic.
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' report 'sqlite://{}' | head -1",
            bin().display(),
            db.display()
        ))
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("panicked"),
        "{}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("Load 1 from t.yaml (completed)"),
        "{}",
        text(&o)
    );
}

#[test]
fn reading_a_mistyped_store_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mistyped.db");
    let url = format!("sqlite://{}", db.display());
    for cmd in [vec!["report", url.as_str()], vec!["loads", url.as_str()]] {
        let o = faasload(&cmd);
        assert_eq!(o.status.code(), Some(5), "{cmd:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!("no SQLite store at {}", db.display())),
            "{cmd:?}: {err}"
        );
        assert!(!db.exists(), "{cmd:?} created {}", db.display());
    }
    let out = dir.path().join("runs.csv");
    let o = faasload(&["export", &url, "--out", out.to_str().unwrap()]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!db.exists() && !out.exists(), "export created a file");
}

#[test]
fn an_unreachable_postgres_says_connection_refused_at_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://u:secret@127.0.0.1:{port}/db");
    let t = Instant::now();
    let o = faasload(&["report", &url]);
    let took = t.elapsed();
    let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(err.contains("connection refused"), "{err}");
    assert!(!err.contains("pool timed out"), "{err}");
    assert!(!err.contains("secret"), "{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn an_immutable_sqlite_file_gives_sqlites_own_error() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    store_with_a_load(&db, 3);
    let chattr = |flag: &str| {
        let st = Command::new("chattr").arg(flag).arg(&db).status().unwrap();
        assert!(st.success(), "chattr {flag} {}", db.display());
    };
    chattr("+i");
    let trace = dir.path().join("t.yaml");
    std::fs::write(
        &trace,
        format!(
            "users: [{{name: u, namespace: guest, auth: \"a:b\", api_host: \"http://127.0.0.1:9\"}}]\n\
             functions:\n  - {{name: f, kind: \"python:3\", code: {}/../functions/python/noop.py, memory: 128, timeout: 1000}}\n\
             streams:\n  - {{user: u, function: f, invocations: [{{at: 0}}]}}\n",
            env!("CARGO_MANIFEST_DIR")
        ),
    )
    .unwrap();
    let o = faasload(&[
        "load",
        trace.to_str().unwrap(),
        "--quiet",
        "--no-monitor",
        "--store",
        &format!("sqlite://{}", db.display()),
    ]);
    chattr("-i");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(err.contains("readonly database"), "{err}");
    assert!(!err.contains("neither found nor inserted"), "{err}");
    // Reading it is fine.
    chattr("+i");
    let o = faasload(&["report", &format!("sqlite://{}", db.display())]);
    chattr("-i");
    assert!(o.status.success(), "{}", text(&o));
}
