//! The scheduler: walks the trace's invocations in intended-time order and releases each
//! one at `start + at_ns` (absolute deadlines: no drift), spawning one invoker task per
//! invocation. It never waits on I/O; the only thing that can hold it back is the bound
//! on pending invocations (memory), and then the delay shows as send lag, never as a
//! silent drop.
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;

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

/// Releases `invocations`; returns when all are released or `stop` turns true.
pub async fn run(
    ctx: Arc<Ctx>,
    invocations: Box<dyn Iterator<Item = Invocation> + Send>,
    mut stop: watch::Receiver<bool>,
) -> ScheduleStats {
    let mut st = ScheduleStats::default();
    for inv in invocations {
        if *stop.borrow() {
            st.stopped_before = true;
            break;
        }
        let deadline = ctx.start + Duration::from_nanos(inv.at_ns);
        tokio::select! {
            _ = timer::sleep_until(deadline) => {}
            _ = stop.changed() => { st.stopped_before = true; break; }
        }
        // Bound the invocations spawned but not finished (memory); waiting here delays
        // the release, which the row records as send lag.
        let pending = match ctx.pending.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => break,
        };
        ctx.live.released.fetch_add(1, Ordering::Relaxed);
        st.released += 1;
        tokio::spawn(invoker::invoke(ctx.clone(), inv, pending));
    }
    st
}
