//! One replay, start to end: starts the recorder, the scheduler and the progress
//! display, handles SIGINT/SIGTERM (stop scheduling, give in-flight invocations a grace
//! period, flush), and waits until every released invocation is recorded.
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, mpsc, watch};

use super::invoker::{Ctx, Live};
use super::monitor_client::MonitorClient;
use super::recorder::{self, InputSizes, LagTracker, RecorderStats, RowSink};
use super::scheduler::{self, ScheduleStats};
use crate::openwhisk::{Backend, Endpoint};
use faasload_os::clock::{epoch_ns, mono_ns};
use faasload_results::store::RunRow;
use faasload_trace::Trace;

/// How a replay runs.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// Invocations on the network at once; more wait on the client (queueing recorded).
    pub max_in_flight: usize,
    /// Invocations released but not yet recorded (memory bound).
    pub max_pending: usize,
    /// The monitor's query socket, if resources are measured.
    pub monitor: Option<PathBuf>,
    /// How long the monitor may take to answer for an activation.
    pub monitor_wait: Duration,
    /// Also fetch each activation's samples (the original `resources` table).
    pub samples: bool,
    /// After SIGINT/SIGTERM, how long in-flight invocations may still finish.
    pub grace: Duration,
    /// No progress bar.
    pub quiet: bool,
    /// Sender threads (each with its own runtime and connections; see the scheduler).
    pub senders: usize,
    /// Nice value of the sender threads (-20..=19; 0 leaves them as they are). Below 0
    /// needs CAP_SYS_NICE; refused, the run goes on at the default with a warning.
    pub sender_nice: i32,
    /// The platform's directory object store, when the loader can read it: each row's
    /// `input_bytes` is the size of its input object there.
    pub inputs_dir: Option<PathBuf>,
}

/// The default nice value of the sender threads. A sender spins before each release
/// instant; at 5,000/s it is busy most of the time, and at nice 0 the fair scheduler
/// then preempts it for milliseconds whenever the endpoint and the runtime's workers
/// wake up (seen in scheduler traces; BENCHMARKS.md, suite `loader`, has the runs with
/// `--sender-nice 0` next to the default). It needs the CPU only for the spin before an
/// instant and the send: other threads keep the rest.
pub const DEFAULT_SENDER_NICE: i32 = -10;

/// The default number of sender threads: one. A second thread spinning for its
/// release instants took a core the endpoint needed on a 2-core machine (in manual
/// runs the send lag tail at 5,000/s grew an order of magnitude); the runtime's
/// workers take what one thread is late for.
pub fn default_senders() -> usize {
    1
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            max_in_flight: 1000,
            max_pending: 100_000,
            monitor: None,
            monitor_wait: Duration::from_secs(2),
            samples: true,
            grace: Duration::from_secs(30),
            quiet: false,
            senders: default_senders(),
            sender_nice: DEFAULT_SENDER_NICE,
            inputs_dir: None,
        }
    }
}

/// How a replay ended.
#[derive(Clone, Debug)]
pub struct ReplayResult {
    pub schedule: ScheduleStats,
    pub recorder: RecorderStats,
    /// Stopped by a signal.
    pub interrupted: bool,
    /// Invocations still in flight when the grace period ran out (their rows are lost,
    /// and counted here).
    pub abandoned: u64,
    pub start_epoch_ms: u64,
    pub wall: Duration,
}

