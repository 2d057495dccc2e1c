//! How a `faasload load` ends, through the real binary against a scripted platform: its
//! exit status (0 only for a completed run within `--max-failed`; 3 over it, 4 when
//! interrupted, 5 when the store failed), the summary it always prints (the failure
//! messages with their first seq; "ALL ... FAILED" first when nothing succeeded), a
//! store that fills up mid-run (SQLite on a small tmpfs: every row is stored or in the
//! spill journal, the report and the interval log are written, and the journal loads
//! back), a SIGKILLed loader whose load shows `crashed`, input sizes from the object
//! store, and output into a pipe whose reader is gone.
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use faasload_results::store::journal::JournalLine;
use faasload_results::store::{LoadStatus, Store};
use faasload_tests::loader::{load, rt, stored, text};
use faasload_tests::openwhisk_fake::{FakeServer, Reply};
use faasload_tests::{bin, require_root};
use serde_json::json;

fn noop() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../functions/python/noop.py")
}

/// A successful activation record (blocking answer).
fn ok() -> Reply {
    Reply::json(
        200,
        &json!({"namespace": "guest", "name": "f", "version": "0.0.1", "subject": "guest",
            "activationId": "00000000000000000000000000000001", "start": 1, "end": 2,
            "duration": 1, "logs": [], "publish": false,
            "response": {"result": {}, "size": 2, "status": "success", "success": true},
            "annotations": [{"key": "waitTime", "value": 1}]}),
    )
}

/// A trace of one user at `url` invoking `f` `rate` times a second for `duration` s,
/// with `params` (a YAML flow mapping) and optionally an input.
fn trace(dir: &Path, url: &str, rate: u32, duration: f64, params: &str, input: &str) -> PathBuf {
    let p = dir.join("t.yaml");
    let inputs = if input.is_empty() {
        String::new()
    } else {
        format!("\n    inputs: [{input}]")
    };
    std::fs::write(
        &p,
        format!(
            r#"users:
  - {{name: u, namespace: guest, auth: "a:b", api_host: "{url}"}}
functions:
  - {{name: f, kind: "python:3", code: {code}, memory: 128, timeout: 1000}}
streams:
  - user: u
    function: f
    rate: {rate}
    distribution: periodic
    duration: {duration}
    parameters: {params}{inputs}
"#,
            code = noop().display()
        ),
    )
    .unwrap();
    p
}

