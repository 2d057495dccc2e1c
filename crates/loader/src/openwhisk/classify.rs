//! Outcome classification: from an HTTP status and, when the platform gave one, the
//! activation record's status (which wins: it says what the action did), or from the
//! transport error when no answer came (timeout, refused or reset connection).
use std::error::Error;

use super::record::{ActivationRecord, OutcomeClass};

/// The class of a record's `response.status` (OpenWhisk's four statuses).
pub(super) fn class_of_record(rec: &ActivationRecord) -> OutcomeClass {
    match rec.status.as_str() {
        "success" if rec.success => OutcomeClass::Success,
        "application error" => OutcomeClass::ApplicationError,
        "action developer error" => OutcomeClass::DeveloperError,
        "whisk internal error" => OutcomeClass::InternalError,
        // `success` with success=false, or a status OpenWhisk never writes.
        _ => OutcomeClass::ProtocolError,
    }
}

/// The class of an answer with HTTP status `http` and, if its body was a record,
/// `record`. With a record the record decides (a 502 is an application or a developer
/// error depending on it); without one the HTTP status does.
pub(super) fn classify(http: u16, record: Option<&ActivationRecord>) -> OutcomeClass {
    if let Some(r) = record {
        return class_of_record(r);
    }
    match http {
        202 => OutcomeClass::Accepted,
        429 => OutcomeClass::Throttled,
        500..=599 => OutcomeClass::ServerError,
        400..=499 => OutcomeClass::ClientError,
        // A 200 (or anything else) without a readable record.
        _ => OutcomeClass::ProtocolError,
    }
}

/// The class of an answer without a record from a platform that has none (generic
/// HTTP): 2xx is a success, the rest as in [`classify`].
pub(super) fn classify_plain_http(http: u16) -> OutcomeClass {
    match http {
        200..=299 => OutcomeClass::Success,
        _ => classify(http, None),
    }
}

/// The class of a request that got no (whole) HTTP answer: a timeout; no connection
/// (refused, unreachable, TLS handshake failed: nothing was sent); or a connection that
/// was reset or closed after the request went out (the action may be running).
pub(super) fn classify_transport(err: &reqwest::Error) -> OutcomeClass {
    if err.is_timeout() || chain_has(err, std::io::ErrorKind::TimedOut) {
        OutcomeClass::Timeout
    } else if err.is_connect() {
        OutcomeClass::Refused
    } else if err.is_request() || err.is_body() || chain_has_reset(err) {
        OutcomeClass::ConnectionLost
    } else {
        OutcomeClass::ProtocolError
    }
}

/// Whether a failed invocation of this class may be sent again: only classes where
/// the action surely did not run (a timeout or a lost connection may have run it).
pub(super) fn retryable(class: OutcomeClass) -> bool {
    matches!(
        class,
        OutcomeClass::Throttled | OutcomeClass::ServerError | OutcomeClass::Refused
    )
}

fn io_kinds<'a>(err: &'a (dyn Error + 'static)) -> impl Iterator<Item = std::io::ErrorKind> + 'a {
    std::iter::successors(Some(err), |e: &&'a (dyn Error + 'static)| (*e).source())
        .filter_map(|e| e.downcast_ref::<std::io::Error>().map(|io| io.kind()))
}

fn chain_has(err: &reqwest::Error, kind: std::io::ErrorKind) -> bool {
    io_kinds(err).any(|k| k == kind)
}

fn chain_has_reset(err: &reqwest::Error) -> bool {
    use std::io::ErrorKind::*;
    io_kinds(err).any(|k| {
        matches!(
            k,
            ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
        )
    })
}

/// An error and its causes on one line (`a: b: c`), without repeating a cause that
/// the previous message already contains.
pub(super) fn error_text(err: &(dyn Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(status: &str, success: bool) -> ActivationRecord {
        ActivationRecord::from_json(&json!({"activationId": "a", "start": 1, "end": 2,
            "response": {"status": status, "success": success, "result": {}}}))
        .unwrap()
    }

    #[test]
    fn the_classification_table() {
        use OutcomeClass::*;
        let ok = rec("success", true);
        let app = rec("application error", false);
        let dev = rec("action developer error", false);
        let internal = rec("whisk internal error", false);
        let odd = rec("success", false);
        let table: &[(u16, Option<&ActivationRecord>, OutcomeClass)] = &[
            (200, Some(&ok), Success),
            (502, Some(&app), ApplicationError),
            (502, Some(&dev), DeveloperError),
            (500, Some(&internal), InternalError),
            (200, Some(&odd), ProtocolError),
            // 202 then polled: the record decides.
            (202, Some(&ok), Success),
            (200, None, ProtocolError),
            (202, None, Accepted),
            (429, None, Throttled),
            (500, None, ServerError),
            (502, None, ServerError),
            (503, None, ServerError),
            (504, None, ServerError),
            (400, None, ClientError),
            (401, None, ClientError),
            (403, None, ClientError),
            (404, None, ClientError),
            (409, None, ClientError),
            (301, None, ProtocolError),
        ];
        for (http, r, want) in table {
            assert_eq!(
                classify(*http, *r),
                *want,
                "{http} {:?}",
                r.map(|r| &r.status)
            );
        }
        assert_eq!(classify_plain_http(200), Success);
        assert_eq!(classify_plain_http(204), Success);
        assert_eq!(classify_plain_http(429), Throttled);
        assert_eq!(classify_plain_http(502), ServerError);
        assert_eq!(classify_plain_http(404), ClientError);
    }

    #[test]
    fn only_runs_without_a_record_are_retried() {
        use OutcomeClass::*;
        for c in [Throttled, ServerError, Refused] {
            assert!(retryable(c));
        }
        for c in [
            Success,
            ApplicationError,
            DeveloperError,
            InternalError,
            ClientError,
            Timeout,
            ConnectionLost,
            Accepted,
            ProtocolError,
        ] {
            assert!(!retryable(c), "{c:?}");
        }
    }

    #[test]
    fn error_text_keeps_the_causes() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        ));
        assert_eq!(error_text(&e), "outer: refused");
    }
}
