//! End-to-end tests of the Docker backend: the embedded platform in-process with
//! `backend: docker`, against the real private dockerd that `cargo xtask test` starts
//! (`FAASLOAD_TEST_DOCKER_HOST`) and the runtime images `cargo xtask images` builds. They
//! check the OpenWhisk behaviours tested for the process backend, with the same
//! scenarios (`faasload_tests::behaviours`): container flags and names,
//! cold/prewarm/warm starts, pause/resume through the freezer, OOM (from
//! `State.OOMKilled`, checked against dockerd's `oom` event, and a SIGKILL that is not an
//! OOM kill), timeout, crash, eviction, nodejs; the monitor measuring every activation of
//! Docker containers it discovers from their cgroups; and the loader replaying a trace
//! with the monitor answering for every activation. Tests fail (never skip) when Docker
//! is not there.
use std::process::Command;
use std::time::{Duration, Instant};

use faasload_platform::config::{GUEST_AUTH, PrewarmConfig};
use faasload_tests::behaviours;
use faasload_tests::docker::{docker, host, inspect};
use faasload_tests::loader::{load, py_js_trace, rt, stored, text};
use faasload_tests::monitor::Monitor;
use faasload_tests::platform::{TestPlatform, ann, docker_backend, http};
use serde_json::json;

