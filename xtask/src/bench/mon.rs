//! Shared parts of the monitor suites (`monitor-overhead`, `monitor-precision`,
//! `monitor-query`): the suite's own cgroups under `faasload/mbench-<pid>/`, the
//! `faasload monitor` daemon under test, socket requests, per-process CPU time, idle
//! `faasload workload` processes, Ctrl-C handling and small statistics. Everything made
//! here is removed on drop, so a suite cleans up on every path (errors and Ctrl-C
//! included: SIGINT only sets a flag that the suites check between steps).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use faasload_protocol::monitor::{
    Ack, Backend, ContainerAction, Hello, Notification, Query, decode,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Set by SIGINT while a suite runs.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// While alive, Ctrl-C sets a flag (see [`check_interrupt`]) instead of killing xtask, so
/// that the suite's clean-up runs. Children in the terminal's process group still get the
/// signal and exit; the suite then fails and cleans up.
pub(super) struct SigintGuard;

impl SigintGuard {
    pub(super) fn install() -> SigintGuard {
        INTERRUPTED.store(false, Ordering::SeqCst);
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
        SigintGuard
    }
}

impl Drop for SigintGuard {
    fn drop(&mut self) {
        // SAFETY: restoring the default disposition.
        unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
    }
}

/// An error once Ctrl-C was pressed.
pub(super) fn check_interrupt() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted (Ctrl-C); cleaning up");
    }
    Ok(())
}

/// The cgroup hierarchies in use, as the monitor chooses them (v1 when the `cpu`
/// controller is on v1).
#[derive(Clone, Debug)]
pub(super) struct Hierarchies {
    pub v2: bool,
    /// v1: directories of the `cpu`, `cpuacct` and `memory` hierarchies (deduplicated);
    /// v2: the unified root.
    pub roots: Vec<PathBuf>,
    cpuacct: PathBuf,
    memory: PathBuf,
}

impl Hierarchies {
    pub(super) fn detect() -> Result<Hierarchies> {
        let text =
            std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
        let (mut cpu, mut cpuacct, mut memory, mut v2) = (None, None, None, None);
        for line in text.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let Some(mount) = left.split(' ').nth(4) else {
                continue;
            };
            let mut r = right.split(' ');
            let fstype = r.next();
            let opts = r.nth(1).unwrap_or("");
            match fstype {
                Some("cgroup2") if v2.is_none() => v2 = Some(PathBuf::from(mount)),
                Some("cgroup") => {
                    for o in opts.split(',') {
                        let slot = match o {
                            "cpu" => &mut cpu,
                            "cpuacct" => &mut cpuacct,
                            "memory" => &mut memory,
                            _ => continue,
                        };
                        slot.get_or_insert_with(|| PathBuf::from(mount));
                    }
                }
                _ => {}
            }
        }
        if let (Some(cpu), Some(cpuacct), Some(memory)) = (cpu, cpuacct, memory) {
            let mut roots: Vec<PathBuf> = Vec::new();
            for r in [&cpu, &cpuacct, &memory] {
                if !roots.contains(r) {
                    roots.push(r.clone());
                }
            }
            return Ok(Hierarchies {
                v2: false,
                roots,
                cpuacct,
                memory,
            });
        }
        let root = v2.context("no cgroup v1 cpu/cpuacct/memory and no cgroup2 mount")?;
        Ok(Hierarchies {
            v2: true,
            roots: vec![root.clone()],
            cpuacct: root.clone(),
            memory: root,
        })
    }

    pub(super) fn version(&self) -> &'static str {
        if self.v2 { "v2" } else { "v1" }
    }
}

/// This suite's subtree `faasload/mbench-<pid>` and its container cgroups; all removed
/// (their processes, which are ours, killed) on drop.
pub(super) struct Tree {
    pub h: Hierarchies,
    /// `faasload/mbench-<pid>`, relative to the roots.
    pub rel: String,
    containers: Vec<String>,
}

impl Tree {
    pub(super) fn create() -> Result<Tree> {
        let h = Hierarchies::detect()?;
        let rel = format!("faasload/mbench-{}", std::process::id());
        for r in &h.roots {
            let d = r.join(&rel);
            std::fs::create_dir_all(&d).with_context(|| format!("create {}", d.display()))?;
        }
        if h.v2 {
            // Enable cpu and memory from the root of faasload's subtree down.
            for d in [h.roots[0].clone(), h.roots[0].join("faasload")] {
                let _ = std::fs::write(d.join("cgroup.subtree_control"), "+cpu");
                let _ = std::fs::write(d.join("cgroup.subtree_control"), "+memory");
            }
            let _ = std::fs::write(
                h.roots[0].join(&rel).join("cgroup.subtree_control"),
                "+cpu +memory",
            );
        }
        Ok(Tree {
            h,
            rel,
            containers: Vec::new(),
        })
    }

