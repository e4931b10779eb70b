//! Unified file ids (a file sent to several deployments) used: which copy a batch, a job or
//! another call takes ([`on_deployment`], [`raw_on`]), and get, content and delete of the file
//! ([`unified`]: the recorded object, the first copy that answers, every copy deleted).

use std::sync::Arc;

use futures_util::future::join_all;
use http::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::{FileError, delete_copy, holders, json_out, read_object, store, unified_row};
use crate::auth::Principal;
use crate::body::Body;
use crate::error::GatewayError;
use crate::managed::file_table::{self, FileRow};
use crate::managed::ids::{self, Kind, UNIFIED};
use crate::managed::{At, ManagedError, pick, record, upstream_uri};
use crate::responses::ids::Owned;
use crate::router::Deployment;
use crate::state::AppState;
use crate::upstream::{self, UpstreamError};

/// A file the gateway handed out, on one deployment: the provider's id there and whether the
/// client's id is a unified one.
pub struct Held {
    pub raw: String,
    pub dep: Arc<Deployment>,
    pub unified: bool,
}

/// The file `id` on the deployment that will use it: a unified file's copy on a deployment of
/// `model` (the only copy when `model` is not given), which the caller must be allowed to use;
/// any other id as [`super::held`] says.
pub async fn on_deployment(
    state: &AppState,
    principal: &Principal,
    id: &str,
    model: Option<&str>,
) -> Result<Held, GatewayError> {
    let opened = ids::open(state.response_ids.sealer(), Kind::File, id);
    let Some(o) = opened.filter(|o| o.model_id == UNIFIED) else {
        let (raw, dep) = crate::managed::held(state, Kind::File, id, principal, model)?;
        return Ok(Held {
            raw,
            dep,
            unified: false,
        });
    };
    let row = unified_row(state, id, &o, principal).await?;
    let held = holders(state, &row);
    if held.is_empty() {
        return Err(FileError::Gone(id.to_string()).into());
    }
    let names = || {
        let mut n: Vec<&str> = held.iter().map(|(d, _)| d.model_name.as_str()).collect();
        n.dedup();
        n.join(", ")
    };
    let (dep, raw) = match model {
        Some(m) => {
            let table = state.models.load_full();
            let group = table.resolve(m)?.group;
            let mine: Vec<&(Arc<Deployment>, String)> = held
                .iter()
                .filter(|(d, _)| group.iter().any(|g| g.id == d.id))
                .collect();
            match mine.as_slice() {
                [] => {
                    return Err(FileError::NotOnModel {
                        id: id.to_string(),
                        model: m.to_string(),
                        on: names(),
                    }
                    .into());
                }
                some => some[fastrand::usize(..some.len())].clone(),
            }
        }
        None if held.len() == 1 => held[0].clone(),
        None => return Err(FileError::SeveralModels(id.to_string(), names()).into()),
    };
    pick(state, principal, &dep.model_name).await?;
    Ok(Held {
        raw,
        dep,
        unified: true,
    })
}

/// The provider's id of file `id` on `dep` (a unified file's copy there), if `principal` may
/// use it.
pub async fn raw_on(
    state: &AppState,
    principal: &Principal,
    id: &str,
    dep: &Deployment,
) -> Result<String, GatewayError> {
    let opened = ids::open(state.response_ids.sealer(), Kind::File, id);
    let Some(o) = opened.filter(|o| o.model_id == UNIFIED) else {
        let (raw, held_on) = crate::managed::held(state, Kind::File, id, principal, None)?;
        if held_on.id != dep.id {
            return Err(ManagedError::Unsupported(format!(
                "{} (the file is held by another deployment)",
                dep.model_name
            ))
            .into());
        }
        return Ok(raw);
    };
    let row = unified_row(state, id, &o, principal).await?;
    row.mappings
        .into_iter()
        .find(|(d, _)| d == &dep.id)
        .map(|(_, raw)| raw)
        .ok_or_else(|| {
            FileError::NotOnModel {
                id: id.to_string(),
                model: dep.model_name.clone(),
                on: String::new(),
            }
            .into()
        })
}

