//! Suite `trace-ingest`: speed and peak memory of the trace pipeline on a generated
//! Azure-Functions-2019-sized day file (50,000 rows x 1,440 minute columns in the public
//! column format; `--quick`: 5,000 rows), with the real release binary:
//! `faasload trace convert azure2019` (rows/s, invocations/s), `faasload trace check`
//! (parse and validate the converted day), `faasload trace stats` (one lazy walk of its
//! schedule) and `faasload load --dry-run` (the loader's own schedule of the whole day,
//! iterated in order without sending: the replay side, against issue 6's goal of at
//! least 1 M trace lines/s and under 1 GiB peak). Peer in the same run: Python's `csv` module
//! reading the same file and summing its counts. Each step is repeated (medians and
//! min..max); peak memory is the child's `ru_maxrss` (wait4). The day file is generated
//! deterministically (a fixed PCG-style LCG: 64-hex hashes like the real ones, a heavy
//! tail of busy functions) in a temporary directory, removed afterwards.
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::Options;
use super::loader::{run_measured, spread};
use super::mon::TempDir;
use crate::cmd::step;
use crate::workspace::Workspace;

/// Issue 6's goals for the replay of the day.
const GOAL_LINES_PER_S: f64 = 1e6;
const GOAL_PEAK_MIB: f64 = 1024.0;
/// No step of the full run may take longer than this (it is then killed, and the suite
/// fails).
const STEP_TIMEOUT: Duration = Duration::from_secs(300);

/// Sizes of a run.
struct Sizes {
    rows: u32,
    reps: usize,
    /// Repeats of the (slow) Python peer.
    peer_reps: usize,
}

/// One measured run of a child.
struct Sample {
    wall_s: f64,
    cpu_s: f64,
    rss_mib: f64,
}

pub(super) fn run(ws: &Workspace, opts: &Options) -> Result<String> {
    let sizes = if opts.quick {
        Sizes {
            rows: 5_000,
            reps: 2,
            peer_reps: 1,
        }
    } else {
        Sizes {
            rows: 50_000,
            reps: 3,
            peer_reps: 1,
        }
    };
    let bin = opts.faasload(ws)?;
    let tmp = TempDir::create("bench-trace")?;
    measure(ws, &bin, &tmp.path, &sizes)
}

/// The next value of a 64-bit LCG (Knuth's MMIX constants), high bits out.
fn lcg(x: &mut u64) -> u32 {
    *x = x
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*x >> 33) as u32
}

/// A 64-hex-digit hash (like the trace's SHA-256 hashes) from the generator.
fn hash(x: &mut u64) -> String {
    let mut s = String::with_capacity(64);
    for _ in 0..8 {
        let _ = write!(s, "{:08x}", lcg(x));
    }
    s
}

/// Writes the day file; returns its total count. Owners have ~7 functions in ~2 apps.
/// Like the real trace most functions are rare and a few are busy: 60 % fire in about
/// one minute in 16, 35 % 0-2 times a minute, 4.9 % 0-7 times, 0.1 % 0-399 times.
fn generate(path: &Path, rows: u32) -> Result<u64> {
    let f = File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    write!(w, "HashOwner,HashApp,HashFunction,Trigger")?;
    for m in 1..=1440 {
        write!(w, ",{m}")?;
    }
    writeln!(w)?;
    let mut x: u64 = 0x853c_49e6_748f_ea9b;
    let triggers = [
        "http",
        "timer",
        "queue",
        "event",
        "storage",
        "orchestration",
        "others",
    ];
    let (mut owner, mut app) = (String::new(), String::new());
    let mut total = 0u64;
    let mut line = String::with_capacity(8 * 1440);
    for r in 0..rows {
        if r % 7 == 0 {
            owner = hash(&mut x);
        }
        if r % 7 == 0 || r % 7 == 4 {
            app = hash(&mut x);
        }
        let function = hash(&mut x);
        let trigger = triggers[(lcg(&mut x) % 7) as usize];
        let class = lcg(&mut x) % 1000;
        line.clear();
        let _ = write!(line, "{owner},{app},{function},{trigger}");
        for _ in 0..1440 {
            let v = lcg(&mut x);
            let c = match class {
                0..=599 => u32::from(v.is_multiple_of(16)),
                600..=949 => v % 3,
                950..=998 => v % 8,
                _ => v % 400,
            };
            total += u64::from(c);
            let _ = write!(line, ",{c}");
        }
        line.push('\n');
        w.write_all(line.as_bytes())?;
    }
    w.flush()?;
    Ok(total)
}

/// Python's csv module on the same file: rows and the sum of every count.
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

/// `program args... files...`.
fn command(program: &Path, args: &[&str], files: &[&Path]) -> Command {
    let mut c = Command::new(program);
    c.args(args).args(files);
    c
}

