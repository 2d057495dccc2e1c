//! The attribution accuracy workload, shared by the process and Docker backends: two
//! monitors watch one embedded platform; T receives the platform's notifications (so it
//! knows which container ran each activation: the truth) and W receives nothing and
//! answers `attribute` from the record's namespace, action, start and end. Each answer
//! of W is judged against T; the tally is printed and checked (no wrong answer, every
//! sequential activation attributed, ambiguous cases answered `ambiguous`).
use std::time::Duration;

use faasload_protocol::monitor::{
    AttributeQuery, Attribution, AttributionOutcome, ErrorCode, PROTOCOL_VERSION, Query,
};
use faasload_protocol::record::ActivationRecord;
use serde_json::{Value, json};

use crate::monitor::Monitor;
use crate::platform::TestPlatform;

/// Answers of W, judged against T.
#[derive(Default, Debug, Clone, Copy)]
pub struct Tally {
    pub correct: usize,
    pub wrong: usize,
    pub ambiguous: usize,
    pub none: usize,
}

impl Tally {
    fn total(&self) -> usize {
        self.correct + self.wrong + self.ambiguous + self.none
    }
}

/// The outcome of [`run`].
pub struct Report {
    /// 16 sequential activations alternating two actions.
    pub sequential: Tally,
    /// 3 rounds of 3 concurrent activations of one action.
    pub concurrent: Tally,
    /// Concurrent activations overlapped by another container's (all answered ambiguous).
    pub overlapping: usize,
    /// The records of the sequential activations.
    pub records: Vec<Value>,
}

/// Judges W's answer for activation record `rec` (of runtime `kind`) against T's truth.
/// An `ambiguous` answer must list at least two busy candidates, the true container
/// among them (it says so instead of guessing; the type gives it no container); returns
/// W's answer and the true container.
pub fn judge(
    t: &Monitor,
    w: &Monitor,
    rec: &Value,
    kind: &str,
    tally: &mut Tally,
) -> (Attribution, String) {
    let r = ActivationRecord::from_json(rec).unwrap();
    let id = r.activation_id.as_str();
    let truth = t.activation(id, Some(5000)).container;
    // W must not know the activation by id: it was never notified.
    let by_id = w.ask_err(&Query::Activation(
        faasload_protocol::monitor::ActivationQuery {
            activation_id: id.to_string(),
            wait_ms: None,
        },
    ));
    assert_eq!(by_id.code, ErrorCode::NotFound, "{by_id:?}");
    let a: Attribution = w.ask(&Query::Attribute(AttributeQuery {
        namespace: r.namespace.clone(),
        name: r.name.clone(),
        start: r.start_ms as f64 / 1000.0,
        end: r.end_ms as f64 / 1000.0,
        kind: Some(kind.to_string()),
        cold: Some(r.init_ms.is_some()),
        min_busy_us: None,
        wait_ms: None,
    }));
    match &a.outcome {
        AttributionOutcome::Attributed { container, .. } if *container == truth => {
            tally.correct += 1
        }
        AttributionOutcome::Attributed { .. } => {
            tally.wrong += 1;
            eprintln!("WRONG: {id} ran in {truth}, attributed: {a:?}");
        }
        AttributionOutcome::Ambiguous => {
            let busy: Vec<&str> = a.busy().collect();
            assert!(busy.len() >= 2, "ambiguous with {} busy: {a:?}", busy.len());
            if !busy.contains(&truth.as_str()) {
                let tc = w.containers().into_iter().find(|c| c.id == truth);
                panic!(
                    "ambiguous, but the true container {truth} is not among the busy: {a:?}\n\
                     W knows it as {tc:?}\nrecord {rec}"
                );
            }
            tally.ambiguous += 1;
        }
        AttributionOutcome::Unattributed => tally.none += 1,
    }
    (a, truth)
}

/// Starts T (notified by the platform) and W (not notified; `w_yaml` configures how it
/// names containers) and checks W offers `attribute`. Returns (T, W).
pub fn monitors(w_yaml: &str) -> (Monitor, Monitor) {
    let t = Monitor::start("");
    let w = Monitor::start(w_yaml);
    let hello = w.hello();
    assert!(
        hello.capabilities.iter().any(|c| c == "attribute"),
        "{hello:?}"
    );
    assert_eq!(hello.protocol, PROTOCOL_VERSION);
    assert!(
        hello.protocol >= 2,
        "attribute came with protocol 2: {hello:?}"
    );
    (t, w)
}

