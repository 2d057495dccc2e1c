//! The OpenWhisk backend against the embedded platform (started in-process, as root:
//! real cgroups and action processes): `deploy_all` of a trace's pairs (twice:
//! idempotent), blocking invokes cold then warm (`initTime` only on the first),
//! application errors, crashes and action time limits classified from their records, a
//! blocking wait shorter than the action (202, then the record by polling),
//! non-blocking mode, `fetch_record`, a wrong key and the platform's own 429.
use std::sync::Arc;

use faasload_loader::openwhisk::{
    Backend, Endpoint, OpenWhisk, OpenWhiskOptions, OutcomeClass, deploy_all,
};
use faasload_platform::config::GUEST_AUTH;
use faasload_trace::{Function, Trace, User};
use faasload_tests::platform::{TestPlatform, functions};
use serde_json::{Map, Value, json};

fn function(name: &str, file: &str, timeout_ms: u32) -> Function {
    Function {
        name: name.into(),
        action: name.into(),
        kind: "python:3".into(),
        code: functions().join("python").join(file),
        main: None,
        memory_mb: 192,
        timeout_ms,
        parameters: Map::new(),
        input_kind: None,
    }
}

fn trace() -> Trace {
    let functions = vec![
        function("hello", "hello.py", 10_000),
        function("error", "error.py", 10_000),
        function("crash", "crash.py", 10_000),
        function("sleep", "sleep.py", 10_000),
        function("short", "sleep.py", 300),
    ];
    Trace {
        origin: "openwhisk_platform test".into(),
        users: vec![User {
            name: "guest".into(),
            namespace: "guest".into(),
            auth: Some(GUEST_AUTH.into()),
            api_host: None,
            create: false,
        }],
        pairs: (0..functions.len() as u32).map(|f| (0, f)).collect(),
        functions,
        seed: 1,
        total: Some(0),
        schedule: Box::new(|| Box::new(std::iter::empty())),
    }
}

