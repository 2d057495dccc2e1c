//! The REST API (axum), OpenWhisk's `/api/v1`: routes, the API description, namespaces
//! and limits, and the fallbacks (404/405 as JSON error bodies). Entity and activation
//! handlers live in their own files.
mod actions;
mod activations;
pub(crate) mod auth;
pub(crate) mod error;
mod packages;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

use self::auth::{Identity, Tx};
use self::error::ApiError;
use super::server::Platform;

/// Largest request body (action code included).
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The router of the whole API.
pub(crate) fn router(p: Arc<Platform>) -> Router {
    let ns = "/api/v1/namespaces/{ns}";
    Router::new()
        .route("/api/v1", get(info))
        .route("/api/v1/", get(info))
        .route("/api/v1/namespaces", get(namespaces))
        .route(&format!("{ns}/limits"), get(limits))
        .route(&format!("{ns}/actions"), get(actions::list))
        .route(&format!("{ns}/actions/"), get(actions::list))
        .route(
            &format!("{ns}/actions/{{name}}"),
            get(actions::get_one)
                .put(actions::put)
                .delete(actions::delete)
                .post(actions::invoke),
        )
        .route(
            &format!("{ns}/actions/{{pkg}}/{{name}}"),
            get(actions::get_pkg)
                .put(actions::put_pkg)
                .delete(actions::delete_pkg)
                .post(actions::invoke_pkg),
        )
        .route(&format!("{ns}/packages"), get(packages::list))
        .route(&format!("{ns}/packages/"), get(packages::list))
        .route(
            &format!("{ns}/packages/{{name}}"),
            get(packages::get_one)
                .put(packages::put)
                .delete(packages::delete),
        )
        .route(&format!("{ns}/activations"), get(activations::list))
        .route(&format!("{ns}/activations/"), get(activations::list))
        .route(
            &format!("{ns}/activations/{{id}}"),
            get(activations::get_one),
        )
        .route(
            &format!("{ns}/activations/{{id}}/logs"),
            get(activations::logs),
        )
        .route(
            &format!("{ns}/activations/{{id}}/result"),
            get(activations::result),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(auth::transaction))
        .with_state(p)
}

async fn info() -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "description": "OpenWhisk-compatible API of the faasload embedded platform",
        "api_paths": ["/api/v1"],
        "api_version": "1.0.0",
        "api_version_path": "v1",
        "build": env!("CARGO_PKG_VERSION"),
        "buildno": env!("CARGO_PKG_VERSION"),
        "swagger_paths": {"ui": "/docs", "api-docs": "/api/v1/api-docs"},
    }))
}

async fn namespaces(id: Identity) -> impl IntoResponse {
    axum::Json(vec![id.namespace])
}

async fn limits(
    State(_p): State<Arc<Platform>>,
    id: Identity,
    axum::extract::Path(ns): axum::extract::Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    id.resolve(&ns, "/limits")?;
    Ok(axum::Json(serde_json::json!({
        "invocationsPerMinute": id.per_minute,
        "concurrentInvocations": id.concurrent,
        "firesPerMinute": id.per_minute,
    })))
}

async fn not_found(tx: Tx) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, error::NOT_FOUND, &tx.0)
}

async fn method_not_allowed(tx: Tx) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTP method not allowed, supported methods: GET, PUT, POST, DELETE",
        &tx.0,
    )
}

/// Query parameters (an empty query string is fine); a malformed query string is a 400
/// with OpenWhisk's error body.
pub(crate) struct QueryMap(pub HashMap<String, String>);

impl std::ops::Deref for QueryMap {
    type Target = HashMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

fn tx_of(ext: &axum::http::Extensions) -> String {
    ext.get::<Tx>().map(|t| t.0.clone()).unwrap_or_default()
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for QueryMap {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        s: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Query::<HashMap<String, String>>::from_request_parts(parts, s).await {
            Ok(q) => Ok(QueryMap(q.0)),
            Err(e) => Err(ApiError::bad_request(
                e.body_text(),
                &tx_of(&parts.extensions),
            )),
        }
    }
}

/// The raw request body; too large is a 413 with OpenWhisk's error body.
pub(crate) struct Body(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Body {
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, s: &S) -> Result<Self, ApiError> {
        let tx = tx_of(req.extensions());
        let len = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        match axum::body::Bytes::from_request(req, s).await {
            Ok(b) => Ok(Body(b)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                match len {
                    Some(n) => format!("Request larger than allowed: {n} > {BODY_LIMIT} bytes."),
                    None => format!("Request larger than allowed: {BODY_LIMIT} bytes."),
                },
                &tx,
            )),
            Err(e) => Err(ApiError::bad_request(e.body_text(), &tx)),
        }
    }
}

/// A boolean query flag (`true` only).
fn flag(q: &HashMap<String, String>, k: &str) -> bool {
    q.get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// `limit` and `skip` of a list of `collection` (limit 0..=200, default 30).
fn paging(
    q: &HashMap<String, String>,
    collection: &str,
    tx: &str,
) -> Result<(usize, usize), ApiError> {
    let int = |k: &str| -> Result<Option<i64>, ApiError> {
        match q.get(k) {
            None => Ok(None),
            Some(v) if v.is_empty() => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request(
                    format!("The value '{v}' is not an integer for {collection}."),
                    tx,
                )
            }),
        }
    };
    let limit = int("limit")?.unwrap_or(30);
    if !(0..=200).contains(&limit) {
        return Err(ApiError::bad_request(
            format!("The value '{limit}' is not in the range of 0 to 200 for {collection}."),
            tx,
        ));
    }
    let skip = int("skip")?.unwrap_or(0);
    if skip < 0 {
        return Err(ApiError::bad_request(
            format!("The value '{skip}' is not greater than or equal to 0 for {collection}."),
            tx,
        ));
    }
    let limit = if limit == 0 { 200 } else { limit };
    Ok((limit as usize, skip as usize))
}
