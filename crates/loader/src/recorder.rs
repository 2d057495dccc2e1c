//! The recorder: the one task that receives finished rows, feeds every in-memory sink
//! (histograms, live statistics) and forwards the row to the store's batching writer.
//! Nothing here is on the scheduler's path; a slow database slows only this task.
//!
//! It drains its channel on a short tick instead of waiting on it: a waiting receiver
//! is woken by every row, i.e. a runtime worker (and, in turn, the writer's thread) is
//! woken thousands of times a second, each wake-up a context switch that costs the
//! machine far more than the row's work and takes CPU from the platform under test. A
//! row reaches the sinks at most [`DRAIN_EVERY`] after it was sent; the channel is
//! bounded, so a burst makes invokers wait for room (after their answer was timed),
//! never drops a row.
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, watch};

use faasload_results::store::RunRow;

/// Something that looks at every row (cheap, in memory).
pub trait RowSink: Send {
    fn row(&mut self, r: &RunRow);
}

/// Send-lag percentiles for the progress bar, shared with the display.
#[derive(Clone)]
pub(crate) struct LagTracker(pub Arc<Mutex<Histogram<u64>>>);

impl LagTracker {
    /// An empty tracker (µs, 3 significant digits).
    pub(crate) fn new() -> LagTracker {
        LagTracker(Arc::new(Mutex::new(
            Histogram::new(3).expect("3 significant digits is valid"),
        )))
    }

