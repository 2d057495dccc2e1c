//! The platform and the monitor together, as the loader uses them: the platform notifies
//! the monitor of containers and activation boundaries over its notification socket, and
//! each activation's CPU time and memory can then be queried by activation id.
use faasload_tests::monitor::Monitor;
use faasload_tests::platform::TestPlatform;
use serde_json::json;

#[test]
fn activations_are_measured_by_the_monitor() {
    let m = Monitor::start("");
    let sock = m.notify.clone();
    let p = TestPlatform::start(move |c| c.notify_socket = Some(sock));
    p.deploy("burn", "python:3", "python/burn.py", json!({}));
    for (ms, mb) in [(200u64, 64u64), (100, 16)] {
        let r = p.invoke("burn", json!({"ms": ms, "mb": mb}));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let rec = r.json();
        let id = rec["activationId"].as_str().unwrap();
        let s = m.activation(id, Some(5000));
        assert_eq!(s.activation_id, id, "{s:?}");
        assert_eq!(s.container, p.containers()[0].0, "{s:?}");
        let cpu = s.cpu_ns.unwrap_or_else(|| panic!("no CPU time: {s:?}"));
        assert!(
            cpu >= ms * 1_000_000 * 8 / 10,
            "CPU {cpu} ns for a {ms} ms burn: {s:?}"
        );
        assert!(
            cpu <= (rec["duration"].as_u64().unwrap() + 50) * 1_000_000 * 2,
            "CPU within the activation: {s:?}"
        );
        let peak = s
            .mem_peak_bytes
            .unwrap_or_else(|| panic!("no memory peak: {s:?}"));
        assert!(
            peak >= mb << 20,
            "peak {peak} B while holding {mb} MB: {s:?}"
        );
    }
}
