//! Basic authentication with `uuid:key` credentials, the caller's identity, the
//! transaction id of each request (reused from `X-Request-ID` when given and echoed in
//! the response), and the resolution of `_` and other namespaces in paths.
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;
use crate::server::Platform;

/// The transaction id of a request.
#[derive(Clone, Debug)]
pub(crate) struct Tx(pub String);

/// Middleware: assigns the transaction id and sets `X-Request-ID` on the answer.
pub(crate) async fn transaction(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .map(str::to_string)
        .unwrap_or_else(crate::ids::transaction_id);
    req.extensions_mut().insert(Tx(id.clone()));
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

impl<S: Send + Sync> FromRequestParts<S> for Tx {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Tx, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Tx>()
            .cloned()
            .unwrap_or_else(|| Tx(crate::ids::transaction_id())))
    }
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    pub namespace: String,
    pub subject: String,
    pub per_minute: u32,
    pub concurrent: u32,
    pub tx: String,
}

impl Identity {
    /// The namespace a path names (`_` = own); 403 for another one.
    pub(crate) fn resolve(&self, ns: &str, rest: &str) -> Result<String, ApiError> {
        if ns == "_" || ns == self.namespace {
            Ok(self.namespace.clone())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("The supplied authentication is not authorized to access '{ns}{rest}'."),
                &self.tx,
            ))
        }
    }
}

/// Decodes `Basic <base64>` into `uuid:key`.
fn basic(value: &str) -> Option<String> {
    let b64 = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let bytes = crate::container::decode_base64(b64.trim())?;
    String::from_utf8(bytes).ok()
}

impl FromRequestParts<Arc<Platform>> for Identity {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        p: &Arc<Platform>,
    ) -> Result<Identity, ApiError> {
        let tx = parts
            .extensions
            .get::<Tx>()
            .map(|t| t.0.clone())
            .unwrap_or_default();
        let Some(h) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "The resource requires authentication, which was not supplied with the request",
                &tx,
            ));
        };
        let invalid = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "The supplied authentication is invalid",
                &tx,
            )
        };
        let creds = h.to_str().ok().and_then(basic).ok_or_else(invalid)?;
        let ns = p.keys.get(&creds).ok_or_else(invalid)?;
        Ok(Identity {
            namespace: ns.name.clone(),
            subject: ns.name.clone(),
            per_minute: ns
                .invocations_per_minute
                .unwrap_or(p.cfg.throttle.invocations_per_minute),
            concurrent: ns
                .concurrent_invocations
                .unwrap_or(p.cfg.throttle.concurrent_invocations),
            tx,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn basic_header() {
        assert_eq!(super::basic("Basic dTprZXk=").as_deref(), Some("u:key"));
        assert_eq!(super::basic("Bearer x"), None);
    }
}
