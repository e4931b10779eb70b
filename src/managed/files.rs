//! `/v1/files` beyond one deployment. An upload names its deployment with `model` (as before:
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

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::future::join_all;
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::file_table::{self, FileRow, Listing};
use super::ids::{self, Kind, UNIFIED};
use super::{At, ManagedError, model_hint, pick, record, upstream_uri};
use crate::auth::Principal;
use crate::body::Body;
use crate::error::GatewayError;
use crate::pipeline::multipart::{self, Scan};
use crate::pipeline::parse::RequestError;
use crate::request_body::RequestBody;
use crate::responses::ids::Owned;
use crate::router::Deployment;
use crate::state::AppState;
use crate::store::{Store, StoreError};
use crate::upstream::{self, UpstreamError};

/// The form field naming the model groups to send a file to.
const TARGETS: &str = "target_model_names";
/// At most this much of an upload is read while looking for `model` before the rest is held
/// whole (a file sent to several deployments is held anyway).
const HEAD_LIMIT: usize = 1 << 20;

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

/// What an upload asks for, read from its form.
enum Form {
    /// One deployment of `model`: `head` (the bytes read, without the `model` part) then the
    /// rest as it comes; `len` the new total length when known.
    One {
        model: String,
        head: Bytes,
        rest: Option<RequestBody>,
        len: Option<u64>,
    },
    /// Every group in `targets`: the whole form without its `target_model_names` part.
    Many { targets: Vec<String>, form: Bytes },
}

/// `POST /v1/files`.
pub async fn create(
    state: &AppState,
    req: http::Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let principal = state.auth.caller_of(&req).await?;
    let (parts, body) = req.into_parts();
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static(""));
    let boundary = multipart::boundary(content_type.to_str().unwrap_or(""))?;
    let declared = multipart::declared_length(&parts.headers);
    let form = match model_hint(&parts.headers, parts.uri.query()) {
        Some(model) => Form::One {
            model,
            head: Bytes::new(),
            rest: Some(body),
            len: declared,
        },
        None => read_form(state, body, &boundary, declared).await?,
    };
    match form {
        Form::One {
            model,
            head,
            rest,
            len,
        } => {
            let body = Body::Chain {
                head: (!head.is_empty()).then_some(head),
                rest,
            };
            upload_one(state, &principal, &model, content_type, body, len).await
        }
        Form::Many { targets, form } => {
            upload_many(state, &principal, &targets, content_type, form, &boundary).await
        }
    }
}

/// Read the form as far as its `model` field (then the rest streams), or whole when it names
/// `target_model_names` (or `model` comes late).
async fn read_form(
    state: &AppState,
    mut body: RequestBody,
    boundary: &str,
    declared: Option<u64>,
) -> Result<Form, GatewayError> {
    let mut buf = BytesMut::new();
    let mut ended = false;
    // the start: `model` there lets the rest stream
    loop {
        let model = multipart::find_field(&buf, boundary, "model")?;
        if let Scan::Found { value, part } = model {
            return one(buf.freeze(), value, part, Some(body), declared);
        }
        let targets = multipart::find_field(&buf, boundary, TARGETS)?;
        match (&model, &targets) {
            (Scan::Absent, Scan::Absent) => return Err(ManagedError::NoModel.into()),
            (_, Scan::Found { .. }) => break,
            _ => {}
        }
        if ended {
            return Err(ManagedError::NoModel.into());
        }
        if buf.len() > HEAD_LIMIT {
            break;
        }
        ended = !read_more(&mut body, &mut buf).await?;
    }
    // the whole form
    let max = state.max_body_bytes;
    while !ended {
        if buf.len() > max {
            break;
        }
        ended = !read_more(&mut body, &mut buf).await?;
    }
    if buf.len() > max {
        return Err(RequestError::TooLarge {
            limit_mb: max as f64 / (1024.0 * 1024.0),
        }
        .into());
    }
    let form = buf.freeze();
    if let Scan::Found { value, part } = multipart::find_field(&form, boundary, "model")? {
        let len = form.len() as u64;
        return one(form, value, part, None, Some(len));
    }
    let Scan::Found { value, part } = multipart::find_field(&form, boundary, TARGETS)? else {
        return Err(ManagedError::NoModel.into());
    };
    let names = std::str::from_utf8(&form[value])
        .map_err(|_| RequestError::BadValue("target_model_names is not UTF-8".into()))?;
    let mut targets: Vec<String> = Vec::new();
    for n in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !targets.iter().any(|t| t == n) {
            targets.push(n.to_string());
        }
    }
    if targets.is_empty() {
        return Err(FileError::NoTargets.into());
    }
    let mut rest = BytesMut::with_capacity(form.len());
    rest.extend_from_slice(&form[..part.start]);
    rest.extend_from_slice(&form[part.end..]);
    Ok(Form::Many {
        targets,
        form: rest.freeze(),
    })
}

