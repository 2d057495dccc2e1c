//! Attribution without platform notifications, and its accuracy. Two monitors watch the
//! same embedded platform (process backend; containers named as OpenWhisk's invoker
//! names them, a python pre-warmed container included): monitor T receives the
//! platform's notifications and therefore knows which container ran each activation
//! (the truth); monitor W receives nothing and attributes each activation from the
//! record's namespace, action, start and end (`attribute` request). The test counts
//! correct, wrong, ambiguous and unattributed answers of W against T, prints the
//! accuracy, and fails on any wrong answer or on a sequential activation it could not
//! attribute. The loader's path (`MonitorClient::reading_for`) is checked against W too.
use std::time::Duration;

use faasload::openwhisk::record::ActivationRecord;
use faasload::platform::config::PrewarmConfig;
use faasload_tests::monitor::Monitor;
use faasload_tests::platform::TestPlatform;
use serde_json::{Value, json};

#[derive(Default, Debug)]
struct Tally {
    correct: usize,
    wrong: usize,
    ambiguous: usize,
    none: usize,
}

fn judge(t: &Monitor, w: &Monitor, rec: &Value, tally: &mut Tally) -> String {
    let id = rec["activationId"].as_str().unwrap();
    let truth = t.request(json!({"type": "activation", "activation_id": id, "wait_ms": 5000}));
    let truth = truth["container"]
        .as_str()
        .unwrap_or_else(|| panic!("truth monitor has no container for {id}: {truth}"))
        .to_string();
    // W must not know the activation by id: it was never notified.
    let by_id = w.request(json!({"type": "activation", "activation_id": id}));
    assert_eq!(by_id["code"], "not_found", "{by_id}");
    let a = w.request(json!({
        "type": "attribute",
        "namespace": rec["namespace"],
        "name": rec["name"],
        "kind": "python:3",
        "cold": ActivationRecord::from_json(rec).unwrap().init_ms.is_some(),
        "start": rec["start"].as_u64().unwrap() as f64 / 1000.0,
        "end": rec["end"].as_u64().unwrap() as f64 / 1000.0,
    }));
    match a["status"].as_str() {
        Some("attributed") if a["container"] == truth.as_str() => tally.correct += 1,
        Some("attributed") => {
            tally.wrong += 1;
            eprintln!("WRONG: {id} ran in {truth}, attributed: {a}");
        }
        Some("ambiguous") => tally.ambiguous += 1,
        Some("none") => tally.none += 1,
        _ => panic!("bad attribution answer: {a}"),
    }
    a["status"].as_str().unwrap().to_string()
}

#[test]
fn attribution_without_notifications_matches_the_platforms_truth() {
    let t = Monitor::start("");
    let w = Monitor::start("docker_socket: null\n");
    let hello = w.request(json!({"type": "hello"}));
    assert!(
        hello["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("attribute")),
        "{hello}"
    );
    assert_eq!(hello["protocol"], 2);
    let sock = t.notify.clone();
    let p = TestPlatform::start(move |c| {
        c.notify_socket = Some(sock);
        c.pool.prewarm = vec![PrewarmConfig {
            kind: "python:3".into(),
            count: 1,
            memory: 256,
        }];
    });
    // Unique action names: other tests' platforms may run on this host at the same time.
    let (a, b) = (
        format!("attra{}", std::process::id()),
        format!("attrb{}", std::process::id()),
    );
    p.deploy(&a, "python:3", "python/burn.py", json!({}));
    p.deploy(&b, "python:3", "python/burn.py", json!({}));
    std::thread::sleep(Duration::from_millis(1500)); // prewarm container up, monitors see it

    let mut seq = Tally::default();
    let mut records = Vec::new();
    for i in 0..16 {
        let name = if i % 2 == 0 { &a } else { &b };
        let r = p.invoke(name, json!({"ms": 20 + (i % 4) * 10, "mb": 8}));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let rec = r.json();
        let st = judge(&t, &w, &rec, &mut seq);
        assert_eq!(st, "attributed", "sequential activation {i} not attributed");
        records.push(rec);
    }

    // Concurrent activations of one action: several of its containers busy at once.
    let mut conc = Tally::default();
    for _round in 0..3 {
        let recs: Vec<Value> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..3)
                .map(|_| s.spawn(|| p.invoke(&a, json!({"ms": 60, "mb": 8}))))
                .collect();
            hs.into_iter()
                .map(|h| {
                    let r = h.join().unwrap();
                    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
                    r.json()
                })
                .collect()
        });
        for rec in &recs {
            judge(&t, &w, rec, &mut conc);
        }
    }
    let total = seq.correct
        + seq.wrong
        + seq.ambiguous
        + seq.none
        + conc.correct
        + conc.wrong
        + conc.ambiguous
        + conc.none;
    let correct = seq.correct + conc.correct;
    eprintln!(
        "ATTRIBUTION ACCURACY: sequential {seq:?}; concurrent (3 at once) {conc:?}; \
         overall {correct}/{total} correct ({:.0}%), wrong {}",
        100.0 * correct as f64 / total as f64,
        seq.wrong + conc.wrong
    );
    assert_eq!(seq.wrong + conc.wrong, 0, "wrong attributions");
    assert_eq!(seq.correct, 16);

    // The loader's path: the client asks by id, finds it unknown, falls back.
    let rec = ActivationRecord::from_json(&records[0]).unwrap();
    let client = faasload::loader::monitor_client::MonitorClient::new(
        w.query.clone(),
        Duration::from_millis(200),
        false,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt.block_on(client.reading_for(&rec));
    assert!(r.missing.is_none(), "{:?}", r.missing);
    let truth = t.request(json!({"type": "activation", "activation_id": rec.activation_id}));
    assert_eq!(r.container.as_deref(), truth["container"].as_str());
    let cpu = r.cpu_ns.expect("attributed CPU");
    assert!(cpu >= 15_000_000, "20 ms burn, attributed CPU {cpu} ns");
}
