//! `faasload trace stats`: walks a trace's lazy schedule once (nothing is kept per
//! invocation) and prints per-user and per-function counts, the rate over time as a
//! small text chart, and the expected concurrency (invocations x mean duration / span,
//! from a function's `ms` parameter when it has one); `--json` for scripts.
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

#[derive(Args)]
pub struct StatsArgs {
    /// YAML trace or original FaaSLoad directory.
    trace: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// Rows of the rate chart.
    #[arg(long, default_value_t = 20)]
    rows: usize,
}

/// What `stats` reports.
#[derive(Debug, Default, Serialize, PartialEq)]
pub(crate) struct Stats {
    pub invocations: u64,
    pub span_s: f64,
    pub per_user: Vec<(String, u64)>,
    pub per_function: Vec<(String, u64)>,
    /// Invocations per second, one value per chart bucket.
    pub rate: Vec<f64>,
    pub bucket_s: f64,
    /// Mean number of invocations running at once, when durations are known.
    pub expected_concurrency: Option<f64>,
    /// Whether the schedule was in time order (always, for a valid trace).
    pub ordered: bool,
}

/// Walks `trace` once.
pub(crate) fn compute(trace: &super::Trace, rows: usize) -> Stats {
    let mut per_user = vec![0u64; trace.users.len()];
    let mut per_function = vec![0u64; trace.functions.len()];
    let dur_ms: Vec<Option<f64>> = trace
        .functions
        .iter()
        .map(|f| f.parameters.get("ms").and_then(|v| v.as_f64()))
        .collect();
    // Per-second counts (a day is 86,400 entries), folded into the chart at the end.
    let mut per_s: Vec<u64> = Vec::new();
    let mut busy_ms = 0.0;
    let mut known = true;
    let mut last = 0u64;
    let mut ordered = true;
    let mut n = 0u64;
    for inv in trace.invocations() {
        n += 1;
        if inv.at_ns < last {
            ordered = false;
        }
        last = inv.at_ns;
        per_user[inv.user as usize] += 1;
        per_function[inv.function as usize] += 1;
        let s = (inv.at_ns / 1_000_000_000) as usize;
        if s >= per_s.len() {
            per_s.resize(s + 1, 0);
        }
        per_s[s] += 1;
        match dur_ms[inv.function as usize] {
            Some(d) => busy_ms += d,
            None => known = false,
        }
    }
    let span_s = (per_s.len() as f64).max(1.0);
    let rows = rows.max(1);
    let per_bucket = per_s.len().div_ceil(rows).max(1);
    let rate = per_s
        .chunks(per_bucket)
        .map(|c| c.iter().sum::<u64>() as f64 / per_bucket as f64)
        .collect();
    let named = |names: Vec<String>, v: Vec<u64>| names.into_iter().zip(v).collect();
    Stats {
        invocations: n,
        span_s,
        per_user: named(
            trace.users.iter().map(|u| u.name.clone()).collect(),
            per_user,
        ),
        per_function: named(
            trace.functions.iter().map(|f| f.name.clone()).collect(),
            per_function,
        ),
        rate,
        bucket_s: per_bucket as f64,
        expected_concurrency: (known && n > 0).then(|| busy_ms / 1000.0 / span_s),
        ordered,
    }
}

pub fn run(a: StatsArgs) -> Result<()> {
    let t = super::load(&a.trace)?;
    let s = compute(&t, a.rows);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!(
        "{}: {} invocations over {:.0} s{}",
        a.trace.display(),
        s.invocations,
        s.span_s,
        s.expected_concurrency
            .map(|c| format!(", expected concurrency {c:.2}"))
            .unwrap_or_default()
    );
    println!("per user:");
    for (u, c) in &s.per_user {
        println!("  {u:<24} {c}");
    }
    println!("per function:");
    for (f, c) in s.per_function.iter().take(50) {
        println!("  {f:<24} {c}");
    }
    if s.per_function.len() > 50 {
        println!("  ... {} more", s.per_function.len() - 50);
    }
    println!("rate (invocations/s, {} s per row):", s.bucket_s);
    let max = s.rate.iter().copied().fold(0.0, f64::max);
    for (i, r) in s.rate.iter().enumerate() {
        let w = if max > 0.0 {
            (r / max * 50.0).round() as usize
        } else {
            0
        };
        println!(
            "  {:>8.0}s {:>10.2} {}",
            i as f64 * s.bucket_s,
            r,
            "#".repeat(w)
        );
    }
    Ok(())
}
