//! The original FaaSLoad injector trace file, kept as text (lossless): the file name
//! `USER-ACTION-MEMORY-DURATION-AVGIAT` and lines `WAIT<TAB>INPUT<TAB>name:value...`,
//! with the conversions between its fields and the model's (WAIT seconds <-> ns, values
//! <-> numbers or strings). Defects are reported as `file:line:col` of the field.
use std::path::Path;

use serde_json::{Number, Value};

use super::error::{Errors, TraceError};

/// The parts of a trace file's name: `USER-ACTION-MEMORY-DURATION-AVGIAT` (memory MB,
/// duration and mean inter-arrival time in minutes). USER has no `-`; ACTION may.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TsvName {
    pub user: String,
    pub action: String,
    pub memory: String,
    pub duration: String,
    pub avgiat: String,
}

impl TsvName {
    /// Splits a file name; the memory must be an integer number of MB.
    pub(crate) fn parse(name: &str) -> Result<TsvName, String> {
        let bad = || format!("'{name}' is not named USER-ACTION-MEMORY-DURATION-AVGIAT");
        let mut right = name.rsplitn(4, '-');
        let avgiat = right.next().ok_or_else(bad)?;
        let duration = right.next().ok_or_else(bad)?;
        let memory = right.next().ok_or_else(bad)?;
        let rest = right.next().ok_or_else(bad)?;
        let (user, action) = rest.split_once('-').ok_or_else(bad)?;
        if user.is_empty() || action.is_empty() || duration.is_empty() || avgiat.is_empty() {
            return Err(bad());
        }
        match memory.parse::<u32>() {
            Ok(m) if m > 0 => {}
            _ => {
                return Err(format!(
                    "'{name}': MEMORY '{memory}' is not a number of MB > 0"
                ));
            }
        }
        Ok(TsvName {
            user: user.into(),
            action: action.into(),
            memory: memory.into(),
            duration: duration.into(),
            avgiat: avgiat.into(),
        })
    }

    /// The memory limit in MB (checked by [`TsvName::parse`]).
    pub(crate) fn memory_mb(&self) -> u32 {
        self.memory.parse().unwrap_or(0)
    }
}

impl std::fmt::Display for TsvName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{}-{}-{}-{}",
            self.user, self.action, self.memory, self.duration, self.avgiat
        )
    }
}

/// One line, fields as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TsvLine {
    pub wait: String,
    pub input: String,
    /// `name:value` fields split at the first `:`.
    pub params: Vec<(String, String)>,
}

/// A whole trace file, as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TsvFile {
    pub name: TsvName,
    pub lines: Vec<TsvLine>,
    /// Whether the last line ends with a newline.
    pub final_newline: bool,
}

impl TsvFile {
    /// Reads and checks a trace file (every defect, up to the error bound).
    pub(crate) fn read(path: &Path) -> Result<TsvFile, TraceError> {
        let label = path.display().to_string();
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| TraceError::file(&label, "not a UTF-8 file name"))?;
        let name = TsvName::parse(file_name).map_err(|m| TraceError::file(&label, m))?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| TraceError::file(&label, format!("cannot read: {e}")))?;
        let (lines, final_newline) = parse_lines(&text, &label)?;
        Ok(TsvFile {
            name,
            lines,
            final_newline,
        })
    }

    /// The file's text.
    #[cfg(test)]
    pub(crate) fn to_text(&self) -> String {
        let mut out = String::new();
        for (i, l) in self.lines.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&l.wait);
            out.push('\t');
            out.push_str(&l.input);
            for (k, v) in &l.params {
                out.push('\t');
                out.push_str(k);
                out.push(':');
                out.push_str(v);
            }
        }
        if self.final_newline && !self.lines.is_empty() {
            out.push('\n');
        }
        out
    }
}