/// Runs `c` `reps` times (output to `log`), checking each run's output with `check`.
fn repeat(
    what: &str,
    reps: usize,
    log: &Path,
    mut c: impl FnMut() -> Command,
    mut check: impl FnMut(&str) -> Result<()>,
) -> Result<Vec<Sample>> {
    step(what, || {
        let mut v = Vec::with_capacity(reps);
        for _ in 0..reps {
            let t0 = Instant::now();
            let u = run_measured(&mut c(), log, log, STEP_TIMEOUT)?;
            let wall_s = t0.elapsed().as_secs_f64();
            let out =
                std::fs::read_to_string(log).with_context(|| format!("read {}", log.display()))?;
            check(&out).with_context(|| format!("{what}: unexpected output"))?;
            println!(
                "    {wall_s:.2} s, cpu {:.2} s, peak RSS {:.0} MiB",
                u.cpu_ns as f64 / 1e9,
                u.max_rss_kb as f64 / 1024.0
            );
            v.push(Sample {
                wall_s,
                cpu_s: u.cpu_ns as f64 / 1e9,
                rss_mib: u.max_rss_kb as f64 / 1024.0,
            });
        }
        Ok(v)
    })
}

/// `median (min..max)` of `xs` with `prec` decimals (the median alone for one value).
fn cell(xs: &[f64], prec: usize) -> String {
    let (m, lo, hi) = spread(xs);
    if xs.len() == 1 {
        format!("{m:.prec$}")
    } else {
        format!("{m:.prec$} ({lo:.prec$}..{hi:.prec$})")
    }
}

