//! The text rendering of a report: outcome and start counts, a wrk2-style latency
//! distribution, then percentile tables (overall, per function, per user and function).
use std::fmt::Write;

use super::Report;
use super::metrics::{Metric, MetricSet, PERCENTILES, Summary, ms};
use crate::store::LoadInfo;

/// Column headers of a percentile table row (after the group columns).
fn header(groups: &[(&str, usize)]) -> String {
    let mut s = String::from("  ");
    for &(g, w) in groups {
        let _ = write!(s, "{g:<w$} ");
    }
    let _ = write!(
        s,
        "{:<9} {:>9} {:>10} {:>10}",
        "metric", "count", "mean", "stdev"
    );
    for p in PERCENTILES {
        let _ = write!(s, " {:>10}", pct_label(p));
    }
    s.push('\n');
    s
}

fn pct_label(p: f64) -> String {
    if p >= 100.0 {
        "max".to_string()
    } else {
        format!("p{p}")
    }
}

/// Rows of one metric set (metrics without values are left out).
fn rows(out: &mut String, groups: &[(&str, usize)], set: &MetricSet) {
    for m in Metric::ALL {
        let sum = Summary::of(set.get(m));
        if sum.count == 0 {
            continue;
        }
        out.push_str("  ");
        for &(g, w) in groups {
            let _ = write!(out, "{g:<w$} ");
        }
        let _ = write!(
            out,
            "{:<9} {:>9} {:>10} {:>10}",
            m.label(),
            sum.count,
            ms(sum.mean),
            ms(sum.stdev)
        );
        for v in sum.at {
            let _ = write!(out, " {:>10}", ms(v as f64));
        }
        out.push('\n');
    }
}

/// The wrk2 block for overall latency.
fn distribution(out: &mut String, set: &MetricSet) {
    let h = set.get(Metric::Latency);
    let sum = Summary::of(h);
    out.push_str("  Latency Distribution (HdrHistogram - from the intended send instant)\n");
    for (p, v) in PERCENTILES.iter().zip(sum.at) {
        let _ = writeln!(out, "{p:>7.3}%  {:>10}ms", ms(v as f64));
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:>12}, StdDeviation   = {:>12}]",
        ms(sum.mean),
        ms(sum.stdev)
    );
    let _ = writeln!(
        out,
        "#[Max     = {:>12}, Total count    = {:>12}]",
        ms(sum.at[6] as f64),
        sum.count
    );
}

pub(super) fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Invocations: {}", r.rows());
    let classes: Vec<String> = r
        .classes()
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    let _ = writeln!(
        out,
        "Outcomes: {}",
        if classes.is_empty() {
            "none".to_string()
        } else {
            classes.join(", ")
        }
    );
    let (cold, warm, none) = r.starts();
    let _ = writeln!(
        out,
        "Starts: cold {cold}, warm {warm}, without a record {none}"
    );
    out.push('\n');
    distribution(&mut out, r.overall());
    out.push('\n');
    out.push_str("Overall (ms)\n");
    out.push_str(&header(&[]));
    rows(&mut out, &[], r.overall());
    let fw = r
        .by_function
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max(8);
    out.push_str("\nPer function (ms)\n");
    out.push_str(&header(&[("function", fw)]));
    for (f, set) in &r.by_function {
        rows(&mut out, &[(f, fw)], set);
    }
    let uw = r.by_user.keys().map(String::len).max().unwrap_or(0).max(4);
    out.push_str("\nPer user and function (ms)\n");
    out.push_str(&header(&[("user", uw), ("function", fw)]));
    for (u, fs) in &r.by_user {
        for (f, set) in fs {
            rows(&mut out, &[(u, uw), (f, fw)], set);
        }
    }
    out
}

/// A header naming the load a stored report comes from.
pub(super) fn load_header(l: &LoadInfo) -> String {
    let state = l.state_now();
    let mut out = format!(
        "Load {} from {} ({}), started at epoch {} ms",
        l.id,
        l.origin,
        state.as_str(),
        l.start_epoch_ms
    );
    if state == crate::store::LoadState::Crashed {
        let _ = write!(
            out,
            ", its loader gone since {} UTC (no heartbeat since; rows up to then are kept)",
            crate::store::format_epoch_ms(l.last_seen_epoch_ms())
        );
    }
    if let Some(end) = l.end_epoch_ms {
        let _ = write!(
            out,
            ", ended after {:.3} s",
            (end - l.start_epoch_ms) as f64 / 1e3
        );
    }
    if let Some(seed) = l.seed {
        let _ = write!(out, ", seed {seed}");
    }
    let _ = write!(out, "\nRows stored: {} ({} failed)", l.rows, l.failed);
    if let Some(p) = l.planned {
        let _ = write!(out, " of {p} planned");
    }
    out.push_str("\n\n");
    out
}
