//! End-to-end tests of `faasload load`: the real binary replays YAML and original
//! FaaSLoad traces against the embedded platform with the monitor (root), and against
//! fake platforms that throttle, fail, answer 202 or refuse connections; every
//! invocation must be in the store with its class, bad traces must fail before anything
//! is sent, and SIGINT must keep every completed row (and, mid-run, the loader runs
//! without transparent huge pages while the actions it starts keep the host's setting).
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use faasload_results::store::{LoadStatus, Store, StoredRow};
use faasload_tests::loader::{load, py_js_trace, rt, stored, text};
use faasload_tests::openwhisk_fake::{FakeServer, Reply};
use faasload_tests::{bin, require_root};
use serde_json::json;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A small trace: two tenants created on the embedded platform, Python and Node.js
/// actions, bursts (cold starts) then spaced invocations (warm).
fn small_trace(dir: &Path) -> PathBuf {
    let p = dir.join("small.yaml");
    let trace = py_js_trace(
        "  - {name: ann, create: true}\n  - {name: ben, create: true}",
        "ben",
        "{name: x}",
        r#"  - user: ben
    function: py
    parameters: {ms: 10, mb: 4}
    rate: 4
    distribution: periodic
    start: 0.5
    duration: 2
"#,
    );
    std::fs::write(&p, trace).unwrap();
    p
}

#[test]
fn yaml_trace_on_the_embedded_platform_with_the_monitor() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let trace = small_trace(dir.path());
    let db = dir.path().join("r.db");
    let hlog = dir.path().join("lat.hlog");
    let o = load(&[
        trace.to_str().unwrap(),
        "--embedded",
        "--quiet",
        "--store",
        &format!("sqlite://{}", db.display()),
        "--hlog",
        hlog.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("99.000%") || out.contains("99.0"),
        "no percentile table:\n{out}"
    );
    assert!(std::fs::metadata(&hlog).unwrap().len() > 0);
    let (status, rows) = rt().block_on(stored(&db));
    assert_eq!(status, LoadStatus::Completed);
    assert_eq!(rows.len(), 16, "every invocation has a row");
    let mut seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    seqs.sort();
    assert_eq!(seqs, (0..16).collect::<Vec<_>>());
    for r in &rows {
        assert_eq!(r.class, "success", "{r:?}");
        assert!(r.activation_id.is_some(), "{r:?}");
        // cold <=> the record had initTime.
        assert_eq!(r.cold, Some(r.init_ms.is_some()), "{r:?}");
        assert!(
            r.cpu_ns.is_some_and(|c| c > 0),
            "CPU filled by the monitor: {r:?}"
        );
        assert!(
            r.mem_peak_bytes.is_some_and(|m| m > 0),
            "memory filled: {r:?}"
        );
        assert!(r.monitor_missing.is_none(), "{r:?}");
        assert!(r.latency_ns.unwrap() >= r.lag_ns.unwrap());
        // The user/system split adds up to the exact total (user alone exceeded it on
        // some rows before), and a cold start's init is measured apart, within the
        // total the record's duration matches (its duration includes the init).
        // (Both unknown when no scheduler tick fell in a short activation: the kernel's
        // split is tick-based.)
        let (u, y, t) = (r.cpu_user_ns, r.cpu_sys_ns, r.cpu_ns.unwrap());
        match (u, y) {
            (Some(u), Some(y)) => assert_eq!(u + y, t, "user + sys vs total: {r:?}"),
            (None, None) => assert!(t < 20_000_000, "no split of {t} ns: {r:?}"),
            _ => panic!("user or sys alone: {r:?}"),
        }
        if r.cold == Some(true) {
            let i = r
                .init_cpu_ns
                .unwrap_or_else(|| panic!("a cold start without its init's CPU: {r:?}"));
            assert!(i > 0 && i <= t, "init {i} vs total {t}: {r:?}");
        } else {
            assert_eq!(r.init_cpu_ns, None, "a warm start with an init: {r:?}");
            assert_eq!(r.init_mem_peak_bytes, None, "{r:?}");
        }
    }
    // The two simultaneous first invocations of (ann, py) both start cold; later warm.
    let ann_py: Vec<&StoredRow> = rows
        .iter()
        .filter(|r| r.user == "ann" && r.function == "py")
        .collect();
    // (A later one may start cold too when the machine is so loaded that both
    // containers are still busy then: that is the pool's rule, not a failure.)
    let first = ann_py.iter().map(|r| r.intended_epoch_ns).min().unwrap();
    let simultaneous: Vec<&&StoredRow> = ann_py
        .iter()
        .filter(|r| r.intended_epoch_ns == first)
        .collect();
    assert_eq!(simultaneous.len(), 2, "{ann_py:?}");
    assert!(
        simultaneous.iter().all(|r| r.cold == Some(true)),
        "{ann_py:?}"
    );
    assert!(ann_py.iter().any(|r| r.cold == Some(false)));
    // The burn action really burnt ~30 ms of CPU, seen by the monitor.
    for r in &ann_py {
        assert!(r.cpu_ns.unwrap() >= 25_000_000, "{r:?}");
    }
    // No container cgroup of this run's namespaces left behind by the embedded platform
    // (other tests of this file run embedded platforms at the same time, with their own
    // namespaces: their containers may legitimately exist right now).
    let layout = faasload_cgroup::Layout::detect().unwrap();
    for root in layout.roots() {
        let dir = root.join("faasload/platform");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let left: Vec<String> = entries
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("_ann_") || n.contains("_ben_"))
            .collect();
        assert!(
            left.is_empty(),
            "left behind in {}: {left:?}",
            dir.display()
        );
    }
}