    /// The regex the monitor is configured with to recognise this tree's containers.
    pub(super) fn pattern(&self) -> String {
        format!("^{}/(?P<id>c[0-9]+)$", self.rel)
    }

    /// Creates container cgroup `name` in every hierarchy.
    pub(super) fn add_container(&mut self, name: &str) -> Result<()> {
        for r in &self.h.roots {
            let d = r.join(&self.rel).join(name);
            std::fs::create_dir_all(&d).with_context(|| format!("create {}", d.display()))?;
        }
        self.containers.push(name.to_owned());
        Ok(())
    }

    /// Moves `pid` (a process this suite started) into container `name`.
    pub(super) fn add_pid(&self, name: &str, pid: u32) -> Result<()> {
        for r in &self.h.roots {
            let f = r.join(&self.rel).join(name).join("cgroup.procs");
            std::fs::write(&f, pid.to_string())
                .with_context(|| format!("write {pid} to {}", f.display()))?;
        }
        Ok(())
    }

    /// The cgroup's own counters of container `name`, files kept open.
    pub(super) fn counters(&self, name: &str) -> Result<Counters> {
        let dir = |r: &Path| r.join(&self.rel).join(name);
        let (cpu, peak) = if self.h.v2 {
            (
                dir(&self.h.cpuacct).join("cpu.stat"),
                dir(&self.h.memory).join("memory.peak"),
            )
        } else {
            (
                dir(&self.h.cpuacct).join("cpuacct.usage"),
                dir(&self.h.memory).join("memory.max_usage_in_bytes"),
            )
        };
        let open = |p: &Path, w: bool| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(w)
                .open(p)
                .with_context(|| format!("open {}", p.display()))
        };
        Ok(Counters {
            v2: self.h.v2,
            cpu: open(&cpu, false)?,
            peak: open(&peak, true)?,
        })
    }

    /// The CPU and current-memory counter files of container `name`.
    pub(super) fn counter_paths(&self, name: &str) -> (PathBuf, PathBuf) {
        let dir = |r: &Path| r.join(&self.rel).join(name);
        if self.h.v2 {
            (
                dir(&self.h.cpuacct).join("cpu.stat"),
                dir(&self.h.memory).join("memory.current"),
            )
        } else {
            (
                dir(&self.h.cpuacct).join("cpuacct.usage"),
                dir(&self.h.memory).join("memory.usage_in_bytes"),
            )
        }
    }

    fn procs(&self, name: &str) -> Vec<u32> {
        let f = self.h.roots[0]
            .join(&self.rel)
            .join(name)
            .join("cgroup.procs");
        std::fs::read_to_string(f)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        for name in &self.containers {
            // Only this suite puts processes here: kill them, wait until empty.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let pids = self.procs(name);
                if pids.is_empty() || Instant::now() > deadline {
                    break;
                }
                for p in pids {
                    // SAFETY: plain syscall on a process of our own cgroup.
                    unsafe { libc::kill(p as i32, libc::SIGKILL) };
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        for r in &self.h.roots {
            let base = r.join(&self.rel);
            for name in &self.containers {
                rmdir_retry(&base.join(name));
            }
            rmdir_retry(&base);
        }
    }
}

fn rmdir_retry(d: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match std::fs::remove_dir(d) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) if Instant::now() < deadline && e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                eprintln!("xtask: cannot remove cgroup {}: {e}", d.display());
                return;
            }
        }
    }
}

/// Leftover cgroup directories of this suite's tree (should be none after drop).
pub(super) fn leftovers(h: &Hierarchies, rel: &str) -> Vec<PathBuf> {
    h.roots
        .iter()
        .map(|r| r.join(rel))
        .filter(|d| d.exists())
        .collect()
}

/// Open counter files of one container cgroup (the reference the monitor is judged by).
pub(super) struct Counters {
    v2: bool,
    cpu: File,
    peak: File,
}

