//! Suite `monitor-overhead`: how much a monitor disturbs the work it measures and what it
//! costs itself, precise enough to judge issue 15's goals (whole monitor ≤ 1 % of one
//! core at 100 busy containers with 10 ms memory resolution, `sched_switch` ≤ 150 ns per
//! run, slowdown of the monitored work ≤ 0.5 %) and to say so, or to say that the run
//! could not resolve them.
//!
//! N containers (100, then 10: cgroups under `faasload/mbench-<pid>/`) each hold one
//! `xtask/bench/burn.py` worker that does fixed units of work without pause for the whole
//! phase and records, per unit, its start, end and its own CPU time (thread CPU clock).
//! The disturbance is the CPU time per unit, not the makespan: it does not move when other
//! work on the machine takes the cores, only when something makes the work itself cost
//! more (kernel programs run on its switches, its syscalls, caches). The phase is cut into
//! blocks of a few seconds; each monitor configuration runs in its own blocks, each paired
//! with an adjacent block without a monitor, the pairs shuffled and their order balanced
//! round by round (see [`paired::schedule`]); a warm-up block is discarded. Per pair, the
//! slowdown is the CPU per unit of the on block over that of its off block; the table
//! gives the mean over pairs with its 95 % t-interval. Units that do not lie wholly inside
//! a block (those across a monitor's start or stop) are left out, and so are pairs whose
//! two blocks saw a different number of other programs on `sched_switch` (another
//! session's monitor). The CPU per unit drifts with the machine's speed (a few % within
//! seconds on a shared VM), so a speed-adjusted slowdown is shown beside it: CPU per unit
//! over the median of the units' fastest loop, which cancels that drift (and with it any
//! slowdown of plain code the monitor might cause); the goal's verdict is the raw one's.
//!
//! The monitor's own cost: its threads' CPU (schedstat of every thread) per block, in
//! configurations without BPF statistics, plus its kernel programs' run time (BPF
//! statistics from its `stats` answer) in a separate configuration with them on, which
//! also gives the ns per `sched_switch` run (statistics add their own clock reads, so
//! these are upper bounds). Configurations: the eBPF monitor with memory sampled every
//! 10 ms, the same with BPF statistics, cgroupfs polling at 10 ms and (full run) at 1 s.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use faasload_protocol::monitor::{Backend, ContainerList, Query, Stats};

use super::Options;
use super::kprogs;
use super::mon::{self, Counters, Monitor, MonitorSpec, Tree, check_interrupt};
use super::paired::{self, Interval, Rng, Slot, Verdict};
use crate::workspace::Workspace;

/// Issue 15's goals.
const GOAL_MONITOR_PCT: f64 = 1.0;
const GOAL_SWITCH_NS: f64 = 150.0;
const GOAL_SLOWDOWN_PCT: f64 = 0.5;

/// A burst is this much CPU (calibrated), followed by a sleep of [`SLEEP_US`], so that
/// workers switch often; a unit of work is [`BURSTS_PER_UNIT`] bursts.
const BURST_MS: f64 = 0.5;
const SLEEP_US: u64 = 100;
const BURSTS_PER_UNIT: u64 = 4;
/// The workers' nice value, whatever the suite's own.
const WORKER_NICE: i32 = 0;

/// The configurations, in this order; the goals are judged on the first two.
const EBPF: usize = 0;
const EBPF_STATS: usize = 1;

/// The kernel program whose cost per run is a goal.
const SWITCH_PROG: &str = "sched_switch";

/// How long and how many.
struct Plan {
    /// (containers, rounds), in the order measured.
    phases: Vec<(usize, usize)>,
    /// Length of a measured block.
    block: Duration,
    /// Wait after a monitor is up (or after the previous block) before a block starts.
    settle: Duration,
    configs: Vec<MonitorSpec>,
    /// The smoke test's plan (too few pairs for the verdicts to mean much).
    quick: bool,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        let spec = |backend, interval_ms, bpf_stats| MonitorSpec {
            backend,
            interval_ms,
            bpf_stats,
        };
        let mut configs = vec![
            spec(Backend::Ebpf, 10.0, false),
            spec(Backend::Ebpf, 10.0, true),
            spec(Backend::Cgroupfs, 10.0, false),
        ];
        if quick {
            Plan {
                phases: vec![(100, 2)],
                block: Duration::from_secs(1),
                settle: Duration::from_millis(300),
                configs,
                quick,
            }
        } else {
            configs.push(spec(Backend::Cgroupfs, 1000.0, false));
            Plan {
                phases: vec![(100, 20), (10, 6)],
                block: Duration::from_secs(2),
                settle: Duration::from_millis(500),
                configs,
                quick,
            }
        }
    }
}

pub(super) fn run(ws: &Workspace, opts: &Options) -> Result<String> {
    let plan = Plan::new(opts.quick);
    let bin = opts.faasload(ws)?;
    let _sig = mon::SigintGuard::install();
    let tmp = mon::TempDir::create("mbench-overhead")?;
    let mut tree = Tree::create()?;
    let rel = tree.rel.clone();
    let h = tree.h.clone();
    let script = ws.root.join("xtask/bench/burn.py");
    let result = measure(&plan, &ws.root, &bin, &script, &tmp.path, &mut tree);
    drop(tree);
    let left = mon::leftovers(&h, &rel);
    if !left.is_empty() {
        bail!("cgroups left behind: {left:?}");
    }
    result
}

