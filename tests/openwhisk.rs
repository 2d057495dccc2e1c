//! The OpenWhisk and generic HTTP backends against a scripted HTTP server: every way an
//! invocation can end (429, 502 with and without a record, 500, 202 then a record after
//! 404s, a refused connection, a server that never answers) is classified with its HTTP
//! status; retries, deployment requests and connection reuse are checked on the wire.
use std::collections::HashMap;
use std::time::Duration;

use faasload_loader::openwhisk::{
    Backend, Endpoint, GenericHttp, GenericOptions, HttpOptions, OpenWhisk, OpenWhiskOptions,
    OutcomeClass, PollOptions, RetryOptions,
};
use faasload_trace::{Function, User};
use faasload_tests::openwhisk_fake::{FakeServer, Reply, Request, self_signed};
use serde_json::{Map, Value, json};

const ID: &str = "0123456789abcdef0123456789abcdef";
const KEY: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

fn record(status: &str, result: Value) -> Value {
    json!({"activationId": ID, "namespace": "guest", "name": "hello", "version": "0.0.1",
        "subject": "guest", "start": 1_700_000_000_000u64, "end": 1_700_000_000_012u64,
        "duration": 12, "publish": false, "logs": [],
        "response": {"result": result, "size": 2, "status": status,
            "success": status == "success"},
        "annotations": [{"key": "waitTime", "value": 4}, {"key": "kind", "value": "python:3"},
            {"key": "timeout", "value": false},
            {"key": "limits", "value": {"memory": 256, "timeout": 60000, "logs": 10, "concurrency": 1}}]})
}

fn ep(url: &str) -> Endpoint {
    Endpoint {
        api_host: url.into(),
        auth: KEY.into(),
        namespace: "guest".into(),
    }
}

fn fast(opts: OpenWhiskOptions) -> OpenWhisk {
    OpenWhisk::new(OpenWhiskOptions {
        http: HttpOptions {
            request_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_millis(500),
            ..opts.http.clone()
        },
        poll: PollOptions {
            first: Duration::from_millis(5),
            max_interval: Duration::from_millis(20),
            ..opts.poll.clone()
        },
        ..opts
    })
    .expect("client")
}

fn params() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), json!("world"));
    m
}

/// A server answering every invoke with `reply()`.
async fn answering(reply: impl Fn() -> Reply + Send + Sync + 'static) -> FakeServer {
    FakeServer::start(move |_: &Request, _: &[Request]| reply()).await
}

#[tokio::test]
async fn a_blocking_success_comes_with_its_record_inline() {
    let srv = answering(|| Reply::json(200, &record("success", json!({"ok": true})))).await;
    let ow = fast(OpenWhiskOptions::default());
    let out = ow.invoke(&ep(&srv.url()), "hello", &params()).await;
    assert_eq!(out.class, OutcomeClass::Success, "{out:?}");
    assert_eq!(out.http_status, Some(200));
    assert_eq!(out.activation_id.as_deref(), Some(ID));
    let rec = out.record.as_ref().expect("record");
    assert_eq!(rec.result, json!({"ok": true}));
    assert_eq!(
        (rec.wait_ms, rec.init_ms, rec.memory_mb),
        (Some(4), None, Some(256))
    );
    assert_eq!((out.polls, out.retries), (0, 0));
    assert!(out.sent_ns > 0 && out.sent_ns <= out.answered_ns);
    // What went on the wire: one blocking POST, Basic auth, the parameters as JSON.
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1, "no extra GET after a blocking answer");
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.target,
        "/api/v1/namespaces/guest/actions/hello?blocking=true"
    );
    assert!(
        r.header("authorization")
            .is_some_and(|a| a.starts_with("Basic ") && !a.contains("123zO3x"))
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({"name": "world"})
    );
}

