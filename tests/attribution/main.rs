//! Attribution without platform notifications, and its accuracy, on both backends of the
//! embedded platform. Two monitors watch the same platform (containers named as
//! OpenWhisk's invoker names them, a python pre-warmed container included): monitor T
//! receives the platform's notifications and therefore knows which container ran each
//! activation (the truth); monitor W receives nothing and attributes each activation from
//! the record's namespace, action, start and end (`attribute` request). On the Docker
//! backend (real OpenWhisk hosts are Docker hosts) W learns containers only from cgroup
//! events and the Docker API. The workload and the judging are
//! `faasload_tests::attribution`: each test prints the tally (`ATTRIBUTION ACCURACY`),
//! and fails on any wrong answer, on a sequential activation not attributed, or on an
//! overlapped concurrent one not answered `ambiguous`. The loader's path
//! (`MonitorClient::reading_for`) is checked against W too. The two tests run one after
//! the other so neither's CPU load blurs the other's busy intervals.
use std::sync::Mutex;

use faasload_platform::config::PrewarmConfig;
use faasload_protocol::monitor::NameSource;
use faasload_tests::attribution;
use faasload_tests::platform::{TestPlatform, docker_backend};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn prewarm_python(c: &mut faasload_platform::config::PlatformConfig) {
    c.pool.prewarm = vec![PrewarmConfig {
        kind: "python:3".into(),
        count: 1,
        memory: 256,
    }];
}

#[test]
fn attribution_without_notifications_matches_the_platforms_truth() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (t, w) = attribution::monitors("docker_socket: null\n");
    let sock = t.notify.clone();
    let p = TestPlatform::start(move |c| {
        c.notify_socket = Some(sock);
        prewarm_python(c);
    });
    let report = attribution::run(&p, &t, &w);
    report.check("process backend");
    attribution::check_loader_path(&t, &w, &report.records[0]);
}

#[test]
fn attribution_without_notifications_on_docker_matches_the_platforms_truth() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let docker = faasload_tests::docker::socket();
    // W: no notification, containers from cgroup events and names from the Docker API,
    // as on an unpatched OpenWhisk Docker host.
    let (t, w) = attribution::monitors(&format!("docker_socket: {}\n", docker.display()));
    let sock = t.notify.clone();
    let p = TestPlatform::start(move |c| {
        docker_backend(c);
        c.notify_socket = Some(sock);
        prewarm_python(c);
    });
    let report = attribution::run(&p, &t, &w);
    // Every container W knows of this platform was named by dockerd, not by its cgroup.
    let seen = w.containers();
    let ours: Vec<_> = seen
        .iter()
        .filter_map(|c| Some((c, c.name.as_ref()?)))
        .filter(|(_, n)| n.name.starts_with(&format!("{}_", p.invoker)))
        .collect();
    assert!(
        ours.len() >= 3,
        "W names the platform's containers: {seen:?}"
    );
    for (c, n) in &ours {
        assert_eq!(n.name_source, NameSource::Docker, "{c:?}");
        assert_eq!(c.kind, "docker", "{c:?}");
    }
    report.check("Docker backend");
    attribution::check_loader_path(&t, &w, &report.records[0]);
}
