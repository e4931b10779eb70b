//! `/v1/files` beyond one deployment ([`upload`]: the form to one deployment or several;
//! [`unified`]: unified ids used). An upload names its deployment with `model` (as before:
//! the file streams through to one deployment) or names several model groups with
//! `target_model_names` (LiteLLM's managed files, a comma-separated form field): the form is
//! then held (within `max_request_size_mb`), sent to one deployment of each group at once, and
//! the client gets one unified id; `"TianjiLLM_ManagedFileTable"` ([`super::file_table`]) maps it
//! to each deployment's file id. If any upload fails, the copies already made are deleted and
//! nothing is recorded. A batch or fine-tuning job on a unified id runs on the deployment of the
//! request's `model` holding a copy, with that copy's id ([`on_deployment`]). Unified ids are
//! sealed like every managed id (the owner inside), so only the owner or an admin can use one;
//! get, content and delete reach every copy. Every upload is recorded, so `GET /v1/files` lists
//! the caller's own files (an admin's: everyone's) from any instance.

mod unified;
mod upload;

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::file_table::{self, FileRow, Listing};
use super::upstream_uri;
use crate::auth::Principal;
use crate::body::Body;
use crate::error::GatewayError;
use crate::responses::ids::Owned;
use crate::router::Deployment;
use crate::state::AppState;
use crate::store::{Store, StoreError};
use crate::upstream::{self, UpstreamError};
pub use unified::{Held, on_deployment, raw_on, unified};
pub use upload::create;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(
        "Sending a file to several models (target_model_names) needs the database: the gateway records which deployment holds which copy"
    )]
    NoStore,
    #[error("target_model_names names no model")]
    NoTargets,
    #[error("File not found: {0}")]
    NotFound(String),
    #[error("File {id} was not sent to model {model}; it is on: {on}")]
    NotOnModel {
        id: String,
        model: String,
        on: String,
    },
    #[error(
        "File {0} is on several models ({1}): name the one to use with `model` (in the body, as ?model= or in the x-tianji-model header)"
    )]
    SeveralModels(String, String),
    #[error("None of the deployments holding file {0} is configured any more")]
    Gone(String),
    #[error("The provider's answer to the upload has no file id")]
    NoId,
    #[error("The gateway's records of files are unavailable: {0}")]
    Store(#[from] StoreError),
}

crate::error::feature_error!(FileError, "managed_file");

