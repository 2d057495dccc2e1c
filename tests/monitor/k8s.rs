//! The monitor on a Kubernetes node's cgroup layout, made synthetically by the test
//! under faasload's own subtree (`faasload/<unique>/kubepods...`, which the default
//! kubernetes pattern matches): both cgroup drivers (cgroupfs `kubepods/burstable/pod<uid>/<id>`
//! and systemd `kubepods.slice/...-pod<uid_>.slice/cri-containerd-<id>.scope`), QoS
//! classes, pod UID and container id from the path; names and the `user-action-pod=true`
//! label from a kubelet pod list served by the test over HTTP; a container the kubelet
//! does not list keeps its cgroup name. A process the test moves into the action pod's
//! cgroup makes it the busy one an `attribute` query finds.
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use faasload_cgroup::Layout;
use faasload_protocol::monitor::{
    AttributeQuery, Attribution, AttributionOutcome, ContainerInfo, ContainerName, NameSource,
    Query,
};
use faasload_tests::monitor::Monitor;
use serde_json::json;

/// Serves `body` to every HTTP request until the test ends.
fn fake_kubelet(body: String) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                body.len(),
                body
            );
        }
    });
    port
}

/// The synthetic tree; removed (deepest first) when dropped.
struct Tree {
    dirs: Vec<PathBuf>,
    burner: Option<Child>,
}

impl Drop for Tree {
    fn drop(&mut self) {
        if let Some(mut b) = self.burner.take() {
            let _ = b.kill();
            let _ = b.wait();
        }
        std::thread::sleep(Duration::from_millis(100));
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Waits until container `id` is named by `source`; its entry and name.
fn wait_named(m: &Monitor, id: &str, source: NameSource) -> (ContainerInfo, ContainerName) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let all = m.containers();
        let c = all.iter().find(|c| c.id == id);
        if let Some(c) = c
            && let Some(n) = &c.name
            && n.name_source == source
        {
            return (c.clone(), n.clone());
        }
        assert!(
            Instant::now() < deadline,
            "container {id} not named by {source:?}: {c:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn kubepods_trees_are_recognised_named_and_attributed() {
    faasload_tests::require_root();
    let layout = Layout::detect().unwrap();
    let root = layout.cpu_root().to_path_buf();
    let base = format!("faasload/{}", faasload_tests::unique("k8s"));
    let uid_a = format!("7c1f0e2a-0000-4000-8000-{:012}", std::process::id());
    let uid_b = format!("9d2e1f3b-0000-4000-8000-{:012}", std::process::id());
    let cid_a = format!("{:0>64}", format!("a{}", std::process::id()));
    let cid_b = format!("{:0>64}", format!("b{}", std::process::id()));
    let rel_a = format!("{base}/kubepods/burstable/pod{uid_a}/{cid_a}");
    let rel_b = format!(
        "{base}/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{cid_b}.scope",
        uid_b.replace('-', "_")
    );
    let mut tree = Tree {
        dirs: Vec::new(),
        burner: None,
    };
    for rel in [&rel_a, &rel_b] {
        let mut p = root.clone();
        for seg in rel.split('/') {
            p.push(seg);
            if !p.exists() {
                std::fs::create_dir(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                tree.dirs.push(p.clone());
            }
        }
    }
    let action = format!("k8s{}", std::process::id());
    let pods = json!({"kind": "PodList", "apiVersion": "v1", "items": [{
        "metadata": {"name": format!("wskinvoker0-5-guest-{action}"), "namespace": "openwhisk",
                     "uid": uid_a, "labels": {"user-action-pod": "true", "invoker": "invoker0"}},
        "status": {"containerStatuses": [{"name": "user-action",
            "containerID": format!("containerd://{cid_a}"), "image": "openwhisk/action-python-v3.11:1.0"}]}
    }]});
    let port = fake_kubelet(pods.to_string());
    let m = Monitor::start(&format!(
        "kubelet_url: http://127.0.0.1:{port}/pods\ndocker_socket: null\nrescan_ms: 200\n"
    ));

    let (ca, a) = wait_named(&m, &cid_a, NameSource::Kubelet);
    assert_eq!(ca.kind, "kubernetes", "{ca:?}");
    assert_eq!(a.name, format!("wskinvoker0-5-guest-{action}"), "{a:?}");
    assert_eq!(a.labels["user-action-pod"], "true", "{a:?}");
    assert_eq!(a.labels["io.kubernetes.pod.uid"], uid_a, "{a:?}");
    assert_eq!(
        a.image.as_deref(),
        Some("openwhisk/action-python-v3.11:1.0"),
        "{a:?}"
    );
    assert_eq!(a.openwhisk.as_ref().map(|o| o.n), Some(5), "{a:?}");

    let (_, b) = wait_named(&m, &cid_b, NameSource::Cgroup);
    assert_eq!(b.labels["io.kubernetes.pod.uid"], uid_b, "{b:?}");
    assert_eq!(b.labels["qos"], "besteffort", "{b:?}");
    assert_eq!(b.labels["cgroup_driver"], "systemd", "{b:?}");
    assert!(b.openwhisk.is_none(), "{b:?}");

    // A busy process in the action pod's cgroup: the attribution finds it. It starts
    // burning only once it is in the cgroup (it waits for a flag file, sleeping): a
    // process moved while it runs without a break would be charged to its old cgroup
    // until its next context switch, which an idle 2-core machine may not give it for
    // seconds (real containers start inside their cgroup).
    let flag = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    std::fs::remove_file(&flag).unwrap();
    let script = format!(
        "while [ ! -e '{}' ]; do sleep 0.01; done; while :; do :; done",
        flag.display()
    );
    let child = Command::new("sh").args(["-c", &script]).spawn().unwrap();
    let pid = child.id();
    tree.burner = Some(child);
    std::fs::write(root.join(&rel_a).join("cgroup.procs"), pid.to_string()).unwrap();
    std::fs::write(&flag, b"go").unwrap();
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // The window ends 250 ms in; ask well after it, so that a sampler slowed by a
    // loaded machine has sampled all of it.
    std::thread::sleep(Duration::from_millis(1000));
    let at: Attribution = m.ask(&Query::Attribute(AttributeQuery {
        namespace: "guest".into(),
        name: action.clone(),
        start: t0 + 0.05,
        end: t0 + 0.25,
        kind: None,
        cold: None,
        min_busy_us: None,
        wait_ms: None,
    }));
    let AttributionOutcome::Attributed {
        container, cpu_ns, ..
    } = &at.outcome
    else {
        panic!("not attributed: {at:?}")
    };
    assert_eq!(*container, cid_a, "{at:?}");
    assert!(*cpu_ns > 50_000_000, "{at:?}");
    if let Some(mut c) = tree.burner.take() {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    m.stop();
    drop(tree);
}
