//! Suite `platform`: warm and cold invoke latency of a no-op action through the embedded
//! platform, with the platform's overhead split out and the HTTP floor of the same client
//! beside it.
//!
//! Builds `faasload` (release), starts `faasload platform` standalone on a free loopback
//! port with a temporary work directory and configuration, runs the client
//! (`xtask/bench/platform_client.py`, standard-library Python: one keep-alive connection,
//! monotonic clock) against it and against [`FloorServer`], then stops the platform with
//! SIGTERM and checks that its shutdown removed every container cgroup it made. The
//! platform process and the temporary directory are cleaned up on every path.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::Options;
use super::floor::FloorServer;
use crate::cmd::{self, step};
use crate::workspace::Workspace;

/// OpenWhisk's public guest key, as in `config/platform.yml`.
const GUEST_AUTH: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";
/// Container-name prefix of this suite's platform, so that the leftover check looks only
/// at containers this run made (other platforms may run on the machine).
const INVOKER: &str = "wskbench";

/// Sizes of a run.
struct Sizes {
    n: u32,
    reps: u32,
    warmup: u32,
    cold: u32,
}

pub(super) fn run(ws: &Workspace, opts: &Options) -> Result<String> {
    let sizes = if opts.quick {
        Sizes {
            n: 200,
            reps: 3,
            warmup: 50,
            cold: 3,
        }
    } else {
        Sizes {
            n: 5000,
            reps: 10,
            warmup: 500,
            cold: 20,
        }
    };
    let bin = opts.faasload(ws)?;
    let tmp = TempDir::create()?;
    let body = measure(ws, &bin, &tmp, &sizes);
    drop(tmp);
    body
}

fn measure(ws: &Workspace, bin: &Path, tmp: &TempDir, sizes: &Sizes) -> Result<String> {
    let port = free_port()?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let config = tmp.path.join("platform.yml");
    std::fs::write(&config, config_text(&tmp.path)).context("write the platform config")?;
    let log_path = tmp.path.join("platform.log");
    let work_dir = tmp.path.join("work");

    let mut platform = step("start faasload platform", || {
        Platform::start(bin, &config, addr, &work_dir, &log_path)
    })?;
    let floor = FloorServer::start()?;
    let md_path = tmp.path.join("results.md");
    let client = ws.root.join("xtask/bench/platform_client.py");
    let fn_dir = ws.root.join("functions");
    let measured = step("client: deploy, cold starts, warm repetitions", || {
        cmd::run(
            Command::new("python3")
                .arg(&client)
                .args(["--platform", &addr.to_string()])
                .args(["--floor", &floor.addr().to_string()])
                .args(["--auth", GUEST_AUTH])
                .arg("--action")
                .arg(format!(
                    "noop_py=python:3={}",
                    fn_dir.join("python/noop.py").display()
                ))
                .arg("--action")
                .arg(format!(
                    "noop_js=nodejs:20={}",
                    fn_dir.join("nodejs/noop.js").display()
                ))
                .args(["-n", &sizes.n.to_string()])
                .args(["-r", &sizes.reps.to_string()])
                .args(["--warmup", &sizes.warmup.to_string()])
                .args(["--cold", &sizes.cold.to_string()])
                .arg("--out-md")
                .arg(&md_path),
        )
    });
    drop(floor);
    // Stop the platform whatever happened, then check its cgroups.
    let stopped = step("stop faasload platform (SIGTERM)", || platform.stop());
    let leftovers = leftover_cgroups();
    for p in &leftovers {
        eprintln!("xtask: leftover container cgroup: {}", p.display());
    }
    if let Err(e) = &measured {
        print_log_tail(&log_path);
        return Err(anyhow::anyhow!("{e:#}"));
    }
    if let Err(e) = stopped {
        print_log_tail(&log_path);
        return Err(e);
    }
    if !leftovers.is_empty() {
        bail!(
            "the platform's shutdown left container cgroups behind: {}",
            leftovers
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!("    no leftover container cgroups under */faasload/platform");
    let results =
        std::fs::read_to_string(&md_path).with_context(|| format!("read {}", md_path.display()))?;
    let conf = std::fs::read_to_string(&config).unwrap_or_default();
    Ok(format!(
        "Set-up: `target/release/faasload platform` standalone (process backend) on \
         {addr}, actions `functions/python/noop.py` (`python:3`) and \
         `functions/nodejs/noop.js` (`nodejs:20`) deployed with 128 MB through \
         `PUT /api/v1/namespaces/_/actions/<name>?overwrite=true`; the client is \
         `xtask/bench/platform_client.py` (Python `http.client`, one keep-alive connection \
         per server, `time.perf_counter_ns`); the floor server is a minimal Rust HTTP/1.1 \
         server inside xtask answering a fixed activation record. Platform configuration \
         (rate limits raised, no prewarm so that cold starts are real, OpenWhisk's current \
         10 s pause grace):\n\n```yaml\n{}\n```\n\n{results}",
        conf.trim_end()
    ))
}

fn config_text(tmp: &Path) -> String {
    format!(
        "# Written by cargo xtask bench platform.\n\
         namespaces:\n\
         \x20 - name: guest\n\
         \x20   auth: \"{GUEST_AUTH}\"\n\
         throttle:\n\
         \x20 invocations_per_minute: 100000000\n\
         \x20 concurrent_invocations: 100000\n\
         pool:\n\
         \x20 user_memory_mb: 8192\n\
         \x20 pause_grace_ms: 10000\n\
         \x20 invoker_name: {INVOKER}\n\
         \x20 prewarm: []\n\
         notify_socket: {}\n",
        tmp.join("no-monitor.sock").display()
    )
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("find a free loopback port")?;
    Ok(l.local_addr()?.port())
}

/// Container cgroups of this suite's invoker still present under the platform subtree,
/// in every hierarchy (v1 controllers and v2 unified).
fn leftover_cgroups() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut parents = vec![root.join("faasload/platform")];
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.flatten() {
            parents.push(e.path().join("faasload/platform"));
        }
    }
    let prefix = format!("{INVOKER}_");
    let mut left = Vec::new();
    for p in parents {
        if let Ok(rd) = std::fs::read_dir(&p) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) && e.path().is_dir() {
                    left.push(e.path());
                }
            }
        }
    }
    left
}

