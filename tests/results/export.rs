//! End-to-end tests of `faasload export`: a SQLite store filled with known synthetic rows
//! (`support/store_rows.rs`, through the store's batching writer), exported by the real
//! binary to Parquet and CSV, then read back with the Rust readers (schema: names, types
//! and nullability; row counts; every row's values against the rows written; the
//! resources table too) and with pyarrow and pandas from PyPI. Also the error cases
//! (unknown load, empty load, unwritable path, unknown format, missing store), and the
//! same export from the PostgreSQL and MariaDB test servers (`FAASLOAD_TEST_POSTGRES_URL`,
//! `FAASLOAD_TEST_MYSQL_URL`, set by `cargo xtask test`).
//!
//! pyarrow and pandas live in a virtualenv made by `cargo xtask test` (`xtask/src/pyarrow.rs`),
//! which sets `FAASLOAD_TEST_PYARROW_PYTHON` to its interpreter; without it the Python
//! test fails with the reason (it never skips).
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use faasload_protocol::OutcomeClass;
use faasload_results::store::{FunctionMeta, LoadMeta, LoadStatus, Store};
use faasload_tests::store_rows::{FUNCTIONS, START_MS, synth};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::Value;

/// Runs of the main load (every outcome class of `synth` occurs: they repeat every 100).
const N: u64 = 300;

/// The `runs` table's columns for `synth` rows: (name, type, nullable), in file order.
/// Types are named as pyarrow prints them.
const RUN_SCHEMA: &[(&str, &str, bool)] = &[
    ("load_id", "int64", false),
    ("seq", "int64", false),
    ("function", "string", false),
    ("action", "string", false),
    ("kind", "string", true),
    ("input_kind", "string", true),
    ("user", "string", false),
    ("namespace", "string", false),
    ("memory_mb", "int64", true),
    ("input", "string", true),
    ("input_bytes", "int64", true),
    ("param_flag", "bool", true),
    ("param_format", "string", true),
    ("param_sigma", "double", true),
    ("cold", "bool", true),
    ("failed", "bool", false),
    ("class", "string", false),
    ("status", "string", true),
    ("error", "string", true),
    ("http_status", "int64", true),
    ("duration_ms", "int64", true),
    ("init_ms", "int64", true),
    ("wait_ms", "int64", true),
    ("queue_ns", "int64", false),
    ("lag_ns", "int64", true),
    ("latency_ns", "int64", true),
    ("cpu_user_ns", "int64", true),
    ("cpu_sys_ns", "int64", true),
    ("cpu_ns", "int64", true),
    ("mem_peak_bytes", "int64", true),
    ("mem_avg_bytes", "int64", true),
    ("init_cpu_ns", "int64", true),
    ("init_mem_peak_bytes", "int64", true),
    ("nvcsw", "int64", true),
    ("nivcsw", "int64", true),
    ("wakeups", "int64", true),
    ("migrations", "int64", true),
    ("pgfault", "int64", true),
    ("pgmajfault", "int64", true),
    ("outputsize", "int64", true),
    ("extract_ms", "double", true),
    ("transform_ms", "double", true),
    ("load_ms", "double", true),
    ("polls", "int64", false),
    ("retries", "int64", false),
    ("samples", "int64", false),
    ("activation_id", "string", true),
    ("container", "string", true),
    ("monitor_missing", "string", true),
    ("start_ms", "timestamp[ms, tz=UTC]", true),
    ("end_ms", "timestamp[ms, tz=UTC]", true),
    ("intended_epoch_ns", "timestamp[ns, tz=UTC]", false),
    ("sent_epoch_ns", "timestamp[ns, tz=UTC]", true),
    ("answered_epoch_ns", "timestamp[ns, tz=UTC]", true),
];

const RESOURCE_SCHEMA: &[(&str, &str, bool)] = &[
    ("load_id", "int64", false),
    ("seq", "int64", false),
    ("timestamp_ms", "timestamp[ms, tz=UTC]", false),
    ("memory_B", "int64", true),
    ("proc_mCPU", "int64", true),
    ("cpu_ns", "int64", true),
];

