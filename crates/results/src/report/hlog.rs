//! The HdrHistogram interval log (`.hlog`) of a report: one latency histogram (µs,
//! from the intended instant) per second of intended instant since the load's start,
//! V2 deflate-compressed, readable by HdrHistogram's log tools (HistogramLogAnalyzer,
//! `hdrhistogram::serialization::interval_log::IntervalLogIterator`). Seconds without an
//! answered invocation get an empty histogram so the intervals are contiguous.
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;

use super::Report;
use super::metrics::new_histogram;

/// Longest load (s) whose empty seconds are written as empty intervals.
const MAX_FILLED_S: u64 = 7 * 24 * 3600;

pub(super) fn write(r: &Report, path: &Path) -> io::Result<()> {
    let ctx = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let file = File::create(path).map_err(ctx)?;
    let mut out = BufWriter::new(file);
    let mut ser = V2DeflateSerializer::new();
    let start = UNIX_EPOCH + Duration::from_millis(r.start_epoch_ms.unwrap_or(0));
    let mut builder = IntervalLogWriterBuilder::new();
    builder
        .add_comment("faasload: latency from the intended send instant, in microseconds")
        .add_comment("one interval per second of intended instant since the load's start")
        .with_start_time(start)
        .with_base_time(start)
        // Values are µs: log tools show ms.
        .with_max_value_divisor(1000.0);
    let mut w = builder.begin_log_with(&mut out, &mut ser).map_err(ctx)?;
    let empty = new_histogram();
    let last = r.intervals.keys().next_back().copied().unwrap_or(0);
    // Gaps are filled up to a week of intervals; beyond, only non-empty ones are written.
    let seconds: Box<dyn Iterator<Item = u64>> = if r.intervals.is_empty() {
        Box::new(std::iter::empty())
    } else if last <= MAX_FILLED_S {
        Box::new(0..=last)
    } else {
        Box::new(r.intervals.keys().copied())
    };
    {
        for s in seconds {
            let h = r.intervals.get(&s).unwrap_or(&empty);
            w.write_histogram(h, Duration::from_secs(s), Duration::from_secs(1), None)
                .map_err(|e| {
                    ctx(io::Error::other(format!(
                        "writing the interval of second {s}: {e}"
                    )))
                })?;
        }
    }
    drop(w);
    out.flush().map_err(ctx)?;
    Ok(())
}