/// Now on CLOCK_MONOTONIC, in ns (the clock of the workers' `time.monotonic_ns`).
fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to write; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Context switches on the machine so far (`/proc/stat`).
fn ctxt() -> Result<u64> {
    let s = std::fs::read_to_string("/proc/stat").context("read /proc/stat")?;
    s.lines()
        .find_map(|l| l.strip_prefix("ctxt "))
        .and_then(|v| v.trim().parse().ok())
        .context("/proc/stat without ctxt")
}

/// Sleeps `d`, returning early with an error on Ctrl-C.
fn sleep_checked(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    loop {
        check_interrupt()?;
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(100)));
    }
}

/// What a worker does: `run <bursts> <iters> <sleep_us>` per unit.
#[derive(Clone, Copy, Debug)]
struct Work {
    bursts: u64,
    iters: u64,
    sleep_us: u64,
}

/// One unit of work as a worker recorded it: start and end (monotonic ns), the thread's
/// CPU time for the unit and for its fastest loop (ns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Unit {
    start: u64,
    end: u64,
    cpu: u64,
    fastest: u64,
}

impl Unit {
    fn parse(line: &str) -> Result<Unit> {
        let mut f = line.split_whitespace().map(str::parse::<u64>);
        match (f.next(), f.next(), f.next(), f.next(), f.next()) {
            (Some(Ok(start)), Some(Ok(end)), Some(Ok(cpu)), Some(Ok(fastest)), None)
                if start <= end && fastest <= cpu =>
            {
                Ok(Unit {
                    start,
                    end,
                    cpu,
                    fastest,
                })
            }
            _ => {
                bail!("burn.py recorded {line:?}, expected \"<start> <end> <cpu> <fastest loop>\"")
            }
        }
    }
}

/// A `burn.py` worker; killed on drop.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    /// Starts a worker; see [`Worker::ready`].
    fn spawn(script: &Path) -> Result<Worker> {
        let mut child = Command::new("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("start python3 burn.py")?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("stdout")?);
        Ok(Worker {
            child,
            stdin,
            stdout,
        })
    }

    /// Waits until it says "ready".
    fn ready(&mut self) -> Result<()> {
        let mut l = String::new();
        self.stdout
            .read_line(&mut l)
            .context("read burn.py's ready")?;
        if l.trim() != "ready" {
            bail!("burn.py said {l:?} instead of ready");
        }
        Ok(())
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Pins the worker (a process this suite started) to `cpu` and sets its nice value.
    fn place(&self, cpu: usize, nice: i32) -> Result<()> {
        let pid = self.pid() as libc::pid_t;
        // SAFETY: cpu_set_t is plain data; CPU_SET stays within it for cpu < CPU_SETSIZE.
        let r = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("pin worker {pid} to CPU {cpu}"));
        }
        // SAFETY: plain syscall on our own child.
        let r = unsafe { libc::setpriority(libc::PRIO_PROCESS as _, pid as libc::id_t, nice) };
        if r != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("set nice {nice} on worker {pid}"));
        }
        Ok(())
    }

    fn run(&mut self, w: &Work) -> Result<()> {
        writeln!(self.stdin, "run {} {} {}", w.bursts, w.iters, w.sleep_us)?;
        self.stdin.flush()?;
        Ok(())
    }

    /// Asks for the records (the worker stops after its current unit).
    fn ask_dump(&mut self) -> Result<()> {
        writeln!(self.stdin, "dump")?;
        self.stdin.flush()?;
        Ok(())
    }

    fn read_dump(&mut self) -> Result<Vec<Unit>> {
        let mut out = Vec::new();
        let mut l = String::new();
        loop {
            l.clear();
            if self.stdout.read_line(&mut l)? == 0 {
                bail!("burn.py ended its records without \"end\"");
            }
            let t = l.trim();
            if t == "end" {
                return Ok(out);
            }
            out.push(Unit::parse(t)?);
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Iterations of the worker's loop per burst of [`BURST_MS`] of CPU, measured on the
/// thread CPU clock of a worker outside any container.
fn calibrate(script: &Path) -> Result<u64> {
    const ITERS: u64 = 20_000;
    let mut w = Worker::spawn(script)?;
    w.ready()?;
    w.run(&Work {
        bursts: 1,
        iters: ITERS,
        sleep_us: 0,
    })?;
    sleep_checked(Duration::from_millis(600))?;
    w.ask_dump()?;
    let units = w.read_dump()?;
    if units.len() < 5 {
        bail!(
            "calibration: burn.py did only {} units of {ITERS} iterations in 0.6 s",
            units.len()
        );
    }
    let per_unit_ms = mon::median(&units.iter().map(|u| u.cpu as f64 / 1e6).collect::<Vec<_>>());
    Ok(((ITERS as f64 / per_unit_ms) * BURST_MS).round().max(1.0) as u64)
}

/// The CPUs this process may run on (the workers are spread over them, one each).
fn allowed_cpus() -> Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data, filled by the kernel; CPU_ISSET reads within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(std::io::Error::last_os_error()).context("sched_getaffinity");
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect();
        if cpus.is_empty() {
            bail!("no CPU allowed");
        }
        Ok(cpus)
    }
}

/// One kernel program's counters over a block.
#[derive(Clone, Debug)]
struct ProgDelta {
    name: String,
    runs: u64,
    time_ns: u64,
}