#[test]
fn original_faasload_trace_directory_replays() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let trace = repo().join("config/traces/faasload-sample");
    let o = load(&[
        trace.to_str().unwrap(),
        "--embedded",
        "--quiet",
        "--store",
        &format!("sqlite://{}", db.display()),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let (status, rows) = rt().block_on(stored(&db));
    assert_eq!(status, LoadStatus::Completed);
    let planned: usize = std::fs::read_dir(&trace)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("user"))
        .map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count()
        })
        .sum();
    assert_eq!(rows.len(), planned);
    assert!(
        rows.iter()
            .all(|r| r.class == "success" && r.cpu_ns.is_some()),
        "{rows:?}"
    );
}

/// An original trace directory whose inputs are in per-user containers
/// (`userNNN/N.jpg`, the original FaaSLoad's naming) replays out of the box on the
/// embedded platform: the inputs it names are generated where it names them, every
/// invocation succeeds, and each row has its input's size. `faasload inputs --trace`
/// writes the same files.
#[test]
fn original_trace_with_per_user_inputs_replays_out_of_the_box() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    std::fs::create_dir(&trace).unwrap();
    std::fs::write(
        trace.join("user001-wand_blur-256-1-0.1"),
        "0\tuser001/15.jpg\tsigma:2.5\n0.5\tuser001/2.jpg\tsigma:10\n",
    )
    .unwrap();
    std::fs::write(
        trace.join("user002-sharp_resize-128-1-0.1"),
        "0.2\tuser002/3.png\twidth:200\n",
    )
    .unwrap();
    let db = dir.path().join("r.db");
    let o = Command::new(bin())
        .arg("load")
        .arg(&trace)
        .args(["--embedded", "--quiet", "--no-monitor", "--store"])
        .arg(format!("sqlite://{}", db.display()))
        .env_remove("FAASLOAD_STORE_DIR")
        .env("FAASLOAD_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let (status, rows) = rt().block_on(stored(&db));
    assert_eq!(status, LoadStatus::Completed);
    assert_eq!(rows.len(), 3);
    let size = |input: &str| {
        let (_, name) = input.split_once('/').unwrap();
        let (n, ext) = name.split_once('.').unwrap();
        faasload_inputs::render(
            faasload_inputs::DEFAULT_SEED,
            faasload_inputs::Kind::Image,
            n.parse().unwrap(),
        )
        .unwrap()
        .into_iter()
        .find(|(e, _)| *e == ext)
        .unwrap()
        .1
        .len() as i64
    };
    for r in &rows {
        assert_eq!(r.class, "success", "{r:?}");
        let input = r.input.as_deref().unwrap();
        assert_eq!(r.input_bytes, Some(size(input)), "{r:?}");
    }
    // The same inputs, written by `faasload inputs --trace`.
    let objects = dir.path().join("objects");
    let o = Command::new(bin())
        .args(["inputs", "--dir"])
        .arg(&objects)
        .arg("--trace")
        .arg(&trace)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    for input in ["user001/15.jpg", "user001/2.jpg", "user002/3.png"] {
        let len = std::fs::metadata(objects.join(input)).unwrap().len() as i64;
        assert_eq!(len, size(input), "{input}");
    }
    assert!(!objects.join("image").exists(), "only what the trace names");
}

