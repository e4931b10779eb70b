//! `POST /v1/files`: the form read as far as its `model` field and streamed to that model's
//! deployment, or held whole for `target_model_names` and sent to a deployment of each model at
//! once (the copies made deleted when one upload fails; the unified id recorded only when all
//! succeeded).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::future::join_all;
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::{FileError, delete_copy, json_out};
use crate::auth::Principal;
use crate::body::Body;
use crate::error::GatewayError;
use crate::managed::file_table;
use crate::managed::ids::{self, Kind, UNIFIED};
use crate::managed::{At, ManagedError, model_hint, pick, record, upstream_uri};
use crate::pipeline::multipart::{self, Scan};
use crate::pipeline::parse::RequestError;
use crate::request_body::RequestBody;
use crate::router::Deployment;
use crate::state::AppState;
use crate::upstream::{self, UpstreamError};

/// The form field naming the model groups to send a file to.
const TARGETS: &str = "target_model_names";
/// At most this much of an upload is read while looking for `model` before the rest is held
/// whole (a file sent to several deployments is held anyway).
const HEAD_LIMIT: usize = 1 << 20;

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
            let body = Body::chain((!head.is_empty()).then_some(head), rest);
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
    crate::managed::reseal_value(state, Kind::File, &mut v, &owner);
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
