//! Huawei Cloud 2023 (private release) request counts -> faasload trace. A per-second or
//! per-minute `requests` CSV has one row per time bin and one column per function id
//! (`0` .. `199`); other columns (time stamps) are ignored, empty cells count 0. Each
//! function becomes a per-bin stream (exact count per bin, arrivals inside the bin with a
//! phase per function), one user, memory `--memory`, mapped by `--duration-ms`.
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use super::super::counts::{CountLaw, Scaler};
use super::super::counts_file::write_row;
use super::super::error::TraceError;
use super::super::model::User;
use super::super::writer::{CountsRef, write_yaml};
use super::{BadRows, Output, Summary, counts_path, csv_err, parse_count, reader};

pub struct Options {
    pub input: PathBuf,
    /// Seconds per row (1 for per-second files, 60 for per-minute ones).
    pub bin_s: f64,
    pub scale: f64,
    pub law: CountLaw,
    pub memory_mb: u32,
    pub duration_ms: f64,
    pub output: Output,
}

pub fn convert(o: &Options) -> Result<Summary, TraceError> {
    let file = o.input.display().to_string();
    let mut bad = BadRows::new(o.output.on_bad_row);
    let mut rdr = reader(&o.input)?;
    let header = rdr.byte_headers().map_err(|e| csv_err(&file, e))?.clone();
    let cols: Vec<(usize, u32)> = header
        .iter()
        .enumerate()
        .filter_map(|(i, h)| {
            std::str::from_utf8(h)
                .ok()?
                .trim()
                .parse::<u32>()
                .ok()
                .map(|id| (i, id))
        })
        .collect();
    if cols.is_empty() {
        return Err(TraceError::at(
            &file,
            1,
            1,
            "no function id columns (0, 1, ...) in the header",
        ));
    }
    let mut summary = Summary::default();
    let mut series: Vec<Vec<(u32, u64)>> = vec![Vec::new(); cols.len()];
    let mut scalers: Vec<Scaler> = cols.iter().map(|_| Scaler::new(o.scale)).collect();
    let mut rec = csv::ByteRecord::new();
    let mut bin: u32 = 0;
    let mut row = 0u64;
    let mut vals = Vec::with_capacity(cols.len());
    while rdr
        .read_byte_record(&mut rec)
        .map_err(|e| csv_err(&file, e))?
    {
        row += 1;
        summary.rows_read += 1;
        let line = rec.position().map_or(row + 1, |p| p.line());
        if rec.len() != header.len() {
            bad.bad(
                &file,
                line,
                &format!("{} columns, the header has {}", rec.len(), header.len()),
            )?;
            bin += 1;
            continue;
        }
        vals.clear();
        let mut err = None;
        for &(i, id) in &cols {
            let cell = rec[i].trim_ascii();
            match if cell.is_empty() {
                Ok(0)
            } else {
                parse_count(cell)
            } {
                Ok(v) => vals.push(v),
                Err(m) => {
                    err = Some(format!("function {id}: {m}"));
                    break;
                }
            }
        }
        if let Some(m) = err {
            // A skipped row is an empty bin: the following bins keep their times.
            bad.bad(&file, line, &m)?;
            bin += 1;
            continue;
        }
        for (k, &v) in vals.iter().enumerate() {
            let c = scalers[k].scale(v);
            if c > 0 {
                series[k].push((bin, c));
            }
        }
        bin += 1;
    }
    summary.rows_skipped = bad.skipped;
    let counts_file = counts_path(&o.output.out);
    let io = |e: std::io::Error| TraceError::file(counts_file.display().to_string(), e.to_string());
    let mut out = BufWriter::new(File::create(&counts_file).map_err(io)?);
    let base = o.output.base();
    let mut parts = o.output.parts();
    parts.users.push(User {
        name: "huawei".into(),
        namespace: "huawei".into(),
        auth: None,
        api_host: None,
        create: true,
    });
    let mut names: HashMap<u32, String> = HashMap::new();
    for (k, &(_, id)) in cols.iter().enumerate() {
        if series[k].is_empty() {
            continue;
        }
        let name = names.entry(id).or_insert_with(|| format!("fn{id}")).clone();
        summary.invocations += series[k].iter().map(|c| c.1).sum::<u64>();
        write_row(&mut out, "huawei", &name, series[k].iter().copied()).map_err(io)?;
        parts.functions.push(
            o.output
                .mapping
                .function(name, o.duration_ms, o.memory_mb, base)?,
        );
    }
    out.flush().map_err(io)?;
    summary.functions = parts.functions.len() as u64;
    summary.users = 1;
    let counts_ref = CountsRef {
        file: counts_file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        bin: o.bin_s,
        law: o.law,
        start: 0.0,
    };
    let header = format!(
        "Converted from the Huawei 2023 requests file {} by `faasload trace convert huawei`:\n\
         {} s per row, scale {}, law {}; {} functions, {} invocations.",
        o.input.display(),
        o.bin_s,
        o.scale,
        o.law,
        summary.functions,
        summary.invocations
    );
    write_yaml(&parts, Some(&counts_ref), &o.output.out, &header)?;
    Ok(summary)
}