#[test]
fn every_outcome_of_a_misbehaving_platform_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    // One action per behaviour; the fake platform answers by action name.
    let server = rt.block_on(FakeServer::start(|req, _| {
        let rec = |id: &str| {
            json!({"namespace": "guest", "name": "x", "version": "0.0.1", "subject": "guest",
                   "activationId": id, "start": 1, "end": 2, "duration": 1,
                   "response": {"result": {}, "size": 2, "status": "success", "success": true},
                   "logs": [], "publish": false,
                   "annotations": [{"key": "waitTime", "value": 1}]})
        };
        let path = req.target.as_str();
        if path.contains("/activations/") {
            return Reply::json(200, &rec("00000000000000000000000000000202"));
        }
        if path.contains("/actions/throttled") {
            Reply::json(429, &json!({"error": "Too many requests in the last minute (count: 61, allowed: 60).", "code": "x"}))
        } else if path.contains("/actions/bad_gateway") {
            Reply::text(502, "bad gateway")
        } else if path.contains("/actions/slow") {
            Reply::json(202, &json!({"activationId": "00000000000000000000000000000202"}))
        } else {
            Reply::json(200, &rec("00000000000000000000000000000001"))
        }
    }));
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let code = repo().join("functions/python/noop.py");
    let trace = dir.path().join("t.yaml");
    std::fs::write(
        &trace,
        format!(
            r#"users:
  - {{name: u, namespace: guest, auth: "a:b", api_host: "{url}"}}
  - {{name: gone, namespace: guest, auth: "a:b", api_host: "http://{refused}"}}
functions:
  - {{name: ok, kind: "python:3", code: {code}, memory: 128, timeout: 1000}}
  - {{name: throttled, kind: "python:3", code: {code}, memory: 128, timeout: 1000}}
  - {{name: bad_gateway, kind: "python:3", code: {code}, memory: 128, timeout: 1000}}
  - {{name: slow, kind: "python:3", code: {code}, memory: 128, timeout: 1000}}
streams:
  - {{user: u, function: ok, invocations: [{{at: 0}}]}}
  - {{user: u, function: throttled, invocations: [{{at: 0.01}}]}}
  - {{user: u, function: bad_gateway, invocations: [{{at: 0.02}}]}}
  - {{user: u, function: slow, invocations: [{{at: 0.03}}]}}
  - {{user: gone, function: ok, invocations: [{{at: 0.04}}]}}
"#,
            url = server.url(),
            code = code.display()
        ),
    )
    .unwrap();
    let db = dir.path().join("r.db");
    let o = load(&[
        trace.to_str().unwrap(),
        "--quiet",
        "--no-monitor",
        "--store",
        &format!("sqlite://{}", db.display()),
    ]);
    // Three failed invocations, none allowed by default: exit status 3, and the
    // summary names each failure.
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("Summary: 2 of 5 invocations succeeded, 3 failed"),
        "{out}"
    );
    for (class, seq) in [("throttled", 1), ("server_error", 2), ("refused", 4)] {
        assert!(
            out.lines().any(|l| l.trim_start().starts_with(class)
                && l.ends_with(&format!("first at seq {seq}"))),
            "{class}: {out}"
        );
    }
    assert!(out.contains("x HTTP 429: Too many requests"), "{out}");
    let (status, mut rows) = rt.block_on(stored(&db));
    assert_eq!(status, LoadStatus::Completed);
    rows.sort_by_key(|r| r.seq);
    let classes: Vec<(&str, Option<i64>)> = rows
        .iter()
        .map(|r| (r.class.as_str(), r.http_status))
        .collect();
    assert_eq!(
        classes,
        vec![
            ("success", Some(200)),
            ("throttled", Some(429)),
            ("server_error", Some(502)),
            ("success", Some(202)),
            ("refused", None),
        ]
    );
    assert!(rows[3].activation_id.is_some());
    assert!(
        rows.iter().all(|r| r.monitor_missing.is_some()),
        "rows say why no CPU/memory"
    );
}