/// The kind given to each function. Every function has one: `functions` is shared by
/// the loads of a store (and a kind, once set, is kept by a later load that gives none).
fn kind_of(function: &str) -> Option<&'static str> {
    match function {
        "sharp_resize" => Some("nodejs:20"),
        _ => Some("python:3"),
    }
}

/// Writes a load of `synth(0..n)` rows to `store` and ends it; returns its id.
async fn write_load(store: &Store, origin: &str, n: u64) -> i64 {
    let mut meta = LoadMeta::new(origin, START_MS);
    meta.functions = FUNCTIONS
        .iter()
        .map(|f| FunctionMeta {
            name: f.to_string(),
            runtime: kind_of(f).map(str::to_string),
            input_kind: Some("image".into()),
            ..FunctionMeta::default()
        })
        .collect();
    let load = store.begin_load(&meta).await.expect("begin_load");
    let (tx, writer) = store.writer(load, Duration::from_millis(200));
    for i in 0..n {
        tx.send(synth(i)).await.expect("writer alive");
    }
    drop(tx);
    assert_eq!(writer.await.unwrap().expect("writer").rows, n);
    store.end_load(load, LoadStatus::Completed).await.unwrap();
    load
}

fn export(args: &[&str]) -> Output {
    Command::new(faasload_tests::bin())
        .arg("export")
        .args(args)
        .output()
        .expect("running faasload export")
}

fn ok(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "faasload export failed: {err}");
    err
}

fn fails_with(o: &Output, want: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "expected a failure ({want}), got success: {err}"
    );
    assert!(err.contains(want), "expected {want:?} in: {err}");
}

/// The schema of a Parquet file as (name, pyarrow-style type, nullable), and its rows.
fn parquet_schema(path: &Path) -> (Vec<(String, String, bool)>, i64) {
    use parquet::basic::{LogicalType, TimeUnit, Type as P};
    let r = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let md = r.metadata().file_metadata();
    let cols = md
        .schema_descr()
        .columns()
        .iter()
        .map(|c| {
            let ty = match (c.physical_type(), c.logical_type_ref()) {
                (P::INT64, None) => "int64".to_string(),
                (P::DOUBLE, None) => "double".into(),
                (P::BOOLEAN, None) => "bool".into(),
                (P::BYTE_ARRAY, Some(LogicalType::String)) => "string".into(),
                (P::INT64, Some(LogicalType::Timestamp(t))) if t.is_adjusted_to_u_t_c => {
                    match t.unit {
                        TimeUnit::MILLIS => "timestamp[ms, tz=UTC]".into(),
                        TimeUnit::NANOS => "timestamp[ns, tz=UTC]".into(),
                        u => format!("timestamp {u:?}"),
                    }
                }
                (p, l) => format!("{p:?} {l:?}"),
            };
            (c.name().to_string(), ty, c.self_type().is_optional())
        })
        .collect();
    (cols, md.num_rows())
}

fn owned(s: &[(&str, &str, bool)]) -> Vec<(String, String, bool)> {
    s.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
        .collect()
}

/// A value read back, whatever the reader.
#[derive(Clone, Debug, PartialEq)]
enum V {
    Null,
    I(i64),
    F(f64),
    B(bool),
    S(String),
}

fn v_of(f: &Field) -> V {
    match f {
        Field::Null => V::Null,
        Field::Bool(b) => V::B(*b),
        Field::Long(i) | Field::TimestampMillis(i) => V::I(*i),
        Field::Double(x) => V::F(*x),
        Field::Str(s) => V::S(s.clone()),
        other => panic!("unexpected Parquet field {other:?}"),
    }
}

/// Every row of a Parquet file as name -> value.
fn parquet_rows(path: &Path) -> Vec<HashMap<String, V>> {
    let r = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    r.get_row_iter(None)
        .unwrap()
        .map(|row| {
            row.unwrap()
                .get_column_iter()
                .map(|(n, f)| (n.clone(), v_of(f)))
                .collect()
        })
        .collect()
}

