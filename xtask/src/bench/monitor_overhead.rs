//! Suite `monitor-overhead`: how much a monitor slows down what it measures, and what it
//! costs itself. N containers (10, 100: cgroups under `faasload/mbench-<pid>/`) each run
//! fixed CPU work (`xtask/bench/burn.py`: a fixed number of loop iterations in short
//! bursts with short sleeps, so that processes switch often) under (a) no monitor, (b) the
//! eBPF monitor, (b') the eBPF monitor with the kernel's BPF run-time statistics on, (c)
//! the cgroupfs-polling backend at 10 ms (FaaSLoad's setting) and at 1 s (cAdvisor's).
//! Reported: the makespan of the work and its slowdown against (a) in the same round, the
//! monitor's own CPU (schedstat of all its threads) and, for (b'), each kernel program's
//! run time (BPF stats, turned on by the monitor for its lifetime only).
//! Configurations are interleaved round by round (rotated order), so drift hits all.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use faasload_protocol::monitor::{Backend, ContainerList, Query, Stats};

use super::Options;
use super::mon::{self, Monitor, MonitorSpec, Tree, check_interrupt, median, min_max};
use crate::workspace::Workspace;

/// A `burn.py` worker in its container; killed on drop.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn spawn(script: &Path) -> Result<Worker> {
        let mut child = Command::new("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("start python3 burn.py")?;
        let stdin = child.stdin.take().context("stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
        let mut l = String::new();
        stdout.read_line(&mut l)?;
        if l.trim() != "ready" {
            bail!("burn.py said {l:?} instead of ready");
        }
        Ok(Worker {
            child,
            stdin,
            stdout,
        })
    }

    fn go(&mut self, w: &Work) -> Result<()> {
        writeln!(self.stdin, "go {} {} {}", w.bursts, w.iters, w.sleep_us)?;
        self.stdin.flush()?;
        Ok(())
    }

    /// The worker's own elapsed time of its last `go`, in ns.
    fn done(&mut self) -> Result<u64> {
        let mut l = String::new();
        self.stdout.read_line(&mut l)?;
        l.trim()
            .parse()
            .with_context(|| format!("burn.py answered {l:?}"))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy, Debug)]
struct Work {
    bursts: u64,
    iters: u64,
    sleep_us: u64,
}

/// One measured run.
struct RunResult {
    makespan_s: f64,
    mean_worker_s: f64,
    monitor_cpu_s: f64,
    ctxt_per_s: f64,
    /// (program, run_count delta, run_time_ns delta) for the BPF-stats configuration.
    progs: Vec<(String, u64, u64)>,
}

const BURST_MS: f64 = 0.5;
const SLEEP_US: u64 = 100;

pub(super) fn run(ws: &Workspace, opts: &Options) -> Result<String> {
    let (rounds, target_s) = if opts.quick { (1, 1.0) } else { (3, 2.0) };
    let ns = [10usize, 100];
    let bin = opts.faasload(ws)?;
    let _sig = mon::SigintGuard::install();
    let tmp = mon::TempDir::create("mbench-overhead")?;
    let mut tree = Tree::create()?;
    let rel = tree.rel.clone();
    let h = tree.h.clone();
    let result = measure(ws, &bin, &tmp.path, &mut tree, rounds, target_s, &ns);
    drop(tree);
    let left = mon::leftovers(&h, &rel);
    if !left.is_empty() {
        bail!("cgroups left behind: {left:?}");
    }
    result
}

