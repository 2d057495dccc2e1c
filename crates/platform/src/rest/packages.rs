//! Package endpoints: enough for actions in packages (`/actions/{pkg}/{name}`) and
//! package parameters (merged under the action's).
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::Value;

use super::auth::Identity;
use super::error::ApiError;
use super::{Body, QueryMap, flag, paging};
use crate::entities::{PackagePut, StoreError};
use crate::server::Platform;

pub(super) fn store_err(e: StoreError, tx: &str) -> ApiError {
    match e {
        StoreError::Exists => ApiError::new(StatusCode::CONFLICT, "resource already exists", tx),
        StoreError::NotFound => ApiError::not_found(tx),
        StoreError::Invalid(m) => ApiError::bad_request(m, tx),
        e @ StoreError::NotEmpty(..) => ApiError::new(StatusCode::CONFLICT, e.to_string(), tx),
    }
}

fn package_json(p: &Platform, ns: &str, pkg: &crate::entities::Package) -> Value {
    let mut v = serde_json::to_value(pkg).unwrap_or(Value::Null);
    let actions: Vec<Value> = p
        .entities
        .list_actions(ns, Some(&pkg.name))
        .iter()
        .map(|a| serde_json::json!({"name": a.name, "version": a.version, "annotations": a.annotations}))
        .collect();
    if let Some(o) = v.as_object_mut() {
        o.insert("actions".into(), Value::Array(actions));
    }
    v
}

pub(super) async fn list(
    State(p): State<Arc<Platform>>,
    id: Identity,
    Path(ns): Path<String>,
    q: QueryMap,
) -> Result<Json<Vec<Value>>, ApiError> {
    let ns = id.resolve(&ns, "/packages")?;
    let (limit, skip) = paging(&q, "packages", &id.tx)?;
    Ok(Json(
        p.entities
            .list_packages(&ns)
            .iter()
            .skip(skip)
            .take(limit)
            .map(|k| {
                serde_json::json!({"namespace": k.namespace, "name": k.name, "version": k.version,
                    "publish": k.publish, "annotations": k.annotations, "binding": false, "updated": k.updated})
            })
            .collect(),
    ))
}

pub(super) async fn get_one(
    State(p): State<Arc<Platform>>,
    id: Identity,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let ns = id.resolve(&ns, &format!("/packages/{name}"))?;
    let pkg = p
        .entities
        .package(&ns, &name)
        .ok_or_else(|| ApiError::not_found(&id.tx))?;
    Ok(Json(package_json(&p, &ns, &pkg)))
}

pub(super) async fn put(
    State(p): State<Arc<Platform>>,
    id: Identity,
    Path((ns, name)): Path<(String, String)>,
    q: QueryMap,
    Body(body): Body,
) -> Result<Json<Value>, ApiError> {
    let ns = id.resolve(&ns, &format!("/packages/{name}"))?;
    let put: PackagePut = if body.iter().all(u8::is_ascii_whitespace) {
        PackagePut::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::malformed(e, &id.tx))?
    };
    let pkg = p
        .entities
        .put_package(&ns, &name, put, flag(&q, "overwrite"), &p.cfg.limits)
        .map_err(|e| store_err(e, &id.tx))?;
    Ok(Json(package_json(&p, &ns, &pkg)))
}

pub(super) async fn delete(
    State(p): State<Arc<Platform>>,
    id: Identity,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let ns = id.resolve(&ns, &format!("/packages/{name}"))?;
    let pkg = p
        .entities
        .delete_package(&ns, &name)
        .map_err(|e| store_err(e, &id.tx))?;
    Ok(Json(serde_json::to_value(&*pkg).unwrap_or(Value::Null)))
}