/// One measured block.
#[derive(Clone, Debug)]
struct Block {
    slot: Slot,
    /// The measured window (monotonic ns).
    start_ns: u64,
    end_ns: u64,
    /// CPU time of all the monitor's threads in the window.
    monitor_cpu_ns: u64,
    /// The monitor's kernel programs (BPF statistics from its `stats` answer) and the span
    /// between the two answers.
    programs: Vec<ProgDelta>,
    programs_span_ns: u64,
    /// CPU the containers used in the window (their cgroups' counters).
    work_cpu_ns: u64,
    switches: u64,
    /// Programs named `sched_switch` not the monitor's, loaded during the block.
    other_switch_progs: usize,
    /// Whether the run counters of programs not the monitor's moved (someone had BPF
    /// statistics on).
    foreign_stats: bool,
    /// Units wholly inside the window (filled after the phase).
    tally: Tally,
}

impl Block {
    fn wall_s(&self) -> f64 {
        (self.end_ns - self.start_ns) as f64 / 1e9
    }

    fn cpu_per_unit_us(&self) -> Option<f64> {
        self.tally.cpu_per_unit_us()
    }

    /// CPU per unit in units of the block's typical fastest loop.
    fn adjusted(&self) -> Option<f64> {
        Some(self.tally.cpu_per_unit_us()? / self.tally.speed_us()?)
    }

    fn monitor_pct(&self) -> f64 {
        100.0 * self.monitor_cpu_ns as f64 / 1e9 / self.wall_s()
    }

    fn kernel_pct(&self) -> Option<f64> {
        (self.programs_span_ns > 0).then(|| {
            100.0 * self.programs.iter().map(|p| p.time_ns).sum::<u64>() as f64
                / self.programs_span_ns as f64
        })
    }

    fn prog(&self, name: &str) -> Option<&ProgDelta> {
        self.programs.iter().find(|p| p.name == name)
    }

    fn work_cores(&self) -> f64 {
        self.work_cpu_ns as f64 / 1e9 / self.wall_s()
    }

    fn switches_per_s(&self) -> f64 {
        self.switches as f64 / self.wall_s()
    }
}

/// The units of work that lay wholly inside a block.
#[derive(Clone, Debug, Default, PartialEq)]
struct Tally {
    units: u64,
    cpu_ns: u64,
    /// Each unit's fastest loop (ns).
    fastest: Vec<f64>,
}

impl Tally {
    fn cpu_per_unit_us(&self) -> Option<f64> {
        (self.units > 0).then(|| self.cpu_ns as f64 / self.units as f64 / 1e3)
    }

    /// How fast the machine ran plain code during the block: the median over units of
    /// their fastest loop (µs).
    fn speed_us(&self) -> Option<f64> {
        (!self.fastest.is_empty()).then(|| mon::median(&self.fastest) / 1e3)
    }
}

/// Gives each window `(start, end)` (disjoint, in time order) the units that lie wholly
/// inside it.
fn tally(windows: &[(u64, u64)], units: &[Unit]) -> Vec<Tally> {
    let mut out = vec![Tally::default(); windows.len()];
    for u in units {
        let i = windows.partition_point(|w| w.0 <= u.start);
        if i == 0 || u.end > windows[i - 1].1 {
            continue;
        }
        let t = &mut out[i - 1];
        t.units += 1;
        t.cpu_ns += u.cpu;
        t.fastest.push(u.fastest as f64);
    }
    out
}

/// One phase's blocks.
struct PhaseResult {
    n: usize,
    rounds: usize,
    blocks: Vec<Block>,
    units_total: usize,
    units_used: u64,
}

impl PhaseResult {
    /// (off, on) block pairs of configuration `c`, in run order, all of them.
    fn all_pairs(&self, c: usize) -> Vec<(&Block, &Block)> {
        let of = |r: usize, on: bool| {
            self.blocks
                .iter()
                .find(|b| b.slot.round == r && b.slot.pair == c && b.slot.config.is_some() == on)
        };
        (0..self.rounds)
            .filter_map(|r| Some((of(r, false)?, of(r, true)?)))
            .collect()
    }

    /// The pairs compared: those whose two blocks saw the same number of other programs
    /// on `sched_switch` (another monitor starting or stopping between the two blocks
    /// would add its cost to one side only). The rule does not look at the outcome.
    fn pairs(&self, c: usize) -> Vec<(&Block, &Block)> {
        self.all_pairs(c)
            .into_iter()
            .filter(|(off, on)| off.other_switch_progs == on.other_switch_progs)
            .collect()
    }

    /// Pairs left out by [`PhaseResult::pairs`], over all configurations.
    fn pairs_left_out(&self, configs: usize) -> usize {
        (0..configs)
            .map(|c| self.all_pairs(c).len() - self.pairs(c).len())
            .sum()
    }

    fn on_blocks(&self, c: usize) -> impl Iterator<Item = &Block> {
        self.blocks.iter().filter(move |b| b.slot.config == Some(c))
    }

    /// Per pair: the slowdown of the work (CPU per unit, %).
    fn slowdowns(&self, c: usize) -> Vec<f64> {
        self.pairs(c)
            .into_iter()
            .filter_map(|(off, on)| {
                Some(100.0 * (on.cpu_per_unit_us()? / off.cpu_per_unit_us()? - 1.0))
            })
            .collect()
    }

    /// Per pair: the slowdown of the work adjusted for the machine's speed (CPU per unit
    /// over the typical fastest loop, %).
    fn adjusted_slowdowns(&self, c: usize) -> Vec<f64> {
        self.pairs(c)
            .into_iter()
            .filter_map(|(off, on)| Some(100.0 * (on.adjusted()? / off.adjusted()? - 1.0)))
            .collect()
    }

