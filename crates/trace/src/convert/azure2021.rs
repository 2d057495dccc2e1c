//! Azure Functions invocation trace 2021 -> faasload trace. Rows `app, func,
//! end_timestamp, duration` (seconds) become explicit invocations at `end - duration`
//! (the trace has no start time), one stream per function, apps as users. The trace has
//! no memory: functions get `--memory` (default 256 MB) and are mapped by mean duration.
use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Map;

use super::super::error::TraceError;
use super::super::model::User;
use super::super::schedule::{Explicit, Stream, StreamKind};
use super::super::writer::write_yaml;
use super::{BadRows, Output, Summary, csv_err, parse_number, reader, short};

pub struct Options {
    pub input: PathBuf,
    /// Keep invocations starting in `[from_s, to_s)` (seconds of the trace); instants are
    /// then counted from `from_s`.
    pub from_s: f64,
    pub to_s: Option<f64>,
    pub memory_mb: u32,
    pub output: Output,
}

const HEADER: [&str; 4] = ["app", "func", "end_timestamp", "duration"];

pub fn convert(o: &Options) -> Result<Summary, TraceError> {
    let file = o.input.display().to_string();
    let mut bad = BadRows::new(o.output.on_bad_row);
    let mut rdr = reader(&o.input)?;
    let header = rdr.byte_headers().map_err(|e| csv_err(&file, e))?.clone();
    let got: Vec<&[u8]> = header.iter().map(|h| h.trim_ascii()).collect();
    if got.len() != 4 || got.iter().zip(HEADER).any(|(g, h)| *g != h.as_bytes()) {
        return Err(TraceError::at(
            &file,
            1,
            1,
            format!("expected the header {}", HEADER.join(",")),
        ));
    }
    let mut summary = Summary::default();
    let mut by_fn: HashMap<(String, String), (Vec<Explicit>, f64)> = HashMap::new();
    let mut order: Vec<(String, String)> = Vec::new();
    let mut rec = csv::ByteRecord::new();
    let mut row = 0u64;
    let to = o.to_s.unwrap_or(f64::INFINITY);
    while rdr
        .read_byte_record(&mut rec)
        .map_err(|e| csv_err(&file, e))?
    {
        row += 1;
        summary.rows_read += 1;
        let line = rec.position().map_or(row + 1, |p| p.line());
        if rec.len() != 4 {
            bad.bad(&file, line, &format!("{} columns, expected 4", rec.len()))?;
            continue;
        }
        let (end, dur) = match (
            parse_number(&rec[2], "end_timestamp"),
            parse_number(&rec[3], "duration"),
        ) {
            (Ok(e), Ok(d)) => (e, d),
            (Err(m), _) | (_, Err(m)) => {
                bad.bad(&file, line, &m)?;
                continue;
            }
        };
        if dur < 0.0 || end < dur {
            bad.bad(
                &file,
                line,
                &format!("duration {dur} s is negative or before the trace start (end {end} s)"),
            )?;
            continue;
        }
        let start = end - dur;
        if start < o.from_s || start >= to {
            continue;
        }
        let key = (
            String::from_utf8_lossy(&rec[0]).trim().to_string(),
            String::from_utf8_lossy(&rec[1]).trim().to_string(),
        );
        let e = by_fn.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            (Vec::new(), 0.0)
        });
        e.0.push(Explicit {
            at_ns: ((start - o.from_s) * 1e9).round() as u64,
            input: None,
            params: Map::new(),
        });
        e.1 += dur;
    }
    summary.rows_skipped = bad.skipped;
    let base = o.output.base();
    let mut parts = o.output.parts();
    let mut user_ix: HashMap<String, u32> = HashMap::new();
    for (i, key) in order.iter().enumerate() {
        let (list, dur_sum) = by_fn.remove(key).unwrap_or_default();
        let uname = format!("a{}", short(&key.0, 10));
        let user = *user_ix.entry(key.0.clone()).or_insert_with(|| {
            parts.users.push(User {
                name: format!("{uname}-{}", parts.users.len()).replace('-', "_"),
                namespace: String::new(),
                auth: None,
                api_host: None,
                create: true,
            });
            (parts.users.len() - 1) as u32
        });
        let u = &mut parts.users[user as usize];
        u.namespace = u.name.clone();
        let mean_ms = dur_sum / list.len().max(1) as f64 * 1000.0;
        let fname = format!("f{}_{i}", short(&key.1, 10));
        parts.functions.push(
            o.output
                .mapping
                .function(fname, mean_ms, o.memory_mb, base)?,
        );
        summary.invocations += list.len() as u64;
        parts.streams.push(Stream {
            user,
            function: i as u32,
            seed: o.output.seed,
            pair_index: 0,
            label: None,
            kind: StreamKind::Explicit(list),
            params: Vec::new(),
            inputs: None,
        });
    }
    summary.functions = parts.functions.len() as u64;
    summary.users = parts.users.len() as u64;
    let header = format!(
        "Converted from the Azure Functions 2021 trace {} by `faasload trace convert azure2021`:\n\
         start = end_timestamp - duration; {} functions, {} invocations.",
        o.input.display(),
        summary.functions,
        summary.invocations
    );
    write_yaml(&parts, None, &o.output.out, &header)?;
    Ok(summary)
}
