//! What the OpenWhisk and the generic HTTP backends share: the one `reqwest::Client`
//! (rustls, certificates verified unless `insecure`, connections reused), timeouts and
//! the retry policy, a timed request that never fails (it gives the HTTP status and
//! body with the monotonic instants around it, or the classified transport error), the
//! invocation's retry loop ([`send_with_retries`]) and the one way an invocation without
//! an answer becomes an [`Outcome`] ([`Failure::into_outcome`]).
use std::future::Future;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};

use super::classify::{classify_transport, error_text, retryable};
use super::record::{Outcome, OutcomeClass};
use faasload_os::clock::mono_ns;

/// Why a client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("building the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
    #[error("URL for {what}: {why}")]
    BadUrl { what: String, why: String },
    #[error("the key of namespace '{namespace}' cannot be sent in an HTTP header")]
    BadKey { namespace: String },
}

/// Connection settings.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Accept any TLS certificate (self-signed test deployments). Off by default.
    pub insecure: bool,
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for one request, from send to the whole answer (a blocking invoke waits up
    /// to its `timeout`, 60 s by default on OpenWhisk: keep this above it).
    pub request_timeout: Duration,
    /// Idle connections kept per host (reused by later requests).
    pub max_idle_per_host: usize,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            insecure: false,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(70),
            max_idle_per_host: 4096,
            user_agent: concat!("faasload/", env!("CARGO_PKG_VERSION")).into(),
        }
    }
}

/// Retries of invocations that surely did not run (429, 5xx without a record,
/// connection refused): off by default. The delay doubles from `backoff` up to
/// `max_backoff`; a 429's `Retry-After` (seconds) is honoured up to `max_backoff`.
#[derive(Clone, Debug)]
pub struct RetryOptions {
    /// Retries after the first attempt (0: none).
    pub max: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryOptions {
    fn default() -> Self {
        RetryOptions {
            max: 0,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryOptions {
    /// The wait before retry number `n` (1-based).
    pub(crate) fn delay(&self, n: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .backoff
            .saturating_mul(1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX));
        retry_after.unwrap_or(exp).min(self.max_backoff)
    }
}

/// Builds the client every request of a backend goes through.
///
/// Redirects are not followed: an API host that answers 3xx is misconfigured for a
/// load test (a followed POST turns into a GET), so the answer is recorded with its
/// status (class `protocol_error`). It also spares every request the redirect layer's
/// URL re-parse (5 % of the loader's CPU at its maximum rate).
pub(super) fn build_client(opts: &HttpOptions) -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .use_rustls_tls()
        .danger_accept_invalid_certs(opts.insecure)
        .connect_timeout(opts.connect_timeout)
        .pool_max_idle_per_host(opts.max_idle_per_host)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .user_agent(opts.user_agent.clone())
        .build()
        .map_err(ClientError::Build)
}

/// An HTTP answer, read whole (only the headers the backends use are kept, so that
/// an answer costs no header map copy).
pub(super) struct Answer {
    pub status: u16,
    /// `x-openwhisk-activation-id` (OpenWhisk) or `x-call-id` (OpenFaaS), if sent.
    pub id_header: Option<HeaderValue>,
    /// `Retry-After` of a 429 or 503, in whole seconds.
    pub retry_after: Option<Duration>,
    pub body: bytes::Bytes,
}

impl Answer {
    /// The id header as text.
    pub(super) fn id(&self) -> Option<&str> {
        self.id_header
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.is_empty())
    }
}

/// A request that got no (whole) answer.
pub(super) struct Failure {
    pub class: OutcomeClass,
    /// The status, when the head came but not the body.
    pub status: Option<u16>,
    pub error: String,
}

impl Failure {
    /// A failure before any request was sent (no target, parameters not serialisable).
    pub(super) fn before_send(class: OutcomeClass, error: String) -> Failure {
        Failure {
            class,
            status: None,
            error,
        }
    }