/// Replays `trace`; rows go to `sinks` and, if given, to the store `writer`.
pub async fn replay(
    trace: Arc<Trace>,
    endpoints: Vec<Endpoint>,
    backend: Arc<dyn Backend>,
    opts: &ReplayOptions,
    sinks: Vec<Box<dyn RowSink>>,
    writer: Option<mpsc::Sender<RunRow>>,
) -> anyhow::Result<(ReplayResult, Vec<Box<dyn RowSink>>)> {
    let (row_tx, row_rx) = mpsc::channel::<RunRow>(4096);
    let (stop_tx, stop_rx) = watch::channel(false);
    // One common start on both clocks (std's Instant is CLOCK_MONOTONIC on Linux).
    let (now, now_ns) = (tokio::time::Instant::now(), mono_ns());
    let start = now + Duration::from_millis(20);
    let start_mono_ns = now_ns + 20_000_000;
    let start_epoch_ms = (epoch_ns() + 20_000_000) / 1_000_000;
    let ctx = Arc::new(Ctx {
        trace: trace.clone(),
        endpoints,
        backend,
        monitor: opts
            .monitor
            .clone()
            .map(|p| MonitorClient::new(p, opts.monitor_wait, opts.samples)),
        in_flight: Arc::new(Semaphore::new(opts.max_in_flight.max(1))),
        pending: Arc::new(Semaphore::new(opts.max_pending.max(1))),
        start,
        start_mono_ns,
        start_epoch_ms,
        rows: row_tx,
        live: Live::default(),
    });

    let lag = LagTracker::new();
    let mut all_sinks = sinks;
    all_sinks.push(Box::new(lag.clone()));
    let recorded = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let rec_count = recorded.clone();
    let (give_up, give_up_rx) = watch::channel(false);
    let recorder = tokio::spawn(recorder::run(
        row_rx,
        all_sinks,
        writer,
        opts.inputs_dir.clone().map(InputSizes::new),
        give_up_rx,
        move |_| {
            rec_count.fetch_add(1, Ordering::Relaxed);
        },
    ));

    let bar = progress(opts.quiet, trace.total);
    let mut senders = scheduler::spawn(
        &ctx,
        &ctx.backend,
        &trace,
        opts.senders,
        opts.sender_nice,
        &stop_rx,
    )?;

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let t0 = std::time::Instant::now();
    let mut interrupted = false;
    let schedule = {
        let sched = senders.released();
        tokio::pin!(sched);
        loop {
            tokio::select! {
                r = &mut sched => break r?,
                _ = term.recv() => { interrupted = true; let _ = stop_tx.send(true); }
                _ = int.recv() => { interrupted = true; let _ = stop_tx.send(true); }
                _ = tick.tick() => show(&bar, &ctx, &lag, &recorded),
            }
        }
    };
    if interrupted {
        tracing::warn!(
            "stopping: no new invocations; waiting up to {:?} for those in flight",
            opts.grace
        );
    }
    // Wait until every released invocation is recorded (all pending permits back).
    let all = opts.max_pending.max(1) as u32;
    let wait_all = ctx.pending.clone().acquire_many_owned(all);
    let mut deadline = interrupted.then(|| tokio::time::Instant::now() + opts.grace);
    tokio::pin!(wait_all);
    let mut abandoned = 0;
    loop {
        tokio::select! {
            _ = &mut wait_all => break,
            _ = tick.tick() => {
                show(&bar, &ctx, &lag, &recorded);
                if deadline.is_some_and(|d| tokio::time::Instant::now() > d) {
                    abandoned = all as u64 - ctx.pending.available_permits() as u64;
                    break;
                }
            }
            _ = term.recv(), if deadline.is_none() => {
                interrupted = true;
                deadline = Some(tokio::time::Instant::now() + opts.grace);
            }
            _ = int.recv(), if deadline.is_none() => {
                interrupted = true;
                deadline = Some(tokio::time::Instant::now() + opts.grace);
            }
        }
    }
    show(&bar, &ctx, &lag, &recorded);
    if let Some(b) = &bar {
        b.finish();
    }
    // Every row is in (or the rest is abandoned): end the sender threads, which drops
    // their runtimes and with them any abandoned invocation (and its `ctx`).
    tokio::task::spawn_blocking(move || senders.finish())
        .await
        .context("ending the sender threads")?;
    drop(ctx);
    if abandoned > 0 {
        // Rows of abandoned invocations never come, and those tasks may still hold the
        // channel open: the recorder takes every row already sent, then ends.
        let _ = give_up.send(true);
    }
    let (recorder_stats, sinks) = recorder.await?;
    Ok((
        ReplayResult {
            schedule,
            recorder: recorder_stats,
            interrupted,
            abandoned,
            start_epoch_ms,
            wall: t0.elapsed(),
        },
        sinks,
    ))
}

