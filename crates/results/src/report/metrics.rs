//! The five measured quantities of an invocation and a set of HdrHistograms holding them
//! (µs resolution, 3 significant digits), with the percentile figures a report prints.
use hdrhistogram::Histogram;

/// Significant digits of every histogram.
pub(super) const SIGFIG: u8 = 3;

/// A measured quantity, recorded in µs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Answer (or record) − intended send instant: includes client-side queueing and
    /// send lag (no coordinated omission).
    Latency,
    /// Sent − intended: how late the request went.
    Lag,
    /// The activation record's `duration` (includes init).
    Duration,
    /// The record's `waitTime` annotation.
    Wait,
    /// The record's `initTime` annotation (cold and prewarm starts only).
    Init,
}

impl Metric {
    pub const ALL: [Metric; 5] = [
        Metric::Latency,
        Metric::Lag,
        Metric::Duration,
        Metric::Wait,
        Metric::Init,
    ];

    /// Label in reports.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Latency => "latency",
            Metric::Lag => "send lag",
            Metric::Duration => "duration",
            Metric::Wait => "waitTime",
            Metric::Init => "initTime",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The percentiles of the tables (wrk2's, plus the maximum).
pub const PERCENTILES: [f64; 7] = [50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0];

/// One histogram per [`Metric`].
#[derive(Clone, Debug)]
pub struct MetricSet {
    h: [Histogram<u64>; 5],
}

/// A new auto-resizing histogram (µs, [`SIGFIG`] digits).
pub(super) fn new_histogram() -> Histogram<u64> {
    // 3 significant digits is within hdrhistogram's 0..=5: this cannot fail.
    Histogram::new(SIGFIG).unwrap_or_else(|_| unreachable!("3 significant digits is valid"))
}

impl Default for MetricSet {
    fn default() -> Self {
        MetricSet {
            h: std::array::from_fn(|_| new_histogram()),
        }
    }
}

impl MetricSet {
    /// Records `us` µs of `m` (values beyond the histogram's reach are clamped: an
    /// auto-resizing histogram takes any u64 below 2^63).
    pub fn record(&mut self, m: Metric, us: u64) {
        let h = &mut self.h[m.index()];
        let v = us.min(i64::MAX as u64 / 2);
        // Cannot fail: the histogram auto-resizes and `v` is in range.
        let _ = h.record(v);
    }

    pub fn get(&self, m: Metric) -> &Histogram<u64> {
        &self.h[m.index()]
    }

    /// Adds `other`'s values.
    pub fn add(&mut self, other: &MetricSet) {
        for (a, b) in self.h.iter_mut().zip(&other.h) {
            // Cannot fail: both auto-resize and have the same precision.
            let _ = a.add(b);
        }
    }
}

/// Summary figures of one histogram, in µs.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub mean: f64,
    pub stdev: f64,
    /// Values at [`PERCENTILES`].
    pub at: [u64; 7],
}

impl Summary {
    pub fn of(h: &Histogram<u64>) -> Summary {
        if h.is_empty() {
            return Summary {
                count: 0,
                mean: 0.0,
                stdev: 0.0,
                at: [0; 7],
            };
        }
        Summary {
            count: h.len(),
            mean: h.mean(),
            stdev: h.stdev(),
            at: PERCENTILES.map(|p| {
                if p >= 100.0 {
                    h.max()
                } else {
                    h.value_at_percentile(p)
                }
            }),
        }
    }
}

/// µs as ms with 3 decimals.
pub(super) fn ms(us: f64) -> String {
    format!("{:.3}", us / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_percentiles() {
        let mut s = MetricSet::default();
        for v in 1..=1000 {
            s.record(Metric::Latency, v);
        }
        let sum = Summary::of(s.get(Metric::Latency));
        assert_eq!(sum.count, 1000);
        // HdrHistogram's p99.9 of 1..=1000 is 1000 (0.999 × 1000 rounds up in f64).
        assert_eq!(sum.at, [500, 750, 900, 990, 1000, 1000, 1000]);
        assert!((sum.mean - 500.5).abs() < 0.01, "{}", sum.mean);
        assert!((sum.stdev - 288.67).abs() < 0.1, "{}", sum.stdev);
        assert_eq!(Summary::of(s.get(Metric::Lag)).count, 0);
    }

    #[test]
    fn three_significant_digits_at_large_values() {
        let mut s = MetricSet::default();
        s.record(Metric::Duration, 123_456_789);
        let v = s.get(Metric::Duration).max();
        assert!(v.abs_diff(123_456_789) <= 123_456_789 / 1000, "{v}");
        s.record(Metric::Duration, u64::MAX);
        assert_eq!(s.get(Metric::Duration).len(), 2);
    }
}
