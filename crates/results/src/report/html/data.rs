//! The figures' data, gathered from a load's stored rows one at a time in bounded memory:
//! per function, latency histograms split by cold, warm and no record, and the monitor's
//! CPU time and peak memory; over the load's time, adaptive bins (10 ms, 20 ms, 100 ms,
//! 200 ms, 1 s, ... wide, at most [`MAX_BINS`] of them) of counts by intended, sent and
//! answered instant, latency and send lag histograms, and cold starts per function.
//! Histograms here have 2 significant digits (1 % resolution: plenty for a plot, and
//! small); the tables keep the report's own 3-digit histograms.
use std::collections::{BTreeMap, HashMap};

use hdrhistogram::Histogram;

use crate::store::StoredRow;

/// Significant digits of the plots' histograms.
const SIGFIG: u8 = 2;
/// Width of the narrowest time bin (ns).
pub(super) const BASE_BIN_NS: u64 = 10_000_000;
/// Most time bins: past it, bins are merged (by 2, then by 5, alternately).
pub(super) const MAX_BINS: usize = 500;
/// Distinct `monitor_missing` reasons kept (the rest are counted together).
const MAX_REASONS: usize = 20;

/// A new auto-resizing histogram of [`SIGFIG`] digits.
pub(super) fn histogram() -> Histogram<u64> {
    // 2 significant digits is within hdrhistogram's 0..=5: this cannot fail.
    Histogram::new(SIGFIG).unwrap_or_else(|_| unreachable!("2 significant digits is valid"))
}

/// Records `v` (clamped to what an auto-resizing histogram takes).
fn put(h: &mut Histogram<u64>, v: u64) {
    // Cannot fail: the histogram auto-resizes and the value is in range.
    let _ = h.record(v.min(i64::MAX as u64 / 2));
}

/// Adds `b` into `a` (both auto-resize with the same precision: cannot fail).
fn add_into(a: &mut Option<Histogram<u64>>, b: Option<Histogram<u64>>) {
    match (a.as_mut(), b) {
        (Some(x), Some(y)) => {
            let _ = x.add(&y);
        }
        (None, Some(y)) => *a = Some(y),
        (_, None) => {}
    }
}

/// What can be merged into a wider bin.
pub(super) trait Merge: Default {
    fn merge(&mut self, other: Self);
}

impl Merge for u64 {
    fn merge(&mut self, other: u64) {
        *self += other;
    }
}

/// Values binned by time since the load's start, in at most [`MAX_BINS`] contiguous bins
/// from 0: a value past the last bin widens every bin (merging neighbours) until it fits.
#[derive(Debug)]
pub(super) struct Bins<T> {
    width_ns: u64,
    /// The factor of the next widening: 2 and 5 alternate (10 ms, 20 ms, 100 ms, ...).
    next: u64,
    bins: Vec<T>,
}

impl<T: Merge> Default for Bins<T> {
    fn default() -> Self {
        Bins {
            width_ns: BASE_BIN_NS,
            next: 2,
            bins: Vec::new(),
        }
    }
}

impl<T: Merge> Bins<T> {
    /// The bin of the instant `t_ns` (ns since the load's start), made if needed.
    pub(super) fn at(&mut self, t_ns: u64) -> &mut T {
        while t_ns / self.width_ns >= MAX_BINS as u64 {
            self.widen();
        }
        // Below MAX_BINS: fits a usize.
        let i = (t_ns / self.width_ns) as usize;
        if self.bins.len() <= i {
            self.bins.resize_with(i + 1, T::default);
        }
        &mut self.bins[i]
    }

    fn widen(&mut self) {
        let f = self.next;
        let old = std::mem::take(&mut self.bins);
        let n = old.len().div_ceil(f as usize);
        let mut new: Vec<T> = Vec::with_capacity(n);
        new.resize_with(n, T::default);
        for (i, b) in old.into_iter().enumerate() {
            new[i / f as usize].merge(b);
        }
        self.bins = new;
        self.width_ns = self.width_ns.saturating_mul(f);
        self.next = if f == 2 { 5 } else { 2 };
    }

    pub(super) fn width_ns(&self) -> u64 {
        self.width_ns
    }

    /// The bins, from the load's start; bin `i` covers `[i, i + 1) × width`.
    pub(super) fn bins(&self) -> &[T] {
        &self.bins
    }
}

