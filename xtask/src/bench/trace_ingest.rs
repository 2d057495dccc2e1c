//! Suite `trace-ingest`: speed and peak memory of `faasload trace convert azure2019` on a
//! generated Azure-2019-sized day file (50,000 rows x 1,440 minute columns; `--quick`:
//! 5,000 rows), and of a replay-style lazy walk of the converted day (`faasload trace
//! stats`, which iterates the whole schedule the loader would replay), beside a peer in
//! the same run: Python's `csv` module reading the same file and summing its counts.
//! Peak memory is the child's `ru_maxrss` (wait4). The file is generated deterministically
//! (a fixed LCG) in a temporary directory, removed afterwards.
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::Options;
use crate::cmd::step;
use crate::workspace::Workspace;

struct Run {
    secs: f64,
    maxrss_mb: f64,
}

/// Runs `c` to completion, output to `log`, with its wall time and peak RSS.
fn measured(c: &mut Command, log: &Path) -> Result<Run> {
    let f = File::create(log)?;
    c.stdin(Stdio::null()).stdout(f.try_clone()?).stderr(f);
    let what = format!("{c:?}");
    println!("    $ {what}");
    let t0 = Instant::now();
    let child = c.spawn().with_context(|| format!("cannot start {what}"))?;
    let pid = child.id() as libc::pid_t;
    std::mem::forget(child);
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data, zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: our own unreaped child; out-pointers valid.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("wait4");
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let s = std::fs::read_to_string(log).unwrap_or_default();
        bail!("{what} failed: {}", s.lines().rev().take(10).collect::<Vec<_>>().join("\n"));
    }
    Ok(Run {
        secs,
        maxrss_mb: ru.ru_maxrss as f64 / 1024.0,
    })
}

/// Writes the day file; returns its total count.
fn generate(path: &Path, rows: u32) -> Result<u64> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    write!(w, "HashOwner,HashApp,HashFunction,Trigger")?;
    for m in 1..=1440 {
        write!(w, ",{m}")?;
    }
    writeln!(w)?;
    let mut x: u64 = 0x853c49e6748fea9b;
    let mut next = || {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (x >> 33) as u32
    };
    let triggers = ["http", "timer", "queue", "event", "storage", "orchestration", "others"];
    let mut total = 0u64;
    for r in 0..rows {
        // Like the real trace: most functions are rare, a few are busy.
        let class = next() % 100;
        let owner = r / 7;
        let app = r / 3;
        write!(
            w,
            "{owner:064x},{app:064x},{r:064x},{}",
            triggers[(next() % 7) as usize]
        )?;
        for _ in 0..1440 {
            let c = match class {
                0..=59 => u32::from(next() % 16 == 0),
                60..=94 => next() % 3,
                _ => next() % 8,
            };
            total += u64::from(c);
            write!(w, ",{c}")?;
        }
        writeln!(w)?;
    }
    w.flush()?;
    Ok(total)
}

const PEER: &str = r#"
import csv, sys
n = 0
rows = 0
with open(sys.argv[1], newline='') as f:
    r = csv.reader(f)
    next(r)
    for row in r:
        rows += 1
        n += sum(int(c) for c in row[4:])
print(rows, n)
"#;

pub fn run(ws: &Workspace, opts: &Options) -> Result<String> {
    let rows: u32 = if opts.quick { 5_000 } else { 50_000 };
    let bin = crate::demo::release_faasload(ws)?;
    let tmp = std::env::temp_dir().join(format!("faasload-bench-trace-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let res = measure(&bin, &tmp, rows);
    let _ = std::fs::remove_dir_all(&tmp);
    res
}

fn measure(bin: &Path, tmp: &Path, rows: u32) -> Result<String> {
    let csv: PathBuf = tmp.join("invocations_per_function_md.anon.d01.csv");
    let total = step("generate the day file", || generate(&csv, rows))?;
    let size_mb = std::fs::metadata(&csv)?.len() as f64 / 1e6;
    let out = tmp.join("day.yaml");
    let conv = step("faasload trace convert azure2019", || {
        measured(
            Command::new(bin)
                .args(["trace", "convert", "azure2019"])
                .arg(&csv)
                .arg("-o")
                .arg(&out),
            &tmp.join("convert.log"),
        )
    })?;
    let walk = step("faasload trace stats (lazy walk of the day)", || {
        measured(
            Command::new(bin).args(["trace", "stats", "--json"]).arg(&out),
            &tmp.join("stats.log"),
        )
    })?;
    let stats = std::fs::read_to_string(tmp.join("stats.log"))?;
    // `"invocations": N,` is the first field of the JSON output.
    let walked: u64 = stats
        .split("\"invocations\":")
        .nth(1)
        .and_then(|t| t.split(',').next())
        .and_then(|t| t.trim().parse().ok())
        .context("no invocation count in the stats output")?;
    if walked != total {
        bail!("the walk saw {walked} invocations, the file holds {total}");
    }
    let peer_py = tmp.join("peer.py");
    std::fs::write(&peer_py, PEER)?;
    let peer = step("peer: python3 csv", || {
        measured(
            Command::new("python3").arg(&peer_py).arg(&csv),
            &tmp.join("peer.log"),
        )
    })?;
    let r = f64::from(rows);
    let table = format!(
        "Generated day file: {rows} rows x 1440 minutes, {size_mb:.0} MB, {total} invocations.\n\n\
         | step | wall (s) | rows/s | trace lines/s | peak RSS (MiB) |\n\
         |---|---|---|---|---|\n\
         | `faasload trace convert azure2019` | {:.2} | {:.0} | {:.0} | {:.0} |\n\
         | `faasload trace stats` (lazy walk of the converted day) | {:.2} | - | {:.0} | {:.0} |\n\
         | peer: python3 `csv` read + sum of the same file | {:.2} | {:.0} | - | {:.0} |\n\n\
         Goals (issue 6): replay walk >= 1,000,000 trace lines/s and < 1 GiB peak: \
         walk {:.2} M lines/s, {:.0} MiB. Convert vs python3 csv: {:.1}x faster.\n",
        conv.secs,
        r / conv.secs,
        total as f64 / conv.secs,
        conv.maxrss_mb,
        walk.secs,
        walked as f64 / walk.secs,
        walk.maxrss_mb,
        peer.secs,
        r / peer.secs,
        peer.maxrss_mb,
        walked as f64 / walk.secs / 1e6,
        walk.maxrss_mb,
        peer.secs / conv.secs,
    );
    println!("{table}");
    Ok(table)
}