    /// Per pair: the change of the CPU the work got (cgroups, %).
    fn share_changes(&self, c: usize) -> Vec<f64> {
        self.pairs(c)
            .into_iter()
            .map(|(off, on)| 100.0 * (on.work_cores() / off.work_cores() - 1.0))
            .collect()
    }

    fn monitor_pcts(&self, c: usize) -> Vec<f64> {
        self.on_blocks(c).map(Block::monitor_pct).collect()
    }

    fn kernel_pcts(&self, c: usize) -> Vec<f64> {
        self.on_blocks(c).filter_map(Block::kernel_pct).collect()
    }

    /// ns per run of kernel program `name`, per block where it ran.
    fn ns_per_run(&self, c: usize, name: &str) -> Vec<f64> {
        self.on_blocks(c)
            .filter_map(|b| b.prog(name))
            .filter(|p| p.runs > 0)
            .map(|p| p.time_ns as f64 / p.runs as f64)
            .collect()
    }

    /// The whole eBPF monitor: user threads (without statistics) + kernel programs (with).
    fn whole_monitor(&self) -> Option<(Interval, Interval, Interval)> {
        let user = Interval::of(&self.monitor_pcts(EBPF))?;
        let kernel = Interval::of(&self.kernel_pcts(EBPF_STATS))?;
        Some((user.plus(&kernel), user, kernel))
    }
}

/// What a phase needs.
struct Ctx<'a> {
    plan: &'a Plan,
    root: &'a Path,
    bin: &'a Path,
    script: &'a Path,
    dir: &'a Path,
    work: Work,
    cpus: Vec<usize>,
}

fn measure(
    plan: &Plan,
    root: &Path,
    bin: &Path,
    script: &Path,
    dir: &Path,
    tree: &mut Tree,
) -> Result<String> {
    let iters = calibrate(script)?;
    println!("    calibration: a burst of {BURST_MS} ms of CPU is {iters} iterations");
    let work = Work {
        bursts: BURSTS_PER_UNIT,
        iters,
        sleep_us: SLEEP_US,
    };
    let max_n = plan.phases.iter().map(|p| p.0).max().unwrap_or(0);
    for i in 0..max_n {
        tree.add_container(&format!("c{i}"))?;
    }
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut rng = Rng::new(seed);
    let ctx = Ctx {
        plan,
        root,
        bin,
        script,
        dir,
        work,
        cpus: allowed_cpus()?,
    };
    let mut phases = Vec::new();
    for &(n, rounds) in &plan.phases {
        phases.push(
            phase(&ctx, tree, n, rounds, &mut rng).with_context(|| format!("{n} containers"))?,
        );
    }
    Ok(report(&ctx, tree, seed, &phases))
}

/// Runs one phase: `n` workers working throughout, the blocks of the schedule one after
/// another, then the workers' records assigned to the blocks.
fn phase(ctx: &Ctx, tree: &Tree, n: usize, rounds: usize, rng: &mut Rng) -> Result<PhaseResult> {
    let plan = ctx.plan;
    let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    // Started all at once (each then moved into its container before it works).
    let mut workers = Vec::with_capacity(n);
    for _ in 0..n {
        workers.push(Worker::spawn(ctx.script)?);
        check_interrupt()?;
    }
    for (i, (w, name)) in workers.iter_mut().zip(&names).enumerate() {
        w.ready()?;
        tree.add_pid(name, w.pid())?;
        w.place(ctx.cpus[i % ctx.cpus.len()], WORKER_NICE)?;
    }
    let counters: Vec<Counters> = names
        .iter()
        .map(|c| tree.counters(c))
        .collect::<Result<_>>()?;
    for w in &mut workers {
        w.run(&ctx.work)?;
    }
    // Warm-up, discarded.
    sleep_checked(plan.block + plan.settle)?;
    let slots = paired::schedule(plan.configs.len(), rounds, rng);
    let mut blocks = Vec::with_capacity(slots.len());
    for (k, slot) in slots.iter().enumerate() {
        check_interrupt()?;
        let spec = slot.config.map(|c| &plan.configs[c]);
        let label = spec.map_or("no monitor".to_owned(), MonitorSpec::label);
        let b = block(ctx, tree, &counters, n, *slot, k)
            .with_context(|| format!("round {}, {label}", slot.round + 1))?;
        let kernel = b
            .kernel_pct()
            .filter(|_| spec.is_some_and(|s| s.bpf_stats))
            .map_or(String::new(), |k| format!(", kernel programs {k:.2} %"));
        println!(
            "    N={n:<3} round {:>2}/{rounds} {label:<52} monitor {:>5.2} % of a core{kernel}, work {:.2} cores, {:.0} switches/s",
            slot.round + 1,
            if spec.is_some() { b.monitor_pct() } else { 0.0 },
            b.work_cores(),
            b.switches_per_s(),
        );
        blocks.push(b);
    }
    for w in &mut workers {
        w.ask_dump()?;
    }
    let mut units = Vec::new();
    for w in &mut workers {
        units.extend(w.read_dump()?);
    }
    drop(workers);
    let windows: Vec<(u64, u64)> = blocks.iter().map(|b| (b.start_ns, b.end_ns)).collect();
    let mut used = 0;
    for (b, t) in blocks.iter_mut().zip(tally(&windows, &units)) {
        b.tally = t;
        used += b.tally.units;
        if b.tally.units == 0 {
            eprintln!(
                "xtask: no unit of work lay wholly inside a block of {:.1} s (the machine is \
                 very busy): its pair is left out",
                b.wall_s()
            );
        }
    }
    Ok(PhaseResult {
        n,
        rounds,
        blocks,
        units_total: units.len(),
        units_used: used,
    })
}