/// What one time bin holds.
#[derive(Debug, Default)]
pub(super) struct Bin {
    /// Invocations whose intended instant falls in the bin.
    pub(super) intended: u64,
    /// Requests sent in the bin.
    pub(super) sent: u64,
    /// Answers (or records) received in the bin.
    pub(super) answered: u64,
    /// Latency (µs) of the invocations intended in the bin.
    pub(super) latency: Option<Histogram<u64>>,
    /// Send lag (µs) of the invocations intended in the bin.
    pub(super) lag: Option<Histogram<u64>>,
    /// Cold starts of the invocations intended in the bin, by function index.
    pub(super) cold: BTreeMap<usize, u64>,
}

impl Merge for Bin {
    fn merge(&mut self, o: Bin) {
        self.intended += o.intended;
        self.sent += o.sent;
        self.answered += o.answered;
        add_into(&mut self.latency, o.latency);
        add_into(&mut self.lag, o.lag);
        for (f, n) in o.cold {
            *self.cold.entry(f).or_default() += n;
        }
    }
}

/// What is kept of one function.
#[derive(Debug)]
pub(super) struct FunctionData {
    pub(super) name: String,
    pub(super) rows: u64,
    pub(super) cold: u64,
    /// Latency (µs) of cold starts.
    pub(super) latency_cold: Histogram<u64>,
    /// Latency (µs) of warm starts.
    pub(super) latency_warm: Histogram<u64>,
    /// Latency (µs) of answers without an activation record (errors, throttling).
    pub(super) latency_none: Histogram<u64>,
    /// CPU time (µs) the monitor measured per invocation.
    pub(super) cpu_us: Histogram<u64>,
    /// Peak memory (KiB) the monitor measured per invocation.
    pub(super) mem_kib: Histogram<u64>,
}

impl FunctionData {
    fn new(name: &str) -> FunctionData {
        FunctionData {
            name: name.to_string(),
            rows: 0,
            cold: 0,
            latency_cold: histogram(),
            latency_warm: histogram(),
            latency_none: histogram(),
            cpu_us: histogram(),
            mem_kib: histogram(),
        }
    }

    /// `other`'s values added to this one's (for an "other functions" series).
    pub(super) fn absorb(&mut self, o: &FunctionData) {
        self.rows += o.rows;
        self.cold += o.cold;
        for (a, b) in [
            (&mut self.latency_cold, &o.latency_cold),
            (&mut self.latency_warm, &o.latency_warm),
            (&mut self.latency_none, &o.latency_none),
            (&mut self.cpu_us, &o.cpu_us),
            (&mut self.mem_kib, &o.mem_kib),
        ] {
            // Cannot fail: both auto-resize with the same precision.
            let _ = a.add(b);
        }
    }
}

/// Everything the figures need, fed one stored row at a time.
#[derive(Debug)]
pub(super) struct PlotData {
    /// Epoch ns of the load's start.
    start_ns: i64,
    pub(super) rows: u64,
    /// Functions in order of first appearance.
    pub(super) functions: Vec<FunctionData>,
    index: HashMap<String, usize>,
    pub(super) timeline: Bins<Bin>,
    /// Rows with a CPU or memory reading from the monitor.
    pub(super) monitor_rows: u64,
    /// Why readings are missing (`monitor_missing`), with counts.
    pub(super) missing: BTreeMap<String, u64>,
}

/// `v` ns after `start_ns`, at 0 if before.
fn since(v: i64, start_ns: i64) -> u64 {
    v.saturating_sub(start_ns).max(0) as u64
}

fn non_neg(v: Option<i64>) -> Option<u64> {
    v.map(|x| x.max(0) as u64)
}

impl PlotData {
    /// Data of a load that started at `start_epoch_ms`.
    pub(super) fn new(start_epoch_ms: i64) -> PlotData {
        PlotData {
            start_ns: start_epoch_ms.saturating_mul(1_000_000),
            rows: 0,
            functions: Vec::new(),
            index: HashMap::new(),
            timeline: Bins::default(),
            monitor_rows: 0,
            missing: BTreeMap::new(),
        }
    }

    fn function(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.functions.len();
        self.functions.push(FunctionData::new(name));
        self.index.insert(name.to_string(), i);
        i
    }

