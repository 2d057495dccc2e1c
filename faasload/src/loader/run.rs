//! One replay, start to end: starts the recorder, the scheduler and the progress
//! display, handles SIGINT/SIGTERM (stop scheduling, give in-flight invocations a grace
//! period, flush), and waits until every released invocation is recorded.
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, mpsc, watch};

use super::invoker::{Ctx, Live};
use super::monitor_client::MonitorClient;
use super::recorder::{self, LagTracker, RecorderStats, RowSink};
use super::scheduler::{self, ScheduleStats};
use crate::openwhisk::{Backend, Endpoint};
use crate::store::RunRow;
use crate::trace::Trace;
use crate::util::clock::{epoch_ns, mono_ns};

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
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let start_mono_ns = mono_ns() + 20_000_000;
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
    let recorder = tokio::spawn(recorder::run(row_rx, all_sinks, writer, move |_| {
        rec_count.fetch_add(1, Ordering::Relaxed);
    }));

    let bar = progress(opts.quiet, trace.total);
    let sched = tokio::spawn(scheduler::run(ctx.clone(), trace.invocations(), stop_rx));

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let t0 = std::time::Instant::now();
    let mut interrupted = false;
    let mut sched = sched;
    let schedule = loop {
        tokio::select! {
            r = &mut sched => break r?,
            _ = term.recv() => { interrupted = true; let _ = stop_tx.send(true); }
            _ = int.recv() => { interrupted = true; let _ = stop_tx.send(true); }
            _ = tick.tick() => show(&bar, &ctx, &lag, &recorded),
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
    drop(ctx);
    let (recorder_stats, sinks) = if abandoned == 0 {
        recorder.await?
    } else {
        // Rows of abandoned invocations never come; the recorder ends when the channel
        // has no senders left, which needs those tasks gone: give up on them.
        recorder.abort();
        (
            RecorderStats {
                rows: recorded.load(Ordering::Relaxed),
                not_stored: 0,
            },
            Vec::new(),
        )
    };
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