/// Starts the monitor of `spec` for containers c0..c<n-1>, each announced and with an
/// activation open (busy, so sampled at full resolution).
fn start_monitor(
    ctx: &Ctx,
    tree: &Tree,
    spec: &MonitorSpec,
    n: usize,
    k: usize,
) -> Result<Monitor> {
    let digits = (n.max(2) - 1).to_string().len();
    let pattern = format!("^{}/(?P<id>c[0-9]{{1,{digits}}})$", tree.rel);
    let m = Monitor::start_with_pattern(ctx.bin, ctx.dir, "m", spec, &pattern)?;
    for i in 0..n {
        let name = format!("c{i}");
        m.announce(&name)?;
        m.start_activation(&name, &format!("overhead-{k}-{name}"))?;
    }
    let s: ContainerList = mon::request(&m.query, &Query::Containers)?;
    if s.containers.len() != n {
        bail!(
            "{} sees {} containers, expected {n}",
            m.label,
            s.containers.len()
        );
    }
    Ok(m)
}

/// The programs loaded on the machine: how many named `sched_switch` are not in `ours`,
/// and the run count of all those not in `ours`.
fn foreign_programs(ours: &[u32]) -> Result<(usize, u64)> {
    let progs = kprogs::loaded()?;
    let foreign = progs.iter().filter(|p| !ours.contains(&p.id));
    let switch = foreign.clone().filter(|p| p.name == SWITCH_PROG).count();
    Ok((switch, foreign.map(|p| p.run_cnt).sum()))
}

