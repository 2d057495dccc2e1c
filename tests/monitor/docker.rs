//! The monitor on real Docker containers (the test dockerd of `cargo xtask test`, a
//! busybox image) with no patch and no notification: containers created before the
//! monitor and after it (a pre-warmed one) are discovered from the cgroup tree / kernel
//! events and named through the Docker API (name, image, labels, OpenWhisk reading);
//! `docker pause`/`unpause` is seen from the freezer; an activation window is attributed
//! to the one busy container of the action; `docker rm -f` removes it.
use std::time::{Duration, Instant};

use faasload_tests::docker::{TestContainer, busybox_image, socket};
use faasload_tests::monitor::Monitor;
use serde_json::{Value, json};

fn container(m: &Monitor, id: &str) -> Option<Value> {
    let v = m.request(json!({"type": "containers"}));
    v["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
}

/// Waits until container `id`'s entry satisfies `ok` (names come from a periodic pass).
fn wait_for(m: &Monitor, id: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let c = container(m, id);
        if let Some(c) = &c
            && ok(c)
        {
            return c.clone();
        }
        assert!(Instant::now() < deadline, "{what}: container {id} is {c:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn docker_containers_are_named_paused_and_attributed_without_patches() {
    faasload_tests::require_root();
    let sock = socket();
    busybox_image();
    let tag = std::process::id();
    let action = format!("dmon{tag}");
    // Created before the monitor starts: found by the first scan.
    let warm = TestContainer::run(
        &format!("wsk0_1_guest_{action}"),
        &["faasload.test=warm"],
        &["sleep", "600"],
    );
    let m = Monitor::start(&format!(
        "docker_socket: {}\nrescan_ms: 200\n",
        sock.display()
    ));
    let c = wait_for(&m, &warm.id, "named before start", |c| {
        c["name_source"] == "docker"
    });
    assert_eq!(c["name"], warm.name.as_str(), "{c}");
    assert_eq!(c["kind"], "docker", "{c}");
    assert_eq!(c["image"], busybox_image(), "{c}");
    assert_eq!(c["labels"]["faasload.test"], "warm", "{c}");
    assert_eq!(c["openwhisk"]["n"], 1, "{c}");
    assert_eq!(c["openwhisk"]["rest"], format!("guest_{action}"), "{c}");

    // Created after: found from the kernel's cgroup mkdir event (or the rescan), named.
    let prewarm = TestContainer::run(
        &format!("wsk0_2_prewarm_python3x{tag}"),
        &[],
        &["sleep", "600"],
    );
    let c = wait_for(&m, &prewarm.id, "pre-warmed named", |c| {
        c["name_source"] == "docker"
    });
    assert_eq!(
        c["openwhisk"]["prewarm_kind"],
        format!("python3x{tag}"),
        "{c}"
    );

    // Pause/resume through the freezer (docker pause), no notification.
    socket_docker(&["pause", &warm.id]);
    wait_for(&m, &warm.id, "paused", |c| c["state"] == "paused");
    socket_docker(&["unpause", &warm.id]);
    wait_for(&m, &warm.id, "resumed", |c| c["state"] == "running");

    // A second container of the action that burns CPU: the one busy candidate.
    let busy = TestContainer::run(
        &format!("wsk0_3_guest_{action}"),
        &[],
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 100000000 ]; do i=$((i+1)); done",
        ],
    );
    wait_for(&m, &busy.id, "busy named", |c| c["name_source"] == "docker");
    let start = epoch();
    std::thread::sleep(Duration::from_millis(300));
    let end = epoch();
    let a = m.request(
        json!({"type": "attribute", "namespace": "guest", "name": action,
        "start": start, "end": end, "cold": false}),
    );
    assert_eq!(a["status"], "attributed", "{a}");
    assert_eq!(a["container"], busy.id.as_str(), "{a}");
    assert!(a["cpu_ns"].as_u64().unwrap() > 100_000_000, "{a}");
    let cands = a["candidates"].as_array().unwrap();
    assert!(
        cands
            .iter()
            .any(|c| c["container"] == warm.id.as_str() && c["busy"] == false),
        "{a}"
    );

    // Removed: docker rm -f, seen from the cgroup's rmdir.
    let id = busy.id.clone();
    drop(busy);
    wait_for(&m, &id, "removed", |c| c["state"] == "removed");
    drop(warm);
    drop(prewarm);
    m.stop();
}

fn socket_docker(args: &[&str]) {
    faasload_tests::docker::docker(args);
}