/// Get (`GET`), content or delete (`DELETE`) of a unified file `id` (opened as `o`).
pub async fn unified(
    state: &AppState,
    at: At,
    method: &Method,
    id: &str,
    o: &Owned,
    principal: &Principal,
    hint: Option<&str>,
) -> Result<Response<Body>, GatewayError> {
    let row = unified_row(state, id, o, principal).await?;
    let held = holders(state, &row);
    match at {
        At::Item if method == Method::DELETE => delete_everywhere(state, principal, &row).await,
        At::Item => {
            let (dep, raw) = held
                .first()
                .cloned()
                .ok_or_else(|| FileError::Gone(id.to_string()))?;
            let mut rec = record(state, principal, Kind::File, at, method, &dep).await?;
            let mut v = match &row.object {
                Some(v) => v.clone(),
                None => read_object(state, &dep, &raw).await?,
            };
            rec.status = 200;
            v["id"] = Value::String(id.to_string());
            Ok(json_out(StatusCode::OK, &v))
        }
        At::Content => {
            // the copy on the named model, else the first that answers
            let table = state.models.load_full();
            let order: Vec<(Arc<Deployment>, String)> = match hint {
                Some(m) => {
                    let group = table.resolve(m)?.group;
                    held.into_iter()
                        .filter(|(d, _)| group.iter().any(|g| g.id == d.id))
                        .collect()
                }
                None => held,
            };
            let mut last: Option<GatewayError> = None;
            for (dep, raw) in order {
                let mut rec = record(state, principal, Kind::File, at, method, &dep).await?;
                let uri = upstream_uri(&dep, &format!("/files/{raw}/content"))?;
                let resp =
                    upstream::send_with(&state.client, &dep, Method::GET, &uri, &[], false, &[])
                        .await;
                match resp {
                    Ok(r) if r.status().is_success() => {
                        rec.status = r.status().as_u16();
                        return Ok(crate::managed::streamed(r));
                    }
                    Ok(r) => {
                        rec.status = r.status().as_u16();
                        last = Some(UpstreamError::from_response(r).await.into());
                    }
                    Err(e) => last = Some(e.into()),
                }
            }
            Err(last.unwrap_or_else(|| FileError::NotFound(id.to_string()).into()))
        }
        _ => Err(GatewayError::NotFound(format!("/v1/files/{id}"))),
    }
}

/// `DELETE` of a unified file: every copy deleted at once; the row goes when all are gone, else
/// it keeps the copies left (a retry deletes those) and the first error is the answer.
async fn delete_everywhere(
    state: &AppState,
    principal: &Principal,
    row: &FileRow,
) -> Result<Response<Body>, GatewayError> {
    let table = state.models.load_full();
    let mut calls = Vec::new();
    let mut left: Vec<(String, String)> = Vec::new();
    for (dep_id, raw) in &row.mappings {
        match table.deployments().find(|d| &d.id == dep_id) {
            Some(dep) => {
                let rec =
                    record(state, principal, Kind::File, At::Item, &Method::DELETE, dep).await?;
                calls.push((dep.clone(), raw.clone(), rec));
            }
            // a deployment no longer configured: its copy cannot be reached
            None => {
                tracing::warn!(deployment = %dep_id, file = %raw, "copy of a deleted file on a deployment no longer configured")
            }
        }
    }
    let done = join_all(
        calls
            .iter()
            .map(|(dep, raw, _)| delete_copy(state, dep, raw)),
    )
    .await;
    let mut first = None;
    for ((dep, raw, rec), r) in calls.iter_mut().zip(done) {
        match r {
            Ok(()) => rec.status = 200,
            Err(e) => {
                rec.status = e.status().as_u16();
                left.push((dep.id.clone(), raw.clone()));
                first.get_or_insert(e);
            }
        }
    }
    let store = store(state)?;
    if let Some(e) = first {
        file_table::set_mappings(store, &row.id, &left)
            .await
            .map_err(FileError::Store)?;
        return Err(e);
    }
    file_table::delete(store, &row.id, "", "")
        .await
        .map_err(FileError::Store)?;
    Ok(json_out(
        StatusCode::OK,
        &json!({"id": row.id, "object": "file", "deleted": true}),
    ))
}