fn block(
    ctx: &Ctx,
    tree: &Tree,
    counters: &[Counters],
    n: usize,
    slot: Slot,
    k: usize,
) -> Result<Block> {
    let spec = slot.config.map(|c| &ctx.plan.configs[c]);
    let mut monitor = spec
        .map(|s| start_monitor(ctx, tree, s, n, k))
        .transpose()?;
    sleep_checked(ctx.plan.settle)?;
    let pid = monitor.as_ref().map_or(0, Monitor::pid);
    let stats = |m: &Option<Monitor>| -> Result<Option<Stats>> {
        m.as_ref()
            .map(|m| mon::request::<Stats>(&m.query, &Query::Stats))
            .transpose()
    };
    let work_cpu = || -> Result<u64> { counters.iter().map(Counters::cpu_ns).sum() };
    let s0 = stats(&monitor)?;
    let ps0 = mono_ns();
    let ours: Vec<u32> = s0.as_ref().map_or(vec![], |s| s.program_ids.clone());
    let (others0, foreign_runs0) = foreign_programs(&ours)?;
    let c0 = ctxt()?;
    let w0 = work_cpu()?;
    let m0 = if pid > 0 { mon::process_cpu_ns(pid) } else { 0 };
    let t0 = mono_ns();
    sleep_checked(ctx.plan.block)?;
    let t1 = mono_ns();
    let m1 = if pid > 0 { mon::process_cpu_ns(pid) } else { 0 };
    let w1 = work_cpu()?;
    let c1 = ctxt()?;
    let (others1, foreign_runs1) = foreign_programs(&ours)?;
    let s1 = stats(&monitor)?;
    let ps1 = mono_ns();
    if let Some(m) = monitor.as_mut() {
        m.stop()?;
    }
    let programs = match (&s0, &s1) {
        (Some(a), Some(b)) => b
            .programs
            .iter()
            .map(|p| {
                let before = a.programs.iter().find(|q| q.name == p.name);
                ProgDelta {
                    name: p.name.clone(),
                    runs: p
                        .run_count
                        .saturating_sub(before.map_or(0, |q| q.run_count)),
                    time_ns: p
                        .run_time_ns
                        .saturating_sub(before.map_or(0, |q| q.run_time_ns)),
                }
            })
            .collect(),
        _ => Vec::new(),
    };
    if m1 < m0 {
        bail!("the monitor's CPU time went back ({m0} → {m1} ns): did it restart?");
    }
    Ok(Block {
        slot,
        start_ns: t0,
        end_ns: t1,
        monitor_cpu_ns: m1 - m0,
        programs_span_ns: if spec.is_some_and(|s| s.bpf_stats) {
            ps1 - ps0
        } else {
            0
        },
        programs,
        work_cpu_ns: w1.saturating_sub(w0),
        switches: c1.saturating_sub(c0),
        other_switch_progs: others0.max(others1),
        foreign_stats: foreign_runs1 > foreign_runs0,
        tally: Tally::default(),
    })
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn show(iv: Option<Interval>, d: usize) -> String {
    iv.map_or("– (fewer than 2)".into(), |iv| iv.show(d))
}

fn show_signed(iv: Option<Interval>, d: usize) -> String {
    iv.map_or("– (fewer than 2)".into(), |iv| iv.show_signed(d))
}

/// One goal's line.
struct GoalRow {
    goal: String,
    n: usize,
    measured: String,
    verdict: Verdict,
}

fn goals(ctx: &Ctx, p: &PhaseResult) -> Vec<GoalRow> {
    let cfg = &ctx.plan.configs;
    let whole = p.whole_monitor();
    let switch = Interval::of(&p.ns_per_run(EBPF_STATS, SWITCH_PROG));
    let slow = Interval::of(&p.slowdowns(EBPF));
    let adjusted = Interval::of(&p.adjusted_slowdowns(EBPF));
    vec![
        GoalRow {
            goal: format!(
                "whole monitor ≤ {GOAL_MONITOR_PCT} % of one core ({}): user threads (BPF statistics off) + kernel programs (statistics on)",
                cfg[EBPF].label()
            ),
            n: p.n,
            measured: whole.map_or("– (fewer than 2 blocks)".into(), |(t, u, k)| {
                format!("{} % = {} + {}", t.show(2), u.show(2), k.show(2))
            }),
            verdict: Verdict::at_most(whole.as_ref().map(|w| &w.0), GOAL_MONITOR_PCT),
        },
        GoalRow {
            goal: format!(
                "`{SWITCH_PROG}` ≤ {GOAL_SWITCH_NS} ns per run (BPF statistics on, their own cost included)"
            ),
            n: p.n,
            measured: format!("{} ns", show(switch, 0)),
            verdict: Verdict::at_most(switch.as_ref(), GOAL_SWITCH_NS),
        },
        GoalRow {
            goal: format!(
                "slowdown of the monitored work ≤ {GOAL_SLOWDOWN_PCT} % ({}; CPU per unit of work, paired blocks)",
                cfg[EBPF].label()
            ),
            n: p.n,
            measured: format!("{} %", show_signed(slow, 2)),
            verdict: Verdict::at_most(slow.as_ref(), GOAL_SLOWDOWN_PCT),
        },
        GoalRow {
            goal: format!(
                "slowdown ≤ {GOAL_SLOWDOWN_PCT} % as above, adjusted for the machine's speed (less noise; blind to any slowdown of plain code, such as the monitor's own use of shared caches)"
            ),
            n: p.n,
            measured: format!("{} %", show_signed(adjusted, 2)),
            verdict: Verdict::at_most(adjusted.as_ref(), GOAL_SLOWDOWN_PCT),
        },
    ]
}

fn report(ctx: &Ctx, tree: &Tree, seed: u64, phases: &[PhaseResult]) -> String {
    let plan = ctx.plan;
    let mut md = String::new();
    let phases_s = phases
        .iter()
        .map(|p| format!("N={} ({} rounds)", p.n, p.rounds))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        md,
        "Set-up: cgroup {} host, {} CPUs. N containers = cgroups `faasload/mbench-<pid>/c<i>`, each \
         holding one `python3 xtask/bench/burn.py` worker, pinned to one CPU (round robin) at nice \
         {WORKER_NICE}, that works without pause through the phase in units of {BURSTS_PER_UNIT} \
         bursts of {} loop iterations (≈ {BURST_MS} ms of CPU, calibrated at the start), each burst \
         followed by a {SLEEP_US} µs sleep so that processes switch often; per unit it records its \
         own CPU time (thread CPU clock, which also counts the kernel's work charged to it: its \
         syscalls, and the scheduler's programs when it is switched in). Phases: {phases_s}. A phase \
         is cut into blocks of {:.1} s (after a discarded warm-up block); in each round every \
         configuration runs in one block paired with an adjacent block without a monitor, the \
         pairs in an order shuffled round by round (seed {seed}) and the no-monitor block first in \
         half of the rounds. Monitors are `{}` started fresh for each block with a pattern that \
         matches exactly the N containers, each announced (`run`) and with an activation open \
         (`activation_start`), then {:.1} s to settle; units of work not wholly inside a block \
         (those across a start or stop) are left out. **Slowdown** = CPU per unit in the block \
         over that of its paired no-monitor block, minus 1: the mean over pairs with its 95 % \
         t-interval in brackets. The CPU per unit also moves with how fast the machine runs \
         plain code (other work on the machine, the host: these drifts move both CPUs together \
         by a few % within seconds), so the **speed-adjusted slowdown** divides each block's CPU \
         per unit by its speed, the median over its units of their fastest loop (a loop that \
         usually ran without a switch or an interrupt); what the monitor adds to switches, \
         wake-ups, syscalls and preempted loops stays in it, but a slowdown of plain code (the \
         monitor's use of shared caches, say) cancels out, so the goal's verdict is the raw \
         slowdown's and the adjusted one is shown beside it. **CPU the work got** = the containers' cgroup counters over the \
         block, in cores, and its paired change: this one also moves when the monitor (or \
         anything else on the machine) takes CPU time from the work. **Monitor user threads** = \
         CPU time of all its threads (`/proc/<pid>/task/*/schedstat`) over the block. **Kernel \
         programs** = the run time of the monitor's BPF programs from its `stats` answer, only \
         with BPF statistics on (the monitor holds the kernel's BPF_ENABLE_STATS handle while it \
         runs); statistics add two clock reads (tens of ns) to every run, so these are upper \
         bounds, and the whole monitor (user threads + kernel programs) counts twice the \
         programs' runs charged to its own threads (a slight over-count). Intervals of monitor CPU are over blocks. A verdict is **met** when the whole \
         95 % interval is at or below the goal, **not met** when it is wholly above, **not \
         resolved** otherwise.\n",
        tree.h.version(),
        ctx.cpus.len(),
        ctx.work.iters,
        plan.block.as_secs_f64(),
        ctx.bin.strip_prefix(ctx.root).unwrap_or(ctx.bin).display(),
        plan.settle.as_secs_f64(),
    );

    // Goals.
    let _ = writeln!(md, "### Goals (issue 15)\n");
    if plan.quick {
        let _ = writeln!(
            md,
            "Quick run (smoke test): with this few pairs the verdicts only exercise the \
             harness.\n"
        );
    }
    let _ = writeln!(
        md,
        "| goal | containers | measured: mean [95 % CI] | verdict |\n|---|---|---|---|"
    );
    println!();
    println!("    goals (issue 15):");
    for p in phases {
        for g in goals(ctx, p) {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                g.goal, g.n, g.measured, g.verdict
            );
            println!(
                "    N={:<3} {}: {} → {}",
                g.n,
                g.goal,
                g.measured,
                g.verdict.to_string().replace("**", "")
            );
        }
    }
    let _ = writeln!(md);

    for p in phases {
        phase_report(ctx, p, &mut md);
    }
    md
}

