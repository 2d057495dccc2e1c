//! One generation session: launches the planned runs from a position with the
//! configured pacing (one every N ms, or at most K in flight), each through the loader's
//! invoker (platform call, monitor reading, complete row). A commit task writes the rows
//! to the store as they complete, advances the committed watermark (every run before it
//! is in the store) and writes a checkpoint every N runs or T seconds; the caller writes
//! the last one. SIGINT/SIGTERM stop the launches and let the runs in flight finish.
//! Neither the store nor the checkpoints ever sit on the launch path.
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

use super::checkpoint::{self, Checkpoint, LastRun};
use super::config::{ColdPolicy, Pacing};
use super::plan::Planner;
use faasload_loader::MonitorClient;
pub use faasload_loader::openwhisk::{Backend, Endpoint, OutcomeClass};
use faasload_loader::{Ctx, Live};
use faasload_os::clock::{epoch_ns, mono_ns};
use faasload_results::store::{RunRow, Store};
use faasload_trace::{Invocation, Trace};

/// Bound on runs launched but not committed under interval pacing (memory).
const MAX_PENDING: usize = 10_000;

/// What a session works with.
pub struct Session {
    /// One user; one function per variant (action `<function>_<memory>`).
    pub trace: Arc<Trace>,
    /// Variant name -> index into `trace.functions`.
    pub variants: HashMap<String, u32>,
    pub endpoints: Vec<Endpoint>,
    pub backend: Arc<dyn Backend>,
    pub monitor: Option<PathBuf>,
    pub store: Store,
    pub load_id: i64,
    /// Input object name -> size in bytes (inputs the object store holds).
    pub input_bytes: HashMap<String, u64>,
    pub state_dir: PathBuf,
    /// The checkpoint fields that do not change during the generation.
    pub template: Checkpoint,
    /// The last committed run before this session (from the checkpoint resumed).
    pub last: Option<LastRun>,
}

/// How a session runs.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    pub pacing: Pacing,
    pub cold: ColdPolicy,
    /// Checkpoint after this many newly committed runs...
    pub checkpoint_runs: u64,
    /// ... or this long after the previous checkpoint, whichever comes first.
    pub checkpoint_every: Duration,
    /// Runs in flight at once under interval pacing.
    pub max_in_flight: usize,
    /// After SIGINT/SIGTERM, how long runs in flight may still finish.
    pub grace: Duration,
    pub bar: Option<indicatif::ProgressBar>,
}

/// How a session ended.
#[derive(Debug)]
pub struct SessionEnd {
    /// The first run not committed (every run before it is in the store).
    pub next_seq: u64,
    pub last: Option<LastRun>,
    /// Runs committed by this session.
    pub committed: u64,
    /// Failed runs among them (recorded as failed, with their reason).
    pub failed: u64,
    pub interrupted: bool,
    /// Runs still in flight when the grace period ran out (re-run on resume).
    pub abandoned: u64,
    /// Why committing stopped (a store write or a checkpoint failed), if it did.
    pub store_error: Option<anyhow::Error>,
}

/// The commit side: the watermark, and the checkpoints written as it advances.
struct Commit {
    store: Store,
    load_id: i64,
    input_bytes: HashMap<String, u64>,
    /// (variant, stream state after the run) of every launched, uncommitted run.
    marks: Arc<Mutex<HashMap<u64, (String, String)>>>,
    state_dir: PathBuf,
    template: Checkpoint,
    functions: HashMap<String, i64>,
    next: u64,
    last: Option<LastRun>,
    /// Committed runs at or after the watermark.
    done: BTreeSet<u64>,
    committed: u64,
    failed: u64,
    ck_next: u64,
    ck_at: Instant,
    ck_runs: u64,
    ck_every: Duration,
    bar: Option<indicatif::ProgressBar>,
}