impl Counters {
    /// Cumulative CPU time (ns): v1 `cpuacct.usage`, v2 `cpu.stat usage_usec` × 1000.
    pub(super) fn cpu_ns(&self) -> Result<u64> {
        let mut buf = [0u8; 4096];
        let n = self
            .cpu
            .read_at(&mut buf, 0)
            .context("read the CPU counter")?;
        let s = std::str::from_utf8(&buf[..n]).unwrap_or("");
        if self.v2 {
            s.lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|v| v * 1000)
                .context("cpu.stat without usage_usec")
        } else {
            s.trim().parse().context("cpuacct.usage is not a number")
        }
    }

    /// Resets the peak-memory counter (v1: the cgroup's; v2: this file's view).
    pub(super) fn reset_peak(&self) -> Result<()> {
        self.peak
            .write_at(if self.v2 { b"reset\n" } else { b"0\n" }, 0)
            .context("reset the memory peak")?;
        Ok(())
    }

    /// Peak memory (bytes) since the last reset.
    pub(super) fn peak(&self) -> Result<u64> {
        let mut buf = [0u8; 64];
        let n = self
            .peak
            .read_at(&mut buf, 0)
            .context("read the memory peak")?;
        std::str::from_utf8(&buf[..n])
            .unwrap_or("")
            .trim()
            .parse()
            .context("memory peak is not a number")
    }
}

/// A `faasload monitor` daemon under test, SIGTERMed (and waited for) on drop.
pub(super) struct Monitor {
    child: Option<Child>,
    pub notify: PathBuf,
    pub query: PathBuf,
    pub label: String,
}

/// How a monitor is configured.
#[derive(Clone, Debug)]
pub(super) struct MonitorSpec {
    pub backend: Backend,
    pub interval_ms: f64,
    pub bpf_stats: bool,
}

impl MonitorSpec {
    pub(super) fn label(&self) -> String {
        let mut s = if self.backend == Backend::Ebpf {
            format!(
                "eBPF monitor (memory sampled every {})",
                fmt_interval(self.interval_ms)
            )
        } else {
            format!("cgroupfs polling {}", fmt_interval(self.interval_ms))
        };
        if self.bpf_stats {
            s.push_str(" + BPF stats");
        }
        s
    }
}