fn ctxt() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("ctxt "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn measure(
    ws: &Workspace,
    bin: &Path,
    dir: &Path,
    tree: &mut Tree,
    rounds: usize,
    target_s: f64,
    ns: &[usize],
) -> Result<String> {
    let script = ws.root.join("xtask/bench/burn.py");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Calibrate: iterations per ms of one worker, outside any container.
    let mut cal = Worker::spawn(&script)?;
    cal.go(&Work {
        bursts: 50,
        iters: 20_000,
        sleep_us: 0,
    })?;
    let t = cal.done()? as f64 / 1e9;
    drop(cal);
    let iters_per_ms = (50.0 * 20_000.0 / (t * 1e3)).max(1.0);
    let iters = (iters_per_ms * BURST_MS).round() as u64;
    println!("    calibration: {iters_per_ms:.0} iterations/ms; a burst is {iters} iterations");

    let max_n = *ns.iter().max().unwrap_or(&0);
    let mut workers = Vec::with_capacity(max_n);
    for i in 0..max_n {
        let name = format!("c{i}");
        tree.add_container(&name)?;
        let w = Worker::spawn(&script)?;
        tree.add_pid(&name, w.child.id())?;
        workers.push(w);
        check_interrupt()?;
    }
    let configs: Vec<Option<MonitorSpec>> = vec![
        None,
        Some(MonitorSpec {
            backend: Backend::Ebpf,
            interval_ms: 10.0,
            bpf_stats: false,
        }),
        Some(MonitorSpec {
            backend: Backend::Ebpf,
            interval_ms: 10.0,
            bpf_stats: true,
        }),
        Some(MonitorSpec {
            backend: Backend::Ebpf,
            interval_ms: 1000.0,
            bpf_stats: false,
        }),
        Some(MonitorSpec {
            backend: Backend::Cgroupfs,
            interval_ms: 10.0,
            bpf_stats: false,
        }),
        Some(MonitorSpec {
            backend: Backend::Cgroupfs,
            interval_ms: 1000.0,
            bpf_stats: false,
        }),
    ];
    let label = |c: &Option<MonitorSpec>| {
        c.as_ref()
            .map_or("no monitor".to_string(), MonitorSpec::label)
    };
    // results[n index][config index] = per-round results
    let mut results: Vec<Vec<Vec<RunResult>>> = ns
        .iter()
        .map(|_| configs.iter().map(|_| Vec::new()).collect())
        .collect();
    let mut works = Vec::new();
    for &n in ns {
        let per_container_ms = target_s * 1e3 * cores as f64 / n as f64;
        works.push(Work {
            bursts: (per_container_ms / BURST_MS).round().max(1.0) as u64,
            iters,
            sleep_us: SLEEP_US,
        });
    }
    for r in 0..rounds {
        for (ni, &n) in ns.iter().enumerate() {
            for k in 0..configs.len() {
                let ci = (k + r) % configs.len();
                check_interrupt()?;
                let cfg = &configs[ci];
                let res = one_run(bin, dir, tree, &mut workers[..n], n, cfg, &works[ni])
                    .with_context(|| format!("round {}, {n} containers, {}", r + 1, label(cfg)))?;
                println!(
                    "    round {} N={n:<3} {:<32} makespan {:.3} s, monitor CPU {:.2} % of a core, {:.0} ctx switches/s",
                    r + 1,
                    label(cfg),
                    res.makespan_s,
                    100.0 * res.monitor_cpu_s / res.makespan_s,
                    res.ctxt_per_s
                );
                results[ni][ci].push(res);
            }
        }
    }
    drop(workers);

    // Tables.
    let mut md = String::new();
    let sysctl = std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled")
        .map_or("unreadable".into(), |s| s.trim().to_owned());
    let _ = writeln!(
        md,
        "Set-up: cgroup {} host; N containers = cgroups `faasload/mbench-<pid>/c<i>`, each \
         holding one `python3 xtask/bench/burn.py` worker; per run every worker gets \
         `go <bursts> {iters} {SLEEP_US}`: bursts of {iters} loop iterations (≈ {BURST_MS} ms \
         of CPU, calibrated at the start) each followed by a {SLEEP_US} µs sleep, so that \
         the processes switch often. The work per container is sized so that all N together \
         need about {target_s} s on the {cores} cores (N=10: {} bursts each, N=100: {} bursts \
         each). Makespan = from the first `go` to the last worker's answer. Monitors are \
         `target/release/faasload monitor` started fresh for each run with a pattern that \
         matches exactly the N containers (announced with a `run` notification, then 0.5 s \
         to settle); 'monitor CPU' = CPU time of all its threads (`/proc/<pid>/task/*/schedstat`) \
         during the makespan, in % of one core. {rounds} rounds; in each round every \
         configuration runs once, in an order rotated from round to round; slowdown is \
         against the no-monitor run of the same round and N. Values: median (min..max) \
         over rounds. BPF run-time statistics are on only while the '+ BPF stats' monitor \
         runs (it holds the kernel's BPF_ENABLE_STATS handle, released when it exits; \
         `kernel.bpf_stats_enabled` read {sysctl} after the run; another user of the \
         machine turning them on would add their cost to every eBPF row).\n",
        tree.h.version(),
        works[0].bursts,
        works.get(1).map_or(0, |w| w.bursts),
    );
    println!();
    for (ni, &n) in ns.iter().enumerate() {
        let _ = writeln!(md, "### {n} containers\n");
        let _ = writeln!(
            md,
            "| configuration | makespan (s) | slowdown vs no monitor | mean worker time (s) | monitor CPU (% of one core) | context switches/s |\n|---|---|---|---|---|---|"
        );
        println!("    {n} containers:");
        for (ci, cfg) in configs.iter().enumerate() {
            let rs = &results[ni][ci];
            let mk: Vec<f64> = rs.iter().map(|r| r.makespan_s).collect();
            let slow: Vec<f64> = rs
                .iter()
                .zip(&results[ni][0])
                .map(|(r, b)| 100.0 * (r.makespan_s / b.makespan_s - 1.0))
                .collect();
            let mw: Vec<f64> = rs.iter().map(|r| r.mean_worker_s).collect();
            let cpu: Vec<f64> = rs
                .iter()
                .map(|r| 100.0 * r.monitor_cpu_s / r.makespan_s)
                .collect();
            let cs: Vec<f64> = rs.iter().map(|r| r.ctxt_per_s).collect();
            let f = |v: &[f64], d: usize| {
                let (a, b) = min_max(v);
                format!("{:.d$} ({:.d$}..{:.d$})", median(v), a, b)
            };
            let slow_s = if ci == 0 {
                "–".to_string()
            } else {
                let (a, b) = min_max(&slow);
                format!("{:+.2} % ({:+.2}..{:+.2})", median(&slow), a, b)
            };
            let cpu_s = if ci == 0 {
                "–".to_string()
            } else {
                f(&cpu, 2)
            };
            let row = format!(
                "| {} | {} | {} | {} | {} | {:.0} |",
                label(cfg),
                f(&mk, 3),
                slow_s,
                f(&mw, 3),
                cpu_s,
                median(&cs)
            );
            println!("    {row}");
            let _ = writeln!(md, "{row}");
        }
        let _ = writeln!(md, "\nRaw makespans per round (s):\n");
        let _ = writeln!(
            md,
            "| configuration | {} |\n|---|{}",
            (1..=rounds)
                .map(|r| format!("round {r}"))
                .collect::<Vec<_>>()
                .join(" | "),
            "---|".repeat(rounds)
        );
        for (ci, cfg) in configs.iter().enumerate() {
            let _ = writeln!(
                md,
                "| {} | {} |",
                label(cfg),
                results[ni][ci]
                    .iter()
                    .map(|r| format!("{:.3}", r.makespan_s))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        }
        // BPF program statistics.
        if let Some(ci) = configs
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| c.bpf_stats))
        {
            let rs = &results[ni][ci];
            let mut names: Vec<String> = rs
                .iter()
                .flat_map(|r| r.progs.iter().map(|p| p.0.clone()))
                .collect();
            names.sort();
            names.dedup();
            let _ = writeln!(
                md,
                "\nKernel programs of the eBPF monitor (run with BPF stats on; deltas over the makespan, median over rounds):\n\n\
                 | program | runs/s | ns per run | % of one core |\n|---|---|---|---|"
            );
            let mut total = Vec::new();
            for name in &names {
                let mut rate = Vec::new();
                let mut per = Vec::new();
                let mut core = Vec::new();
                for r in rs {
                    if let Some((_, cnt, t)) = r.progs.iter().find(|p| &p.0 == name) {
                        rate.push(*cnt as f64 / r.makespan_s);
                        per.push(if *cnt > 0 {
                            *t as f64 / *cnt as f64
                        } else {
                            0.0
                        });
                        core.push(100.0 * *t as f64 / 1e9 / r.makespan_s);
                    }
                }
                let _ = writeln!(
                    md,
                    "| `{name}` | {:.0} | {:.0} | {:.3} |",
                    median(&rate),
                    median(&per),
                    median(&core)
                );
            }
            for r in rs {
                total.push(
                    100.0 * r.progs.iter().map(|p| p.2).sum::<u64>() as f64 / 1e9 / r.makespan_s,
                );
            }
            let (a, b) = min_max(&total);
            let _ = writeln!(
                md,
                "| all programs | | | {:.3} ({a:.3}..{b:.3}) |",
                median(&total)
            );
            println!(
                "    BPF programs, all: {:.3} % of one core (median)",
                median(&total)
            );
        }
        let _ = writeln!(md);
    }
    Ok(md)
}