impl Commit {
    async fn commit(&mut self, rows: &mut [RunRow]) -> Result<()> {
        for r in rows.iter_mut() {
            r.input_bytes = r
                .input
                .as_ref()
                .and_then(|i| self.input_bytes.get(i).copied());
        }
        self.store
            .write_now(self.load_id, &mut self.functions, rows)
            .await?;
        self.committed += rows.len() as u64;
        self.failed += rows
            .iter()
            .filter(|r| {
                r.class != OutcomeClass::Success || r.record.as_ref().is_some_and(|x| !x.success)
            })
            .count() as u64;
        self.done.extend(rows.iter().map(|r| r.seq));
        if let Ok(mut marks) = self.marks.lock() {
            while self.done.remove(&self.next) {
                if let Some((variant, rng)) = marks.remove(&self.next) {
                    self.last = Some(LastRun {
                        seq: self.next,
                        variant,
                        rng,
                    });
                }
                self.next += 1;
            }
        }
        if let Some(b) = &self.bar {
            b.set_position(self.next);
            b.set_message(format!("failed {}", self.failed));
        }
        if self.next >= self.ck_next + self.ck_runs {
            self.checkpoint("runs")?;
        }
        Ok(())
    }

    fn checkpoint(&mut self, reason: &str) -> Result<PathBuf> {
        let c = Checkpoint {
            next_seq: self.next,
            last: self.last.clone(),
            written_epoch_ms: epoch_ns() / 1_000_000,
            reason: reason.to_string(),
            ..self.template.clone()
        };
        let p = checkpoint::write(&self.state_dir, &c)?;
        self.ck_next = self.next;
        self.ck_at = Instant::now();
        Ok(p)
    }

    /// Receives rows until every sender is gone or `finish` is set (then takes what is
    /// already queued); a store failure ends it early, after raising `stop`.
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<RunRow>,
        mut finish: watch::Receiver<bool>,
        stop: Arc<watch::Sender<bool>>,
    ) -> (Commit, Option<anyhow::Error>) {
        let mut buf = Vec::with_capacity(64);
        loop {
            let due = self.ck_at + self.ck_every;
            let got = tokio::select! {
                n = rx.recv_many(&mut buf, 64) => n,
                _ = finish.changed() => {
                    while let Ok(r) = rx.try_recv() {
                        buf.push(r);
                    }
                    let n = buf.len();
                    if n > 0 && let Err(e) = self.commit(&mut buf).await {
                        let _ = stop.send(true);
                        return (self, Some(e));
                    }
                    return (self, None);
                }
                _ = tokio::time::sleep_until(due) => {
                    if self.next > self.ck_next && let Err(e) = self.checkpoint("time") {
                        let _ = stop.send(true);
                        return (self, Some(e));
                    }
                    self.ck_at = Instant::now();
                    continue;
                }
            };
            if got == 0 {
                return (self, None);
            }
            if let Err(e) = self.commit(&mut buf).await {
                let _ = stop.send(true);
                return (self, Some(e));
            }
            buf.clear();
        }
    }
}