/// Splits and checks the lines of a trace file; `label` names it in errors.
pub(crate) fn parse_lines(text: &str, label: &str) -> Result<(Vec<TsvLine>, bool), TraceError> {
    let mut errors = Errors::default();
    let final_newline = text.ends_with('\n');
    let body = text.strip_suffix('\n').unwrap_or(text);
    let mut lines = Vec::new();
    if body.is_empty() && text.len() <= 1 {
        return Ok((lines, final_newline));
    }
    for (n, raw) in body.split('\n').enumerate() {
        let line_no = n + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            errors.push(TraceError::at(label, line_no, 1, "empty line"));
            continue;
        }
        let mut fields = Vec::new();
        let mut col = 1;
        for f in line.split('\t') {
            fields.push((col, f));
            col += f.chars().count() + 1;
        }
        if fields.len() < 2 {
            errors.push(TraceError::at(
                label,
                line_no,
                line.chars().count() + 1,
                "expected WAIT<TAB>INPUT[<TAB>name:value...], found 1 field",
            ));
            continue;
        }
        if let Err(m) = parse_wait_ns(fields[0].1) {
            errors.push(TraceError::at(label, line_no, 1, m));
        }
        let mut params: Vec<(String, String)> = Vec::new();
        for &(col, f) in &fields[2..] {
            match f.split_once(':') {
                Some((k, v)) if !k.is_empty() => {
                    if params.iter().any(|(p, _)| p == k) {
                        errors.push(TraceError::at(
                            label,
                            line_no,
                            col,
                            format!("parameter '{k}' given twice"),
                        ));
                    }
                    params.push((k.to_string(), v.to_string()));
                }
                _ => errors.push(TraceError::at(
                    label,
                    line_no,
                    col,
                    format!("expected a parameter name:value, found '{f}'"),
                )),
            }
        }
        lines.push(TsvLine {
            wait: fields[0].1.to_string(),
            input: fields[1].1.to_string(),
            params,
        });
    }
    errors.into_result()?;
    Ok((lines, final_newline))
}

/// WAIT (seconds, fractional allowed) in nanoseconds; decimal forms are exact to the ns.
pub(crate) fn parse_wait_ns(s: &str) -> Result<u64, String> {
    let bad = || format!("WAIT must be a finite number of seconds >= 0, not '{s}'");
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    if !s.is_empty() && s != "." && digits(int) && digits(frac) {
        let secs: u64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let mut ns: u64 = 0;
        for (i, b) in frac.bytes().take(9).enumerate() {
            ns += u64::from(b - b'0') * 10u64.pow(8 - i as u32);
        }
        if frac.as_bytes().get(9).is_some_and(|b| *b >= b'5') {
            ns += 1;
        }
        return secs
            .checked_mul(1_000_000_000)
            .and_then(|x| x.checked_add(ns))
            .ok_or_else(bad);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v * 1e9 < u64::MAX as f64 => {
            Ok((v * 1e9).round() as u64)
        }
        _ => Err(bad()),
    }
}

/// A wait in ns as WAIT: whole seconds as an integer, else the shortest decimal.
pub(crate) fn format_wait(ns: u64) -> String {
    let (s, frac) = (ns / 1_000_000_000, ns % 1_000_000_000);
    if frac == 0 {
        return s.to_string();
    }
    let f = format!("{frac:09}");
    format!("{s}.{}", f.trim_end_matches('0'))
}

/// A parameter value: an integer or a finite float when it reads as one, else a string.
pub(crate) fn parse_value(s: &str) -> Value {
    if let Ok(i) = s.parse::<i64>() {
        return Value::from(i);
    }
    if s.bytes().any(|b| b.is_ascii_digit())
        && let Ok(f) = s.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(s.to_string())
}

