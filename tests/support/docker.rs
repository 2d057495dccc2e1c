//! The test dockerd and a tiny image for test containers. The daemon is the one
//! `cargo xtask test` starts (`FAASLOAD_TEST_DOCKER_HOST`, a `unix://` socket); a test
//! fails, never skips, when it is missing or does not answer. The image is Debian's
//! `busybox-static` binary imported as `faasload-test/busybox:<version>` (built on
//! demand with `apt-get download` + `dpkg-deb -x` + `docker import`, then reused by tag).
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Tag of the busybox test image.
pub const BUSYBOX: &str = "faasload-test/busybox:1";

/// `FAASLOAD_TEST_DOCKER_HOST` (`unix://...`); panics with what to do when it is not set.
pub fn host() -> String {
    std::env::var("FAASLOAD_TEST_DOCKER_HOST").unwrap_or_else(|_| {
        panic!(
            "FAASLOAD_TEST_DOCKER_HOST is not set: these tests need the private dockerd that \
             `cargo xtask test` starts (or `cargo xtask dockerd start`: \
             unix:///run/faasload-test/docker.sock) with the runtime images"
        )
    })
}

/// The test dockerd's socket path (from [`host`]); panics with what to do when it is not
/// set or the daemon does not answer (checked once per test process).
pub fn socket() -> PathBuf {
    static CHECKED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let host = host();
            let path = PathBuf::from(host.strip_prefix("unix://").unwrap_or_else(|| {
                panic!("FAASLOAD_TEST_DOCKER_HOST={host} is not a unix:// socket")
            }));
            let out = docker_at(&path, &["version", "--format", "{{.Server.Version}}"]);
            assert!(
                out.status.success(),
                "dockerd at {} does not answer: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            path
        })
        .clone()
}

fn docker_at(sock: &Path, args: &[&str]) -> Output {
    Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the docker CLI (Debian docker.io)")
}

/// Runs `docker <args>` against the test daemon; panics with its stderr on failure.
pub fn docker(args: &[&str]) -> String {
    let out = docker_at(&socket(), args);
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `docker inspect <name>`: the object.
pub fn inspect(name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&docker(&["inspect", name])).unwrap();
    v[0].clone()
}

/// Makes sure the busybox test image exists (built once, then found by tag).
pub fn busybox_image() -> &'static str {
    let sock = socket();
    if docker_at(&sock, &["image", "inspect", BUSYBOX])
        .status
        .success()
    {
        return BUSYBOX;
    }
    let tmp = tempfile::tempdir().unwrap();
    let run = |cmd: &mut Command| {
        let out = cmd.output().expect("spawn");
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let download = || {
        Command::new("apt-get")
            .args(["download", "busybox-static"])
            .current_dir(tmp.path())
            .output()
            .expect("apt-get")
            .status
            .success()
    };
    if !download() {
        // A fresh machine may have no package lists yet.
        run(Command::new("apt-get").args(["update", "-qq"]));
        assert!(download(), "apt-get download busybox-static failed");
    }
    let deb = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("busybox-static .deb downloaded");
    let root = tmp.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let bin = root.join("bin");
    for applet in ["sh", "sleep", "cat", "true"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    let tar = tmp.path().join("rootfs.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg("bin"));
    let t = tar.display().to_string();
    docker(&["import", &t, BUSYBOX]);
    BUSYBOX
}

/// A container started by a test, removed (`docker rm -f`) when dropped.
pub struct TestContainer {
    pub id: String,
    pub name: String,
}

impl TestContainer {
    /// `docker run -d --network none --name <name> --label <labels> <busybox> <cmd...>`.
    pub fn run(name: &str, labels: &[&str], cmd: &[&str]) -> TestContainer {
        let image = busybox_image();
        let mut args = vec!["run", "-d", "--network", "none", "--name", name];
        for l in labels {
            args.extend(["--label", l]);
        }
        args.push(image);
        args.extend(cmd);
        let id = docker(&args);
        assert_eq!(id.len(), 64, "container id {id:?}");
        TestContainer {
            id,
            name: name.to_string(),
        }
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        let _ = docker_at(&socket(), &["rm", "-f", &self.id]);
    }
}