pub(super) fn fmt_interval(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", ms / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

impl Monitor {
    /// Starts `bin monitor` for every container of `tree`.
    pub(super) fn start(
        bin: &Path,
        dir: &Path,
        tag: &str,
        spec: &MonitorSpec,
        tree: &Tree,
    ) -> Result<Monitor> {
        Self::start_with_pattern(bin, dir, tag, spec, &tree.pattern())
    }

    /// Starts `bin monitor` with a config written to `dir/<tag>.yml` recognising the
    /// cgroups that `pattern` matches, and waits for `hello`.
    pub(super) fn start_with_pattern(
        bin: &Path,
        dir: &Path,
        tag: &str,
        spec: &MonitorSpec,
        pattern: &str,
    ) -> Result<Monitor> {
        let notify = dir.join(format!("{tag}-notify.sock"));
        let query = dir.join(format!("{tag}-query.sock"));
        let cfg = dir.join(format!("{tag}.yml"));
        std::fs::write(
            &cfg,
            format!(
                "# Written by cargo xtask bench.\nbackend: {}\ninterval_ms: {}\nmax_age_s: 3600\n\
                 notify_socket: {}\nquery_socket: {}\nbpf_stats: {}\n\
                 patterns:\n  - kind: bench\n    regex: '{}'\n",
                config_name(spec.backend),
                spec.interval_ms,
                notify.display(),
                query.display(),
                spec.bpf_stats,
                pattern
            ),
        )
        .with_context(|| format!("write {}", cfg.display()))?;
        let log = File::create(dir.join(format!("{tag}.log")))?;
        let child = Command::new(bin)
            .arg("monitor")
            .arg("--config")
            .arg(&cfg)
            .env("FAASLOAD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {} monitor", bin.display()))?;
        let mut m = Monitor {
            child: Some(child),
            notify,
            query,
            label: spec.label(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = m.child.as_mut().expect("running").try_wait()? {
                m.child = None;
                let text =
                    std::fs::read_to_string(dir.join(format!("{tag}.log"))).unwrap_or_default();
                bail!("the monitor exited during start-up ({st}): {}", text.trim());
            }
            if let Ok(h) = request::<Hello>(&m.query, &Query::Hello) {
                if h.backend != spec.backend {
                    bail!(
                        "monitor answered hello {h:?}, expected backend {:?}",
                        spec.backend
                    );
                }
                return Ok(m);
            }
            if Instant::now() > deadline {
                bail!(
                    "the monitor did not answer on {} within 60 s",
                    m.query.display()
                );
            }
            check_interrupt()?;
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Tells the monitor about a container (it rescans if needed) and checks it is found.
    pub(super) fn announce(&self, name: &str) -> Result<()> {
        let a: Ack = request(
            &self.notify,
            &Notification::container(ContainerAction::Run, name).with_ack(),
        )
        .with_context(|| format!("{}: container {name} not found", self.label))?;
        if !a.ok {
            bail!("{}: container {name} not found: {a:?}", self.label);
        }
        Ok(())
    }

    /// Opens activation `id` in container `name` (with ack), as an invoker would when a
    /// request starts running there: the container is then busy for the monitor.
    pub(super) fn start_activation(&self, name: &str, id: &str) -> Result<()> {
        let a: Ack = request(
            &self.notify,
            &Notification::activation_start(name, id).with_ack(),
        )
        .with_context(|| format!("{}: activation_start in {name}", self.label))?;
        if !a.ok {
            bail!("{}: activation_start in {name} refused: {a:?}", self.label);
        }
        Ok(())
    }

    /// SIGTERM and wait (SIGKILL after 20 s); an error unless it exited cleanly.
    pub(super) fn stop(&mut self) -> Result<()> {
        let Some(mut c) = self.child.take() else {
            return Ok(());
        };
        // SAFETY: signalling our own, not yet reaped child.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = c.try_wait()? {
                if !st.success() {
                    bail!("{} exited with {st} on SIGTERM", self.label);
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                bail!("{} did not stop within 20 s; killed", self.label);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("xtask: {e:#}");
        }
    }
}

/// The monitor configuration's name of a backend.
fn config_name(b: Backend) -> &'static str {
    match b {
        Backend::Ebpf => "ebpf",
        Backend::Cgroupfs => "cgroupfs",
    }
}

/// A request as one line.
fn line(req: &impl Serialize) -> Result<Vec<u8>> {
    let mut l = serde_json::to_vec(req).context("encode a monitor request")?;
    l.push(b'\n');
    Ok(l)
}

/// One request on a fresh connection, its one-line answer read as `T`.
pub(super) fn request<T: DeserializeOwned>(sock: &Path, req: &impl Serialize) -> Result<T> {
    let mut s = UnixStream::connect(sock).with_context(|| format!("connect {}", sock.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(&line(req)?)?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer)?;
    Ok(decode(&answer)?)
}

/// A persistent connection for many requests (one JSON line each way).
pub(super) struct Conn {
    w: UnixStream,
    r: BufReader<UnixStream>,
}

impl Conn {
    pub(super) fn open(sock: &Path) -> Result<Conn> {
        let w = UnixStream::connect(sock).with_context(|| format!("connect {}", sock.display()))?;
        w.set_read_timeout(Some(Duration::from_secs(30)))?;
        let r = BufReader::new(w.try_clone()?);
        Ok(Conn { w, r })
    }

    /// One request, its answer read as `T`.
    pub(super) fn ask<T: DeserializeOwned>(&mut self, req: &impl Serialize) -> Result<T> {
        self.w.write_all(&line(req)?)?;
        let mut answer = String::new();
        self.r.read_line(&mut answer)?;
        Ok(decode(&answer)?)
    }
}

/// CPU time (ns) of every thread of process `pid` (schedstat, exact), 0 if it is gone.
pub(super) fn process_cpu_ns(pid: u32) -> u64 {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    rd.flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// An idle `faasload workload` process (commands on stdin, one JSON answer per line),
/// killed on drop.
pub(super) struct Workload {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Workload {
    pub(super) fn spawn(bin: &Path) -> Result<Workload> {
        let mut child = Command::new(bin)
            .arg("workload")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("start faasload workload")?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("stdout")?);
        Ok(Workload {
            child,
            stdin,
            stdout,
        })
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs one command (`cpu <ms>`, `mem <MiB>`, `free`), returns its answer.
    pub(super) fn cmd(&mut self, c: &str) -> Result<Value> {
        writeln!(self.stdin, "{c}")?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let v: Value =
            serde_json::from_str(&line).with_context(|| format!("workload answered {line:?}"))?;
        if v["ok"] != true {
            bail!("workload refused {c:?}: {v}");
        }
        Ok(v)
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary directory, removed on drop.
pub(super) struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub(super) fn create(tag: &str) -> Result<TempDir> {
        let path = std::env::temp_dir().join(format!("faasload-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The q-quantile (0..=1, nearest rank) of `v` (sorted in place); NaN when empty.
pub(super) fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

pub(super) fn median(v: &[f64]) -> f64 {
    quantile(&mut v.to_vec(), 0.5)
}

pub(super) fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        })
}

/// Seconds since the epoch (the monitor's clock for windows).
pub(super) fn epoch_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
