//! The store's round trip on SQLite: what the writer puts in each `runs` column is what
//! the reader gives back in the field of that name.
use std::collections::HashMap;

use serde_json::{Map, json};

use super::db::Val;
use super::schema::{RUN_COLUMNS, RunSource};
use super::*;
use faasload_protocol::{ActivationRecord, OutcomeClass};

/// A run whose every column gets a value no other column has, so a value read into the
/// wrong field shows.
fn distinct_row() -> RunRow {
    RunRow {
        seq: 21,
        user: "user".into(),
        namespace: "ns".into(),
        function: "fun".into(),
        action: "action".into(),
        input: Some("input".into()),
        input_bytes: Some(22),
        params: Map::new(),
        intended_ns: 100,
        sent_ns: Some(127),
        answered_ns: Some(228),
        queue_ns: 29,
        run_start_epoch_ms: 5,
        // Not failed (false), while cold (true).
        class: OutcomeClass::Success,
        http_status: Some(502),
        error: Some("boom".into()),
        polls: 30,
        retries: 31,
        record: Some(ActivationRecord {
            activation_id: "act".into(),
            namespace: "ns".into(),
            name: "action".into(),
            start_ms: 11,
            end_ms: 12,
            duration_ms: 13,
            status: "record status".into(),
            success: true,
            result: json!({"outputsize": 14, "times": {"extract": 15.5, "transform": 16.5, "load": 17.5}}),
            wait_ms: Some(18),
            init_ms: Some(19),
            kind: Some("python:3".into()),
            timeout: false,
            memory_mb: Some(20),
            logs: vec![],
        }),
        monitor: MonitorReading {
            cpu_ns: Some(32),
            cpu_user_ns: Some(33),
            cpu_sys_ns: Some(34),
            mem_peak_bytes: Some(35),
            mem_avg_bytes: Some(36),
            nvcsw: Some(37),
            nivcsw: Some(38),
            wakeups: Some(39),
            migrations: Some(40),
            pgfault: Some(41),
            pgmajfault: Some(42),
            container: Some("ctr".into()),
            samples: vec![],
            missing: Some("why".into()),
        },
    }
}

/// The field of `s` read from the `runs` column `name` (the oracle: written by hand, not
/// from the reader's code).
fn field(s: &StoredRow, function_id: i64, name: &str) -> Val {
    let i = |v: Option<i64>| Val::I(v);
    let t = |v: &Option<String>| Val::S(v.clone());
    match name {
        "function" => i(Some(function_id)),
        "namespace" => Val::S(Some(s.namespace.clone())),
        "activation_id" => t(&s.activation_id),
        "failed" => Val::B(Some(s.failed)),
        "start_ms" => i(s.start_ms),
        "end_ms" => i(s.end_ms),
        "wait_ms" => i(s.wait_ms),
        "init_ms" => i(s.init_ms),
        "outputsize" => i(s.outputsize),
        "extract_ms" => Val::F(s.extract_ms),
        "transform_ms" => Val::F(s.transform_ms),
        "load_ms" => Val::F(s.load_ms),
        "load_id" => i(Some(s.load_id)),
        "seq" => i(Some(s.seq)),
        "user_name" => Val::S(Some(s.user.clone())),
        "action" => Val::S(Some(s.action.clone())),
        "input" => t(&s.input),
        "intended_epoch_ns" => i(Some(s.intended_epoch_ns)),
        "sent_epoch_ns" => i(s.sent_epoch_ns),
        "answered_epoch_ns" => i(s.answered_epoch_ns),
        "queue_ns" => i(Some(s.queue_ns)),
        "lag_ns" => i(s.lag_ns),
        "latency_ns" => i(s.latency_ns),
        "duration_ms" => i(s.duration_ms),
        "http_status" => i(s.http_status),
        "class" => Val::S(Some(s.class.clone())),
        "status" => t(&s.status),
        "error" => t(&s.error),
        "cold" => Val::B(s.cold),
        "memory_mb" => i(s.memory_mb),
        "container" => t(&s.container),
        "cpu_user_ns" => i(s.cpu_user_ns),
        "cpu_sys_ns" => i(s.cpu_sys_ns),
        "cpu_ns" => i(s.cpu_ns),
        "mem_peak_bytes" => i(s.mem_peak_bytes),
        "mem_avg_bytes" => i(s.mem_avg_bytes),
        "nvcsw" => i(s.nvcsw),
        "nivcsw" => i(s.nivcsw),
        "wakeups" => i(s.wakeups),
        "migrations" => i(s.migrations),
        "pgfault" => i(s.pgfault),
        "pgmajfault" => i(s.pgmajfault),
        "monitor_missing" => t(&s.monitor_missing),
        "polls" => i(Some(s.polls)),
        "retries" => i(Some(s.retries)),
        "input_bytes" => i(s.input_bytes),
        other => panic!("runs column {other} has no StoredRow field in this test: add it"),
    }
}

#[tokio::test]
async fn every_column_reads_back_into_its_own_field() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let store = Store::open(&url).await.unwrap();
    // Load 2 (function 1): ids differ too.
    store.begin_load(&LoadMeta::new("t", 5)).await.unwrap();
    let load = store.begin_load(&LoadMeta::new("t", 5)).await.unwrap();
    let row = distinct_row();
    let mut functions = HashMap::new();
    store
        .write_now(load, &mut functions, std::slice::from_ref(&row))
        .await
        .unwrap();
    let function_id = functions["fun"];
    let stored = store.rows(load).await.unwrap();
    assert_eq!(stored.len(), 1);
    let s = &stored[0];
    assert_eq!(s.function, "fun");
    let src = RunSource {
        run: &row,
        load_id: load,
        function_id,
    };
    let mut seen = std::collections::HashSet::new();
    for c in RUN_COLUMNS {
        let written = (c.value)(&src);
        assert_eq!(field(s, function_id, c.name), written, "runs.{}", c.name);
        // Distinct values: a field read from another column would differ.
        assert!(
            seen.insert(format!("{written:?}")),
            "{} repeats a value",
            c.name
        );
    }
    store.close().await;
}
