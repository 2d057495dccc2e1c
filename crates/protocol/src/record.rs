//! What one invocation gave: its class (never just "failed"), timings, HTTP status and,
//! when the platform produced one, the activation record in typed form.
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How an invocation ended, from the client's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeClass {
    /// The action ran and succeeded.
    Success,
    /// The action returned `{"error": ...}` (OpenWhisk status 1).
    ApplicationError,
    /// Crash, timeout, OOM, bad output, init failure (status 2).
    DeveloperError,
    /// The platform failed (status 3, or HTTP 500 with a record).
    InternalError,
    /// HTTP 429: rate limited.
    Throttled,
    /// Another 5xx answer without a record (502/503/504 from a proxy, ...).
    ServerError,
    /// Another 4xx answer (auth, not found, bad request).
    ClientError,
    /// No answer within the client's timeout.
    Timeout,
    /// No connection: refused, unreachable, or the TLS handshake failed. The request
    /// was never sent, so it may be sent again.
    Refused,
    /// The connection was made and the request sent (or being sent), then reset or
    /// closed before a whole answer came: the action may be running. Never retried.
    ConnectionLost,
    /// 202 (wait exceeded or non-blocking) and the record was not obtained by polling.
    Accepted,
    /// An answer that could not be understood.
    ProtocolError,
}

impl OutcomeClass {
    /// Name as stored in results.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeClass::Success => "success",
            OutcomeClass::ApplicationError => "application_error",
            OutcomeClass::DeveloperError => "developer_error",
            OutcomeClass::InternalError => "internal_error",
            OutcomeClass::Throttled => "throttled",
            OutcomeClass::ServerError => "server_error",
            OutcomeClass::ClientError => "client_error",
            OutcomeClass::Timeout => "timeout",
            OutcomeClass::Refused => "refused",
            OutcomeClass::ConnectionLost => "connection_lost",
            OutcomeClass::Accepted => "accepted",
            OutcomeClass::ProtocolError => "protocol_error",
        }
    }

    /// Did the action run to a record (whatever its status)?
    pub fn has_record(self) -> bool {
        matches!(
            self,
            OutcomeClass::Success
                | OutcomeClass::ApplicationError
                | OutcomeClass::DeveloperError
                | OutcomeClass::InternalError
        )
    }
}

/// An OpenWhisk activation record, typed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivationRecord {
    pub activation_id: String,
    pub namespace: String,
    pub name: String,
    /// Epoch ms (for a cold start: run start − initTime).
    pub start_ms: u64,
    pub end_ms: u64,
    pub duration_ms: u64,
    /// `success`, `application error`, `action developer error`, `whisk internal error`.
    pub status: String,
    pub success: bool,
    pub result: Value,
    /// `waitTime` annotation (ms).
    pub wait_ms: Option<u64>,
    /// `initTime` annotation (ms): present only on cold and prewarm starts.
    pub init_ms: Option<u64>,
    /// `kind` annotation.
    pub kind: Option<String>,
    /// `timeout` annotation.
    pub timeout: bool,
    /// `limits.memory` annotation (MB).
    pub memory_mb: Option<u64>,
    pub logs: Vec<String>,
}

impl ActivationRecord {
    /// Was it a cold (or prewarm) start? OpenWhisk's marker is the `initTime` annotation.
    pub fn cold(&self) -> bool {
        self.init_ms.is_some()
    }
}

/// Everything the client saw of one invocation.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// CLOCK_MONOTONIC ns right before the request was sent.
    pub sent_ns: u64,
    /// CLOCK_MONOTONIC ns when the final answer (or the record, after polling) arrived.
    pub answered_ns: u64,
    /// Status of the invoke answer (the last one, if retried).
    pub http_status: Option<u16>,
    pub class: OutcomeClass,
    pub activation_id: Option<String>,
    pub record: Option<ActivationRecord>,
    /// GETs made after a 202 to obtain the record.
    pub polls: u32,
    /// Retries made (0 unless retries are enabled).
    pub retries: u32,
    /// Error text for classes without a record.
    pub error: Option<String>,
}

