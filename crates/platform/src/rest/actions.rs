//! Action endpoints: create/update (`overwrite`), get (`code=false`), delete, list, and
//! invoke (`blocking`, `result`, `timeout`; 202 with the activation id when the wait runs
//! out while the activation goes on).
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::auth::Identity;
use super::error::ApiError;
use super::packages::store_err as entity_error;
use super::{Body, QueryMap, flag, paging};
use crate::activations::Status;
use crate::entities::ActionPut;
use crate::invoke::{self, Job};
use crate::server::Platform;

fn qname(pkg: Option<&str>, name: &str) -> String {
    match pkg {
        Some(p) => format!("{p}/{name}"),
        None => name.to_string(),
    }
}

pub(super) async fn list(
    State(p): State<Arc<Platform>>,
    id: Identity,
    Path(ns): Path<String>,
    q: QueryMap,
) -> Result<Json<Vec<Value>>, ApiError> {
    let ns = id.resolve(&ns, "/actions")?;
    let (limit, skip) = paging(&q, "actions", &id.tx)?;
    Ok(Json(
        p.entities
            .list_actions(&ns, None)
            .iter()
            .skip(skip)
            .take(limit)
            .map(|a| a.summary())
            .collect(),
    ))
}

async fn get_impl(
    p: &Platform,
    id: &Identity,
    ns: &str,
    qn: &str,
    q: &QueryMap,
) -> Result<Json<Value>, ApiError> {
    let ns = id.resolve(ns, &format!("/actions/{qn}"))?;
    let a = p
        .entities
        .action(&ns, qn)
        .ok_or_else(|| ApiError::not_found(&id.tx))?;
    let code = q
        .get("code")
        .is_none_or(|v| !v.eq_ignore_ascii_case("false"));
    Ok(Json(a.to_json(code)))
}

pub(super) async fn get_one(
    State(p): State<Arc<Platform>>,
    id: Identity,
    Path((ns, name)): Path<(String, String)>,
    q: QueryMap,
) -> Result<Json<Value>, ApiError> {
    get_impl(&p, &id, &ns, &name, &q).await
}

pub(super) async fn get_pkg(
    State(p): State<Arc<Platform>>,
    id: Identity,
    Path((ns, pkg, name)): Path<(String, String, String)>,
    q: QueryMap,
) -> Result<Json<Value>, ApiError> {
    get_impl(&p, &id, &ns, &qname(Some(&pkg), &name), &q).await
}

fn put_impl(
    p: &Platform,
    id: &Identity,
    ns: &str,
    qn: &str,
    q: &QueryMap,
    body: &[u8],
) -> Result<Json<Value>, ApiError> {
    let ns = id.resolve(ns, &format!("/actions/{qn}"))?;
    let put: ActionPut = if body.iter().all(u8::is_ascii_whitespace) {
        ActionPut::default()
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::malformed(e, &id.tx))?
    };
    let a = p
        .entities
        .put_action(&ns, qn, put, flag(q, "overwrite"), &p.cfg.limits)
        .map_err(|e| entity_error(e, &id.tx))?;
    Ok(Json(a.to_json(true)))
}

pub(super) async fn put(
    State(p): State<Arc<Platform>>,
    id: Identity,
    Path((ns, name)): Path<(String, String)>,
    q: QueryMap,
    Body(body): Body,
) -> Result<Json<Value>, ApiError> {
    put_impl(&p, &id, &ns, &name, &q, &body)
}

pub(super) async fn put_pkg(
    State(p): State<Arc<Platform>>,
    id: Identity,
    Path((ns, pkg, name)): Path<(String, String, String)>,
    q: QueryMap,
    Body(body): Body,
) -> Result<Json<Value>, ApiError> {
    put_impl(&p, &id, &ns, &qname(Some(&pkg), &name), &q, &body)
}

fn delete_impl(p: &Platform, id: &Identity, ns: &str, qn: &str) -> Result<Json<Value>, ApiError> {
    let ns = id.resolve(ns, &format!("/actions/{qn}"))?;
    let a = p
        .entities
        .delete_action(&ns, qn)
        .ok_or_else(|| ApiError::not_found(&id.tx))?;
    Ok(Json(a.to_json(true)))
}

