//! The batching writer: one task that receives [`RunRow`]s from a bounded channel and
//! writes them in multi-row inserts (runs, then their parameters and resources) inside
//! one transaction per batch. A batch is written when it is full, at the latest
//! `flush_every` after its oldest row arrived, and when the channel closes. With a spill
//! journal, a batch the store refuses (after retries) and every later row go to the
//! journal instead, and the channel stays open: no row is lost, none waits on a database
//! that is not coming back.
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde_json::Value;
use sqlx::{AssertSqlSafe, QueryBuilder};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};

use super::db::{self, Pool, Target, Val, big, on_pool, push_val, sql};
use super::journal::{JournalSpec, JournalWriter};
use super::schema::{RUN_COLUMNS, RunSource};
use super::{FunctionMeta, RunRow, StoreError};

/// Capacity of the writer's channel (rows): senders wait when the database falls this
/// far behind; nothing is dropped.
pub const CHANNEL_CAPACITY: usize = 8192;

/// Rows per batch: a full batch is written at once.
const MAX_BATCH: usize = 2000;
/// Rows per `INSERT INTO runs` statement (45 values each stays below every database's
/// placeholder limit).
const RUNS_PER_STATEMENT: usize = 500;
/// Rows per `INSERT INTO resources/parameters` statement.
const SMALL_ROWS_PER_STATEMENT: usize = 4000;
/// Attempts per batch before the writer gives up.
const ATTEMPTS: u32 = 3;

/// What the writer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// `runs` rows written.
    pub rows: u64,
    /// `parameters` rows written.
    pub parameters: u64,
    /// `resources` rows written.
    pub resources: u64,
    /// Transactions committed.
    pub batches: u64,
    /// Largest batch (rows).
    pub max_batch: u64,
    /// Batches that failed and were retried successfully.
    pub retried: u64,
    /// Rows the store did not take, written to the spill journal instead.
    pub spilled: u64,
    /// Rows neither the store nor the journal took.
    pub lost: u64,
}

impl std::fmt::Display for WriterStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} runs, {} parameters, {} resource samples in {} transactions",
            self.rows, self.parameters, self.resources, self.batches
        )?;
        if self.retried > 0 {
            write!(f, " ({} retried)", self.retried)?;
        }
        Ok(())
    }
}

/// How a writer with a spill journal ended: its statistics, and, when the store stopped
/// taking rows, why and where the rest went.
#[derive(Debug)]
pub struct WriterEnd {
    pub stats: WriterStats,
    /// Why the store stopped taking rows (None: every row is stored).
    pub error: Option<StoreError>,
    /// The spill journal, when one was written.
    pub journal: Option<std::path::PathBuf>,
    /// Why rows are lost: the journal could not be written (None when none is lost).
    pub journal_error: Option<String>,
}

/// Where the rows the store does not take go.
enum Spill {
    /// Nowhere: the writer stops (the channel is closed, so senders see it).
    Off,
    /// To this journal, created on the first refused batch.
    To(JournalSpec),
    /// To this open journal.
    Open(JournalWriter),
    /// The journal could not be written either: rows are counted as lost.
    Broken(String),
}

impl Spill {
    /// Writes `rows` to the journal (opened with `reason` if it is not yet), durably;
    /// counts them as spilled, or as lost when the journal cannot take them.
    fn take(&mut self, rows: &[RunRow], reason: &str, st: &mut WriterStats) {
        if let Spill::To(spec) = self {
            *self = match JournalWriter::create(spec, reason) {
                Ok(w) => {
                    tracing::error!(
                        "store: {reason}; this load's rows now go to the spill journal {} \
                         (load it later with `faasload store load-journal`)",
                        w.path().display()
                    );
                    Spill::Open(w)
                }
                Err(e) => Spill::Broken(e),
            };
        }
        let n = rows.len() as u64;
        match self {
            Spill::Open(w) => match w.append(rows).and_then(|()| w.sync()) {
                Ok(()) => st.spilled += n,
                Err(e) => {
                    tracing::error!("{e}: {n} rows lost");
                    st.lost += n;
                    *self = Spill::Broken(e);
                }
            },
            Spill::Broken(_) => st.lost += n,
            Spill::Off | Spill::To(_) => {}
        }
    }
}

