//! The deployment files validate offline: the systemd units with `systemd-analyze verify`
//! (its warnings count as failures), the Kubernetes manifests with the
//! `kubernetes-validate` schemas (strict: unknown fields refused), and the monitor
//! configuration the DaemonSet's ConfigMap carries with faasload's own config parser,
//! plus what the monitor needs from the DaemonSet (invoker nodes, privileged, host PID,
//! cgroupfs, BPF fs, socket directory). Both tools are installed by `cargo xtask test`;
//! a missing tool fails the test.
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn systemd_units_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = faasload_tests::bin();
    let dir = repo().join("config/systemd");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "service") {
            continue;
        }
        // The unit names the installed binary; verify against the built one.
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("/usr/local/bin/faasload", &bin.display().to_string());
        let copy = tmp.path().join(p.file_name().unwrap());
        std::fs::write(&copy, text).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&copy)
            .output()
            .expect("systemd-analyze (Debian systemd; installed by cargo xtask test)");
        let err = String::from_utf8_lossy(&out.stderr);
        let about: Vec<&str> = err
            .lines()
            .filter(|l| l.contains(&*copy.file_name().unwrap().to_string_lossy()))
            .collect();
        assert!(
            out.status.success() && about.is_empty(),
            "{}: {err}",
            p.display()
        );
        n += 1;
    }
    assert!(n >= 2, "units found in {}", dir.display());
}

fn kubernetes_validate() -> PathBuf {
    let p = std::env::var("FAASLOAD_TEST_KUBERNETES_VALIDATE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from("/var/lib/faasload-test/kubernetes-validate/bin/kubernetes-validate")
        });
    assert!(
        p.is_file(),
        "{} is missing: `cargo xtask test` installs kubernetes-validate (PyPI) there",
        p.display()
    );
    p
}

#[test]
fn kubernetes_manifests_validate_against_the_schemas() {
    let dir = repo().join("deploy/k8s");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    assert!(!files.is_empty());
    let out = Command::new(kubernetes_validate())
        .arg("--strict")
        .args(&files)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("daemonset/faasload-monitor"), "{text}");
    assert!(!text.contains("ERROR") && !text.contains("WARN"), "{text}");
}

#[test]
fn daemonset_gives_the_monitor_what_it_needs() {
    let path = repo().join("deploy/k8s/faasload-monitor-daemonset.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let docs: Vec<serde_json::Value> = text
        .split("\n---\n")
        .map(|d| yaml_serde::from_str(d).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect();
    let find = |kind: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    let cm = find("ConfigMap");
    let cfg = cm["data"]["monitor.yml"].as_str().unwrap();
    // The monitor itself validates the ConfigMap's file and prints what it would run with.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("monitor.yml");
    std::fs::write(&file, cfg).unwrap();
    let out = std::process::Command::new(faasload_tests::bin())
        .args(["monitor", "--check-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the ConfigMap's monitor.yml is refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg: serde_json::Value = yaml_serde::from_slice(&out.stdout).unwrap();
    let socket = |key: &str| {
        PathBuf::from(
            cfg[key]
                .as_str()
                .unwrap_or_else(|| panic!("no {key} in the effective configuration")),
        )
    };
    let (query_socket, notify_socket) = (socket("query_socket"), socket("notify_socket"));
    let ds = find("DaemonSet");
    let spec = &ds["spec"]["template"]["spec"];
    assert_eq!(spec["nodeSelector"]["openwhisk-role"], "invoker");
    assert_eq!(spec["hostPID"], true);
    let c = &spec["containers"][0];
    assert_eq!(c["securityContext"]["privileged"], true);
    let mounts: Vec<(&str, &str)> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["mountPath"].as_str().unwrap(),
            )
        })
        .collect();
    let host_of = |vol: &str| {
        spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == vol)
            .and_then(|v| v["hostPath"]["path"].as_str())
    };
    for want in ["/sys/fs/cgroup", "/sys/fs/bpf", "/sys/kernel/btf"] {
        let (vol, _) = mounts
            .iter()
            .find(|(_, p)| *p == want)
            .unwrap_or_else(|| panic!("{want} not mounted"));
        assert_eq!(host_of(vol), Some(want));
    }
    // The sockets the config names live in a host directory (for the node's loader).
    let sock_dir = query_socket.parent().unwrap();
    assert_eq!(notify_socket.parent().unwrap(), sock_dir);
    let (vol, _) = mounts
        .iter()
        .find(|(_, p)| Path::new(p) == sock_dir)
        .expect("socket directory mounted");
    assert!(host_of(vol).is_some(), "socket directory is a hostPath");
    // The config file path the command reads is the ConfigMap's mount.
    let cmd: Vec<&str> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let conf = cmd[cmd.iter().position(|a| *a == "--config").unwrap() + 1];
    assert!(
        mounts
            .iter()
            .any(|(n, p)| *n == "config" && Path::new(conf).parent() == Some(Path::new(p)))
    );
}