fn params(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[test]
fn deploy_and_invoke_on_the_embedded_platform() {
    let p = TestPlatform::start(|_| {});
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ep = Endpoint {
        api_host: format!("http://{}", p.addr),
        auth: GUEST_AUTH.into(),
        namespace: "guest".into(),
    };
    let ow = Arc::new(OpenWhisk::new(OpenWhiskOptions::default()).unwrap());
    let t = trace();
    rt.block_on(async {
        let report = deploy_all(ow.as_ref(), std::slice::from_ref(&ep), &t)
            .await
            .expect("deploy");
        assert_eq!(report.deployed.len(), 5);
        // Idempotent: the same deployment again overwrites.
        deploy_all(ow.as_ref(), std::slice::from_ref(&ep), &t)
            .await
            .expect("deploy again");

        // Cold, then warm.
        let cold = ow
            .invoke(&ep, "hello", &params(json!({"name": "faasload"})))
            .await;
        assert_eq!(cold.class, OutcomeClass::Success, "{cold:?}");
        assert_eq!(cold.http_status, Some(200));
        let rec = cold.record.as_ref().expect("record inline");
        assert!(
            rec.init_ms.is_some(),
            "cold start without initTime: {rec:?}"
        );
        assert_eq!(rec.result["greeting"], "Hello faasload!");
        assert_eq!(rec.memory_mb, Some(192));
        assert_eq!(rec.kind.as_deref(), Some("python:3"));
        assert_eq!(
            cold.activation_id.as_deref(),
            Some(rec.activation_id.as_str())
        );
        assert_eq!(rec.result["activation_id"], rec.activation_id.as_str());
        assert_eq!(cold.polls, 0);
        let warm = ow.invoke(&ep, "hello", &params(json!({}))).await;
        assert_eq!(warm.class, OutcomeClass::Success, "{warm:?}");
        let wrec = warm.record.as_ref().unwrap();
        assert_eq!(wrec.init_ms, None, "warm start with initTime: {wrec:?}");
        assert!(wrec.wait_ms.is_some());

        // The stored record, fetched by id, is the same activation.
        let stored = ow
            .fetch_record(&ep, &rec.activation_id)
            .await
            .expect("fetch")
            .expect("stored");
        assert_eq!(stored.activation_id, rec.activation_id);
        assert_eq!(stored.init_ms, rec.init_ms);
        assert!(
            ow.fetch_record(&ep, "ffffffffffffffffffffffffffffffff")
                .await
                .expect("fetch unknown")
                .is_none()
        );

        // Application error (the action returned {"error"}) and a crash.
        let app = ow
            .invoke(&ep, "error", &params(json!({"why": "test"})))
            .await;
        assert_eq!(app.class, OutcomeClass::ApplicationError, "{app:?}");
        assert_eq!(app.http_status, Some(502));
        assert!(app.error.as_deref().unwrap().contains("test"), "{app:?}");
        let crash = ow.invoke(&ep, "crash", &params(json!({}))).await;
        assert_eq!(crash.class, OutcomeClass::DeveloperError, "{crash:?}");
        assert_eq!(crash.http_status, Some(502));
        assert_eq!(
            crash.error.as_deref(),
            Some("The action did not produce a valid response and exited unexpectedly.")
        );

        // The action's own time limit (300 ms) hit: a developer error, timeout flagged.
        let slow = ow.invoke(&ep, "short", &params(json!({"ms": 3000}))).await;
        assert_eq!(slow.class, OutcomeClass::DeveloperError, "{slow:?}");
        assert_eq!(slow.http_status, Some(502));
        assert!(slow.record.as_ref().unwrap().timeout, "{slow:?}");
    });

    // A blocking wait (300 ms) shorter than the action (1.5 s): 202, then polling.
    let short_wait = OpenWhisk::new(OpenWhiskOptions {
        wait_ms: Some(300),
        ..Default::default()
    })
    .unwrap();
    rt.block_on(async {
        let out = short_wait
            .invoke(&ep, "sleep", &params(json!({"ms": 1500})))
            .await;
        assert_eq!(out.class, OutcomeClass::Success, "{out:?}");
        assert_eq!(out.http_status, Some(202));
        assert!(out.polls >= 1, "{out:?}");
        let rec = out.record.as_ref().unwrap();
        assert_eq!(rec.result, json!({"slept_ms": 1500}));
        assert!(out.answered_ns - out.sent_ns >= 1_400_000_000, "{out:?}");
    });

    // Non-blocking: 202 at once, the record by polling.
    let nonblocking = OpenWhisk::new(OpenWhiskOptions {
        blocking: false,
        ..Default::default()
    })
    .unwrap();
    rt.block_on(async {
        let out = nonblocking
            .invoke(&ep, "hello", &params(json!({"name": "nb"})))
            .await;
        assert_eq!(out.class, OutcomeClass::Success, "{out:?}");
        assert_eq!(out.http_status, Some(202));
        assert_eq!(out.record.as_ref().unwrap().result["greeting"], "Hello nb!");
    });

    // A wrong key: the platform's 401, a client error.
    rt.block_on(async {
        let bad = Endpoint {
            auth: "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:wrong".into(),
            ..ep.clone()
        };
        let out = ow.invoke(&bad, "hello", &params(json!({}))).await;
        assert_eq!(out.class, OutcomeClass::ClientError, "{out:?}");
        assert_eq!(out.http_status, Some(401));
        assert_eq!(
            out.error.as_deref(),
            Some("HTTP 401: The supplied authentication is invalid")
        );
    });
}

#[test]
fn the_platforms_rate_limit_is_throttled() {
    let p = TestPlatform::start(|cfg| cfg.throttle.invocations_per_minute = 1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ep = Endpoint {
        api_host: format!("http://{}", p.addr),
        auth: GUEST_AUTH.into(),
        namespace: "guest".into(),
    };
    let ow = OpenWhisk::new(OpenWhiskOptions::default()).unwrap();
    let t = Trace {
        pairs: vec![(0, 0)],
        ..trace()
    };
    rt.block_on(async {
        deploy_all(&ow, std::slice::from_ref(&ep), &t)
            .await
            .expect("deploy");
        let first = ow.invoke(&ep, "hello", &params(json!({}))).await;
        assert_eq!(first.class, OutcomeClass::Success, "{first:?}");
        let second = ow.invoke(&ep, "hello", &params(json!({}))).await;
        assert_eq!(second.class, OutcomeClass::Throttled, "{second:?}");
        assert_eq!(second.http_status, Some(429));
        assert!(
            second
                .error
                .as_deref()
                .unwrap()
                .contains("Too many requests in the last minute"),
            "{second:?}"
        );
    });
}
