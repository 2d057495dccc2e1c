//! One invocation: waits for an in-flight slot (client-side queueing, recorded), calls
//! the platform, then asks the monitor what the activation cost, and hands the complete
//! row to the recorder. Everything after the send runs off the scheduler's path.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::monitor_client::MonitorClient;
use crate::openwhisk::{Backend, Endpoint};
use faasload_results::store::{MonitorReading, RunRow};
use faasload_trace::{Invocation, Trace};
use faasload_os::clock::mono_ns;

/// Live counters (for the progress bar and the end summary).
#[derive(Debug, Default)]
pub struct Live {
    pub released: AtomicU64,
    pub in_flight: AtomicU64,
    pub answered: AtomicU64,
    pub failed: AtomicU64,
    pub recorded: AtomicU64,
    /// Set once the "no monitor" warning was printed.
    pub monitor_warned: AtomicBool,
}

/// Everything invoker tasks share.
pub struct Ctx {
    pub trace: Arc<Trace>,
    /// One endpoint per user (same order as `trace.users`).
    pub endpoints: Vec<Endpoint>,
    /// The platform (sender threads may use their own forks of it).
    pub backend: Arc<dyn Backend>,
    pub monitor: Option<MonitorClient>,
    /// Bound on invocations in flight on the network.
    pub in_flight: Arc<Semaphore>,
    /// Bound on invocations released but not recorded (memory).
    pub pending: Arc<Semaphore>,
    /// The common start (monotonic).
    pub start: tokio::time::Instant,
    /// The same start in CLOCK_MONOTONIC ns (the clock of `Outcome::sent_ns`).
    pub start_mono_ns: u64,
    /// The same start as epoch ms.
    pub start_epoch_ms: u64,
    pub rows: mpsc::Sender<RunRow>,
    pub live: Live,
}

/// Runs one invocation to its row. While it waits for an in-flight slot the task holds
/// only the invocation: the much larger state of the call is allocated once it has a
/// slot, so a schedule running far ahead of the platform costs little memory.
/// `backend` is the sender thread's own (see [`Backend::fork`]), else `ctx.backend`.
pub async fn invoke(
    ctx: Arc<Ctx>,
    backend: Arc<dyn Backend>,
    inv: Invocation,
    pending: OwnedSemaphorePermit,
) {
    let (slot, queue_ns) = match ctx.in_flight.clone().try_acquire_owned() {
        Ok(slot) => (Some(slot), 0),
        Err(_) => {
            let queued_at = mono_ns();
            let slot = ctx.in_flight.clone().acquire_owned().await;
            (slot.ok(), mono_ns().saturating_sub(queued_at))
        }
    };
    Box::pin(call(ctx, backend, inv, slot, queue_ns)).await;
    drop(pending);
}

/// The call, the monitor query and the row, with the slot held during the call.
async fn call(
    ctx: Arc<Ctx>,
    backend: Arc<dyn Backend>,
    inv: Invocation,
    slot: Option<OwnedSemaphorePermit>,
    queue_ns: u64,
) {
    let user = &ctx.trace.users[inv.user as usize];
    let function = &ctx.trace.functions[inv.function as usize];
    let ep = &ctx.endpoints[inv.user as usize];
    // The input object goes as the `object` parameter (the original action contract);
    // the map is copied only then.
    let with_input;
    let params = match &inv.input {
        Some(input) => {
            let mut p = inv.params.clone();
            p.insert("object".into(), Value::String(input.clone()));
            with_input = p;
            &with_input
        }
        None => &inv.params,
    };
    ctx.live.in_flight.fetch_add(1, Ordering::Relaxed);
    let out = backend.invoke(ep, &function.action, params).await;
    ctx.live.in_flight.fetch_sub(1, Ordering::Relaxed);
    drop(slot);
    ctx.live.answered.fetch_add(1, Ordering::Relaxed);
    if !out.class.has_record() || out.record.as_ref().is_some_and(|r| !r.success) {
        ctx.live.failed.fetch_add(1, Ordering::Relaxed);
    }
    let monitor = match (&ctx.monitor, &out.record) {
        (Some(m), Some(rec)) => {
            let r = m.reading_for(rec).await;
            if let Some(why) = &r.missing
                && !ctx.live.monitor_warned.swap(true, Ordering::Relaxed)
            {
                tracing::warn!("no resource measurements ({why}); the run goes on, rows say why");
            }
            r
        }
        (None, _) => MonitorReading {
            missing: Some("no monitor for this run".into()),
            ..Default::default()
        },
        (Some(_), None) => MonitorReading {
            missing: Some("no activation record".into()),
            ..Default::default()
        },
    };
    let rel = |t: u64| t.saturating_sub(ctx.start_mono_ns);
    let row = RunRow {
        seq: inv.seq,
        user: user.name.clone(),
        namespace: ep.namespace.clone(),
        function: function.name.clone(),
        action: function.action.clone(),
        input: inv.input,
        input_bytes: None,
        params: inv.params,
        intended_ns: inv.at_ns,
        sent_ns: Some(rel(out.sent_ns)),
        answered_ns: Some(rel(out.answered_ns)),
        queue_ns,
        run_start_epoch_ms: ctx.start_epoch_ms,
        class: out.class,
        http_status: out.http_status,
        error: out.error,
        polls: out.polls,
        retries: out.retries,
        record: out.record,
        monitor,
    };
    // The recorder is never allowed to lose a row: wait for room.
    if ctx.rows.send(row).await.is_err() {
        tracing::error!("recorder gone: row {} lost", inv.seq);
    }
}
