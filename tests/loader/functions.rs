//! End-to-end tests of the function suite (functions/README.md) on the embedded platform
//! (root): inputs made by `faasload inputs`, every suite function deployed and invoked in
//! the sandbox with the suite's libraries (Wand in the venv, sharp from node_modules)
//! and a shared directory object store; each output object is checked (size reported,
//! timings, image dimensions, formats, content), and an original-format trace directory
//! replays on the suite with `faasload load --embedded`.
//! Needs `cargo xtask ensure-functions` (a step of `cargo xtask test`).
use std::path::PathBuf;
use std::process::{Command, Stdio};

use faasload_results::store::{LoadStatus, Store};
use faasload_tests::bin;
use faasload_tests::platform::{functions, require_root};
use faasload_tests::suite::{start_platform as start, store_with_inputs};
use serde_json::{Value, json};

/// (name, kind, code, input, parameters)
fn cases() -> Vec<(&'static str, &'static str, String, &'static str, Value)> {
    let py = |n: &str| format!("python/suite/{n}.py");
    let js = |n: &str| format!("nodejs/suite/{n}.js");
    vec![
        (
            "wand_blur",
            "python:3",
            py("wand_blur"),
            "image/1.jpg",
            json!({"sigma": "1.5"}),
        ),
        (
            "wand_denoise",
            "python:3",
            py("wand_denoise"),
            "image/1.png",
            json!({}),
        ),
        (
            "wand_edge",
            "python:3",
            py("wand_edge"),
            "image/2.jpg",
            json!({"radius": 1}),
        ),
        (
            "wand_resize",
            "python:3",
            py("wand_resize"),
            "image/1.jpg",
            json!({"width": 150}),
        ),
        (
            "wand_rotate",
            "python:3",
            py("wand_rotate"),
            "image/2.jpg",
            json!({"angle": "90"}),
        ),
        (
            "wand_sepia",
            "python:3",
            py("wand_sepia"),
            "image/2.png",
            json!({}),
        ),
        (
            "sharp_blur",
            "nodejs:20",
            js("sharp_blur"),
            "image/1.jpg",
            json!({"sigma": 3.5}),
        ),
        (
            "sharp_sepia",
            "nodejs:20",
            js("sharp_sepia"),
            "image/2.jpg",
            json!({}),
        ),
        (
            "sharp_resize",
            "nodejs:20",
            js("sharp_resize"),
            "image/2.png",
            json!({"width": "320"}),
        ),
        (
            "sharp_convert",
            "nodejs:20",
            js("sharp_convert"),
            "image/1.jpg",
            json!({"format": "webp"}),
        ),
        (
            "py_matmul",
            "python:3",
            py("py_matmul"),
            "matrix/1.csv",
            json!({"repeat": 1}),
        ),
        (
            "py_sort",
            "python:3",
            py("py_sort"),
            "text/1.txt",
            json!({"reverse": "false"}),
        ),
        (
            "py_compress",
            "python:3",
            py("py_compress"),
            "text/1.txt",
            json!({"level": 6}),
        ),
        (
            "py_json",
            "python:3",
            py("py_json"),
            "json/1.json",
            json!({"indent": 2}),
        ),
        (
            "node_matmul",
            "nodejs:20",
            js("node_matmul"),
            "matrix/1.csv",
            json!({"repeat": 1}),
        ),
        (
            "node_sort",
            "nodejs:20",
            js("node_sort"),
            "text/1.txt",
            json!({"reverse": true}),
        ),
        (
            "node_compress",
            "nodejs:20",
            js("node_compress"),
            "text/1.txt",
            json!({"level": "9"}),
        ),
        (
            "node_json",
            "nodejs:20",
            js("node_json"),
            "json/1.json",
            json!({"indent": 0}),
        ),
    ]
}

fn as_f64(v: Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.into_iter().map(as_f64).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, as_f64(v))).collect()),
        v => v,
    }
}

fn dims(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(bytes).expect("output decodes as an image");
    (img.width(), img.height())
}

