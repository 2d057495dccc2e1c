//! The platform's sandbox, proven from inside an action: action code runs as the
//! unprivileged action user with `no_new_privs`, cannot read a root-only file, cannot
//! write outside its own directory (nor into another container's), cannot signal the
//! platform or another container's processes, and sees only its own processes.
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use faasload_tests::platform::TestPlatform;
use serde_json::json;

#[test]
fn action_code_is_confined() {
    let p = TestPlatform::start(|_| {});
    // A root-only file the action must not read.
    let secret = p.work.parent().unwrap().join("secret.txt");
    std::fs::write(&secret, "top secret").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Another container, busy while the probe runs.
    p.deploy("sleep", "python:3", "python/sleep.py", json!({}));
    let r = p.call(
        "POST",
        "/api/v1/namespaces/_/actions/sleep",
        Some(&json!({"ms": 4000})),
    );
    assert_eq!(r.status, 202);
    p.wait_pool("the sleeping container", Duration::from_secs(10), |c| {
        c.len() == 1
    });
    let other = p.containers()[0].0.clone();
    let other_dir = p.work.join("containers").join(&other);
    let procs = std::fs::read_to_string(p.cgroup_dir("cpu", &other).join("cgroup.procs")).unwrap();
    let other_pids: Vec<u32> = procs
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert!(!other_pids.is_empty());

    p.deploy("probe", "python:3", "python/sandbox.py", json!({}));
    let mut signal: Vec<u32> = vec![std::process::id(), 1];
    signal.extend(&other_pids);
    let writes = vec![
        "/tmp/faasload-sandbox-probe".to_string(),
        "/etc/faasload-sandbox-probe".to_string(),
        "/dev/shm/faasload-sandbox-probe".to_string(),
        other_dir.join("intruder.txt").display().to_string(),
        p.work.join("runtimes/launcher.py").display().to_string(),
    ];
    let r = p.invoke(
        "probe",
        json!({"read": ["/etc/shadow", secret.display().to_string()], "write": writes, "signal": signal}),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let out = r.json()["response"]["result"].clone();
    eprintln!("probe: {out:#}");

    assert_ne!(out["uid"], 0, "action code never runs as root: {out}");
    assert_ne!(out["euid"], 0);
    assert_eq!(out["no_new_privs"], "1");
    assert_eq!(
        out["nofile"],
        json!([1024, 1024]),
        "OpenWhisk's nofile ulimit"
    );
    assert_eq!(
        out["own_write"], "succeeded",
        "its own directory is writable: {out}"
    );
    for (path, res) in out["read"].as_object().unwrap() {
        assert_ne!(res, "succeeded", "read {path} must fail");
    }
    for (path, res) in out["write"].as_object().unwrap() {
        assert_ne!(res, "succeeded", "write {path} must fail");
    }
    assert!(!other_dir.join("intruder.txt").exists());
    assert!(!std::path::Path::new("/tmp/faasload-sandbox-probe").exists());
    for (pid, res) in out["signal"].as_object().unwrap() {
        if pid == "1" {
            continue; // its own namespace's init: itself
        }
        assert_ne!(
            res, "succeeded",
            "signalling host pid {pid} must fail: {out}"
        );
    }
    let procs: Vec<&str> = out["procs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(!procs.is_empty());
    for cmd in &procs {
        assert!(
            cmd.contains("launcher.py"),
            "only its own processes are visible: {procs:?}"
        );
    }
    assert_eq!(out["pid"], 1, "PID 1 of its own PID namespace");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "top secret");
}
