//! The results store: SQLite by default, PostgreSQL and MariaDB by URL, with the original
//! FaaSLoad tables (`runs`, `resources`, `parameters`, `functions`, same columns) extended
//! with what faasload adds (a `loads` table and new `runs` columns; see [`schema`]).
//! Rows arrive through a channel to a batching writer; the send path never touches the
//! database.
//!
//! ```no_run
//! # async fn f(rows: Vec<faasload_results::store::RunRow>) -> Result<(), faasload_results::store::StoreError> {
//! use faasload_results::store::{LoadMeta, LoadStatus, Store};
//! let store = Store::open("sqlite://results.db").await?;
//! let load = store.begin_load(&LoadMeta::new("trace.yaml", 1_700_000_000_000)).await?;
//! let (tx, writer) = store.writer(load, std::time::Duration::from_secs(1));
//! for r in rows {
//!     tx.send(r).await.ok();
//! }
//! drop(tx);
//! let stats = writer.await.expect("writer task")?;
//! store.end_load(load, LoadStatus::Completed).await?;
//! # Ok(()) }
//! ```
pub mod db;
pub mod journal;
mod listing;
mod read;
mod row;
pub mod schema;
mod writer;

#[cfg(test)]
mod tests;

pub use db::{Access, redact};
pub use journal::{JournalEnd, JournalHeader, JournalSpec};
pub use listing::{format_epoch_ms, render_loads};
pub use read::{LoadInfo, LoadState, ResourceRow, StoredRow};
pub use row::{MonitorReading, RunRow};
pub use schema::Dialect;
pub use writer::{CHANNEL_CAPACITY, WriterEnd, WriterStats};

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use db::{Pool, Target, on_pool, sql};

/// What went wrong in the store, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no supported database.
    #[error("store URL {url}: {why}")]
    Url { url: String, why: String },
    /// The database refused or failed (its own message follows `what`; it is not
    /// chained as a source, so that a chain printed whole says it once).
    #[error("{what}: {error}")]
    Db { what: String, error: sqlx::Error },
    /// The arguments or the stored data are not what they should be.
    #[error("{0}")]
    Invalid(String),
    /// The writer gave up after retries; rows still buffered or queued are not stored.
    #[error(
        "store writer stopped after {written} rows ({unwritten} buffered rows not stored): {error}"
    )]
    Writer {
        written: u64,
        unwritten: u64,
        error: Box<StoreError>,
    },
}

impl StoreError {
    pub(crate) fn db(what: impl Into<String>, source: sqlx::Error) -> StoreError {
        StoreError::Db {
            what: what.into(),
            error: source,
        }
    }
}

/// How often a running loader records its heartbeat in `loads.heartbeat_epoch_ms`.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);

/// A `running` load whose heartbeat is older than this is `crashed` (its loader is
/// gone): five heartbeats missed.
pub const HEARTBEAT_STALE: Duration = Duration::from_secs(10);

/// State of a load (a replay), as stored in `loads.status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadStatus {
    /// Started and not ended (or the loader died without ending it).
    Running,
    /// Every planned invocation was made and recorded.
    Completed,
    /// Stopped early (SIGINT/SIGTERM); rows recorded up to then are kept.
    Interrupted,
}

impl LoadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LoadStatus::Running => "running",
            LoadStatus::Completed => "completed",
            LoadStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<LoadStatus> {
        match s {
            "running" => Some(LoadStatus::Running),
            "completed" => Some(LoadStatus::Completed),
            "interrupted" => Some(LoadStatus::Interrupted),
            _ => None,
        }
    }
}

/// A function, for the original `functions` table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionMeta {
    /// Function name (as in the trace; `runs.function` points to it).
    pub name: String,
    /// OpenWhisk kind, e.g. `python:3`.
    pub runtime: Option<String>,
    /// Docker image (blackbox actions).
    pub image: Option<String>,
    /// Parameter specification, YAML (as the original stored it).
    pub parameters: Option<String>,
    /// `image`, `audio`, `video`, ...
    pub input_kind: Option<String>,
}

/// What is known of a load when it starts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadMeta {
    /// Where the trace came from (file or directory path, `synth ...`).
    pub origin: String,
    /// The run seed, if the trace has random parts.
    pub seed: Option<u64>,
    /// Epoch ms of the load's start (the origin of every `RunRow` instant).
    pub start_epoch_ms: u64,
    /// Number of invocations planned, if known.
    pub planned: Option<u64>,
    /// Functions of the trace (created or updated in `functions`).
    pub functions: Vec<FunctionMeta>,
}

