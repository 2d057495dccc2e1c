//! Unit tests of the HTML report: a stored load gives a page with every figure as SVG and
//! the same text report; missing data gives notes in place of charts; an empty load
//! still renders; the page references nothing outside itself; paths and dates.
use serde_json::{Map, json};

use super::figures::FIGURE_IDS;
use super::*;
use crate::report::report_store;
use crate::store::{LoadMeta, LoadStatus, MonitorReading, RunRow};
use faasload_protocol::{ActivationRecord, OutcomeClass};

const START_MS: u64 = 1_700_000_000_000;

/// Row `i`: every 50 ms, function f0..f2, cold every 7th, a monitor reading unless
/// `monitor` is false, failed (no record, 503) every 11th.
fn row(i: u64, monitor: bool) -> RunRow {
    let function = format!("f{}", i % 3);
    let intended = i * 50_000_000;
    let failed = i % 11 == 10;
    let record = (!failed).then(|| ActivationRecord {
        activation_id: format!("{i:032x}"),
        namespace: "u".into(),
        name: function.clone(),
        start_ms: START_MS + i * 50,
        end_ms: START_MS + i * 50 + 10,
        duration_ms: 10,
        status: "success".into(),
        success: true,
        result: json!({}),
        wait_ms: Some(1),
        init_ms: i.is_multiple_of(7).then_some(200),
        kind: Some("python:3".into()),
        timeout: false,
        memory_mb: Some(256),
        logs: vec![],
    });
    RunRow {
        seq: i,
        user: format!("user{}", i % 2),
        namespace: "u".into(),
        function: function.clone(),
        action: function,
        input: None,
        input_bytes: None,
        params: Map::new(),
        intended_ns: intended,
        sent_ns: Some(intended + 200_000 + i * 1000),
        answered_ns: Some(intended + 5_000_000 + (i % 13) * 1_000_000),
        queue_ns: 0,
        run_start_epoch_ms: START_MS,
        class: if failed {
            OutcomeClass::ServerError
        } else {
            OutcomeClass::Success
        },
        http_status: Some(if failed { 503 } else { 200 }),
        error: None,
        polls: 0,
        retries: 0,
        record,
        monitor: if monitor && !failed {
            MonitorReading {
                cpu_ns: Some(1_000_000 + i * 10_000),
                mem_peak_bytes: Some((30 << 20) + i * 4096),
                ..MonitorReading::default()
            }
        } else {
            MonitorReading {
                missing: Some("monitor socket absent".into()),
                ..MonitorReading::default()
            }
        },
    }
}

/// A SQLite store with one load of `rows`; returns its URL and directory.
async fn store_with(rows: Vec<RunRow>) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let store = Store::open(&url).await.unwrap();
    let load = store
        .begin_load(&LoadMeta::new("test <trace>", START_MS))
        .await
        .unwrap();
    let n = rows.len() as u64;
    let (tx, w) = store.writer(load, std::time::Duration::from_millis(100));
    for r in rows {
        tx.send(r).await.unwrap();
    }
    drop(tx);
    assert_eq!(w.await.unwrap().unwrap().rows, n);
    store.end_load(load, LoadStatus::Completed).await.unwrap();
    store.close().await;
    (url, dir)
}

/// The ids of the figures drawn as SVG and of those shown as a note.
fn figures_of(html: &str) -> (Vec<String>, Vec<String>) {
    let mut svg = Vec::new();
    let mut note = Vec::new();
    for part in html.split("<figure id=\"").skip(1) {
        let (id, rest) = part.split_once('"').unwrap();
        let body = rest.split("</figure>").next().unwrap();
        if body.contains("<svg ") {
            assert!(!body.contains("class=\"note\""), "{id}: chart and note");
            svg.push(id.to_string());
        } else {
            assert!(
                body.contains("class=\"note\""),
                "{id}: neither chart nor note"
            );
            note.push(id.to_string());
        }
    }
    (svg, note)
}