fn i(v: Option<u64>) -> V {
    v.map_or(V::Null, |x| V::I(x as i64))
}

fn s(v: Option<&str>) -> V {
    v.map_or(V::Null, |x| V::S(x.to_string()))
}

/// The exported values of run `seq` of load `load`, from what `synth` wrote.
fn expected_run(load: i64, seq: u64) -> Vec<(&'static str, V)> {
    let r = synth(seq);
    let rec = r.record.as_ref();
    let m = &r.monitor;
    let etl = rec.is_some() && r.function == "wand_blur";
    let base = (START_MS * 1_000_000) as i64;
    vec![
        ("load_id", V::I(load)),
        ("seq", V::I(seq as i64)),
        ("function", V::S(r.function.clone())),
        ("action", V::S(r.action.clone())),
        ("kind", s(kind_of(&r.function))),
        ("input_kind", V::S("image".into())),
        ("user", V::S(r.user.clone())),
        ("memory_mb", i(rec.and_then(|x| x.memory_mb))),
        ("input", s(r.input.as_deref())),
        ("input_bytes", i(r.input_bytes)),
        (
            "param_sigma",
            if seq % 3 >= 1 {
                V::F(seq as f64 / 8.0)
            } else {
                V::Null
            },
        ),
        (
            "param_format",
            if seq % 3 == 2 {
                V::S("webp".into())
            } else {
                V::Null
            },
        ),
        (
            "param_flag",
            if seq % 3 == 2 { V::B(true) } else { V::Null },
        ),
        ("cold", r.cold().map_or(V::Null, V::B)),
        ("failed", V::B(r.class != OutcomeClass::Success)),
        ("class", V::S(r.class.as_str().into())),
        ("status", s(rec.map(|x| x.status.as_str()))),
        ("error", s(r.error.as_deref())),
        ("http_status", i(r.http_status.map(u64::from))),
        ("duration_ms", i(rec.map(|x| x.duration_ms))),
        ("init_ms", i(rec.and_then(|x| x.init_ms))),
        ("wait_ms", i(rec.and_then(|x| x.wait_ms))),
        ("queue_ns", V::I(r.queue_ns as i64)),
        ("lag_ns", i(r.lag_ns())),
        ("latency_ns", i(r.latency_ns())),
        ("cpu_user_ns", i(m.cpu_user_ns)),
        ("cpu_sys_ns", i(m.cpu_sys_ns)),
        ("cpu_ns", i(m.cpu_ns)),
        ("mem_peak_bytes", i(m.mem_peak_bytes)),
        ("mem_avg_bytes", i(m.mem_avg_bytes)),
        ("init_cpu_ns", i(m.init_cpu_ns)),
        ("init_mem_peak_bytes", i(m.init_mem_peak_bytes)),
        ("nvcsw", i(m.nvcsw)),
        ("nivcsw", i(m.nivcsw)),
        ("wakeups", i(m.wakeups)),
        ("migrations", i(m.migrations)),
        ("pgfault", i(m.pgfault)),
        ("pgmajfault", i(m.pgmajfault)),
        (
            "outputsize",
            if etl {
                V::I(1000 + seq as i64)
            } else {
                V::Null
            },
        ),
        ("extract_ms", if etl { V::F(1.5) } else { V::Null }),
        (
            "transform_ms",
            if etl { V::F(seq as f64 / 4.0) } else { V::Null },
        ),
        ("load_ms", if etl { V::F(2.0) } else { V::Null }),
        ("polls", V::I(r.polls as i64)),
        ("retries", V::I(r.retries as i64)),
        ("samples", V::I(m.samples.len() as i64)),
        ("activation_id", s(rec.map(|x| x.activation_id.as_str()))),
        ("container", s(m.container.as_deref())),
        ("monitor_missing", s(m.missing.as_deref())),
        ("start_ms", i(rec.map(|x| x.start_ms))),
        ("end_ms", i(rec.map(|x| x.end_ms))),
        ("intended_epoch_ns", V::I(base + r.intended_ns as i64)),
        (
            "sent_epoch_ns",
            r.sent_ns.map_or(V::Null, |x| V::I(base + x as i64)),
        ),
        (
            "answered_epoch_ns",
            r.answered_ns.map_or(V::Null, |x| V::I(base + x as i64)),
        ),
    ]
}

