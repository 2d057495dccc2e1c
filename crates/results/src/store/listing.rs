//! `faasload loads STORE`: one line per load of a store (id, state with `crashed` for a
//! running load whose loader is gone, row counts, span, trace), and the UTC dates it
//! prints.
use std::fmt::Write;

use super::read::{LoadInfo, LoadState};

/// `YYYY-MM-DD HH:MM:SS` (UTC) of an epoch in ms; before 1970 it is clamped to it.
pub fn format_epoch_ms(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A duration in ms as `1h02m03s`, `2m03s` or `3.4s`.
fn span(ms: i64) -> String {
    let ms = ms.max(0);
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}h{:02}m{:02}s", s / 3600, s % 3600 / 60, s % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// The listing of `loads` as seen at `now_epoch_ms`: a header line, then one line per
/// load (oldest first). A crashed load's span ends at its last heartbeat; a running
/// one's is its age so far.
pub fn render_loads(loads: &[LoadInfo], now_epoch_ms: i64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>5}  {:<11}  {:>9}  {:>9}  {:>9}  {:<19}  {:>10}  trace",
        "id", "status", "rows", "failed", "planned", "start (UTC)", "span"
    );
    for l in loads {
        let state = l.state(now_epoch_ms);
        let until = match state {
            LoadState::Running => now_epoch_ms,
            _ => l.last_seen_epoch_ms(),
        };
        let _ = writeln!(
            out,
            "{:>5}  {:<11}  {:>9}  {:>9}  {:>9}  {:<19}  {:>10}  {}",
            l.id,
            state.as_str(),
            l.rows,
            l.failed,
            l.planned.map_or_else(|| "-".to_string(), |p| p.to_string()),
            format_epoch_ms(l.start_epoch_ms),
            span(until - l.start_epoch_ms),
            l.origin
        );
    }
    if loads.is_empty() {
        out.push_str("(no load in this store)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LoadStatus;

    fn load(id: i64, status: LoadStatus, heartbeat: Option<i64>) -> LoadInfo {
        LoadInfo {
            id,
            origin: format!("trace{id}.yaml"),
            seed: None,
            start_epoch_ms: 1_700_000_000_000,
            end_epoch_ms: (status != LoadStatus::Running).then_some(1_700_000_065_000),
            status,
            planned: Some(100),
            rows: 90,
            failed: 3,
            heartbeat_epoch_ms: heartbeat,
        }
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(format_epoch_ms(0), "1970-01-01 00:00:00");
        assert_eq!(format_epoch_ms(1_700_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(format_epoch_ms(951_782_400_000), "2000-02-29 00:00:00");
    }

    #[test]
    fn a_running_load_without_a_fresh_heartbeat_is_crashed() {
        let now = 1_700_000_100_000;
        let loads = [
            load(1, LoadStatus::Completed, Some(1_700_000_064_000)),
            load(2, LoadStatus::Running, Some(now - 1_000)),
            load(3, LoadStatus::Running, Some(1_700_000_030_000)),
            load(4, LoadStatus::Running, None),
            load(5, LoadStatus::Interrupted, None),
        ];
        let states: Vec<&str> = loads.iter().map(|l| l.state(now).as_str()).collect();
        assert_eq!(
            states,
            ["completed", "running", "crashed", "running", "interrupted"]
        );
        let text = render_loads(&loads, now);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert!(lines[0].contains("status") && lines[0].ends_with("trace"));
        assert!(
            lines[1].contains("completed") && lines[1].contains("1m05s"),
            "{text}"
        );
        assert!(lines[2].contains("running") && lines[2].contains("1m40s"));
        // A crashed load's span ends at its last heartbeat.
        assert!(
            lines[3].contains("crashed") && lines[3].contains("30.0s"),
            "{text}"
        );
        assert!(lines[3].contains("2023-11-14 22:13:20") && lines[3].ends_with("trace3.yaml"));
        assert!(render_loads(&[], now).contains("no load"));
    }
}