pub(super) async fn delete(
    State(p): State<Arc<Platform>>,
    id: Identity,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    delete_impl(&p, &id, &ns, &name)
}

pub(super) async fn delete_pkg(
    State(p): State<Arc<Platform>>,
    id: Identity,
    Path((ns, pkg, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    delete_impl(&p, &id, &ns, &qname(Some(&pkg), &name))
}

pub(super) async fn invoke(
    State(p): State<Arc<Platform>>,
    id: Identity,
    Path((ns, name)): Path<(String, String)>,
    q: QueryMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    invoke_impl(p, id, &ns, &name, &q, &body).await
}

pub(super) async fn invoke_pkg(
    State(p): State<Arc<Platform>>,
    id: Identity,
    Path((ns, pkg, name)): Path<(String, String, String)>,
    q: QueryMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    invoke_impl(p, id, &ns, &qname(Some(&pkg), &name), &q, &body).await
}

fn with_id(mut r: Response, aid: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(aid) {
        r.headers_mut().insert("x-openwhisk-activation-id", v);
    }
    r
}

async fn invoke_impl(
    p: Arc<Platform>,
    id: Identity,
    ns: &str,
    qn: &str,
    q: &QueryMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let received_ms = crate::ids::now_ms();
    let ns = id.resolve(ns, &format!("/actions/{qn}"))?;
    let blocking = flag(q, "blocking");
    let result_only = flag(q, "result");
    let max_wait = p.cfg.limits.blocking_timeout_max;
    let wait = match q.get("timeout").filter(|v| !v.is_empty()) {
        None => max_wait,
        Some(v) => match v.parse::<u64>() {
            Ok(t) if (1..=max_wait).contains(&t) => t,
            _ => {
                return Err(ApiError::bad_request(
                    format!("Timeout must be number of milliseconds up to {max_wait}."),
                    &id.tx,
                ));
            }
        },
    };
    if body.len() > p.cfg.limits.payload_max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Request larger than allowed: {} > {} bytes.",
                body.len(),
                p.cfg.limits.payload_max
            ),
            &id.tx,
        ));
    }
    let params = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Some(m),
            Ok(_) => {
                return Err(ApiError::malformed(
                    "the parameters must be a JSON object",
                    &id.tx,
                ));
            }
            Err(e) => return Err(ApiError::malformed(e, &id.tx)),
        }
    };
    let action = p
        .entities
        .action(&ns, qn)
        .ok_or_else(|| ApiError::not_found(&id.tx))?;
    p.throttle
        .admit(&ns, received_ms, id.per_minute, id.concurrent)
        .map_err(|e| ApiError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string(), &id.tx))?;
    let aid = crate::ids::activation_id();
    let job = Job {
        params: invoke::merge_params(&action, params),
        action,
        namespace: ns.clone(),
        subject: id.subject.clone(),
        activation_id: aid.clone(),
        transaction_id: id.tx.clone(),
        received_ms,
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let p2 = p.clone();
    tokio::spawn(async move {
        let rec = invoke::execute(p2.clone(), job).await;
        p2.throttle.done(&ns);
        let _ = tx.send(rec);
    });
    let accepted = || {
        with_id(
            (
                StatusCode::ACCEPTED,
                Json(serde_json::json!({"activationId": aid})),
            )
                .into_response(),
            &aid,
        )
    };
    if !blocking {
        return Ok(accepted());
    }
    let rec = match tokio::time::timeout(Duration::from_millis(wait), rx).await {
        Ok(Ok(rec)) => rec,
        Ok(Err(_)) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "There was an error processing your request.",
                &id.tx,
            ));
        }
        Err(_) => return Ok(accepted()),
    };
    let status = match rec.response.status() {
        Status::Success => StatusCode::OK,
        Status::ApplicationError | Status::DeveloperError => StatusCode::BAD_GATEWAY,
        Status::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = if result_only {
        Json(rec.response.result.clone()).into_response()
    } else {
        Json(&*rec).into_response()
    };
    Ok(with_id((status, body).into_response(), &aid))
}
