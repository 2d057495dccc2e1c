//! End-to-end tests of the results store on real SQLite, PostgreSQL and MariaDB: 10,000
//! synthetic rows through the batching writer, read back and checked field by field
//! (original columns included: `init_ms` NULL when warm, `parameters` rows, `resources`
//! rows from monitor samples with cumulative `proc_mCPU`), an interrupted load, and a
//! flush within about a second with the channel still open.
//!
//! PostgreSQL and MariaDB come from `cargo xtask test` (`ensure_postgres`,
//! `ensure_mariadb`), which sets `FAASLOAD_TEST_POSTGRES_URL` and
//! `FAASLOAD_TEST_MYSQL_URL`; without them these tests fail with the reason.
use std::time::{Duration, Instant};

use faasload_protocol::OutcomeClass;
use faasload_results::store::{FunctionMeta, LoadMeta, LoadStatus, ResourceRow, Store, StoredRow};
use faasload_tests::store_rows::{FUNCTIONS, START_MS, class_of, cold, synth};
use serde_json::Value;

const ROWS: u64 = 10_000;

fn i64s(v: Option<u64>) -> Option<i64> {
    v.map(|x| x as i64)
}

/// Checks stored row `s` against the synthetic row it came from.
fn check(s: &StoredRow, load: i64) {
    let i = s.seq as u64;
    let r = synth(i);
    let ctx = format!("row seq {i}");
    let rec = r.record.as_ref();
    assert_eq!(s.load_id, load, "{ctx}");
    assert_eq!((&s.user, &s.namespace), (&r.user, &r.namespace), "{ctx}");
    assert_eq!((&s.function, &s.action), (&r.function, &r.action), "{ctx}");
    assert_eq!(s.input, r.input, "{ctx}");
    // Original columns.
    assert_eq!(s.failed, r.class != OutcomeClass::Success, "{ctx}");
    assert_eq!(
        s.activation_id.as_deref(),
        rec.map(|x| x.activation_id.as_str()),
        "{ctx}"
    );
    assert_eq!(s.start_ms, i64s(rec.map(|x| x.start_ms)), "{ctx}");
    assert_eq!(s.end_ms, i64s(rec.map(|x| x.end_ms)), "{ctx}");
    assert_eq!(s.wait_ms, i64s(rec.and_then(|x| x.wait_ms)), "{ctx}");
    // init_ms is NULL exactly when warm (or without a record).
    assert_eq!(s.init_ms.is_some(), rec.is_some() && cold(i), "{ctx}");
    assert_eq!(s.init_ms, i64s(rec.and_then(|x| x.init_ms)), "{ctx}");
    let etl = rec.is_some() && r.function == "wand_blur";
    assert_eq!(s.outputsize, etl.then_some(1000 + i as i64), "{ctx}");
    assert_eq!(s.extract_ms, etl.then_some(1.5), "{ctx}");
    assert_eq!(s.transform_ms, etl.then_some(i as f64 / 4.0), "{ctx}");
    assert_eq!(s.load_ms, etl.then_some(2.0), "{ctx}");
    // Added columns.
    let base = (START_MS * 1_000_000) as i64;
    assert_eq!(s.intended_epoch_ns, base + r.intended_ns as i64, "{ctx}");
    assert_eq!(s.sent_epoch_ns, r.sent_ns.map(|x| base + x as i64), "{ctx}");
    assert_eq!(
        s.answered_epoch_ns,
        r.answered_ns.map(|x| base + x as i64),
        "{ctx}"
    );
    assert_eq!(s.queue_ns, r.queue_ns as i64, "{ctx}");
    assert_eq!(s.lag_ns, i64s(r.lag_ns()), "{ctx}");
    assert_eq!(s.latency_ns, i64s(r.latency_ns()), "{ctx}");
    assert_eq!(s.duration_ms, i64s(rec.map(|x| x.duration_ms)), "{ctx}");
    assert_eq!(s.http_status, r.http_status.map(i64::from), "{ctx}");
    assert_eq!(s.class, r.class.as_str(), "{ctx}");
    assert_eq!(s.status.as_deref(), rec.map(|x| x.status.as_str()), "{ctx}");
    assert_eq!(s.error, r.error, "{ctx}");
    assert_eq!(s.cold, r.cold(), "{ctx}");
    assert_eq!(s.memory_mb, rec.map(|_| 256), "{ctx}");
    let m = &r.monitor;
    assert_eq!(s.container, m.container, "{ctx}");
    assert_eq!(
        [
            s.cpu_ns,
            s.cpu_user_ns,
            s.cpu_sys_ns,
            s.mem_peak_bytes,
            s.mem_avg_bytes,
            s.nvcsw,
            s.nivcsw,
            s.wakeups,
            s.migrations,
            s.pgfault,
            s.pgmajfault
        ],
        [
            m.cpu_ns,
            m.cpu_user_ns,
            m.cpu_sys_ns,
            m.mem_peak_bytes,
            m.mem_avg_bytes,
            m.nvcsw,
            m.nivcsw,
            m.wakeups,
            m.migrations,
            m.pgfault,
            m.pgmajfault
        ]
        .map(i64s),
        "{ctx}"
    );
    assert_eq!(s.monitor_missing, m.missing, "{ctx}");
    assert_eq!(
        (s.polls, s.retries),
        (r.polls as i64, r.retries as i64),
        "{ctx}"
    );
    assert_eq!(s.input_bytes, r.input_bytes.map(|b| b as i64), "{ctx}");
    // parameters rows: one per parameter, strings as they are, others as JSON.
    let mut got = s.params.clone();
    got.sort();
    let mut want: Vec<(String, String)> = r
        .params
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                o => o.to_string(),
            };
            (k.clone(), v)
        })
        .collect();
    want.sort();
    assert_eq!(got, want, "{ctx}");
    // resources rows: the monitor samples, proc_mCPU in ms of CPU since the first sample.
    let want: Vec<ResourceRow> = if m.samples.is_empty() {
        vec![]
    } else {
        (0..3)
            .map(|k| ResourceRow {
                timestamp_ms: (START_MS + i + 10 * k) as i64,
                memory_b: (k != 1).then_some((1 << 20) + k as i64),
                proc_mcpu: Some([0, 1, 3][k as usize]),
                cpu_ns: Some(5_000_000_000 + k as i64 * 1_500_000),
            })
            .collect()
    };
    assert_eq!(s.resources, want, "{ctx}");
}