/// Runs the session from `planner`'s position to the end of the plan, or until a signal
/// or a store failure stops it.
pub async fn run(s: Session, mut planner: Planner, opts: SessionOptions) -> Result<SessionEnd> {
    let start_seq = planner.next_seq();
    let (row_tx, row_rx) = mpsc::channel::<RunRow>(1024);
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let (finish_tx, finish_rx) = watch::channel(false);
    let marks = Arc::new(Mutex::new(HashMap::new()));
    let (pending_cap, in_flight_cap) = match opts.pacing {
        Pacing::MaxConcurrent(k) => (k as usize, k as usize),
        Pacing::IntervalMs(_) => (MAX_PENDING, opts.max_in_flight.max(1)),
    };
    let (now, now_ns) = (Instant::now(), mono_ns());
    let ctx = Arc::new(Ctx {
        trace: s.trace.clone(),
        endpoints: s.endpoints,
        backend: s.backend,
        monitor: s
            .monitor
            .map(|p| MonitorClient::new(p, Duration::from_secs(2), true)),
        in_flight: Arc::new(Semaphore::new(in_flight_cap)),
        pending: Arc::new(Semaphore::new(pending_cap)),
        start: now,
        start_mono_ns: now_ns,
        start_epoch_ms: epoch_ns() / 1_000_000,
        rows: row_tx,
        live: Live::default(),
    });
    let commit = Commit {
        store: s.store,
        load_id: s.load_id,
        input_bytes: s.input_bytes,
        marks: marks.clone(),
        state_dir: s.state_dir,
        template: s.template,
        functions: HashMap::new(),
        next: start_seq,
        last: s.last,
        done: BTreeSet::new(),
        committed: 0,
        failed: 0,
        ck_next: start_seq,
        ck_at: Instant::now(),
        ck_runs: opts.checkpoint_runs.max(1),
        ck_every: opts.checkpoint_every,
        bar: opts.bar.clone(),
    };
    let committer = tokio::spawn(commit.run(row_rx, finish_rx, stop_tx.clone()));

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut interrupted = false;
    let mut launched: u64 = 0;
    'launch: while !*stop_rx.borrow() {
        let Some(run) = planner.next() else { break };
        let rng = planner.rng_state().unwrap_or_default();
        if let Pacing::IntervalMs(ms) = opts.pacing {
            let due = ctx.start + Duration::from_millis(ms.saturating_mul(launched));
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = term.recv() => { interrupted = true; break 'launch; }
                _ = int.recv() => { interrupted = true; break 'launch; }
                _ = stop_rx.changed() => break 'launch,
            }
        }
        let permit = tokio::select! {
            p = ctx.pending.clone().acquire_owned() => p?,
            _ = term.recv() => { interrupted = true; break 'launch; }
            _ = int.recv() => { interrupted = true; break 'launch; }
            _ = stop_rx.changed() => break 'launch,
        };
        let Some(&function) = s.variants.get(&run.variant) else {
            anyhow::bail!("variant {} has no deployed action", run.variant);
        };
        if let Ok(mut m) = marks.lock() {
            m.insert(run.seq, (run.variant.clone(), rng));
        }
        let at_ns = match opts.pacing {
            Pacing::IntervalMs(ms) => ms.saturating_mul(launched).saturating_mul(1_000_000),
            Pacing::MaxConcurrent(_) => mono_ns().saturating_sub(now_ns),
        };
        let inv = Invocation {
            seq: run.seq,
            at_ns,
            user: 0,
            function,
            input: run.input,
            params: run.params,
        };
        let c = ctx.clone();
        let cold = opts.cold == ColdPolicy::Cold;
        tokio::spawn(async move {
            if cold {
                // A new revision of the action: OpenWhisk starts it in a new container.
                let f = &c.trace.functions[inv.function as usize];
                if let Err(e) = c
                    .backend
                    .deploy(&c.endpoints[0], &c.trace.users[0], f)
                    .await
                {
                    tracing::warn!("redeploying {} for a cold run: {e:#}", f.action);
                }
            }
            let backend = c.backend.clone();
            faasload_loader::invoke(c, backend, inv, permit).await;
        });
        launched += 1;
    }
    if interrupted {
        tracing::warn!(
            "stopping: no new runs; waiting up to {:?} for the {} in flight",
            opts.grace,
            pending_cap - ctx.pending.available_permits()
        );
    }
    // Every launched run recorded (all pending permits back), or the grace period over.
    let all = pending_cap as u32;
    let wait_all = ctx.pending.clone().acquire_many_owned(all);
    tokio::pin!(wait_all);
    let mut deadline = interrupted.then(|| Instant::now() + opts.grace);
    let mut abandoned = 0;
    loop {
        let until = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = &mut wait_all => break,
            _ = tokio::time::sleep_until(until), if deadline.is_some() => {
                abandoned = (pending_cap - ctx.pending.available_permits()) as u64;
                break;
            }
            _ = term.recv(), if deadline.is_none() => {
                interrupted = true;
                deadline = Some(Instant::now() + opts.grace);
            }
            _ = int.recv(), if deadline.is_none() => {
                interrupted = true;
                deadline = Some(Instant::now() + opts.grace);
            }
        }
    }
    drop(ctx);
    // With runs abandoned, their rows never come: take what is queued and stop.
    if abandoned > 0 || *stop_rx.borrow() {
        let _ = finish_tx.send(true);
    }
    let (commit, store_error) = committer.await?;
    Ok(SessionEnd {
        next_seq: commit.next,
        last: commit.last.clone(),
        committed: commit.committed,
        failed: commit.failed,
        interrupted,
        abandoned,
        store_error,
    })
}