impl LoadMeta {
    /// A load from `origin` started at `start_epoch_ms`, nothing else known.
    pub fn new(origin: impl Into<String>, start_epoch_ms: u64) -> LoadMeta {
        LoadMeta {
            origin: origin.into(),
            start_epoch_ms,
            ..LoadMeta::default()
        }
    }
}

/// An open results store.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    /// Where it lives (the batching writer opens its own connections to it).
    target: Target,
    /// Columns faasload adds that this database lacks (a store opened read-only that an
    /// older faasload or the original FaaSLoad made): read as NULL.
    absent: Arc<Vec<(&'static str, &'static str)>>,
}

impl Store {
    /// Opens (creating the file for SQLite) and creates missing tables. URLs:
    /// `sqlite://FILE` (or a bare file path), `postgres://user:pw@host/db`,
    /// `mysql://user:pw@host/db` or `mariadb://...`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, Access::ReadWrite).await
    }

    /// Opens for reading only (`report`, `loads`, `export`): nothing is created or
    /// changed; a SQLite file that does not exist is an error, not a new database.
    pub async fn open_read(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, Access::ReadOnly).await
    }

    /// Opens with `access` (see [`Access`]).
    pub async fn open_with(url: &str, access: Access) -> Result<Store, StoreError> {
        let target = Target::parse(url)?;
        let pool = Pool::open_with(&target, access).await?;
        let absent = match access {
            Access::ReadWrite => Vec::new(),
            Access::ReadOnly => pool.absent_columns().await?,
        };
        Ok(Store {
            pool,
            target,
            absent: Arc::new(absent),
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.pool.dialect()
    }

    /// Records the start of a load (status `running`) and its functions; returns its id.
    pub async fn begin_load(&self, meta: &LoadMeta) -> Result<i64, StoreError> {
        for f in &meta.functions {
            writer::upsert_function(&self.pool, f).await?;
        }
        let d = self.dialect();
        let q = sql(
            d,
            "INSERT INTO loads (origin, seed, start_epoch_ms, status, planned, heartbeat_epoch_ms) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        );
        let seed = meta.seed.map(|s| s.to_string());
        let start = db::big(meta.start_epoch_ms);
        let planned = meta.planned.map(db::big);
        let status = LoadStatus::Running.as_str();
        let now = db::big(faasload_os::clock::epoch_ns() / 1_000_000);
        let id: i64 = on_pool!(&self.pool, p => {
            let row = sqlx::query(sqlx::AssertSqlSafe(q))
                .bind(&meta.origin)
                .bind(seed)
                .bind(start)
                .bind(status)
                .bind(planned)
                .bind(now)
                .fetch_one(p)
                .await
                .map_err(|e| StoreError::db("recording the load's start", e))?;
            db::get(&row, 0, "the new load's id")?
        });
        Ok(id)
    }

    /// A batching writer for `load_id`: rows sent on the returned channel (bounded, see
    /// [`CHANNEL_CAPACITY`]) are written in multi-row inserts inside one transaction per
    /// batch, at the latest `flush_every` after the oldest buffered row arrived, and all
    /// of them once every sender is dropped. The task ends with its statistics, or with
    /// an error once a batch failed three times (the channel is then closed, so senders
    /// see it). Must be called from within a tokio runtime.
    ///
    /// The writer runs on a thread of its own, at a lower scheduling priority (nice +5),
    /// with its own small runtime and its own connections: building and writing batches
    /// is bursty CPU work that must never hold up a runtime worker about to send an
    /// invocation (on a 2-core machine it made the send lag's tail milliseconds long).
    pub fn writer(
        &self,
        load_id: i64,
        flush_every: Duration,
    ) -> (
        mpsc::Sender<RunRow>,
        JoinHandle<Result<WriterStats, StoreError>>,
    ) {
        let (tx, task) = self.spawn_writer(load_id, flush_every, None);
        let task = tokio::spawn(async move {
            let end = task
                .await
                .map_err(|e| StoreError::Invalid(format!("the store writer failed: {e}")))?;
            match end.error {
                None => Ok(end.stats),
                Some(e) => Err(StoreError::Writer {
                    written: end.stats.rows,
                    unwritten: end.stats.lost,
                    error: Box::new(e),
                }),
            }
        });
        (tx, task)
    }

    /// [`Store::writer`] that never loses a row: once a batch fails (after retries),
    /// or when the writer cannot connect, that batch and every later row go to the
    /// spill journal of `journal` (created then, see [`journal`]) and the channel stays
    /// open. The task ends with what was stored, spilled and lost, and why.
    pub fn writer_spilling(
        &self,
        load_id: i64,
        flush_every: Duration,
        journal: JournalSpec,
    ) -> (mpsc::Sender<RunRow>, JoinHandle<WriterEnd>) {
        self.spawn_writer(load_id, flush_every, Some(journal))
    }

    fn spawn_writer(
        &self,
        load_id: i64,
        flush_every: Duration,
        journal: Option<JournalSpec>,
    ) -> (mpsc::Sender<RunRow>, JoinHandle<WriterEnd>) {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let target = self.target.clone();
        let task = tokio::task::spawn_blocking(move || {
            // Failure only costs isolation: logged, not fatal.
            if let Err(e) = faasload_os::priority::set_thread_nice(5) {
                tracing::debug!("setpriority for the store writer failed: {e}");
            }
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(writer::run(target, load_id, flush_every, rx, journal)),
                Err(e) => WriterEnd {
                    stats: WriterStats::default(),
                    error: Some(StoreError::Invalid(format!(
                        "starting the store writer: {e}"
                    ))),
                    journal: None,
                    journal_error: Some("the writer did not start".into()),
                },
            }
        });
        (tx, task)
    }

    /// Records that the loader of `load_id` is alive (`loads.heartbeat_epoch_ms`), while
    /// the load is running.
    pub async fn heartbeat(&self, load_id: i64) -> Result<(), StoreError> {
        let q = sql(
            self.dialect(),
            "UPDATE loads SET heartbeat_epoch_ms = ? WHERE id = ? AND status = ?",
        );
        let now = db::big(faasload_os::clock::epoch_ns() / 1_000_000);
        on_pool!(&self.pool, p => sqlx::query(sqlx::AssertSqlSafe(q))
            .bind(now)
            .bind(load_id)
            .bind(LoadStatus::Running.as_str())
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(|e| StoreError::db(format!("recording the heartbeat of load {load_id}"), e))
    }

    /// Records a heartbeat of `load_id` every [`HEARTBEAT_EVERY`] until the returned
    /// handle is dropped (or stopped). A failed heartbeat is logged once and retried:
    /// the store's other errors say what matters.
    pub fn keep_alive(&self, load_id: i64) -> Heartbeat {
        let store = self.clone();
        Heartbeat(tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut warned = false;
            loop {
                tick.tick().await;
                if let Err(e) = store.heartbeat(load_id).await
                    && !std::mem::replace(&mut warned, true)
                {
                    tracing::warn!("store: {e} (retried every {HEARTBEAT_EVERY:?})");
                }
            }
        }))
    }

    /// Marks the load ended with `status`, with its end date and row counts.
    pub async fn end_load(&self, load_id: i64, status: LoadStatus) -> Result<(), StoreError> {
        let d = self.dialect();
        let exists = sql(d, "SELECT id FROM loads WHERE id = ?");
        let found = on_pool!(&self.pool, p => sqlx::query(sqlx::AssertSqlSafe(exists))
            .bind(load_id)
            .fetch_optional(p)
            .await
            .map(|r| r.is_some()))
        .map_err(|e| StoreError::db(format!("looking up load {load_id}"), e))?;
        if !found {
            return Err(StoreError::Invalid(format!(
                "no load {load_id} in the store"
            )));
        }
        let q = sql(
            d,
            "UPDATE loads SET status = ?, end_epoch_ms = ?, \
             rows_written = (SELECT COUNT(*) FROM runs WHERE load_id = ?), \
             failed = (SELECT COUNT(*) FROM runs WHERE load_id = ? AND failed = ?) \
             WHERE id = ?",
        );
        let now = db::big(faasload_os::clock::epoch_ns() / 1_000_000);
        on_pool!(&self.pool, p => sqlx::query(sqlx::AssertSqlSafe(q))
            .bind(status.as_str())
            .bind(now)
            .bind(load_id)
            .bind(load_id)
            .bind(true)
            .bind(load_id)
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(|e| StoreError::db(format!("recording the end of load {load_id}"), e))
    }

    /// Writes `rows` of `load_id` now, in one transaction (retried like the batching
    /// writer's batches), and returns once they are committed. For callers that must know
    /// what is durable (the generator's checkpoints); `functions` caches function ids
    /// between calls.
    pub async fn write_now(
        &self,
        load_id: i64,
        functions: &mut std::collections::HashMap<String, i64>,
        rows: &[RunRow],
    ) -> Result<WriterStats, StoreError> {
        let mut st = WriterStats::default();
        if !rows.is_empty() {
            writer::flush(&self.pool, load_id, functions, rows, &mut st).await?;
        }
        Ok(st)
    }

    /// Deletes the runs of `load_id` whose `seq` is `from_seq` or later, with their
    /// parameters and resources, in one transaction; returns how many runs went.
    pub async fn delete_runs_from(&self, load_id: i64, from_seq: u64) -> Result<u64, StoreError> {
        let d = self.dialect();
        let from = db::big(from_seq);
        let children = [
            "DELETE FROM parameters WHERE run IN (SELECT id FROM runs WHERE load_id = ? AND seq >= ?)",
            "DELETE FROM resources WHERE run IN (SELECT id FROM runs WHERE load_id = ? AND seq >= ?)",
        ];
        let runs = sql(d, "DELETE FROM runs WHERE load_id = ? AND seq >= ?");
        on_pool!(&self.pool, p => {
            let mut tx = p
                .begin()
                .await
                .map_err(|e| StoreError::db("starting a store transaction", e))?;
            for c in children {
                sqlx::query(sqlx::AssertSqlSafe(sql(d, c)))
                    .bind(load_id)
                    .bind(from)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| StoreError::db(format!("deleting lost runs of load {load_id}"), e))?;
            }
            let n = sqlx::query(sqlx::AssertSqlSafe(runs))
                .bind(load_id)
                .bind(from)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::db(format!("deleting lost runs of load {load_id}"), e))?
                .rows_affected();
            tx.commit()
                .await
                .map_err(|e| StoreError::db("committing the deletion of lost runs", e))?;
            Ok::<u64, StoreError>(n)
        })
    }

    /// The `seq` of every run of `load_id`, ascending (repeats included).
    pub async fn run_seqs(&self, load_id: i64) -> Result<Vec<u64>, StoreError> {
        let q = sql(
            self.dialect(),
            "SELECT seq FROM runs WHERE load_id = ? ORDER BY seq",
        );
        on_pool!(&self.pool, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(q))
                .bind(load_id)
                .fetch_all(p)
                .await
                .map_err(|e| StoreError::db(format!("reading the runs of load {load_id}"), e))?;
            rows.iter()
                .map(|r| db::get(r, 0, "runs.seq").map(|s: i64| s.max(0) as u64))
                .collect::<Result<Vec<u64>, StoreError>>()
        })
    }

    /// Sets a running load's status back to `running` (a resumed generation).
    pub async fn reopen_load(&self, load_id: i64) -> Result<(), StoreError> {
        let q = sql(
            self.dialect(),
            "UPDATE loads SET status = ?, end_epoch_ms = NULL WHERE id = ?",
        );
        on_pool!(&self.pool, p => sqlx::query(sqlx::AssertSqlSafe(q))
            .bind(LoadStatus::Running.as_str())
            .bind(load_id)
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(|e| StoreError::db(format!("reopening load {load_id}"), e))
    }

    /// Every load, oldest first, with live row counts.
    pub async fn loads(&self) -> Result<Vec<LoadInfo>, StoreError> {
        read::loads(&self.pool, &self.absent).await
    }

    /// Every row of `load_id` in schedule order, with its parameters and resources.
    pub async fn rows(&self, load_id: i64) -> Result<Vec<StoredRow>, StoreError> {
        read::rows(&self.pool, &self.absent, load_id).await
    }

    /// The runs of `load_id` after the run `after` (its `(seq, id)`, from the first if
    /// None), at most `limit` of them, as [`Store::rows`] gives them: for reading a large
    /// load one page at a time (pass the last row's `(seq, id)` to get the next page).
    pub async fn rows_page(
        &self,
        load_id: i64,
        after: Option<(i64, i64)>,
        limit: u64,
    ) -> Result<Vec<StoredRow>, StoreError> {
        read::rows_page(&self.pool, &self.absent, load_id, after, Some(limit)).await
    }

    /// Calls `f` with the (name, value) of every parameter of the runs of `load_id`,
    /// streamed from the database.
    pub async fn for_each_parameter(
        &self,
        load_id: i64,
        f: impl FnMut(&str, Option<&str>),
    ) -> Result<(), StoreError> {
        read::for_each_parameter(&self.pool, load_id, f).await
    }

    /// Every function of the `functions` table (name, kind, image, parameter spec, input
    /// kind).
    pub async fn functions(&self) -> Result<Vec<FunctionMeta>, StoreError> {
        read::functions(&self.pool).await
    }

    /// Closes the connections (pending writer tasks should be awaited first).
    pub async fn close(&self) {
        self.pool.close().await
    }
}

/// A task recording a load's heartbeat ([`Store::keep_alive`]); dropping it stops it.
#[derive(Debug)]
pub struct Heartbeat(JoinHandle<()>);

impl Heartbeat {
    /// Stops the heartbeat (before the load is ended).
    pub fn stop(self) {
        self.0.abort();
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}
