//! The exported tables' columns: one row per run (`runs`) and one row per monitor sample
//! (`resources`), with names that carry their unit and the store's nullability (taken from
//! the store's column descriptions, [`crate::store::schema::RUN_COLUMNS`]). The README's
//! "Exporting a dataset" section documents them.
use std::collections::HashMap;

use super::params;
use super::table::{Cell, ColType, Column};
use crate::store::schema::run_column;
use crate::store::{FunctionMeta, ResourceRow, StoredRow};

/// A run with its function's metadata (from `functions`).
pub(super) struct Run<'a> {
    pub row: &'a StoredRow,
    pub function: Option<&'a FunctionMeta>,
}

/// A monitor sample with the run it belongs to.
pub(super) struct Sample<'a> {
    pub load_id: i64,
    pub seq: i64,
    pub res: &'a ResourceRow,
}

/// The runs of a load, each with its function's metadata.
pub(super) fn runs<'a>(
    rows: &'a [StoredRow],
    functions: &'a HashMap<String, FunctionMeta>,
) -> Vec<Run<'a>> {
    rows.iter()
        .map(|row| Run {
            row,
            function: functions.get(&row.function),
        })
        .collect()
}

/// The monitor samples of a load's runs, in run order then sample order.
pub(super) fn samples(rows: &[StoredRow]) -> Vec<Sample<'_>> {
    rows.iter()
        .flat_map(|r| {
            r.resources.iter().map(move |res| Sample {
                load_id: r.load_id,
                seq: r.seq,
                res,
            })
        })
        .collect()
}

/// Reads an integer, float or count field of a run.
type IntField = fn(&StoredRow) -> Option<i64>;
type FloatField = fn(&StoredRow) -> Option<f64>;
type CountField = fn(&StoredRow) -> i64;

/// Whether the export's column from the `runs` column `name` may be null: as in the
/// store (a `NOT NULL` column is exported as required).
fn stored(name: &str) -> bool {
    run_column(name).is_none_or(|c| !c.not_null)
}

fn opt_str(s: &Option<String>) -> Cell<'_> {
    s.as_deref().into()
}