/// The resources rows `synth(0..n)` give: (seq, timestamp_ms, memory_B, proc_mCPU, cpu_ns).
fn expected_samples(n: u64) -> Vec<[V; 5]> {
    let mut out = Vec::new();
    for seq in 0..n {
        let r = synth(seq);
        for (k, (ts, mem, cpu)) in r.monitor.samples.iter().enumerate() {
            out.push([
                V::I(seq as i64),
                V::I(*ts as i64),
                i(*mem),
                V::I([0, 1, 3][k]),
                i(*cpu),
            ]);
        }
    }
    out
}

/// Checks the Parquet runs file `out` and resources file `res` of load `load`, made of
/// `synth(0..n)`: schemas, row counts, every value.
fn check_parquet(out: &Path, res: &Path, load: i64, n: u64) {
    let (schema, rows) = parquet_schema(out);
    assert_eq!(schema, owned(RUN_SCHEMA));
    assert_eq!(rows, n as i64);
    let got = parquet_rows(out);
    assert_eq!(got.len() as u64, n);
    for (seq, row) in got.iter().enumerate() {
        for (name, want) in expected_run(load, seq as u64) {
            assert_eq!(row.get(name), Some(&want), "run {seq}, column {name}");
        }
    }

    let want = expected_samples(n);
    let (schema, rows) = parquet_schema(res);
    assert_eq!(schema, owned(RESOURCE_SCHEMA));
    assert_eq!(rows, want.len() as i64);
    assert!(rows > 0);
    let got = parquet_rows(res);
    for (k, (row, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(row["load_id"], V::I(load), "sample {k}");
        let vals =
            ["seq", "timestamp_ms", "memory_B", "proc_mCPU", "cpu_ns"].map(|c| row[c].clone());
        assert_eq!(&vals, w, "sample {k}");
    }
}

/// A store with a small load (5 runs) then the main load (N runs); returns (url, small,
/// main).
async fn fixture(dir: &Path) -> (String, i64, i64) {
    let url = format!("sqlite://{}", dir.join("results.db").display());
    let store = Store::open(&url).await.unwrap();
    let small = write_load(&store, "small", 5).await;
    let main = write_load(&store, "main", N).await;
    store.close().await;
    (url, small, main)
}

/// Parquet export of the last load, read back with the Rust reader: schema (names,
/// types, nullability), row counts, and every value of both tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_export_reads_back_in_rust() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _small, main) = fixture(dir.path()).await;
    let out = dir.path().join("data.parquet");
    // Pages of 64 runs: 5 row groups (4 full, 1 of 44).
    let err = ok(&export(&[
        &url,
        "--format",
        "parquet",
        "--out",
        out.to_str().unwrap(),
        "--row-group-rows",
        "64",
    ]));
    assert!(err.contains(&format!("load {main}: {N} runs")), "{err}");
    let res = dir.path().join("data.resources.parquet");
    assert!(
        res.is_file(),
        "the resources table goes to {}",
        res.display()
    );

    check_parquet(&out, &res, main, N);
    for f in [&out, &res] {
        let r = SerializedFileReader::new(std::fs::File::open(f).unwrap()).unwrap();
        assert_eq!(r.metadata().num_row_groups(), 5, "{}", f.display());
        if f == &out {
            let sizes: Vec<i64> = r
                .metadata()
                .row_groups()
                .iter()
                .map(|g| g.num_rows())
                .collect();
            assert_eq!(sizes, [64, 64, 64, 64, 44]);
        }
    }

    // The file says what it holds.
    let r = SerializedFileReader::new(std::fs::File::open(&out).unwrap()).unwrap();
    let kv: HashMap<String, Option<String>> = r
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .expect("key-value metadata")
        .iter()
        .map(|k| (k.key.clone(), k.value.clone()))
        .collect();
    assert_eq!(kv["faasload.load_id"], Some(main.to_string()));
    assert_eq!(kv["faasload.load_origin"], Some("main".into()));
    assert!(
        kv["faasload.units"]
            .as_deref()
            .unwrap()
            .contains("*_ns: nanoseconds")
    );
}