#[test]
fn bad_traces_fail_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let server = rt.block_on(FakeServer::start(|_, _| Reply::json(200, &json!({}))));
    let code = repo().join("functions/python/noop.py");
    let head = format!(
        "users:\n  - {{name: u, namespace: guest, auth: \"a:b\", api_host: \"{}\"}}\nfunctions:\n  - {{name: f, kind: \"python:3\", code: {}, memory: 128, timeout: 1000}}\n",
        server.url(),
        code.display()
    );
    let cases = [
        (
            "unknown function",
            "streams:\n  - {user: u, function: nope, invocations: [{at: 0}]}\n",
            6,
        ),
        (
            "unknown user",
            "streams:\n  - {user: who, function: f, invocations: [{at: 0}]}\n",
            6,
        ),
        (
            "negative wait",
            "streams:\n  - user: u\n    function: f\n    invocations: [{wait: -1}]\n",
            8,
        ),
    ];
    for (what, tail, line) in cases {
        let p = dir.path().join("bad.yaml");
        std::fs::write(&p, format!("{head}{tail}")).unwrap();
        let o = load(&[
            p.to_str().unwrap(),
            "--quiet",
            "--no-monitor",
            "--no-store",
            "--deploy",
        ]);
        assert!(!o.status.success(), "{what}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        let want = format!("{}:{line}:", p.display());
        assert!(err.contains(&want), "{what}: expected {want} in:\n{err}");
    }
    assert!(
        server.requests().is_empty(),
        "nothing may be sent for a bad trace"
    );
}

#[test]
fn sigint_mid_run_keeps_every_completed_row() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let functions = repo().join("functions");
    let trace = dir.path().join("long.yaml");
    std::fs::write(
        &trace,
        format!(
            "users: [{{name: s, create: true}}]\nfunctions:\n  - {{name: h, kind: \"python:3\", code: {}/python/hello.py, memory: 128, timeout: 5000}}\nstreams:\n  - {{user: s, function: h, rate: 20, distribution: periodic, duration: 60}}\n",
            functions.display()
        ),
    )
    .unwrap();
    let db = dir.path().join("r.db");
    let child = Command::new(bin())
        .args([
            "load",
            trace.to_str().unwrap(),
            "--embedded",
            "--quiet",
            "--store",
        ])
        .arg(format!("sqlite://{}", db.display()))
        .env("FAASLOAD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once some rows are stored (the writer flushes every second), however
    // slow the machine is.
    let rt = rt();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let n = if db.exists() {
            rt.block_on(async {
                let s = Store::open(&format!("sqlite://{}", db.display()))
                    .await
                    .ok()?;
                let id = s.loads().await.ok()?.last()?.id;
                let n = s.rows(id).await.ok()?.len();
                s.close().await;
                Some(n)
            })
            .unwrap_or(0)
        } else {
            0
        };
        if n >= 30 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the replay made no progress"
        );
    }
    // Mid-run, the loader runs without transparent huge pages (steady memory for its
    // senders) while the actions its embedded platform started have the host's setting.
    let host_thp = thp_enabled(std::process::id()).unwrap();
    assert_eq!(thp_enabled(child.id()), Some(0), "the loader kept THP");
    // (An action process that ended in between is skipped; one at least is checked.)
    let actions: Vec<(u32, u32)> = descendants(child.id())
        .into_iter()
        .filter(|p| comm(*p).is_some_and(|c| c.starts_with("python")))
        .filter_map(|p| Some((p, thp_enabled(p)?)))
        .collect();
    assert!(!actions.is_empty(), "no action process under the loader");
    for (a, thp) in actions {
        assert_eq!(thp, host_thp, "action {a} lost the host's THP");
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(4), "interrupted: {}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("INTERRUPTED"), "{out}");
    let (status, rows) = rt.block_on(stored(&db));
    assert_eq!(status, LoadStatus::Interrupted);
    assert!(
        rows.len() > 20 && rows.len() < 1200,
        "{} rows\n{}",
        rows.len(),
        text(&o)
    );
    let n: usize = out
        .lines()
        .find_map(|l| {
            l.split(" invocations in ")
                .next()
                .filter(|_| l.contains(" invocations in "))
                .and_then(|s| s.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no summary line:\n{out}"));
    assert_eq!(rows.len(), n, "every completed invocation is stored");
    assert!(
        rows.iter().all(|r| r.class == "success"),
        "completed rows have their record"
    );
}

/// `THP_enabled` of process `pid` (/proc/PID/status), None if it is gone.
fn thp_enabled(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .and_then(|v| v.trim().parse().ok())
}

fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_owned())
}

/// Every live process below `root` (through /proc's parent links).
fn descendants(root: u32) -> Vec<u32> {
    let mut parent = std::collections::HashMap::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // The parent is the 4th field, after the parenthesised command.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(after) = stat.rsplit_once(") ").map(|(_, a)| a) else {
            continue;
        };
        if let Some(ppid) = after.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok()) {
            parent.insert(pid, ppid);
        }
    }
    let below = |mut p: u32| {
        while let Some(&pp) = parent.get(&p) {
            if pp == root {
                return true;
            }
            p = pp;
        }
        false
    };
    parent.keys().copied().filter(|p| below(*p)).collect()
}
