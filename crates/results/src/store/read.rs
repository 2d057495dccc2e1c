//! Reading a load back: its rows with their parameters and resources (for reports and
//! exports), and the list of loads. Every column is read by name (the `runs` SELECT list
//! comes from [`RUN_COLUMNS`]), so the order of a SELECT list cannot shift values.
use std::collections::HashMap;

use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Row, Type};

use super::db::{self, Pool, on_pool, sql};
use super::schema::{ColumnType, Dialect, RUN_COLUMNS};
use super::{FunctionMeta, HEARTBEAT_STALE, LoadStatus, StoreError};

/// Columns a store opened read-only lacks, as (table, column): selected as NULL.
type Absent = [(&'static str, &'static str)];

/// `alias.col AS col`, or `NULL AS col` when `table` lacks it.
fn col_or_null(absent: &Absent, table: &str, alias: &str, col: &str) -> String {
    if absent.iter().any(|&(t, c)| t == table && c == col) {
        format!("NULL AS {col}")
    } else {
        format!("{alias}.{col} AS {col}")
    }
}

/// One load (a replay), from `loads`.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadInfo {
    pub id: i64,
    pub origin: String,
    pub seed: Option<u64>,
    pub start_epoch_ms: i64,
    pub end_epoch_ms: Option<i64>,
    pub status: LoadStatus,
    pub planned: Option<i64>,
    /// Rows in `runs` for this load now.
    pub rows: i64,
    /// Rows with `failed` now.
    pub failed: i64,
    /// Epoch ms of its loader's last heartbeat (None: never recorded, e.g. by a faasload
    /// older than the heartbeat).
    pub heartbeat_epoch_ms: Option<i64>,
}

/// What a load is, as shown: its stored status, or `crashed` for a `running` load whose
/// loader stopped recording its heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadState {
    Running,
    Completed,
    Interrupted,
    /// `running` in the store, its heartbeat older than [`HEARTBEAT_STALE`]: the loader
    /// is gone (killed, crashed, its host down) and never ended it.
    Crashed,
}

impl LoadState {
    pub fn as_str(self) -> &'static str {
        match self {
            LoadState::Running => "running",
            LoadState::Completed => "completed",
            LoadState::Interrupted => "interrupted",
            LoadState::Crashed => "crashed",
        }
    }
}

impl LoadInfo {
    /// Its state at `now_epoch_ms`. A running load without any heartbeat (written by an
    /// older faasload) stays `running`: nothing says its loader is gone.
    pub fn state(&self, now_epoch_ms: i64) -> LoadState {
        match self.status {
            LoadStatus::Completed => LoadState::Completed,
            LoadStatus::Interrupted => LoadState::Interrupted,
            LoadStatus::Running => match self.heartbeat_epoch_ms {
                Some(hb)
                    if now_epoch_ms.saturating_sub(hb) > HEARTBEAT_STALE.as_millis() as i64 =>
                {
                    LoadState::Crashed
                }
                _ => LoadState::Running,
            },
        }
    }

    /// Its state now.
    pub fn state_now(&self) -> LoadState {
        self.state((faasload_os::clock::epoch_ns() / 1_000_000) as i64)
    }

    /// The last instant it is known to have run at: its end, else its last heartbeat,
    /// else its start (epoch ms).
    pub fn last_seen_epoch_ms(&self) -> i64 {
        self.end_epoch_ms
            .or(self.heartbeat_epoch_ms)
            .unwrap_or(self.start_epoch_ms)
    }
}

/// One `resources` row: a monitor sample in the activation's window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRow {
    pub timestamp_ms: i64,
    /// `memory_B`.
    pub memory_b: Option<i64>,
    /// `proc_mCPU`: ms of CPU since the window's first sample.
    pub proc_mcpu: Option<i64>,
    /// The container's raw cumulative CPU counter (ns).
    pub cpu_ns: Option<i64>,
}