/// The writer task of [`Store::writer`](super::Store::writer) and
/// [`Store::writer_spilling`](super::Store::writer_spilling): connects to `target` and
/// runs until the channel closes (every sender dropped) and the last batch is written.
/// Without a journal it stops at the first batch that fails [`ATTEMPTS`] times (or when
/// it cannot connect); with one, that batch and every later row go to the journal.
pub(super) async fn run(
    target: Target,
    load_id: i64,
    flush_every: Duration,
    mut rx: mpsc::Receiver<RunRow>,
    journal: Option<JournalSpec>,
) -> WriterEnd {
    let mut st = WriterStats::default();
    let mut spill = match journal {
        Some(j) => Spill::To(j),
        None => Spill::Off,
    };
    let mut error: Option<StoreError> = None;
    let pool = match Pool::open(&target).await {
        Ok(p) => Some(p),
        Err(e) => {
            error = Some(e);
            None
        }
    };
    if error.is_some() && matches!(spill, Spill::Off) {
        // No store and no journal: senders learn it at once.
        rx.close();
        while rx.try_recv().is_ok() {
            st.lost += 1;
        }
        return WriterEnd {
            stats: st,
            error,
            journal: None,
            journal_error: None,
        };
    }
    let mut functions: HashMap<String, i64> = HashMap::new();
    let mut buf: Vec<RunRow> = Vec::with_capacity(MAX_BATCH);
    let mut deadline: Option<Instant> = None;
    loop {
        // At least 1: a full batch was flushed at the end of the previous turn.
        let room = MAX_BATCH.saturating_sub(buf.len()).max(1);
        let closed = tokio::select! {
            // 0 only once the channel is closed and empty (room > 0).
            n = rx.recv_many(&mut buf, room) => {
                if n > 0 && deadline.is_none() {
                    deadline = Some(Instant::now() + flush_every);
                }
                n == 0
            }
            _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => false,
        };
        let due = deadline.is_some_and(|d| Instant::now() >= d);
        if !buf.is_empty() && (closed || due || buf.len() >= MAX_BATCH) {
            if let (Some(p), None) = (&pool, &error)
                && let Err(e) = flush(p, load_id, &mut functions, &buf, &mut st).await
            {
                error = Some(e);
            }
            if let Some(e) = &error {
                if matches!(spill, Spill::Off) {
                    // No journal: stop, counting what is not stored.
                    rx.close();
                    let mut unwritten = buf.len() as u64;
                    while rx.try_recv().is_ok() {
                        unwritten += 1;
                    }
                    st.lost += unwritten;
                    break;
                }
                let reason = e.to_string();
                spill.take(&buf, &reason, &mut st);
            }
            buf.clear();
            deadline = None;
        }
        if closed {
            break;
        }
    }
    if let Some(p) = pool {
        p.close().await;
    }
    let (journal, journal_error) = match spill {
        Spill::Open(w) => (Some(w.path().to_path_buf()), None),
        Spill::Broken(e) => (None, Some(e)),
        Spill::Off | Spill::To(_) => (None, None),
    };
    WriterEnd {
        stats: st,
        error,
        journal,
        journal_error,
    }
}

