//! `faasload monitor-check`: runs the real monitor daemon against a sample workload on
//! this host and prints what it saw next to the cgroups' own counters, so a user can see
//! in one command that eBPF loads, containers are discovered and the numbers are right.
//! Everything it creates (cgroups under `faasload/check-<pid>/`, processes, sockets) is
//! removed at the end.
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

use faasload_cgroup::{CgroupReader, Layout, OwnedCgroup};
use faasload_monitor::Backend;
use faasload_protocol::monitor::{
    self as wire, Ack, ActivationQuery, ActivationSummary, ContainerAction, ContainerList, Hello,
    Notification, Query, decode,
};

/// Arguments of `faasload monitor-check`.
#[derive(clap::Args, Debug)]
pub(crate) struct CheckArgs {
    /// Backend of the monitor under check.
    #[arg(long, value_enum, default_value = "ebpf")]
    pub backend: Backend,
}

struct Daemon(Child);
impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// One request on a fresh connection, its one-line answer read as `T`.
fn request<T: DeserializeOwned>(sock: &Path, req: &impl Serialize) -> Result<T> {
    let mut s =
        UnixStream::connect(sock).with_context(|| format!("connecting {}", sock.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    s.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer)?;
    Ok(decode(&answer)?)
}

/// Runs the check.
pub(crate) fn run(a: CheckArgs) -> Result<()> {
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("monitor-check needs root (cgroups, eBPF): run it with sudo");
    }
    let exe = std::env::current_exe()?;
    let dir = std::env::temp_dir().join(format!("faasload-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let tree = format!("check-{}", std::process::id());
    let (notify, query) = (dir.join("notify.sock"), dir.join("query.sock"));
    let cfg = dir.join("monitor.yml");
    std::fs::write(
        &cfg,
        format!(
            "backend: {}\nnotify_socket: {}\nquery_socket: {}\npatterns:\n  - kind: check\n    regex: '^faasload/{tree}/(?P<id>[a-z0-9-]+)$'\n",
            a.backend,
            notify.display(),
            query.display()
        ),
    )?;
    let result = check(&exe, &cfg, &notify, &query, &tree);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn check(exe: &Path, cfg: &Path, notify: &Path, query: &Path, tree: &str) -> Result<()> {
    let layout = Layout::detect()?;
    println!(
        "cgroup {} host; starting `faasload monitor` ...",
        layout.version()
    );
    let _daemon = Daemon(
        Command::new(exe)
            .args(["monitor", "--config"])
            .arg(cfg)
            .env("FAASLOAD_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .context("starting the monitor")?,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let hello: Hello = loop {
        match request(query, &Query::Hello) {
            Ok(v) => break v,
            Err(e) if Instant::now() > deadline => {
                return Err(e.context("the monitor did not come up"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    println!(
        "monitor up: backend {}, protocol {}, hardware counters: {}",
        a_backend_name(hello.backend),
        hello.protocol,
        if hello.hardware.available {
            "available".to_string()
        } else {
            format!(
                "unavailable ({})",
                hello.hardware.reason.as_deref().unwrap_or("?")
            )
        }
    );

    let work: [(&str, &str); 6] = [
        ("fn-a", "cpu 1"),
        ("fn-a", "cpu 10"),
        ("fn-b", "cpu 100"),
        ("fn-b", "mem 64"),
        ("fn-c", "cpu 500"),
        ("fn-a", "cpu 2"),
    ];
    let mut containers: Vec<(String, OwnedCgroup, Child)> = Vec::new();
    println!(
        "\n{:<8} {:<10} {:>14} {:>14} {:>9} {:>12} {:>12}",
        "container", "work", "monitor CPU", "cgroup CPU", "error", "mem peak", "cgroup peak"
    );
    let mut worst = 0.0f64;
    for (i, (name, cmd)) in work.iter().enumerate() {
        if !containers.iter().any(|(n, _, _)| n == name) {
            let cg = OwnedCgroup::create(&layout, format!("{tree}/{name}"))?;
            let mut child = Command::new(exe)
                .arg("workload")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            cg.add_pid(child.id())?;
            // Let the process finish starting (it was moved in mid start-up) and go idle
            // in its cgroup before the first measured activation.
            writeln!(child.stdin.as_mut().expect("piped"), "cpu 0")?;
            let mut ready = String::new();
            BufReader::new(child.stdout.as_mut().expect("piped")).read_line(&mut ready)?;
            let ok: Ack = request(
                notify,
                &Notification::container(ContainerAction::Run, *name).with_ack(),
            )
            .with_context(|| format!("monitor did not find container {name}"))?;
            if !ok.ok {
                bail!("monitor did not find container {name}: {ok:?}");
            }
            containers.push((name.to_string(), cg, child));
        }
        let (_, cg, child) = containers
            .iter_mut()
            .find(|(n, _, _)| n == name)
            .expect("just added");
        let reader = CgroupReader::open(&layout, cg.rel());
        let act = format!("{:032x}", 0xfaa5_10adu64 * 1000 + i as u64);
        let before = reader.read();
        let _: Ack = request(
            notify,
            &Notification::activation_start(*name, &act).with_ack(),
        )?;
        let stdin = child.stdin.as_mut().expect("piped");
        writeln!(stdin, "{cmd}")?;
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("piped")).read_line(&mut line)?;
        let _: Ack = request(
            notify,
            &Notification::activation_end(*name, &act).with_ack(),
        )?;
        let after = reader.read();
        let s: ActivationSummary = request(
            query,
            &Query::Activation(ActivationQuery {
                activation_id: act,
                wait_ms: None,
            }),
        )?;
        let truth = after
            .cpu_ns
            .zip(before.cpu_ns)
            .map(|(a, b)| a.saturating_sub(b));
        let got = s.cpu_ns;
        let err = match (got, truth) {
            (Some(g), Some(t)) => {
                let e = (g as f64 - t as f64).abs();
                worst = worst.max(e / (t as f64 * 0.01).max(200_000.0));
                format!("{:.1} µs", e / 1e3)
            }
            _ => "n/a".into(),
        };
        let ms = |v: Option<u64>| {
            v.map(|v| format!("{:.3} ms", v as f64 / 1e6))
                .unwrap_or_else(|| "n/a".into())
        };
        let mib = |v: Option<u64>| {
            v.map(|v| format!("{:.1} MiB", v as f64 / 1048576.0))
                .unwrap_or_else(|| "n/a".into())
        };
        println!(
            "{:<8} {:<10} {:>14} {:>14} {:>9} {:>12} {:>12}",
            name,
            cmd,
            ms(got),
            ms(truth),
            err,
            mib(s.mem_peak_bytes),
            mib(after.mem_peak)
        );
    }
    let list: ContainerList = request(query, &Query::Containers)?;
    println!(
        "\ncontainers seen by the monitor: {}",
        list.containers.len()
    );
    for (_, cg, mut child) in containers {
        let _ = child.kill();
        let _ = child.wait();
        cg.remove()?;
    }
    faasload_cgroup::remove_subtree(&layout, Path::new(tree))?;
    faasload_cgroup::prune_empty(&layout, Path::new(tree));
    if a_backend_is_exact(&hello) && worst > 1.0 {
        bail!(
            "per-activation CPU off by more than max(1 %, 200 µs) (worst {worst:.2}x the tolerance)"
        );
    }
    println!(
        "per-activation CPU within max(1 %, 200 µs) of the cgroups' own counters: {}",
        if a_backend_is_exact(&hello) {
            "yes"
        } else {
            "not expected of the polling backend"
        }
    );
    Ok(())
}

fn a_backend_is_exact(hello: &Hello) -> bool {
    hello.backend == wire::Backend::Ebpf
}

/// The backend as the monitor's configuration names it.
fn a_backend_name(b: wire::Backend) -> Backend {
    match b {
        wire::Backend::Ebpf => Backend::Ebpf,
        wire::Backend::Cgroupfs => Backend::Cgroupfs,
    }
}