/// The number after `key` in `text` (`key` ends where the number starts).
fn number_after(text: &str, key: &str) -> Option<f64> {
    let rest = &text[text.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn measure(ws: &Workspace, bin: &Path, tmp: &Path, sizes: &Sizes) -> Result<String> {
    let csv = tmp.join("invocations_per_function_md.anon.d01.csv");
    let rows = sizes.rows;
    let t0 = Instant::now();
    let total = step("generate the day file", || generate(&csv, rows))?;
    let gen_s = t0.elapsed().as_secs_f64();
    let size_mb = std::fs::metadata(&csv)?.len() as f64 / 1e6;
    println!("    {rows} rows, {size_mb:.0} MB, {total} invocations");
    let out = tmp.join("day.yaml");
    let counts = tmp.join("day.counts.tsv");

    let convert = repeat(
        "faasload trace convert azure2019",
        sizes.reps,
        &tmp.join("convert.log"),
        || {
            let mut c = Command::new(bin);
            c.args(["trace", "convert", "azure2019"])
                .arg(&csv)
                .arg("-o")
                .arg(&out)
                .current_dir(&ws.root);
            c
        },
        |log| {
            let want = format!("{rows} rows read, 0 skipped");
            let want_n = format!("{total} invocations");
            if !(log.contains(&want) && log.contains(&want_n)) {
                bail!("expected `{want}` and `{want_n}` in {log:?}");
            }
            Ok(())
        },
    )?;
    let counts_mb = std::fs::metadata(&counts)?.len() as f64 / 1e6;
    let check = repeat(
        "faasload trace check (parse and validate the converted day)",
        sizes.reps,
        &tmp.join("check.log"),
        || command(bin, &["trace", "check"], &[&out]),
        |log| {
            let want = format!("{rows} functions, {rows} pairs, {total} invocations");
            if !log.contains(&want) {
                bail!("expected `{want}` in {log:?}");
            }
            Ok(())
        },
    )?;
    let stats = repeat(
        "faasload trace stats --json (lazy walk)",
        sizes.reps,
        &tmp.join("stats.log"),
        || command(bin, &["trace", "stats", "--json"], &[&out]),
        |log| match number_after(log, "\"invocations\": ") {
            Some(n) if n as u64 == total => Ok(()),
            other => bail!("stats saw {other:?} invocations, the file holds {total}"),
        },
    )?;
    // The dry run prints how long its walk took: the rest is reading the trace.
    let mut walk_s = Vec::new();
    let dry = repeat(
        "faasload load --dry-run (the replay's schedule of the day)",
        sizes.reps,
        &tmp.join("dry.log"),
        || command(bin, &["load", "--dry-run"], &[&out]),
        |log| {
            let n = number_after(log, ": ")
                .filter(|_| log.starts_with("dry run of "))
                .context("no dry-run header")?;
            if n as u64 != total {
                bail!("the dry run walked {n} invocations, the file holds {total}");
            }
            let pairs = log.lines().skip(2).count();
            if pairs != rows as usize {
                bail!("the dry run listed {pairs} pairs, the file has {rows} functions");
            }
            walk_s.push(number_after(log, "schedule walked in ").context("no walk time")?);
            Ok(())
        },
    )?;
    let peer_py = tmp.join("peer.py");
    std::fs::write(&peer_py, PEER)?;
    let peer = repeat(
        "peer: python3 csv",
        sizes.peer_reps,
        &tmp.join("peer.log"),
        || command(Path::new("python3"), &[], &[&peer_py, &csv]),
        |log| {
            let want = format!("{rows} {total}");
            if log.trim() != want {
                bail!("expected `{want}`, got {log:?}");
            }
            Ok(())
        },
    )?;

    let r = f64::from(rows);
    let n = total as f64;
    let per_s = |ss: &[Sample], amount: f64, div: f64| -> Vec<f64> {
        ss.iter().map(|s| amount / s.wall_s / div).collect()
    };
    let col = |ss: &[Sample], f: fn(&Sample) -> f64, prec: usize| -> String {
        cell(&ss.iter().map(f).collect::<Vec<_>>(), prec)
    };
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Generated day file (deterministic): {rows} rows x 1,440 minutes, {size_mb:.0} MB, \
         {total} invocations (generated in {gen_s:.1} s); the converted day: a {counts_mb:.0} MB \
         counts file beside the YAML. {} repeats per step ({} for the peer); cells are \
         `median (min..max)`. \"Lines\" are invocations (one line each in an expanded trace \
         such as the original FaaSLoad TSV). Wall time is measured around the child (reaped \
         by a 20 ms poll); CPU and peak RSS from its rusage.\n",
        sizes.reps, sizes.peer_reps
    );
    let _ = writeln!(
        md,
        "| step | wall (s) | CPU (s) | rows/s | M lines/s | peak RSS (MiB) |\n\
         |---|---|---|---|---|---|"
    );
    let mut row = |name: &str, ss: &[Sample], rows_per_s: bool, lines: bool| {
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {} |",
            col(ss, |s| s.wall_s, 2),
            col(ss, |s| s.cpu_s, 2),
            if rows_per_s {
                cell(&per_s(ss, r, 1.0), 0)
            } else {
                "—".into()
            },
            if lines {
                cell(&per_s(ss, n, 1e6), 2)
            } else {
                "—".into()
            },
            col(ss, |s| s.rss_mib, 0),
        );
    };
    row(
        "`faasload trace convert azure2019 DAY.csv -o day.yaml`",
        &convert,
        true,
        true,
    );
    row(
        "`faasload trace check day.yaml` (read + validate)",
        &check,
        true,
        true,
    );
    row(
        "`faasload trace stats --json day.yaml` (read + lazy walk)",
        &stats,
        false,
        true,
    );
    row(
        "`faasload load --dry-run day.yaml` (read + the replay's schedule, nothing sent)",
        &dry,
        false,
        true,
    );
    row(
        "peer: python3 `csv` read + sum of DAY.csv",
        &peer,
        true,
        true,
    );
    let walk_rates: Vec<f64> = walk_s.iter().map(|s| n / s / 1e6).collect();
    let _ = writeln!(
        md,
        "\nSplit of the dry run: the schedule walk alone (timed inside the binary, reading \
         excluded) took {} s, i.e. {} M lines/s; the rest of its wall time is reading and \
         validating the trace.\n",
        cell(&walk_s, 2),
        cell(&walk_rates, 2)
    );
    let dry_rate = spread(&per_s(&dry, n, 1.0)).0;
    let dry_peak = spread(&dry.iter().map(|s| s.rss_mib).collect::<Vec<_>>()).2;
    let conv_rate = spread(&per_s(&convert, r, 1.0)).0;
    let peer_rate = spread(&per_s(&peer, r, 1.0)).0;
    let _ = writeln!(
        md,
        "Goal (issue 6), replay of the day: >= 1 M trace lines/s and < 1 GiB peak. Measured \
         (`load --dry-run`, reading included, median): {:.2} M lines/s — {}; worst peak RSS \
         {dry_peak:.0} MiB — {}. Conversion: {:.1}x the rows/s of the Python `csv` peer.",
        dry_rate / 1e6,
        if dry_rate >= GOAL_LINES_PER_S {
            "goal met"
        } else {
            "goal MISSED"
        },
        if dry_peak < GOAL_PEAK_MIB {
            "goal met"
        } else {
            "goal MISSED"
        },
        conv_rate / peer_rate,
    );
    let _ = writeln!(
        md,
        "\nReading: the replay goal is measured on `load --dry-run`, i.e. the loader's own \
         schedule iterator (the one its scheduler consumes) without the sending; a real \
         replay adds the per-invocation send path (suite `loader`). Memory holds the day's \
         per-minute counts compactly (dense `u16` per minute or sparse `(minute, count)` \
         pairs per function) and one pending invocation per stream, never the arrivals: \
         peak RSS follows the number of functions and non-zero minutes, not the number of \
         invocations. The walk is a k-way heap merge of one stream per function, so its rate \
         falls as streams are added (log2 of {rows} streams per invocation, and each \
         stream's state is a cache miss); `trace stats` and `load --dry-run` differ only by \
         what they tally per invocation. The Python peer only parses and sums the CSV \
         (conversion also writes the counts file)."
    );
    println!("{md}");
    Ok(md)
}