#[tokio::test]
async fn records_decide_502_and_500() {
    let ow = fast(OpenWhiskOptions::default());
    for (http, status, class) in [
        (502, "application error", OutcomeClass::ApplicationError),
        (502, "action developer error", OutcomeClass::DeveloperError),
        (500, "whisk internal error", OutcomeClass::InternalError),
    ] {
        let srv =
            answering(move || Reply::json(http, &record(status, json!({"error": "boom"})))).await;
        let out = ow.invoke(&ep(&srv.url()), "hello", &params()).await;
        assert_eq!(out.class, class, "{out:?}");
        assert_eq!(out.http_status, Some(http));
        assert_eq!(out.record.as_ref().map(|r| r.status.as_str()), Some(status));
        assert_eq!(out.error.as_deref(), Some("boom"));
    }
}

/// HTTP status, how the server answers, the class, a text the error must contain.
type Case = (u16, fn() -> Reply, OutcomeClass, &'static str);

#[tokio::test]
async fn answers_without_a_record_are_classified_by_their_status() {
    let ow = fast(OpenWhiskOptions::default());
    let cases: Vec<Case> = vec![
        (
            429,
            || {
                Reply::json(
                    429,
                    &json!({"error": "Too many requests in the last minute (count: 61, allowed: 60).", "code": "t1"}),
                )
            },
            OutcomeClass::Throttled,
            "Too many requests in the last minute",
        ),
        (
            502,
            || Reply::text(502, "<html>502 Bad Gateway</html>"),
            OutcomeClass::ServerError,
            "502 Bad Gateway",
        ),
        (
            500,
            || Reply::json(500, &json!({"error": "internal", "code": "t2"})),
            OutcomeClass::ServerError,
            "internal",
        ),
        (
            503,
            || Reply::text(503, "unavailable"),
            OutcomeClass::ServerError,
            "unavailable",
        ),
        (
            401,
            || {
                Reply::json(
                    401,
                    &json!({"error": "The supplied authentication is invalid", "code": "t3"}),
                )
            },
            OutcomeClass::ClientError,
            "authentication is invalid",
        ),
        (
            404,
            || {
                Reply::json(
                    404,
                    &json!({"error": "The requested resource does not exist.", "code": "t4"}),
                )
            },
            OutcomeClass::ClientError,
            "does not exist",
        ),
        (
            200,
            || Reply::json(200, &json!({"greeting": "a result, not a record"})),
            OutcomeClass::ProtocolError,
            "without an activation record",
        ),
        (
            // A redirect is not followed (a followed POST would become a GET): the
            // answer is recorded as it came, and only one request is made.
            301,
            || {
                Reply::Answer(
                    301,
                    vec![("location".into(), "/api/v1/elsewhere".into())],
                    b"moved permanently".to_vec(),
                )
            },
            OutcomeClass::ProtocolError,
            "moved permanently",
        ),
    ];
    for (http, reply, class, text) in cases {
        let srv = answering(reply).await;
        let out = ow.invoke(&ep(&srv.url()), "hello", &params()).await;
        assert_eq!(out.class, class, "HTTP {http}: {out:?}");
        assert_eq!(out.http_status, Some(http));
        assert!(out.record.is_none());
        let err = out.error.clone().unwrap_or_default();
        assert!(err.contains(text), "HTTP {http}: error {err:?}");
        assert_eq!(out.retries, 0, "retries are off by default");
        assert_eq!(srv.requests().len(), 1);
    }
}

#[tokio::test]
async fn accepted_then_polled_until_the_record_is_stored() {
    // 202 (blocking wait exceeded), then GET answers 404 twice, then the record.
    let srv = FakeServer::start(|req: &Request, before: &[Request]| {
        if req.method == "POST" {
            return Reply::Answer(
                202,
                vec![
                    ("content-type".into(), "application/json".into()),
                    ("x-openwhisk-activation-id".into(), ID.into()),
                ],
                format!("{{\"activationId\":\"{ID}\"}}").into_bytes(),
            );
        }
        let gets = before.iter().filter(|r| r.method == "GET").count();
        if gets < 2 {
            Reply::json(
                404,
                &json!({"error": "The requested resource does not exist.", "code": "x"}),
            )
        } else {
            Reply::json(200, &record("success", json!({"late": true})))
        }
    })
    .await;
    let ow = fast(OpenWhiskOptions {
        wait_ms: Some(1000),
        ..Default::default()
    });
    let out = ow.invoke(&ep(&srv.url()), "hello", &params()).await;
    assert_eq!(out.class, OutcomeClass::Success, "{out:?}");
    assert_eq!(out.http_status, Some(202));
    assert_eq!(out.polls, 3);
    assert_eq!(out.activation_id.as_deref(), Some(ID));
    assert_eq!(out.record.as_ref().unwrap().result, json!({"late": true}));
    let reqs = srv.requests();
    assert_eq!(
        reqs[0].target,
        "/api/v1/namespaces/guest/actions/hello?blocking=true&timeout=1000"
    );
    for r in &reqs[1..] {
        assert_eq!(r.method, "GET");
        assert_eq!(
            r.target,
            format!("/api/v1/namespaces/guest/activations/{ID}")
        );
        assert!(r.header("authorization").is_some());
    }
    // One connection for all four requests.
    assert!(reqs.iter().all(|r| r.connection == reqs[0].connection));
}

#[tokio::test]
async fn a_record_never_stored_leaves_the_invocation_accepted() {
    let srv = FakeServer::start(|req: &Request, _: &[Request]| {
        if req.method == "POST" {
            Reply::json(202, &json!({"activationId": ID}))
        } else {
            Reply::json(404, &json!({"error": "nope", "code": "x"}))
        }
    })
    .await;
    let mut opts = OpenWhiskOptions::default();
    opts.poll.deadline = Duration::from_millis(150);
    let ow = fast(opts);
    let out = ow.invoke(&ep(&srv.url()), "hello", &params()).await;
    assert_eq!(out.class, OutcomeClass::Accepted, "{out:?}");
    assert_eq!(out.http_status, Some(202));
    assert_eq!(out.activation_id.as_deref(), Some(ID));
    assert!(out.polls >= 2, "{out:?}");
    assert!(
        out.error.as_deref().unwrap().contains("not obtained"),
        "{out:?}"
    );
    // Non-blocking without polling: accepted at once, with the id.
    let ow = fast(OpenWhiskOptions {
        blocking: false,
        poll: PollOptions {
            enabled: false,
            ..Default::default()
        },
        ..Default::default()
    });
    let before = srv.requests().len();
    let out = ow.invoke(&ep(&srv.url()), "hello", &params()).await;
    assert_eq!(out.class, OutcomeClass::Accepted);
    assert_eq!((out.polls, out.activation_id.as_deref()), (0, Some(ID)));
    let reqs = srv.requests();
    assert_eq!(reqs.len(), before + 1);
    assert!(reqs[before].target.ends_with("?blocking=false"));
}

#[tokio::test]
async fn refused_connections_and_silent_servers() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ow = fast(OpenWhiskOptions::default());
    let out = ow
        .invoke(&ep(&format!("http://127.0.0.1:{port}")), "hello", &params())
        .await;
    assert_eq!(out.class, OutcomeClass::Refused, "{out:?}");
    assert_eq!(out.http_status, None);
    assert!(out.error.is_some());

    // A server that accepts and never answers: the client's timeout (500 ms).
    let srv = answering(|| Reply::Never).await;
    let out = ow.invoke(&ep(&srv.url()), "hello", &params()).await;
    assert_eq!(out.class, OutcomeClass::Timeout, "{out:?}");
    assert_eq!(out.http_status, None);
    assert!(out.answered_ns - out.sent_ns >= 450_000_000, "{out:?}");

    // A server that closes the connection without answering.
    let srv = answering(|| Reply::Close).await;
    let out = ow.invoke(&ep(&srv.url()), "hello", &params()).await;
    assert_eq!(out.class, OutcomeClass::Refused, "{out:?}");
}

