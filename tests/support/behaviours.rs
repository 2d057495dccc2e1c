//! OpenWhisk behaviours checked on both backends of the embedded platform (process and
//! Docker): the same scenario and the same records; each backend's test adds what only
//! it can check (cgroup freezer or `docker inspect`, cgroups or `docker ps`).
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::platform::{TestPlatform, ann};

/// A python action that exits without answering (`functions/python/crash.py`) gives
/// OpenWhisk's "exited unexpectedly" record.
pub fn crash_record(p: &TestPlatform) -> Value {
    p.deploy("crash", "python:3", "python/crash.py", json!({}));
    let r = p.invoke("crash", json!({}));
    assert_eq!(r.status, 502);
    let rec = r.json();
    assert_eq!(rec["response"]["status"], "action developer error");
    assert_eq!(
        rec["response"]["result"]["error"],
        "The action did not produce a valid response and exited unexpectedly."
    );
    rec
}

/// An action sleeping past its `timeout_ms` limit gives OpenWhisk's time-limit record,
/// well before it would have ended.
pub fn timeout_record(p: &TestPlatform, timeout_ms: u64) -> Value {
    p.deploy(
        "sleep",
        "python:3",
        "python/sleep.py",
        json!({"limits": {"timeout": timeout_ms}}),
    );
    let t0 = Instant::now();
    let r = p.invoke("sleep", json!({"ms": timeout_ms * 7}));
    assert!(t0.elapsed() < Duration::from_millis(timeout_ms * 5));
    assert_eq!(r.status, 502);
    let rec = r.json();
    assert_eq!(rec["response"]["status"], "action developer error");
    assert_eq!(
        rec["response"]["result"]["error"],
        format!("The action exceeded its time limits of {timeout_ms} milliseconds.")
    );
    assert_eq!(ann(&rec, "timeout"), Some(&json!(true)));
    rec
}

/// Allocating 400 MB under a 128 MB limit gives OpenWhisk's memory record; 16 MB works.
pub fn oom_record(p: &TestPlatform) -> Value {
    p.deploy(
        "alloc",
        "python:3",
        "python/alloc.py",
        json!({"limits": {"memory": 128}}),
    );
    let r = p.invoke("alloc", json!({"mb": 400}));
    assert_eq!(r.status, 502);
    let rec = r.json();
    assert_eq!(rec["response"]["status"], "action developer error");
    assert_eq!(
        rec["response"]["result"]["error"], "The action exhausted its memory and was aborted.",
        "{rec}"
    );
    rec
}

/// After an OOM, the same action within its limit works.
pub fn within_the_memory_limit_it_works(p: &TestPlatform) {
    let r = p.invoke("alloc", json!({"mb": 16}));
    assert_eq!(
        r.status,
        200,
        "within the limit it works: {}",
        String::from_utf8_lossy(&r.body)
    );
}

/// An idle container is paused after the grace period (`frozen(name)` is the backend's
/// own view: the cgroup freezer, `docker inspect`), the pool marks it paused, and the
/// next run resumes it, warm. Start `p` with a short `pause_grace_ms`.
pub fn pause_after_grace_and_resume_on_reuse(p: &TestPlatform, frozen: impl Fn(&str) -> bool) {
    p.deploy("hello", "python:3", "python/hello.py", json!({}));
    assert_eq!(p.invoke("hello", json!({})).status, 200);
    let name = p.containers()[0].0.clone();
    let end = Instant::now() + Duration::from_secs(10);
    while !frozen(&name) {
        assert!(Instant::now() < end, "the idle container was never paused");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(p.containers()[0].2, "the pool marks it paused");
    let rec = p.invoke("hello", json!({"name": "again"})).json();
    assert_eq!(
        rec["response"]["result"]["greeting"], "Hello again!",
        "a paused container answers once resumed"
    );
    assert!(ann(&rec, "initTime").is_none());
    assert_eq!(p.containers()[0].0, name);
}

/// Under a 512 MB user-memory budget, three 256 MB actions `a`, `b`, `c` (sleep.py): the
/// cold start of `c` evicts the least recently used idle container, `a`'s, whose name is
/// returned. Start `p` with `user_memory_mb = 512` and `memory_max = 512`.
pub fn eviction_of_the_lru_idle_container(p: &TestPlatform) -> String {
    for n in ["a", "b", "c"] {
        p.deploy(
            n,
            "python:3",
            "python/sleep.py",
            json!({"limits": {"memory": 256}}),
        );
    }
    assert_eq!(p.invoke("a", json!({"ms": 1})).status, 200);
    let a = p.containers()[0].0.clone();
    assert_eq!(p.invoke("b", json!({"ms": 1})).status, 200);
    assert_eq!(p.containers().len(), 2);
    let rec = p.invoke("c", json!({"ms": 1})).json();
    assert!(ann(&rec, "initTime").is_some());
    let names: Vec<String> = p.containers().into_iter().map(|c| c.0).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        !names.contains(&a),
        "the least recently used idle container (a) was evicted: {names:?}"
    );
    a
}
