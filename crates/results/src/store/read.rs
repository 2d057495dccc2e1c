//! Reading a load back: its rows with their parameters and resources (for reports and
//! exports), and the list of loads.
use std::collections::HashMap;

use sqlx::AssertSqlSafe;

use super::db::{self, Pool, on_pool, sql};
use super::{FunctionMeta, LoadStatus, StoreError};

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
    /// `parameters` rows (name, value), in insertion order.
    pub params: Vec<(String, String)>,
    /// `resources` rows, in insertion order.
    pub resources: Vec<ResourceRow>,
}

pub(super) async fn loads(pool: &Pool) -> Result<Vec<LoadInfo>, StoreError> {
    let q = "SELECT l.id, l.origin, l.seed, l.start_epoch_ms, l.end_epoch_ms, l.status, \
             l.planned, \
             (SELECT COUNT(*) FROM runs r WHERE r.load_id = l.id), \
             (SELECT COUNT(*) FROM runs r WHERE r.load_id = l.id AND r.failed = ?) \
             FROM loads l ORDER BY l.id";
    let q = sql(pool.dialect(), q);
    let what = "loads";
    on_pool!(pool, p => {
        let rows = sqlx::query(AssertSqlSafe(q))
            .bind(true)
            .fetch_all(p)
            .await
            .map_err(|e| StoreError::db("listing loads", e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = db::get(r, 0, what)?;
            let status: String = db::get(r, 5, what)?;
            let seed: Option<String> = db::get(r, 2, what)?;
            out.push(LoadInfo {
                id,
                origin: db::get(r, 1, what)?,
                seed: match seed {
                    None => None,
                    Some(s) => Some(s.parse().map_err(|_| {
                        StoreError::Invalid(format!("load {id}: seed {s:?} is not a u64"))
                    })?),
                },
                start_epoch_ms: db::get(r, 3, what)?,
                end_epoch_ms: db::get(r, 4, what)?,
                status: LoadStatus::parse(&status).ok_or_else(|| {
                    StoreError::Invalid(format!("load {id}: unknown status {status:?}"))
                })?,
                planned: db::get(r, 6, what)?,
                rows: db::get(r, 7, what)?,
                failed: db::get(r, 8, what)?,
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
            let name: Option<String> = db::get(r, 0, w)?;
            let Some(name) = name else { continue };
            out.push(FunctionMeta {
                name,
                runtime: db::get(r, 1, w)?,
                image: db::get(r, 2, w)?,
                parameters: db::get(r, 3, w)?,
                input_kind: db::get(r, 4, w)?,
            });
        }
        Ok::<_, StoreError>(out)
    })
}

pub(super) async fn rows(pool: &Pool, load_id: i64) -> Result<Vec<StoredRow>, StoreError> {
    rows_page(pool, load_id, None, None).await
}

/// The runs of `load_id` after the run `after` (its `(seq, id)`; from the first if None),
/// at most `limit` of them (all if None), in schedule order, with their parameters and
/// resources. Paging through a load this way holds one page in memory at a time.
pub(super) async fn rows_page(
    pool: &Pool,
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
    // The ETL times are cast: an original FaaSLoad table may hold them as integers.
    let dbl = d.double();
    let q_runs = sql(
        d,
        &format!(
            "SELECT r.id, r.load_id, r.seq, r.user_name, r.namespace, f.name, r.action, r.input, \
         r.activation_id, r.failed, r.start_ms, r.end_ms, r.wait_ms, r.init_ms, r.outputsize, \
         CAST(r.extract_ms AS {dbl}), CAST(r.transform_ms AS {dbl}), CAST(r.load_ms AS {dbl}), \
         r.intended_epoch_ns, r.sent_epoch_ns, \
         r.answered_epoch_ns, r.queue_ns, r.lag_ns, r.latency_ns, r.duration_ms, \
         r.http_status, r.class, r.status, r.error, r.cold, r.memory_mb, r.container, \
         r.cpu_user_ns, r.cpu_sys_ns, r.cpu_ns, r.mem_peak_bytes, r.mem_avg_bytes, r.nvcsw, \
         r.nivcsw, r.wakeups, r.migrations, r.pgfault, r.pgmajfault, r.monitor_missing, \
         r.polls, r.retries, r.input_bytes \
         FROM runs r JOIN functions f ON r.function = f.id \
         WHERE r.load_id = ?{lower} ORDER BY r.seq, r.id{limit_sql}"
        ),
    );
    let w = "runs";
    let mut out: Vec<StoredRow> = on_pool!(pool, p => {
        let mut q = sqlx::query(AssertSqlSafe(q_runs)).bind(load_id);
        if let Some((seq, id)) = after {
            q = q.bind(seq).bind(seq).bind(seq).bind(id);
        }
        let rows = q
            .fetch_all(p)
            .await
            .map_err(|e| StoreError::db(format!("reading the runs of load {load_id}"), e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(StoredRow {
                id: db::get(r, 0, w)?,
                load_id: db::get(r, 1, w)?,
                seq: db::get(r, 2, w)?,
                user: db::get(r, 3, w)?,
                namespace: db::get(r, 4, w)?,
                function: db::get(r, 5, w)?,
                action: db::get(r, 6, w)?,
                input: db::get(r, 7, w)?,
                activation_id: db::get(r, 8, w)?,
                failed: db::get(r, 9, w)?,
                start_ms: db::get(r, 10, w)?,
                end_ms: db::get(r, 11, w)?,
                wait_ms: db::get(r, 12, w)?,
                init_ms: db::get(r, 13, w)?,
                outputsize: db::get(r, 14, w)?,
                extract_ms: db::get(r, 15, w)?,
                transform_ms: db::get(r, 16, w)?,
                load_ms: db::get(r, 17, w)?,
                intended_epoch_ns: db::get(r, 18, w)?,
                sent_epoch_ns: db::get(r, 19, w)?,
                answered_epoch_ns: db::get(r, 20, w)?,
                queue_ns: db::get(r, 21, w)?,
                lag_ns: db::get(r, 22, w)?,
                latency_ns: db::get(r, 23, w)?,
                duration_ms: db::get(r, 24, w)?,
                http_status: db::get(r, 25, w)?,
                class: db::get(r, 26, w)?,
                status: db::get(r, 27, w)?,
                error: db::get(r, 28, w)?,
                cold: db::get(r, 29, w)?,
                memory_mb: db::get(r, 30, w)?,
                container: db::get(r, 31, w)?,
                cpu_user_ns: db::get(r, 32, w)?,
                cpu_sys_ns: db::get(r, 33, w)?,
                cpu_ns: db::get(r, 34, w)?,
                mem_peak_bytes: db::get(r, 35, w)?,
                mem_avg_bytes: db::get(r, 36, w)?,
                nvcsw: db::get(r, 37, w)?,
                nivcsw: db::get(r, 38, w)?,
                wakeups: db::get(r, 39, w)?,
                migrations: db::get(r, 40, w)?,
                pgfault: db::get(r, 41, w)?,
                pgmajfault: db::get(r, 42, w)?,
                monitor_missing: db::get(r, 43, w)?,
                polls: db::get(r, 44, w)?,
                retries: db::get(r, 45, w)?,
                input_bytes: db::get(r, 46, w)?,
                params: Vec::new(),
                resources: Vec::new(),
            });
        }
        Ok::<_, StoreError>(out)
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
            "SELECT p.run, p.name, p.value FROM parameters p JOIN runs r ON p.run = r.id \
             WHERE r.load_id = ?{lower}{upper_sql} ORDER BY p.id"
        ),
    );
    let q_res = sql(
        d,
        &format!(
            "SELECT s.run, s.timestamp_ms, s.memory_B, s.proc_mCPU, s.cpu_ns \
             FROM resources s JOIN runs r ON s.run = r.id \
             WHERE r.load_id = ?{lower}{upper_sql} ORDER BY s.id"
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
            let run: i64 = db::get(r, 0, "parameters")?;
            let name: String = db::get(r, 1, "parameters")?;
            let value: Option<String> = db::get(r, 2, "parameters")?;
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
            let run: i64 = db::get(r, 0, "resources")?;
            let res = ResourceRow {
                timestamp_ms: db::get(r, 1, "resources")?,
                memory_b: db::get(r, 2, "resources")?,
                proc_mcpu: db::get(r, 3, "resources")?,
                cpu_ns: db::get(r, 4, "resources")?,
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
        "SELECT p.name, p.value FROM parameters p JOIN runs r ON p.run = r.id \
         WHERE r.load_id = ?",
    );
    let what = || format!("reading the parameters of load {load_id}");
    on_pool!(pool, p => {
        let mut rows = sqlx::query(AssertSqlSafe(q)).bind(load_id).fetch(p);
        while let Some(r) = rows.try_next().await.map_err(|e| StoreError::db(what(), e))? {
            let name: String = db::get(&r, 0, "parameters")?;
            let value: Option<String> = db::get(&r, 1, "parameters")?;
            f(&name, value.as_deref());
        }
        Ok::<(), StoreError>(())
    })
}
