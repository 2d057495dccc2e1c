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
            init_cpu_ns: Some(43),
            init_mem_peak_bytes: Some(44),
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
        "init_cpu_ns" => i(s.init_cpu_ns),
        "init_mem_peak_bytes" => i(s.init_mem_peak_bytes),
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

/// A store that starts refusing rows mid-load (a trigger stands for a full disk): the
/// spilling writer stores what it can, journals the refused batch and every later row
/// (none lost, the channel stays open), and `load_journal` puts them back into the same
/// load once the store takes rows again; loading it twice adds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_the_store_refuses_go_to_the_journal_and_load_back() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let store = Store::open(&url).await.unwrap();
    let meta = LoadMeta::new("trace.yaml", 1_700_000_000_000);
    let load = store.begin_load(&meta).await.unwrap();
    let spec = JournalSpec {
        dir: dir.path().join("spill"),
        header: JournalHeader {
            version: journal::JOURNAL_VERSION,
            store: url.clone(),
            load_id: load,
            meta: meta.clone(),
            reason: String::new(),
        },
    };
    let Pool::Sqlite(p) = &store.pool else {
        unreachable!()
    };
    sqlx::raw_sql(
        "CREATE TRIGGER full BEFORE INSERT ON runs WHEN NEW.seq >= 50 \
         BEGIN SELECT RAISE(ABORT, 'database or disk is full (test)'); END",
    )
    .execute(p)
    .await
    .unwrap();
    let (tx, writer) = store.writer_spilling(load, Duration::from_millis(50), spec.clone());
    let row = |seq: u64| RunRow {
        seq,
        params: serde_json::from_value(json!({"n": seq})).unwrap(),
        ..distinct_row()
    };
    for seq in 0..50 {
        tx.send(row(seq)).await.unwrap();
    }
    // The first 50 are written before the others come.
    for _ in 0..100 {
        if store.run_seqs(load).await.unwrap().len() == 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for seq in 50..200 {
        tx.send(row(seq)).await.expect("the channel stays open");
    }
    drop(tx);
    let end = writer.await.unwrap();
    assert_eq!(end.stats.rows, 50, "{end:?}");
    assert_eq!((end.stats.spilled, end.stats.lost), (150, 0), "{end:?}");
    let e = end.error.as_ref().unwrap().to_string();
    assert!(e.contains("disk is full (test)"), "{e}");
    let path = end.journal.clone().unwrap();
    assert_eq!(path, spec.path());
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 151, "the load line, then one per row");
    assert!(text.lines().next().unwrap().contains("disk is full (test)"));
    journal::append_end(
        &path,
        &JournalEnd {
            status: LoadStatus::Completed,
            rows: 150,
        },
    )
    .unwrap();
    sqlx::raw_sql("DROP TRIGGER full").execute(p).await.unwrap();
    let done = journal::load_journal(&store, &path).await.unwrap();
    assert_eq!(
        (done.load_id, done.created, done.written, done.skipped),
        (load, false, 150, 0)
    );
    assert_eq!(done.status, Some(LoadStatus::Completed));
    assert_eq!(
        store.run_seqs(load).await.unwrap(),
        (0..200).collect::<Vec<_>>()
    );
    let rows = store.rows(load).await.unwrap();
    assert_eq!(rows[120].params, vec![("n".to_string(), "120".to_string())]);
    let info = store.loads().await.unwrap().pop().unwrap();
    assert_eq!((info.status, info.rows), (LoadStatus::Completed, 200));
    // Again: nothing added.
    let again = journal::load_journal(&store, &path).await.unwrap();
    assert_eq!((again.written, again.skipped), (0, 150));
    // Into another store: a new load with the journal's metadata.
    let other = Store::open(&format!(
        "sqlite://{}",
        dir.path().join("other.db").display()
    ))
    .await
    .unwrap();
    let moved = journal::load_journal(&other, &path).await.unwrap();
    assert!(moved.created);
    assert_eq!(moved.written, 150);
    let l = other.loads().await.unwrap().pop().unwrap();
    assert_eq!(
        (l.origin.as_str(), l.start_epoch_ms, l.status),
        ("trace.yaml", 1_700_000_000_000, LoadStatus::Completed)
    );
    // A damaged journal is refused with its line, before anything is written.
    std::fs::write(&path, text.replacen("\"run\"", "\"rum\"", 1) + "\n").unwrap();
    let e = journal::load_journal(&other, &path)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(":2:"), "{e}");
    other.close().await;
    store.close().await;
}

/// Reading never creates: a missing SQLite file is an error (and stays missing), and a
/// store an older faasload made (no heartbeat column) is read without being changed.
#[tokio::test]
async fn reading_opens_read_only_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("mistyped.db");
    let e = Store::open_read(&format!("sqlite://{}", missing.display()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no SQLite store at") && e.contains("mistyped.db"),
        "{e}"
    );
    assert!(
        !missing.exists(),
        "a reading command created {}",
        missing.display()
    );
    // An older store: drop the heartbeat column.
    let path = dir.path().join("old.db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::open(&url).await.unwrap();
    let load = store.begin_load(&LoadMeta::new("t", 5)).await.unwrap();
    let Pool::Sqlite(p) = &store.pool else {
        unreachable!()
    };
    sqlx::raw_sql("ALTER TABLE loads DROP COLUMN heartbeat_epoch_ms")
        .execute(p)
        .await
        .unwrap();
    store.close().await;
    let read = Store::open_read(&url).await.unwrap();
    let loads = read.loads().await.unwrap();
    assert_eq!((loads[0].id, loads[0].heartbeat_epoch_ms), (load, None));
    assert_eq!(loads[0].state_now(), LoadState::Running);
    read.close().await;
    let again = Store::open_read(&url).await.unwrap();
    let Pool::Sqlite(p) = &again.pool else {
        unreachable!()
    };
    let has: Result<Vec<sqlx::sqlite::SqliteRow>, _> =
        sqlx::query("SELECT heartbeat_epoch_ms FROM loads")
            .fetch_all(p)
            .await;
    assert!(has.is_err(), "reading added a column");
    // Writing through it is refused by SQLite itself.
    let e = again
        .end_load(load, LoadStatus::Completed)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("readonly"), "{e}");
    again.close().await;
}