/// Checks what every report page must be: self-contained and complete.
fn check_page(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert!(html.contains("Content-Security-Policy"));
    assert!(!html.contains("<script"), "no script");
    // The only URL is the SVG namespace.
    let urls = html.matches("http://").count() + html.matches("https://").count();
    assert_eq!(
        urls,
        html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    let ids: Vec<String> = html
        .split("<figure id=\"")
        .skip(1)
        .map(|p| p.split('"').next().unwrap().to_string())
        .collect();
    assert_eq!(ids, FIGURE_IDS);
    assert_eq!(
        html.matches("<svg ").count(),
        html.matches("</svg>").count()
    );
    for h in [
        "Overall (ms)",
        "Per function (ms)",
        "Per user and function (ms)",
    ] {
        assert!(html.contains(h), "{h}");
    }
}

#[tokio::test]
async fn a_full_load_draws_every_figure_and_prints_the_same_text() {
    let (url, dir) = store_with((0..200).map(|i| row(i, true)).collect()).await;
    let path = dir.path().join("out.html");
    let text = report_store_html(&url, None, &path).await.unwrap();
    assert_eq!(text, report_store(&url, None).await.unwrap());
    let html = std::fs::read_to_string(&path).unwrap();
    check_page(&html);
    let (svg, note) = figures_of(&html);
    assert_eq!(svg, FIGURE_IDS, "notes: {note:?}");
    // Titles, axis units and legends are in the SVG text.
    for s in [
        "Latency CDF per function",
        "latency from the intended send instant (ms)",
        "cold start",
        "warm start",
        "invocations per second",
        "CPU time of the container during the activation (ms)",
        "(MiB)",
        "Cold-start timeline",
        "p99 per",
        "f0",
        "test &lt;trace&gt;",
    ] {
        assert!(html.contains(s), "{s:?} missing");
    }
    // 200 rows 50 ms apart: 10 s, gathered in 20 ms bins, shown in 100 ms bins (at
    // most 200 for percentiles, 100 for counts).
    assert!(html.contains("each 100 ms bin"), "bin width");
    // 1 in 11 failed: left out of the CDF, said so.
    assert!(html.contains("18 answers without an activation record"));
    // The tables hold the same figures as the text.
    let report = Report::from_store(&Store::open(&url).await.unwrap(), 1)
        .await
        .unwrap();
    let p50 = ms(Summary::of(report.overall().get(Metric::Latency)).at[0] as f64);
    assert!(
        html.contains(&format!("<td class=\"n\">{p50}</td>")),
        "{p50}"
    );
    assert!(
        !dir.path().read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".tmp-"))
    );
}

#[tokio::test]
async fn missing_data_gives_notes_not_empty_charts() {
    // No monitor, no cold start.
    let rows = (0..50)
        .map(|i| {
            let mut r = row(i * 7 + 1, false);
            r.seq = i;
            r
        })
        .collect();
    let (url, dir) = store_with(rows).await;
    let path = dir.path().join("out.html");
    report_store_html(&url, None, &path).await.unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
    check_page(&html);
    let (svg, note) = figures_of(&html);
    assert_eq!(
        svg,
        ["latency-cdf", "latency-time", "lag-time", "rate-time"]
    );
    assert_eq!(note, ["cpu-cdf", "memory-cdf", "cold-starts"]);
    assert!(
        html.contains(
            "No CPU readings from the monitor in this load: “monitor socket absent” (50)."
        )
    );
    assert!(html.contains("No cold start in this load"));
}

#[tokio::test]
async fn an_empty_load_renders_with_notes_only() {
    let (url, dir) = store_with(Vec::new()).await;
    let path = dir.path().join("out.html");
    let text = report_store_html(&url, Some(1), &path).await.unwrap();
    assert!(text.contains("Invocations: 0"), "{text}");
    let html = std::fs::read_to_string(&path).unwrap();
    check_page(&html);
    let (svg, note) = figures_of(&html);
    assert!(svg.is_empty(), "{svg:?}");
    assert_eq!(note.len(), FIGURE_IDS.len());
    // Errors name what failed.
    let e = report_store_html(&url, Some(7), &path).await.unwrap_err();
    assert!(format!("{e:#}").contains("no load 7"), "{e:#}");
    let bad = dir.path().join("no-such-dir").join("x.html");
    let e = report_store_html(&url, None, &bad).await.unwrap_err();
    assert!(format!("{e:#}").contains("no-such-dir"), "{e:#}");
}

#[tokio::test]
async fn many_functions_are_capped_in_the_charts() {
    let rows = (0..120)
        .map(|i| {
            let mut r = row(i, true);
            r.function = format!("fn{:02}", i % 12);
            r.action = r.function.clone();
            r
        })
        .collect();
    let (url, dir) = store_with(rows).await;
    let path = dir.path().join("out.html");
    report_store_html(&url, None, &path).await.unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
    check_page(&html);
    assert!(html.contains("other functions (4)"));
    assert!(html.contains("the other 4 together"));
}

#[test]
fn html_paths() {
    assert_eq!(
        html_report_path("sqlite://runs/r.db", 3),
        PathBuf::from("runs/r.db.load-3.html")
    );
    assert_eq!(
        html_report_path("sqlite:r.db?mode=rwc", 1),
        PathBuf::from("r.db.load-1.html")
    );
    assert_eq!(
        html_report_path("faasload-results.db", 12),
        PathBuf::from("faasload-results.db.load-12.html")
    );
    assert_eq!(
        html_report_path("postgres://u:p@h/db", 4),
        PathBuf::from("faasload-load-4.html")
    );
    assert_eq!(
        html_report_path("mariadb://u:p@h/db", 5),
        PathBuf::from("faasload-load-5.html")
    );
}

#[test]
fn dates_and_escapes() {
    assert_eq!(utc(0), "1970-01-01 00:00:00.000 UTC");
    assert_eq!(utc(1_700_000_000_123), "2023-11-14 22:13:20.123 UTC");
    assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00.000 UTC");
    assert_eq!(utc(-1), "1969-12-31 23:59:59.999 UTC");
    assert_eq!(esc("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
}