#[test]
fn every_suite_function_runs_on_generated_inputs() {
    require_root();
    let store = store_with_inputs("image:2,matrix:1,text:1,json:1");
    let root = store.path();
    let p = start(root);
    let names: Vec<&str> = cases().iter().map(|c| c.0).collect();
    // The catalog maps every suite function.
    let cat =
        faasload_trace::FunctionCatalog::load(functions().join("../config/traces/catalog.yaml"))
            .unwrap();
    for n in &names {
        assert!(cat.get(n).is_some(), "{n} is not in the catalog");
    }
    for (name, kind, code, input, params) in cases() {
        p.deploy(name, kind, &code, json!({"limits": {"memory": 512}}));
        let mut args = params.as_object().unwrap().clone();
        args.insert("object".into(), json!(input));
        let r = p.invoke(name, Value::Object(args.clone()));
        let rec = r.json();
        assert_eq!(r.status, 200, "{name}: {rec}");
        let res = &rec["response"]["result"];
        assert_eq!(rec["response"]["status"], "success", "{name}: {rec}");
        let inname = input.split_once('/').unwrap().1;
        let out_rel = res["output"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {res}"));
        let out = root.join(out_rel);
        let bytes =
            std::fs::read(&out).unwrap_or_else(|e| panic!("{name}: {}: {e}", out.display()));
        assert_eq!(
            res["outputsize"].as_u64(),
            Some(bytes.len() as u64),
            "{name}: {res}"
        );
        assert!(!bytes.is_empty(), "{name}");
        for t in ["extract", "transform", "load"] {
            let v = res["times"][t]
                .as_f64()
                .unwrap_or_else(|| panic!("{name}: times.{t}: {res}"));
            assert!(v >= 0.0, "{name}: {t} = {v}");
        }
        assert!(
            res["times"]["transform"].as_f64().unwrap() > 0.0,
            "{name}: {res}"
        );
        let input_bytes = std::fs::read(root.join(input)).unwrap();
        match name {
            "wand_resize" => {
                let (w, h) = dims(&input_bytes);
                assert_eq!(
                    dims(&bytes),
                    (150, (h as f64 * 150.0 / w as f64).round() as u32)
                );
            }
            "sharp_resize" => assert_eq!(dims(&bytes).0, 320),
            "wand_rotate" => {
                let (w, h) = dims(&input_bytes);
                assert_eq!(dims(&bytes), (h, w));
            }
            "sharp_convert" => {
                assert_eq!(out_rel, "out-sharp_convert/1.webp");
                assert!(
                    bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP",
                    "{name}"
                );
            }
            n if n.starts_with("wand_") || n.starts_with("sharp_") => {
                assert_eq!(out_rel, format!("out-{name}/{inname}"));
                assert_eq!(dims(&bytes), dims(&input_bytes), "{name}");
                assert_ne!(bytes, input_bytes, "{name}: the image was transformed");
            }
            "py_sort" | "node_sort" => {
                let mut lines: Vec<&[u8]> = input_bytes.split(|b| *b == b'\n').collect();
                lines.sort();
                if name == "node_sort" {
                    lines.reverse();
                }
                assert_eq!(bytes, lines.join(&b'\n'), "{name}");
            }
            "py_compress" | "node_compress" => {
                assert_eq!(out_rel, format!("out-{name}/1.z"));
                assert_eq!(bytes[0], 0x78, "{name}: a zlib stream");
                assert!(
                    bytes.len() < input_bytes.len() / 2,
                    "{name}: text compresses"
                );
            }
            "py_json" | "node_json" => {
                // Numbers compared as f64 (JavaScript writes 163.0 as 163).
                let a = as_f64(serde_json::from_slice(&input_bytes).unwrap());
                let b = as_f64(serde_json::from_slice(&bytes).unwrap());
                assert!(a == b, "{name}: the round trip changed the document");
            }
            "py_matmul" | "node_matmul" => {
                let rows = |b: &[u8]| String::from_utf8_lossy(b).lines().count();
                assert_eq!(rows(&bytes), rows(&input_bytes), "{name}");
                let first: Vec<f64> = String::from_utf8_lossy(&bytes)
                    .lines()
                    .next()
                    .unwrap()
                    .split(',')
                    .map(|v| v.parse().unwrap())
                    .collect();
                assert_eq!(first.len(), rows(&input_bytes), "{name}: square");
                // A A^T is normalised by its largest entry: its diagonal is positive.
                assert!(
                    first[0] > 0.0 && first.iter().all(|v| v.abs() <= 1.0),
                    "{name}"
                );
            }
            _ => unreachable!(),
        }
        // A bad parameter or a missing input is an application error, with a message.
        let mut bad = args.clone();
        bad.insert(
            "object".into(),
            json!(format!("{}/999.nope", input.split('/').next().unwrap())),
        );
        let r = p.invoke(name, Value::Object(bad)).json();
        let err = r["response"]["result"]["error"]
            .as_str()
            .unwrap_or_default();
        assert!(err.contains("cannot read object"), "{name}: {r}");
    }
    let r = p
        .invoke("wand_resize", json!({"object": "image/1.jpg", "width": 5}))
        .json();
    assert!(
        r["response"]["result"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("'width' must be in 100..1920"),
        "{r}"
    );
}

#[test]
fn an_original_trace_directory_replays_on_the_suite() {
    require_root();
    let store = store_with_inputs("image:8,text:2");
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    std::fs::create_dir(&trace).unwrap();
    let sample = functions().join("../config/traces/faasload-sample");
    for f in [
        "user001-wand_blur-256-1-0.1",
        "user002-sharp_resize-128-1-0.1",
    ] {
        std::fs::copy(sample.join(f), trace.join(f)).unwrap();
    }
    // Memory above the platform's default maximum (512 MB), as original traces have.
    std::fs::write(
        trace.join("user003-py_compress-1024-1-0.1"),
        "0\ttext/1.txt\tlevel:9\n0.2\ttext/2.txt\tlevel:1\n",
    )
    .unwrap();
    let db = dir.path().join("r.db");
    let o = Command::new(bin())
        .arg("load")
        .arg(&trace)
        .args(["--embedded", "--no-monitor", "--quiet", "--store"])
        .arg(format!("sqlite://{}", db.display()))
        .env("FAASLOAD_STORE_DIR", store.path())
        .env("FAASLOAD_LOG", "warn")
        .current_dir(functions().join(".."))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (status, rows) = rt.block_on(async {
        let s = Store::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let loads = s.loads().await.unwrap();
        let last = loads.last().unwrap();
        let rows = s.rows(last.id).await.unwrap();
        (last.status, rows)
    });
    assert_eq!(status, LoadStatus::Completed);
    let planned: usize = std::fs::read_dir(&trace)
        .unwrap()
        .map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count()
        })
        .sum();
    assert_eq!(rows.len(), planned, "{rows:?}");
    for r in &rows {
        assert_eq!(r.class, "success", "{r:?}");
        assert_eq!(r.namespace, r.user, "each user in its own namespace: {r:?}");
        let input = r.input.as_deref().unwrap();
        let name = input.split_once('/').unwrap().1;
        let out: PathBuf =
            store
                .path()
                .join(format!("out-{}", r.function))
                .join(match r.function.as_str() {
                    "py_compress" => name.replace(".txt", ".z"),
                    _ => name.to_string(),
                });
        let size = std::fs::metadata(&out)
            .unwrap_or_else(|e| panic!("{}: {e}", out.display()))
            .len();
        assert_eq!(r.outputsize, Some(size as i64), "{r:?}");
        assert!(
            r.extract_ms.is_some() && r.transform_ms.is_some() && r.load_ms.is_some(),
            "{r:?}"
        );
    }
    assert_eq!(
        rows.iter().filter(|r| r.function == "py_compress").count(),
        2,
        "the 1024 MB action was deployed and ran"
    );
}