/// Containers of this platform still known to dockerd.
fn ours(p: &TestPlatform) -> Vec<String> {
    docker(&[
        "ps",
        "-a",
        "--format",
        "{{.Names}}",
        "--filter",
        &format!("label=faasload.invoker={}", p.invoker),
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn docker_prewarm_cold_warm_with_openwhisk_flags_and_logs() {
    let mut p = TestPlatform::start(|c| {
        docker_backend(c);
        c.pool.prewarm = vec![PrewarmConfig {
            kind: "python:3".into(),
            count: 1,
            memory: 256,
        }];
    });
    p.wait_pool("a stem cell", Duration::from_secs(60), |c| {
        c.iter().any(|c| c.3)
    });
    let stem = p.containers().into_iter().find(|c| c.3).unwrap().0;
    assert!(stem.ends_with("_prewarm_python3"), "{stem}");
    p.deploy("hello", "python:3", "python/hello.py", json!({}));
    let r = p.invoke("hello", json!({"name": "Ada"}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let rec = r.json();
    assert_eq!(rec["response"]["result"]["greeting"], "Hello Ada!");
    assert_eq!(
        rec["response"]["result"]["activation_id"],
        rec["activationId"]
    );
    assert_eq!(rec["response"]["result"]["action_name"], "/guest/hello");
    assert!(
        ann(&rec, "initTime").is_some(),
        "a prewarm start runs /init"
    );
    let logs: Vec<&str> = rec["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.ends_with("stdout: hello from python: Ada")),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|l| l.ends_with("stderr: a line on stderr")),
        "{logs:?}"
    );
    assert!(
        p.containers().iter().any(|c| c.0 == stem && !c.3),
        "the stem cell serves it"
    );

    let warm = p.invoke("hello", json!({"name": "Bob"})).json();
    assert!(ann(&warm, "initTime").is_none(), "warm: {warm}");
    assert_eq!(warm["response"]["result"]["greeting"], "Hello Bob!");
    let logs = warm["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 2, "only this activation's logs: {logs:?}");

    // OpenWhisk's docker run flags.
    let i = inspect(&stem);
    let h = &i["HostConfig"];
    assert_eq!(h["Memory"], 256u64 << 20);
    assert_eq!(h["MemorySwap"], 256u64 << 20);
    assert_eq!(h["CpuShares"], 128);
    assert_eq!(h["PidsLimit"], 1024);
    assert_eq!(h["NetworkMode"], "bridge");
    assert_eq!(h["LogConfig"]["Type"], "json-file");
    assert_eq!(h["Ulimits"][0]["Name"], "nofile");
    assert_eq!(h["Ulimits"][0]["Soft"], 1024);
    assert_eq!(h["Ulimits"][0]["Hard"], 1024);
    let caps: Vec<&str> = h["CapDrop"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        caps.contains(&"NET_RAW") && caps.contains(&"NET_ADMIN"),
        "{caps:?}"
    );
    assert_eq!(i["Config"]["Image"], "faasload/action-python:latest");

    // A second action starts cold in a container named after it.
    p.deploy(
        "hello2",
        "python:3",
        "python/hello.py",
        json!({"limits": {"memory": 128}}),
    );
    let cold = p.invoke("hello2", json!({})).json();
    assert!(ann(&cold, "initTime").is_some());
    let name = p
        .containers()
        .into_iter()
        .map(|c| c.0)
        .find(|n| n.ends_with("_guest_hello2"))
        .expect("a container wsk<invoker>_<n>_guest_hello2");
    assert!(name.starts_with(&format!("{}_", p.invoker)), "{name}");
    assert_eq!(inspect(&name)["HostConfig"]["CpuShares"], 64);

    p.shutdown();
    assert!(
        ours(&p).is_empty(),
        "shutdown removes every container: {:?}",
        ours(&p)
    );
}

#[test]
fn docker_pause_after_grace_and_resume_on_reuse() {
    let p = TestPlatform::start(|c| {
        docker_backend(c);
        c.pool.pause_grace_ms = 100;
    });
    behaviours::pause_after_grace_and_resume_on_reuse(&p, |name| {
        inspect(name)["State"]["Paused"] == true
    });
}

#[test]
fn docker_failures_give_openwhisk_records() {
    let p = TestPlatform::start(docker_backend);
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .saturating_sub(1)
        .to_string();
    behaviours::crash_record(&p);
    p.wait_pool("crashed container removed", Duration::from_secs(10), |c| {
        c.is_empty()
    });

    behaviours::timeout_record(&p, 3000);
    p.wait_pool(
        "timed-out container removed",
        Duration::from_secs(10),
        |c| c.is_empty(),
    );

    behaviours::oom_record(&p);
    // Docker's own view: the kernel OOM-killed a container of this platform (dockerd's
    // `oom` event, the one that sets `State.OOMKilled`), which the platform destroyed.
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let label = format!("label=faasload.invoker={}", p.invoker);
    let ooms = docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "event=oom",
        "--filter",
        &label,
        "--format",
        "{{.Actor.Attributes.name}}",
    ]);
    assert!(
        ooms.lines().any(|n| n.ends_with("_guest_alloc")),
        "dockerd saw no OOM kill of the alloc container: {ooms:?}"
    );
    behaviours::within_the_memory_limit_it_works(&p);

    // Killed by SIGKILL but not by the OOM killer (`State.OOMKilled` false): a crash, not
    // a memory record, although the exit status is the same as an OOM kill's.
    let b = json!({"exec": {"kind": "python:3", "code":
        "import os, signal\n\ndef main(a):\n    os.kill(os.getpid(), signal.SIGKILL)\n"}});
    let r = p.call("PUT", "/api/v1/namespaces/_/actions/kill9", Some(&b));
    assert_eq!(r.status, 200);
    let r = p.invoke("kill9", json!({}));
    assert_eq!(r.status, 502);
    let rec = r.json();
    assert_eq!(
        rec["response"]["result"]["error"],
        "The action did not produce a valid response and exited unexpectedly.",
        "{rec}"
    );

    p.deploy("error", "python:3", "python/error.py", json!({}));
    let rec = p.invoke("error", json!({"why": "test"})).json();
    assert_eq!(rec["response"]["status"], "application error");
    assert_eq!(
        rec["response"]["result"]["error"],
        "something went wrong: test"
    );
    let kept = p.containers().len();

    // An init failure: the runtime's error is the record's, the container is removed.
    let b = json!({"exec": {"kind": "python:3", "code": "def nope(a):\n    return {}\n"}});
    let r = p.call("PUT", "/api/v1/namespaces/_/actions/nomain", Some(&b));
    assert_eq!(r.status, 200);
    let rec = p.invoke("nomain", json!({})).json();
    assert_eq!(rec["response"]["status"], "action developer error", "{rec}");
    let e = rec["response"]["result"]["error"].as_str().unwrap();
    assert!(e.contains("main"), "{rec}");
    assert!(ann(&rec, "initTime").is_some());
    p.wait_pool("init failure removed", Duration::from_secs(10), |c| {
        c.len() == kept
    });
    let end = Instant::now() + Duration::from_secs(10);
    while ours(&p).len() != p.containers().len() {
        assert!(
            Instant::now() < end,
            "destroyed containers stay in docker: {:?}",
            ours(&p)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn docker_eviction_under_the_memory_budget_and_nodejs() {
    let p = TestPlatform::start(|c| {
        docker_backend(c);
        c.pool.user_memory_mb = 512;
        c.limits.memory_max = 512;
    });
    let a = behaviours::eviction_of_the_lru_idle_container(&p);
    let end = Instant::now() + Duration::from_secs(10);
    while ours(&p).contains(&a) {
        assert!(
            Instant::now() < end,
            "the evicted container is never removed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    p.deploy(
        "js",
        "nodejs:20",
        "nodejs/hello.js",
        json!({"limits": {"memory": 256}}),
    );
    let r = p.invoke("js", json!({"name": "Node"}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let rec = r.json();
    assert_eq!(rec["response"]["status"], "success", "{rec}");
    assert!(!rec["logs"].as_array().unwrap().is_empty(), "{rec}");
    p.deploy(
        "jscrash",
        "nodejs:20",
        "nodejs/crash.js",
        json!({"limits": {"memory": 256}}),
    );
    let rec = p.invoke("jscrash", json!({})).json();
    assert_eq!(
        rec["response"]["result"]["error"],
        "The action did not produce a valid response and exited unexpectedly."
    );
}

#[test]
fn docker_activations_are_measured_by_the_monitor() {
    let m = Monitor::start("");
    let sock = m.notify.clone();
    let p = TestPlatform::start(move |c| {
        docker_backend(c);
        c.notify_socket = Some(sock);
        c.pool.pause_grace_ms = 50;
    });
    p.deploy("burn", "python:3", "python/burn.py", json!({}));
    p.deploy("hello", "python:3", "python/hello.py", json!({}));
    // A small trace: cold, warm and paused-then-resumed runs of two actions.
    let trace = [
        ("burn", json!({"ms": 200, "mb": 32}), 0u64),
        ("hello", json!({}), 0),
        ("burn", json!({"ms": 100, "mb": 16}), 300),
        ("hello", json!({}), 0),
        ("burn", json!({"ms": 50, "mb": 8}), 0),
    ];
    for (action, params, pause_ms) in trace {
        std::thread::sleep(Duration::from_millis(pause_ms));
        let r = p.invoke(action, params.clone());
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let rec = r.json();
        let id = rec["activationId"].as_str().unwrap();
        let s = m.activation(id, Some(5000));
        assert_eq!(s.activation_id, id, "{s:?}");
        let cid = s.container.as_str();
        let name = p
            .containers()
            .into_iter()
            .map(|c| c.0)
            .find(|n| n.ends_with(&format!("_guest_{action}")))
            .unwrap();
        assert_eq!(
            inspect(&name)["Id"],
            cid,
            "the monitor names the docker container: {s:?}"
        );
        let cpu = s.cpu_ns.unwrap_or_else(|| panic!("no CPU time: {s:?}"));
        if action == "burn" {
            let ms = params["ms"].as_u64().unwrap();
            assert!(
                cpu >= ms * 1_000_000 * 8 / 10,
                "CPU {cpu} ns for a {ms} ms burn: {s:?}"
            );
            let mb = params["mb"].as_u64().unwrap();
            let peak = s.mem_peak_bytes.unwrap_or_else(|| panic!("no peak: {s:?}"));
            assert!(
                peak >= mb << 20,
                "peak {peak} B while holding {mb} MB: {s:?}"
            );
        }
    }
}

/// The platform process of a test, killed if the test fails before stopping it.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn binary_with_backend_docker_flag_serves_and_cleans_up() {
    faasload_tests::platform::require_root();
    let dir = tempfile::tempdir().unwrap();
    let invoker = format!("wskdbin{}", std::process::id());
    let cfg = dir.path().join("platform.yml");
    std::fs::write(
        &cfg,
        format!(
            "listen: 127.0.0.1:0\nwork_dir: {}\nnotify_socket: null\npool:\n  invoker_name: {invoker}\n  prewarm: [{{kind: \"nodejs:20\", count: 1, memory: 256}}]\n",
            dir.path().join("work").display()
        ),
    )
    .unwrap();
    let mut child = Child(
        Command::new(faasload_tests::platform::faasload_bin())
            .args([
                "platform",
                "--backend",
                "docker",
                "--docker-host",
                &host(),
                "--config",
            ])
            .arg(&cfg)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut out = std::io::BufReader::new(child.0.stdout.take().unwrap());
    let addr = faasload_tests::platform::listening_addr(&mut out);
    let code =
        std::fs::read_to_string(faasload_tests::platform::functions().join("nodejs/hello.js"))
            .unwrap();
    let body = serde_json::to_vec(&json!({"exec": {"kind": "nodejs:20", "code": code}})).unwrap();
    let api = "/api/v1/namespaces/_/actions/hello";
    assert_eq!(
        http(addr, "PUT", api, Some(GUEST_AUTH), &[], &body).status,
        200
    );
    let r = http(
        addr,
        "POST",
        &format!("{api}?blocking=true"),
        Some(GUEST_AUTH),
        &[],
        b"{}",
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let label = format!("label=faasload.invoker={invoker}");
    let names = || docker(&["ps", "-a", "--format", "{{.Names}}", "--filter", &label]);
    let end = Instant::now() + Duration::from_secs(30);
    // The action's container and a stem cell (the first one, or its replacement when
    // the action took it).
    while !(names().lines().count() >= 2
        && names().lines().any(|n| n.ends_with("_prewarm_nodejs20")))
    {
        assert!(
            Instant::now() < end,
            "no action container and stem cell: {}",
            names()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let st = child.0.wait().unwrap();
    assert!(st.success(), "clean exit on SIGTERM: {st}");
    assert_eq!(names(), "", "every container removed");
}

/// A trace replayed by the real loader (`faasload load`) against the platform on the
/// Docker backend, with the monitor answering for every activation.
#[test]
fn loader_replays_a_trace_on_docker_with_the_monitor() {
    let m = Monitor::start("");
    let sock = m.notify.clone();
    let p = TestPlatform::start(move |c| {
        docker_backend(c);
        c.notify_socket = Some(sock);
        c.pool.pause_grace_ms = 50;
    });
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.yaml");
    let users = format!("  - {{name: ann, namespace: guest, auth: \"{GUEST_AUTH}\"}}");
    std::fs::write(&trace, py_js_trace(&users, "ann", "", "")).unwrap();
    let db = dir.path().join("r.db");
    let api = format!("http://{}", p.addr);
    let o = load(&[
        trace.to_str().unwrap(),
        "--api-host",
        &api,
        "--deploy",
        "--quiet",
        "--monitor-socket",
        m.query.to_str().unwrap(),
        "--store",
        &format!("sqlite://{}", db.display()),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let (_, rows) = rt().block_on(stored(&db));
    assert_eq!(rows.len(), 8, "every invocation has a row");
    // The monitor answered for every activation, with the Docker container of this
    // platform that ran it.
    let ids = docker(&[
        "ps",
        "-a",
        "--no-trunc",
        "--format",
        "{{.ID}}",
        "--filter",
        &format!("label=faasload.invoker={}", p.invoker),
    ]);
    for r in &rows {
        let id = r.activation_id.as_deref().expect("an activation id");
        let cid = r
            .container
            .as_deref()
            .unwrap_or_else(|| panic!("no container from the monitor: {r:?}"));
        assert!(
            ids.lines().any(|l| l == cid),
            "{cid} is not a container of this platform ({ids}): {r:?}"
        );
        let s = m.activation(id, None);
        assert_eq!(s.container, cid, "{s:?}");
        assert_eq!(s.cpu_ns.map(|c| c as i64), r.cpu_ns, "{s:?}");
        assert_eq!(r.class, "success", "{r:?}");
        assert_eq!(r.cold, Some(r.init_ms.is_some()), "{r:?}");
        assert!(
            r.cpu_ns.is_some_and(|c| c > 0),
            "CPU from the monitor: {r:?}"
        );
        assert!(
            r.mem_peak_bytes.is_some_and(|b| b > 0),
            "memory from the monitor: {r:?}"
        );
        assert!(r.monitor_missing.is_none(), "{r:?}");
        if r.function == "py" {
            assert!(r.cpu_ns.unwrap() >= 25_000_000, "a 30 ms burn: {r:?}");
        }
    }
    assert!(
        rows.iter().any(|r| r.cold == Some(true)),
        "the first invocations start cold: {rows:?}"
    );
}
