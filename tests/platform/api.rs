//! End-to-end tests of the embedded platform (`faasload platform`): the real server over
//! HTTP, real cgroups and real action processes, as root. They cover OpenWhisk's API
//! semantics and texts, activation records, the container pool rules, the runtimes and
//! the failure records.
use std::time::{Duration, Instant};

use faasload_platform::config::{GUEST_AUTH, NamespaceConfig};
use faasload_protocol::monitor::{
    ContainerAction, Notification, NotificationKind, Request, Socket,
};
use faasload_tests::behaviours;
use faasload_tests::platform::{TestPlatform, ann, http};
use serde_json::json;

const API: &str = "/api/v1/namespaces";

fn err_text(r: &faasload_tests::platform::Resp) -> String {
    let v = r.json();
    assert!(
        v["code"].as_str().is_some_and(|c| !c.is_empty()),
        "error body without code: {v}"
    );
    assert_eq!(
        r.header("x-request-id"),
        v["code"].as_str(),
        "X-Request-ID must equal the code"
    );
    v["error"].as_str().unwrap().to_string()
}

#[test]
fn api_auth_namespaces_and_errors() {
    let p = TestPlatform::start(|_| {});
    let r = http(p.addr, "GET", "/api/v1", None, &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["api_paths"][0], "/api/v1");

    let r = http(p.addr, "GET", &format!("{API}?"), None, &[], b"");
    assert_eq!(r.status, 401);
    assert_eq!(
        err_text(&r),
        "The resource requires authentication, which was not supplied with the request"
    );
    let bad = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:wrong";
    let r = http(p.addr, "GET", API, Some(bad), &[], b"");
    assert_eq!(r.status, 401);
    assert_eq!(err_text(&r), "The supplied authentication is invalid");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"OpenWhisk secure realm\"")
    );

    let r = http(
        p.addr,
        "GET",
        &format!("{API}?"),
        Some(GUEST_AUTH),
        &[("X-Request-ID", "my-tx-1")],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!(["guest"]));
    assert_eq!(r.header("x-request-id"), Some("my-tx-1"));

    let r = p.call("GET", &format!("{API}/someoneelse/actions/x"), None);
    assert_eq!(r.status, 403);
    assert_eq!(
        err_text(&r),
        "The supplied authentication is not authorized to access 'someoneelse/actions/x'."
    );

    let r = p.call("GET", &format!("{API}/_/limits"), None);
    assert_eq!(r.status, 200);
    assert!(r.json()["invocationsPerMinute"].as_u64().is_some());

    let r = p.call("GET", "/api/v1/nothing/here", None);
    assert_eq!(r.status, 404);
    assert_eq!(err_text(&r), "The requested resource does not exist.");
    let r = p.call("GET", &format!("{API}/_/actions/missing"), None);
    assert_eq!(r.status, 404);
    assert_eq!(err_text(&r), "The requested resource does not exist.");
}