fn phase_report(ctx: &Ctx, p: &PhaseResult, md: &mut String) {
    let plan = ctx.plan;
    let _ = writeln!(md, "### {} containers\n", p.n);
    let _ = writeln!(
        md,
        "| configuration | pairs | CPU per unit of work (µs) | slowdown of the work (%) | speed-adjusted (%) | CPU the work got (cores) | its change (%) | monitor user threads (% of one core) | kernel programs (% of one core) | context switches/s |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    println!("\n    {} containers:", p.n);
    let off: Vec<&Block> = p
        .blocks
        .iter()
        .filter(|b| b.slot.config.is_none())
        .collect();
    let off_unit: Vec<f64> = off.iter().filter_map(|b| b.cpu_per_unit_us()).collect();
    let off_cores: Vec<f64> = off.iter().map(|b| b.work_cores()).collect();
    let off_sw: Vec<f64> = off.iter().map(|b| b.switches_per_s()).collect();
    let row = format!(
        "| no monitor (all {} reference blocks) | – | {:.1} | – | – | {:.3} | – | – | – | {:.0} |",
        off.len(),
        mean(&off_unit),
        mean(&off_cores),
        mean(&off_sw)
    );
    println!("    {row}");
    let _ = writeln!(md, "{row}");
    for (c, spec) in plan.configs.iter().enumerate() {
        let on: Vec<&Block> = p.on_blocks(c).collect();
        let unit: Vec<f64> = on.iter().filter_map(|b| b.cpu_per_unit_us()).collect();
        let cores: Vec<f64> = on.iter().map(|b| b.work_cores()).collect();
        let sw: Vec<f64> = on.iter().map(|b| b.switches_per_s()).collect();
        let kernel = match (spec.backend, spec.bpf_stats) {
            (Backend::Cgroupfs, _) => "– (none)".to_owned(),
            (Backend::Ebpf, false) => "not measured (statistics off)".to_owned(),
            (Backend::Ebpf, true) => show(Interval::of(&p.kernel_pcts(c)), 3),
        };
        let row = format!(
            "| {} | {} | {:.1} | {} | {} | {:.3} | {} | {} | {} | {:.0} |",
            spec.label(),
            p.pairs(c).len(),
            mean(&unit),
            show_signed(Interval::of(&p.slowdowns(c)), 2),
            show_signed(Interval::of(&p.adjusted_slowdowns(c)), 2),
            mean(&cores),
            show_signed(Interval::of(&p.share_changes(c)), 2),
            show(Interval::of(&p.monitor_pcts(c)), 2),
            kernel,
            mean(&sw)
        );
        println!("    {row}");
        let _ = writeln!(md, "{row}");
    }
    let flagged_switch = p.blocks.iter().filter(|b| b.other_switch_progs > 0).count();
    let most = p
        .blocks
        .iter()
        .map(|b| b.other_switch_progs)
        .max()
        .unwrap_or(0);
    let flagged_stats = p
        .blocks
        .iter()
        .filter(|b| b.foreign_stats && !b.slot.config.is_some_and(|c| plan.configs[c].bpf_stats))
        .count();
    let left_out = p.pairs_left_out(plan.configs.len());
    let spread = |v: &[f64]| {
        Interval::of(v).map_or("–".into(), |iv| {
            format!(
                "{:.2} percentage points (≈ {:.0} pairs for a ±0.25-point interval)",
                iv.sd,
                (1.96 * iv.sd / 0.25).powi(2).ceil().max(2.0)
            )
        })
    };
    let _ = writeln!(
        md,
        "\nUnits of work: {} recorded, {} wholly inside blocks and used. Spread (sd over pairs) of \
         the eBPF row's slowdown: {}; speed-adjusted: {}. Other programs named `{SWITCH_PROG}` \
         (another monitor on the machine) were loaded during {flagged_switch} of {} blocks (at \
         most {most} at once); {left_out} pairs were left out because their two blocks saw a \
         different number of them. BPF statistics were on for other programs during \
         {flagged_stats} blocks without ours on (their cost then lands in every row).",
        p.units_total,
        p.units_used,
        spread(&p.slowdowns(EBPF)),
        spread(&p.adjusted_slowdowns(EBPF)),
        p.blocks.len(),
    );

    // Per-pair values, so that the spread can be seen.
    let _ = writeln!(
        md,
        "\nSlowdown of the work per pair (%), in run order (speed-adjusted in parentheses):\n\n| configuration | per pair |\n|---|---|"
    );
    for (c, spec) in plan.configs.iter().enumerate() {
        let adjusted: Vec<Option<f64>> = p
            .pairs(c)
            .into_iter()
            .map(|(off, on)| Some(100.0 * (on.adjusted()? / off.adjusted()? - 1.0)))
            .collect();
        let raw: Vec<Option<f64>> = p
            .pairs(c)
            .into_iter()
            .map(|(off, on)| Some(100.0 * (on.cpu_per_unit_us()? / off.cpu_per_unit_us()? - 1.0)))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} |",
            spec.label(),
            raw.iter()
                .zip(&adjusted)
                .map(|(r, a)| match (r, a) {
                    (Some(r), Some(a)) => format!("{r:+.2} ({a:+.2})"),
                    _ => "– (no unit inside)".to_owned(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    // Kernel programs with statistics on.
    let on: Vec<&Block> = p.on_blocks(EBPF_STATS).collect();
    let mut names: Vec<&str> = on
        .iter()
        .flat_map(|b| {
            b.programs
                .iter()
                .filter(|q| q.runs > 0)
                .map(|q| q.name.as_str())
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    let idle: Vec<&str> = {
        let mut all: Vec<&str> = on
            .iter()
            .flat_map(|b| b.programs.iter().map(|q| q.name.as_str()))
            .filter(|n| !names.contains(n))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    };
    let _ = writeln!(
        md,
        "\nKernel programs of {} (per block; mean [95 % CI] over its {} blocks):\n\n| program | runs/s | ns per run | % of one core |\n|---|---|---|---|",
        plan.configs[EBPF_STATS].label(),
        on.len()
    );
    for name in &names {
        let rate: Vec<f64> = on
            .iter()
            .filter_map(|b| Some(b.prog(name)?.runs as f64 * 1e9 / b.programs_span_ns as f64))
            .collect();
        let core: Vec<f64> = on
            .iter()
            .filter_map(|b| Some(100.0 * b.prog(name)?.time_ns as f64 / b.programs_span_ns as f64))
            .collect();
        let _ = writeln!(
            md,
            "| `{name}` | {:.0} | {} | {} |",
            mean(&rate),
            show(Interval::of(&p.ns_per_run(EBPF_STATS, name)), 0),
            show(Interval::of(&core), 3)
        );
    }
    let _ = writeln!(
        md,
        "| all programs | | | {} |",
        show(Interval::of(&p.kernel_pcts(EBPF_STATS)), 3)
    );
    if !idle.is_empty() {
        let _ = writeln!(
            md,
            "\nNot run during the blocks: {}.",
            idle.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(md);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit whose fastest loop is half its CPU time.
    fn u(start: u64, end: u64, cpu: u64) -> Unit {
        Unit {
            start,
            end,
            cpu,
            fastest: cpu / 2,
        }
    }

    #[test]
    fn tally_counts_only_units_wholly_inside_a_window() {
        let windows = [(100, 200), (300, 400)];
        let units = [
            u(50, 120, 1),   // across the first start
            u(100, 150, 2),  // inside (starts at the start)
            u(150, 200, 4),  // inside (ends at the end)
            u(190, 310, 8),  // across the gap
            u(250, 290, 16), // in the gap
            u(300, 399, 32), // inside the second
            u(350, 450, 64), // across the second end
            u(500, 600, 128),
        ];
        let t = tally(&windows, &units);
        assert_eq!((t[0].units, t[0].cpu_ns), (2, 6));
        assert_eq!(t[0].fastest, vec![1.0, 2.0]);
        assert_eq!((t[1].units, t[1].cpu_ns), (1, 32));
        assert_eq!(t[1].speed_us(), Some(0.016));
        assert_eq!(Tally::default().cpu_per_unit_us(), None);
    }

    fn block(slot: Slot, other_switch_progs: usize) -> Block {
        Block {
            slot,
            start_ns: 0,
            end_ns: 1_000_000_000,
            monitor_cpu_ns: 0,
            programs: Vec::new(),
            programs_span_ns: 0,
            work_cpu_ns: 0,
            switches: 0,
            other_switch_progs,
            foreign_stats: false,
            tally: Tally::default(),
        }
    }

    #[test]
    fn pairs_with_another_monitor_on_one_side_only_are_left_out() {
        let slots = paired::schedule(2, 3, &mut Rng::new(3));
        // Another monitor's program is loaded during the on block of configuration 0 in
        // round 1 only, and during both blocks of configuration 1 in round 2.
        let blocks: Vec<Block> = slots
            .iter()
            .map(|s| {
                let other = match (s.round, s.pair, s.config) {
                    (1, 0, Some(_)) => 1,
                    (2, 1, _) => 1,
                    _ => 0,
                };
                block(*s, other)
            })
            .collect();
        let p = PhaseResult {
            n: 1,
            rounds: 3,
            blocks,
            units_total: 0,
            units_used: 0,
        };
        assert_eq!(p.all_pairs(0).len(), 3);
        let rounds = |c| {
            p.pairs(c)
                .iter()
                .map(|(off, _)| off.slot.round)
                .collect::<Vec<_>>()
        };
        assert_eq!(rounds(0), vec![0, 2]);
        assert_eq!(rounds(1), vec![0, 1, 2]);
        assert_eq!(p.pairs_left_out(2), 1);
        for (off, on) in p.pairs(1) {
            assert_eq!((off.slot.config, on.slot.config), (None, Some(1)));
        }
    }

    #[test]
    fn unit_lines_parse_or_fail() {
        assert_eq!(Unit::parse("1 5 4 2").unwrap(), u(1, 5, 4));
        assert!(Unit::parse("1 5 3").is_err());
        assert!(Unit::parse("5 1 4 2").is_err());
        assert!(
            Unit::parse("1 5 3 4").is_err(),
            "fastest loop above the unit's CPU"
        );
        assert!(Unit::parse("1 5 4 2 0").is_err());
        assert!(Unit::parse("1 x 4 2").is_err());
    }
}