/// The whole scenario on one store (sequential: the three loads share the database).
async fn scenario(url: &str) {
    let store = Store::open(url)
        .await
        .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    // Opening twice is fine (the schema exists).
    Store::open(url).await.expect("reopening").close().await;

    // 1. 10k rows through the writer.
    let mut meta = LoadMeta::new("tests/store.rs", START_MS);
    meta.seed = Some(u64::MAX - 1);
    meta.planned = Some(ROWS);
    meta.functions = FUNCTIONS
        .iter()
        .map(|f| FunctionMeta {
            name: f.to_string(),
            runtime: Some("python:3".into()),
            parameters: Some("sigma: {range_float: {min: 0.3, max: 100}}\n".into()),
            input_kind: Some("image".into()),
            ..FunctionMeta::default()
        })
        .collect();
    let load = store.begin_load(&meta).await.expect("begin_load");
    let info = store.loads().await.expect("loads");
    let l = info.iter().find(|l| l.id == load).expect("the new load");
    assert_eq!(l.status, LoadStatus::Running);
    assert_eq!(
        (l.seed, l.planned, l.rows),
        (Some(u64::MAX - 1), Some(ROWS as i64), 0)
    );

    let (tx, writer) = store.writer(load, Duration::from_secs(1));
    let producer = tokio::spawn(async move {
        for i in 0..ROWS {
            tx.send(synth(i)).await.expect("writer alive");
        }
    });
    producer.await.expect("producer");
    let stats = writer.await.expect("writer task").expect("writer");
    assert_eq!(stats.rows, ROWS);
    let want_params: u64 = (0..ROWS).map(|i| synth(i).params.len() as u64).sum();
    let want_res: u64 = (0..ROWS)
        .map(|i| synth(i).monitor.samples.len() as u64)
        .sum();
    assert_eq!((stats.parameters, stats.resources), (want_params, want_res));
    assert!(stats.batches >= 1 && stats.max_batch <= ROWS, "{stats:?}");
    store
        .end_load(load, LoadStatus::Completed)
        .await
        .expect("end_load");

    let rows = store.rows(load).await.expect("rows");
    assert_eq!(rows.len() as u64, ROWS);
    for (i, s) in rows.iter().enumerate() {
        assert_eq!(s.seq, i as i64, "rows come in schedule order");
        check(s, load);
    }
    let failed = (0..ROWS)
        .filter(|&i| class_of(i) != OutcomeClass::Success)
        .count() as i64;
    let l = store
        .loads()
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.id == load)
        .unwrap();
    assert_eq!(l.status, LoadStatus::Completed);
    assert_eq!((l.rows, l.failed), (ROWS as i64, failed));
    assert!(l.end_epoch_ms.is_some());

    // 2. An interrupted load keeps what was written.
    let load2 = store
        .begin_load(&LoadMeta::new("interrupted", START_MS))
        .await
        .unwrap();
    let (tx, writer) = store.writer(load2, Duration::from_secs(1));
    for i in 0..100 {
        tx.send(synth(i)).await.unwrap();
    }
    drop(tx);
    assert_eq!(writer.await.unwrap().unwrap().rows, 100);
    store
        .end_load(load2, LoadStatus::Interrupted)
        .await
        .unwrap();
    let l2 = store
        .loads()
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.id == load2)
        .unwrap();
    assert_eq!((l2.status, l2.rows), (LoadStatus::Interrupted, 100));
    for s in store.rows(load2).await.unwrap() {
        check(&s, load2);
    }
    let e = store
        .end_load(i64::MAX, LoadStatus::Completed)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no load"), "{e}");

    // 3. Rows reach the database within about flush_every, the channel still open.
    let load3 = store
        .begin_load(&LoadMeta::new("flush", START_MS))
        .await
        .unwrap();
    let (tx, writer) = store.writer(load3, Duration::from_secs(1));
    let t0 = Instant::now();
    for i in 0..5 {
        tx.send(synth(i)).await.unwrap();
    }
    let mut seen = 0;
    while t0.elapsed() < Duration::from_secs(5) {
        seen = store.rows(load3).await.unwrap().len();
        if seen == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = t0.elapsed();
    assert_eq!(
        seen, 5,
        "rows not flushed after {took:?} with flush_every = 1 s"
    );
    assert!(
        took >= Duration::from_millis(900),
        "flushed after {took:?}: before flush_every, so not batched"
    );
    assert!(!writer.is_finished(), "the writer must still be running");
    drop(tx);
    assert_eq!(writer.await.unwrap().unwrap().rows, 5);
    store.end_load(load3, LoadStatus::Completed).await.unwrap();
    store.close().await;
}

fn url_from_env(var: &str, what: &str) -> String {
    match std::env::var(var) {
        Ok(u) if !u.is_empty() => u,
        _ => panic!(
            "{var} is not set: this test needs a {what} server; `cargo xtask test` starts one \
             and sets it (this test never skips)"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("results.db").display());
    scenario(&url).await;
    // A bare path is a SQLite file too, and the data is still there.
    let store = Store::open(&dir.path().join("results.db").display().to_string())
        .await
        .unwrap();
    assert_eq!(store.loads().await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store() {
    scenario(&url_from_env("FAASLOAD_TEST_POSTGRES_URL", "PostgreSQL")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_store() {
    scenario(&url_from_env("FAASLOAD_TEST_MYSQL_URL", "MariaDB")).await;
}

#[tokio::test]
async fn bad_urls_say_why() {
    let e = Store::open("redis://x:secret@h/0")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unsupported scheme") && !e.contains("secret"),
        "{e}"
    );
    let e = Store::open("postgres://u:pw@127.0.0.1:1/none")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("connecting to postgres://u:***@127.0.0.1:1/none"),
        "{e}"
    );
}