    /// The p99 send lag so far, in µs.
    pub(crate) fn p99_us(&self) -> u64 {
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

/// The sizes of the input objects of a directory object store (the platform's
/// `FAASLOAD_STORE_DIR`): each input's size is looked up once, then remembered, and
/// stored in the rows' `input_bytes`.
pub(crate) struct InputSizes {
    dir: PathBuf,
    known: HashMap<String, Option<u64>>,
}

impl InputSizes {
    pub(crate) fn new(dir: PathBuf) -> InputSizes {
        InputSizes {
            dir,
            known: HashMap::new(),
        }
    }

    /// The size of `input` (`container/name`), None when it is not a file of the
    /// store (or names something outside it).
    fn size(&mut self, input: &str) -> Option<u64> {
        if let Some(s) = self.known.get(input) {
            return *s;
        }
        let rel = Path::new(input);
        let inside = rel.components().all(|c| matches!(c, Component::Normal(_)));
        let size = inside
            .then(|| std::fs::metadata(self.dir.join(rel)).ok())
            .flatten()
            .filter(std::fs::Metadata::is_file)
            .map(|m| m.len());
        self.known.insert(input.to_string(), size);
        size
    }

    /// Fills `r.input_bytes` when the row has an input and no size yet.
    fn fill(&mut self, r: &mut RunRow) {
        if r.input_bytes.is_none()
            && let Some(i) = &r.input
        {
            r.input_bytes = self.size(i);
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

/// How often the recorder takes the rows waiting in its channel.
pub(crate) const DRAIN_EVERY: Duration = Duration::from_millis(10);

/// Runs until every sender of `rx` is gone and every row is taken, or until `give_up`
/// turns true (invocations abandoned after the grace period still hold senders): then
/// it takes the rows already sent and ends.
pub(crate) async fn run(
    mut rx: mpsc::Receiver<RunRow>,
    mut sinks: Vec<Box<dyn RowSink>>,
    writer: Option<mpsc::Sender<RunRow>>,
    mut sizes: Option<InputSizes>,
    give_up: watch::Receiver<bool>,
    on_row: impl Fn(&RunRow) + Send,
) -> (RecorderStats, Vec<Box<dyn RowSink>>) {
    let mut st = RecorderStats::default();
    let mut tick = tokio::time::interval(DRAIN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Read before draining: what was sent before the give-up is taken.
        let gave_up = *give_up.borrow();
        // `try_recv` registers no waker: senders do not wake this task.
        let closed = loop {
            match rx.try_recv() {
                Ok(mut row) => {
                    if let Some(z) = &mut sizes {
                        z.fill(&mut row);
                    }
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
                Err(TryRecvError::Empty) => break false,
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        if closed || gave_up {
            return (st, sinks);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faasload_results::store::RunRow;

    struct Count(Arc<Mutex<Vec<u64>>>);
    impl RowSink for Count {
        fn row(&mut self, r: &RunRow) {
            self.0.lock().unwrap().push(r.seq);
        }
    }

    fn row(seq: u64) -> RunRow {
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
            class: faasload_protocol::OutcomeClass::Success,
            http_status: Some(200),
            error: None,
            polls: 0,
            retries: 0,
            record: None,
            monitor: faasload_results::store::MonitorReading::default(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_row_of_every_sender_reaches_the_sinks_and_the_writer_in_order() {
        let (tx, rx) = mpsc::channel(64);
        let (wtx, mut wrx) = mpsc::channel(16);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (_keep, give_up) = watch::channel(false);
        let rec = tokio::spawn(run(
            rx,
            vec![Box::new(Count(seen.clone()))],
            Some(wtx),
            None,
            give_up,
            |_| {},
        ));
        // More rows than both channels hold: senders wait for room, nothing is dropped.
        let senders: Vec<_> = (0..4u64)
            .map(|k| {
                let tx = tx.clone();
                tokio::spawn(async move {
                    for i in 0..500u64 {
                        tx.send(row(k * 1000 + i)).await.unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let written = tokio::spawn(async move {
            let mut v = Vec::new();
            while let Some(r) = wrx.recv().await {
                v.push(r.seq);
            }
            v
        });
        for s in senders {
            s.await.unwrap();
        }
        let (st, _) = rec.await.unwrap();
        assert_eq!(st.rows, 2000);
        assert_eq!(st.not_stored, 0);
        let written = written.await.unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen, written,
            "sinks and writer saw the rows in the same order"
        );
        for k in 0..4u64 {
            let mine: Vec<u64> = seen.iter().copied().filter(|s| s / 1000 == k).collect();
            assert_eq!(mine, (k * 1000..k * 1000 + 500).collect::<Vec<_>>());
        }
    }

    #[test]
    fn input_sizes_come_from_the_store_directory_once_each() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("user001")).unwrap();
        std::fs::write(dir.path().join("user001/15.jpg"), [0u8; 1234]).unwrap();
        let mut z = InputSizes::new(dir.path().to_path_buf());
        let mut r = row(1);
        r.input = Some("user001/15.jpg".into());
        z.fill(&mut r);
        assert_eq!(r.input_bytes, Some(1234));
        // Remembered: a later change of the file is not seen.
        std::fs::write(dir.path().join("user001/15.jpg"), [0u8; 10]).unwrap();
        let mut again = row(2);
        again.input = Some("user001/15.jpg".into());
        z.fill(&mut again);
        assert_eq!(again.input_bytes, Some(1234));
        for bad in ["user001/16.jpg", "../x", "/etc/passwd", "user001"] {
            let mut r = row(3);
            r.input = Some(bad.into());
            z.fill(&mut r);
            assert_eq!(r.input_bytes, None, "{bad}");
        }
        // A size the caller knows is kept.
        let mut known = row(4);
        known.input = Some("user001/15.jpg".into());
        known.input_bytes = Some(7);
        z.fill(&mut known);
        assert_eq!(known.input_bytes, Some(7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn giving_up_takes_the_rows_already_sent_though_senders_remain() {
        let (tx, rx) = mpsc::channel(64);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop, give_up) = watch::channel(false);
        let rec = tokio::spawn(run(
            rx,
            vec![Box::new(Count(seen.clone()))],
            None,
            None,
            give_up,
            |_| {},
        ));
        for i in 0..40 {
            tx.send(row(i)).await.unwrap();
        }
        // `tx` stays alive (an abandoned invocation's): only the give-up ends the task.
        stop.send(true).unwrap();
        let (st, _) = tokio::time::timeout(Duration::from_secs(5), rec)
            .await
            .expect("the recorder did not end on give-up")
            .unwrap();
        assert_eq!(st.rows, 40);
        assert_eq!(*seen.lock().unwrap(), (0..40).collect::<Vec<_>>());
        drop(tx);
    }
}
