//! The tests' private Docker daemon: installs Debian's `docker.io` when missing, starts
//! `dockerd` with its own data root, exec root, pid file and socket
//! (`unix:///run/faasload-test/docker.sock`) on its own bridge `faasload0`, without
//! touching iptables, IP forwarding or any other Docker daemon of the machine; builds the
//! runtime images once (cached in the data root); and at the end removes every container
//! the tests left, stops the daemon and removes its bridge.
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::cmd;
use crate::test::{apt_install, export, wait_until};
use crate::workspace::Workspace;

pub const HOST: &str = "unix:///run/faasload-test/docker.sock";
const PIDFILE: &str = "/run/faasload-test/docker.pid";
const DATA_ROOT: &str = "/var/lib/faasload-test/docker";
const EXEC_ROOT: &str = "/run/faasload-test/docker-exec";
const LOG: &str = "/run/faasload-test/dockerd.log";
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
pub fn ensure(ws: &Workspace) -> Result<()> {
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

/// After the tests: removes every container of the private daemon (all are the tests'),
/// stops it by the pid in its pid file and removes its bridge. Images stay cached in the
/// data root.
pub fn stop() -> Result<()> {
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
    }
    let Ok(pid) = std::fs::read_to_string(PIDFILE) else {
        return Ok(());
    };
    let pid: i32 = pid
        .trim()
        .parse()
        .with_context(|| format!("{PIDFILE}: not a pid"))?;
    println!("    stopping dockerd (pid {pid})");
    // SAFETY: plain syscall on the pid our daemon wrote.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    // When this process started the daemon it is our child: reap it, or its exit leaves
    // a zombie whose /proc entry never goes away.
    wait_until("dockerd exit", 30, || {
        let mut status = 0;
        // SAFETY: non-blocking waitpid on one pid; ECHILD (not our child) is fine.
        let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid;
        reaped || !Path::new(&format!("/proc/{pid}")).exists()
    })?;
    if Path::new("/sys/class/net").join(BRIDGE).exists() {
        cmd::run(Command::new("ip").args(["link", "del", BRIDGE]))?;
    }
    Ok(())
}
