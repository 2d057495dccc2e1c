//! Suite `monitor-query`: latency of the monitor's query socket at 1,000 queries/s while
//! it samples 100 containers (cgroups under `faasload/mbench-<pid>/`, each holding an idle
//! `faasload workload`). Open loop: query i is due at t0 + i ms (absolute deadlines) on
//! one pipelined connection; a reader thread takes the answers, and latency is measured
//! from the due time (so a stalled monitor is charged for every query it delays). Each
//! query is `{"type":"window"}` over the last second of a container (round robin). Rows:
//! the eBPF monitor, the cgroupfs-polling monitor at 10 ms, and a peer without a monitor:
//! reading the container's cgroup files directly (open, read, close of the CPU and memory
//! counters) on the same schedule. Rows are interleaved round by round.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use faasload_protocol::monitor::{Backend, Query, WindowQuery, WindowSummary, decode};

use super::Options;
use super::mon::{
    self, Monitor, MonitorSpec, Tree, Workload, check_interrupt, epoch_s, median, min_max, quantile,
};
use crate::workspace::Workspace;

const RATE: u64 = 1000;
const CONTAINERS: usize = 100;

struct RowResult {
    lat_us: Vec<f64>,
    duration_s: f64,
    errors: usize,
    monitor_cpu_pct: Option<f64>,
}

pub(super) fn run(ws: &Workspace, opts: &Options) -> Result<String> {
    let bin = opts.faasload(ws)?;
    let _sig = mon::SigintGuard::install();
    let tmp = mon::TempDir::create("mbench-query")?;
    let mut tree = Tree::create()?;
    let rel = tree.rel.clone();
    let h = tree.h.clone();
    let (rounds, secs) = if opts.quick { (1, 2u64) } else { (3, 8u64) };
    let result = measure(&bin, &tmp.path, &mut tree, rounds, secs);
    drop(tree);
    let left = mon::leftovers(&h, &rel);
    if !left.is_empty() {
        bail!("cgroups left behind: {left:?}");
    }
    result
}

fn measure(bin: &Path, dir: &Path, tree: &mut Tree, rounds: usize, secs: u64) -> Result<String> {
    let mut workloads = Vec::new();
    for i in 0..CONTAINERS {
        let name = format!("c{i}");
        tree.add_container(&name)?;
        let w = Workload::spawn(bin)?;
        tree.add_pid(&name, w.pid())?;
        workloads.push(w);
        check_interrupt()?;
    }
    let rows: Vec<Option<MonitorSpec>> = vec![
        Some(MonitorSpec {
            backend: Backend::Ebpf,
            interval_ms: 10.0,
            bpf_stats: false,
        }),
        Some(MonitorSpec {
            backend: Backend::Cgroupfs,
            interval_ms: 10.0,
            bpf_stats: false,
        }),
        None,
    ];
    let label = |r: &Option<MonitorSpec>| match r {
        Some(s) => format!("{} (`window` query)", s.label()),
        None => "peer: read the cgroup files directly".to_string(),
    };
    let mut results: Vec<Vec<RowResult>> = rows.iter().map(|_| Vec::new()).collect();
    let total = secs * RATE;
    for r in 0..rounds {
        for k in 0..rows.len() {
            let ri = (k + r) % rows.len();
            check_interrupt()?;
            let res = match &rows[ri] {
                Some(spec) => {
                    let mut m = Monitor::start(bin, dir, "q", spec, tree)?;
                    for i in 0..CONTAINERS {
                        m.announce(&format!("c{i}"))?;
                    }
                    // Let the sampler fill the last second for every container.
                    std::thread::sleep(Duration::from_millis(1200));
                    let pid = m.pid();
                    let c0 = mon::process_cpu_ns(pid);
                    let mut res = open_loop_monitor(&m.query, total)?;
                    let c1 = mon::process_cpu_ns(pid);
                    res.monitor_cpu_pct =
                        Some(100.0 * c1.saturating_sub(c0) as f64 / 1e9 / res.duration_s);
                    m.stop()?;
                    res
                }
                None => open_loop_files(tree, total)?,
            };
            let mut l = res.lat_us.clone();
            println!(
                "    round {} {:<55} p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs, {} errors",
                r + 1,
                label(&rows[ri]),
                quantile(&mut l, 0.5),
                quantile(&mut l, 0.99),
                quantile(&mut l, 1.0),
                res.errors
            );
            results[ri].push(res);
        }
    }
    drop(workloads);

    let mut md = String::new();
    let _ = writeln!(
        md,
        "Set-up: cgroup {} host; {CONTAINERS} containers (`faasload/mbench-<pid>/c<i>`, each \
         an idle `faasload workload`), all known to the monitor (announced with `run`), \
         sampled every 10 ms. Open loop at {RATE} queries/s for {secs} s per row and round \
         ({total} queries): query i is due at t0 + i ms, written on one pipelined \
         connection to the query socket; answers are read by a second thread and latency is \
         answer time − due time. Query: `{{\"type\":\"window\",\"container\":\"c<i mod \
         {CONTAINERS}>\",\"start\":now−1 s,\"end\":now}}` (CPU and memory summary of the \
         last second). Peer: at the same due times, open/read/close the container's CPU and \
         memory counter files (the current values, which is what a reader without a monitor \
         gets; not a window). The monitor is started fresh for each row; rows rotate order \
         round by round; {rounds} rounds. Values in µs: median over rounds (min..max); \
         `max` over all queries.\n",
        tree.h.version()
    );
    let _ = writeln!(
        md,
        "| row | p50 | p90 | p99 | p99.9 | max | achieved rate (q/s) | errors | monitor CPU (% of one core) |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (ri, row) in rows.iter().enumerate() {
        let rs = &results[ri];
        let q = |p: f64| -> String {
            let v: Vec<f64> = rs
                .iter()
                .map(|r| quantile(&mut r.lat_us.clone(), p))
                .collect();
            let (a, b) = min_max(&v);
            format!("{:.0} ({a:.0}..{b:.0})", median(&v))
        };
        let max = rs
            .iter()
            .map(|r| quantile(&mut r.lat_us.clone(), 1.0))
            .fold(0.0, f64::max);
        let rate: Vec<f64> = rs
            .iter()
            .map(|r| r.lat_us.len() as f64 / r.duration_s)
            .collect();
        let cpu: Vec<f64> = rs.iter().filter_map(|r| r.monitor_cpu_pct).collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {max:.0} | {:.0} | {} | {} |",
            label(row),
            q(0.5),
            q(0.9),
            q(0.99),
            q(0.999),
            median(&rate),
            rs.iter().map(|r| r.errors).sum::<usize>(),
            if cpu.is_empty() {
                "–".to_string()
            } else {
                let (a, b) = min_max(&cpu);
                format!("{:.2} ({a:.2}..{b:.2})", median(&cpu))
            }
        );
    }
    let _ = writeln!(md);
    println!("{md}");
    Ok(md)
}

