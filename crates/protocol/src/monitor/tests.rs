//! Wire bytes of the monitor protocol. The literal lines below were captured from the
//! monitor before its protocol was typed (every request kind sent to a running
//! `faasload monitor`, eBPF backend, cgroup v1), so these tests pin the answers, errors
//! and notifications byte for byte; and every type round-trips.
use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;

const REASON: &str =
    "no CPU PMU exposed by this machine (/sys/bus/event_source/devices/cpu missing)";

fn hardware() -> Hardware {
    Hardware {
        available: false,
        reason: Some(REASON.into()),
    }
}

fn enc<T: Serialize + ?Sized>(v: &T) -> String {
    encode(v).unwrap()
}

// ---- notifications ------------------------------------------------------------------

#[test]
fn original_notifications_are_written_as_faasload_wrote_them() {
    for (action, name) in [
        (ContainerAction::Run, "run"),
        (ContainerAction::Rm, "rm"),
        (ContainerAction::Pause, "pause"),
        (ContainerAction::Resume, "resume"),
    ] {
        let n = Notification::container(action, "c1");
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            format!(r#"{{"action":"{name}","container":"c1"}}"#)
        );
    }
    // The platform's messages (always with ack), as its notifier wrote them.
    let rm = Notification::container(ContainerAction::Rm, "c0").with_ack();
    assert_eq!(
        serde_json::to_string(&rm).unwrap(),
        r#"{"action":"rm","container":"c0","ack":true}"#
    );
    let start = Notification::activation_start("c0", "0123")
        .at(1796397622.5183642)
        .with_ack();
    assert_eq!(
        serde_json::to_string(&start).unwrap(),
        r#"{"action":"activation_start","container":"c0","activation_id":"0123","time":1796397622.5183642,"ack":true}"#
    );
    let end = Notification::activation_end("c0", "0123").with_ack();
    assert_eq!(
        serde_json::to_string(&end).unwrap(),
        r#"{"action":"activation_end","container":"c0","activation_id":"0123","ack":true}"#
    );
}

