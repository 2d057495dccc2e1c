//! Unit tests of the report: known inputs give known percentiles, groups stay apart,
//! the text names what it should, the interval log reads back, a stored load gives the
//! same report as the live rows.
use serde_json::{Map, json};

use super::*;
use faasload_protocol::{ActivationRecord, OutcomeClass};
use crate::store::{LoadMeta, LoadStatus, MonitorReading};

/// A row answered `latency_us` after its intended instant, sent `lag_us` late.
fn row(user: &str, function: &str, seq: u64, at_s: u64, latency_us: u64, lag_us: u64) -> RunRow {
    let intended = at_s * 1_000_000_000 + seq;
    RunRow {
        seq,
        user: user.into(),
        namespace: user.into(),
        function: function.into(),
        action: function.into(),
        input: None,
        input_bytes: None,
        params: Map::new(),
        intended_ns: intended,
        sent_ns: Some(intended + lag_us * 1000),
        answered_ns: Some(intended + latency_us * 1000),
        queue_ns: 0,
        run_start_epoch_ms: 1_700_000_000_000,
        class: OutcomeClass::Success,
        http_status: Some(200),
        error: None,
        polls: 0,
        retries: 0,
        record: Some(ActivationRecord {
            activation_id: format!("{seq:032x}"),
            namespace: user.into(),
            name: function.into(),
            start_ms: 1_700_000_000_000,
            end_ms: 1_700_000_000_010,
            duration_ms: 10,
            status: "success".into(),
            success: true,
            result: json!({}),
            wait_ms: Some(2),
            init_ms: seq.is_multiple_of(10).then_some(300),
            kind: Some("python:3".into()),
            timeout: false,
            memory_mb: Some(256),
            logs: vec![],
        }),
        monitor: MonitorReading::default(),
    }
}

fn failed(user: &str, function: &str, seq: u64, class: OutcomeClass) -> RunRow {
    let mut r = row(user, function, seq, 0, 0, 0);
    r.class = class;
    r.record = None;
    r.answered_ns = None;
    r.http_status = Some(429);
    r
}

#[test]
fn known_percentiles_overall() {
    let mut rep = Report::new();
    for i in 1..=1000u64 {
        rep.record(&row("u", "f", i, 0, i, 1));
    }
    let s = Summary::of(rep.overall().get(Metric::Latency));
    assert_eq!(s.count, 1000);
    // HdrHistogram's p99.9 of 1..=1000 is 1000 (0.999 × 1000 rounds up in f64).
    assert_eq!(s.at, [500, 750, 900, 990, 1000, 1000, 1000]);
    let lag = Summary::of(rep.overall().get(Metric::Lag));
    assert_eq!((lag.count, lag.at[6]), (1000, 1));
    let d = Summary::of(rep.overall().get(Metric::Duration));
    let he = |v| metrics::new_histogram().highest_equivalent(v);
    assert_eq!((d.count, d.at[0]), (1000, he(10_000)));
    let w = Summary::of(rep.overall().get(Metric::Wait));
    assert_eq!(w.at[6], 2000);
    // initTime only on the cold tenth.
    let init = Summary::of(rep.overall().get(Metric::Init));
    assert_eq!((init.count, init.at[0]), (100, he(300_000)));
    assert_eq!(rep.starts(), (100, 900, 0));
}

#[test]
fn groups_are_separate() {
    let he = |v| metrics::new_histogram().highest_equivalent(v);
    let mut rep = Report::new();
    for i in 1..=100u64 {
        rep.record(&row("alice", "f", i, 0, 1000, 0));
        rep.record(&row("bob", "f", 1000 + i, 0, 5000, 0));
        rep.record(&row("alice", "g", 2000 + i, 0, 20_000, 0));
    }
    let p = |s: Option<&MetricSet>| {
        let s = Summary::of(s.expect("group exists").get(Metric::Latency));
        (s.count, s.at[0], s.at[6])
    };
    assert_eq!(p(rep.user_function("alice", "f")), (100, 1000, 1000));
    assert_eq!(p(rep.user_function("bob", "f")), (100, he(5000), he(5000)));
    assert_eq!(
        p(rep.user_function("alice", "g")),
        (100, he(20_000), he(20_000))
    );
    assert!(rep.user_function("bob", "g").is_none());
    assert_eq!(p(rep.function("f")), (200, 1000, he(5000)));
    assert_eq!(p(rep.function("g")), (100, he(20_000), he(20_000)));
    // Overall p50 is the 150th of 300 values: a 5 ms one.
    assert_eq!(p(Some(rep.overall())), (300, he(5000), he(20_000)));
}

#[test]
fn outcomes_are_counted_and_failures_have_no_latency() {
    let mut rep = Report::new();
    rep.record(&row("u", "f", 1, 0, 100, 0));
    rep.record(&failed("u", "f", 2, OutcomeClass::Throttled));
    rep.record(&failed("u", "f", 3, OutcomeClass::Throttled));
    rep.record(&failed("u", "f", 4, OutcomeClass::Refused));
    assert_eq!(rep.rows(), 4);
    let c: Vec<(&str, u64)> = rep
        .classes()
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(c, [("refused", 1), ("success", 1), ("throttled", 2)]);
    assert_eq!(rep.starts(), (0, 1, 3));
    assert_eq!(rep.overall().get(Metric::Latency).len(), 1);
    // Sent but never answered: the lag is known.
    assert_eq!(rep.overall().get(Metric::Lag).len(), 4);
}