/// CSV export of a chosen load (--load), read back with the csv crate: header equal to
/// the Parquet column names, every value as text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_export_of_a_chosen_load() {
    let dir = tempfile::tempdir().unwrap();
    let (url, small, _main) = fixture(dir.path()).await;
    let out = dir.path().join("small.csv");
    let res = dir.path().join("samples.csv");
    ok(&export(&[
        &url,
        "--load",
        &small.to_string(),
        "--out",
        out.to_str().unwrap(),
        "--resources",
        res.to_str().unwrap(),
        "--row-group-rows",
        "2",
    ]));
    let mut r = csv::Reader::from_path(&out).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    let want: Vec<&str> = RUN_SCHEMA.iter().map(|c| c.0).collect();
    assert_eq!(header, want);
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 5);
    let text = |v: &V| match v {
        V::Null => String::new(),
        V::I(x) => x.to_string(),
        V::F(x) => format!("{x:?}"),
        V::B(b) => b.to_string(),
        V::S(s) => s.clone(),
    };
    for (seq, rec) in rows.iter().enumerate() {
        let row: HashMap<&str, &str> = header.iter().map(String::as_str).zip(rec.iter()).collect();
        for (name, want) in expected_run(small, seq as u64) {
            assert_eq!(row[name], text(&want), "run {seq}, column {name}");
        }
    }
    let mut r = csv::Reader::from_path(&res).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(
        header,
        RESOURCE_SCHEMA.iter().map(|c| c.0).collect::<Vec<_>>()
    );
    let want = expected_samples(5);
    let got: Vec<Vec<String>> = r
        .records()
        .map(|x| x.unwrap().iter().map(str::to_string).collect())
        .collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g[0], small.to_string());
        assert_eq!(g[1..].to_vec(), w.iter().map(text).collect::<Vec<_>>());
    }
}

/// What pyarrow and pandas make of the files (schema, row counts, a few values).
const PY_READ: &str = r#"
import json, sys
import pyarrow.parquet as pq
import pandas as pd
runs, res, runs_csv, res_csv = sys.argv[1:5]
out = {}
for key, path in (("runs", runs), ("resources", res)):
    t = pq.read_table(path)
    out[key] = {"schema": [[f.name, str(f.type), f.nullable] for f in t.schema],
                "rows": t.num_rows}
df = pd.read_parquet(runs)
r = df[df["seq"] == 2].iloc[0]
out["pandas"] = {
    "rows": len(df),
    "seq2": {
        "function": str(r["function"]),
        "param_sigma": float(r["param_sigma"]),
        "param_format": str(r["param_format"]),
        "param_flag": bool(r["param_flag"]),
        "start_ns": int(r["start_ms"].value),
        "intended_ns": int(r["intended_epoch_ns"].value),
        "cpu_ns": int(r["cpu_ns"]),
    },
    "resources_rows": len(pd.read_parquet(res)),
}
for key, path in (("runs_csv", runs_csv), ("resources_csv", res_csv)):
    d = pd.read_csv(path)
    out[key] = {"columns": [str(c) for c in d.columns], "rows": len(d)}
d = pd.read_csv(runs_csv)
out["runs_csv"]["seq2_sigma"] = float(d[d["seq"] == 2].iloc[0]["param_sigma"])
out["runs_csv"]["sigma_dtype"] = str(d["param_sigma"].dtype)
print(json.dumps(out))
"#;

