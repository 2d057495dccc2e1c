//! Suite `monitor-precision`: per-activation CPU time and memory peak as the monitors
//! report them, against the cgroup's own counters. One container (a cgroup under
//! `faasload/mbench-<pid>/`) holds an idle `faasload workload` process; each activation
//! is one command to it (`cpu <ms>` from 1 ms to 10 s, log-spaced, or `mem <MiB>` then
//! `free`). Three monitors watch the same container at the same time:
//! - the eBPF monitor, told of each activation platform-style (`activation_start` /
//!   `activation_end` with ack on its notify socket) and asked with the `activation` query;
//! - cgroupfs polling at 10 ms (FaaSLoad's setting) and at 1 s (cAdvisor's), asked
//!   original-FaaSLoad-style with the window query `{"container","start","end"}` (epoch
//!   seconds of the activation's boundaries), CPU = last sample's re-based CPU, memory
//!   peak = the largest sample.
//!
//! The reference is the cgroup's own counters read just before the start and just after
//! the end (v1 `cpuacct.usage`, v2 `cpu.stat usage_usec`; the memory peak counter reset
//! before the start). Sizes are interleaved round by round.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use faasload_protocol::monitor::{
    Ack, ActivationQuery, ActivationSummary, Backend, Notification, OriginalQuery, OriginalSample,
    Query,
};

use super::Options;
use super::mon::{
    self, Conn, Monitor, MonitorSpec, Tree, Workload, check_interrupt, epoch_s, quantile,
};
use crate::workspace::Workspace;

/// What one activation did.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Cpu(f64),
    Mem(f64),
}

/// One activation's truth and boundaries.
struct Act {
    kind: Kind,
    id: String,
    start: f64,
    end: f64,
    cpu_ns: u64,
    peak: u64,
}

pub(super) fn run(ws: &Workspace, opts: &Options) -> Result<String> {
    let bin = opts.faasload(ws)?;
    let _sig = mon::SigintGuard::install();
    let tmp = mon::TempDir::create("mbench-precision")?;
    let mut tree = Tree::create()?;
    let rel = tree.rel.clone();
    let h = tree.h.clone();
    let result = measure(&bin, &tmp.path, &mut tree, opts.quick);
    drop(tree);
    let left = mon::leftovers(&h, &rel);
    if !left.is_empty() {
        bail!("cgroups left behind: {left:?}");
    }
    result
}

fn plan(quick: bool) -> Vec<(Kind, usize)> {
    let cpu: &[(f64, usize)] = if quick {
        &[(1.0, 20), (10.0, 10), (100.0, 5), (1000.0, 1)]
    } else {
        &[
            (1.0, 60),
            (2.0, 60),
            (5.0, 60),
            (10.0, 60),
            (20.0, 60),
            (50.0, 30),
            (100.0, 20),
            (200.0, 5),
            (500.0, 5),
            (1000.0, 5),
            (2000.0, 2),
            (5000.0, 2),
            (10000.0, 2),
        ]
    };
    let mem: &[(f64, usize)] = if quick {
        &[(64.0, 2)]
    } else {
        &[(16.0, 5), (64.0, 5), (256.0, 3)]
    };
    cpu.iter()
        .map(|&(ms, n)| (Kind::Cpu(ms), n))
        .chain(mem.iter().map(|&(m, n)| (Kind::Mem(m), n)))
        .collect()
}