fn one_run(
    bin: &Path,
    dir: &Path,
    tree: &Tree,
    workers: &mut [Worker],
    n: usize,
    cfg: &Option<MonitorSpec>,
    work: &Work,
) -> Result<RunResult> {
    let digits = (n.max(2) - 1).to_string().len();
    let pattern = format!("^{}/(?P<id>c[0-9]{{1,{digits}}})$", tree.rel);
    let mut monitor = match cfg {
        Some(spec) => {
            let m = Monitor::start_with_pattern(bin, dir, "m", spec, &pattern)?;
            for i in 0..n {
                m.announce(&format!("c{i}"))?;
            }
            let s: ContainerList = mon::request(&m.query, &Query::Containers)?;
            let seen = s.containers.len();
            if seen != n {
                bail!("{} sees {seen} containers, expected {n}", m.label);
            }
            Some(m)
        }
        None => None,
    };
    std::thread::sleep(Duration::from_millis(500));
    let pid = monitor.as_ref().map_or(0, Monitor::pid);
    let stats = |m: &Option<Monitor>| -> Result<Vec<(String, u64, u64)>> {
        let Some(m) = m else { return Ok(vec![]) };
        let s: Stats = mon::request(&m.query, &Query::Stats)?;
        Ok(s.programs
            .into_iter()
            .map(|p| (p.name, p.run_count, p.run_time_ns))
            .collect())
    };
    let p0 = stats(&monitor)?;
    let cpu0 = if pid > 0 { mon::process_cpu_ns(pid) } else { 0 };
    let c0 = ctxt();
    let t0 = Instant::now();
    for w in workers.iter_mut() {
        w.go(work)?;
    }
    let mut sum = 0u64;
    for w in workers.iter_mut() {
        sum += w.done()?;
    }
    let makespan = t0.elapsed().as_secs_f64();
    let c1 = ctxt();
    let cpu1 = if pid > 0 { mon::process_cpu_ns(pid) } else { 0 };
    let p1 = stats(&monitor)?;
    if let Some(m) = monitor.as_mut() {
        m.stop()?;
    }
    let progs = p1
        .iter()
        .map(|(name, c, t)| {
            let (c0, t0) = p0
                .iter()
                .find(|p| &p.0 == name)
                .map_or((0, 0), |p| (p.1, p.2));
            (name.clone(), c.saturating_sub(c0), t.saturating_sub(t0))
        })
        .collect();
    Ok(RunResult {
        makespan_s: makespan,
        mean_worker_s: sum as f64 / n as f64 / 1e9,
        monitor_cpu_s: cpu1.saturating_sub(cpu0) as f64 / 1e9,
        ctxt_per_s: c1.saturating_sub(c0) as f64 / makespan,
        progs,
    })
}