#[test]
fn actions_crud_limits_and_packages() {
    let p = TestPlatform::start(|_| {});
    let code =
        std::fs::read_to_string(faasload_tests::platform::functions().join("python/hello.py"))
            .unwrap();
    let body = json!({"exec": {"kind": "python:3", "code": code}, "parameters": [{"key": "name", "value": "action"}]});
    let r = p.call("PUT", &format!("{API}/_/actions/hello"), Some(&body));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let a = r.json();
    assert_eq!(a["version"], "0.0.1");
    assert_eq!(a["namespace"], "guest");
    assert_eq!(ann(&a, "exec"), Some(&json!("python:3")));
    assert_eq!(ann(&a, "provide-api-key"), Some(&json!(false)));
    assert_eq!(
        a["limits"],
        json!({"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1})
    );

    let r = p.call("PUT", &format!("{API}/_/actions/hello"), Some(&body));
    assert_eq!(r.status, 409);
    assert_eq!(err_text(&r), "resource already exists");
    let r = p.call(
        "PUT",
        &format!("{API}/_/actions/hello?overwrite=true"),
        Some(&json!({"limits": {"memory": 128}})),
    );
    assert_eq!(r.status, 200);
    let a = r.json();
    assert_eq!(a["version"], "0.0.2");
    assert_eq!(a["limits"]["memory"], 128);
    assert_eq!(a["exec"]["code"], code.as_str());

    let r = p.call("GET", &format!("{API}/_/actions/hello?code=false"), None);
    assert_eq!(r.status, 200);
    assert!(r.json()["exec"].get("code").is_none());
    assert_eq!(r.json()["exec"]["kind"], "python:3");

    for (limits, text) in [
        (
            json!({"memory": 1024}),
            "memory size 1024 MB exceeds allowed threshold of 512 MB",
        ),
        (
            json!({"memory": 64}),
            "memory size 64 MB below allowed threshold of 128 MB",
        ),
        (
            json!({"timeout": 50}),
            "duration 50 milliseconds below allowed threshold of 100 milliseconds",
        ),
        (
            json!({"timeout": 300001}),
            "duration 300001 milliseconds exceeds allowed threshold of 300000 milliseconds",
        ),
        (
            json!({"logs": 11}),
            "log size 11 MB exceeds allowed threshold of 10 MB",
        ),
        (
            json!({"concurrency": 2}),
            "concurrency 2 exceeds allowed threshold of 1",
        ),
    ] {
        let b = json!({"exec": {"kind": "python:3", "code": code}, "limits": limits});
        let r = p.call("PUT", &format!("{API}/_/actions/limited"), Some(&b));
        assert_eq!(r.status, 400, "{limits}");
        assert_eq!(err_text(&r), text);
    }
    let r = http(
        p.addr,
        "PUT",
        &format!("{API}/_/actions/bad"),
        Some(GUEST_AUTH),
        &[],
        b"{not json",
    );
    assert_eq!(r.status, 400);
    assert!(err_text(&r).starts_with("The request content was malformed:"));
    let r = p.call(
        "PUT",
        &format!("{API}/_/actions/nokind"),
        Some(&json!({"exec": {"kind": "cobol:1", "code": "x"}})),
    );
    assert_eq!(r.status, 400);
    assert!(err_text(&r).starts_with("kind 'cobol:1' not in Set("));

    let r = p.call("GET", &format!("{API}/_/actions?limit=10&skip=0"), None);
    assert_eq!(r.status, 200);
    let list = r.json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["hello"]);
    let r = p.call("GET", &format!("{API}/_/actions?limit=201"), None);
    assert_eq!(r.status, 400);
    assert_eq!(
        err_text(&r),
        "The value '201' is not in the range of 0 to 200 for actions."
    );

    // Packages: package < action < invoke parameters.
    let r = p.call("PUT", &format!("{API}/_/actions/pkg/hello"), Some(&body));
    assert_eq!(r.status, 404, "an action in a missing package");
    let r = p.call(
        "PUT",
        &format!("{API}/_/packages/pkg"),
        Some(
            &json!({"parameters": [{"key": "name", "value": "package"}, {"key": "p", "value": 1}]}),
        ),
    );
    assert_eq!(r.status, 200);
    let b = json!({"exec": {"kind": "python:3", "code": code}, "parameters": [{"key": "a", "value": 2}, {"key": "p", "value": 2}]});
    let r = p.call("PUT", &format!("{API}/_/actions/pkg/hello"), Some(&b));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["namespace"], "guest/pkg");
    let r = p.call(
        "POST",
        &format!("{API}/_/actions/pkg/hello?blocking=true&result=true"),
        Some(&json!({"a": 3})),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["params"],
        json!({"name": "package", "p": 2, "a": 3})
    );
    let r = p.call("DELETE", &format!("{API}/_/packages/pkg"), None);
    assert_eq!(r.status, 409);
    assert_eq!(
        p.call("DELETE", &format!("{API}/_/actions/pkg/hello"), None)
            .status,
        200
    );
    assert_eq!(
        p.call("DELETE", &format!("{API}/_/packages/pkg"), None)
            .status,
        200
    );

    let r = p.call("DELETE", &format!("{API}/_/actions/hello"), None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["name"], "hello");
    assert_eq!(
        p.call("GET", &format!("{API}/_/actions/hello"), None)
            .status,
        404
    );
    assert_eq!(
        p.call("DELETE", &format!("{API}/_/actions/hello"), None)
            .status,
        404
    );
}