impl FileError {
    pub fn status(&self) -> StatusCode {
        match self {
            FileError::NotFound(_) | FileError::Gone(_) => StatusCode::NOT_FOUND,
            FileError::NoId => StatusCode::BAD_GATEWAY,
            FileError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// `DELETE /files/{raw}` on `dep`; a file already gone counts as deleted.
async fn delete_copy(state: &AppState, dep: &Deployment, raw: &str) -> Result<(), GatewayError> {
    let uri = upstream_uri(dep, &format!("/files/{raw}"))?;
    let resp =
        upstream::send_with(&state.client, dep, Method::DELETE, &uri, &[], false, &[]).await?;
    if resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND {
        return Ok(());
    }
    Err(UpstreamError::from_response(resp).await.into())
}

fn json_out(status: StatusCode, v: &Value) -> Response<Body> {
    crate::error::json_response(
        status,
        Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
    )
}

fn store(state: &AppState) -> Result<&Arc<Store>, FileError> {
    state.store.as_ref().ok_or(FileError::NoStore)
}

/// The unified file `id` (opened as `o`), if `principal` may use it: its row.
async fn unified_row(
    state: &AppState,
    id: &str,
    o: &Owned,
    principal: &Principal,
) -> Result<FileRow, GatewayError> {
    super::check_owner(principal, o, super::Kind::File)?;
    let (row, _, _) = file_table::get(store(state)?, id)
        .await
        .map_err(FileError::Store)?
        .ok_or_else(|| FileError::NotFound(id.to_string()))?;
    Ok(row)
}

/// The deployments configured now holding the file, with its id on each.
fn holders(state: &AppState, row: &FileRow) -> Vec<(Arc<Deployment>, String)> {
    let table = state.models.load_full();
    row.mappings
        .iter()
        .filter_map(|(dep, raw)| {
            let d = table.deployments().find(|d| &d.id == dep)?.clone();
            Some((d, raw.clone()))
        })
        .collect()
}

/// The file object `raw` on `dep` as the provider says.
async fn read_object(state: &AppState, dep: &Deployment, raw: &str) -> Result<Value, GatewayError> {
    let uri = upstream_uri(dep, &format!("/files/{raw}"))?;
    let resp = upstream::send_with(&state.client, dep, Method::GET, &uri, &[], false, &[]).await?;
    let (_, bytes) = upstream::ok_body(resp).await?;
    Ok(serde_json::from_slice(&bytes).map_err(|e| UpstreamError::Body(e.to_string()))?)
}

/// `GET /v1/files` from the gateway's records: the caller's files (an admin's: everyone's),
/// `?model=` keeping those on that model group's deployments, `?purpose=` those of a purpose.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    hint: Option<&str>,
    query: Option<&str>,
) -> Result<Response<Body>, GatewayError> {
    let store = state
        .store
        .as_ref()
        .ok_or(super::owned::OwnedError::NoStore("file"))?;
    let (limit, newest_first) = super::owned::limit_and_order(query)?;
    let param = |k| crate::util::query::decoded_param(query, k);
    let deployments = match hint {
        Some(m) => {
            let table = state.models.load_full();
            Some(
                table
                    .resolve(m)?
                    .group
                    .iter()
                    .map(|d| d.id.clone())
                    .collect(),
            )
        }
        None => None,
    };
    let user = crate::responses::caller_user(principal);
    let team = crate::responses::caller_team(principal);
    let listing = Listing {
        owner: (!principal.is_admin()).then_some((user.as_ref(), team)),
        limit,
        newest_first,
        after: param("after"),
        purpose: param("purpose"),
        deployments,
    };
    let (rows, more) = file_table::list(store, &listing)
        .await
        .map_err(FileError::Store)?;
    let mut data = Vec::with_capacity(rows.len());
    for row in rows {
        let v = match row.object {
            Some(v) => v,
            // a batch's output file: read once, then kept
            None => {
                let read = match holders(state, &row).first() {
                    Some((dep, raw)) => read_object(state, dep, raw).await.ok(),
                    None => None,
                };
                match read {
                    Some(v) => {
                        if let Err(e) = file_table::set_object(store, &row.id, &v).await {
                            tracing::debug!(error = %e, "file object not kept");
                        }
                        v
                    }
                    None => json!({"object": "file", "purpose": "batch_output"}),
                }
            }
        };
        let mut v = v;
        if v.is_object() {
            v["id"] = Value::String(row.id);
        }
        data.push(v);
    }
    Ok(json_out(
        StatusCode::OK,
        &super::owned::list_body(data, more),
    ))
}

/// Record a batch's output and error files (ids as the client sees them, with the provider's on
/// `dep`) so the owner's file listings show them.
pub async fn record_outputs(
    state: &AppState,
    dep: &Deployment,
    files: &[(String, String)],
    owner: &Owned,
) {
    let Some(store) = &state.store else { return };
    for (id, raw) in files {
        let mappings = [(dep.id.clone(), raw.clone())];
        let who = (owner.user_id.as_str(), owner.team_id.as_str());
        if let Err(e) = file_table::insert(store, id, None, &mappings, who).await {
            tracing::warn!(deployment = %dep.id, error = %e, "output file not recorded for listings");
        }
    }
}

/// The client's id of the file `dep` holds as `raw` when the gateway recorded one (a unified
/// file's id for its copy).
pub async fn client_id(state: &AppState, dep: &Deployment, raw: &str) -> Option<String> {
    let store = state.store.as_ref()?;
    match file_table::of_provider_id(store, &dep.id, raw).await {
        Ok(id) => id,
        Err(e) => {
            tracing::debug!(error = %e, "file id not looked up");
            None
        }
    }
}