/// The `runs` table's columns, with one `param_<name>` column per (name, type) of
/// `params` (see [`params::Inference`]).
pub(super) fn run_columns<'a>(params: &[(String, ColType)]) -> Vec<Column<'a, Run<'a>>> {
    use ColType::*;
    type C<'a> = Column<'a, Run<'a>>;
    let mut c: Vec<C<'a>> = vec![
        Column::new("load_id", Int64, stored("load_id"), |r: &Run| {
            Cell::Int(r.row.load_id)
        }),
        Column::new("seq", Int64, stored("seq"), |r: &Run| Cell::Int(r.row.seq)),
        Column::new("function", Utf8, false, |r: &Run| {
            Cell::Str(&r.row.function)
        }),
        Column::new("action", Utf8, stored("action"), |r: &Run| {
            Cell::Str(&r.row.action)
        }),
        Column::new("kind", Utf8, true, |r: &Run| {
            r.function.and_then(|f| f.runtime.as_deref()).into()
        }),
        Column::new("input_kind", Utf8, true, |r: &Run| {
            r.function.and_then(|f| f.input_kind.as_deref()).into()
        }),
        Column::new("user", Utf8, stored("user_name"), |r: &Run| {
            Cell::Str(&r.row.user)
        }),
        Column::new("namespace", Utf8, stored("namespace"), |r: &Run| {
            Cell::Str(&r.row.namespace)
        }),
        Column::new("memory_mb", Int64, stored("memory_mb"), |r: &Run| {
            r.row.memory_mb.into()
        }),
        Column::new("input", Utf8, stored("input"), |r: &Run| {
            opt_str(&r.row.input)
        }),
        Column::new("input_bytes", Int64, stored("input_bytes"), |r: &Run| {
            r.row.input_bytes.into()
        }),
    ];
    for (name, ty) in params {
        let (key, ty) = (name.clone(), *ty);
        c.push(Column::new(
            format!("{}{name}", params::PREFIX),
            ty,
            true,
            move |r: &Run| {
                params::value(&r.row.params, &key)
                    .and_then(|v| params::parse(ty, v))
                    .unwrap_or(Cell::Null)
            },
        ));
    }
    c.push(Column::new("cold", Bool, stored("cold"), |r: &Run| {
        r.row.cold.into()
    }));
    c.push(Column::new("failed", Bool, stored("failed"), |r: &Run| {
        Cell::Bool(r.row.failed)
    }));
    c.push(Column::new("class", Utf8, stored("class"), |r: &Run| {
        Cell::Str(&r.row.class)
    }));
    c.push(Column::new("status", Utf8, stored("status"), |r: &Run| {
        opt_str(&r.row.status)
    }));
    c.push(Column::new("error", Utf8, stored("error"), |r: &Run| {
        opt_str(&r.row.error)
    }));
    let ints: [(&str, IntField); 21] = [
        ("http_status", |r| r.http_status),
        ("duration_ms", |r| r.duration_ms),
        ("init_ms", |r| r.init_ms),
        ("wait_ms", |r| r.wait_ms),
        ("queue_ns", |r| Some(r.queue_ns)),
        ("lag_ns", |r| r.lag_ns),
        ("latency_ns", |r| r.latency_ns),
        ("cpu_user_ns", |r| r.cpu_user_ns),
        ("cpu_sys_ns", |r| r.cpu_sys_ns),
        ("cpu_ns", |r| r.cpu_ns),
        ("mem_peak_bytes", |r| r.mem_peak_bytes),
        ("mem_avg_bytes", |r| r.mem_avg_bytes),
        ("init_cpu_ns", |r| r.init_cpu_ns),
        ("init_mem_peak_bytes", |r| r.init_mem_peak_bytes),
        ("nvcsw", |r| r.nvcsw),
        ("nivcsw", |r| r.nivcsw),
        ("wakeups", |r| r.wakeups),
        ("migrations", |r| r.migrations),
        ("pgfault", |r| r.pgfault),
        ("pgmajfault", |r| r.pgmajfault),
        ("outputsize", |r| r.outputsize),
    ];
    for (name, f) in ints {
        c.push(Column::new(name, Int64, stored(name), move |r: &Run| {
            f(r.row).into()
        }));
    }
    let floats: [(&str, FloatField); 3] = [
        ("extract_ms", |r| r.extract_ms),
        ("transform_ms", |r| r.transform_ms),
        ("load_ms", |r| r.load_ms),
    ];
    for (name, f) in floats {
        c.push(Column::new(name, Float64, stored(name), move |r: &Run| {
            f(r.row).into()
        }));
    }
    // `samples` is a count of `resources` rows: never null.
    let counts: [(&str, CountField); 3] = [
        ("polls", |r| r.polls),
        ("retries", |r| r.retries),
        ("samples", |r| r.resources.len() as i64),
    ];
    for (name, f) in counts {
        c.push(Column::new(name, Int64, false, move |r: &Run| {
            Cell::Int(f(r.row))
        }));
    }
    c.push(Column::new(
        "activation_id",
        Utf8,
        stored("activation_id"),
        |r: &Run| opt_str(&r.row.activation_id),
    ));
    c.push(Column::new(
        "container",
        Utf8,
        stored("container"),
        |r: &Run| opt_str(&r.row.container),
    ));
    c.push(Column::new(
        "monitor_missing",
        Utf8,
        stored("monitor_missing"),
        |r: &Run| opt_str(&r.row.monitor_missing),
    ));
    c.push(Column::new(
        "start_ms",
        TimestampMs,
        stored("start_ms"),
        |r: &Run| r.row.start_ms.into(),
    ));
    c.push(Column::new(
        "end_ms",
        TimestampMs,
        stored("end_ms"),
        |r: &Run| r.row.end_ms.into(),
    ));
    c.push(Column::new(
        "intended_epoch_ns",
        TimestampNs,
        stored("intended_epoch_ns"),
        |r: &Run| Cell::Int(r.row.intended_epoch_ns),
    ));
    c.push(Column::new(
        "sent_epoch_ns",
        TimestampNs,
        stored("sent_epoch_ns"),
        |r: &Run| r.row.sent_epoch_ns.into(),
    ));
    c.push(Column::new(
        "answered_epoch_ns",
        TimestampNs,
        stored("answered_epoch_ns"),
        |r: &Run| r.row.answered_epoch_ns.into(),
    ));
    c
}

/// The `resources` table's columns (the original table's, keyed by load and run seq).
pub(super) fn sample_columns<'a>() -> Vec<Column<'a, Sample<'a>>> {
    use ColType::*;
    vec![
        Column::new("load_id", Int64, false, |s: &Sample| Cell::Int(s.load_id)),
        Column::new("seq", Int64, false, |s: &Sample| Cell::Int(s.seq)),
        Column::new("timestamp_ms", TimestampMs, false, |s: &Sample| {
            Cell::Int(s.res.timestamp_ms)
        }),
        Column::new("memory_B", Int64, true, |s: &Sample| s.res.memory_b.into()),
        Column::new("proc_mCPU", Int64, true, |s: &Sample| {
            s.res.proc_mcpu.into()
        }),
        Column::new("cpu_ns", Int64, true, |s: &Sample| s.res.cpu_ns.into()),
    ]
}
#[cfg(test)]
mod tests {
    use super::*;

    /// Every exported run column that comes from a `runs` column names one (a typo would
    /// silently make it nullable) and has its nullability.
    #[test]
    fn store_backed_columns_have_the_store_nullability() {
        let not_from_runs = ["function", "kind", "input_kind", "samples"];
        for c in run_columns(&[]) {
            if not_from_runs.contains(&c.name.as_str()) {
                continue;
            }
            let name = if c.name == "user" {
                "user_name"
            } else {
                &c.name
            };
            let s = run_column(name).unwrap_or_else(|| panic!("{name} is not a runs column"));
            assert_eq!(c.nullable, !s.not_null, "{name}");
        }
        assert!(!stored("queue_ns") && stored("http_status"));
    }
}