#[tokio::test]
async fn retries_are_opt_in_and_counted() {
    let srv = FakeServer::start(|_: &Request, before: &[Request]| {
        if before.len() < 2 {
            Reply::Answer(
                429,
                vec![("retry-after".into(), "0".into())],
                br#"{"error":"Too many requests","code":"x"}"#.to_vec(),
            )
        } else {
            Reply::json(200, &record("success", json!({})))
        }
    })
    .await;
    // Off by default: the 429 is the outcome.
    let ow = fast(OpenWhiskOptions::default());
    let out = ow.invoke(&ep(&srv.url()), "hello", &params()).await;
    assert_eq!((out.class, out.retries), (OutcomeClass::Throttled, 0));
    // On: the second 429 is retried, then the success.
    let ow = fast(OpenWhiskOptions {
        retries: RetryOptions {
            max: 3,
            backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(10),
        },
        ..Default::default()
    });
    let out = ow.invoke(&ep(&srv.url()), "hello", &params()).await;
    assert_eq!(out.class, OutcomeClass::Success, "{out:?}");
    assert_eq!((out.retries, out.http_status), (1, Some(200)));
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[1].body, reqs[2].body, "a retry sends the same body");
    // A developer error is never retried (the action ran).
    let srv = answering(|| Reply::json(502, &record("action developer error", json!({})))).await;
    let out = ow.invoke(&ep(&srv.url()), "hello", &params()).await;
    assert_eq!((out.class, out.retries), (OutcomeClass::DeveloperError, 0));
    assert_eq!(srv.requests().len(), 1);
}

