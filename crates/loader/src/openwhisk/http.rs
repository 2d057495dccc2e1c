//! What the OpenWhisk and the generic HTTP backends share: the one `reqwest::Client`
//! (rustls, certificates verified unless `insecure`, connections reused), timeouts and
//! the retry policy, and a timed request that never fails: it gives the HTTP status and
//! body with the monotonic instants around it, or the classified transport error.
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};

use super::classify::{classify_transport, error_text};
use super::record::OutcomeClass;
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
    pub fn delay(&self, n: u32, retry_after: Option<Duration>) -> Duration {
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
pub fn build_client(opts: &HttpOptions) -> Result<reqwest::Client, ClientError> {
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
pub struct Answer {
    pub status: u16,
    /// `x-openwhisk-activation-id` (OpenWhisk) or `x-call-id` (OpenFaaS), if sent.
    pub id_header: Option<HeaderValue>,
    /// `Retry-After` of a 429 or 503, in whole seconds.
    pub retry_after: Option<Duration>,
    pub body: bytes::Bytes,
}

impl Answer {
    /// The id header as text.
    pub fn id(&self) -> Option<&str> {
        self.id_header
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.is_empty())
    }
}

/// A request that got no (whole) answer.
pub struct Failure {
    pub class: OutcomeClass,
    /// The status, when the head came but not the body.
    pub status: Option<u16>,
    pub error: String,
}

/// Sends `req` and reads the whole answer; returns the monotonic instants right before
/// the send and right after the last byte (or the failure).
pub async fn timed(req: reqwest::RequestBuilder) -> (u64, u64, Result<Answer, Failure>) {
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
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
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
pub fn error_message(status: u16, body: &[u8]) -> String {
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
    use super::*;

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
