//! Azure Functions 2019 -> faasload trace. Reads `invocations_per_function_md` (HashOwner,
//! HashApp, HashFunction, Trigger, then one count per minute) row by row (a day file of
//! 50k functions is never held: memory is O(functions), not O(functions x minutes)),
//! selects functions (all, top N by count, N at random with a seed, by trigger), keeps a
//! window of minutes, scales the rate (cumulative rounding: no count lost), and writes a
//! YAML trace whose per-minute counts are in a counts file, replayed lazily with the
//! chosen law (exact count per minute, arrivals inside their minute, a phase per
//! function). Owners become users; each function is mapped onto a faasload function by
//! its mean duration (durations file) and memory (its app's memory percentile split
//! evenly across the app's functions).
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

use super::super::counts::{CountLaw, Scaler};
use super::super::counts_file::write_row;
use super::super::error::TraceError;
use super::super::model::User;
use super::super::writer::{CountsRef, write_yaml};
use super::{
    BadRows, Output, Summary, clamp_memory, counts_path, csv_err, parse_count, parse_number,
    reader, short,
};

/// Which functions to keep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Select {
    All,
    /// The N with the most invocations in the window.
    Top(usize),
    /// N drawn at random (seeded).
    Random(usize),
}

/// What to convert and how.
pub struct Options {
    pub invocations: PathBuf,
    pub durations: Option<PathBuf>,
    pub memory: Option<PathBuf>,
    /// Memory column of the app memory file (default `AverageAllocatedMb_pct50`).
    pub memory_column: String,
    pub select: Select,
    /// Keep only these triggers (empty: all).
    pub triggers: Vec<String>,
    /// Window of minutes `[from, to)`, 0-based (column `1` is minute 0).
    pub from_minute: u32,
    pub to_minute: Option<u32>,
    pub scale: f64,
    pub law: CountLaw,
    pub output: Output,
}

const KEYS: [&str; 4] = ["HashOwner", "HashApp", "HashFunction", "Trigger"];

struct Meta {
    row: u64,
    owner: String,
    app: String,
    function: String,
    total: u64,
}

/// Names for hashes: `PREFIX-` and the hash's first 10 characters (`o-13137c717e`,
/// `f-9a90f04464`), then `-1`, `-2`, ... when two keys share that. The separator keeps
/// the kind letter apart from the hash (a hash starting with `f` once gave `ff…`).
#[derive(Default)]
struct Names {
    by_key: HashMap<String, String>,
    used: HashSet<String>,
    /// The next suffix to try per base name (no quadratic search when many share one).
    next: HashMap<String, u32>,
}

impl Names {
    fn get(&mut self, key: &str, hash: &str, prefix: &str) -> String {
        if let Some(n) = self.by_key.get(key) {
            return n.clone();
        }
        let base = format!("{prefix}-{}", short(hash, 10));
        let mut n = base.clone();
        while self.used.contains(&n) {
            let i = self.next.entry(base.clone()).or_insert(1);
            n = format!("{base}-{i}");
            *i += 1;
        }
        self.used.insert(n.clone());
        self.by_key.insert(key.to_string(), n.clone());
        n
    }
}