/// Writes one batch, retrying with back-off.
pub(super) async fn flush(
    pool: &Pool,
    load_id: i64,
    functions: &mut HashMap<String, i64>,
    batch: &[RunRow],
    st: &mut WriterStats,
) -> Result<(), StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match write_batch(pool, load_id, functions, batch).await {
            Ok((params, resources)) => {
                st.rows += batch.len() as u64;
                st.parameters += params;
                st.resources += resources;
                st.batches += 1;
                st.max_batch = st.max_batch.max(batch.len() as u64);
                if attempt > 1 {
                    st.retried += 1;
                }
                return Ok(());
            }
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!("store: writing {} rows failed, retrying: {e}", batch.len());
                sleep(Duration::from_millis(200 * 4u64.pow(attempt - 1))).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The id of function `f` in `functions`, created if missing; the other columns are
/// updated when `f` gives them.
pub(super) async fn upsert_function(pool: &Pool, f: &FunctionMeta) -> Result<i64, StoreError> {
    let id = function_id(pool, &f.name, f.runtime.as_deref()).await?;
    let d = pool.dialect();
    let q = sql(
        d,
        "UPDATE functions SET runtime = COALESCE(?, runtime), image = COALESCE(?, image), \
         parameters = COALESCE(?, parameters), input_kind = COALESCE(?, input_kind) \
         WHERE id = ?",
    );
    on_pool!(pool, p => sqlx::query(AssertSqlSafe(q))
        .bind(f.runtime.clone())
        .bind(f.image.clone())
        .bind(f.parameters.clone())
        .bind(f.input_kind.clone())
        .bind(id)
        .execute(p)
        .await
        .map(|_| ()))
    .map_err(|e| StoreError::db(format!("updating function {:?}", f.name), e))?;
    Ok(id)
}

/// The id of the function named `name`, inserted (with `runtime`) if missing.
async fn function_id(pool: &Pool, name: &str, runtime: Option<&str>) -> Result<i64, StoreError> {
    let d = pool.dialect();
    let select = sql(d, "SELECT id FROM functions WHERE name = ?");
    let insert = sql(d, "INSERT INTO functions (name, runtime) VALUES (?, ?)");
    let what = || format!("looking up function {name:?}");
    let mut insert_error = None;
    for _ in 0..2 {
        let found: Option<i64> = on_pool!(pool, p => {
            match sqlx::query(AssertSqlSafe(select.clone()))
                .bind(name)
                .fetch_optional(p)
                .await
                .map_err(|e| StoreError::db(what(), e))?
            {
                Some(r) => Some(db::get(&r, 0, "functions.id")?),
                None => None,
            }
        });
        if let Some(id) = found {
            return Ok(id);
        }
        // Another writer may insert it first (UNIQUE name): then the select finds it.
        let ins = on_pool!(pool, p => sqlx::query(AssertSqlSafe(insert.clone()))
            .bind(name)
            .bind(runtime)
            .execute(p)
            .await
            .map(|_| ()));
        if let Err(e) = ins {
            tracing::debug!("store: inserting function {name:?}: {e}");
            insert_error = Some(e);
        }
    }
    // Neither found nor inserted: the database's own reason (read-only, full, ...).
    Err(match insert_error {
        Some(e) => StoreError::db(format!("inserting function {name:?} into `functions`"), e),
        None => StoreError::Invalid(format!(
            "function {name:?} was inserted into `functions` but cannot be found"
        )),
    })
}

/// The values of one `runs` row, in [`RUN_COLUMNS`] order.
pub(super) fn run_values(run: &RunRow, load_id: i64, function_id: i64) -> Vec<Val> {
    let src = RunSource {
        run,
        load_id,
        function_id,
    };
    RUN_COLUMNS.iter().map(|c| (c.value)(&src)).collect()
}

/// A parameter's value as text: strings as they are, anything else as JSON.
pub(super) fn param_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The `resources` rows of a run: (timestamp_ms, memory_B, proc_mCPU, cpu_ns), with
/// `proc_mCPU` the CPU since the first sample with a CPU value, in ms of CPU.
pub(super) fn resource_values(r: &RunRow) -> Vec<[Option<i64>; 4]> {
    let first_cpu = r.monitor.samples.iter().find_map(|s| s.2);
    r.monitor
        .samples
        .iter()
        .map(|&(ts, mem, cpu)| {
            let mcpu = match (cpu, first_cpu) {
                (Some(c), Some(f)) => Some(big(c.saturating_sub(f) / 1_000_000)),
                _ => None,
            };
            [Some(big(ts)), mem.map(big), mcpu, cpu.map(big)]
        })
        .collect()
}

/// Writes `batch` in one transaction; returns (parameters, resources) rows written.
async fn write_batch(
    pool: &Pool,
    load_id: i64,
    functions: &mut HashMap<String, i64>,
    batch: &[RunRow],
) -> Result<(u64, u64), StoreError> {
    // Function ids first (outside the transaction: they are shared by loads).
    for r in batch {
        if !functions.contains_key(&r.function) {
            let runtime = r.record.as_ref().and_then(|x| x.kind.as_deref());
            let id = function_id(pool, &r.function, runtime).await?;
            functions.insert(r.function.clone(), id);
        }
    }
    let values: Vec<Vec<Val>> = batch
        .iter()
        .map(|r| run_values(r, load_id, functions[&r.function]))
        .collect();
    let names: Vec<&str> = RUN_COLUMNS.iter().map(|c| c.name).collect();
    let head = format!("INSERT INTO runs ({}) ", names.join(", "));
    let n = batch.len();
    on_pool!(pool, p => {
        let mut tx = p
            .begin()
            .await
            .map_err(|e| StoreError::db("starting a store transaction", e))?;
        // Insert runs, learning each one's id (matched by seq, in order for repeats).
        let mut ids_by_seq: HashMap<i64, VecDeque<i64>> = HashMap::with_capacity(n);
        for chunk in values.chunks(RUNS_PER_STATEMENT) {
            let mut qb = QueryBuilder::new(head.clone());
            qb.push_values(chunk.iter().cloned(), |mut b, vals| {
                for v in vals {
                    push_val!(b, v);
                }
            });
            qb.push(" RETURNING id, seq");
            let rows = qb
                .build()
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| StoreError::db(format!("inserting {} runs", chunk.len()), e))?;
            for row in &rows {
                let id: i64 = db::get(row, 0, "runs.id")?;
                let seq: i64 = db::get(row, 1, "runs.seq")?;
                ids_by_seq.entry(seq).or_default().push_back(id);
            }
        }
        let mut run_ids = Vec::with_capacity(n);
        for r in batch {
            let id = ids_by_seq
                .get_mut(&big(r.seq))
                .and_then(VecDeque::pop_front)
                .ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "the database returned no id for run seq {}",
                        r.seq
                    ))
                })?;
            run_ids.push(id);
        }
        // Parameters.
        let params: Vec<(i64, String, String)> = batch
            .iter()
            .zip(&run_ids)
            .flat_map(|(r, &id)| r.params.iter().map(move |(k, v)| (id, k.clone(), param_text(v))))
            .collect();
        for chunk in params.chunks(SMALL_ROWS_PER_STATEMENT) {
            let mut qb = QueryBuilder::new("INSERT INTO parameters (run, name, value) ");
            qb.push_values(chunk.iter().cloned(), |mut b, (id, k, v)| {
                b.push_bind(id);
                b.push_bind(k);
                b.push_bind(v);
            });
            qb.build()
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::db(format!("inserting {} parameters", chunk.len()), e))?;
        }
        // Resources (monitor samples).
        let res: Vec<(i64, [Option<i64>; 4])> = batch
            .iter()
            .zip(&run_ids)
            .flat_map(|(r, &id)| resource_values(r).into_iter().map(move |v| (id, v)))
            .collect();
        for chunk in res.chunks(SMALL_ROWS_PER_STATEMENT) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO resources (run, timestamp_ms, memory_B, proc_mCPU, cpu_ns) ",
            );
            qb.push_values(chunk.iter().copied(), |mut b, (id, [ts, mem, mcpu, cpu])| {
                b.push_bind(id);
                b.push_bind(ts);
                b.push_bind(mem);
                b.push_bind(mcpu);
                b.push_bind(cpu);
            });
            qb.build()
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::db(format!("inserting {} resources", chunk.len()), e))?;
        }
        tx.commit()
            .await
            .map_err(|e| StoreError::db(format!("committing {n} runs"), e))?;
        Ok::<_, StoreError>((params.len() as u64, res.len() as u64))
    })
}
