//! Conversion of production traces into faasload traces: what every converter shares
//! (malformed-row policy and report, the mapping of a trace function onto a faasload
//! function by duration and memory, output paths). One module per source format.
pub mod azure2019;
pub mod azure2021;
pub mod huawei;

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::TraceError;
use super::model::Function;
use super::resolve::resolve_code;
use super::schedule::Parts;

/// What to do with a malformed CSV row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnBadRow {
    /// Stop at the first one, with its file:line.
    Fail,
    /// Skip it, report it (file:line, the first ones) and count it.
    Skip,
}

/// Malformed rows met so far, under the user's policy.
pub(crate) struct BadRows {
    pub policy: OnBadRow,
    pub skipped: u64,
    /// The first reports (file:line: message).
    pub shown: Vec<String>,
}

/// Reports beyond this many are only counted.
const SHOW: usize = 20;

impl BadRows {
    pub(crate) fn new(policy: OnBadRow) -> BadRows {
        BadRows {
            policy,
            skipped: 0,
            shown: Vec::new(),
        }
    }

    /// A malformed row: an error under `fail`, else counted and reported.
    pub(crate) fn bad(&mut self, file: &str, line: u64, msg: &str) -> Result<(), TraceError> {
        match self.policy {
            OnBadRow::Fail => Err(TraceError::at(file, line as usize, 1, msg)),
            OnBadRow::Skip => {
                self.skipped += 1;
                if self.shown.len() < SHOW {
                    let s = format!("{file}:{line}: {msg} (row skipped)");
                    eprintln!("{s}");
                    self.shown.push(s);
                }
                Ok(())
            }
        }
    }
}

/// A non-negative integer count, or why not.
pub(crate) fn parse_count(field: &[u8]) -> Result<u64, String> {
    let s = std::str::from_utf8(field).unwrap_or("?").trim();
    if s.starts_with('-') {
        return Err(format!("negative count '{s}'"));
    }
    if let Ok(v) = s.parse::<u64>() {
        return Ok(v);
    }
    // Some exports write counts as floats (`3.0`).
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 1e15 => Ok(v as u64),
        _ => Err(format!("'{s}' is not a count (an integer >= 0)")),
    }
}

/// A finite number, or why not.
pub(crate) fn parse_number(field: &[u8], what: &str) -> Result<f64, String> {
    let s = std::str::from_utf8(field).unwrap_or("?").trim();
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("{what} '{s}' is not a number")),
    }
}

/// One rule of a mapping: trace functions up to these bounds become this function.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rule {
    /// Applies to functions whose mean duration is at most this (ms); none: any.
    pub max_duration_ms: Option<f64>,
    /// Applies to functions with at most this memory (MB); none: any.
    pub max_memory_mb: Option<u32>,
    pub kind: String,
    pub code: String,
    pub main: Option<String>,
    /// Default parameters; the strings `{duration_ms}`, `{memory_mb}` and `{hold_mb}`
    /// (a quarter of the memory, at least 1) become those numbers.
    #[serde(default)]
    pub parameters: Map<String, Value>,
}

/// How trace functions become faasload functions: the first rule that fits wins.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub(crate) rules: Vec<Rule>,
}

/// The default mapping: functions shorter than 2 ms become the no-op action, the others
/// burn their mean duration of CPU while holding a quarter of their memory
/// (`functions/python/burn.py`).
pub(crate) const DEFAULT_MAPPING: &str = r#"
rules:
  - {max_duration_ms: 2, kind: "python:3", code: python/noop.py}
  - kind: "python:3"
    code: python/burn.py
    parameters: {ms: "{duration_ms}", mb: "{hold_mb}"}
"#;

impl Mapping {
    /// The mapping in `path`, or the default one.
    pub fn load(path: Option<&Path>) -> Result<Mapping, TraceError> {
        let (text, label) = match path {
            Some(p) => (
                std::fs::read_to_string(p)
                    .map_err(|e| TraceError::file(p.display().to_string(), e.to_string()))?,
                p.display().to_string(),
            ),
            None => (DEFAULT_MAPPING.to_string(), "default mapping".to_string()),
        };
        let m: Mapping = yaml_serde::from_str(&text).map_err(|e| match e.location() {
            Some(l) => TraceError::at(&label, l.line(), l.column(), e.to_string()),
            None => TraceError::file(&label, e.to_string()),
        })?;
        if m.rules.is_empty() {
            return Err(TraceError::file(
                &label,
                "a mapping needs at least one rule",
            ));
        }
        let base = path.and_then(Path::parent).unwrap_or(Path::new("."));
        for r in &m.rules {
            resolve_code(&r.code, base).map_err(|e| TraceError::file(&label, e))?;
        }
        Ok(m)
    }

