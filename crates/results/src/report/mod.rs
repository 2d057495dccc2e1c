//! Latency reports: HdrHistograms (µs, 3 significant digits) per (user, function), per
//! function and overall, of the latency from the intended instant, the send lag and the
//! record's duration, waitTime and initTime; outcome counts per class and cold/warm
//! counts. Fed row by row while a load runs ([`Report::record`]) or rebuilt from a store
//! ([`Report::from_store`]); rendered as a wrk2-style text table and written as an
//! HdrHistogram interval log of latency per second; the `html` module renders a stored
//! load as a self-contained HTML page of SVG charts and the same percentile tables.
mod hlog;
mod html;
mod metrics;
mod text;

pub use html::{html_report_path, report_cli_html, report_store_html, write_html_report};
pub use metrics::{Metric, MetricSet, PERCENTILES, Summary};

use std::collections::BTreeMap;
use std::path::Path;

use hdrhistogram::Histogram;

use crate::store::{RunRow, Store, StoreError, StoredRow};

/// What a report takes from one invocation (from a live row or a stored one).
#[derive(Clone, Copy, Debug)]
struct Sample<'a> {
    user: &'a str,
    function: &'a str,
    class: &'a str,
    cold: Option<bool>,
    /// Intended instant, ns from the load's start.
    intended_ns: u64,
    latency_ns: Option<u64>,
    lag_ns: Option<u64>,
    duration_ms: Option<u64>,
    wait_ms: Option<u64>,
    init_ms: Option<u64>,
}

/// Histograms and counts of a load.
#[derive(Clone, Debug, Default)]
pub struct Report {
    overall: MetricSet,
    by_function: BTreeMap<String, MetricSet>,
    /// user → function → set.
    by_user: BTreeMap<String, BTreeMap<String, MetricSet>>,
    classes: BTreeMap<String, u64>,
    cold: u64,
    warm: u64,
    no_record: u64,
    rows: u64,
    /// Latency per second of intended instant (second index → histogram).
    intervals: BTreeMap<u64, Histogram<u64>>,
    /// Epoch ms of the load's start, when known (for the interval log's StartTime).
    start_epoch_ms: Option<u64>,
}

fn set_for<'m>(map: &'m mut BTreeMap<String, MetricSet>, key: &str) -> &'m mut MetricSet {
    if !map.contains_key(key) {
        map.insert(key.to_string(), MetricSet::default());
    }
    // Present: inserted just above if it was missing.
    map.get_mut(key)
        .unwrap_or_else(|| unreachable!("key inserted above"))
}

fn non_neg(v: Option<i64>) -> Option<u64> {
    v.map(|x| x.max(0) as u64)
}

impl Report {
    pub fn new() -> Report {
        Report::default()
    }

    /// Records one live row.
    pub fn record(&mut self, r: &RunRow) {
        if self.start_epoch_ms.is_none() {
            self.start_epoch_ms = Some(r.run_start_epoch_ms);
        }
        let rec = r.record.as_ref();
        self.add(Sample {
            user: &r.user,
            function: &r.function,
            class: r.class.as_str(),
            cold: r.cold(),
            intended_ns: r.intended_ns,
            latency_ns: r.latency_ns(),
            lag_ns: r.lag_ns(),
            duration_ms: rec.map(|x| x.duration_ms),
            wait_ms: rec.and_then(|x| x.wait_ms),
            init_ms: rec.and_then(|x| x.init_ms),
        });
    }

    /// Records one stored row of a load that started at `start_epoch_ms`.
    pub fn record_stored(&mut self, r: &StoredRow, start_epoch_ms: i64) {
        if self.start_epoch_ms.is_none() {
            self.start_epoch_ms = Some(start_epoch_ms.max(0) as u64);
        }
        let base = start_epoch_ms.saturating_mul(1_000_000);
        self.add(Sample {
            user: &r.user,
            function: &r.function,
            class: &r.class,
            cold: r.cold,
            intended_ns: r.intended_epoch_ns.saturating_sub(base).max(0) as u64,
            latency_ns: non_neg(r.latency_ns),
            lag_ns: non_neg(r.lag_ns),
            duration_ms: non_neg(r.duration_ms),
            wait_ms: non_neg(r.wait_ms),
            init_ms: non_neg(r.init_ms),
        });
    }