/// Sleeps until `t` (then returns at once if already past).
fn wait_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

fn open_loop_monitor(sock: &PathBuf, total: u64) -> Result<RowResult> {
    let s = UnixStream::connect(sock).with_context(|| format!("connect {}", sock.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut w = s.try_clone()?;
    let t0 = Instant::now() + Duration::from_millis(20);
    let period = Duration::from_nanos(1_000_000_000 / RATE);
    let writer = std::thread::spawn(move || -> Result<()> {
        for i in 0..total {
            wait_until(t0 + period * i as u32);
            let now = epoch_s();
            let q = Query::Window(WindowQuery {
                container: format!("c{}", i as usize % CONTAINERS),
                start: now - 1.0,
                end: now,
            });
            let mut req = serde_json::to_vec(&q)?;
            req.push(b'\n');
            w.write_all(&req)?;
        }
        Ok(())
    });
    let mut r = BufReader::new(s);
    let mut lat = Vec::with_capacity(total as usize);
    let mut errors = 0;
    let mut line = String::new();
    for i in 0..total {
        line.clear();
        r.read_line(&mut line)
            .with_context(|| format!("answer to query {i}"))?;
        let t = Instant::now();
        let due = t0 + period * i as u32;
        lat.push(t.saturating_duration_since(due).as_nanos() as f64 / 1e3);
        if decode::<WindowSummary>(&line).map_or(true, |w| w.samples == 0) {
            errors += 1;
        }
    }
    let duration = t0.elapsed().as_secs_f64();
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer thread panicked"))??;
    Ok(RowResult {
        lat_us: lat,
        duration_s: duration,
        errors,
        monitor_cpu_pct: None,
    })
}

fn open_loop_files(tree: &Tree, total: u64) -> Result<RowResult> {
    let files: Vec<(PathBuf, PathBuf)> = (0..CONTAINERS)
        .map(|i| tree.counter_paths(&format!("c{i}")))
        .collect();
    let t0 = Instant::now() + Duration::from_millis(20);
    let period = Duration::from_nanos(1_000_000_000 / RATE);
    let mut lat = Vec::with_capacity(total as usize);
    let mut errors = 0;
    for i in 0..total {
        let due = t0 + period * i as u32;
        wait_until(due);
        let (cpu, mem) = &files[i as usize % CONTAINERS];
        let ok = std::fs::read_to_string(cpu).is_ok_and(|s| !s.is_empty())
            && std::fs::read_to_string(mem).is_ok_and(|s| !s.is_empty());
        if !ok {
            errors += 1;
        }
        lat.push(Instant::now().saturating_duration_since(due).as_nanos() as f64 / 1e3);
    }
    Ok(RowResult {
        lat_us: lat,
        duration_s: t0.elapsed().as_secs_f64(),
        errors,
        monitor_cpu_pct: None,
    })
}
