//! The scheduler: `senders` threads, each with its own single-threaded runtime and its
//! own HTTP connections, each releasing every `senders`-th invocation of the trace (in
//! intended-time order) at `start + at_ns` (absolute deadlines on CLOCK_MONOTONIC: no
//! drift). A release spawns the invoker task on the same thread, so the send needs no
//! wake-up of another thread; the wait uses the kernel's high-resolution timer (see
//! [`super::timer`]). Nothing here waits on I/O; the only thing that can hold a release
//! back is the bound on pending invocations (memory), and then the delay shows as send
//! lag, never as a silent drop. The threads run at a raised priority (nice -10 by
//! default): a thread that spins before its instants has used much CPU, and the fair
//! scheduler may then preempt it for milliseconds when other threads (the endpoint's,
//! the runtime's) wake up, as scheduler traces showed at 5,000/s.
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context;
use tokio::sync::{oneshot, watch};

use super::invoker::{self, Ctx};
use super::timer::PreciseTimer;
use crate::openwhisk::Backend;
use faasload_os::clock::mono_ns;
use faasload_os::priority::set_thread_nice;
use faasload_trace::{Invocation, Trace};

/// What the scheduler did.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScheduleStats {
    /// Invocations released.
    pub released: u64,
    /// Invocations not released because the run was stopped.
    pub stopped_before: bool,
}

impl ScheduleStats {
    fn add(&mut self, o: ScheduleStats) {
        self.released += o.released;
        self.stopped_before |= o.stopped_before;
    }
}

/// The running sender threads.
pub(crate) struct Senders {
    done: Vec<oneshot::Receiver<anyhow::Result<ScheduleStats>>>,
    /// Dropped (or sent) once every row is in: the threads then end, dropping their
    /// runtimes (and any invocation abandoned after the grace period).
    finish: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Starts `senders` threads sharing `ctx`, each at nice value `nice` (see
/// [`super::run::ReplayOptions::sender_nice`]); each gets `backend`'s fork (own
/// connections) when it has one, else `backend` itself.
pub(crate) fn spawn(
    ctx: &Arc<Ctx>,
    backend: &Arc<dyn Backend>,
    trace: &Trace,
    senders: usize,
    nice: i32,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Senders> {
    let senders = senders.max(1);
    let (finish, finish_rx) = watch::channel(false);
    let mut s = Senders {
        done: Vec::new(),
        finish,
        threads: Vec::new(),
    };
    for shard in 0..senders {
        // Own connections for the thread; the shared backend stays with the runtime
        // that takes the releases a thread is late for.
        let local = backend.fork().unwrap_or_else(|| backend.clone());
        let overflow = Overflow {
            runtime: tokio::runtime::Handle::current(),
            backend: backend.clone(),
        };
        let invocations = trace.invocations();
        let (ctx, mut stop, mut finish) = (ctx.clone(), stop.clone(), finish_rx.clone());
        let (tx, rx) = oneshot::channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            // I/O and timers only: no process or signal driver to poll on every turn of
            // the spin before an instant (the run's signals are handled on the main
            // runtime).
            .enable_io()
            .enable_time()
            .build()
            .context("building a sender thread's runtime")?;
        let t = std::thread::Builder::new()
            .name(format!("faasload-send{shard}"))
            .spawn(move || {
                if nice != 0
                    && let Err(e) = set_thread_nice(nice)
                    && shard == 0
                {
                    tracing::warn!(
                        "sender threads stay at their default priority (nice {nice} refused: \
                         {e}); on a busy host the send lag's tail may grow (run as root, or \
                         --sender-nice 0)"
                    );
                }
                rt.block_on(async move {
                    let mine = invocations
                        .enumerate()
                        .filter(move |(i, _)| i % senders == shard)
                        .map(|(_, inv)| inv);
                    let st = release(&ctx, &local, &overflow, mine, &mut stop).await;
                    let _ = tx.send(st);
                    // Keep the runtime (this thread's invocations and connections)
                    // until the run has every row or gives up on them.
                    let _ = finish.wait_for(|f| *f).await;
                });
            })
            .context("starting a sender thread")?;
        s.done.push(rx);
        s.threads.push(t);
    }
    Ok(s)
}

impl Senders {
    /// Waits until every thread released all its invocations (or saw the stop).
    pub(crate) async fn released(&mut self) -> anyhow::Result<ScheduleStats> {
        let mut st = ScheduleStats::default();
        for rx in self.done.drain(..) {
            st.add(rx.await.context("a sender thread died")??);
        }
        Ok(st)
    }

    /// Ends the threads (call once every row is recorded, or the run gave up on those
    /// still in flight).
    pub(crate) fn finish(self) {
        let _ = self.finish.send(true);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Where a sender thread hands the invocations it releases late: the shared
/// multi-threaded runtime, whose workers (and other cores) take the work.
struct Overflow {
    runtime: tokio::runtime::Handle,
    backend: Arc<dyn Backend>,
}

/// A release this late (ns) means the thread is behind its schedule (the trace asks
/// more than one thread sends): it goes to the shared runtime instead.
const BEHIND_NS: u64 = 1_000_000;

/// Releases `invocations` on the current (single-threaded) runtime; late ones go to
/// `overflow`.
async fn release(
    ctx: &Arc<Ctx>,
    backend: &Arc<dyn Backend>,
    overflow: &Overflow,
    invocations: impl Iterator<Item = Invocation>,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<ScheduleStats> {
    let mut timer = PreciseTimer::new().context("creating the release timer")?;
    let mut st = ScheduleStats::default();
    for inv in invocations {
        let deadline = ctx.start_mono_ns + inv.at_ns;
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => { st.stopped_before = true; break; }
            r = timer.sleep_until(deadline) => r.context("waiting for a release instant")?,
        }
        // Bound the invocations spawned but not finished (memory); waiting here delays
        // the release, which the row records as send lag.
        let pending = match ctx.pending.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => tokio::select! {
                p = ctx.pending.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => { st.stopped_before = true; break; }
                },
                _ = stop.wait_for(|s| *s) => { st.stopped_before = true; break; }
            },
        };
        ctx.live.released.fetch_add(1, Ordering::Relaxed);
        st.released += 1;
        if mono_ns() > deadline + BEHIND_NS {
            let b = overflow.backend.clone();
            overflow
                .runtime
                .spawn(invoker::invoke(ctx.clone(), b, inv, pending));
        } else {
            tokio::spawn(invoker::invoke(ctx.clone(), backend.clone(), inv, pending));
            // Let the invocation run up to its send (and the connection write the
            // request) before this loop arms the timer for the next one: the arming
            // would otherwise sit between the instant and the send.
            tokio::task::yield_now().await;
        }
    }
    Ok(st)
}