fn progress(quiet: bool, total: Option<u64>) -> Option<indicatif::ProgressBar> {
    if quiet {
        return None;
    }
    let bar = match total {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let style = indicatif::ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {pos}/{len} {per_sec} {msg}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    Some(bar)
}

fn show(
    bar: &Option<indicatif::ProgressBar>,
    ctx: &Ctx,
    lag: &LagTracker,
    recorded: &std::sync::atomic::AtomicU64,
) {
    let Some(b) = bar else { return };
    let l = &ctx.live;
    b.set_position(recorded.load(Ordering::Relaxed));
    b.set_message(format!(
        "in flight {}, failed {}, lag p99 {} µs",
        l.in_flight.load(Ordering::Relaxed),
        l.failed.load(Ordering::Relaxed),
        lag.p99_us()
    ));
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::{Map, Value};

    use super::*;
    use crate::openwhisk::{BoxFut, Outcome, OutcomeClass};
    use faasload_trace::{Function, Invocation, User};

    /// A platform that answers after `delay`, recording nothing but the call count.
    struct Fake {
        delay: Duration,
        calls: Mutex<u64>,
        /// The thread each invocation was sent from.
        threads: Mutex<Vec<String>>,
        /// The nice value of that thread.
        nices: Mutex<Vec<i32>>,
    }

    impl Fake {
        fn new(delay: Duration) -> Arc<Fake> {
            Arc::new(Fake {
                delay,
                calls: Mutex::new(0),
                threads: Mutex::new(Vec::new()),
                nices: Mutex::new(Vec::new()),
            })
        }
    }

    impl Backend for Fake {
        fn deploy<'a>(
            &'a self,
            _: &'a Endpoint,
            _: &'a User,
            _: &'a Function,
        ) -> BoxFut<'a, anyhow::Result<()>> {
            Box::pin(async { Ok(()) })
        }
        fn invoke<'a>(
            &'a self,
            _: &'a Endpoint,
            _: &'a str,
            _: &'a Map<String, Value>,
        ) -> BoxFut<'a, Outcome> {
            Box::pin(async move {
                let sent = mono_ns();
                *self.calls.lock().unwrap() += 1;
                let thread = std::thread::current().name().unwrap_or("").to_string();
                let nice = faasload_os::priority::thread_nice().unwrap();
                // Both pushed under the threads' lock: entry i of each is one call (two
                // threads pushing at once must not interleave them).
                {
                    let mut threads = self.threads.lock().unwrap();
                    threads.push(thread);
                    self.nices.lock().unwrap().push(nice);
                }
                tokio::time::sleep(self.delay).await;
                Outcome {
                    sent_ns: sent,
                    answered_ns: mono_ns(),
                    http_status: Some(200),
                    class: OutcomeClass::Success,
                    activation_id: None,
                    record: None,
                    polls: 0,
                    retries: 0,
                    error: None,
                }
            })
        }
    }

    struct Collect(Arc<Mutex<Vec<RunRow>>>);
    impl RowSink for Collect {
        fn row(&mut self, r: &RunRow) {
            self.0.lock().unwrap().push(r.clone());
        }
    }

    fn trace(n: u64, gap_us: u64) -> Arc<Trace> {
        trace_from(n, gap_us, 0)
    }

    /// `n` invocations `gap_us` apart, the first `first_ns` after the start.
    fn trace_from(n: u64, gap_us: u64, first_ns: u64) -> Arc<Trace> {
        let user = User {
            name: "u".into(),
            namespace: "u".into(),
            auth: None,
            api_host: None,
            create: false,
        };
        let function = Function {
            name: "f".into(),
            action: "f".into(),
            kind: "python:3".into(),
            code: "x.py".into(),
            main: None,
            memory_mb: 128,
            timeout_ms: 1000,
            parameters: Map::new(),
            input_kind: None,
        };
        Arc::new(Trace {
            origin: "test".into(),
            users: vec![user],
            functions: vec![function],
            seed: 1,
            pairs: vec![(0, 0)],
            total: Some(n),
            schedule: Box::new(move || {
                Box::new((0..n).map(move |i| Invocation {
                    seq: i,
                    at_ns: first_ns + i * gap_us * 1000,
                    user: 0,
                    function: 0,
                    input: None,
                    params: Map::new(),
                }))
            }),
        })
    }

    fn ep() -> Vec<Endpoint> {
        vec![Endpoint {
            api_host: "http://x".into(),
            auth: "a:b".into(),
            namespace: "u".into(),
        }]
    }

    /// Replays `trace` against `fake` quietly with `opts`; the result and every row.
    async fn run_fake(
        trace: Arc<Trace>,
        fake: &Arc<Fake>,
        opts: ReplayOptions,
    ) -> (ReplayResult, Vec<RunRow>) {
        let rows = Arc::new(Mutex::new(Vec::new()));
        let opts = ReplayOptions {
            quiet: true,
            ..opts
        };
        let (res, _) = replay(
            trace,
            ep(),
            fake.clone(),
            &opts,
            vec![Box::new(Collect(rows.clone()))],
            None,
        )
        .await
        .unwrap();
        let rows = std::mem::take(&mut *rows.lock().unwrap());
        (res, rows)
    }

    /// The sorted sequence numbers of `rows`.
    fn seqs(rows: &[RunRow]) -> Vec<u64> {
        let mut seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
        seqs.sort();
        seqs
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_invocation_is_recorded_on_time() {
        let fake = Fake::new(Duration::from_millis(2));
        let (res, rows) = run_fake(trace(500, 1000), &fake, ReplayOptions::default()).await;
        assert_eq!(res.schedule.released, 500);
        assert_eq!(res.recorder.rows, 500);
        assert!(!res.interrupted);
        assert_eq!(seqs(&rows), (0..500).collect::<Vec<_>>());
        for r in rows.iter() {
            // Never early; latency measured from the intended instant includes the 2 ms.
            assert!(
                r.sent_ns.unwrap() >= r.intended_ns,
                "sent before its instant: {r:?}"
            );
            assert!(r.latency_ns().unwrap() >= 2_000_000);
        }
        assert_eq!(*fake.calls.lock().unwrap(), 500);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_in_flight_bound_queues_and_records_the_wait() {
        let fake = Fake::new(Duration::from_millis(20));
        let opts = ReplayOptions {
            max_in_flight: 1,
            ..Default::default()
        };
        // 10 invocations at the same instant, one at a time: the last waits ~180 ms.
        let (res, rows) = run_fake(trace(10, 0), &fake, opts).await;
        assert_eq!(res.recorder.rows, 10);
        let max_queue = rows.iter().map(|r| r.queue_ns).max().unwrap();
        assert!(
            max_queue >= 150_000_000,
            "queueing not recorded: {max_queue} ns"
        );
        // Latency from the intended instant includes the client-side queueing.
        let max_lat = rows.iter().map(|r| r.latency_ns().unwrap()).max().unwrap();
        assert!(max_lat >= 190_000_000, "{max_lat}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn several_senders_share_the_trace_and_each_invocation_goes_once() {
        let fake = Fake::new(Duration::from_millis(1));
        let opts = ReplayOptions {
            senders: 3,
            ..Default::default()
        };
        let (res, rows) = run_fake(trace(300, 500), &fake, opts).await;
        assert_eq!(res.schedule.released, 300);
        assert_eq!(seqs(&rows), (0..300).collect::<Vec<_>>());
        assert!(rows.iter().all(|r| r.sent_ns.unwrap() >= r.intended_ns));
        let threads = fake.threads.lock().unwrap();
        for t in ["faasload-send0", "faasload-send1", "faasload-send2"] {
            let n = threads.iter().filter(|x| x.as_str() == t).count();
            assert!(n > 0, "nothing sent from {t}: {threads:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sender_behind_its_schedule_hands_releases_to_the_runtime() {
        let fake = Fake::new(Duration::from_millis(5));
        let opts = ReplayOptions {
            senders: 1,
            ..Default::default()
        };
        // 20,000 invocations due at the same instant (200 ms in, so the thread is
        // asleep and on time for the first): one thread cannot release them all within
        // 1 ms of it, so the late ones go to the runtime's workers.
        let (res, _) = run_fake(trace_from(20_000, 0, 200_000_000), &fake, opts).await;
        assert_eq!(res.recorder.rows, 20_000);
        let threads = fake.threads.lock().unwrap();
        let own = threads.iter().filter(|t| *t == "faasload-send0").count();
        let shared = threads.len() - own;
        assert!(own > 0, "the sender sent nothing itself");
        assert!(shared > 0, "nothing was handed to the runtime");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sender_threads_send_at_their_own_priority() {
        let fake = Fake::new(Duration::from_millis(1));
        // +4 (lowering needs no privilege): the threads that send have it, the
        // runtime's workers (and the test's thread) keep theirs.
        let opts = ReplayOptions {
            senders: 2,
            sender_nice: 4,
            ..Default::default()
        };
        let (res, _) = run_fake(trace(100, 500), &fake, opts).await;
        assert_eq!(res.recorder.rows, 100);
        let threads = fake.threads.lock().unwrap();
        let nices = fake.nices.lock().unwrap();
        let sent_by_senders: Vec<i32> = threads
            .iter()
            .zip(nices.iter())
            .filter(|(t, _)| t.starts_with("faasload-send"))
            .map(|(_, n)| *n)
            .collect();
        assert!(!sent_by_senders.is_empty());
        assert!(
            sent_by_senders.iter().all(|n| *n == 4),
            "{sent_by_senders:?}"
        );
        assert_ne!(faasload_os::priority::thread_nice().unwrap(), 4);
    }
}
