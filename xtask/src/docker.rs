//! The tests' private Docker daemon: installs Debian's `docker.io` when missing, starts
//! `dockerd` with its own data root, exec root, pid file and socket
//! (`unix:///run/faasload-test/docker.sock`) on its own bridge `faasload0`, without
//! touching iptables, IP forwarding or any other Docker daemon of the machine; builds the
//! runtime images once (cached in the data root); and at the end removes every container
//! the tests left and the images they made (`faasload-test/*`), stops the daemon, and
//! removes its run directory (socket, pid file, exec root), its `docker` cgroups and its
//! bridge, then checks that nothing of it is left.
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::test::{apt_install, export, wait_until};
use crate::workspace::Workspace;

pub(crate) const HOST: &str = "unix:///run/faasload-test/docker.sock";
/// The daemon's run directory: socket, pid file, exec root (removed by [`stop`]).
const RUN_DIR: &str = "/run/faasload-test";
const SOCKET: &str = "/run/faasload-test/docker.sock";
const PIDFILE: &str = "/run/faasload-test/docker.pid";
const DATA_ROOT: &str = "/var/lib/faasload-test/docker";
const EXEC_ROOT: &str = "/run/faasload-test/docker-exec";
/// Kept beside the data root (not in the run directory) to read after a failed run.
const LOG: &str = "/var/lib/faasload-test/dockerd.log";
/// Our bridge (not docker0, which another daemon may own) and its address.
const BRIDGE: &str = "faasload0";
const BRIDGE_CIDR: &str = "172.30.250.1/24";