/// One stored invocation (a `runs` row with its function name, parameters, resources).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRow {
    pub id: i64,
    pub load_id: i64,
    pub seq: i64,
    pub user: String,
    pub namespace: String,
    /// `functions.name` of `runs.function`.
    pub function: String,
    pub action: String,
    pub input: Option<String>,
    pub activation_id: Option<String>,
    pub failed: bool,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub wait_ms: Option<i64>,
    /// NULL when warm.
    pub init_ms: Option<i64>,
    pub outputsize: Option<i64>,
    pub extract_ms: Option<f64>,
    pub transform_ms: Option<f64>,
    pub load_ms: Option<f64>,
    pub intended_epoch_ns: i64,
    pub sent_epoch_ns: Option<i64>,
    pub answered_epoch_ns: Option<i64>,
    pub queue_ns: i64,
    pub lag_ns: Option<i64>,
    pub latency_ns: Option<i64>,
    pub duration_ms: Option<i64>,
    pub http_status: Option<i64>,
    /// [`faasload_protocol::OutcomeClass::as_str`].
    pub class: String,
    /// The record's status text.
    pub status: Option<String>,
    pub error: Option<String>,
    pub cold: Option<bool>,
    pub memory_mb: Option<i64>,
    pub container: Option<String>,
    pub cpu_user_ns: Option<i64>,
    pub cpu_sys_ns: Option<i64>,
    pub cpu_ns: Option<i64>,
    pub mem_peak_bytes: Option<i64>,
    pub mem_avg_bytes: Option<i64>,
    pub nvcsw: Option<i64>,
    pub nivcsw: Option<i64>,
    pub wakeups: Option<i64>,
    pub migrations: Option<i64>,
    pub pgfault: Option<i64>,
    pub pgmajfault: Option<i64>,
    pub monitor_missing: Option<String>,
    pub polls: i64,
    pub retries: i64,
    /// Size of the input object (bytes), when known.
    pub input_bytes: Option<i64>,
    /// A cold start's init: CPU time and memory peak (included in the totals).
    pub init_cpu_ns: Option<i64>,
    pub init_mem_peak_bytes: Option<i64>,
    /// `parameters` rows (name, value), in insertion order.
    pub params: Vec<(String, String)>,
    /// `resources` rows, in insertion order.
    pub resources: Vec<ResourceRow>,
}

