//! The exported tables' columns: one row per run (`runs`) and one row per monitor sample
//! (`resources`), with names that carry their unit and the store's nullability. The
//! README's "Exporting a dataset" section documents them.
use std::collections::HashMap;

use super::params;
use super::table::{Cell, ColType, Column};
use crate::store::{FunctionMeta, ResourceRow, StoredRow};

/// A run with its function's metadata (from `functions`).
pub struct Run<'a> {
    pub row: &'a StoredRow,
    pub function: Option<&'a FunctionMeta>,
}

/// A monitor sample with the run it belongs to.
pub struct Sample<'a> {
    pub load_id: i64,
    pub seq: i64,
    pub res: &'a ResourceRow,
}

/// The runs of a load, each with its function's metadata.
pub fn runs<'a>(
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
pub fn samples(rows: &[StoredRow]) -> Vec<Sample<'_>> {
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

fn opt_str(s: &Option<String>) -> Cell<'_> {
    s.as_deref().into()
}

/// The `runs` table's columns, with one `param_<name>` column per (name, type) of
/// `params` (see [`params::Inference`]).
pub fn run_columns<'a>(params: &[(String, ColType)]) -> Vec<Column<'a, Run<'a>>> {
    use ColType::*;
    type C<'a> = Column<'a, Run<'a>>;
    let mut c: Vec<C<'a>> = vec![
        Column::new("load_id", Int64, false, |r: &Run| Cell::Int(r.row.load_id)),
        Column::new("seq", Int64, false, |r: &Run| Cell::Int(r.row.seq)),
        Column::new("function", Utf8, false, |r: &Run| {
            Cell::Str(&r.row.function)
        }),
        Column::new("action", Utf8, false, |r: &Run| Cell::Str(&r.row.action)),
        Column::new("kind", Utf8, true, |r: &Run| {
            r.function.and_then(|f| f.runtime.as_deref()).into()
        }),
        Column::new("input_kind", Utf8, true, |r: &Run| {
            r.function.and_then(|f| f.input_kind.as_deref()).into()
        }),
        Column::new("user", Utf8, false, |r: &Run| Cell::Str(&r.row.user)),
        Column::new("namespace", Utf8, false, |r: &Run| {
            Cell::Str(&r.row.namespace)
        }),
        Column::new("memory_mb", Int64, true, |r: &Run| r.row.memory_mb.into()),
        Column::new("input", Utf8, true, |r: &Run| opt_str(&r.row.input)),
        Column::new("input_bytes", Int64, true, |r: &Run| {
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
    c.push(Column::new("cold", Bool, true, |r: &Run| r.row.cold.into()));
    c.push(Column::new("failed", Bool, false, |r: &Run| {
        Cell::Bool(r.row.failed)
    }));
    c.push(Column::new("class", Utf8, false, |r: &Run| {
        Cell::Str(&r.row.class)
    }));
    c.push(Column::new("status", Utf8, true, |r: &Run| {
        opt_str(&r.row.status)
    }));
    c.push(Column::new("error", Utf8, true, |r: &Run| {
        opt_str(&r.row.error)
    }));
    let ints: [(&str, bool, IntField); 19] = [
        ("http_status", true, |r| r.http_status),
        ("duration_ms", true, |r| r.duration_ms),
        ("init_ms", true, |r| r.init_ms),
        ("wait_ms", true, |r| r.wait_ms),
        ("queue_ns", false, |r| Some(r.queue_ns)),
        ("lag_ns", true, |r| r.lag_ns),
        ("latency_ns", true, |r| r.latency_ns),
        ("cpu_user_ns", true, |r| r.cpu_user_ns),
        ("cpu_sys_ns", true, |r| r.cpu_sys_ns),
        ("cpu_ns", true, |r| r.cpu_ns),
        ("mem_peak_bytes", true, |r| r.mem_peak_bytes),
        ("mem_avg_bytes", true, |r| r.mem_avg_bytes),
        ("nvcsw", true, |r| r.nvcsw),
        ("nivcsw", true, |r| r.nivcsw),
        ("wakeups", true, |r| r.wakeups),
        ("migrations", true, |r| r.migrations),
        ("pgfault", true, |r| r.pgfault),
        ("pgmajfault", true, |r| r.pgmajfault),
        ("outputsize", true, |r| r.outputsize),
    ];
    for (name, nullable, f) in ints {
        c.push(Column::new(name, Int64, nullable, move |r: &Run| {
            f(r.row).into()
        }));
    }
    let floats: [(&str, FloatField); 3] = [
        ("extract_ms", |r| r.extract_ms),
        ("transform_ms", |r| r.transform_ms),
        ("load_ms", |r| r.load_ms),
    ];
    for (name, f) in floats {
        c.push(Column::new(name, Float64, true, move |r: &Run| {
            f(r.row).into()
        }));
    }
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
    c.push(Column::new("activation_id", Utf8, true, |r: &Run| {
        opt_str(&r.row.activation_id)
    }));
    c.push(Column::new("container", Utf8, true, |r: &Run| {
        opt_str(&r.row.container)
    }));
    c.push(Column::new("monitor_missing", Utf8, true, |r: &Run| {
        opt_str(&r.row.monitor_missing)
    }));
    c.push(Column::new("start_ms", TimestampMs, true, |r: &Run| {
        r.row.start_ms.into()
    }));
    c.push(Column::new("end_ms", TimestampMs, true, |r: &Run| {
        r.row.end_ms.into()
    }));
    c.push(Column::new(
        "intended_epoch_ns",
        TimestampNs,
        false,
        |r: &Run| Cell::Int(r.row.intended_epoch_ns),
    ));
    c.push(Column::new(
        "sent_epoch_ns",
        TimestampNs,
        true,
        |r: &Run| r.row.sent_epoch_ns.into(),
    ));
    c.push(Column::new(
        "answered_epoch_ns",
        TimestampNs,
        true,
        |r: &Run| r.row.answered_epoch_ns.into(),
    ));
    c
}

/// The `resources` table's columns (the original table's, keyed by load and run seq).
pub fn sample_columns<'a>() -> Vec<Column<'a, Sample<'a>>> {
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