fn answers() -> bool {
    Command::new("docker")
        .args(["-H", HOST, "version", "--format", "{{.Server.Version}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `ensure_docker`: docker.io installed, the private daemon answering, images built;
/// exports `FAASLOAD_TEST_DOCKER_HOST`.
pub(crate) fn ensure(ws: &Workspace) -> Result<()> {
    if !Path::new("/usr/sbin/dockerd").is_file() || which("docker").is_none() {
        apt_install(&["docker.io", "debootstrap"])?;
    }
    if !answers() {
        if !Path::new("/sys/class/net").join(BRIDGE).exists() {
            cmd::run(Command::new("ip").args(["link", "add", BRIDGE, "type", "bridge"]))?;
            cmd::run(Command::new("ip").args(["addr", "add", BRIDGE_CIDR, "dev", BRIDGE]))?;
        }
        cmd::run(Command::new("ip").args(["link", "set", BRIDGE, "up"]))?;
        for d in [DATA_ROOT, EXEC_ROOT] {
            std::fs::create_dir_all(d).with_context(|| format!("create {d}"))?;
        }
        let log = std::fs::File::create(LOG).with_context(|| format!("create {LOG}"))?;
        let mut c = Command::new("setsid");
        c.args([
            "dockerd",
            "--iptables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--userland-proxy=false",
            "--storage-driver=vfs",
            "--data-root",
            DATA_ROOT,
            "--exec-root",
            EXEC_ROOT,
            "--pidfile",
            PIDFILE,
            "-H",
            HOST,
            &format!("--bridge={BRIDGE}"),
            // Own containerd namespaces, should a system containerd be shared.
            "--containerd-namespace",
            "faasload-test",
            "--containerd-plugins-namespace",
            "faasload-test-plugins",
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
        println!(
            "    $ setsid dockerd --iptables=false --storage-driver=vfs --data-root {DATA_ROOT} -H {HOST} --bridge={BRIDGE} ... (log {LOG})"
        );
        c.spawn().context("start dockerd")?;
        wait_until("dockerd", 60, answers).with_context(|| format!("see {LOG}"))?;
    }
    // The daemon answering on our socket must be ours: its data in our private root.
    let root = cmd::output(Command::new("docker").args([
        "-H",
        HOST,
        "info",
        "--format",
        "{{.DockerRootDir}}",
    ]))?;
    if root.trim() != DATA_ROOT {
        bail!("the dockerd on {HOST} keeps its data in {root:?}, not in {DATA_ROOT}");
    }
    crate::images::build(ws, HOST)?;
    export("FAASLOAD_TEST_DOCKER_HOST", HOST);
    Ok(())
}

fn which(prog: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(prog))
            .find(|f| f.is_file())
    })
}

/// After the tests: removes every container of the private daemon (all are the tests')
/// and the images the tests made (`faasload-test/*`; the runtime images stay cached in
/// the data root), stops the daemon by the pid in its pid file, removes its run directory,
/// its empty `docker` cgroups (unless another dockerd runs on this host) and its bridge,
/// then fails if any of it is left.
pub(crate) fn stop() -> Result<()> {
    if answers() {
        let ids = cmd::output(Command::new("docker").args(["-H", HOST, "ps", "-aq"]))?;
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            println!("    removing {} container(s) left by the tests", ids.len());
            cmd::run(
                Command::new("docker")
                    .args(["-H", HOST, "rm", "-f"])
                    .args(&ids),
            )?;
        }
        let images = cmd::output(Command::new("docker").args([
            "-H",
            HOST,
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "--filter",
            "reference=faasload-test/*",
        ]))?;
        let images: Vec<&str> = images.split_whitespace().collect();
        if !images.is_empty() {
            println!("    removing the tests' image(s) {images:?}");
            cmd::run(
                Command::new("docker")
                    .args(["-H", HOST, "rmi", "-f"])
                    .args(&images),
            )?;
        }
    }
    if let Ok(pid) = std::fs::read_to_string(PIDFILE) {
        let pid: i32 = pid
            .trim()
            .parse()
            .with_context(|| format!("{PIDFILE}: not a pid"))?;
        println!("    stopping dockerd (pid {pid})");
        // SAFETY: plain syscall on the pid our daemon wrote.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        // When this process started the daemon it is our child: reap it, or its exit
        // leaves a zombie whose /proc entry never goes away.
        wait_until("dockerd exit", 30, || {
            let mut status = 0;
            // SAFETY: non-blocking waitpid on one pid; ECHILD (not our child) is fine.
            let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid;
            reaped || !Path::new(&format!("/proc/{pid}")).exists()
        })?;
    }
    // Its containerd and shims go with it; wait for them before removing their sockets.
    wait_until("the daemon's containerd and shims to exit", 30, || {
        ours_running().is_empty()
    })
    .with_context(|| format!("still running: {:?}", ours_running()))?;
    if Path::new(RUN_DIR).exists() {
        std::fs::remove_dir_all(RUN_DIR).with_context(|| format!("remove {RUN_DIR}"))?;
    }
    if !other_dockerd() {
        for d in docker_cgroups() {
            // Only empty ones go (rmdir); a leftover container cgroup is reported below.
            let _ = std::fs::remove_dir(&d);
        }
    }
    if Path::new("/sys/class/net").join(BRIDGE).exists() {
        cmd::run(Command::new("ip").args(["link", "del", BRIDGE]))?;
    }
    let mut left = Vec::new();
    for p in [SOCKET, PIDFILE, EXEC_ROOT, RUN_DIR] {
        if Path::new(p).exists() {
            left.push(p.to_string());
        }
    }
    if Path::new("/sys/class/net").join(BRIDGE).exists() {
        left.push(format!("bridge {BRIDGE}"));
    }
    if !other_dockerd() {
        left.extend(docker_cgroups().iter().map(|d| d.display().to_string()));
    }
    if !left.is_empty() {
        bail!("left behind after stopping the private dockerd: {left:?}");
    }
    println!("    dockerd stopped; run directory, cgroups and bridge {BRIDGE} removed");
    Ok(())
}

/// Processes whose command line names our run directory (dockerd, its containerd and
/// the containerd shims of our containers).
fn ours_running() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| {
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            cmd.contains(RUN_DIR)
                .then(|| format!("{} {}", e.file_name().to_string_lossy(), cmd.trim()))
        })
        .collect()
}

/// Is another dockerd (not ours, which is gone by now) running on this host? Then the
/// `docker` cgroups may be its own and are left alone.
fn other_dockerd() -> bool {
    std::fs::read_dir("/proc").is_ok_and(|rd| {
        rd.flatten().any(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "dockerd")
        })
    })
}

/// The `docker` cgroup directories (the daemon's cgroup parent with the cgroupfs
/// driver): `/sys/fs/cgroup/<hierarchy>/docker` of every v1 hierarchy and of cgroup2
/// (`unified`), or `/sys/fs/cgroup/docker` on a cgroup2-only host; container cgroups
/// below them first.
fn docker_cgroups() -> Vec<std::path::PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut parents = vec![root.join("docker")];
    if let Ok(rd) = std::fs::read_dir(root) {
        parents.extend(rd.flatten().map(|e| e.path().join("docker")));
    }
    let mut out = Vec::new();
    for d in parents.into_iter().filter(|d| d.is_dir()) {
        if let Ok(sub) = std::fs::read_dir(&d) {
            out.extend(sub.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
        out.push(d);
    }
    out
}