/// Both formats read with pyarrow and pandas (from PyPI, installed by `cargo xtask test`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_and_pandas_read_both_formats() {
    let python = match std::env::var("FAASLOAD_TEST_PYARROW_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => panic!(
            "FAASLOAD_TEST_PYARROW_PYTHON is not set: this test reads the exports with pyarrow \
             and pandas from a virtualenv that `cargo xtask test` creates and names there \
             (this test never skips)"
        ),
    };
    let dir = tempfile::tempdir().unwrap();
    let (url, _small, _main) = fixture(dir.path()).await;
    let pq = dir.path().join("d.parquet");
    let csv = dir.path().join("d.csv");
    ok(&export(&[
        &url,
        "--format",
        "parquet",
        "--out",
        pq.to_str().unwrap(),
    ]));
    ok(&export(&[
        &url,
        "--format",
        "csv",
        "--out",
        csv.to_str().unwrap(),
    ]));
    let o = Command::new(&python)
        .args(["-c", PY_READ])
        .arg(&pq)
        .arg(dir.path().join("d.resources.parquet"))
        .arg(&csv)
        .arg(dir.path().join("d.resources.csv"))
        .output()
        .unwrap_or_else(|e| panic!("running {python}: {e}"));
    assert!(
        o.status.success(),
        "{python} failed reading the exports: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got: Value = serde_json::from_slice(&o.stdout).expect("the script's JSON");
    let schema = |s: &[(&str, &str, bool)]| -> Value {
        s.iter()
            .map(|(n, t, nullable)| serde_json::json!([n, t, nullable]))
            .collect()
    };
    let n_samples = expected_samples(N).len();
    assert_eq!(got["runs"]["schema"], schema(RUN_SCHEMA));
    assert_eq!(got["runs"]["rows"], N);
    assert_eq!(got["resources"]["schema"], schema(RESOURCE_SCHEMA));
    assert_eq!(got["resources"]["rows"], n_samples);
    let r2 = synth(2);
    let p = &got["pandas"];
    assert_eq!(p["rows"], N);
    assert_eq!(p["resources_rows"], n_samples);
    assert_eq!(p["seq2"]["function"], r2.function.as_str());
    assert_eq!(p["seq2"]["param_sigma"], 0.25);
    assert_eq!(p["seq2"]["param_format"], "webp");
    assert_eq!(p["seq2"]["param_flag"], true);
    assert_eq!(p["seq2"]["start_ns"], (START_MS + 2) * 1_000_000);
    assert_eq!(
        p["seq2"]["intended_ns"],
        START_MS * 1_000_000 + r2.intended_ns
    );
    assert_eq!(p["seq2"]["cpu_ns"], r2.monitor.cpu_ns.unwrap());
    let cols: Vec<&str> = RUN_SCHEMA.iter().map(|c| c.0).collect();
    assert_eq!(got["runs_csv"]["columns"], serde_json::json!(cols));
    assert_eq!(got["runs_csv"]["rows"], N);
    assert_eq!(got["runs_csv"]["seq2_sigma"], 0.25);
    assert_eq!(got["runs_csv"]["sigma_dtype"], "float64");
    let cols: Vec<&str> = RESOURCE_SCHEMA.iter().map(|c| c.0).collect();
    assert_eq!(got["resources_csv"]["columns"], serde_json::json!(cols));
    assert_eq!(got["resources_csv"]["rows"], n_samples);
}