    fn add(&mut self, s: Sample<'_>) {
        self.rows += 1;
        match self.classes.get_mut(s.class) {
            Some(n) => *n += 1,
            None => {
                self.classes.insert(s.class.to_string(), 1);
            }
        }
        match s.cold {
            Some(true) => self.cold += 1,
            Some(false) => self.warm += 1,
            None => self.no_record += 1,
        }
        let values = [
            (Metric::Latency, s.latency_ns.map(|v| v / 1000)),
            (Metric::Lag, s.lag_ns.map(|v| v / 1000)),
            (
                Metric::Duration,
                s.duration_ms.map(|v| v.saturating_mul(1000)),
            ),
            (Metric::Wait, s.wait_ms.map(|v| v.saturating_mul(1000))),
            (Metric::Init, s.init_ms.map(|v| v.saturating_mul(1000))),
        ];
        let user = match self.by_user.get_mut(s.user) {
            Some(m) => m,
            None => self.by_user.entry(s.user.to_string()).or_default(),
        };
        let uf = set_for(user, s.function);
        for &(m, v) in &values {
            if let Some(v) = v {
                uf.record(m, v);
            }
        }
        let f = set_for(&mut self.by_function, s.function);
        for &(m, v) in &values {
            if let Some(v) = v {
                f.record(m, v);
            }
        }
        for &(m, v) in &values {
            if let Some(v) = v {
                self.overall.record(m, v);
            }
        }
        if let Some(l) = s.latency_ns {
            let h = self
                .intervals
                .entry(s.intended_ns / 1_000_000_000)
                .or_insert_with(metrics::new_histogram);
            let _ = h.record((l / 1000).min(i64::MAX as u64 / 2));
        }
    }

    /// Rebuilds the report of `load_id` from the store.
    pub async fn from_store(store: &Store, load_id: i64) -> Result<Report, StoreError> {
        let load = store
            .loads()
            .await?
            .into_iter()
            .find(|l| l.id == load_id)
            .ok_or_else(|| StoreError::Invalid(format!("no load {load_id} in the store")))?;
        let mut r = Report::new();
        r.start_epoch_ms = Some(load.start_epoch_ms.max(0) as u64);
        for row in store.rows(load_id).await? {
            r.record_stored(&row, load.start_epoch_ms);
        }
        Ok(r)
    }

    /// Rows recorded.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn overall(&self) -> &MetricSet {
        &self.overall
    }

    pub fn function(&self, function: &str) -> Option<&MetricSet> {
        self.by_function.get(function)
    }

    pub fn user_function(&self, user: &str, function: &str) -> Option<&MetricSet> {
        self.by_user.get(user)?.get(function)
    }

    /// Rows per outcome class ([`faasload_protocol::OutcomeClass::as_str`]).
    pub fn classes(&self) -> &BTreeMap<String, u64> {
        &self.classes
    }

    /// (cold, warm, without a record).
    pub fn starts(&self) -> (u64, u64, u64) {
        (self.cold, self.warm, self.no_record)
    }

    /// Latency histograms per second of the intended instant since the load's start.
    pub fn intervals(&self) -> &BTreeMap<u64, Histogram<u64>> {
        &self.intervals
    }

    /// The wrk2-style text report.
    pub fn render_text(&self) -> String {
        text::render(self)
    }

    /// Writes the HdrHistogram interval log of latency (one interval per second).
    pub fn write_hlog(&self, path: &Path) -> std::io::Result<()> {
        hlog::write(self, path)
    }
}

/// `faasload report <store> [--load ID]`: the text report of a stored load (the last
/// one by default), with a header describing the load. Synchronous (it runs its own
/// runtime); inside a runtime use [`report_store`].
pub fn report_cli(url: &str, load: Option<i64>) -> anyhow::Result<String> {
    use anyhow::Context;
    if tokio::runtime::Handle::try_current().is_ok() {
        anyhow::bail!("report_cli called inside a tokio runtime: use report_store");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the report's runtime")?;
    rt.block_on(report_store(url, load))
}

/// [`report_cli`], async.
pub async fn report_store(url: &str, load: Option<i64>) -> anyhow::Result<String> {
    use anyhow::Context;
    let store = Store::open_read(url)
        .await
        .with_context(|| format!("opening the store {}", crate::store::redact(url)))?;
    let info = pick_load(&store, load).await?;
    let report = Report::from_store(&store, info.id).await?;
    store.close().await;
    let mut out = text::load_header(&info);
    out.push_str(&report.render_text());
    Ok(out)
}

/// Load `load` of `store`, or its last one.
pub(crate) async fn pick_load(
    store: &Store,
    load: Option<i64>,
) -> anyhow::Result<crate::store::LoadInfo> {
    use anyhow::Context;
    let mut loads = store.loads().await?;
    match load {
        Some(id) => {
            let ids: Vec<String> = loads.iter().map(|l| l.id.to_string()).collect();
            let at = loads.iter().position(|l| l.id == id).with_context(|| {
                format!(
                    "no load {id} in the store (loads: {})",
                    if ids.is_empty() {
                        "none".to_string()
                    } else {
                        ids.join(", ")
                    }
                )
            })?;
            Ok(loads.swap_remove(at))
        }
        None => loads.pop().context("the store holds no load yet"),
    }
}

#[cfg(test)]
mod tests;