fn sqlite(p: &Path) -> String {
    format!("sqlite://{}", p.display())
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_wrong_key_fails_the_run_and_the_summary_says_why() {
    let rt = rt();
    let server = rt.block_on(FakeServer::start(|_, _| {
        Reply::json(
            401,
            &json!({"error": "The supplied authentication is invalid", "code": "x"}),
        )
    }));
    let dir = tempfile::tempdir().unwrap();
    let t = trace(dir.path(), &server.url(), 20, 0.25, "{}", "");
    for store in [None, Some(dir.path().join("r.db"))] {
        let mut args = vec![t.to_str().unwrap(), "--quiet", "--no-monitor"];
        let url = store.as_deref().map(sqlite);
        match &url {
            Some(u) => args.extend(["--store", u.as_str()]),
            None => args.push("--no-store"),
        }
        let o = load(&args);
        assert_eq!(o.status.code(), Some(3), "{}", text(&o));
        let out = stdout(&o);
        let summary: Vec<&str> = out
            .lines()
            .skip_while(|l| !l.starts_with("Summary:"))
            .collect();
        assert_eq!(
            summary.first().copied(),
            Some("Summary: ALL 5 INVOCATIONS FAILED (client_error 5)"),
            "{out}"
        );
        assert!(
            summary.iter().any(|l| l
                .contains("5 x HTTP 401: The supplied authentication is invalid (first at seq 0)")),
            "{out}"
        );
        let last = out.lines().last().unwrap();
        assert!(last.starts_with("5 invocations in "), "{out}");
        assert!(
            !last.contains("WriterStats") && !last.contains('{'),
            "{last}"
        );
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("more than --max-failed 0 (exit status 3)"),
            "{}",
            text(&o)
        );
    }
    // Allowed failures: exit 0 (count or fraction).
    for allow in ["5", "100%"] {
        let o = load(&[
            t.to_str().unwrap(),
            "--quiet",
            "--no-monitor",
            "--no-store",
            "--max-failed",
            allow,
        ]);
        assert_eq!(o.status.code(), Some(0), "{allow}: {}", text(&o));
        assert!(stdout(&o).contains("ALL 5 INVOCATIONS FAILED"));
    }
    let o = load(&[
        t.to_str().unwrap(),
        "--quiet",
        "--no-monitor",
        "--no-store",
        "--max-failed",
        "4",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

/// Spawns `faasload load <args>` with piped output.
fn spawn_load(args: &[&str]) -> Child {
    Command::new(bin())
        .arg("load")
        .args(args)
        .env("FAASLOAD_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Rows of the last load of `db` (0 while the store or the load is not there yet).
fn rows_now(db: &Path) -> usize {
    if !db.exists() {
        return 0;
    }
    rt().block_on(async {
        let s = Store::open_read(&sqlite(db)).await.ok()?;
        let id = s.loads().await.ok()?.last()?.id;
        let n = s.run_seqs(id).await.ok()?.len();
        s.close().await;
        Some(n)
    })
    .unwrap_or(0)
}

fn wait_rows(db: &Path, n: usize) {
    let end = Instant::now() + Duration::from_secs(60);
    while rows_now(db) < n {
        assert!(Instant::now() < end, "fewer than {n} rows after 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn signal(c: &Child, sig: i32) {
    // SAFETY: signalling our own child, by PID.
    unsafe { libc::kill(c.id() as i32, sig) };
}

#[test]
fn an_interrupted_run_exits_4() {
    let rt = rt();
    let server = rt.block_on(FakeServer::start(|_, _| ok()));
    let dir = tempfile::tempdir().unwrap();
    let t = trace(dir.path(), &server.url(), 20, 60.0, "{}", "");
    let db = dir.path().join("r.db");
    let child = spawn_load(&[
        t.to_str().unwrap(),
        "--quiet",
        "--no-monitor",
        "--store",
        &sqlite(&db),
    ]);
    wait_rows(&db, 10);
    signal(&child, libc::SIGINT);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(stdout(&o).contains("INTERRUPTED"), "{}", text(&o));
    let (status, rows) = rt.block_on(stored(&db));
    assert_eq!(status, LoadStatus::Interrupted);
    assert!(rows.iter().all(|r| r.class == "success"));
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount (util-linux)");
        assert!(st.success(), "mounting a tmpfs on {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The issue's case: the store's disk fills up mid-run. Every row is in the store or in
/// the spill journal exactly once (as many as the platform got requests), the report
/// and the interval log are still written, the load is ended, the exit status says the
/// store failed; once there is room, one command loads the journal into the same load.
#[test]
fn a_store_that_fills_up_mid_run_loses_no_row() {
    require_root();
    let rt = rt();
    let server = rt.block_on(FakeServer::start(|_, _| ok()));
    let dir = tempfile::tempdir().unwrap();
    // 500 rows a second, each ~1.2 kB with its parameter: the writer's batches (one a
    // second) fill 2 MiB after a few.
    let small = Tmpfs::mount(&dir.path().join("small"), "2m");
    let db = small.0.join("r.db");
    let pad = "x".repeat(1000);
    let t = trace(
        dir.path(),
        &server.url(),
        500,
        6.0,
        &format!("{{pad: {pad}}}"),
        "",
    );
    let spill = dir.path().join("spill");
    let hlog = dir.path().join("lat.hlog");
    let o = load(&[
        t.to_str().unwrap(),
        "--quiet",
        "--no-monitor",
        "--store",
        &sqlite(&db),
        "--spill-dir",
        spill.to_str().unwrap(),
        "--hlog",
        hlog.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(
        out.contains("Latency Distribution") && out.contains("Summary: 3000 of 3000"),
        "the report and the summary are printed: {}",
        text(&o)
    );
    assert!(out.contains("STORE ERROR"), "{out}");
    assert!(std::fs::metadata(&hlog).unwrap().len() > 0, "no hlog");
    let sent = server.requests().len();
    assert_eq!(sent, 3000);
    // What the store holds.
    let stored_seqs = rt.block_on(async {
        let s = Store::open_read(&sqlite(&db)).await.unwrap();
        let l = s.loads().await.unwrap().pop().unwrap();
        let seqs = s.run_seqs(l.id).await.unwrap();
        s.close().await;
        seqs
    });
    assert!(
        !stored_seqs.is_empty() && stored_seqs.len() < sent,
        "{} stored",
        stored_seqs.len()
    );
    // The journal: the load, every other row, the end.
    let journals: Vec<PathBuf> = std::fs::read_dir(&spill)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(journals.len(), 1, "{journals:?}");
    let lines: Vec<JournalLine> = std::fs::read_to_string(&journals[0])
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        matches!(&lines[0], JournalLine::Load(h) if h.reason.contains("full")),
        "{:?}",
        lines[0]
    );
    let JournalLine::End(end) = lines.last().unwrap() else {
        panic!("no end line: {:?}", lines.last());
    };
    assert_eq!(end.status, LoadStatus::Completed);
    let journaled: Vec<u64> = lines
        .iter()
        .filter_map(|l| match l {
            JournalLine::Run(r) => Some(r.seq),
            _ => None,
        })
        .collect();
    assert_eq!(end.rows as usize, journaled.len());
    let mut all: Vec<u64> = stored_seqs.iter().copied().chain(journaled).collect();
    all.sort();
    assert_eq!(all, (0..3000).collect::<Vec<_>>(), "every row exactly once");
    assert!(
        out.contains(&format!(
            "{} rows are in the spill journal {}",
            end.rows,
            journals[0].display()
        )),
        "{out}"
    );
    let last = out.lines().last().unwrap();
    assert!(
        last.contains(&format!(
            "{} stored as load 1 in {}, {} in the spill journal, 0 lost",
            stored_seqs.len(),
            sqlite(&db),
            end.rows
        )),
        "{last}"
    );
    // Room again: the journal goes into the same load.
    small.resize("64m");
    let o = Command::new(bin())
        .args(["store", "load-journal"])
        .arg(&journals[0])
        .args(["--store", &sqlite(&db)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        stdout(&o).contains(&format!("{} rows of", end.rows)),
        "{}",
        text(&o)
    );
    let (status, rows) = rt.block_on(stored(&db));
    assert_eq!(status, LoadStatus::Completed);
    let mut seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    seqs.sort();
    assert_eq!(seqs, (0..3000).collect::<Vec<_>>());
    assert!(
        rows.iter()
            .all(|r| r.params == [("pad".to_string(), pad.clone())])
    );
}

/// A loader killed with SIGKILL leaves its load `running` in the store; once its
/// heartbeat is stale, `faasload loads` and `faasload report` say `crashed`.
#[test]
fn a_sigkilled_loader_leaves_a_crashed_load() {
    let rt = rt();
    let server = rt.block_on(FakeServer::start(|_, _| ok()));
    let dir = tempfile::tempdir().unwrap();
    let t = trace(dir.path(), &server.url(), 20, 120.0, "{}", "");
    let db = dir.path().join("r.db");
    let mut child = spawn_load(&[
        t.to_str().unwrap(),
        "--quiet",
        "--no-monitor",
        "--store",
        &sqlite(&db),
    ]);
    wait_rows(&db, 5);
    let loads = |db: &Path| {
        let o = Command::new(bin())
            .arg("loads")
            .arg(sqlite(db))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        stdout(&o)
    };
    let before = loads(&db);
    assert!(
        before
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains(" running ")),
        "{before}"
    );
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    let killed = Instant::now();
    // Still `running` right after (the heartbeat is fresh), `crashed` once it is stale.
    let end = killed + Duration::from_secs(30);
    let after = loop {
        let l = loads(&db);
        if l.contains(" crashed ") {
            break l;
        }
        assert!(Instant::now() < end, "never crashed:\n{l}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        killed.elapsed() >= Duration::from_secs(7),
        "crashed too early"
    );
    let line = after.lines().nth(1).unwrap();
    assert!(
        line.starts_with("    1  crashed") && line.ends_with(t.to_str().unwrap()),
        "{after}"
    );
    let o = Command::new(bin())
        .arg("report")
        .arg(sqlite(&db))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let first = stdout(&o).lines().next().unwrap_or("").to_string();
    assert!(
        first.contains(" (crashed), ") && first.contains("its loader gone since"),
        "{first}"
    );
}

#[test]
fn rows_get_their_input_size_from_the_object_store() {
    let rt = rt();
    let server = rt.block_on(FakeServer::start(|_, _| ok()));
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("objects");
    std::fs::create_dir_all(objects.join("user001")).unwrap();
    std::fs::write(objects.join("user001/1.jpg"), vec![7u8; 4321]).unwrap();
    let t = trace(
        dir.path(),
        &server.url(),
        10,
        0.3,
        "{}",
        "user001/1.jpg, user001/2.jpg",
    );
    let db = dir.path().join("r.db");
    let o = Command::new(bin())
        .arg("load")
        .args([t.to_str().unwrap(), "--quiet", "--no-monitor", "--store"])
        .arg(sqlite(&db))
        .env("FAASLOAD_STORE_DIR", &objects)
        .env("FAASLOAD_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let (_, rows) = rt.block_on(stored(&db));
    assert_eq!(rows.len(), 3);
    for r in &rows {
        let want = (r.input.as_deref() == Some("user001/1.jpg")).then_some(4321);
        assert_eq!(r.input_bytes, want, "{r:?}");
    }
    assert!(rows.iter().any(|r| r.input_bytes.is_some()));
}

/// Runs `cmd` with its standard output on a pipe whose read end is already closed (as
/// after `| head` or `| true`): it must end quietly, without a panic.
fn into_closed_pipe(mut cmd: Command) -> Output {
    let mut fds = [0; 2];
    // SAFETY: a valid two-int array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just created and are owned here.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    cmd.stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .env("RUST_BACKTRACE", "1");
    let o = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(0), "{err}");
    o
}

#[test]
fn a_dry_run_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let t = trace(dir.path(), "http://127.0.0.1:9", 1000, 5.0, "{}", "");
    let mut cmd = Command::new(bin());
    cmd.args(["load", "--dry-run"]).arg(&t);
    into_closed_pipe(cmd);
    // And through a shell pipe into `true`.
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' load --dry-run '{}' | true",
            bin().display(),
            t.display()
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
}