/// A parameter value as written in a trace file (no tab or newline allowed).
pub(crate) fn format_value(v: &Value) -> Result<String, String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    };
    if s.contains(['\t', '\n', '\r']) {
        return Err(format!(
            "value {s:?} cannot be written in a TSV trace (tab or newline)"
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Lines in the reference's format (`user004-wand_blur-3072-120-4`).
    pub(crate) const EXAMPLE: &str = "284\tuser004/19.jpg\tsigma:39.64642930244718\n\
        0.5\tuser004/3.jpg\tsigma:0.3\n\
        12.25\tuser004/7.jpg\tsigma:100\n";

    #[test]
    fn the_reference_example_parses() {
        let name = TsvName::parse("user004-wand_blur-3072-120-4").unwrap();
        assert_eq!(
            (name.user.as_str(), name.action.as_str(), name.memory_mb()),
            ("user004", "wand_blur", 3072)
        );
        assert_eq!((name.duration.as_str(), name.avgiat.as_str()), ("120", "4"));
        assert_eq!(name.to_string(), "user004-wand_blur-3072-120-4");
        let (lines, nl) = parse_lines(EXAMPLE, "f").unwrap();
        assert!(nl);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].wait, "284");
        assert_eq!(lines[0].input, "user004/19.jpg");
        assert_eq!(
            lines[0].params,
            [("sigma".to_string(), "39.64642930244718".to_string())]
        );
        assert_eq!(parse_wait_ns("284").unwrap(), 284_000_000_000);
        assert_eq!(parse_wait_ns("0.5").unwrap(), 500_000_000);
        assert_eq!(parse_value("39.64642930244718"), json!(39.64642930244718));
        assert_eq!(parse_value("100"), json!(100));
        let file = TsvFile {
            name,
            lines,
            final_newline: nl,
        };
        assert_eq!(file.to_text(), EXAMPLE, "lossless");
    }

    #[test]
    fn names_with_dashes_in_the_action() {
        let n = TsvName::parse("u1-my-action-128-1-0.5").unwrap();
        assert_eq!((n.user.as_str(), n.action.as_str()), ("u1", "my-action"));
        assert!(
            TsvName::parse("u1-act-big-1-2")
                .unwrap_err()
                .contains("MEMORY 'big'")
        );
        assert!(TsvName::parse("user004-wand_blur").is_err());
        assert!(TsvName::parse("a-b-c-d").is_err());
    }

    #[test]
    fn waits_and_values() {
        assert_eq!(parse_wait_ns(".25").unwrap(), 250_000_000);
        assert_eq!(parse_wait_ns("1.0000000015").unwrap(), 1_000_000_002);
        assert_eq!(parse_wait_ns("1e3").unwrap(), 1_000_000_000_000);
        for bad in ["-1", "nan", "inf", "", ".", "1s", "-0.5"] {
            assert!(parse_wait_ns(bad).is_err(), "{bad}");
        }
        for ns in [0, 1, 500_000_000, 284_000_000_000, 1_250_000_001] {
            assert_eq!(parse_wait_ns(&format_wait(ns)).unwrap(), ns);
        }
        assert_eq!(format_wait(500_000_000), "0.5");
        assert_eq!(parse_value("webp"), json!("webp"));
        assert_eq!(parse_value("inf"), json!("inf"));
        assert_eq!(parse_value("-3"), json!(-3));
        assert_eq!(parse_value(""), json!(""));
        for s in ["39.64642930244718", "0.3", "90", "webp", "-3", "1.5"] {
            assert_eq!(format_value(&parse_value(s)).unwrap(), s);
        }
        assert!(format_value(&json!("a\tb")).is_err());
    }

    #[test]
    fn defects_point_at_the_field() {
        let text = "1\tin\tsigma:3\n\
            x\tin\n\
            2\n\
            \n\
            3\tin\tsigma\t:4\n\
            4\tin\ta:1\ta:2\n";
        let e = parse_lines(text, "dir/u-a-1-1-1").unwrap_err();
        let got: Vec<String> = e.errors().iter().map(|e| e.to_string()).collect();
        assert_eq!(
            got,
            [
                "dir/u-a-1-1-1:2:1: WAIT must be a finite number of seconds >= 0, not 'x'",
                "dir/u-a-1-1-1:3:2: expected WAIT<TAB>INPUT[<TAB>name:value...], found 1 field",
                "dir/u-a-1-1-1:4:1: empty line",
                "dir/u-a-1-1-1:5:6: expected a parameter name:value, found 'sigma'",
                "dir/u-a-1-1-1:5:12: expected a parameter name:value, found ':4'",
                "dir/u-a-1-1-1:6:10: parameter 'a' given twice",
            ]
        );
    }
}