fn function(dir: &std::path::Path) -> Function {
    let code = dir.join("hello.py");
    std::fs::write(&code, "def main(args):\n    return {'ok': True}\n").unwrap();
    let mut parameters = Map::new();
    parameters.insert("greeting".into(), json!("hi"));
    Function {
        name: "hello".into(),
        action: "hello".into(),
        kind: "python:3".into(),
        code,
        main: None,
        memory_mb: 128,
        timeout_ms: 2000,
        parameters,
        input_kind: None,
    }
}

fn user() -> User {
    User {
        name: "alice".into(),
        namespace: "guest".into(),
        auth: None,
        api_host: None,
        create: false,
    }
}

#[tokio::test]
async fn deploy_puts_the_action_with_overwrite_and_reports_failures() {
    let srv = FakeServer::start(|req: &Request, _: &[Request]| {
        if req.target.contains("/actions/big") {
            Reply::json(
                400,
                &json!({"error": "memory size 1024 MB exceeds allowed threshold of 512 MB", "code": "x"}),
            )
        } else {
            Reply::json(200, &json!({"name": "hello", "version": "0.0.1"}))
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let f = function(dir.path());
    let ow = fast(OpenWhiskOptions::default());
    ow.deploy(&ep(&srv.url()), &user(), &f)
        .await
        .expect("deploy");
    let reqs = srv.requests();
    assert_eq!(reqs[0].method, "PUT");
    assert_eq!(
        reqs[0].target,
        "/api/v1/namespaces/guest/actions/hello?overwrite=true"
    );
    let body: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(body["exec"]["kind"], "python:3");
    assert!(body["exec"]["code"].as_str().unwrap().contains("def main"));
    assert_eq!(body["limits"], json!({"memory": 128, "timeout": 2000}));
    assert_eq!(
        body["parameters"],
        json!([{"key": "greeting", "value": "hi"}])
    );

    let big = Function {
        action: "big".into(),
        memory_mb: 1024,
        ..f.clone()
    };
    let e = ow.deploy(&ep(&srv.url()), &user(), &big).await.unwrap_err();
    let e = format!("{e:#}");
    assert!(e.contains("guest/big"), "{e}");
    assert!(e.contains("HTTP 400: memory size 1024 MB exceeds"), "{e}");
    assert!(!e.contains("123zO3x"), "the key leaked: {e}");
    let missing = Function {
        code: dir.path().join("nope.py"),
        ..f
    };
    let e = ow
        .deploy(&ep(&srv.url()), &user(), &missing)
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains("nope.py"), "{e:#}");
}

#[tokio::test]
async fn generic_http_records_what_http_tells() {
    let srv = FakeServer::start(|req: &Request, _: &[Request]| match req.target.as_str() {
        "/function/ok" => Reply::Answer(
            200,
            vec![("x-call-id".into(), "call-1".into())],
            br#"{"hello":"world"}"#.to_vec(),
        ),
        "/function/busy" => Reply::text(429, "Too Many Requests"),
        "/function/down" => Reply::text(503, "no endpoints available"),
        "/function/slow" => Reply::Never,
        _ => Reply::text(404, "not found"),
    })
    .await;
    let mut urls = HashMap::new();
    urls.insert("explicit".to_string(), format!("{}/function/ok", srv.url()));
    let g = GenericHttp::new(GenericOptions {
        http: HttpOptions {
            request_timeout: Duration::from_millis(300),
            ..Default::default()
        },
        urls,
        template: Some("{api_host}/function/{action}".into()),
        ..Default::default()
    })
    .unwrap();
    let e = ep(&srv.url());
    for (action, class, http) in [
        ("ok", OutcomeClass::Success, Some(200)),
        ("explicit", OutcomeClass::Success, Some(200)),
        ("busy", OutcomeClass::Throttled, Some(429)),
        ("down", OutcomeClass::ServerError, Some(503)),
        ("missing", OutcomeClass::ClientError, Some(404)),
        ("slow", OutcomeClass::Timeout, None),
    ] {
        let out = g.invoke(&e, action, &params()).await;
        assert_eq!(
            (out.class, out.http_status),
            (class, http),
            "{action}: {out:?}"
        );
        assert!(out.record.is_none());
        assert!(out.sent_ns <= out.answered_ns);
        assert_eq!(
            out.error.is_some(),
            class != OutcomeClass::Success,
            "{out:?}"
        );
    }
    let out = g.invoke(&e, "ok", &params()).await;
    assert_eq!(out.activation_id.as_deref(), Some("call-1"));
    let reqs = srv.requests();
    assert_eq!(reqs[0].method, "POST");
    assert!(
        reqs[0].header("authorization").is_none(),
        "no key unless asked"
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&reqs[0].body).unwrap(),
        json!({"name": "world"})
    );
    // Refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = g
        .invoke(&ep(&format!("http://127.0.0.1:{port}")), "x", &params())
        .await;
    assert_eq!((out.class, out.http_status), (OutcomeClass::Refused, None));
    // Deploy only checks the URL; records cannot be fetched.
    let dir = tempfile::tempdir().unwrap();
    assert!(g.deploy(&e, &user(), &function(dir.path())).await.is_ok());
    let none = GenericHttp::new(GenericOptions::default()).unwrap();
    assert!(
        none.deploy(&e, &user(), &function(dir.path()))
            .await
            .is_err()
    );
    assert!(g.fetch_record(&e, ID).await.is_err());
}

#[tokio::test]
async fn certificates_are_verified_unless_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let srv = FakeServer::start_tls(&cert, &key, |_: &Request, _: &[Request]| {
        Reply::json(200, &record("success", json!({"tls": true})))
    })
    .await;
    let e = ep(&srv.https_url());
    // Verified by default: a self-signed certificate is refused before any request.
    let ow = fast(OpenWhiskOptions::default());
    let out = ow.invoke(&e, "hello", &params()).await;
    assert_eq!(out.class, OutcomeClass::Refused, "{out:?}");
    assert!(
        out.error.as_deref().unwrap().contains("certificate"),
        "{out:?}"
    );
    assert!(srv.requests().is_empty());
    let dir2 = tempfile::tempdir().unwrap();
    let f = function(dir2.path());
    let err = format!("{:#}", ow.deploy(&e, &user(), &f).await.unwrap_err());
    assert!(err.contains("certificate"), "{err}");
    // Opt-in: accepted.
    let mut opts = OpenWhiskOptions::default();
    opts.http.insecure = true;
    let ow = fast(opts);
    let out = ow.invoke(&e, "hello", &params()).await;
    assert_eq!(out.class, OutcomeClass::Success, "{out:?}");
    assert_eq!(out.record.unwrap().result, json!({"tls": true}));
    assert_eq!(srv.requests().len(), 1);
}
