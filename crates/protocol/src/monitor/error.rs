//! Errors of the monitor protocol: the error answer `{"code", "error"}` with its code as
//! an enum, the typed reasons a request is bad (each one a bad request the monitor
//! counts), and what a client can get instead of the answer it expected.
use serde::{Deserialize, Serialize};

/// The kind of an error answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, truncated, not an object, or a field missing or of the wrong type.
    BadRequest,
    /// Larger than the monitor's request size limit.
    TooLarge,
    /// Neither a notification, nor a typed request, nor the FaaSLoad query.
    UnknownRequest,
    /// A `type` the monitor does not know.
    UnknownType,
    /// An `action` the monitor does not know.
    UnknownAction,
    /// The container or activation named is unknown (or an activation end without start).
    NotFound,
    /// The activation has started and not ended yet.
    Pending,
    /// Too many clients: try again.
    Busy,
}

/// The error answer. Field order as on the wire (sorted keys).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    pub code: ErrorCode,
    pub error: String,
}

impl ErrorAnswer {
    /// An error answer of kind `code`.
    pub fn new(code: ErrorCode, error: impl Into<String>) -> ErrorAnswer {
        ErrorAnswer {
            code,
            error: error.into(),
        }
    }
}

impl std::fmt::Display for ErrorAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)
    }
}

impl std::error::Error for ErrorAnswer {}

/// Why a request is bad. Every one is counted by the monitor as a bad request and
/// answered with [`RequestError::answer`]; the message is the answer's `error`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The bytes are not JSON.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// The connection ended inside a request.
    #[error("truncated JSON request")]
    Truncated,
    /// The request is larger than the limit (bytes).
    #[error("request larger than {0} bytes")]
    TooLarge(usize),
    #[error("a request is a JSON object")]
    NotObject,
    #[error(
        "unknown request: expected \"action\", \"type\", or the FaaSLoad query {{\"container\",\"start\",\"end\"}}"
    )]
    UnknownRequest,
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    #[error("unknown request type {0:?}")]
    UnknownType(String),
    #[error("notification without \"container\"")]
    NotificationWithoutContainer,
    #[error("activation message without \"activation_id\"")]
    NotificationWithoutActivation,
    /// An `activation` query without its id.
    #[error("expected \"activation_id\"")]
    QueryWithoutActivation,
    /// A `window` or `samples` query without container, start or end.
    #[error("expected {{\"container\": string, \"start\": epoch seconds, \"end\": epoch seconds}}")]
    BadWindow,
    /// The FaaSLoad query without container, start or end (the connection then closes).
    #[error("expected {{\"container\": string, \"start\": epoch seconds, \"end\": epoch seconds}}")]
    BadOriginalQuery,
    #[error(
        "expected {{\"namespace\", \"name\" (the action), \"start\": epoch s, \"end\": epoch s}}"
    )]
    BadAttribute,
    #[error("end is before start")]
    EndBeforeStart,
}

impl RequestError {
    /// The code of its error answer.
    pub fn code(&self) -> ErrorCode {
        match self {
            RequestError::TooLarge(_) => ErrorCode::TooLarge,
            RequestError::UnknownRequest => ErrorCode::UnknownRequest,
            RequestError::UnknownAction(_) => ErrorCode::UnknownAction,
            RequestError::UnknownType(_) => ErrorCode::UnknownType,
            RequestError::InvalidJson(_)
            | RequestError::Truncated
            | RequestError::NotObject
            | RequestError::NotificationWithoutContainer
            | RequestError::NotificationWithoutActivation
            | RequestError::QueryWithoutActivation
            | RequestError::BadWindow
            | RequestError::BadOriginalQuery
            | RequestError::BadAttribute
            | RequestError::EndBeforeStart => ErrorCode::BadRequest,
        }
    }

    /// Does the monitor close the connection after answering? (Framing errors leave
    /// nothing to read on; the FaaSLoad query always closes after its answer.)
    pub fn closes(&self) -> bool {
        matches!(
            self,
            RequestError::InvalidJson(_)
                | RequestError::Truncated
                | RequestError::TooLarge(_)
                | RequestError::BadOriginalQuery
        )
    }

    /// Its error answer.
    pub fn answer(&self) -> ErrorAnswer {
        ErrorAnswer::new(self.code(), self.to_string())
    }
}

/// What a client gets instead of the answer it asked for.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    /// The monitor answered with an error.
    #[error("monitor: {0}")]
    Monitor(ErrorAnswer),
    /// The answer is not the expected one (not JSON, a field missing, renamed or of the
    /// wrong type).
    #[error("monitor answered {line:?}, expected {what}: {source}")]
    Decode {
        /// The type expected.
        what: String,
        line: String,
        source: serde_json::Error,
    },
}

impl ReplyError {
    /// The monitor's error code, if it answered with an error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ReplyError::Monitor(e) => Some(e.code),
            ReplyError::Decode { .. } => None,
        }
    }
}