    /// The outcome of an invocation that ended with this failure, sent at `sent_ns` and
    /// given up at `answered_ns` (both the same when nothing was sent).
    pub(super) fn into_outcome(self, sent_ns: u64, answered_ns: u64) -> Outcome {
        Outcome {
            error: Some(self.error),
            ..answered_outcome(sent_ns, answered_ns, self.status, self.class)
        }
    }
}

/// An outcome of an answer with status `http_status`, of class `class`, without record,
/// activation id, error, polls or retries yet (the callers fill in what they know).
pub(super) fn answered_outcome(
    sent_ns: u64,
    answered_ns: u64,
    http_status: Option<u16>,
    class: OutcomeClass,
) -> Outcome {
    Outcome {
        sent_ns,
        answered_ns,
        http_status,
        class,
        activation_id: None,
        record: None,
        polls: 0,
        retries: 0,
        error: None,
    }
}

/// Sends an invocation of `body` (each attempt's request built by `request`) until it
/// gets an outcome that is not [`retryable`] or the retries of `policy` are spent,
/// waiting [`RetryOptions::delay`] between attempts (a 429's or 503's `Retry-After`
/// honoured). `judge` turns an HTTP answer into the outcome (given the first attempt's
/// send instant and this answer's); a transport failure becomes its outcome with
/// [`Failure::into_outcome`]. The outcome's `sent_ns` is the first attempt's and its
/// `retries` the number of retries made.
pub(super) async fn send_with_retries<Fut>(
    policy: &RetryOptions,
    mut body: Vec<u8>,
    request: impl Fn(Vec<u8>) -> reqwest::RequestBuilder,
    mut judge: impl FnMut(u64, u64, Answer) -> Fut,
) -> Outcome
where
    Fut: Future<Output = Outcome>,
{
    let mut first_sent = None;
    let mut attempt = 0;
    loop {
        // The last possible attempt takes the body instead of copying it.
        let this_body = if attempt < policy.max {
            body.clone()
        } else {
            std::mem::take(&mut body)
        };
        let (sent, answered, res) = timed(request(this_body)).await;
        let sent = *first_sent.get_or_insert(sent);
        let (mut out, retry_after) = match res {
            Err(f) => (f.into_outcome(sent, answered), None),
            Ok(a) => {
                let hint = a.retry_after;
                (judge(sent, answered, a).await, hint)
            }
        };
        if attempt < policy.max && retryable(out.class) {
            attempt += 1;
            tokio::time::sleep(policy.delay(attempt, retry_after)).await;
            continue;
        }
        out.retries = attempt;
        return out;
    }
}

/// Sends `req` and reads the whole answer; returns the monotonic instants right before
/// the send and right after the last byte (or the failure).
pub(super) async fn timed(req: reqwest::RequestBuilder) -> (u64, u64, Result<Answer, Failure>) {
    let sent = mono_ns();
    let res = req.send().await;
    let r = match res {
        Err(e) => Err(Failure {
            class: classify_transport(&e),
            status: None,
            error: error_text(&e),
        }),
        Ok(resp) => {
            let status = resp.status().as_u16();
            let h = resp.headers();
            let id_header = ["x-openwhisk-activation-id", "x-call-id"]
                .iter()
                .find_map(|n| h.get(*n))
                .cloned();
            let retry_after = matches!(status, 429 | 503)
                .then(|| retry_after(h))
                .flatten();
            match resp.bytes().await {
                Ok(b) => Ok(Answer {
                    status,
                    id_header,
                    retry_after,
                    body: b,
                }),
                Err(e) => Err(Failure {
                    class: classify_transport(&e),
                    status: Some(status),
                    error: error_text(&e),
                }),
            }
        }
    };
    (sent, mono_ns(), r)
}

/// The `Retry-After` header, in whole seconds.
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The message of an error answer: OpenWhisk's `{"error": "..."}`, else the body's
/// first 200 characters.
pub(super) fn error_message(status: u16, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct E {
        error: serde_json::Value,
    }
    let text = match serde_json::from_slice::<E>(body) {
        Ok(E {
            error: serde_json::Value::String(s),
        }) => s,
        Ok(E { error }) => error.to_string(),
        Err(_) => {
            let s = String::from_utf8_lossy(body);
            let s = s.trim();
            match s.char_indices().nth(200) {
                Some((i, _)) => format!("{}...", &s[..i]),
                None => s.to_string(),
            }
        }
    };
    if text.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {text}")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    use super::super::classify::classify_plain_http;
    use super::*;

    /// A request the scripted server read: its body and when it arrived (mono ns).
    struct Seen {
        body: Vec<u8>,
        at: u64,
    }

    /// An HTTP server answering its requests with `statuses` in turn (then 200), each
    /// with `Retry-After: 0`; one request per connection.
    async fn scripted(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            let mut statuses = statuses.into_iter();
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let mut r = BufReader::new(conn);
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    r.read_line(&mut line).await.unwrap();
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).await.unwrap();
                log.lock().unwrap().push(Seen {
                    body,
                    at: mono_ns(),
                });
                let status = statuses.next().unwrap_or(200);
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nretry-after: 0\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
                );
                r.get_mut().write_all(answer.as_bytes()).await.unwrap();
            }
        });
        (url, seen)
    }

    async fn invoke(url: &str, max: u32) -> Outcome {
        let client = build_client(&HttpOptions::default()).unwrap();
        let policy = RetryOptions {
            max,
            backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        };
        send_with_retries(
            &policy,
            b"{\"n\":1}".to_vec(),
            |body| client.post(url).body(body),
            |sent, answered, a| {
                std::future::ready(answered_outcome(
                    sent,
                    answered,
                    Some(a.status),
                    classify_plain_http(a.status),
                ))
            },
        )
        .await
    }

    #[tokio::test]
    async fn retries_resend_the_body_until_an_answer_that_is_not_retryable() {
        let (url, seen) = scripted(vec![503, 429]).await;
        let out = invoke(&url, 3).await;
        assert_eq!(
            (out.class, out.http_status, out.retries),
            (OutcomeClass::Success, Some(200), 2)
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        assert!(seen.iter().all(|s| s.body == b"{\"n\":1}"));
        // The outcome's send instant is the first attempt's, its answer the last's.
        assert!(out.sent_ns <= seen[0].at && out.answered_ns >= seen[2].at);
    }

    #[tokio::test]
    async fn retries_stop_when_spent_or_not_retryable() {
        let (url, seen) = scripted(vec![503, 503, 503]).await;
        let out = invoke(&url, 1).await;
        assert_eq!(
            (out.class, out.http_status, out.retries),
            (OutcomeClass::ServerError, Some(503), 1)
        );
        assert_eq!(seen.lock().unwrap().len(), 2);
        let (url, seen) = scripted(vec![400]).await;
        let out = invoke(&url, 3).await;
        assert_eq!((out.class, out.retries), (OutcomeClass::ClientError, 0));
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_transport_failure_is_a_failed_outcome_and_retried() {
        // A port nobody listens on: bound then dropped.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = invoke(&format!("http://127.0.0.1:{port}/"), 2).await;
        assert_eq!(
            (out.class, out.http_status, out.retries),
            (OutcomeClass::Refused, None, 2)
        );
        assert!(out.error.is_some() && out.record.is_none() && out.activation_id.is_none());
        assert!(out.sent_ns <= out.answered_ns);
    }

    #[test]
    fn a_failure_before_sending_has_no_status_and_one_instant() {
        let out =
            Failure::before_send(OutcomeClass::ClientError, "no URL".into()).into_outcome(7, 7);
        assert_eq!(
            (out.sent_ns, out.answered_ns, out.http_status, out.class),
            (7, 7, None, OutcomeClass::ClientError)
        );
        assert_eq!((out.polls, out.retries), (0, 0));
        assert_eq!(out.error.as_deref(), Some("no URL"));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let r = RetryOptions {
            max: 5,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        assert_eq!(r.delay(1, None), Duration::from_millis(100));
        assert_eq!(r.delay(2, None), Duration::from_millis(200));
        assert_eq!(r.delay(4, None), Duration::from_millis(800));
        assert_eq!(r.delay(5, None), Duration::from_secs(1));
        assert_eq!(r.delay(40, None), Duration::from_secs(1));
        assert_eq!(
            r.delay(1, Some(Duration::from_secs(30))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn error_messages_come_from_the_body() {
        assert_eq!(
            error_message(429, br#"{"error":"Too many requests","code":"x"}"#),
            "HTTP 429: Too many requests"
        );
        assert_eq!(
            error_message(502, b"Bad Gateway\n"),
            "HTTP 502: Bad Gateway"
        );
        assert_eq!(error_message(503, b""), "HTTP 503");
    }
}
