//! `cargo xtask bench [suite...] [--quick]`: measures the instrument, side by side with a
//! peer in the same run, and writes `BENCHMARKS.md`.
//!
//! Each suite is one entry of [`SUITES`]: a function that sets up what it needs, measures,
//! cleans up everything it started (even on error), prints its table and returns its
//! Markdown section. A full run replaces only that suite's section of `BENCHMARKS.md`
//! (between `<!-- bench:NAME begin -->` and `<!-- bench:NAME end -->`), prefixed with the
//! machine facts and the command; a `--quick` run (the smoke test) writes it to
//! `target/bench/NAME.md` instead, so smoke runs never overwrite recorded results.
//! Add a suite by writing its module under `bench/` and adding a line to [`SUITES`].

mod floor;
mod kprogs;
mod loader;
mod mon;
mod monitor_overhead;
mod monitor_precision;
mod monitor_query;
mod paired;
mod platform;
mod trace_ingest;

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cmd::{self, step};
use crate::workspace::Workspace;

/// Options shared by all suites.
pub(crate) struct Options {
    /// Short run for the smoke test (well under a minute per suite).
    pub quick: bool,
    /// Measure the unoptimised `target/debug/faasload` (built by `cargo build`) instead
    /// of building the release binary: the smoke test's way to exercise the harness
    /// without a second full build (minutes and over a GiB of disk). Only with `quick`.
    pub dev_build: bool,
}

impl Options {
    /// The faasload binary the suites measure: release, or the debug one for the smoke test.
    pub(crate) fn faasload(&self, ws: &Workspace) -> Result<std::path::PathBuf> {
        if !self.dev_build {
            return crate::demo::release_faasload(ws);
        }
        step("eBPF toolchain (nightly rust-src, bpf-linker)", || {
            crate::ebpf::install()
        })?;
        // The workspace build `cargo xtask test` makes (with `-p faasload` alone, cargo
        // would unify features differently and build faasload again).
        step("cargo build --workspace (unoptimised, --dev-build)", || {
            cmd::run(
                cmd::cargo()
                    .args(["build", "--workspace"])
                    .current_dir(&ws.root),
            )
        })?;
        Ok(ws.faasload_bin())
    }
}

/// A suite: measures, prints its table, returns its Markdown body (without the header,
/// machine facts and command, which [`run`] adds).
type Suite = fn(&Workspace, &Options) -> Result<String>;

const SUITES: &[(&str, &str, Suite)] = &[
    (
        "platform",
        "warm and cold invoke latency of a no-op action through the embedded platform, \
         platform overhead split out, against the HTTP floor of the same client",
        platform::run,
    ),
    (
        "loader",
        "loader-lag and loader-throughput: send lag, latency, achieved rate and CPU of \
         `faasload load` at fixed rates and at its maximum rate against a fast loopback \
         endpoint (nginx), side by side with oha",
        loader::run,
    ),
    (
        "monitor-overhead",
        "disturbance of fixed CPU work in 100 and 10 busy containers (its CPU time per unit \
         of work, in paired blocks with and without a monitor, with 95 % intervals) under the \
         eBPF monitor and cgroupfs polling at 10 ms and 1 s; the monitor's own CPU (user \
         threads and kernel programs) and the ns per `sched_switch` run; whether issue 15's \
         goals are met",
        monitor_overhead::run,
    ),
    (
        "monitor-precision",
        "per-activation CPU time and memory peak from the eBPF monitor and from cgroupfs \
         polling (10 ms, 1 s) against the cgroup's own counters, for known work from 1 ms \
         to 10 s; the fraction of activations each method sees at all",
        monitor_precision::run,
    ),
    (
        "monitor-query",
        "query latency of the monitor at 1,000 queries/s (open loop) while it samples 100 \
         containers, beside reading the cgroup files directly",
        monitor_query::run,
    ),
    (
        "trace-ingest",
        "speed and peak memory of converting an Azure-2019-sized day file and of a lazy \
         walk of the converted day, beside python3's csv module on the same file",
        trace_ingest::run,
    ),
];