/// Append the body's next data to `buf`; `false` at its end.
async fn read_more(body: &mut RequestBody, buf: &mut BytesMut) -> Result<bool, GatewayError> {
    match body.frame().await {
        Some(Ok(f)) => {
            if let Ok(d) = f.into_data() {
                buf.extend_from_slice(&d);
            }
            Ok(true)
        }
        Some(Err(e)) => Err(RequestError::Read(e.to_string()).into()),
        None => Ok(false),
    }
}

/// [`Form::One`] from the bytes read, `model` at `value` in its `part`.
fn one(
    head: Bytes,
    value: std::ops::Range<usize>,
    part: std::ops::Range<usize>,
    rest: Option<RequestBody>,
    len: Option<u64>,
) -> Result<Form, GatewayError> {
    let model = std::str::from_utf8(&head[value])
        .map_err(|_| RequestError::BadValue("model is not UTF-8".into()))?
        .trim()
        .to_string();
    if model.is_empty() {
        return Err(ManagedError::NoModel.into());
    }
    let mut out = BytesMut::with_capacity(head.len());
    out.extend_from_slice(&head[..part.start]);
    out.extend_from_slice(&head[part.end..]);
    let cut = (part.end - part.start) as u64;
    Ok(Form::One {
        model,
        head: out.freeze(),
        rest,
        len: len.map(|l| l.saturating_sub(cut)),
    })
}

/// The upload streamed to one deployment of `model`, recorded for listings.
async fn upload_one(
    state: &AppState,
    principal: &Principal,
    model: &str,
    content_type: HeaderValue,
    body: Body,
    len: Option<u64>,
) -> Result<Response<Body>, GatewayError> {
    let dep = pick(state, principal, model).await?;
    let uri = upstream_uri(&dep, "/files")?;
    let mut rec = record(
        state,
        principal,
        Kind::File,
        At::Collection,
        &Method::POST,
        &dep,
    )
    .await?;
    let resp = upstream::send_once(&state.client, &dep, &uri, body, content_type, len).await?;
    rec.status = resp.status().as_u16();
    let (head, bytes) = upstream::ok_body(resp).await?;
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(crate::error::json_response(head.status, bytes));
    };
    let owner = crate::responses::owner("", principal, &dep.id);
    let raw = v.get("id").and_then(Value::as_str).map(str::to_string);
    super::reseal_value(state, Kind::File, &mut v, &owner);
    if let (Some(store), Some(raw), Some(id)) = (
        &state.store,
        raw,
        v.get("id").and_then(Value::as_str).map(str::to_string),
    ) {
        let mappings = [(dep.id.clone(), raw)];
        let who = (owner.user_id.as_str(), owner.team_id.as_str());
        if let Err(e) = file_table::insert(store, &id, Some(&v), &mappings, who).await {
            tracing::warn!(deployment = %dep.id, error = %e, "file not recorded for listings");
        }
    }
    Ok(json_out(head.status, &v))
}