/// Why an activation record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Not JSON, or JSON without the fields every record has.
    #[error("not an activation record: {0}")]
    Shape(#[from] serde_json::Error),
    /// A field with an impossible value.
    #[error("activation record {id}: {what}")]
    Invalid { id: String, what: String },
}

/// The record as OpenWhisk sends it (only what we keep; unknown fields are ignored).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRecord {
    activation_id: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    start: u64,
    #[serde(default)]
    end: u64,
    #[serde(default)]
    duration: Option<u64>,
    response: RawResponse,
    #[serde(default)]
    logs: Vec<String>,
    #[serde(default)]
    annotations: Vec<RawAnnotation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawResponse {
    #[serde(default)]
    result: Value,
    #[serde(default)]
    status: Option<String>,
    /// Only in list summaries (0..3).
    #[serde(default)]
    status_code: Option<u8>,
    #[serde(default)]
    success: Option<bool>,
}

#[derive(Deserialize)]
struct RawAnnotation {
    key: String,
    #[serde(default)]
    value: Value,
}

/// OpenWhisk's status strings, by `statusCode`.
const STATUSES: [&str; 4] = [
    "success",
    "application error",
    "action developer error",
    "whisk internal error",
];

/// A number of milliseconds (OpenWhisk writes integers; accept whole floats too).
fn ms(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f.round() as u64)
    })
}

impl ActivationRecord {
    /// Reads a record from the bytes of a platform answer (a blocking invoke's body, or
    /// `GET /activations/{id}`). Fails on anything that is not a full record (e.g. the
    /// `{"activationId"}` of a 202 or an `{"error","code"}` body).
    pub fn from_slice(body: &[u8]) -> Result<ActivationRecord, RecordError> {
        let raw: RawRecord = serde_json::from_slice(body)?;
        Self::from_raw(raw)
    }

    /// Reads a record from parsed JSON.
    pub fn from_json(v: &Value) -> Result<ActivationRecord, RecordError> {
        let raw = RawRecord::deserialize(v)?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawRecord) -> Result<ActivationRecord, RecordError> {
        let invalid = |what: String| RecordError::Invalid {
            id: raw.activation_id.clone(),
            what,
        };
        if raw.activation_id.is_empty() {
            return Err(invalid("empty activationId".into()));
        }
        let status = match (&raw.response.status, raw.response.status_code) {
            (Some(s), _) => s.clone(),
            (None, Some(c)) => STATUSES
                .get(c as usize)
                .ok_or_else(|| invalid(format!("statusCode {c} is not 0..3")))?
                .to_string(),
            (None, None) => return Err(invalid("response has no status".into())),
        };
        let success = raw.response.success.unwrap_or(status == STATUSES[0]);
        if raw.end < raw.start {
            return Err(invalid(format!(
                "end {} is before start {}",
                raw.end, raw.start
            )));
        }
        let mut rec = ActivationRecord {
            duration_ms: raw.duration.unwrap_or(raw.end - raw.start),
            activation_id: String::new(),
            namespace: raw.namespace,
            name: raw.name,
            start_ms: raw.start,
            end_ms: raw.end,
            status,
            success,
            result: raw.response.result,
            wait_ms: None,
            init_ms: None,
            kind: None,
            timeout: false,
            memory_mb: None,
            logs: raw.logs,
        };
        for a in raw.annotations {
            match a.key.as_str() {
                "waitTime" => rec.wait_ms = ms(&a.value),
                "initTime" => rec.init_ms = ms(&a.value),
                "kind" => rec.kind = a.value.as_str().map(str::to_string),
                "timeout" => rec.timeout = a.value.as_bool().unwrap_or(false),
                "limits" => rec.memory_mb = a.value.get("memory").and_then(ms),
                _ => {}
            }
        }
        rec.activation_id = raw.activation_id;
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cold start as OpenWhisk 1.0 (and the embedded platform) returns it.
    const COLD: &str = r#"{"activationId":"4f0c6a0f2a5c4f678c6a0f2a5c1f67a1",
      "annotations":[{"key":"path","value":"guest/hello"},{"key":"waitTime","value":1038},
        {"key":"kind","value":"python:3.11"},{"key":"timeout","value":false},
        {"key":"limits","value":{"concurrency":1,"logs":10,"memory":256,"timeout":60000}},
        {"key":"initTime","value":292}],
      "duration":317,"end":1700000000317,"logs":[],"name":"hello","namespace":"guest",
      "publish":false,"response":{"result":{"greeting":"Hello stranger!"},"size":32,
        "status":"success","success":true},
      "start":1700000000000,"subject":"guest","version":"0.0.1"}"#;