fn print_log_tail(log: &Path) {
    if let Ok(s) = std::fs::read_to_string(log) {
        let lines: Vec<&str> = s.lines().collect();
        eprintln!("--- last lines of the platform's log ({}):", log.display());
        for l in &lines[lines.len().saturating_sub(30)..] {
            eprintln!("    {l}");
        }
    }
}

/// A temporary directory, removed on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn create() -> Result<Self> {
        let base = std::env::temp_dir();
        for i in 0..100u32 {
            let path = base.join(format!("faasload-bench-{}-{i}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("create {}", path.display())),
            }
        }
        bail!("cannot create a temporary directory in {}", base.display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("xtask: cannot remove {}: {e}", self.path.display());
        }
    }
}

/// The platform process; SIGTERMed and waited for on drop if not stopped before.
struct Platform {
    child: Option<Child>,
}

impl Platform {
    fn start(
        bin: &Path,
        config: &Path,
        addr: SocketAddr,
        work_dir: &Path,
        log: &Path,
    ) -> Result<Self> {
        let out = File::create(log).with_context(|| format!("create {}", log.display()))?;
        let err = out.try_clone()?;
        let mut c = Command::new(bin);
        c.arg("platform")
            .arg("--config")
            .arg(config)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--work-dir")
            .arg(work_dir)
            .env_remove("FAASLOAD_PLATFORM_CONFIG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        println!("    $ {c:?}");
        let child = c
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let mut p = Platform { child: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let child = p.child.as_mut().expect("running");
            if let Some(status) = child.try_wait()? {
                p.child = None;
                print_log_tail(log);
                bail!("the platform exited during start-up ({status})");
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                println!("    listening on {addr} (pid {})", child.id());
                return Ok(p);
            }
            if Instant::now() > deadline {
                print_log_tail(log);
                bail!("the platform did not listen on {addr} within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then waits (up to 60 s, then SIGKILL); an error unless it exited cleanly.
    fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id() as libc::pid_t;
        // SAFETY: plain syscall on our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    bail!("the platform exited with {status} on SIGTERM");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the platform did not stop within 60 s of SIGTERM; killed it");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("xtask: {e:#}");
        }
    }
}