#[test]
fn notifications_parse_as_the_monitor_read_them() {
    let n = |text: &str| match Request::parse_str(text, Socket::Notify) {
        Ok(Request::Notification(n)) => n,
        other => panic!("{text}: {other:?}"),
    };
    // The original invoker wrapper's message (spaces, no ack).
    assert_eq!(
        n(r#"{"action": "run", "container": "c1"}"#),
        Notification::container(ContainerAction::Run, "c1")
    );
    // Unknown fields are tolerated; `time` is read.
    assert_eq!(
        n(r#"{"action":"run","container":"c1","ack":true,"time":1.5,"zzz":[1]}"#),
        Notification::container(ContainerAction::Run, "c1")
            .at(1.5)
            .with_ack()
    );
    // A non-boolean ack is no ack (the monitor answered nothing to it).
    assert!(!n(r#"{"action":"run","container":"c1","ack":"yes"}"#).ack);
    assert_eq!(
        n(r#"{"action":"activation_end","container":"c1","activation_id":"zz","ack":true}"#),
        Notification::activation_end("c1", "zz").with_ack()
    );
    // A typed request is understood on the notification socket too.
    assert_eq!(
        Request::parse_str(r#"{"type":"hello"}"#, Socket::Notify),
        Ok(Request::Query(Query::Hello))
    );
    // A non-string action does not make a notification.
    assert_eq!(
        Request::parse_str(r#"{"action":5,"type":"hello"}"#, Socket::Notify),
        Ok(Request::Query(Query::Hello))
    );
}

// ---- bad requests -------------------------------------------------------------------

/// (socket, request, the monitor's answer, the connection closes after it).
const BAD: &[(Socket, &str, &str, bool)] = &[
    (
        Socket::Notify,
        r#"{"action":"run"}"#,
        r#"{"code":"bad_request","error":"notification without \"container\""}"#,
        false,
    ),
    (
        Socket::Notify,
        r#"{"action":"run","container":5}"#,
        r#"{"code":"bad_request","error":"notification without \"container\""}"#,
        false,
    ),
    (
        Socket::Notify,
        r#"{"action":"explode","container":"c1"}"#,
        r#"{"code":"unknown_action","error":"unknown action \"explode\""}"#,
        false,
    ),
    (
        Socket::Notify,
        r#"{"action":"activation_start","container":"c1","ack":true}"#,
        r#"{"code":"bad_request","error":"activation message without \"activation_id\""}"#,
        false,
    ),
    (
        Socket::Notify,
        r#"{"container":"c1","start":1,"end":2}"#,
        r#"{"code":"unknown_request","error":"unknown request: expected \"action\", \"type\", or the FaaSLoad query {\"container\",\"start\",\"end\"}"}"#,
        false,
    ),
    (
        Socket::Notify,
        "[1,2]",
        r#"{"code":"bad_request","error":"a request is a JSON object"}"#,
        false,
    ),
    (
        Socket::Notify,
        r#""x""#,
        r#"{"code":"bad_request","error":"a request is a JSON object"}"#,
        false,
    ),
    (
        Socket::Notify,
        r#"{"what":1}"#,
        r#"{"code":"unknown_request","error":"unknown request: expected \"action\", \"type\", or the FaaSLoad query {\"container\",\"start\",\"end\"}"}"#,
        false,
    ),
    (
        Socket::Query,
        r#"{"type":"activation"}"#,
        r#"{"code":"bad_request","error":"expected \"activation_id\""}"#,
        false,
    ),
    (
        Socket::Query,
        r#"{"type":"window","container":"c1","end":2}"#,
        r#"{"code":"bad_request","error":"expected {\"container\": string, \"start\": epoch seconds, \"end\": epoch seconds}"}"#,
        false,
    ),
    (
        Socket::Query,
        r#"{"type":"window","container":"c1","start":-1,"end":2}"#,
        r#"{"code":"bad_request","error":"expected {\"container\": string, \"start\": epoch seconds, \"end\": epoch seconds}"}"#,
        false,
    ),
    (
        Socket::Query,
        r#"{"type":"samples","container":"c1","start":"1","end":2}"#,
        r#"{"code":"bad_request","error":"expected {\"container\": string, \"start\": epoch seconds, \"end\": epoch seconds}"}"#,
        false,
    ),
    (
        Socket::Query,
        r#"{"container": "c1", "start": 1}"#,
        r#"{"code":"bad_request","error":"expected {\"container\": string, \"start\": epoch seconds, \"end\": epoch seconds}"}"#,
        true,
    ),
    (
        Socket::Query,
        r#"{"container": 5, "start": 1, "end": 2}"#,
        r#"{"code":"bad_request","error":"expected {\"container\": string, \"start\": epoch seconds, \"end\": epoch seconds}"}"#,
        true,
    ),
    (
        Socket::Query,
        r#"{"container": null, "start": 1, "end": 2}"#,
        r#"{"code":"bad_request","error":"expected {\"container\": string, \"start\": epoch seconds, \"end\": epoch seconds}"}"#,
        true,
    ),
    (
        Socket::Query,
        r#"{"type":"nope"}"#,
        r#"{"code":"unknown_type","error":"unknown request type \"nope\""}"#,
        false,
    ),
    (
        Socket::Query,
        r#"{"type":5}"#,
        r#"{"code":"unknown_request","error":"unknown request: expected \"action\", \"type\", or the FaaSLoad query {\"container\",\"start\",\"end\"}"}"#,
        false,
    ),
    (
        Socket::Query,
        r#"{"type":"attribute","namespace":"guest"}"#,
        r#"{"code":"bad_request","error":"expected {\"namespace\", \"name\" (the action), \"start\": epoch s, \"end\": epoch s}"}"#,
        false,
    ),
    (
        Socket::Query,
        r#"{"type":"attribute","namespace":"guest","name":"act","start":2,"end":1}"#,
        r#"{"code":"bad_request","error":"end is before start"}"#,
        false,
    ),
    (
        Socket::Query,
        "}{ not json",
        r#"{"code":"bad_request","error":"invalid JSON: expected value at line 1 column 1"}"#,
        true,
    ),
];

#[test]
fn bad_requests_are_typed_errors_answered_as_before() {
    for (sock, req, answer, closes) in BAD {
        let e = Request::parse_str(req, *sock).expect_err(req);
        assert_eq!(enc(&e.answer()), *answer, "{req}");
        assert_eq!(e.closes(), *closes, "{req}");
    }
    assert_eq!(
        enc(&RequestError::Truncated.answer()),
        r#"{"code":"bad_request","error":"truncated JSON request"}"#
    );
    assert_eq!(
        enc(&RequestError::TooLarge(65536).answer()),
        r#"{"code":"too_large","error":"request larger than 65536 bytes"}"#
    );
}

#[test]
fn other_error_answers_keep_their_bytes() {
    let cases = [
        (
            ErrorAnswer::new(ErrorCode::NotFound, "no cgroup found for container nope"),
            r#"{"code":"not_found","error":"no cgroup found for container nope"}"#,
        ),
        (
            ErrorAnswer::new(ErrorCode::Pending, "activation has not ended yet: a1"),
            r#"{"code":"pending","error":"activation has not ended yet: a1"}"#,
        ),
        (
            ErrorAnswer::new(ErrorCode::Busy, "too many clients, try again"),
            r#"{"code":"busy","error":"too many clients, try again"}"#,
        ),
    ];
    for (e, line) in cases {
        assert_eq!(enc(&Reply::Error(e.clone())), line);
        match decode::<Ack>(line) {
            Err(ReplyError::Monitor(got)) => assert_eq!(got, e),
            other => panic!("{other:?}"),
        }
    }
}

// ---- queries --------------------------------------------------------------------------

#[test]
fn queries_parse_leniently_and_round_trip() {
    let q = |text: &str| Request::parse_str(text, Socket::Query).unwrap();
    assert_eq!(
        q(r#"{"type":"activation","activation_id":"a1","wait_ms":10,"extra":1}"#),
        Request::Query(Query::Activation(ActivationQuery {
            activation_id: "a1".into(),
            wait_ms: Some(10)
        }))
    );
    // wait_ms of the wrong type or sign counts as absent (wait 0), as before.
    for w in ["-5", "\"5\"", "1.5"] {
        let Request::Query(Query::Activation(a)) = q(&format!(
            r#"{{"type":"activation","activation_id":"x","wait_ms":{w}}}"#
        )) else {
            panic!()
        };
        assert_eq!(a.wait_ms(), 0, "{w}");
    }
    let Request::Query(Query::Activation(a)) =
        q(r#"{"type":"activation","activation_id":"x","wait_ms":999999}"#)
    else {
        panic!()
    };
    assert_eq!(a.wait_ms(), 60_000);
    assert_eq!(
        q(r#"{"container": "c1", "start": 1796397622.631, "end": 1796397622.666}"#),
        Request::Original(OriginalQuery {
            container: "c1".into(),
            start: 1796397622.631,
            end: 1796397622.666
        })
    );
    assert_eq!(
        q(r#"{"type":"subscribe"}"#),
        Request::Query(Query::Subscribe(SubscribeQuery { samples: false }))
    );
    let Request::Query(Query::Attribute(a)) = q(
        r#"{"type": "attribute", "namespace": "guest", "name": "zzz", "start": 1796397621.6932893, "end": 1796397622.1932893, "kind": "python:3", "cold": true, "min_busy_us": 5, "wait_ms": 0}"#,
    ) else {
        panic!()
    };
    assert_eq!(a.kind.as_deref(), Some("python:3"));
    assert_eq!((a.cold, a.min_busy_us(), a.wait_ms()), (Some(true), 5, 0));
    let Request::Query(Query::Attribute(a)) =
        q(r#"{"type":"attribute","namespace":"g","name":"a","start":1,"end":2,"kind":null}"#)
    else {
        panic!()
    };
    assert_eq!(
        (a.kind.clone(), a.cold, a.min_busy_us(), a.wait_ms()),
        (None, None, 100, 1000)
    );

    let all: Vec<Request> = vec![
        Query::Hello.into(),
        Query::Activation(ActivationQuery {
            activation_id: "a1".into(),
            wait_ms: None,
        })
        .into(),
        Query::Window(WindowQuery {
            container: "c1".into(),
            start: 1796397622.5183103,
            end: 1796397622.665739,
        })
        .into(),
        Query::Samples(WindowQuery {
            container: "c1".into(),
            start: 1.0,
            end: 2.5,
        })
        .into(),
        Query::Containers.into(),
        Query::Stats.into(),
        Query::Subscribe(SubscribeQuery { samples: true }).into(),
        Query::Attribute(AttributeQuery {
            namespace: "guest".into(),
            name: "act".into(),
            start: 1.25,
            end: 2.5,
            kind: Some("python:3".into()),
            cold: Some(false),
            min_busy_us: Some(7),
            wait_ms: Some(20),
        })
        .into(),
        OriginalQuery {
            container: "c1".into(),
            start: 1.5,
            end: 2.0,
        }
        .into(),
        Notification::container(ContainerAction::Pause, "c1").into(),
        Notification::activation_start("c1", "a")
            .at(3.5)
            .with_ack()
            .into(),
    ];
    for r in all {
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(Request::parse_str(&text, Socket::Query), Ok(r), "{text}");
    }
    assert_eq!(
        serde_json::to_string(&Query::Hello).unwrap(),
        r#"{"type":"hello"}"#
    );
    assert_eq!(
        serde_json::to_string(&Query::Window(WindowQuery {
            container: "c3".into(),
            start: 1.5,
            end: 2.5
        }))
        .unwrap(),
        r#"{"type":"window","container":"c3","start":1.5,"end":2.5}"#
    );
}

// ---- answers --------------------------------------------------------------------------

/// Encodes `v` and checks the bytes; decodes them and checks nothing is lost. (Compared as
/// JSON values: serde_json's default float parser may land one ulp off a literal, the
/// same for both sides.)
fn pinned<T>(v: &T, line: &str)
where
    T: Serialize + serde::de::DeserializeOwned,
{
    assert_eq!(enc(v), line);
    let back = serde_json::to_value(decode::<T>(line).unwrap()).unwrap();
    assert_eq!(
        back,
        serde_json::from_str::<serde_json::Value>(line).unwrap(),
        "{line}"
    );
}

#[test]
fn ack_and_hello() {
    pinned(&Ack::OK, r#"{"ok":true}"#);
    let hello = Hello {
        version: "0.1.0".into(),
        protocol: PROTOCOL_VERSION,
        backend: Backend::Ebpf,
        cgroup: CgroupVersion::V1,
        interval_ms: 10.0,
        capabilities: CAPABILITIES.iter().map(|c| c.to_string()).collect(),
        hardware: hardware(),
    };
    pinned(
        &hello,
        r#"{"backend":"ebpf","capabilities":["faasload-query","activation","window","samples","containers","stats","subscribe","ack","attribute","init"],"cgroup":"v1","hardware":{"available":false,"reason":"no CPU PMU exposed by this machine (/sys/bus/event_source/devices/cpu missing)"},"interval_ms":10.0,"protocol":3,"type":"hello","version":"0.1.0"}"#,
    );
    // Another answer is not a hello (its fields are missing; the `type` key itself is
    // written but not checked on reading: the request decides what the answer is).
    assert!(decode::<Hello>(r#"{"type":"stats","backend":"ebpf"}"#).is_err());
}

fn summary_a1() -> ActivationSummary {
    ActivationSummary {
        activation_id: "a1".into(),
        container: "c1".into(),
        start: 1796397622.5183642,
        end: 1796397622.6654205,
        cpu_ns: Some(67308900),
        cpu_user_ns: Some(68000000),
        cpu_sys_ns: Some(4000000),
        mem_peak_bytes: Some(4292608),
        mem_peak_source: MemPeakSource::Counter,
        mem_avg_bytes: Some(1855247),
        samples: 17,
        counters: ActivationCounters {
            nvcsw: Some(1),
            nivcsw: Some(13),
            wakeups: Some(0),
            migrations: Some(0),
            pgfault: Some(1093),
            pgmajfault: Some(0),
        },
        hardware: hardware(),
        backend: Backend::Ebpf,
        oom_killed: false,
        init: None,
    }
}

const SUMMARY_A1: &str = r#"{"activation_id":"a1","backend":"ebpf","container":"c1","counters":{"migrations":0,"nivcsw":13,"nvcsw":1,"pgfault":1093,"pgmajfault":0,"wakeups":0},"cpu_ns":67308900,"cpu_sys_ns":4000000,"cpu_user_ns":68000000,"end":1796397622.6654205,"hardware":{"available":false,"reason":"no CPU PMU exposed by this machine (/sys/bus/event_source/devices/cpu missing)"},"init":null,"mem_avg_bytes":1855247,"mem_peak_bytes":4292608,"mem_peak_source":"counter","oom_killed":false,"samples":17,"start":1796397622.5183642}"#;

#[test]
fn activation_summary() {
    pinned(&summary_a1(), SUMMARY_A1);
    assert_eq!(enc(&Reply::Activation(Arc::new(summary_a1()))), SUMMARY_A1);
}

/// Protocol 3: a cold start's init in the summary; a protocol-2 monitor's summary (no
/// `init` key) still reads, as a warm start's.
#[test]
fn a_cold_starts_init_in_the_summary() {
    let mut s = summary_a1();
    s.init = Some(InitSummary {
        end: 1796397622.6,
        cpu_ns: Some(40000000),
        cpu_user_ns: Some(30000000),
        cpu_sys_ns: Some(10000000),
        mem_peak_bytes: Some(3000000),
    });
    let wire = SUMMARY_A1.replace(
        "\"init\":null",
        "\"init\":{\"cpu_ns\":40000000,\"cpu_sys_ns\":10000000,\"cpu_user_ns\":30000000,\"end\":1796397622.6,\"mem_peak_bytes\":3000000}",
    );
    pinned(&s, &wire);
    let v2 = SUMMARY_A1.replace("\"init\":null,", "");
    let old = decode::<ActivationSummary>(&v2).unwrap();
    assert_eq!((old.activation_id.as_str(), old.init), ("a1", None));
}

#[test]
fn init_end_notification() {
    let n = Notification::init_end("c0", "0123").with_ack();
    assert_eq!(
        serde_json::to_string(&n).unwrap(),
        r#"{"action":"init_end","container":"c0","activation_id":"0123","ack":true}"#
    );
    match Request::parse_str(
        r#"{"action":"init_end","container":"c0","activation_id":"0123","ack":true}"#,
        Socket::Notify,
    ) {
        Ok(Request::Notification(got)) => assert_eq!(got, n),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_missing_or_renamed_summary_field_is_an_error_not_none() {
    let renamed = SUMMARY_A1.replace("\"cpu_ns\"", "\"cpu_nanos\"");
    let e = decode::<ActivationSummary>(&renamed).unwrap_err();
    assert!(e.to_string().contains("cpu_ns"), "{e}");
    assert_eq!(e.code(), None);
    let missing = SUMMARY_A1.replace("\"mem_peak_bytes\":4292608,", "");
    let e = decode::<ActivationSummary>(&missing).unwrap_err();
    assert!(e.to_string().contains("mem_peak_bytes"), "{e}");
    let nested = SUMMARY_A1.replace("\"nvcsw\":1,", "");
    assert!(decode::<ActivationSummary>(&nested).is_err());
    // null is a value: "the monitor has none".
    let null = SUMMARY_A1.replace("\"cpu_ns\":67308900", "\"cpu_ns\":null");
    assert_eq!(decode::<ActivationSummary>(&null).unwrap().cpu_ns, None);
}

#[test]
fn window_and_samples() {
    pinned(
        &WindowSummary {
            container: "c1".into(),
            start: 1796397622.5183103,
            end: 1796397622.665739,
            samples: 17,
            cpu_ns: Some(67308900),
            mem_peak_bytes: Some(4292608),
            mem_avg_bytes: Some(1855247),
            resolution_ms: 10.0,
        },
        r#"{"container":"c1","cpu_ns":67308900,"end":1796397622.665739,"mem_avg_bytes":1855247,"mem_peak_bytes":4292608,"resolution_ms":10.0,"samples":17,"start":1796397622.5183103}"#,
    );
    pinned(
        &WindowSummary {
            container: "c1".into(),
            start: 1.0,
            end: 2.0,
            samples: 0,
            cpu_ns: None,
            mem_peak_bytes: None,
            mem_avg_bytes: None,
            resolution_ms: 10.0,
        },
        r#"{"container":"c1","cpu_ns":null,"end":2.0,"mem_avg_bytes":null,"mem_peak_bytes":null,"resolution_ms":10.0,"samples":0,"start":1.0}"#,
    );
    let s = |date| SampleEntry {
        date,
        cpu_ns: Some(67308900),
        memory_bytes: Some(221184),
        rss_mapped_bytes: Some(0),
    };
    pinned(
        &SamplesAnswer {
            container: "c1".into(),
            samples: vec![s(1796397622.6386192), s(1796397622.648608)],
        },
        r#"{"container":"c1","samples":[{"cpu_ns":67308900,"date":1796397622.6386192,"memory_bytes":221184,"rss_mapped_bytes":0},{"cpu_ns":67308900,"date":1796397622.648608,"memory_bytes":221184,"rss_mapped_bytes":0}]}"#,
    );
    pinned(
        &SamplesAnswer {
            container: "c1".into(),
            samples: vec![],
        },
        r#"{"container":"c1","samples":[]}"#,
    );
}

#[test]
fn original_query_answer_byte_for_byte() {
    let s = |cpu, date, memory| OriginalSample { cpu, date, memory };
    pinned(
        &vec![
            s(Some(0.0), 1796397622.6386192, Some(0)),
            s(Some(0.0), 1796397622.648608, Some(0)),
            s(Some(0.0), 1796397622.658574, Some(0)),
            s(Some(0.0), 1796397622.6654205, Some(0)),
        ],
        r#"[{"cpu":0.0,"date":1796397622.6386192,"memory":0},{"cpu":0.0,"date":1796397622.648608,"memory":0},{"cpu":0.0,"date":1796397622.658574,"memory":0},{"cpu":0.0,"date":1796397622.6654205,"memory":0}]"#,
    );
    pinned(&Vec::<OriginalSample>::new(), "[]");
    pinned(
        &vec![s(None, 2.5, None), s(Some(0.052), 2.51, Some(8400896))],
        r#"[{"cpu":null,"date":2.5,"memory":null},{"cpu":0.052,"date":2.51,"memory":8400896}]"#,
    );
    assert_eq!(
        enc(&Reply::Original(vec![s(Some(0.0), 1.5, Some(4096))])),
        r#"[{"cpu":0.0,"date":1.5,"memory":4096}]"#
    );
}

#[test]
fn container_table() {
    let named = ContainerInfo {
        id: "wsk0_7_guest_act".into(),
        kind: "test".into(),
        cgroup: "faasload/cap27938/wsk0_7_guest_act".into(),
        cgroup_ids: vec![5239],
        state: ContainerState::Running,
        discovered: 1796397622.477502,
        removed: None,
        samples: 22,
        open_activations: 0,
        name: Some(ContainerName {
            name: "wsk0_7_guest_act".into(),
            image: None,
            labels: BTreeMap::new(),
            name_source: NameSource::Cgroup,
            openwhisk: Some(OpenWhiskName {
                invoker: "wsk0".into(),
                n: 7,
                rest: "guest_act".into(),
                prewarm_kind: None,
            }),
        }),
    };
    pinned(
        &ContainerList {
            containers: vec![named.clone()],
        },
        r#"{"containers":[{"cgroup":"faasload/cap27938/wsk0_7_guest_act","cgroup_ids":[5239],"discovered":1796397622.477502,"id":"wsk0_7_guest_act","image":null,"kind":"test","labels":{},"name":"wsk0_7_guest_act","name_source":"cgroup","open_activations":0,"openwhisk":{"invoker":"wsk0","n":7,"prewarm_kind":null,"rest":"guest_act"},"removed":null,"samples":22,"state":"running"}]}"#,
    );
    // Not named yet: no name keys at all.
    let unnamed = ContainerInfo {
        name: None,
        state: ContainerState::Removed,
        removed: Some(1796397623.25),
        ..named.clone()
    };
    pinned(
        &unnamed,
        r#"{"cgroup":"faasload/cap27938/wsk0_7_guest_act","cgroup_ids":[5239],"discovered":1796397622.477502,"id":"wsk0_7_guest_act","kind":"test","open_activations":0,"removed":1796397623.25,"samples":22,"state":"removed"}"#,
    );
    // A name with a missing key is an error, not an unnamed container.
    let broken = r#"{"cgroup":"x","cgroup_ids":[1],"discovered":1.0,"id":"x","image":null,"kind":"test","labels":{},"name":"x","openwhisk":null,"open_activations":0,"removed":null,"samples":1,"state":"running"}"#;
    assert!(decode::<ContainerInfo>(broken).is_err());
}

#[test]
fn stats() {
    let prog = |name: &str| ProgramStats {
        name: name.into(),
        run_time_ns: 0,
        run_count: 0,
    };
    let stats = Stats {
        backend: Backend::Ebpf,
        containers: 2,
        samples: 42,
        sample_ticks: 21,
        late_ticks: 0,
        activations: 1,
        activations_dropped: 0,
        unknown_container: 3,
        bad_requests: 27,
        refused_clients: 0,
        events: 1,
        events_undecodable: 0,
        stream_lagged: 0,
        kernel: Some(KernelCounters {
            switches: 464,
            switches_unmatched: 2,
            stats_map_full: 0,
            stats_lost_ns: 0,
            moves_split: 3,
            moves_overflow: 0,
            mem_sample_failed: 0,
            mem_file_reads: 5,
            events_dropped: 0,
            events_sent: 1,
            kernel_read_failed: 0,
        }),
        programs: [
            "sched_switch",
            "sched_wakeup",
            "sched_migrate_task",
            "cgroup_mkdir",
            "cgroup_rmdir",
            "cgroup_freeze",
            "cgroup_unfreeze",
            "sched_process_exec",
            "sched_process_exit",
            "mark_victim",
        ]
        .into_iter()
        .map(prog)
        .collect(),
        program_ids: (451..=460).collect(),
        self_cpu_user_ns: 125866000,
        self_cpu_sys_ns: 179263000,
    };
    pinned(
        &stats,
        r#"{"activations":1,"activations_dropped":0,"backend":"ebpf","bad_requests":27,"containers":2,"events":1,"events_undecodable":0,"kernel":{"events_dropped":0,"events_sent":1,"kernel_read_failed":0,"mem_file_reads":5,"mem_sample_failed":0,"moves_overflow":0,"moves_split":3,"stats_lost_ns":0,"stats_map_full":0,"switches":464,"switches_unmatched":2},"late_ticks":0,"program_ids":[451,452,453,454,455,456,457,458,459,460],"programs":[{"name":"sched_switch","run_count":0,"run_time_ns":0},{"name":"sched_wakeup","run_count":0,"run_time_ns":0},{"name":"sched_migrate_task","run_count":0,"run_time_ns":0},{"name":"cgroup_mkdir","run_count":0,"run_time_ns":0},{"name":"cgroup_rmdir","run_count":0,"run_time_ns":0},{"name":"cgroup_freeze","run_count":0,"run_time_ns":0},{"name":"cgroup_unfreeze","run_count":0,"run_time_ns":0},{"name":"sched_process_exec","run_count":0,"run_time_ns":0},{"name":"sched_process_exit","run_count":0,"run_time_ns":0},{"name":"mark_victim","run_count":0,"run_time_ns":0}],"refused_clients":0,"sample_ticks":21,"samples":42,"self_cpu_sys_ns":179263000,"self_cpu_user_ns":125866000,"stream_lagged":0,"type":"stats","unknown_container":3}"#,
    );
    // The cgroupfs backend has no kernel side: `{}`.
    let polling = Stats {
        backend: Backend::Cgroupfs,
        kernel: None,
        programs: vec![],
        program_ids: vec![],
        ..stats
    };
    let line = enc(&polling);
    assert!(
        line.contains(r#""kernel":{},"late_ticks""#) && line.contains(r#""backend":"cgroupfs""#),
        "{line}"
    );
    assert_eq!(decode::<Stats>(&line).unwrap(), polling);
}

#[test]
fn attribution() {
    let base = |name: &str, min_busy_us, start, end, outcome| Attribution {
        method: AttributionMethod::NameBusy,
        namespace: "guest".into(),
        name: name.into(),
        start,
        end,
        resolution_ms: 10.0,
        min_busy_us,
        candidates: vec![],
        outcome,
    };
    pinned(
        &base(
            "zzz",
            5,
            1796397621.6932893,
            1796397622.1932893,
            AttributionOutcome::Unattributed,
        ),
        r#"{"candidates":[],"end":1796397622.1932893,"method":"name+busy","min_busy_us":5,"name":"zzz","namespace":"guest","resolution_ms":10.0,"start":1796397621.6932893,"status":"none","type":"attribution"}"#,
    );
    let mut attributed = base(
        "wsk0_7_guest_act",
        100,
        1796397622.6936653,
        1796397622.78888,
        AttributionOutcome::Attributed {
            container: "wsk0_7_guest_act".into(),
            cpu_ns: 73613554,
            mem_peak_bytes: Some(4292608),
            mem_avg_bytes: Some(2963865),
            samples: 10,
        },
    );
    attributed.candidates = vec![Candidate {
        container: "wsk0_7_guest_act".into(),
        name: "wsk0_7_guest_act".into(),
        busy_ns: Some(73613554),
        busy: true,
    }];
    pinned(
        &attributed,
        r#"{"candidates":[{"busy":true,"busy_ns":73613554,"container":"wsk0_7_guest_act","name":"wsk0_7_guest_act"}],"container":"wsk0_7_guest_act","cpu_ns":73613554,"end":1796397622.78888,"mem_avg_bytes":2963865,"mem_peak_bytes":4292608,"method":"name+busy","min_busy_us":100,"name":"wsk0_7_guest_act","namespace":"guest","resolution_ms":10.0,"samples":10,"start":1796397622.6936653,"status":"attributed","type":"attribution"}"#,
    );
    assert_eq!(attributed.busy().collect::<Vec<_>>(), ["wsk0_7_guest_act"]);
    let mut ambiguous = base("act", 100, 1.0, 2.0, AttributionOutcome::Ambiguous);
    ambiguous.candidates = vec![
        Candidate {
            container: "a".into(),
            name: "wsk0_1_guest_act".into(),
            busy_ns: Some(5_000_000),
            busy: true,
        },
        Candidate {
            container: "b".into(),
            name: "wsk0_2_prewarm_python3".into(),
            busy_ns: None,
            busy: false,
        },
    ];
    let line = enc(&ambiguous);
    assert!(line.contains(r#""status":"ambiguous""#), "{line}");
    // Never a guess: an ambiguous answer names no container.
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(
        v.get("container").is_none() && v.get("cpu_ns").is_none(),
        "{line}"
    );
    assert_eq!(decode::<Attribution>(&line).unwrap(), ambiguous);
    // An attributed answer without its CPU is an error.
    let broken = line
        .replace(r#""status":"ambiguous""#, r#""status":"attributed""#)
        .replace(r#""candidates""#, r#""container":"a","samples":1,"mem_peak_bytes":null,"mem_avg_bytes":null,"candidates""#);
    assert!(decode::<Attribution>(&broken).is_err(), "{broken}");
}

#[test]
fn stream_items_keep_their_field_order() {
    let line = |i: &StreamItem| serde_json::to_string(i).unwrap();
    let cases = [
        (StreamItem::Subscribed, r#"{"type":"subscribed"}"#.to_string()),
        (
            StreamItem::Container {
                event: ContainerEvent::Paused,
                id: "c1".into(),
                kind: "test".into(),
                time: 1796397622.8402216,
            },
            r#"{"type":"container","event":"paused","id":"c1","kind":"test","time":1796397622.8402216}"#.into(),
        ),
        (
            StreamItem::Sample {
                id: "wsk0_7_guest_act".into(),
                date: 1796397622.8485594,
                cpu_ns: Some(73613554),
                memory: Some(241664),
                rss_mapped: Some(0),
            },
            r#"{"type":"sample","id":"wsk0_7_guest_act","date":1796397622.8485594,"cpu_ns":73613554,"memory":241664,"rss_mapped":0}"#.into(),
        ),
        (
            StreamItem::Activation {
                summary: Arc::new(ActivationSummary {
                    activation_id: "a2".into(),
                    start: 1796397622.8404396,
                    end: 1796397622.8407457,
                    cpu_ns: Some(0),
                    cpu_user_ns: Some(0),
                    cpu_sys_ns: Some(0),
                    mem_peak_bytes: Some(221184),
                    mem_avg_bytes: Some(221184),
                    samples: 2,
                    counters: ActivationCounters {
                        nvcsw: Some(0),
                        nivcsw: Some(0),
                        wakeups: Some(0),
                        migrations: Some(0),
                        pgfault: Some(0),
                        pgmajfault: Some(0),
                    },
                    ..summary_a1()
                }),
            },
            r#"{"type":"activation","summary":{"activation_id":"a2","container":"c1","start":1796397622.8404396,"end":1796397622.8407457,"cpu_ns":0,"cpu_user_ns":0,"cpu_sys_ns":0,"mem_peak_bytes":221184,"mem_peak_source":"counter","mem_avg_bytes":221184,"samples":2,"counters":{"nvcsw":0,"nivcsw":0,"wakeups":0,"migrations":0,"pgfault":0,"pgmajfault":0},"hardware":{"available":false,"reason":"no CPU PMU exposed by this machine (/sys/bus/event_source/devices/cpu missing)"},"backend":"ebpf","oom_killed":false,"init":null}}"#.into(),
        ),
        // Written by hand before: `{"type":"lagged","missed":<n>}`.
        (
            StreamItem::Lagged { missed: 3 },
            r#"{"type":"lagged","missed":3}"#.into(),
        ),
    ];
    for (item, text) in cases {
        assert_eq!(line(&item), text);
        let back = serde_json::from_str::<StreamItem>(&text).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::from_str::<serde_json::Value>(&text).unwrap()
        );
    }
    // The answer to subscribe, as the monitor writes it.
    assert_eq!(
        enc(&Reply::Subscribed(StreamItem::Subscribed)),
        r#"{"type":"subscribed"}"#
    );
}

#[test]
fn a_decode_error_names_the_line() {
    let e = decode::<Ack>("not json").unwrap_err();
    assert!(e.to_string().contains("not json"), "{e}");
    assert!(e.to_string().contains(", expected Ack:"), "{e}");
    let e = decode::<Vec<OriginalSample>>("{}").unwrap_err();
    assert!(
        e.to_string().contains(", expected Vec<OriginalSample>:"),
        "{e}"
    );
    assert!(decode::<Ack>(r#"{"ok":"yes"}"#).is_err());
}
