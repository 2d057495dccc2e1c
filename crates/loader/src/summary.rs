//! The end-of-run summary of a replay: how many invocations ended in each outcome class,
//! the first `seq` of each, and the most frequent error messages of the failed ones
//! (with the first `seq` of each), so that a wrong key or a dead endpoint is explained on
//! the terminal, store or no store. Also `--max-failed`, the number (or fraction) of
//! failed invocations a run may have and still succeed.
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use faasload_protocol::OutcomeClass;
use faasload_results::store::RunRow;

use crate::RowSink;

/// Distinct messages kept per class; more are counted together.
const MAX_MESSAGES: usize = 1000;
/// Messages shown per class.
const SHOWN_MESSAGES: usize = 3;
/// Characters of a message kept (longer ones are cut, with `...`).
const MESSAGE_CHARS: usize = 200;

/// One message of a class: how often, and its first invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Message {
    count: u64,
    first_seq: u64,
}

/// The invocations of one class.
#[derive(Clone, Debug, Default)]
struct Tally {
    count: u64,
    first_seq: Option<u64>,
    messages: HashMap<String, Message>,
    /// Invocations whose message was not kept (beyond [`MAX_MESSAGES`] distinct ones).
    other: u64,
}

/// Outcome counts and failure messages of a run, fed row by row.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    rows: u64,
    classes: BTreeMap<&'static str, Tally>,
}

/// What a failed row says went wrong: its error, else the action's `error` result,
/// else its record's status.
fn message(r: &RunRow) -> String {
    let text = r
        .error
        .clone()
        .or_else(|| {
            let rec = r.record.as_ref()?;
            match rec.result.get("error") {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(v) => Some(v.to_string()),
                None => Some(format!("record status: {}", rec.status)),
            }
        })
        .unwrap_or_else(|| "(no message)".to_string());
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(MESSAGE_CHARS) {
        Some((i, _)) => format!("{}...", &one_line[..i]),
        None => one_line,
    }
}

impl RunSummary {
    pub fn new() -> RunSummary {
        RunSummary::default()
    }

    /// Counts one row.
    pub fn record(&mut self, r: &RunRow) {
        self.rows += 1;
        let t = self.classes.entry(r.class.as_str()).or_default();
        t.count += 1;
        t.first_seq = Some(t.first_seq.map_or(r.seq, |s| s.min(r.seq)));
        if r.class == OutcomeClass::Success {
            return;
        }
        let msg = message(r);
        if let Some(m) = t.messages.get_mut(&msg) {
            m.count += 1;
            m.first_seq = m.first_seq.min(r.seq);
        } else if t.messages.len() < MAX_MESSAGES {
            t.messages.insert(
                msg,
                Message {
                    count: 1,
                    first_seq: r.seq,
                },
            );
        } else {
            t.other += 1;
        }
    }

    /// Invocations counted.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Invocations that did not succeed (the store's `failed`: any class but success).
    pub fn failed(&self) -> u64 {
        self.rows - self.succeeded()
    }

    pub fn succeeded(&self) -> u64 {
        self.classes
            .get(OutcomeClass::Success.as_str())
            .map_or(0, |t| t.count)
    }

    /// The summary's text: a first line that says how the run went (and, when no
    /// invocation succeeded, says so first), then per class its count and first `seq`,
    /// and for failed classes their most frequent messages.
    pub fn render(&self, max_failed: MaxFailed) -> String {
        let mut out = String::new();
        let failed = self.failed();
        let counts: Vec<String> = self
            .classes
            .iter()
            .map(|(c, t)| format!("{c} {}", t.count))
            .collect();
        if self.rows == 0 {
            out.push_str("Summary: no invocation was made\n");
            return out;
        }
        if failed == self.rows {
            let _ = writeln!(
                out,
                "Summary: ALL {} INVOCATIONS FAILED ({})",
                self.rows,
                counts.join(", ")
            );
        } else {
            let _ = writeln!(
                out,
                "Summary: {} of {} invocations succeeded, {failed} failed ({:.2} %; {})",
                self.succeeded(),
                self.rows,
                failed as f64 * 100.0 / self.rows as f64,
                if max_failed.allows(failed, self.rows) {
                    format!("within --max-failed {max_failed}")
                } else {
                    format!("over --max-failed {max_failed}")
                }
            );
        }
        let width = self.classes.keys().map(|c| c.len()).max().unwrap_or(0);
        for (class, t) in &self.classes {
            let _ = writeln!(
                out,
                "  {class:<width$} {:>9}  first at seq {}",
                t.count,
                t.first_seq.unwrap_or(0)
            );
            let mut msgs: Vec<(&String, &Message)> = t.messages.iter().collect();
            msgs.sort_by(|a, b| {
                b.1.count
                    .cmp(&a.1.count)
                    .then(a.1.first_seq.cmp(&b.1.first_seq))
            });
            for (text, m) in msgs.iter().take(SHOWN_MESSAGES) {
                let _ = writeln!(
                    out,
                    "    {:>9} x {text} (first at seq {})",
                    m.count, m.first_seq
                );
            }
            let rest: u64 = msgs
                .iter()
                .skip(SHOWN_MESSAGES)
                .map(|(_, m)| m.count)
                .sum::<u64>()
                + t.other;
            if rest > 0 {
                let _ = writeln!(out, "    {rest:>9} x other messages");
            }
        }
        out
    }
}

impl RowSink for RunSummary {
    fn row(&mut self, r: &RunRow) {
        self.record(r);
    }
}