    pub(super) fn add(&mut self, r: &StoredRow) {
        self.rows += 1;
        let fi = self.function(&r.function);
        let latency_us = non_neg(r.latency_ns).map(|v| v / 1000);
        let lag_us = non_neg(r.lag_ns).map(|v| v / 1000);
        let f = &mut self.functions[fi];
        f.rows += 1;
        if r.cold == Some(true) {
            f.cold += 1;
        }
        if let Some(l) = latency_us {
            let h = match r.cold {
                Some(true) => &mut f.latency_cold,
                Some(false) => &mut f.latency_warm,
                None => &mut f.latency_none,
            };
            put(h, l);
        }
        let cpu = non_neg(r.cpu_ns);
        let mem = non_neg(r.mem_peak_bytes);
        if cpu.is_some() || mem.is_some() {
            self.monitor_rows += 1;
            if let Some(c) = cpu {
                put(&mut f.cpu_us, c / 1000);
            }
            if let Some(m) = mem {
                put(&mut f.mem_kib, m / 1024);
            }
        } else if let Some(why) = &r.monitor_missing {
            let n = self.missing.len();
            match self.missing.get_mut(why.as_str()) {
                Some(c) => *c += 1,
                None if n < MAX_REASONS => {
                    self.missing.insert(why.clone(), 1);
                }
                None => *self.missing.entry("(other reasons)".into()).or_default() += 1,
            }
        }
        let start = self.start_ns;
        let bin = self.timeline.at(since(r.intended_epoch_ns, start));
        bin.intended += 1;
        if let Some(l) = latency_us {
            put(bin.latency.get_or_insert_with(histogram), l);
        }
        if let Some(l) = lag_us {
            put(bin.lag.get_or_insert_with(histogram), l);
        }
        if r.cold == Some(true) {
            *bin.cold.entry(fi).or_default() += 1;
        }
        if let Some(s) = r.sent_epoch_ns {
            self.timeline.at(since(s, start)).sent += 1;
        }
        if let Some(a) = r.answered_epoch_ns {
            self.timeline.at(since(a, start)).answered += 1;
        }
    }

    /// The `max` functions with the most rows (by `key`, most first, ties by first
    /// appearance), then the rest merged into one named "other functions (N)" if any.
    pub(super) fn top_functions(
        &self,
        max: usize,
        key: impl Fn(&FunctionData) -> u64,
    ) -> Vec<FunctionData> {
        let mut order: Vec<&FunctionData> = self.functions.iter().collect();
        order.sort_by_key(|f| std::cmp::Reverse(key(f)));
        let mut out: Vec<FunctionData> = Vec::new();
        let mut rest: Option<FunctionData> = None;
        let others = order.len().saturating_sub(max);
        for (i, f) in order.into_iter().enumerate() {
            if i < max {
                let mut c = FunctionData::new(&f.name);
                c.absorb(f);
                out.push(c);
            } else {
                rest.get_or_insert_with(|| {
                    FunctionData::new(&format!("other functions ({others})"))
                })
                .absorb(f);
            }
        }
        out.extend(rest);
        out
    }
}

/// The empirical CDF of `h` as (value, fraction of values ≤ it), values ascending and
/// fractions rising to 1. Consecutive buckets are thinned out: a point is kept when the
/// fraction rose by at least `1 / max_steps` or the value by at least 5 % since the
/// last kept point, and the last is always kept (so the curve ends at the maximum).
pub(super) fn cdf_points(h: &Histogram<u64>, max_steps: usize) -> Vec<(f64, f64)> {
    let total = h.len();
    if total == 0 {
        return Vec::new();
    }
    let min_step = 1.0 / max_steps.max(1) as f64;
    let mut out: Vec<(f64, f64)> = Vec::new();
    let mut cum = 0u64;
    let mut pending: Option<(f64, f64)> = None;
    for v in h.iter_recorded() {
        cum += v.count_since_last_iteration();
        // The bucket's highest equivalent value: every value counted so far is ≤ it.
        let point = (v.value_iterated_to() as f64, cum as f64 / total as f64);
        let keep = match out.last() {
            None => true,
            Some(&(lv, lf)) => point.1 - lf >= min_step || point.0 >= lv * 1.05,
        };
        if keep {
            out.push(point);
            pending = None;
        } else {
            pending = Some(point);
        }
    }
    out.extend(pending);
    out
}

/// The width of the bins that show `len` bins of `width_ns` in at most `max`: the
/// narrowest multiple of `width_ns` on the 1-2-5 ladder (20 ms, 50 ms, 100 ms, ...)
/// that is wide enough (charts of counts and percentiles get noisy when a bin holds
/// only a few invocations).
pub(super) fn coarse_width(width_ns: u64, len: usize, max: usize) -> u64 {
    let width_ns = width_ns.max(1);
    let span = width_ns.saturating_mul(len as u64);
    let max = max.max(1) as u64;
    let mut decade = 1u64;
    while decade <= u64::MAX / 10 {
        for m in [1, 2, 5] {
            let w = m * decade;
            if w >= width_ns && w.is_multiple_of(width_ns) && span.div_ceil(w) <= max {
                return w;
            }
        }
        decade *= 10;
    }
    span.max(width_ns)
}