/// Unknown load, empty load, unwritable path, unknown format, missing store: each fails
/// with a message that says what, and leaves no file behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let store = Store::open(&url).await.unwrap();
    let full = write_load(&store, "full", 3).await;
    let empty = store
        .begin_load(&LoadMeta::new("empty", START_MS))
        .await
        .unwrap();
    store
        .end_load(empty, LoadStatus::Interrupted)
        .await
        .unwrap();
    store.close().await;
    let outs = dir.path().join("outs");
    std::fs::create_dir(&outs).unwrap();
    let out = outs.join("x.parquet");
    let out_s = out.to_str().unwrap();

    fails_with(
        &export(&[&url, "--load", "999", "--out", out_s]),
        &format!("no load 999 in the store {url} (loads: {full}, {empty})"),
    );
    // The default is the last load, which is empty.
    fails_with(
        &export(&[&url, "--out", out_s]),
        &format!("load {empty} (empty, interrupted) has no runs: nothing to export"),
    );
    let nowhere = dir.path().join("no/such/dir/x.parquet");
    fails_with(
        &export(&[
            &url,
            "--load",
            &full.to_string(),
            "--out",
            nowhere.to_str().unwrap(),
        ]),
        &format!("cannot write {}", nowhere.display()),
    );
    fails_with(
        &export(&[
            &url,
            "--load",
            &full.to_string(),
            "--format",
            "xlsx",
            "--out",
            out_s,
        ]),
        "invalid value 'xlsx' for '--format <FORMAT>'",
    );
    let xlsx = outs.join("x.xlsx");
    fails_with(
        &export(&[
            &url,
            "--load",
            &full.to_string(),
            "--out",
            xlsx.to_str().unwrap(),
        ]),
        &format!(
            "cannot tell the format of {} from its extension: give --format parquet or --format csv",
            xlsx.display()
        ),
    );
    let missing = dir.path().join("missing.db");
    fails_with(
        &export(&[missing.to_str().unwrap(), "--out", out_s]),
        &format!("no results store at {}", missing.display()),
    );
    assert!(!missing.exists(), "a missing store must not be created");
    assert_eq!(
        std::fs::read_dir(&outs).unwrap().count(),
        0,
        "failed exports leave no file behind"
    );
    // And the same command on the full load works.
    ok(&export(&[
        &url,
        "--load",
        &full.to_string(),
        "--out",
        out_s,
    ]));
    assert_eq!(parquet_schema(&out).1, 3);
}

/// The same export from a database server of `cargo xtask test`, whose URL is in `var`
/// (without it the test fails, never skips).
async fn export_from_server(var: &str, what: &str) {
    let url = match std::env::var(var) {
        Ok(u) if !u.is_empty() => u,
        _ => panic!(
            "{var} is not set: this test needs a {what} server; `cargo xtask test` starts \
             one and sets it (this test never skips)"
        ),
    };
    let store = Store::open(&url)
        .await
        .unwrap_or_else(|e| panic!("opening {what} at {var}: {e}"));
    let n = 120;
    let load = write_load(&store, &format!("tests/export.rs {what}"), n).await;
    store.close().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("db.parquet");
    // Pages of 50 runs: the paging queries run on this database too.
    ok(&export(&[
        &url,
        "--load",
        &load.to_string(),
        "--out",
        out.to_str().unwrap(),
        "--row-group-rows",
        "50",
    ]));
    check_parquet(&out, &dir.path().join("db.resources.parquet"), load, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_export_from_postgres() {
    export_from_server("FAASLOAD_TEST_POSTGRES_URL", "PostgreSQL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_export_from_mariadb() {
    export_from_server("FAASLOAD_TEST_MYSQL_URL", "MariaDB").await;
}

/// Paging through a load (`Store::rows_page`, what the export reads) gives exactly
/// `Store::rows`, also when a `seq` repeats across a page boundary, with each run's
/// parameters and resources.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_cover_every_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let store = Store::open(&url).await.unwrap();
    let load = store
        .begin_load(&LoadMeta::new("repeats", START_MS))
        .await
        .unwrap();
    let (tx, writer) = store.writer(load, Duration::from_millis(200));
    for (k, seq) in [0u64, 0, 1, 1, 1, 2, 3, 3].into_iter().enumerate() {
        let mut r = synth(k as u64 + 3);
        r.seq = seq;
        tx.send(r).await.unwrap();
    }
    drop(tx);
    writer.await.unwrap().unwrap();
    let all = store.rows(load).await.unwrap();
    assert_eq!(all.len(), 8);
    for limit in 1..=9 {
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = store.rows_page(load, after, limit).await.unwrap();
            assert!(page.len() as u64 <= limit);
            let Some(last) = page.last() else { break };
            after = Some((last.seq, last.id));
            paged.extend(page);
        }
        assert_eq!(paged, all, "pages of {limit}");
    }
    store.close().await;
}