#[test]
fn records_cold_then_warm_logs_and_activation_queries() {
    let p = TestPlatform::start(|_| {});
    p.deploy("hello", "python:3", "python/hello.py", json!({}));
    let before = faasload_platform::now_ms();
    let r = p.invoke("hello", json!({"name": "Ada"}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let cold = r.json();
    let id = cold["activationId"].as_str().unwrap();
    assert_eq!(r.header("x-openwhisk-activation-id"), Some(id));
    assert!(faasload_platform::is_activation_id(id));
    assert_eq!(cold["response"]["status"], "success");
    assert_eq!(cold["response"]["success"], true);
    assert_eq!(cold["response"]["result"]["greeting"], "Hello Ada!");
    assert_eq!(
        cold["response"]["result"]["activation_id"], id,
        "__OW_ACTIVATION_ID"
    );
    assert_eq!(cold["response"]["result"]["action_name"], "/guest/hello");
    assert_eq!(
        cold["response"]["size"].as_u64().unwrap() as usize,
        serde_json::to_vec(&cold["response"]["result"])
            .unwrap()
            .len()
    );
    assert_eq!(cold["subject"], "guest");
    assert_eq!(cold["namespace"], "guest");
    assert_eq!(cold["name"], "hello");
    assert_eq!(cold["version"], "0.0.1");
    assert_eq!(cold["publish"], false);
    let (start, end, dur) = (
        cold["start"].as_u64().unwrap(),
        cold["end"].as_u64().unwrap(),
        cold["duration"].as_u64().unwrap(),
    );
    assert_eq!(dur, end - start);
    assert!(start >= before);
    let init = ann(&cold, "initTime")
        .expect("a cold start has initTime")
        .as_u64()
        .unwrap();
    assert!(dur >= init, "duration includes init");
    assert!(ann(&cold, "waitTime").unwrap().as_u64().is_some());
    assert_eq!(ann(&cold, "path"), Some(&json!("guest/hello")));
    assert_eq!(ann(&cold, "kind"), Some(&json!("python:3")));
    assert_eq!(ann(&cold, "timeout"), Some(&json!(false)));
    assert_eq!(ann(&cold, "limits").unwrap()["memory"], 256);
    let logs: Vec<&str> = cold["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(logs.len(), 2, "{logs:?}");
    for l in &logs {
        assert!(
            l.len() > 31 && l.as_bytes()[30] == b' ',
            "time padded to 30: {l:?}"
        );
        assert!(
            l[..30].trim_end().ends_with('Z') && l.starts_with("20"),
            "{l:?}"
        );
    }
    assert!(
        logs.iter()
            .any(|l| &l[31..] == "stdout: hello from python: Ada"),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|l| &l[31..] == "stderr: a line on stderr"),
        "{logs:?}"
    );
    assert_eq!(p.containers().len(), 1);

    let warm = p.invoke("hello", json!({"name": "Bob"})).json();
    assert!(
        ann(&warm, "initTime").is_none(),
        "a warm start has no initTime"
    );
    assert_eq!(p.containers().len(), 1, "the warm container is reused");

    let r = p.call(
        "POST",
        &format!("{API}/_/actions/hello?blocking=true&result=true"),
        Some(&json!({"name": "C"})),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["greeting"], "Hello C!");

    let r = p.call(
        "POST",
        &format!("{API}/_/actions/hello"),
        Some(&json!({"name": "D"})),
    );
    assert_eq!(r.status, 202);
    let aid = r.json()["activationId"].as_str().unwrap().to_string();
    assert_eq!(r.header("x-openwhisk-activation-id"), Some(aid.as_str()));
    let rec = p.wait_record(&aid, Duration::from_secs(20));
    assert_eq!(rec["response"]["result"]["greeting"], "Hello D!");

    let r = p.call("GET", &format!("{API}/_/activations/{id}/logs"), None);
    assert_eq!(r.json()["logs"].as_array().unwrap().len(), 2);
    let r = p.call("GET", &format!("{API}/_/activations/{id}/result"), None);
    assert_eq!(r.json()["status"], "success");
    assert_eq!(r.json()["result"]["greeting"], "Hello Ada!");
    let r = p.call(
        "GET",
        &format!("{API}/_/activations?name=hello&limit=2"),
        None,
    );
    let l = r.json();
    assert_eq!(l.as_array().unwrap().len(), 2);
    assert_eq!(l[0]["activationId"], aid.as_str(), "newest first");
    assert_eq!(l[0]["statusCode"], 0);
    assert!(l[0].get("response").is_none() && l[0].get("logs").is_none());
    let r = p.call(
        "GET",
        &format!("{API}/_/activations?docs=true&skip=3&limit=5"),
        None,
    );
    let l = r.json();
    assert_eq!(l.as_array().unwrap().len(), 1);
    assert_eq!(l[0]["activationId"], id);
    assert!(l[0]["response"]["result"].is_object());
    let r = p.call(
        "GET",
        &format!("{API}/_/activations?since={start}&upto={start}"),
        None,
    );
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    assert_eq!(
        p.call("GET", &format!("{API}/_/activations?name=other"), None)
            .json(),
        json!([])
    );
    let r = p.call("GET", &format!("{API}/_/activations?since=yesterday"), None);
    assert_eq!(r.status, 400);
    assert_eq!(
        err_text(&r),
        "Parameter is not a valid value for epoch seconds: yesterday"
    );
    let r = p.call("GET", &format!("{API}/_/activations/nothex"), None);
    assert_eq!(r.status, 400);
    let r = p.call(
        "GET",
        &format!("{API}/_/activations/{}", "0".repeat(32)),
        None,
    );
    assert_eq!(r.status, 404);
}

#[test]
fn blocking_wait_expiry_answers_202_and_the_record_comes_later() {
    let p = TestPlatform::start(|_| {});
    p.deploy("sleep", "python:3", "python/sleep.py", json!({}));
    let r = p.call(
        "POST",
        &format!("{API}/_/actions/sleep?blocking=true&timeout=200"),
        Some(&json!({"ms": 1500})),
    );
    assert_eq!(r.status, 202);
    let id = r.json()["activationId"].as_str().unwrap().to_string();
    assert_eq!(r.json().as_object().unwrap().len(), 1);
    assert_eq!(
        p.call("GET", &format!("{API}/_/activations/{id}"), None)
            .status,
        404
    );
    let rec = p.wait_record(&id, Duration::from_secs(20));
    assert_eq!(rec["response"]["result"]["slept_ms"], 1500);
    for t in ["0", "60001", "abc"] {
        let r = p.call(
            "POST",
            &format!("{API}/_/actions/sleep?blocking=true&timeout={t}"),
            Some(&json!({})),
        );
        assert_eq!(r.status, 400);
        assert_eq!(
            err_text(&r),
            "Timeout must be number of milliseconds up to 60000."
        );
    }
    let big = json!({"x": "y".repeat(1_100_000)});
    let r = p.call("POST", &format!("{API}/_/actions/sleep"), Some(&big));
    assert_eq!(r.status, 413);
    assert!(err_text(&r).starts_with("Request larger than allowed: "));
}

#[test]
fn failures_give_openwhisk_records() {
    let p = TestPlatform::start(|_| {});
    p.deploy("error", "python:3", "python/error.py", json!({}));
    let r = p.invoke("error", json!({"why": "test"}));
    assert_eq!(r.status, 502);
    let rec = r.json();
    assert_eq!(rec["response"]["status"], "application error");
    assert_eq!(rec["response"]["success"], false);
    assert_eq!(
        rec["response"]["result"]["error"],
        "something went wrong: test"
    );
    let kept = p.containers();
    assert_eq!(
        kept.len(),
        1,
        "an application error keeps the container warm"
    );
    let warm = p.invoke("error", json!({})).json();
    assert!(ann(&warm, "initTime").is_none());

    behaviours::crash_record(&p);
    p.wait_pool("crashed container removed", Duration::from_secs(10), |c| {
        c.len() == 1
    });

    behaviours::timeout_record(&p, 500);
    p.wait_pool(
        "timed-out container removed",
        Duration::from_secs(10),
        |c| c.len() == 1,
    );
    let end = Instant::now() + Duration::from_secs(10);
    while p.leftover_cgroups() != vec![kept[0].0.clone()] {
        assert!(
            Instant::now() < end,
            "the timed-out container's cgroup is never removed: {:?}",
            p.leftover_cgroups()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    behaviours::oom_record(&p);
    behaviours::within_the_memory_limit_it_works(&p);

    let code = "def main(a):\n    return 42\n";
    let b = json!({"exec": {"kind": "python:3", "code": code}});
    assert_eq!(
        p.call("PUT", &format!("{API}/_/actions/scalar"), Some(&b))
            .status,
        200
    );
    let rec = p.invoke("scalar", json!({})).json();
    assert_eq!(
        rec["response"]["result"]["error"],
        "The action did not return a dictionary or array."
    );
    let b = json!({"exec": {"kind": "python:3", "code": "def nope(a):\n    return {}\n"}});
    assert_eq!(
        p.call("PUT", &format!("{API}/_/actions/nomain"), Some(&b))
            .status,
        200
    );
    let rec = p.invoke("nomain", json!({})).json();
    assert_eq!(rec["response"]["status"], "action developer error");
    assert!(ann(&rec, "initTime").is_some());
}

#[test]
fn containers_have_openwhisk_names_and_cgroup_limits() {
    let p = TestPlatform::start(|_| {});
    p.deploy("hello", "python:3", "python/hello.py", json!({}));
    assert_eq!(p.invoke("hello", json!({})).status, 200);
    let c = p.containers();
    let name = &c[0].0;
    assert!(
        name.starts_with(&format!("{}_", p.invoker)) && name.ends_with("_guest_hello"),
        "{name}"
    );
    let layout = faasload_cgroup::Layout::detect().unwrap();
    match layout.version() {
        faasload_cgroup::Version::V1 => {
            let mem =
                std::fs::read_to_string(p.cgroup_dir("memory", name).join("memory.limit_in_bytes"))
                    .unwrap();
            assert_eq!(mem.trim(), (256u64 << 20).to_string());
            let shares =
                std::fs::read_to_string(p.cgroup_dir("cpu", name).join("cpu.shares")).unwrap();
            assert_eq!(shares.trim(), "128");
            let pids =
                std::fs::read_to_string(p.cgroup_dir("pids", name).join("pids.max")).unwrap();
            assert_eq!(pids.trim(), "1024");
            let procs =
                std::fs::read_to_string(p.cgroup_dir("cpu", name).join("cgroup.procs")).unwrap();
            assert!(
                procs.lines().count() >= 2,
                "the container's processes are in its cgroup: {procs}"
            );
        }
        faasload_cgroup::Version::V2 => {
            let procs =
                std::fs::read_to_string(p.cgroup_dir("", name).join("cgroup.procs")).unwrap();
            assert!(procs.lines().count() >= 2);
        }
    }
}

#[test]
fn pause_after_grace_and_resume_on_reuse() {
    let p = TestPlatform::start(|c| c.pool.pause_grace_ms = 100);
    let layout = faasload_cgroup::Layout::detect().unwrap();
    behaviours::pause_after_grace_and_resume_on_reuse(&p, |name| {
        faasload_cgroup::CgroupReader::open(
            &layout,
            std::path::Path::new(&format!("faasload/platform/{name}")),
        )
        .frozen()
        .unwrap_or(false)
    });
}

#[test]
fn an_update_makes_old_containers_unusable() {
    let p = TestPlatform::start(|_| {});
    p.deploy("hello", "python:3", "python/hello.py", json!({}));
    assert!(ann(&p.invoke("hello", json!({})).json(), "initTime").is_some());
    let old = p.containers()[0].0.clone();
    p.deploy(
        "hello",
        "python:3",
        "python/hello.py",
        json!({"parameters": [{"key": "name", "value": "v2"}]}),
    );
    let rec = p.invoke("hello", json!({})).json();
    assert_eq!(rec["version"], "0.0.2");
    assert!(
        ann(&rec, "initTime").is_some(),
        "the new revision starts cold"
    );
    assert_eq!(rec["response"]["result"]["greeting"], "Hello v2!");
    let names: Vec<String> = p.containers().into_iter().map(|c| c.0).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&old));
}

#[test]
fn eviction_and_fifo_queue_under_the_memory_budget() {
    let p = TestPlatform::start(|c| {
        c.pool.user_memory_mb = 512;
        c.limits.memory_max = 512;
    });
    behaviours::eviction_of_the_lru_idle_container(&p);

    // Both slots busy: a third run waits in the queue until one ends.
    let r1 = p.call(
        "POST",
        &format!("{API}/_/actions/b?blocking=false"),
        Some(&json!({"ms": 1500})),
    );
    let r2 = p.call(
        "POST",
        &format!("{API}/_/actions/c"),
        Some(&json!({"ms": 1500})),
    );
    assert_eq!((r1.status, r2.status), (202, 202));
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let rec = p.invoke("a", json!({"ms": 1})).json();
    assert_eq!(rec["response"]["status"], "success");
    assert!(
        t0.elapsed() >= Duration::from_millis(800),
        "the run waited for a free slot"
    );
    assert!(ann(&rec, "waitTime").unwrap().as_u64().unwrap() >= 800);
}

#[test]
fn prewarmed_stem_cells_serve_cold_starts() {
    let p = TestPlatform::start(|c| {
        c.pool.prewarm = vec![faasload_platform::config::PrewarmConfig {
            kind: "python:3".into(),
            count: 1,
            memory: 256,
        }];
    });
    p.wait_pool("a stem cell", Duration::from_secs(10), |c| {
        c.iter().any(|c| c.3)
    });
    let stem = p.containers().into_iter().find(|c| c.3).unwrap().0;
    assert!(stem.ends_with("_prewarm_python3"), "{stem}");
    p.deploy("hello", "python:3", "python/hello.py", json!({}));
    let rec = p.invoke("hello", json!({})).json();
    assert!(
        ann(&rec, "initTime").is_some(),
        "a prewarm start runs /init"
    );
    let wait = ann(&rec, "waitTime").unwrap().as_u64().unwrap();
    assert!(wait < 1000, "no container creation in waitTime: {wait}");
    let used = p.containers();
    assert!(
        used.iter().any(|c| c.0 == stem && !c.3),
        "the stem cell now serves the action: {used:?}"
    );
    p.wait_pool("a replacement stem cell", Duration::from_secs(10), |c| {
        c.iter().any(|c| c.3 && c.0 != stem)
    });
}

#[test]
fn rate_limits_answer_429() {
    let p = TestPlatform::start(|c| {
        c.namespaces = vec![NamespaceConfig {
            invocations_per_minute: Some(2),
            concurrent_invocations: Some(1),
            ..NamespaceConfig::guest()
        }];
    });
    p.deploy("sleep", "python:3", "python/sleep.py", json!({}));
    // Stay within one calendar minute.
    let sec = (faasload_platform::now_ms() / 1000) % 60;
    if sec > 50 {
        std::thread::sleep(Duration::from_secs(61 - sec));
    }
    let r = p.call(
        "POST",
        &format!("{API}/_/actions/sleep"),
        Some(&json!({"ms": 1000})),
    );
    assert_eq!(r.status, 202);
    let r = p.call(
        "POST",
        &format!("{API}/_/actions/sleep"),
        Some(&json!({"ms": 1})),
    );
    assert_eq!(r.status, 429);
    assert_eq!(
        err_text(&r),
        "Too many concurrent requests in flight (count: 1, allowed: 1)."
    );
    // Wait for the first to end, then use the second (and last) slot of the minute.
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let r = p.call("GET", &format!("{API}/_/activations"), None);
        if r.json().as_array().unwrap().len() == 1 {
            break;
        }
        assert!(Instant::now() < end);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(p.invoke("sleep", json!({"ms": 1})).status, 200);
    let r = p.invoke("sleep", json!({"ms": 1}));
    assert_eq!(r.status, 429);
    assert_eq!(
        err_text(&r),
        "Too many requests in the last minute (count: 3, allowed: 2)."
    );
}

#[test]
fn nodejs_and_native_runtimes() {
    let p = TestPlatform::start(|_| {});
    p.deploy(
        "hello",
        "nodejs:20",
        "nodejs/hello.js",
        json!({"parameters": [{"key": "name", "value": "Node"}]}),
    );
    let r = p.invoke("hello", json!({}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let rec = r.json();
    assert_eq!(rec["response"]["result"]["greeting"], "Hello Node!");
    assert_eq!(
        rec["response"]["result"]["activation_id"],
        rec["activationId"]
    );
    assert_eq!(ann(&rec, "kind"), Some(&json!("nodejs:20")));
    let logs: Vec<&str> = rec["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l.as_str().unwrap()[31..])
        .collect();
    assert!(
        logs.contains(&"stdout: hello from node: Node")
            && logs.contains(&"stderr: a line on stderr"),
        "{logs:?}"
    );
    p.deploy("nsleep", "nodejs:20", "nodejs/sleep.js", json!({}));
    let rec = p.invoke("nsleep", json!({"ms": 20})).json();
    assert_eq!(rec["response"]["result"]["slept_ms"], 20);
    p.deploy("nerror", "nodejs:20", "nodejs/error.js", json!({}));
    assert_eq!(
        p.invoke("nerror", json!({})).json()["response"]["status"],
        "application error"
    );
    p.deploy("ncrash", "nodejs:20", "nodejs/crash.js", json!({}));
    assert_eq!(
        p.invoke("ncrash", json!({})).json()["response"]["result"]["error"],
        "The action did not produce a valid response and exited unexpectedly."
    );

    p.deploy(
        "nalloc",
        "nodejs:20",
        "nodejs/alloc.js",
        json!({"limits": {"memory": 128}}),
    );
    assert_eq!(
        p.invoke("nalloc", json!({"mb": 400})).json()["response"]["result"]["error"],
        "The action exhausted its memory and was aborted."
    );
    assert_eq!(
        p.invoke("nalloc", json!({"mb": 8})).json()["response"]["result"]["allocated_mb"],
        8
    );

    p.deploy("native", "native", "native/hello.sh", json!({}));
    let r = p.invoke("native", json!({"k": "v"}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let rec = r.json();
    assert_eq!(rec["response"]["result"]["native"], true);
    let log = &rec["logs"][0].as_str().unwrap()[31..];
    assert!(
        log.starts_with("stdout: native got: {") && log.contains("\"value\":{\"k\":\"v\"}"),
        "{log}"
    );
    assert!(ann(&p.invoke("native", json!({})).json(), "initTime").is_none());
}

#[test]
fn logs_limit_truncates() {
    let p = TestPlatform::start(|_| {});
    p.deploy(
        "hello",
        "python:3",
        "python/hello.py",
        json!({"limits": {"logs": 0}}),
    );
    let rec = p.invoke("hello", json!({})).json();
    let logs = rec["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(logs[0].as_str().unwrap().ends_with(
        "stderr: Logs were truncated because the total bytes size exceeds the limit of 0 bytes."
    ));
}

#[test]
fn monitor_notifications_and_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("notify.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    // A listener that reads notifications as the monitor does (and acks none).
    let (tx, rx) = std::sync::mpsc::channel::<Notification>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for conn in listener.incoming().flatten() {
            for line in std::io::BufReader::new(conn).lines().map_while(Result::ok) {
                match Request::parse_str(&line, Socket::Notify) {
                    Ok(Request::Notification(n)) => {
                        let _ = tx.send(n);
                    }
                    other => panic!("{line}: {other:?}"),
                }
            }
        }
    });
    let s2 = sock.clone();
    let mut p = TestPlatform::start(move |c| {
        c.notify_socket = Some(s2);
        c.pool.pause_grace_ms = 50;
    });
    p.deploy("hello", "python:3", "python/hello.py", json!({}));
    let rec = p.invoke("hello", json!({})).json();
    let id = rec["activationId"].as_str().unwrap().to_string();
    let name = p.containers()[0].0.clone();
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(5);
    let pause = NotificationKind::Container(ContainerAction::Pause);
    while !seen.iter().any(|m: &Notification| m.kind == pause) && Instant::now() < end {
        if let Ok(m) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.push(m);
        }
    }
    let kinds: Vec<NotificationKind> = seen.iter().map(|m| m.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            NotificationKind::Container(ContainerAction::Run),
            // A cold start: the activation starts before the init, whose end is noted.
            NotificationKind::ActivationStart {
                activation_id: id.clone()
            },
            NotificationKind::InitEnd {
                activation_id: id.clone()
            },
            NotificationKind::ActivationEnd {
                activation_id: id.clone()
            },
            pause,
        ],
        "{seen:?}"
    );
    assert!(seen.iter().all(|m| m.container == name && m.ack));
    assert!(seen[1].time.unwrap() <= seen[2].time.unwrap());
    assert!(seen[2].time.unwrap() <= seen[3].time.unwrap());
    assert_eq!(p.invoke("hello", json!({})).status, 200);
    let m = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(m.kind, NotificationKind::Container(ContainerAction::Resume));

    assert_eq!(p.leftover_cgroups(), vec![name.clone()]);
    p.shutdown();
    assert!(
        p.leftover_cgroups().is_empty(),
        "shutdown removes every container cgroup"
    );
    assert!(!p.work.join("containers").join(&name).exists());
    let mut rest = Vec::new();
    while let Ok(m) = rx.recv_timeout(Duration::from_millis(500)) {
        rest.push(m.kind);
    }
    assert!(
        rest.contains(&NotificationKind::Container(ContainerAction::Rm)),
        "{rest:?}"
    );
}

#[test]
fn python_zip_with_virtualenv_and_api_key() {
    let p = TestPlatform::start(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("a.zip");
    let st = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1],'w')\n\
             z.writestr('__main__.py','import os, helper, vendored\\ndef main(a):\\n    return {\"x\": helper.X + 1, \"y\": vendored.Y, \"key\": os.environ.get(\"__OW_API_KEY\")}\\n')\n\
             z.writestr('helper.py','X = 41\\n')\n\
             z.writestr('virtualenv/lib/python3.11/site-packages/vendored.py','Y = \"from the venv\"\\n')\nz.close()",
        ])
        .arg(&zip)
        .status()
        .unwrap();
    assert!(st.success());
    let code = faasload_tests::platform::base64(&std::fs::read(&zip).unwrap());
    let b = json!({"exec": {"kind": "python:3.11", "code": code, "binary": true},
                   "annotations": [{"key": "provide-api-key", "value": true}]});
    let r = p.call("PUT", &format!("{API}/_/actions/zipped"), Some(&b));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["exec"]["binary"], true);
    let r = p.invoke("zipped", json!({}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let res = &r.json()["response"]["result"];
    assert_eq!(res["x"], 42);
    assert_eq!(res["y"], "from the venv");
    assert_eq!(
        res["key"], GUEST_AUTH,
        "provide-api-key: true passes __OW_API_KEY"
    );
    p.deploy("hello", "python:3", "python/hello.py", json!({}));
    let out = p.invoke("hello", json!({})).json();
    assert_eq!(out["response"]["result"]["params"], json!({}));
}

#[test]
fn persisted_records_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("activations.jsonl");
    let f2 = file.clone();
    let mut p = TestPlatform::start(move |c| c.activations.persist = Some(f2));
    p.deploy("hello", "python:3", "python/hello.py", json!({}));
    let id = p.invoke("hello", json!({})).json()["activationId"]
        .as_str()
        .unwrap()
        .to_string();
    p.shutdown();
    let f3 = file.clone();
    let p = TestPlatform::start(move |c| c.activations.persist = Some(f3));
    let r = p.call("GET", &format!("{API}/_/activations/{id}"), None);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["response"]["result"]["greeting"],
        "Hello stranger!"
    );
}