#[test]
fn text_table_contents() {
    let mut rep = Report::new();
    for i in 1..=1000u64 {
        rep.record(&row("alice", "wand_blur", i, 0, i * 10, 0));
    }
    rep.record(&failed(
        "bob",
        "sharp_resize",
        5000,
        OutcomeClass::Throttled,
    ));
    let t = rep.render_text();
    for needle in [
        "Invocations: 1001",
        "Outcomes: success 1000, throttled 1",
        "Starts: cold 100, warm 900, without a record 1",
        "Latency Distribution (HdrHistogram",
        " 50.000%",
        " 99.990%",
        "100.000%",
        "Total count    =         1000",
        "p50",
        "p99.9",
        "p99.99",
        "max",
        "stdev",
        "Per function (ms)",
        "Per user and function (ms)",
        "wand_blur",
        "initTime",
        "waitTime",
        "send lag",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in\n{t}");
    }
    // p50 = 5000 µs and max = 10 ms, to 3 significant digits (5.003 and 10.007 are the
    // highest values equivalent to them).
    assert!(t.contains(" 50.000%       5.003ms"), "{t}");
    assert!(t.contains("100.000%      10.007ms"), "{t}");
    // The table's overall latency row: count, then p50 5.000 ... max 10.000.
    let line = t
        .lines()
        .find(|l| l.trim_start().starts_with("latency"))
        .expect("overall latency row");
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[1], "1000", "{line}");
    assert_eq!(cols[4], "5.003", "{line}");
    assert_eq!(cols[10], "10.007", "{line}");
    // bob's throttled call has no latency: no row for it, but the group is listed by user.
    assert!(
        t.lines()
            .any(|l| l.contains("bob") && l.contains("sharp_resize") && l.contains("send lag")),
        "{t}"
    );
}

#[test]
fn interval_log_has_one_histogram_per_second() {
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let mut rep = Report::new();
    for i in 0..100u64 {
        rep.record(&row("u", "f", i, 0, 1000, 0));
        rep.record(&row("u", "f", 100 + i, 2, 3000, 0));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latency.hlog");
    rep.write_hlog(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("#[StartTime: 1700000000.000"), "{text}");
    let mut hists = Vec::new();
    for e in IntervalLogIterator::new(&bytes) {
        if let LogEntry::Interval(iv) = e.unwrap() {
            let raw = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                iv.encoded_histogram(),
            )
            .unwrap();
            let h: Histogram<u64> = Deserializer::new()
                .deserialize(&mut std::io::Cursor::new(raw))
                .unwrap();
            hists.push((iv.start_timestamp().as_secs(), h.len(), h.max()));
        }
    }
    assert_eq!(hists.len(), 3, "{hists:?}");
    assert_eq!(hists[0].0, 0);
    assert_eq!((hists[0].1, hists[1].1, hists[2].1), (100, 0, 100));
    assert!(hists[2].2.abs_diff(3000) <= 3, "{hists:?}");
}

#[test]
fn bad_hlog_path_is_an_error_naming_it() {
    let rep = Report::new();
    let e = rep
        .write_hlog(std::path::Path::new("/nonexistent-dir/x.hlog"))
        .unwrap_err();
    assert!(e.to_string().contains("/nonexistent-dir/x.hlog"), "{e}");
}

#[tokio::test]
async fn stored_load_gives_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let store = Store::open(&url).await.unwrap();
    let load = store
        .begin_load(&LoadMeta::new("test", 1_700_000_000_000))
        .await
        .unwrap();
    let (tx, w) = store.writer(load, std::time::Duration::from_millis(100));
    let mut live = Report::new();
    for i in 0..300u64 {
        let r = if i % 7 == 0 {
            failed("bob", "g", i, OutcomeClass::ServerError)
        } else {
            row(
                ["alice", "bob"][(i % 2) as usize],
                "f",
                i,
                i / 100,
                100 + i * 37,
                i,
            )
        };
        live.record(&r);
        tx.send(r).await.unwrap();
    }
    drop(tx);
    assert_eq!(w.await.unwrap().unwrap().rows, 300);
    store.end_load(load, LoadStatus::Completed).await.unwrap();
    let stored = Report::from_store(&store, load).await.unwrap();
    assert_eq!(stored.render_text(), live.render_text());
    assert_eq!(stored.intervals().len(), live.intervals().len());
    for (a, b) in stored.intervals().values().zip(live.intervals().values()) {
        assert_eq!(a, b);
    }
    store.close().await;
    let text = report_store(&url, None).await.unwrap();
    assert!(
        text.starts_with(&format!("Load {load} from test (completed)")),
        "{text}"
    );
    assert!(text.contains("Rows stored: 300 (43 failed)"), "{text}");
    // The synchronous entry point, from a thread outside any runtime.
    let sync = std::thread::spawn({
        let url = url.clone();
        move || (report_cli(&url, None), report_cli(&url, Some(99)))
    })
    .join()
    .unwrap();
    assert_eq!(sync.0.unwrap(), text);
    let e = sync.1.unwrap_err().to_string();
    assert!(e.contains("no load 99") && e.contains("loads: 1"), "{e}");
    assert!(report_cli(&url, None).is_err(), "refused inside a runtime");
}
