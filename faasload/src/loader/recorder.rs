//! The recorder: the one task that receives finished rows, feeds every in-memory sink
//! (histograms, live statistics) and forwards the row to the store's batching writer.
//! Nothing here is on the scheduler's path; a slow database slows only this task.
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;
use tokio::sync::mpsc;

use crate::store::RunRow;

/// Something that looks at every row (cheap, in memory).
pub trait RowSink: Send {
    fn row(&mut self, r: &RunRow);
}

/// Send-lag percentiles for the progress bar, shared with the display.
#[derive(Clone)]
pub struct LagTracker(pub Arc<Mutex<Histogram<u64>>>);

impl LagTracker {
    /// An empty tracker (µs, 3 significant digits).
    pub fn new() -> LagTracker {
        LagTracker(Arc::new(Mutex::new(
            Histogram::new(3).expect("3 significant digits is valid"),
        )))
    }

    /// The p99 send lag so far, in µs.
    pub fn p99_us(&self) -> u64 {
        self.0
            .lock()
            .map(|h| {
                if h.is_empty() {
                    0
                } else {
                    h.value_at_quantile(0.99)
                }
            })
            .unwrap_or(0)
    }
}

impl Default for LagTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl RowSink for LagTracker {
    fn row(&mut self, r: &RunRow) {
        if let (Some(l), Ok(mut h)) = (r.lag_ns(), self.0.lock()) {
            let _ = h.record(l / 1000);
        }
    }
}

/// What the recorder did.
#[derive(Clone, Copy, Debug, Default)]
pub struct RecorderStats {
    pub rows: u64,
    /// Rows the store writer did not take (it stopped): counted, and said at the end.
    pub not_stored: u64,
}

/// Runs until every sender of `rx` is gone.
pub async fn run(
    mut rx: mpsc::Receiver<RunRow>,
    mut sinks: Vec<Box<dyn RowSink>>,
    writer: Option<mpsc::Sender<RunRow>>,
    on_row: impl Fn(&RunRow) + Send,
) -> (RecorderStats, Vec<Box<dyn RowSink>>) {
    let mut st = RecorderStats::default();
    while let Some(row) = rx.recv().await {
        for s in sinks.iter_mut() {
            s.row(&row);
        }
        on_row(&row);
        st.rows += 1;
        if let Some(w) = &writer
            && w.send(row).await.is_err()
        {
            st.not_stored += 1;
        }
    }
    (st, sinks)
}