/// The suites' names, in the order a full run measures them.
pub(crate) fn suite_names() -> impl Iterator<Item = &'static str> {
    SUITES.iter().map(|(name, _, _)| *name)
}

/// Runs the named suites (all when none is named).
pub(crate) fn run(ws: &Workspace, names: &[String], opts: &Options) -> Result<()> {
    let selected: Vec<&(&str, &str, Suite)> = if names.is_empty() {
        SUITES.iter().collect()
    } else {
        names
            .iter()
            .map(|n| {
                SUITES.iter().find(|(s, _, _)| s == n).with_context(|| {
                    let known: Vec<&str> = suite_names().collect();
                    format!("unknown suite {n:?} (known: {})", known.join(", "))
                })
            })
            .collect::<Result<_>>()?
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        bail!(
            "the benchmarks need root (uid 0, this is uid {euid}): they start the platform, \
             which creates cgroups; run `sudo -E cargo xtask bench`"
        );
    }
    let command = invocation();
    for (name, what, suite) in selected {
        // Facts (load average included) as they were when the suite started.
        let facts = machine_facts(ws);
        let body = step(format!("bench {name}"), || suite(ws, opts))?;
        let section = format!(
            "## Suite `{name}`\n\n{what}.\n\n{facts}\nCommand: `{command}`\n\n{}\n",
            body.trim_end()
        );
        if opts.quick {
            let dir = ws.target_dir.join("bench");
            std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
            let path = dir.join(format!("{name}.md"));
            std::fs::write(&path, section).with_context(|| format!("write {}", path.display()))?;
            println!(
                "    --quick: results written to {} (BENCHMARKS.md untouched)",
                path.display()
            );
        } else {
            let path = ws.root.join("BENCHMARKS.md");
            write_section(&path, name, &section)?;
            println!("    section `{name}` of {} replaced", path.display());
        }
    }
    Ok(())
}

/// The command line as the user typed it through the cargo alias.
fn invocation() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("sudo -E cargo xtask {}", args.join(" "))
}

/// CPU model, cores, kernel, memory, date and commit, as a Markdown list.
fn machine_facts(ws: &Workspace) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or("unknown".into(), |kb| format!("{} MiB", kb / 1024));
    let date = cmd::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M:%S UTC"]))
        .unwrap_or_else(|_| "unknown".into());
    let commit = cmd::output(
        Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(&ws.root),
    )
    .unwrap_or_else(|_| "unknown".into());
    let dirty = cmd::output(
        Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=no"])
            .current_dir(&ws.root),
    )
    .map(|s| {
        if s.is_empty() {
            ""
        } else {
            " (with uncommitted changes)"
        }
    })
    .unwrap_or("");
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    format!(
        "- CPU: {model}, {cores} cores available\n- memory: {mem}\n- kernel: {kernel}\n\
         - date: {date}\n- commit: {commit}{dirty}\n\
         - load average (1, 5, 15 min) at the start: {load} (other work on the machine \
         shows up as spread)\n"
    )
}

/// Replaces (or appends) one suite's section of `BENCHMARKS.md`, creating the file.
fn write_section(path: &Path, name: &str, section: &str) -> Result<()> {
    let begin = format!("<!-- bench:{name} begin -->");
    let end = format!("<!-- bench:{name} end -->");
    let block = format!("{begin}\n{}\n{end}", section.trim_end());
    let old = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::from(
            "# faasload benchmarks\n\n\
             Written by `cargo xtask bench` (see `xtask/src/bench.rs`); each suite's section \
             is replaced by its next full run. Numbers are from one machine and one run: \
             compare rows within a section, not across machines.\n",
        ),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    let new = match (old.find(&begin), old.find(&end)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{block}{}", &old[..b], &old[e + end.len()..])
        }
        (None, None) => format!("{}\n\n{block}\n", old.trim_end()),
        _ => bail!(
            "{}: the markers of section `{name}` are broken; fix them by hand",
            path.display()
        ),
    };
    std::fs::write(path, new).with_context(|| format!("write {}", path.display()))
}