fn measure(bin: &Path, dir: &Path, tree: &mut Tree, quick: bool) -> Result<String> {
    let name = "c0";
    tree.add_container(name)?;
    let mut w = Workload::spawn(bin)?;
    tree.add_pid(name, w.pid())?;
    // Let the process settle in its cgroup before anything is measured.
    w.cmd("cpu 0")?;
    let specs = [
        MonitorSpec {
            backend: Backend::Ebpf,
            interval_ms: 10.0,
            bpf_stats: false,
        },
        MonitorSpec {
            backend: Backend::Cgroupfs,
            interval_ms: 10.0,
            bpf_stats: false,
        },
        MonitorSpec {
            backend: Backend::Cgroupfs,
            interval_ms: 1000.0,
            bpf_stats: false,
        },
    ];
    let mut monitors = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let m = Monitor::start(bin, dir, &format!("m{i}"), s, tree)?;
        m.announce(name)?;
        monitors.push(m);
    }
    let counters = tree.counters(name)?;
    let mut notify = Conn::open(&monitors[0].notify)?;
    let plan = plan(quick);
    let mut left: Vec<usize> = plan.iter().map(|p| p.1).collect();
    let mut acts: Vec<Act> = Vec::new();
    let pid = std::process::id();
    println!("    running activations (sizes interleaved) ...");
    while left.iter().any(|&n| n > 0) {
        for (i, (kind, _)) in plan.iter().enumerate() {
            if left[i] == 0 {
                continue;
            }
            left[i] -= 1;
            check_interrupt()?;
            let id = format!("{:08x}{:024x}", pid, acts.len());
            counters.reset_peak()?;
            let cpu0 = counters.cpu_ns()?;
            let start = epoch_s();
            let a: Ack = notify
                .ask(&Notification::activation_start(name, &id).with_ack())
                .context("activation_start refused")?;
            if !a.ok {
                bail!("activation_start refused: {a:?}");
            }
            match kind {
                Kind::Cpu(ms) => {
                    w.cmd(&format!("cpu {ms}"))?;
                }
                Kind::Mem(mib) => {
                    w.cmd(&format!("mem {mib}"))?;
                    w.cmd("free")?;
                }
            }
            let a: Ack = notify
                .ask(&Notification::activation_end(name, &id).with_ack())
                .context("activation_end refused")?;
            if !a.ok {
                bail!("activation_end refused: {a:?}");
            }
            let end = epoch_s();
            let cpu1 = counters.cpu_ns()?;
            let peak = counters.peak()?;
            acts.push(Act {
                kind: *kind,
                id,
                start,
                end,
                cpu_ns: cpu1.saturating_sub(cpu0),
                peak,
            });
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // Let the 1 s poller take its samples after the last activation.
    std::thread::sleep(Duration::from_millis(2500));
    println!(
        "    querying the monitors about {} activations ...",
        acts.len()
    );
    // reports[method][activation] = (cpu_ns, mem_peak) as reported (None: nothing)
    let mut reports: Vec<Vec<(Option<u64>, Option<u64>)>> = vec![Vec::new(); specs.len()];
    let mut q = Conn::open(&monitors[0].query)?;
    for a in &acts {
        let s: ActivationSummary = q
            .ask(&Query::Activation(ActivationQuery {
                activation_id: a.id.clone(),
                wait_ms: Some(1000),
            }))
            .with_context(|| format!("eBPF monitor: activation {}", a.id))?;
        reports[0].push((s.cpu_ns, s.mem_peak_bytes));
    }
    for (mi, m) in monitors.iter().enumerate().skip(1) {
        for a in &acts {
            let samples: Vec<OriginalSample> = mon::request(
                &m.query,
                &OriginalQuery {
                    container: name.to_string(),
                    start: a.start,
                    end: a.end,
                },
            )
            .with_context(|| format!("{}: window query", m.label))?;
            let cpu = samples
                .iter()
                .filter_map(|s| s.cpu)
                .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.max(c))))
                .map(|c| (c * 1e9).round() as u64);
            let mem = samples.iter().filter_map(|s| s.memory).max();
            reports[mi].push((cpu, mem));
        }
    }
    for m in &mut monitors {
        m.stop()?;
    }
    drop(w);

    let mut md = String::new();
    let _ = writeln!(
        md,
        "Set-up: cgroup {} host; one container (`faasload/mbench-<pid>/c0`) holding an idle \
         `target/release/faasload workload`; each activation is one command to it (`cpu <ms>` \
         burns that much CPU time of the process; `mem <MiB>` then `free` allocates, touches \
         and releases that much). Three `faasload monitor`s watch the container at once: \
         the eBPF monitor gets `activation_start`/`activation_end` (with ack) on its notify \
         socket and is asked with `{{\"type\":\"activation\"}}`; the cgroupfs pollers (10 ms, \
         1 s) are asked with the original FaaSLoad window query \
         `{{\"container\",\"start\",\"end\"}}` over the activation's boundaries (CPU = the \
         largest re-based `cpu` of the returned samples, memory = the largest `memory`). \
         Truth: the cgroup's CPU counter just before the start / just after the end, and its \
         peak-memory counter reset before the start. Sizes interleaved; {} activations. An \
         activation is *seen* when the method reports a CPU time above 0; unseen ones count \
         as 0 in the errors. Tolerance = max(1 % of the truth, 200 µs).\n",
        tree.h.version(),
        acts.len()
    );
    let _ = writeln!(
        md,
        "### CPU time per activation\n\n\
         Absolute error |reported − truth| in µs: median / p99 / max; signed median error in µs; \
         'seen' and 'in tol.' in % of the activations of that size.\n"
    );
    let mut header = "| work | n | truth median (ms) |".to_string();
    let mut sep = "|---|---|---|".to_string();
    for s in &specs {
        let l = short(s);
        let _ = write!(
            header,
            " {l} seen | {l} in tol. | {l} abs err med / p99 / max | {l} signed med |"
        );
        sep.push_str("---|---|---|---|");
    }
    let _ = writeln!(md, "{header}\n{sep}");
    for (kind, _) in plan.iter().filter(|p| matches!(p.0, Kind::Cpu(_))) {
        let idx: Vec<usize> = (0..acts.len()).filter(|&i| acts[i].kind == *kind).collect();
        let Kind::Cpu(ms) = kind else { continue };
        let mut truth: Vec<f64> = idx.iter().map(|&i| acts[i].cpu_ns as f64 / 1e6).collect();
        let mut row = format!(
            "| cpu {ms} ms | {} | {:.3} |",
            idx.len(),
            quantile(&mut truth, 0.5)
        );
        for r in &reports {
            let mut abs = Vec::new();
            let mut signed = Vec::new();
            let (mut seen, mut tol) = (0usize, 0usize);
            for &i in &idx {
                let t = acts[i].cpu_ns as f64;
                let got = r[i].0.unwrap_or(0) as f64;
                if got > 0.0 {
                    seen += 1;
                }
                let e = got - t;
                if e.abs() <= (0.01 * t).max(200_000.0) {
                    tol += 1;
                }
                abs.push(e.abs() / 1e3);
                signed.push(e / 1e3);
            }
            let pct = |k: usize| 100.0 * k as f64 / idx.len().max(1) as f64;
            let _ = write!(
                row,
                " {:.0} | {:.0} | {:.0} / {:.0} / {:.0} | {:+.0} |",
                pct(seen),
                pct(tol),
                quantile(&mut abs, 0.5),
                quantile(&mut abs, 0.99),
                quantile(&mut abs, 1.0),
                quantile(&mut signed, 0.5)
            );
        }
        println!("    {row}");
        let _ = writeln!(md, "{row}");
    }
    let _ = writeln!(
        md,
        "\n### Memory peak per activation\n\n\
         Truth: the cgroup's peak counter (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`), \
         reset before the start. The eBPF monitor reports that counter (reset at the start); \
         the pollers report FaaSLoad's metric (rss + mapped file) at their samples. Values in \
         MiB: median of the activations (error = reported − truth: median, min..max); 'seen' \
         = a value reported.\n"
    );
    let mut header = "| work | n | truth peak |".to_string();
    let mut sep = "|---|---|---|".to_string();
    for s in &specs {
        let l = short(s);
        let _ = write!(header, " {l} seen | {l} error |");
        sep.push_str("---|---|");
    }
    let _ = writeln!(md, "{header}\n{sep}");
    for (kind, _) in plan.iter().filter(|p| matches!(p.0, Kind::Mem(_))) {
        let idx: Vec<usize> = (0..acts.len()).filter(|&i| acts[i].kind == *kind).collect();
        let Kind::Mem(mib) = kind else { continue };
        let mut truth: Vec<f64> = idx
            .iter()
            .map(|&i| acts[i].peak as f64 / 1048576.0)
            .collect();
        let mut row = format!(
            "| mem {mib} MiB | {} | {:.1} |",
            idx.len(),
            quantile(&mut truth, 0.5)
        );
        for r in &reports {
            let mut errs = Vec::new();
            let mut seen = 0;
            for &i in &idx {
                if let Some(v) = r[i].1 {
                    seen += 1;
                    errs.push((v as f64 - acts[i].peak as f64) / 1048576.0);
                }
            }
            let (a, b) = mon::min_max(&errs);
            let _ = write!(
                row,
                " {:.0} % | {} |",
                100.0 * seen as f64 / idx.len().max(1) as f64,
                if errs.is_empty() {
                    "–".to_string()
                } else {
                    format!("{:+.1} ({a:+.1}..{b:+.1})", quantile(&mut errs, 0.5))
                }
            );
        }
        println!("    {row}");
        let _ = writeln!(md, "{row}");
    }
    let _ = writeln!(md);
    Ok(md)
}

fn short(s: &MonitorSpec) -> String {
    if s.backend == Backend::Ebpf {
        "eBPF".into()
    } else {
        format!("poll {}", mon::fmt_interval(s.interval_ms))
    }
}
