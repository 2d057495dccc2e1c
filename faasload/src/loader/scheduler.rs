//! The scheduler: a dedicated thread that walks the trace's invocations in intended-time
//! order and releases each one at `start + at_ns` (absolute deadlines on CLOCK_MONOTONIC:
//! no drift), spawning one invoker task per invocation on the runtime. It sleeps with the
//! kernel's high-resolution timer (see [`super::timer`]) instead of tokio's 1 ms wheel,
//! never spins, and never waits on I/O; the only thing that can hold it back is the bound
//! on pending invocations (memory), and then the delay shows as send lag, never as a
//! silent drop.
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch};

use super::invoker::{self, Ctx};
use super::timer;
use crate::trace::Invocation;
use crate::util::clock::mono_ns;

/// Longest single sleep: a stop request is seen at least this often while the next
/// invocation is far away.
const STOP_CHECK_NS: u64 = 50_000_000;

/// What the scheduler did.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScheduleStats {
    /// Invocations released.
    pub released: u64,
    /// Invocations not released because the run was stopped.
    pub stopped_before: bool,
}

/// Starts the scheduler thread; its stats arrive on the returned channel when every
/// invocation is released or `stop` turns true. Invoker tasks run on `runtime`.
pub fn spawn(
    ctx: Arc<Ctx>,
    invocations: Box<dyn Iterator<Item = Invocation> + Send>,
    stop: watch::Receiver<bool>,
    runtime: Handle,
) -> std::io::Result<oneshot::Receiver<ScheduleStats>> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("faasload-sched".into())
        .spawn(move || {
            let st = run(&ctx, invocations, stop, &runtime);
            let _ = tx.send(st);
        })?;
    Ok(rx)
}

fn run(
    ctx: &Arc<Ctx>,
    invocations: Box<dyn Iterator<Item = Invocation> + Send>,
    mut stop: watch::Receiver<bool>,
    runtime: &Handle,
) -> ScheduleStats {
    timer::precise_wakeups();
    let stopped = |s: &watch::Receiver<bool>| *s.borrow();
    let mut st = ScheduleStats::default();
    'invocations: for inv in invocations {
        let deadline = ctx.start_mono_ns + inv.at_ns;
        loop {
            if stopped(&stop) {
                st.stopped_before = true;
                break 'invocations;
            }
            let now = mono_ns();
            if now >= deadline {
                break;
            }
            timer::sleep_until_ns(deadline.min(now + STOP_CHECK_NS));
        }
        // Bound the invocations spawned but not finished (memory); waiting here delays
        // the release, which the row records as send lag.
        let pending = match ctx.pending.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                let wait = ctx.pending.clone().acquire_owned();
                let got = runtime.block_on(async {
                    tokio::select! {
                        p = wait => p.ok(),
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
        runtime.spawn(invoker::invoke(ctx.clone(), inv, pending));
    }
    st
}
