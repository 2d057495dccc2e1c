//! The scheduler: walks the trace's invocations in intended-time order and releases each
//! one at `start + at_ns` (absolute deadlines on CLOCK_MONOTONIC: no drift), spawning one
//! invoker task per invocation on the runtime. It runs on its own OS thread (precise
//! sleeps, see [`super::timer`]) so it never competes with the invoker tasks for a runtime
//! worker, and it never waits on I/O; the only thing that can hold it back is the bound
//! on pending invocations (memory), and then the delay shows as send lag, never as a
//! silent drop.
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{oneshot, watch};

use super::invoker::{self, Ctx};
use super::timer;
use crate::trace::Invocation;

/// What the scheduler did.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScheduleStats {
    /// Invocations released.
    pub released: u64,
    /// Invocations not released because the run was stopped.
    pub stopped_before: bool,
}

/// Releases `invocations`; returns when all are released or `stop` turns true. Must be
/// called inside a tokio runtime (the invoker tasks are spawned on it).
pub async fn run(
    ctx: Arc<Ctx>,
    invocations: Box<dyn Iterator<Item = Invocation> + Send>,
    stop: watch::Receiver<bool>,
) -> ScheduleStats {
    let handle = tokio::runtime::Handle::current();
    let (done_tx, done_rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("faasload-sched".into())
        .spawn(move || {
            let st = release_all(&ctx, invocations, &stop, &handle);
            let _ = done_tx.send(st);
        });
    match spawned {
        Ok(_) => done_rx.await.unwrap_or_default(),
        Err(e) => {
            tracing::error!("cannot start the scheduler thread: {e}");
            ScheduleStats {
                released: 0,
                stopped_before: true,
            }
        }
    }
}

/// The scheduler thread's loop.
fn release_all(
    ctx: &Arc<Ctx>,
    invocations: Box<dyn Iterator<Item = Invocation> + Send>,
    stop: &watch::Receiver<bool>,
    handle: &tokio::runtime::Handle,
) -> ScheduleStats {
    timer::tighten_timer_slack();
    let mut st = ScheduleStats::default();
    let stopped = || *stop.borrow();
    for inv in invocations {
        let deadline = ctx.start_mono_ns.saturating_add(inv.at_ns);
        if stopped() || !timer::wait_until(deadline, stopped) {
            st.stopped_before = true;
            break;
        }
        // Bound the invocations spawned but not finished (memory); waiting here delays
        // the release, which the row records as send lag.
        let pending = match ctx.pending.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(tokio::sync::TryAcquireError::Closed) => break,
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                let mut stop = stop.clone();
                let got = handle.block_on(async {
                    tokio::select! {
                        p = ctx.pending.clone().acquire_owned() => p.ok(),
                        _ = stop.wait_for(|s| *s) => None,
                    }
                });
                match got {
                    Some(p) => p,
                    None => {
                        st.stopped_before = true;
                        break;
                    }
                }
            }
        };
        ctx.live.released.fetch_add(1, Ordering::Relaxed);
        st.released += 1;
        handle.spawn(invoker::invoke(ctx.clone(), inv, pending));
    }
    st
}