pub(super) async fn loads(pool: &Pool, absent: &Absent) -> Result<Vec<LoadInfo>, StoreError> {
    let q = format!(
        "SELECT l.id AS id, l.origin AS origin, l.seed AS seed, \
         l.start_epoch_ms AS start_epoch_ms, l.end_epoch_ms AS end_epoch_ms, \
         l.status AS status, l.planned AS planned, {}, \
         (SELECT COUNT(*) FROM runs r WHERE r.load_id = l.id) AS rows_now, \
         (SELECT COUNT(*) FROM runs r WHERE r.load_id = l.id AND r.failed = ?) AS failed_now \
         FROM loads l ORDER BY l.id",
        col_or_null(absent, "loads", "l", "heartbeat_epoch_ms")
    );
    let q = sql(pool.dialect(), &q);
    let what = "loads";
    on_pool!(pool, p => {
        let rows = sqlx::query(AssertSqlSafe(q))
            .bind(true)
            .fetch_all(p)
            .await
            .map_err(|e| StoreError::db("listing loads", e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = db::get(r, "id", what)?;
            let status: String = db::get(r, "status", what)?;
            let seed: Option<String> = db::get(r, "seed", what)?;
            out.push(LoadInfo {
                id,
                origin: db::get(r, "origin", what)?,
                seed: match seed {
                    None => None,
                    Some(s) => Some(s.parse().map_err(|_| {
                        StoreError::Invalid(format!("load {id}: seed {s:?} is not a u64"))
                    })?),
                },
                start_epoch_ms: db::get(r, "start_epoch_ms", what)?,
                end_epoch_ms: db::get(r, "end_epoch_ms", what)?,
                status: LoadStatus::parse(&status).ok_or_else(|| {
                    StoreError::Invalid(format!("load {id}: unknown status {status:?}"))
                })?,
                planned: db::get(r, "planned", what)?,
                rows: db::get(r, "rows_now", what)?,
                failed: db::get(r, "failed_now", what)?,
                heartbeat_epoch_ms: db::get(r, "heartbeat_epoch_ms", what)?,
            });
        }
        Ok(out)
    })
}

/// Every named row of `functions`, in id order.
pub(super) async fn functions(pool: &Pool) -> Result<Vec<FunctionMeta>, StoreError> {
    let q = "SELECT name, runtime, image, parameters, input_kind FROM functions ORDER BY id";
    let w = "functions";
    on_pool!(pool, p => {
        let rows = sqlx::query(AssertSqlSafe(q))
            .fetch_all(p)
            .await
            .map_err(|e| StoreError::db("reading the functions", e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            // An original FaaSLoad table may hold a function without a name: no run of
            // faasload's can point to it.
            let name: Option<String> = db::get(r, "name", w)?;
            let Some(name) = name else { continue };
            out.push(FunctionMeta {
                name,
                runtime: db::get(r, "runtime", w)?,
                image: db::get(r, "image", w)?,
                parameters: db::get(r, "parameters", w)?,
                input_kind: db::get(r, "input_kind", w)?,
            });
        }
        Ok::<_, StoreError>(out)
    })
}

/// The SELECT list of the runs of a load: every [`RUN_COLUMNS`] column under its own
/// name (the ETL times cast: an original FaaSLoad table may hold them as integers), the
/// run's `id` and its function's name as `function_name`.
fn run_select_list(d: Dialect, absent: &Absent) -> String {
    let mut cols = vec![
        "r.id AS id".to_string(),
        "f.name AS function_name".to_string(),
    ];
    cols.extend(RUN_COLUMNS.iter().map(|c| match c.ty {
        _ if absent.contains(&("runs", c.name)) => format!("NULL AS {}", c.name),
        ColumnType::Double => format!("CAST(r.{n} AS {}) AS {n}", d.double(), n = c.name),
        _ => format!("r.{n} AS {n}", n = c.name),
    }));
    cols.join(", ")
}

/// A row of [`run_select_list`], read by column name (its parameters and resources
/// empty).
fn stored_row<'r, R>(r: &'r R) -> Result<StoredRow, StoreError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let w = "runs";
    Ok(StoredRow {
        id: db::get(r, "id", w)?,
        load_id: db::get(r, "load_id", w)?,
        seq: db::get(r, "seq", w)?,
        user: db::get(r, "user_name", w)?,
        namespace: db::get(r, "namespace", w)?,
        function: db::get(r, "function_name", w)?,
        action: db::get(r, "action", w)?,
        input: db::get(r, "input", w)?,
        activation_id: db::get(r, "activation_id", w)?,
        failed: db::get(r, "failed", w)?,
        start_ms: db::get(r, "start_ms", w)?,
        end_ms: db::get(r, "end_ms", w)?,
        wait_ms: db::get(r, "wait_ms", w)?,
        init_ms: db::get(r, "init_ms", w)?,
        outputsize: db::get(r, "outputsize", w)?,
        extract_ms: db::get(r, "extract_ms", w)?,
        transform_ms: db::get(r, "transform_ms", w)?,
        load_ms: db::get(r, "load_ms", w)?,
        intended_epoch_ns: db::get(r, "intended_epoch_ns", w)?,
        sent_epoch_ns: db::get(r, "sent_epoch_ns", w)?,
        answered_epoch_ns: db::get(r, "answered_epoch_ns", w)?,
        queue_ns: db::get(r, "queue_ns", w)?,
        lag_ns: db::get(r, "lag_ns", w)?,
        latency_ns: db::get(r, "latency_ns", w)?,
        duration_ms: db::get(r, "duration_ms", w)?,
        http_status: db::get(r, "http_status", w)?,
        class: db::get(r, "class", w)?,
        status: db::get(r, "status", w)?,
        error: db::get(r, "error", w)?,
        cold: db::get(r, "cold", w)?,
        memory_mb: db::get(r, "memory_mb", w)?,
        container: db::get(r, "container", w)?,
        cpu_user_ns: db::get(r, "cpu_user_ns", w)?,
        cpu_sys_ns: db::get(r, "cpu_sys_ns", w)?,
        cpu_ns: db::get(r, "cpu_ns", w)?,
        mem_peak_bytes: db::get(r, "mem_peak_bytes", w)?,
        mem_avg_bytes: db::get(r, "mem_avg_bytes", w)?,
        nvcsw: db::get(r, "nvcsw", w)?,
        nivcsw: db::get(r, "nivcsw", w)?,
        wakeups: db::get(r, "wakeups", w)?,
        migrations: db::get(r, "migrations", w)?,
        pgfault: db::get(r, "pgfault", w)?,
        pgmajfault: db::get(r, "pgmajfault", w)?,
        monitor_missing: db::get(r, "monitor_missing", w)?,
        polls: db::get(r, "polls", w)?,
        retries: db::get(r, "retries", w)?,
        input_bytes: db::get(r, "input_bytes", w)?,
        init_cpu_ns: db::get(r, "init_cpu_ns", w)?,
        init_mem_peak_bytes: db::get(r, "init_mem_peak_bytes", w)?,
        params: Vec::new(),
        resources: Vec::new(),
    })
}

pub(super) async fn rows(
    pool: &Pool,
    absent: &Absent,
    load_id: i64,
) -> Result<Vec<StoredRow>, StoreError> {
    rows_page(pool, absent, load_id, None, None).await
}