/// The form sent to one deployment of each of `targets` at once: one unified id, or (any
/// upload failing) the copies made deleted and the first error.
async fn upload_many(
    state: &AppState,
    principal: &Principal,
    targets: &[String],
    content_type: HeaderValue,
    form: Bytes,
    boundary: &str,
) -> Result<Response<Body>, GatewayError> {
    let store = state.store.as_ref().ok_or(FileError::NoStore)?;
    let mut deps: Vec<Arc<Deployment>> = Vec::with_capacity(targets.len());
    for t in targets {
        let dep = pick(state, principal, t).await?;
        upstream_uri(&dep, "/files")?;
        if !deps.iter().any(|d| d.id == dep.id) {
            deps.push(dep);
        }
    }
    let mut recs = Vec::with_capacity(deps.len());
    for dep in &deps {
        recs.push(
            record(
                state,
                principal,
                Kind::File,
                At::Collection,
                &Method::POST,
                dep,
            )
            .await?,
        );
    }
    let sent = join_all(
        deps.iter()
            .map(|dep| send_copy(state, dep, content_type.clone(), form.clone())),
    )
    .await;
    let mut made: Vec<(Arc<Deployment>, String, Value)> = Vec::with_capacity(deps.len());
    let mut failed = None;
    for ((dep, rec), (status, result)) in deps.iter().zip(recs.iter_mut()).zip(sent) {
        rec.status = status;
        match result {
            Ok((raw, v)) => made.push((dep.clone(), raw, v)),
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    if let Some(e) = failed {
        remove_copies(state, &made).await;
        return Err(e);
    }
    let file_type = multipart::file_type(&form, boundary)
        .ok()
        .flatten()
        .unwrap_or_else(|| "application/octet-stream".to_string());
    let owner = crate::responses::owner(&ids::unified_raw(&file_type, targets), principal, UNIFIED);
    let id = ids::seal_owned(state.response_ids.sealer(), Kind::File, &owner);
    let mut object = made
        .first()
        .map(|(_, _, v)| v.clone())
        .unwrap_or_else(|| json!({}));
    object["id"] = Value::String(id.clone());
    let mappings: Vec<(String, String)> = made
        .iter()
        .map(|(dep, raw, _)| (dep.id.clone(), raw.clone()))
        .collect();
    let who = (owner.user_id.as_str(), owner.team_id.as_str());
    if let Err(e) = file_table::insert(store, &id, Some(&object), &mappings, who).await {
        remove_copies(state, &made).await;
        return Err(FileError::Store(e).into());
    }
    Ok(json_out(StatusCode::OK, &object))
}

/// One copy of the form sent to `dep`: the call's status and the provider's file id and object.
async fn send_copy(
    state: &AppState,
    dep: &Deployment,
    content_type: HeaderValue,
    form: Bytes,
) -> (u16, Result<(String, Value), GatewayError>) {
    let uri = match upstream_uri(dep, "/files") {
        Ok(u) => u,
        Err(e) => return (0, Err(e.into())),
    };
    let len = form.len() as u64;
    let resp = match upstream::send_once(
        &state.client,
        dep,
        &uri,
        Body::full(form),
        content_type,
        Some(len),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return (0, Err(e.into())),
    };
    let status = resp.status().as_u16();
    let got = async {
        let (_, bytes) = upstream::ok_body(resp).await?;
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|e| UpstreamError::Body(e.to_string()))?;
        let raw = v
            .get("id")
            .and_then(Value::as_str)
            .ok_or(FileError::NoId)?
            .to_string();
        Ok::<_, GatewayError>((raw, v))
    }
    .await;
    (status, got)
}

/// Delete the copies made of a file whose upload failed elsewhere (failures are logged: the
/// copy stays on that deployment).
async fn remove_copies(state: &AppState, made: &[(Arc<Deployment>, String, Value)]) {
    let gone = join_all(
        made.iter()
            .map(|(dep, raw, _)| delete_copy(state, dep, raw)),
    )
    .await;
    for ((dep, raw, _), r) in made.iter().zip(gone) {
        if let Err(e) = r {
            tracing::warn!(deployment = %dep.id, file = %raw, error = %e, "copy of a failed upload not deleted");
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
    super::check_owner(principal, o, Kind::File)?;
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
        let (raw, dep) = super::held(state, Kind::File, id, principal, model)?;
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
        let (raw, held_on) = super::held(state, Kind::File, id, principal, None)?;
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
                        return Ok(super::streamed(r));
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

/// The file object `raw` on `dep` as the provider says.
async fn read_object(state: &AppState, dep: &Deployment, raw: &str) -> Result<Value, GatewayError> {
    let uri = upstream_uri(dep, &format!("/files/{raw}"))?;
    let resp = upstream::send_with(&state.client, dep, Method::GET, &uri, &[], false, &[]).await?;
    let (_, bytes) = upstream::ok_body(resp).await?;
    Ok(serde_json::from_slice(&bytes).map_err(|e| UpstreamError::Body(e.to_string()))?)
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
    let user = principal.user_id().unwrap_or_default();
    let team = crate::responses::caller_team(principal);
    let listing = Listing {
        owner: (!principal.is_admin()).then_some((user, team)),
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