/// Converts; returns what was done.
pub fn convert(o: &Options) -> Result<Summary, TraceError> {
    let file = o.invocations.display().to_string();
    let mut bad = BadRows::new(o.output.on_bad_row);
    let mut rdr = reader(&o.invocations)?;
    let header = rdr.byte_headers().map_err(|e| csv_err(&file, e))?.clone();
    for (i, k) in KEYS.iter().enumerate() {
        if header.get(i).map(|h| h.trim_ascii()) != Some(k.as_bytes()) {
            return Err(TraceError::at(
                &file,
                1,
                1,
                format!("expected the header {}, 1, 2, ..., 1440", KEYS.join(", ")),
            ));
        }
    }
    let minutes = (header.len() - KEYS.len()) as u32;
    let from = o.from_minute.min(minutes);
    let to = o.to_minute.unwrap_or(minutes).min(minutes);
    if from >= to {
        return Err(TraceError::file(
            &file,
            format!("empty window: minutes [{from}, {to}) of {minutes}"),
        ));
    }
    let counts_file = counts_path(&o.output.out);
    let mut out = BufWriter::with_capacity(
        1 << 20,
        File::create(&counts_file)
            .map_err(|e| TraceError::file(counts_file.display().to_string(), e.to_string()))?,
    );
    let io = |e: std::io::Error| TraceError::file(counts_file.display().to_string(), e.to_string());
    let direct = o.select == Select::All;
    let mut users = Names::default();
    let mut funcs = Names::default();
    let mut app_functions: HashMap<(String, String), u32> = HashMap::new();
    let mut metas: Vec<Meta> = Vec::new();
    let mut summary = Summary::default();
    let mut rec = csv::ByteRecord::new();
    let mut counts: Vec<u64> = Vec::with_capacity((to - from) as usize);
    let mut row: u64 = 0;
    // Pass 1: check every row, count, and (all functions selected) write them at once.
    while rdr
        .read_byte_record(&mut rec)
        .map_err(|e| csv_err(&file, e))?
    {
        row += 1;
        let line = rec.position().map_or(row + 1, |p| p.line());
        summary.rows_read += 1;
        match row_counts(&rec, header.len(), from, to, &mut counts) {
            Ok(()) => {}
            Err(m) => {
                bad.bad(&file, line, &m)?;
                continue;
            }
        }
        let field = |i: usize| String::from_utf8_lossy(&rec[i]).trim().to_string();
        let (owner, app, function, trigger) = (field(0), field(1), field(2), field(3));
        *app_functions
            .entry((owner.clone(), app.clone()))
            .or_insert(0) += 1;
        if !o.triggers.is_empty() && !o.triggers.contains(&trigger) {
            continue;
        }
        let total: u64 = counts.iter().sum();
        let m = Meta {
            row,
            owner,
            app,
            function,
            total,
        };
        if direct {
            summary.invocations +=
                write_counts(&mut out, &mut users, &mut funcs, &m, &counts, o.scale).map_err(io)?;
        }
        metas.push(m);
    }
    summary.rows_skipped = bad.skipped;

    // Selection, then pass 2 for the selected rows.
    if !direct {
        let keep: Vec<usize> = match o.select {
            Select::Top(n) => {
                let mut ix: Vec<usize> = (0..metas.len()).collect();
                ix.sort_by(|&a, &b| metas[b].total.cmp(&metas[a].total).then(a.cmp(&b)));
                ix.truncate(n);
                ix
            }
            Select::Random(n) => {
                let mut ix: Vec<usize> = (0..metas.len()).collect();
                let mut rng = Pcg64::seed_from_u64(o.output.seed);
                let n = n.min(ix.len());
                for i in 0..n {
                    let j = rng.random_range(i..ix.len());
                    ix.swap(i, j);
                }
                ix.truncate(n);
                ix
            }
            Select::All => unreachable!("handled in pass 1"),
        };
        let mut keep_rows: Vec<u64> = keep.iter().map(|&i| metas[i].row).collect();
        keep_rows.sort_unstable();
        let mut kept: Vec<Meta> = Vec::with_capacity(keep.len());
        let mut sorted = keep;
        sorted.sort_unstable();
        for i in sorted.into_iter().rev() {
            kept.push(metas.swap_remove(i));
        }
        kept.sort_by_key(|m| m.row);
        metas = kept;
        let mut rdr = reader(&o.invocations)?;
        let mut row: u64 = 0;
        let mut next = 0;
        while next < keep_rows.len()
            && rdr
                .read_byte_record(&mut rec)
                .map_err(|e| csv_err(&file, e))?
        {
            row += 1;
            if row != keep_rows[next] {
                continue;
            }
            let m = &metas[next];
            next += 1;
            row_counts(&rec, header.len(), from, to, &mut counts)
                .map_err(|e| TraceError::file(&file, format!("changed during conversion: {e}")))?;
            summary.invocations +=
                write_counts(&mut out, &mut users, &mut funcs, m, &counts, o.scale).map_err(io)?;
        }
    }
    out.flush().map_err(io)?;
    drop(out);

    // Durations and memory of the selected functions.
    let wanted: HashSet<String> = metas.iter().map(Meta::key).collect();
    let wanted_apps: HashSet<String> = metas
        .iter()
        .map(|m| format!("{}/{}", m.owner, m.app))
        .collect();
    let durations = match &o.durations {
        Some(p) => side_file(p, 3, "Average", &mut bad, |k| wanted.contains(k))?,
        None => HashMap::new(),
    };
    let memory = match &o.memory {
        Some(p) => side_file(p, 2, &o.memory_column, &mut bad, |k| {
            wanted_apps.contains(k)
        })?,
        None => HashMap::new(),
    };
    summary.rows_skipped = bad.skipped;

    let base = o.output.base();
    let mut parts = o.output.parts();
    parts.functions.reserve(metas.len());
    let mut seen_users: HashSet<String> = HashSet::new();
    for m in &metas {
        let user = users.get(&m.owner, &m.owner, "o");
        if seen_users.insert(user.clone()) {
            parts.users.push(User {
                namespace: user.clone(),
                name: user,
                auth: None,
                api_host: None,
                create: true,
            });
        }
        let key = m.key();
        let fname = funcs.get(&key, &m.function, "f");
        let duration_ms = durations.get(&key).copied().unwrap_or(100.0);
        let memory_mb = match memory.get(&format!("{}/{}", m.owner, m.app)) {
            Some(&mb) => {
                let n = app_functions
                    .get(&(m.owner.clone(), m.app.clone()))
                    .copied()
                    .unwrap_or(1);
                clamp_memory(mb / f64::from(n.max(1)))
            }
            None => 256,
        };
        parts.functions.push(
            o.output
                .mapping
                .function(fname, duration_ms, memory_mb, base)?,
        );
    }
    summary.functions = parts.functions.len() as u64;
    summary.users = parts.users.len() as u64;
    let counts_ref = CountsRef {
        file: counts_file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        bin: 60.0,
        law: o.law,
        start: 0.0,
    };
    let header = format!(
        "Converted from Azure Functions 2019 {} by `faasload trace convert azure2019`:\n\
         minutes [{from}, {to}), scale {}, {:?}, law {}, seed {}; {} functions, {} invocations.",
        o.invocations.display(),
        o.scale,
        o.select,
        o.law,
        o.output.seed,
        summary.functions,
        summary.invocations
    );
    write_yaml(&parts, Some(&counts_ref), &o.output.out, &header)?;
    Ok(summary)
}

