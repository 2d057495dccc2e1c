//! The monitor on real Docker containers (the test dockerd of `cargo xtask test`, a
//! busybox image) with no patch and no notification: containers created before the
//! monitor and after it (a pre-warmed one) are discovered from the cgroup tree / kernel
//! events and named through the Docker API (name, image, labels, OpenWhisk reading);
//! `docker pause`/`unpause` is seen from the freezer; an activation window is attributed
//! to the one busy container of the action; `docker rm -f` removes it.
use std::time::{Duration, Instant};

use faasload_protocol::monitor::{
    AttributeQuery, Attribution, AttributionOutcome, ContainerInfo, ContainerName, ContainerState,
    NameSource, Query,
};
use faasload_tests::docker::{TestContainer, busybox_image, socket};
use faasload_tests::monitor::Monitor;

fn container(m: &Monitor, id: &str) -> Option<ContainerInfo> {
    m.containers().into_iter().find(|c| c.id == id)
}

/// Its name, named by dockerd.
fn by_docker(c: &ContainerInfo) -> Option<&ContainerName> {
    c.name
        .as_ref()
        .filter(|n| n.name_source == NameSource::Docker)
}

/// Waits until container `id`'s entry satisfies `ok` (names come from a periodic pass).
fn wait_for(
    m: &Monitor,
    id: &str,
    what: &str,
    ok: impl Fn(&ContainerInfo) -> bool,
) -> ContainerInfo {
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
        by_docker(c).is_some()
    });
    let n = by_docker(&c).unwrap();
    assert_eq!(n.name, warm.name, "{c:?}");
    assert_eq!(c.kind, "docker", "{c:?}");
    assert_eq!(n.image.as_deref(), Some(busybox_image()), "{c:?}");
    assert_eq!(n.labels["faasload.test"], "warm", "{c:?}");
    let ow = n.openwhisk.as_ref().expect("an OpenWhisk name");
    assert_eq!(ow.n, 1, "{c:?}");
    assert_eq!(ow.rest, format!("guest_{action}"), "{c:?}");

    // Created after: found from the kernel's cgroup mkdir event (or the rescan), named.
    let prewarm = TestContainer::run(
        &format!("wsk0_2_prewarm_python3x{tag}"),
        &[],
        &["sleep", "600"],
    );
    let c = wait_for(&m, &prewarm.id, "pre-warmed named", |c| {
        by_docker(c).is_some()
    });
    assert_eq!(
        by_docker(&c)
            .and_then(|n| n.openwhisk.as_ref())
            .and_then(|o| o.prewarm_kind.clone()),
        Some(format!("python3x{tag}")),
        "{c:?}"
    );

    // Pause/resume through the freezer (docker pause), no notification.
    socket_docker(&["pause", &warm.id]);
    wait_for(&m, &warm.id, "paused", |c| {
        c.state == ContainerState::Paused
    });
    socket_docker(&["unpause", &warm.id]);
    wait_for(&m, &warm.id, "resumed", |c| {
        c.state == ContainerState::Running
    });

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
    wait_for(&m, &busy.id, "busy named", |c| by_docker(c).is_some());
    let start = epoch();
    std::thread::sleep(Duration::from_millis(300));
    let end = epoch();
    let a: Attribution = m.ask(&Query::Attribute(AttributeQuery {
        namespace: "guest".into(),
        name: action.clone(),
        start,
        end,
        kind: None,
        cold: Some(false),
        min_busy_us: None,
        wait_ms: None,
    }));
    let AttributionOutcome::Attributed {
        container, cpu_ns, ..
    } = &a.outcome
    else {
        panic!("not attributed: {a:?}")
    };
    assert_eq!(*container, busy.id, "{a:?}");
    assert!(*cpu_ns > 100_000_000, "{a:?}");
    assert!(
        a.candidates
            .iter()
            .any(|c| c.container == warm.id && !c.busy),
        "{a:?}"
    );

    // Removed: docker rm -f, seen from the cgroup's rmdir.
    let id = busy.id.clone();
    drop(busy);
    wait_for(&m, &id, "removed", |c| c.state == ContainerState::Removed);
    drop(warm);
    drop(prewarm);
    m.stop();
}

fn socket_docker(args: &[&str]) {
    faasload_tests::docker::docker(args);
}
