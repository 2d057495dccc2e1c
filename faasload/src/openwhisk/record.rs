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
    /// Connection refused or reset before an answer.
    Refused,
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