impl Meta {
    /// The key of the function (hashes are unique per owner and app only).
    fn key(&self) -> String {
        format!("{}/{}/{}", self.owner, self.app, self.function)
    }
}

/// Writes one function's row of the counts file (scaled, cumulative rounding); returns
/// the invocations written.
fn write_counts(
    out: &mut impl Write,
    users: &mut Names,
    funcs: &mut Names,
    m: &Meta,
    counts: &[u64],
    scale: f64,
) -> std::io::Result<u64> {
    let mut s = Scaler::new(scale);
    let user = users.get(&m.owner, &m.owner, "o");
    let fname = funcs.get(&m.key(), &m.function, "f");
    let mut n = 0;
    write_row(
        out,
        &user,
        &fname,
        counts.iter().enumerate().map(|(b, &c)| {
            let c = s.scale(c);
            n += c;
            (b as u32, c)
        }),
    )?;
    Ok(n)
}

/// The window's counts of a row, checked (column count, every count).
fn row_counts(
    rec: &csv::ByteRecord,
    width: usize,
    from: u32,
    to: u32,
    out: &mut Vec<u64>,
) -> Result<(), String> {
    if rec.len() != width {
        return Err(format!("{} columns, the header has {width}", rec.len()));
    }
    out.clear();
    for m in 0..(width - KEYS.len()) as u32 {
        let c = parse_count(&rec[KEYS.len() + m as usize])
            .map_err(|e| format!("minute {}: {e}", m + 1))?;
        if (from..to).contains(&m) {
            out.push(c);
        }
    }
    Ok(())
}

/// A durations (key columns HashOwner, HashApp, HashFunction) or memory (HashOwner,
/// HashApp) file: the `column` of the wanted keys (`owner/app[/function]`).
fn side_file(
    path: &Path,
    keys: usize,
    column: &str,
    bad: &mut BadRows,
    wanted: impl Fn(&str) -> bool,
) -> Result<HashMap<String, f64>, TraceError> {
    let file = path.display().to_string();
    let mut rdr = reader(path)?;
    let header = rdr.byte_headers().map_err(|e| csv_err(&file, e))?.clone();
    let Some(col) = header
        .iter()
        .position(|h| h.trim_ascii() == column.as_bytes())
    else {
        return Err(TraceError::at(
            &file,
            1,
            1,
            format!("no column '{column}' in the header"),
        ));
    };
    let mut out = HashMap::new();
    let mut rec = csv::ByteRecord::new();
    let mut row = 0;
    while rdr
        .read_byte_record(&mut rec)
        .map_err(|e| csv_err(&file, e))?
    {
        row += 1;
        let line = rec.position().map_or(row + 1, |p| p.line());
        if rec.len() != header.len() {
            bad.bad(
                &file,
                line,
                &format!("{} columns, the header has {}", rec.len(), header.len()),
            )?;
            continue;
        }
        let key: Vec<String> = (0..keys)
            .map(|i| String::from_utf8_lossy(&rec[i]).trim().to_string())
            .collect();
        let key = key.join("/");
        if !wanted(&key) {
            continue;
        }
        match parse_number(&rec[col], column) {
            Ok(v) if v >= 0.0 => {
                out.insert(key, v);
            }
            Ok(v) => bad.bad(&file, line, &format!("{column} {v} is negative"))?,
            Err(m) => bad.bad(&file, line, &m)?,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_one_kind_letter_and_stay_unique() {
        let mut n = Names::default();
        // Hashes that start with the kind letter do not double it.
        assert_eq!(n.get("a/x/f00", "f00d5eed0123456789", "f"), "f-f00d5eed01");
        // The same key gets the same name; another key with the same prefix another one.
        assert_eq!(n.get("a/x/f00", "f00d5eed0123456789", "f"), "f-f00d5eed01");
        assert_eq!(
            n.get("b/y/f00", "f00d5eed01ffffffff", "f"),
            "f-f00d5eed01-1"
        );
        assert_eq!(
            n.get("c/z/f00", "f00d5eed01eeeeeeee", "f"),
            "f-f00d5eed01-2"
        );
    }
}