/// The workload on platform `p` (started with T's notify socket and one python:3
/// pre-warmed container): two python actions `burn.py` deployed under unique names, 16
/// sequential activations alternating them (20–50 ms of CPU each; the first takes the
/// pre-warmed container; each starts once the pool has its stem cell again), then 3 rounds of 3 concurrent activations of one action
/// (60 ms each). Every sequential activation must be attributed.
pub fn run(p: &TestPlatform, t: &Monitor, w: &Monitor) -> Report {
    // Unique action names: other tests' platforms may run on this host at the same time.
    let (a, b) = (
        format!("attra{}", std::process::id()),
        format!("attrb{}", std::process::id()),
    );
    p.deploy(&a, "python:3", "python/burn.py", json!({}));
    p.deploy(&b, "python:3", "python/burn.py", json!({}));
    p.wait_pool("a stem cell", Duration::from_secs(60), |c| {
        c.iter().any(|c| c.3)
    });
    std::thread::sleep(Duration::from_millis(1500)); // the monitors see the stem cell

    let mut sequential = Tally::default();
    let mut records = Vec::new();
    for i in 0..16 {
        let name = if i % 2 == 0 { &a } else { &b };
        // One at a time on a settled pool: a replacement stem cell still booting (about
        // 70 ms of CPU in a Docker container) would be busy too, and the answer
        // rightly `ambiguous` (a limit of the method, stated in docs/deploy.md).
        p.wait_pool("a stem cell", Duration::from_secs(60), |c| {
            c.iter().any(|c| c.3)
        });
        let r = p.invoke(name, json!({"ms": 20 + (i % 4) * 10, "mb": 8}));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let rec = r.json();
        let (a, _) = judge(t, w, &rec, "python:3", &mut sequential);
        assert!(
            matches!(a.outcome, AttributionOutcome::Attributed { .. }),
            "sequential activation {i} not attributed: {a:?}"
        );
        records.push(rec);
    }

    // Concurrent activations of one action: several of its containers busy at once.
    let mut concurrent = Tally::default();
    let mut overlapping = 0;
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
        let judged: Vec<(Attribution, String)> = recs
            .iter()
            .map(|rec| judge(t, w, rec, "python:3", &mut concurrent))
            .collect();
        // Activation i is an ambiguous case when another activation ran at the same time
        // (20 ms or more of their 60 ms burns overlap) in another container of the same
        // action that W already knew when i started: busy time cannot tell them apart,
        // so the answer must say `ambiguous`, not pick one.
        let known = w.containers();
        let rest = format!("guest_{a}");
        let candidate_at = |cid: &str, start_ms: u64| {
            known.iter().any(|c| {
                c.id == cid
                    && c.name
                        .as_ref()
                        .and_then(|n| n.openwhisk.as_ref())
                        .is_some_and(|o| o.rest == rest)
                    && c.discovered * 1000.0 < start_ms as f64
            })
        };
        let ms = |r: &Value, k: &str| r[k].as_u64().unwrap();
        for (i, (ri, (ai, ci))) in recs.iter().zip(&judged).enumerate() {
            let overlapped = recs
                .iter()
                .zip(&judged)
                .enumerate()
                .any(|(j, (rj, (_, cj)))| {
                    let ov = ms(ri, "end").min(ms(rj, "end")) as i64
                        - ms(ri, "start").max(ms(rj, "start")) as i64;
                    j != i && cj != ci && ov >= 20 && candidate_at(cj, ms(ri, "start"))
                });
            if overlapped {
                overlapping += 1;
                assert!(
                    matches!(ai.outcome, AttributionOutcome::Ambiguous),
                    "activation {} overlapped one in another known container of its action \
                     by >= 20 ms, yet: {ai:?}",
                    ri["activationId"]
                );
            }
        }
    }
    Report {
        sequential,
        concurrent,
        overlapping,
        records,
    }
}

impl Report {
    /// Prints the tally (`ATTRIBUTION ACCURACY (<backend>): ...`) and fails on any wrong
    /// answer or on a sequential activation not attributed correctly.
    pub fn check(&self, backend: &str) {
        let (s, c) = (self.sequential, self.concurrent);
        let total = s.total() + c.total();
        let correct = s.correct + c.correct;
        eprintln!(
            "ATTRIBUTION ACCURACY ({backend}): sequential {s:?}; concurrent (3 at once) {c:?} \
             ({} of them overlapped by another container, all answered ambiguous); \
             overall {correct}/{total} correct ({:.0}%), wrong {}",
            self.overlapping,
            100.0 * correct as f64 / total as f64,
            s.wrong + c.wrong
        );
        assert_eq!(s.wrong + c.wrong, 0, "wrong attributions");
        assert_eq!(s.correct, 16);
    }
}

/// The loader's path against W: the client asks by id, finds it unknown, falls back to
/// `attribute`, and gets T's container and the activation's CPU.
pub fn check_loader_path(t: &Monitor, w: &Monitor, rec: &Value) {
    let rec = ActivationRecord::from_json(rec).unwrap();
    let client =
        faasload_loader::MonitorClient::new(w.query.clone(), Duration::from_millis(200), false);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt.block_on(client.reading_for(&rec));
    assert!(r.missing.is_none(), "{:?}", r.missing);
    let truth = t.activation(&rec.activation_id, None);
    assert_eq!(r.container.as_deref(), Some(truth.container.as_str()));
    let cpu = r.cpu_ns.expect("attributed CPU");
    assert!(cpu >= 15_000_000, "20 ms burn, attributed CPU {cpu} ns");
}
