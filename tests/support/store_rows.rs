//! Synthetic store rows for the end-to-end tests of the results store and of what reads
//! it (`tests/results/store.rs`, `tests/results/export.rs`): row `i` of a load is a pure function of `i`
//! (outcome classes, cold starts, monitor readings with samples, parameters of three
//! types, inputs with sizes), so a test can check any stored or exported value.
use faasload_protocol::{ActivationRecord, OutcomeClass};
use faasload_results::store::{MonitorReading, RunRow};
use serde_json::{Map, json};

pub const START_MS: u64 = 1_750_000_000_000;
pub const FUNCTIONS: [&str; 3] = ["wand_blur", "sharp_resize", "noop"];

pub fn class_of(i: u64) -> OutcomeClass {
    match i % 100 {
        0 | 50 => OutcomeClass::Throttled,
        1 => OutcomeClass::Refused,
        51 => OutcomeClass::ApplicationError,
        _ => OutcomeClass::Success,
    }
}

pub fn cold(i: u64) -> bool {
    i.is_multiple_of(13)
}

pub fn has_monitor(i: u64) -> bool {
    i % 10 != 9
}

/// Synthetic row `i`: every field depends on `i` in a known way.
pub fn synth(i: u64) -> RunRow {
    let class = class_of(i);
    let function = FUNCTIONS[(i % 3) as usize];
    let user = format!("user{:02}", i % 7);
    let intended = i * 100_000;
    let sent = (class != OutcomeClass::Refused).then_some(intended + 1000 + i % 997);
    let answered = sent.map(|s| s + 2_000_000 + i * 10);
    let mut params = Map::new();
    if i % 3 >= 1 {
        params.insert("sigma".into(), json!(i as f64 / 8.0));
    }
    if i % 3 == 2 {
        params.insert("format".into(), json!("webp"));
        params.insert("flag".into(), json!(true));
    }
    let record = class.has_record().then(|| {
        let duration = 5 + i % 20;
        ActivationRecord {
            activation_id: format!("{i:032x}"),
            namespace: user.clone(),
            name: format!("act_{function}"),
            start_ms: START_MS + i,
            end_ms: START_MS + i + duration,
            duration_ms: duration,
            status: if class == OutcomeClass::Success {
                "success".into()
            } else {
                "application error".into()
            },
            success: class == OutcomeClass::Success,
            result: if function == "wand_blur" {
                json!({"outputsize": 1000 + i, "times": {"extract": 1.5, "transform": i as f64 / 4.0, "load": 2}})
            } else {
                json!({"ok": true})
            },
            wait_ms: Some(i % 4),
            init_ms: cold(i).then_some(100 + i % 50),
            kind: Some("python:3".into()),
            timeout: false,
            memory_mb: Some(256),
            logs: vec![],
        }
    });
    let monitor = if record.is_some() && has_monitor(i) {
        MonitorReading {
            cpu_ns: Some(1000 * i + 7),
            cpu_user_ns: Some(600 * i),
            cpu_sys_ns: Some(400 * i + 7),
            mem_peak_bytes: Some((1 << 20) + i),
            mem_avg_bytes: Some((1 << 19) + i),
            nvcsw: Some(i % 11),
            nivcsw: Some(i % 3),
            wakeups: Some(i % 17),
            migrations: Some(i % 2),
            pgfault: Some(100 + i),
            pgmajfault: Some(0),
            init_cpu_ns: cold(i).then_some(300 * i),
            init_mem_peak_bytes: cold(i).then_some((1 << 19) + i),
            container: Some(format!("c{}", i % 5)),
            samples: (0..3)
                .map(|k| {
                    (
                        START_MS + i + 10 * k,
                        (k != 1).then_some((1 << 20) + k),
                        Some(5_000_000_000 + k * 1_500_000),
                    )
                })
                .collect(),
            missing: None,
        }
    } else {
        MonitorReading {
            missing: Some("monitor socket absent".into()),
            ..MonitorReading::default()
        }
    };
    RunRow {
        seq: i,
        user: user.clone(),
        namespace: user,
        function: function.into(),
        action: format!("act_{function}"),
        input: i.is_multiple_of(2).then(|| format!("in/{i}.jpg")),
        input_bytes: i.is_multiple_of(2).then_some(1000 + i),
        params,
        intended_ns: intended,
        sent_ns: sent,
        answered_ns: answered,
        queue_ns: (i % 5) * 1000,
        run_start_epoch_ms: START_MS,
        class,
        http_status: match class {
            OutcomeClass::Throttled => Some(429),
            OutcomeClass::Refused => None,
            OutcomeClass::ApplicationError => Some(502),
            _ => Some(200),
        },
        error: match class {
            OutcomeClass::Throttled => Some("Too many requests".into()),
            OutcomeClass::Refused => Some("connection refused".into()),
            _ => None,
        },
        polls: (i % 3) as u32,
        retries: (i % 2) as u32,
        record,
        monitor,
    }
}
