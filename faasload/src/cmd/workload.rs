//! `faasload workload`: a process that burns known CPU time and holds known memory on
//! command, for tests and benchmarks. It reads commands on stdin, one per line, and
//! answers each with one JSON line on stdout, so a driver can place it in a cgroup first
//! and delimit "activations" precisely:
//! - `cpu <ms>`: busy-loop until this process has used <ms> more CPU time (rusage);
//! - `mem <MiB>`: allocate and touch <MiB>, hold it; `free`: release it;
//! - `exit`.
//!
//! Answers: `{"ok":true,"cpu_ns":<self CPU used by the command>,"rusage_ns":<total>}`.
use std::io::{BufRead, Write};

/// Arguments of `faasload workload`.
#[derive(clap::Args, Debug)]
pub(crate) struct WorkloadArgs {
    /// Run one `cpu <ms>` command and exit instead of reading stdin.
    #[arg(long)]
    pub cpu_ms: Option<f64>,
    /// Repeat `--cpu-ms` this many times (for benchmarks of fixed work).
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
}

/// Total CPU time (user + system) of this process in nanoseconds.
pub(crate) fn self_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Busy-loops until this process has used `ns` more CPU time; returns the time used.
pub(crate) fn burn(ns: u64) -> u64 {
    let start = self_cpu_ns();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    loop {
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        std::hint::black_box(x);
        let used = self_cpu_ns() - start;
        if used >= ns {
            return used;
        }
    }
}

/// Runs the workload.
pub(crate) fn run(args: WorkloadArgs) -> anyhow::Result<()> {
    if let Some(ms) = args.cpu_ms {
        for _ in 0..args.repeat {
            burn((ms * 1e6) as u64);
        }
        return Ok(());
    }
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    let mut held: Vec<Vec<u8>> = Vec::new();
    for line in stdin.lock().lines() {
        let line = line?;
        let mut it = line.split_whitespace();
        let reply = match (it.next(), it.next().map(str::parse::<f64>)) {
            (Some("cpu"), Some(Ok(ms))) if ms >= 0.0 => {
                let used = burn((ms * 1e6) as u64);
                format!(
                    "{{\"ok\":true,\"cpu_ns\":{used},\"rusage_ns\":{}}}",
                    self_cpu_ns()
                )
            }
            (Some("mem"), Some(Ok(mib))) if mib >= 0.0 => {
                let mut v = vec![0u8; (mib * 1048576.0) as usize];
                for i in (0..v.len()).step_by(4096) {
                    v[i] = 1;
                }
                held.push(std::hint::black_box(v));
                format!("{{\"ok\":true,\"rusage_ns\":{}}}", self_cpu_ns())
            }
            (Some("free"), None) => {
                held.clear();
                format!("{{\"ok\":true,\"rusage_ns\":{}}}", self_cpu_ns())
            }
            (Some("exit"), None) => break,
            _ => format!(
                "{{\"ok\":false,\"error\":{:?}}}",
                format!("bad command: {line}")
            ),
        };
        writeln!(out, "{reply}")?;
        out.flush()?;
    }
    Ok(())
}