#[test]
fn standalone_binary_serves_and_shuts_down_cleanly() {
    faasload_tests::platform::require_root();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let invoker = format!("wskbin{}", std::process::id());
    let cfg = dir.path().join("platform.yml");
    std::fs::write(
        &cfg,
        format!(
            "listen: 127.0.0.1:0\nwork_dir: {}\nnotify_socket: null\npool:\n  invoker_name: {invoker}\n  prewarm: [{{kind: \"python:3\", count: 1, memory: 256}}]\n",
            dir.path().join("work").display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(faasload_tests::platform::faasload_bin())
        .args(["platform", "--config"])
        .arg(&cfg)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let addr = faasload_tests::platform::listening_addr(&mut out);
    let code =
        std::fs::read_to_string(faasload_tests::platform::functions().join("python/hello.py"))
            .unwrap();
    let body = serde_json::to_vec(&json!({"exec": {"kind": "python:3", "code": code}})).unwrap();
    let r = http(
        addr,
        "PUT",
        &format!("{API}/_/actions/hello"),
        Some(GUEST_AUTH),
        &[],
        &body,
    );
    assert_eq!(r.status, 200);
    let r = http(
        addr,
        "POST",
        &format!("{API}/_/actions/hello?blocking=true"),
        Some(GUEST_AUTH),
        &[],
        b"{}",
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let layout = faasload_cgroup::Layout::detect().unwrap();
    let cg = layout
        .dir(
            faasload_cgroup::Controller::Cpu,
            std::path::Path::new("faasload/platform"),
        )
        .unwrap();
    let count = || {
        std::fs::read_dir(&cg)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(&format!("{invoker}_"))
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    assert!(count() >= 2, "a container and a new stem cell exist");
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = child.wait().unwrap();
    assert!(st.success(), "clean exit on SIGTERM: {st}");
    assert_eq!(count(), 0, "every container cgroup removed");
    let left = std::fs::read_dir(dir.path().join("work/containers"))
        .unwrap()
        .count();
    assert_eq!(left, 0, "every container directory removed");
}

#[test]
fn forced_cgroup_v2_runs_pauses_and_cleans_up() {
    let mut p = TestPlatform::start(|c| {
        c.cgroup_version = Some(faasload_cgroup::Version::V2);
        c.pool.pause_grace_ms = 50;
    });
    p.deploy("hello", "python:3", "python/hello.py", json!({}));
    assert_eq!(p.invoke("hello", json!({})).status, 200);
    let name = p.containers()[0].0.clone();
    let layout = faasload_cgroup::Layout::detect().unwrap();
    let dir = layout
        .v2()
        .expect("cgroup2 is mounted")
        .join("faasload/platform")
        .join(&name);
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert!(
        procs.lines().count() >= 2,
        "the container runs in its v2 cgroup: {procs}"
    );
    let end = Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(dir.join("cgroup.events"))
        .unwrap()
        .contains("frozen 1")
    {
        assert!(Instant::now() < end, "never frozen through cgroup.freeze");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(p.invoke("hello", json!({})).status, 200);
    p.shutdown();
    assert!(!dir.exists(), "the v2 cgroup is removed");
}

#[test]
fn native_zip_with_exec() {
    let p = TestPlatform::start(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("n.zip");
    let exec =
        std::fs::read_to_string(faasload_tests::platform::functions().join("native/hello.sh"))
            .unwrap();
    let script = format!(
        "import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1],'w')\nz.writestr('exec',{exec:?})\nz.writestr('data/x.txt','payload')\nz.close()"
    );
    let st = std::process::Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .arg(&zip)
        .status()
        .unwrap();
    assert!(st.success());
    let code = faasload_tests::platform::base64(&std::fs::read(&zip).unwrap());
    let b = json!({"exec": {"kind": "native", "code": code, "binary": true}});
    assert_eq!(
        p.call("PUT", &format!("{API}/_/actions/nzip"), Some(&b))
            .status,
        200
    );
    let r = p.invoke("nzip", json!({"a": 1}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["response"]["result"]["native"], true);
    let name = &p.containers()[0].0;
    let data = p.work.join("containers").join(name).join("data/x.txt");
    assert_eq!(
        std::fs::read_to_string(data).unwrap(),
        "payload",
        "the whole zip is unpacked"
    );

    let bad = json!({"exec": {"kind": "native", "code": faasload_tests::platform::base64(b"PK\x03\x04garbage"), "binary": true}});
    assert_eq!(
        p.call("PUT", &format!("{API}/_/actions/nbad"), Some(&bad))
            .status,
        200
    );
    let r = p.invoke("nbad", json!({}));
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["response"]["status"], "action developer error");
}

#[test]
fn oversized_results_are_refused_and_the_container_stays() {
    let p = TestPlatform::start(|c| c.limits.payload_max = 1000);
    let b = json!({"exec": {"kind": "python:3", "code": "def main(a):\n    print('x' * 100000)\n    return {'big': 'y' * int(a.get('n', 10))}\n"}});
    assert_eq!(
        p.call("PUT", &format!("{API}/_/actions/big"), Some(&b))
            .status,
        200
    );
    let r = p.invoke("big", json!({"n": 5000}));
    assert_eq!(r.status, 502);
    let rec = r.json();
    assert_eq!(rec["response"]["status"], "application error");
    let e = rec["response"]["result"]["error"].as_str().unwrap();
    assert!(
        e.starts_with("The action produced a response that exceeded the allowed length: ")
            && e.ends_with(" > 1000 bytes."),
        "{e}"
    );
    let log = rec["logs"][0].as_str().unwrap();
    assert!(
        log.len() < 17 * 1024,
        "a huge log line is cut: {}",
        log.len()
    );
    let rec = p.invoke("big", json!({"n": 10})).json();
    assert_eq!(rec["response"]["status"], "success", "{rec}");
    assert!(ann(&rec, "initTime").is_none(), "the container stayed warm");
}

#[test]
fn an_unterminated_last_log_line_is_kept_and_does_not_delay_the_answer() {
    let p = TestPlatform::start(|_| {});
    let code = "import sys\ndef main(a):\n    sys.stdout.write('no newline at the end')\n    return {'ok': True}\n";
    let b = json!({"exec": {"kind": "python:3", "code": code}});
    assert_eq!(
        p.call("PUT", &format!("{API}/_/actions/partial"), Some(&b))
            .status,
        200
    );
    p.invoke("partial", json!({}));
    let t0 = Instant::now();
    let rec = p.invoke("partial", json!({})).json();
    assert!(
        t0.elapsed() < Duration::from_millis(1500),
        "no wait for a sentinel on its own line"
    );
    let logs = rec["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(
        logs[0]
            .as_str()
            .unwrap()
            .ends_with("stdout: no newline at the end")
    );
}

#[test]
fn init_failures_destroy_the_container() {
    let p = TestPlatform::start(|_| {});
    let slow = json!({"exec": {"kind": "python:3", "code": "import time\ntime.sleep(5)\ndef main(a):\n    return {}\n"},
                      "limits": {"timeout": 300}});
    assert_eq!(
        p.call("PUT", &format!("{API}/_/actions/slowinit"), Some(&slow))
            .status,
        200
    );
    let rec = p.invoke("slowinit", json!({})).json();
    assert_eq!(rec["response"]["status"], "action developer error");
    assert_eq!(
        rec["response"]["result"]["error"],
        "The action exceeded its time limits of 300 milliseconds during initialization."
    );
    assert_eq!(ann(&rec, "timeout"), Some(&json!(true)));
    assert!(ann(&rec, "initTime").is_some());
    let broken = json!({"exec": {"kind": "python:3", "code": "def main(a) return {}\n"}});
    assert_eq!(
        p.call("PUT", &format!("{API}/_/actions/broken"), Some(&broken))
            .status,
        200
    );
    let rec = p.invoke("broken", json!({})).json();
    assert_eq!(rec["response"]["status"], "action developer error");
    let e = rec["response"]["result"]["error"].as_str().unwrap();
    assert!(e.starts_with("Cannot initialize the action: "), "{e}");
    assert!(
        rec["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("SyntaxError")),
        "{}",
        rec["logs"]
    );
    p.wait_pool("failed containers removed", Duration::from_secs(10), |c| {
        c.is_empty()
    });
    let end = Instant::now() + Duration::from_secs(10);
    while !p.leftover_cgroups().is_empty() {
        assert!(
            Instant::now() < end,
            "cgroups left: {:?}",
            p.leftover_cgroups()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn nodejs_zip_package() {
    let p = TestPlatform::start(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("n.zip");
    let script = "import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED)\n\
        z.writestr('package.json','{\"main\": \"lib/index.js\"}')\n\
        z.writestr('lib/index.js','const h = require(\"./helper\");\\nexports.main = (p) => ({v: h.v + (p.add || 0)});\\n')\n\
        z.writestr('lib/helper.js','exports.v = 40;\\n')\nz.close()";
    let st = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(&zip)
        .status()
        .unwrap();
    assert!(st.success());
    let code = faasload_tests::platform::base64(&std::fs::read(&zip).unwrap());
    let b = json!({"exec": {"kind": "nodejs:20", "code": code, "binary": true}});
    assert_eq!(
        p.call("PUT", &format!("{API}/_/actions/nzip"), Some(&b))
            .status,
        200
    );
    let r = p.invoke("nzip", json!({"add": 2}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["response"]["result"]["v"], 42);
}