    /// The faasload function for a trace function of this duration and memory.
    pub(crate) fn function(
        &self,
        name: String,
        duration_ms: f64,
        memory_mb: u32,
        base: &Path,
    ) -> Result<Function, TraceError> {
        let rule = self
            .rules
            .iter()
            .find(|r| {
                r.max_duration_ms.is_none_or(|m| duration_ms <= m)
                    && r.max_memory_mb.is_none_or(|m| memory_mb <= m)
            })
            .unwrap_or(&self.rules[self.rules.len() - 1]);
        let code = resolve_code(&rule.code, base).map_err(|e| TraceError::file(&name, e))?;
        let parameters = rule
            .parameters
            .iter()
            .map(|(k, v)| {
                let v = match v.as_str() {
                    Some("{duration_ms}") => Value::from(duration_ms.round().max(0.0) as u64),
                    Some("{memory_mb}") => Value::from(memory_mb),
                    Some("{hold_mb}") => Value::from((memory_mb / 4).max(1)),
                    _ => v.clone(),
                };
                (k.clone(), v)
            })
            .collect();
        // Room for the work plus start-up: at least 60 s, else 3x the mean duration.
        let timeout_ms = (duration_ms * 3.0).clamp(60_000.0, 600_000.0) as u32;
        Ok(Function {
            action: name.clone(),
            name,
            kind: rule.kind.clone(),
            code,
            main: rule.main.clone(),
            memory_mb,
            timeout_ms,
            parameters,
            input_kind: None,
        })
    }
}

/// The counts file written beside a YAML trace: `x.yaml` -> `x.counts.tsv`.
pub(crate) fn counts_path(yaml: &Path) -> PathBuf {
    let stem = yaml
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "trace".into());
    yaml.with_file_name(format!("{stem}.counts.tsv"))
}

/// Memory limits in OpenWhisk's usual range.
pub(crate) fn clamp_memory(mb: f64) -> u32 {
    if mb.is_finite() {
        (mb.ceil() as u32).clamp(128, 4096)
    } else {
        256
    }
}

/// A short, unique-enough function name from a trace hash.
pub(crate) fn short(hash: &str, n: usize) -> String {
    hash.chars().take(n).collect()
}

/// What every conversion shares: where the trace goes, the seed, the mapping of trace
/// functions and the malformed-row policy.
pub struct Output {
    pub out: PathBuf,
    pub seed: u64,
    pub mapping: Mapping,
    pub on_bad_row: OnBadRow,
}

impl Output {
    /// The directory the written trace's relative paths are seen from.
    pub(crate) fn base(&self) -> &Path {
        self.out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    }

    /// Empty parts of the trace written to `out`.
    pub(crate) fn parts(&self) -> Parts {
        Parts {
            origin: self.out.display().to_string(),
            users: Vec::new(),
            functions: Vec::new(),
            seed: self.seed,
            streams: Vec::new(),
        }
    }
}

/// A CSV reader of `path` (header row, rows of any width: widths are checked per row).
pub(crate) fn reader(path: &Path) -> Result<csv::Reader<File>, TraceError> {
    let f = File::open(path)
        .map_err(|e| TraceError::file(path.display().to_string(), e.to_string()))?;
    Ok(csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .buffer_capacity(1 << 20)
        .from_reader(f))
}

/// A CSV error at its file:line.
pub(crate) fn csv_err(file: &str, e: csv::Error) -> TraceError {
    match e.position() {
        Some(p) => TraceError::at(file, p.line() as usize, 1, e.to_string()),
        None => TraceError::file(file, e.to_string()),
    }
}

/// What a conversion did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Summary {
    pub rows_read: u64,
    pub rows_skipped: u64,
    pub functions: u64,
    pub users: u64,
    pub invocations: u64,
}