/// The value at `q` (0..=1) of `h`.
pub(super) fn quantile(h: &Histogram<u64>, q: f64) -> u64 {
    if q >= 1.0 {
        h.max()
    } else {
        h.value_at_quantile(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_widen_by_two_then_five_and_keep_every_count() {
        let mut b: Bins<u64> = Bins::default();
        // 10 ms bins: 0..=4.99 s fits.
        *b.at(0) += 1;
        *b.at(4_999_999_999) += 1;
        assert_eq!(b.width_ns(), 10_000_000);
        assert_eq!(b.bins().len(), 500);
        // 5 s needs 20 ms bins.
        *b.at(5_000_000_000) += 1;
        assert_eq!(b.width_ns(), 20_000_000);
        assert_eq!(b.bins().len(), 251);
        assert_eq!((b.bins()[0], b.bins()[249], b.bins()[250]), (1, 1, 1));
        // 60 s: 100 ms bins (×5), then 200 ms (×2).
        *b.at(60_000_000_000) += 1;
        assert_eq!(b.width_ns(), 200_000_000);
        assert_eq!(b.bins().len(), 301);
        assert_eq!(b.bins().iter().sum::<u64>(), 4);
        assert_eq!(b.bins()[4_999_999_999 / 200_000_000], 1);
        assert_eq!(b.bins()[25], 1);
        assert_eq!(b.bins()[300], 1);
        // Far away: the width grows, the bins stay few, nothing is lost.
        *b.at(u64::MAX / 2) += 1;
        assert!(b.bins().len() <= MAX_BINS);
        assert_eq!(b.bins().iter().sum::<u64>(), 5);
        assert_eq!(b.bins()[b.bins().len() - 1], 1);
    }

    #[test]
    fn coarse_widths_stay_on_the_ladder() {
        let ms = 1_000_000;
        assert_eq!(coarse_width(10 * ms, 100, 200), 10 * ms);
        assert_eq!(coarse_width(10 * ms, 500, 200), 50 * ms);
        assert_eq!(coarse_width(10 * ms, 500, 100), 50 * ms);
        assert_eq!(coarse_width(10 * ms, 500, 99), 100 * ms);
        // From 20 ms: 40 ms is not on the ladder, 100 ms is a multiple of 20.
        assert_eq!(coarse_width(20 * ms, 500, 200), 100 * ms);
        assert_eq!(coarse_width(200 * ms, 500, 100), 1000 * ms);
        assert_eq!(coarse_width(10 * ms, 0, 100), 10 * ms);
        let huge = coarse_width(u64::MAX / 1000, 500, 1);
        assert!(huge >= u64::MAX / 1000);
    }

    #[test]
    fn cdf_points_rise_to_one_and_are_thinned() {
        let mut h = histogram();
        for v in 1..=10_000u64 {
            put(&mut h, v);
        }
        let p = cdf_points(&h, 100);
        assert!(p.len() > 20, "{}", p.len());
        // Per 1 % step or 5 % of value growth, with 2-digit buckets: far fewer points
        // than buckets.
        assert!(p.len() < 250, "{}", p.len());
        assert!(p.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        let last = p[p.len() - 1];
        assert_eq!(last.1, 1.0);
        assert!((last.0 - 10_000.0).abs() <= 100.0, "{last:?}");
        // The median is near 5000.
        let mid = p.iter().find(|q| q.1 >= 0.5).unwrap();
        assert!((mid.0 - 5000.0).abs() <= 300.0, "{mid:?}");
        assert!(cdf_points(&histogram(), 100).is_empty());
        // One value: one point at fraction 1.
        let mut one = histogram();
        put(&mut one, 42);
        assert_eq!(cdf_points(&one, 100), vec![(42.0, 1.0)]);
    }

    fn stored(seq: i64, function: &str, cold: Option<bool>, latency_ms: i64) -> StoredRow {
        let start_ns = 1_000_000_000_000i64 * 1_000_000;
        let intended = start_ns + seq * 100_000_000;
        StoredRow {
            id: seq,
            load_id: 1,
            seq,
            user: "u".into(),
            namespace: "u".into(),
            function: function.into(),
            action: function.into(),
            input: None,
            activation_id: None,
            failed: cold.is_none(),
            start_ms: None,
            end_ms: None,
            wait_ms: None,
            init_ms: None,
            outputsize: None,
            extract_ms: None,
            transform_ms: None,
            load_ms: None,
            intended_epoch_ns: intended,
            sent_epoch_ns: Some(intended + 1_000_000),
            answered_epoch_ns: Some(intended + latency_ms * 1_000_000),
            queue_ns: 0,
            lag_ns: Some(1_000_000),
            latency_ns: Some(latency_ms * 1_000_000),
            duration_ms: None,
            http_status: None,
            class: "success".into(),
            status: None,
            error: None,
            cold,
            memory_mb: None,
            container: None,
            cpu_user_ns: None,
            cpu_sys_ns: None,
            cpu_ns: cold.map(|_| 2_000_000),
            mem_peak_bytes: cold.map(|_| 1 << 20),
            mem_avg_bytes: None,
            nvcsw: None,
            nivcsw: None,
            wakeups: None,
            migrations: None,
            pgfault: None,
            pgmajfault: None,
            monitor_missing: cold.is_none().then(|| "no record".to_string()),
            polls: 0,
            retries: 0,
            input_bytes: None,
            init_cpu_ns: None,
            init_mem_peak_bytes: None,
            params: Vec::new(),
            resources: Vec::new(),
        }
    }

    #[test]
    fn cold_warm_and_no_record_are_split_per_function() {
        let mut d = PlotData::new(1_000_000_000_000);
        for i in 0..30 {
            let cold = match i % 3 {
                0 => Some(true),
                1 => Some(false),
                _ => None,
            };
            let f = if i < 20 { "a" } else { "b" };
            d.add(&stored(i, f, cold, 100 + i));
        }
        assert_eq!(d.rows, 30);
        let a = &d.functions[0];
        assert_eq!((a.name.as_str(), a.rows, a.cold), ("a", 20, 7));
        assert_eq!(a.latency_cold.len(), 7);
        assert_eq!(a.latency_warm.len(), 7);
        assert_eq!(a.latency_none.len(), 6);
        // Cold ones are i = 0, 3, ..., 18: latency 100..=118 ms, in µs.
        // 2 significant digits: within 1 %.
        assert!(a.latency_cold.min().abs_diff(100_000) <= 1000);
        assert!(a.latency_cold.max().abs_diff(118_000) <= 1000);
        let b = &d.functions[1];
        assert_eq!((b.rows, b.cold), (10, 3));
        assert_eq!(d.monitor_rows, 20);
        assert_eq!(d.missing.get("no record"), Some(&10));
        assert_eq!(a.cpu_us.len() + b.cpu_us.len(), 20);
        assert!(a.mem_kib.max().abs_diff(1024) <= 11);
        // 100 ms apart from the start: 10 ms bins, one row every 10th bin.
        let bins = d.timeline.bins();
        assert_eq!(d.timeline.width_ns(), 10_000_000);
        assert_eq!(bins.iter().map(|b| b.intended).sum::<u64>(), 30);
        assert_eq!(bins.iter().map(|b| b.sent).sum::<u64>(), 30);
        assert_eq!(bins.iter().map(|b| b.answered).sum::<u64>(), 30);
        assert_eq!(bins[10].intended, 1);
        assert_eq!(bins[10].cold.len(), 0);
        assert_eq!(bins[30].cold.get(&0), Some(&1));
        // Sent 1 ms after the intended instant: same bin; answered 100+ ms later.
        assert_eq!(bins[0].sent, 1);
        assert_eq!(bins[10].answered, 1);
        let cold: u64 = bins.iter().flat_map(|b| b.cold.values()).sum();
        assert_eq!(cold, 10);
    }

    #[test]
    fn top_functions_merge_the_rest() {
        let mut d = PlotData::new(1_000_000_000_000);
        for (i, f) in ["x", "y", "y", "z", "z", "z", "w"].iter().enumerate() {
            d.add(&stored(i as i64, f, Some(false), 10));
        }
        let top = d.top_functions(2, |f| f.rows);
        let names: Vec<&str> = top.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["z", "y", "other functions (2)"]);
        assert_eq!(top[2].rows, 2);
        assert_eq!(top[2].latency_warm.len(), 2);
        assert_eq!(d.top_functions(5, |f| f.rows).len(), 4);
    }
}