    /// A warm run that timed out (developer error).
    const TIMED_OUT: &str = r#"{"activationId":"0123456789abcdef0123456789abcdef",
      "annotations":[{"key":"path","value":"guest/sleep"},{"key":"waitTime","value":3},
        {"key":"kind","value":"nodejs:20"},{"key":"timeout","value":true},
        {"key":"limits","value":{"concurrency":1,"logs":10,"memory":128,"timeout":100}}],
      "duration":103,"end":1700000000103,"logs":[],"name":"sleep","namespace":"guest",
      "publish":false,"response":{"result":{"error":"The action exceeded its time limits of 100 milliseconds."},
        "size":70,"status":"action developer error","success":false},
      "start":1700000000000,"subject":"guest","version":"0.0.2"}"#;

    #[test]
    fn a_cold_start_record_is_read_whole() {
        let r = ActivationRecord::from_slice(COLD.as_bytes()).unwrap();
        assert_eq!(r.activation_id, "4f0c6a0f2a5c4f678c6a0f2a5c1f67a1");
        assert_eq!((r.namespace.as_str(), r.name.as_str()), ("guest", "hello"));
        assert_eq!(
            (r.start_ms, r.end_ms, r.duration_ms),
            (1700000000000, 1700000000317, 317)
        );
        assert_eq!(r.status, "success");
        assert!(r.success);
        assert_eq!(r.result["greeting"], "Hello stranger!");
        assert_eq!(r.wait_ms, Some(1038));
        assert_eq!(r.init_ms, Some(292));
        assert!(r.cold());
        assert_eq!(r.kind.as_deref(), Some("python:3.11"));
        assert!(!r.timeout);
        assert_eq!(r.memory_mb, Some(256));
        // The same from a parsed value.
        let v: Value = serde_json::from_str(COLD).unwrap();
        assert_eq!(ActivationRecord::from_json(&v).unwrap(), r);
    }

    #[test]
    fn a_warm_timeout_has_no_init_time_and_the_timeout_flag() {
        let r = ActivationRecord::from_slice(TIMED_OUT.as_bytes()).unwrap();
        assert_eq!(r.init_ms, None);
        assert!(!r.cold());
        assert!(r.timeout);
        assert!(!r.success);
        assert_eq!(r.status, "action developer error");
        assert_eq!(r.memory_mb, Some(128));
        assert_eq!(r.wait_ms, Some(3));
    }

    #[test]
    fn list_summaries_give_the_status_by_code() {
        let v = serde_json::json!({"activationId": "a", "start": 5, "end": 9,
            "response": {"statusCode": 1}});
        let r = ActivationRecord::from_json(&v).unwrap();
        assert_eq!(r.status, "application error");
        assert!(!r.success);
        assert_eq!(r.duration_ms, 4);
        let bad = serde_json::json!({"activationId": "a", "response": {"statusCode": 7}});
        assert!(ActivationRecord::from_json(&bad).is_err());
    }

    #[test]
    fn what_is_not_a_record_is_refused() {
        for body in [
            r#"{"activationId":"4f0c6a0f2a5c4f678c6a0f2a5c1f67a1"}"#,
            r#"{"error":"Too many requests","code":"x"}"#,
            r#"not json"#,
            r#"{"activationId":"","response":{"status":"success"}}"#,
            r#"{"activationId":"a","start":9,"end":5,"response":{"status":"success"}}"#,
        ] {
            assert!(
                ActivationRecord::from_slice(body.as_bytes()).is_err(),
                "{body}"
            );
        }
    }
}