/// How many failed invocations a run may have and still exit 0: a count (`5`) or a
/// fraction of the invocations made (`0.01`, or `1%`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxFailed {
    Count(u64),
    Fraction(f64),
}

impl Default for MaxFailed {
    fn default() -> Self {
        MaxFailed::Count(0)
    }
}

impl MaxFailed {
    /// Whether `failed` of `total` invocations is within the limit.
    pub fn allows(self, failed: u64, total: u64) -> bool {
        match self {
            MaxFailed::Count(n) => failed <= n,
            MaxFailed::Fraction(f) => failed as f64 <= f * total as f64,
        }
    }
}

impl std::fmt::Display for MaxFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxFailed::Count(n) => write!(f, "{n}"),
            MaxFailed::Fraction(x) => write!(f, "{}%", x * 100.0),
        }
    }
}

impl std::str::FromStr for MaxFailed {
    type Err = String;

    fn from_str(s: &str) -> Result<MaxFailed, String> {
        let s = s.trim();
        let bad =
            |why: &str| format!("{s:?}: {why} (a count like 5, or a fraction like 0.01 or 1%)");
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad("not a percentage"))?;
            if !(0.0..=100.0).contains(&v) {
                return Err(bad("a percentage is from 0 to 100"));
            }
            return Ok(MaxFailed::Fraction(v / 100.0));
        }
        if let Ok(n) = s.parse::<u64>() {
            return Ok(MaxFailed::Count(n));
        }
        let v: f64 = s.parse().map_err(|_| bad("not a number"))?;
        if !(0.0..=1.0).contains(&v) {
            return Err(bad("a fraction is from 0 to 1"));
        }
        Ok(MaxFailed::Fraction(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasload_results::store::MonitorReading;

    fn row(seq: u64, class: OutcomeClass, error: Option<&str>) -> RunRow {
        RunRow {
            seq,
            user: "u".into(),
            namespace: "u".into(),
            function: "f".into(),
            action: "f".into(),
            input: None,
            input_bytes: None,
            params: serde_json::Map::new(),
            intended_ns: seq,
            sent_ns: Some(seq),
            answered_ns: Some(seq + 1),
            queue_ns: 0,
            run_start_epoch_ms: 0,
            class,
            http_status: None,
            error: error.map(str::to_string),
            polls: 0,
            retries: 0,
            record: None,
            monitor: MonitorReading::default(),
        }
    }

    #[test]
    fn everything_failed_is_said_first_with_the_reason() {
        let mut s = RunSummary::new();
        for seq in [4, 2, 3] {
            s.record(&row(
                seq,
                OutcomeClass::ClientError,
                Some("HTTP 401: The supplied authentication is invalid"),
            ));
        }
        let text = s.render(MaxFailed::default());
        let first = text.lines().next().unwrap();
        assert_eq!(first, "Summary: ALL 3 INVOCATIONS FAILED (client_error 3)");
        assert!(
            text.contains("client_error         3  first at seq 2"),
            "{text}"
        );
        assert!(
            text.contains("3 x HTTP 401: The supplied authentication is invalid (first at seq 2)"),
            "{text}"
        );
        assert_eq!((s.rows(), s.failed()), (3, 3));
    }

    #[test]
    fn the_most_frequent_messages_come_first_and_the_rest_is_counted() {
        let mut s = RunSummary::new();
        for seq in 0..100 {
            s.record(&row(seq, OutcomeClass::Success, None));
        }
        let errors = [("a", 5), ("b", 1), ("c", 3), ("d", 2), ("e", 1)];
        let mut seq = 100;
        for (msg, n) in errors {
            for _ in 0..n {
                s.record(&row(seq, OutcomeClass::ServerError, Some(msg)));
                seq += 1;
            }
        }
        let text = s.render(MaxFailed::Count(20));
        assert!(
            text.starts_with("Summary: 100 of 112 invocations succeeded, 12 failed (10.71 %; within --max-failed 20)"),
            "{text}"
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains("server_error") && lines[1].contains("12  first at seq 100"));
        assert!(lines[2].ends_with("5 x a (first at seq 100)"), "{text}");
        assert!(lines[3].ends_with("3 x c (first at seq 106)"), "{text}");
        assert!(lines[4].ends_with("2 x d (first at seq 109)"), "{text}");
        assert!(lines[5].ends_with("2 x other messages"), "{text}");
        assert!(lines[6].contains("success") && lines[6].contains("first at seq 0"));
        assert!(
            s.render(MaxFailed::Count(11))
                .contains("over --max-failed 11")
        );
        assert_eq!(
            RunSummary::new()
                .render(MaxFailed::default())
                .lines()
                .count(),
            1
        );
    }

    #[test]
    fn max_failed_is_a_count_or_a_fraction() {
        assert_eq!("0".parse(), Ok(MaxFailed::Count(0)));
        assert_eq!("12".parse(), Ok(MaxFailed::Count(12)));
        assert_eq!("0.25".parse(), Ok(MaxFailed::Fraction(0.25)));
        assert_eq!("5%".parse(), Ok(MaxFailed::Fraction(0.05)));
        for bad in ["-1", "1.5", "x", "101%", ""] {
            assert!(bad.parse::<MaxFailed>().is_err(), "{bad}");
        }
        assert!(MaxFailed::Count(0).allows(0, 10));
        assert!(!MaxFailed::Count(0).allows(1, 10));
        assert!(MaxFailed::Fraction(0.1).allows(1, 10));
        assert!(!MaxFailed::Fraction(0.1).allows(2, 10));
        assert_eq!(MaxFailed::Fraction(0.05).to_string(), "5%");
    }
}
