//! API errors as OpenWhisk's controller answers them: a status, `{"error", "code"}` with
//! the transaction id as code (also in `X-Request-ID`), and the Basic realm on 401.
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// OpenWhisk's 404 text.
pub(crate) const NOT_FOUND: &str = "The requested resource does not exist.";

/// An error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub tx: String,
}

impl ApiError {
    /// An error with `status` and `message` for transaction `tx`.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>, tx: &str) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            tx: tx.to_string(),
        }
    }

    pub(crate) fn not_found(tx: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, NOT_FOUND, tx)
    }

    pub(crate) fn bad_request(message: impl Into<String>, tx: &str) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message, tx)
    }

    /// 400 for a body that is not the expected JSON.
    pub(crate) fn malformed(detail: impl std::fmt::Display, tx: &str) -> ApiError {
        ApiError::bad_request(format!("The request content was malformed:\n{detail}"), tx)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message, "code": self.tx });
        let mut r = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"OpenWhisk secure realm\""),
            );
        }
        r
    }
}
