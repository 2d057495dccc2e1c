//! Activation endpoints: list with `name`, `limit`, `skip`, `since`, `upto`, `docs`;
//! one record; its logs; its result.
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;

use super::auth::Identity;
use super::error::ApiError;
use super::{QueryMap, flag, paging};
use crate::activations::{Activation, ListQuery};
use crate::server::Platform;

pub(super) async fn list(
    State(p): State<Arc<Platform>>,
    id: Identity,
    Path(ns): Path<String>,
    q: QueryMap,
) -> Result<Json<Vec<Value>>, ApiError> {
    let ns = id.resolve(&ns, "/activations")?;
    let (limit, skip) = paging(&q, "activations", &id.tx)?;
    let epoch = |k: &str| -> Result<Option<u64>, ApiError> {
        match q.get(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
                ApiError::bad_request(
                    format!("Parameter is not a valid value for epoch seconds: {v}"),
                    &id.tx,
                )
            }),
        }
    };
    let name = q.get("name").filter(|v| !v.is_empty()).map(String::as_str);
    if let Some(n) = name
        && crate::entities::split_name(n).is_none()
    {
        return Err(ApiError::bad_request(
            format!("Parameter may be a 'simple' name or 'package-name/simple' name: {n}"),
            &id.tx,
        ));
    }
    let query = ListQuery {
        name,
        since: epoch("since")?,
        upto: epoch("upto")?,
        skip,
        limit,
    };
    let docs = flag(&q, "docs");
    Ok(Json(
        p.activations
            .list(&ns, &query)
            .iter()
            .map(|a| {
                if docs {
                    serde_json::to_value(&**a).unwrap_or(Value::Null)
                } else {
                    a.summary()
                }
            })
            .collect(),
    ))
}

fn find(
    p: &Platform,
    id: &Identity,
    ns: &str,
    aid: &str,
    rest: &str,
) -> Result<Arc<Activation>, ApiError> {
    let ns = id.resolve(ns, &format!("/activations/{aid}{rest}"))?;
    if !crate::ids::is_activation_id(aid) {
        return Err(ApiError::bad_request(
            "The activation id is not valid.",
            &id.tx,
        ));
    }
    p.activations
        .get(&ns, &aid.to_ascii_lowercase())
        .ok_or_else(|| ApiError::not_found(&id.tx))
}

pub(super) async fn get_one(
    State(p): State<Arc<Platform>>,
    id: Identity,
    Path((ns, aid)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let a = find(&p, &id, &ns, &aid, "")?;
    Ok(Json(serde_json::to_value(&*a).unwrap_or(Value::Null)))
}

pub(super) async fn logs(
    State(p): State<Arc<Platform>>,
    id: Identity,
    Path((ns, aid)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let a = find(&p, &id, &ns, &aid, "/logs")?;
    Ok(Json(serde_json::json!({ "logs": a.logs })))
}

pub(super) async fn result(
    State(p): State<Arc<Platform>>,
    id: Identity,
    Path((ns, aid)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let a = find(&p, &id, &ns, &aid, "/result")?;
    Ok(Json(
        serde_json::to_value(&a.response).unwrap_or(Value::Null),
    ))
}