/// The runs of `load_id` after the run `after` (its `(seq, id)`; from the first if None),
/// at most `limit` of them (all if None), in schedule order, with their parameters and
/// resources. Paging through a load this way holds one page in memory at a time.
pub(super) async fn rows_page(
    pool: &Pool,
    absent: &Absent,
    load_id: i64,
    after: Option<(i64, i64)>,
    limit: Option<u64>,
) -> Result<Vec<StoredRow>, StoreError> {
    let d = pool.dialect();
    // The plain `r.seq >= ?` / `r.seq <= ?` let the (load_id, seq) index bound the scan.
    let lower = if after.is_some() {
        " AND r.seq >= ? AND (r.seq > ? OR (r.seq = ? AND r.id > ?))"
    } else {
        ""
    };
    let limit_sql = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
    let q_runs = sql(
        d,
        &format!(
            "SELECT {} FROM runs r JOIN functions f ON r.function = f.id \
             WHERE r.load_id = ?{lower} ORDER BY r.seq, r.id{limit_sql}",
            run_select_list(d, absent)
        ),
    );
    let mut out: Vec<StoredRow> = on_pool!(pool, p => {
        let mut q = sqlx::query(AssertSqlSafe(q_runs)).bind(load_id);
        if let Some((seq, id)) = after {
            q = q.bind(seq).bind(seq).bind(seq).bind(id);
        }
        let rows = q
            .fetch_all(p)
            .await
            .map_err(|e| StoreError::db(format!("reading the runs of load {load_id}"), e))?;
        rows.iter().map(stored_row).collect::<Result<Vec<_>, StoreError>>()
    })?;
    // The parameters and resources of this page's runs: between `after` and its last run.
    let upper = match (limit, out.last()) {
        (Some(_), Some(last)) => Some((last.seq, last.id)),
        (Some(_), None) => return Ok(out),
        (None, _) => None,
    };
    let upper_sql = if upper.is_some() {
        " AND r.seq <= ? AND (r.seq < ? OR (r.seq = ? AND r.id <= ?))"
    } else {
        ""
    };
    let q_params = sql(
        d,
        &format!(
            "SELECT p.run AS run, p.name AS name, p.value AS value \
             FROM parameters p JOIN runs r ON p.run = r.id \
             WHERE r.load_id = ?{lower}{upper_sql} ORDER BY p.id"
        ),
    );
    let q_res = sql(
        d,
        &format!(
            "SELECT s.run AS run, s.timestamp_ms AS timestamp_ms, s.memory_B AS memory_b, \
             s.proc_mCPU AS proc_mcpu, {} \
             FROM resources s JOIN runs r ON s.run = r.id \
             WHERE r.load_id = ?{lower}{upper_sql} ORDER BY s.id",
            col_or_null(absent, "resources", "s", "cpu_ns")
        ),
    );
    let index: HashMap<i64, usize> = out.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
    on_pool!(pool, p => {
        let mut q = sqlx::query(AssertSqlSafe(q_params)).bind(load_id);
        for (seq, id) in after.iter().chain(upper.iter()) {
            q = q.bind(*seq).bind(*seq).bind(*seq).bind(*id);
        }
        let rows = q
            .fetch_all(p)
            .await
            .map_err(|e| StoreError::db(format!("reading the parameters of load {load_id}"), e))?;
        for r in &rows {
            let run: i64 = db::get(r, "run", "parameters")?;
            let name: String = db::get(r, "name", "parameters")?;
            let value: Option<String> = db::get(r, "value", "parameters")?;
            if let Some(&i) = index.get(&run) {
                out[i].params.push((name, value.unwrap_or_default()));
            }
        }
        let mut q = sqlx::query(AssertSqlSafe(q_res)).bind(load_id);
        for (seq, id) in after.iter().chain(upper.iter()) {
            q = q.bind(*seq).bind(*seq).bind(*seq).bind(*id);
        }
        let rows = q
            .fetch_all(p)
            .await
            .map_err(|e| StoreError::db(format!("reading the resources of load {load_id}"), e))?;
        for r in &rows {
            let run: i64 = db::get(r, "run", "resources")?;
            let res = ResourceRow {
                timestamp_ms: db::get(r, "timestamp_ms", "resources")?,
                memory_b: db::get(r, "memory_b", "resources")?,
                proc_mcpu: db::get(r, "proc_mcpu", "resources")?,
                cpu_ns: db::get(r, "cpu_ns", "resources")?,
            };
            if let Some(&i) = index.get(&run) {
                out[i].resources.push(res);
            }
        }
        Ok::<_, StoreError>(())
    })?;
    Ok(out)
}

/// Calls `f` with the (name, value) of every parameter of the runs of `load_id`, streamed
/// (none held in memory).
pub(super) async fn for_each_parameter(
    pool: &Pool,
    load_id: i64,
    mut f: impl FnMut(&str, Option<&str>),
) -> Result<(), StoreError> {
    use futures_util::TryStreamExt;
    let q = sql(
        pool.dialect(),
        "SELECT p.name AS name, p.value AS value FROM parameters p \
         JOIN runs r ON p.run = r.id WHERE r.load_id = ?",
    );
    let what = || format!("reading the parameters of load {load_id}");
    on_pool!(pool, p => {
        let mut rows = sqlx::query(AssertSqlSafe(q)).bind(load_id).fetch(p);
        while let Some(r) = rows.try_next().await.map_err(|e| StoreError::db(what(), e))? {
            let name: String = db::get(&r, "name", "parameters")?;
            let value: Option<String> = db::get(&r, "value", "parameters")?;
            f(&name, value.as_deref());
        }
        Ok::<(), StoreError>(())
    })
}
