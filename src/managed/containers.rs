//! `/v1/containers` (OpenAI's code-interpreter containers) and their files, on the OpenAI or
//! Azure deployment named like files' (`model` in the body, `x-tianji-model`, `?model=`).
//! Container ids are sealed to the owner and the deployment, so only the owner (or an admin)
//! reads, changes or deletes a container and its files; `file_ids` given at creation may be ids
//! from `/v1/files` (unsealed for the provider); a container's files keep the provider's ids
//! (they are reached through the sealed container id). `GET /v1/containers` lists the caller's
//! own containers from `"TianjiLLM_ManagedObjectTable"`.

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use serde_json::Value;

use super::ids::{self, Kind};
use super::owned::{self, Page};
use super::{At, ManagedError, held, model_hint, pick, record};
use crate::auth::Principal;
use crate::body::Body;
use crate::error::GatewayError;
use crate::pipeline::parse::RequestError;
use crate::request_body::RequestBody;
use crate::responses::ids::Owned;
use crate::router::Deployment;
use crate::state::AppState;
use crate::upstream::{self, UpstreamError};

/// Serve a `/v1/containers` path.
pub async fn handle(
    state: &AppState,
    at: At,
    id: Option<String>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let method = req.method().clone();
    let Some(id) = id else {
        return if method == Method::POST {
            create(state, req).await
        } else {
            list(state, req).await
        };
    };
    let principal = state.auth.caller_of(&req).await?;
    let hint = model_hint(req.headers(), req.uri().query());
    let (raw, dep) = held(state, Kind::Container, &id, &principal, hint.as_deref())?;
    let file = second_id(req.uri().path());
    let query = super::forwarded_query(req.uri().query())
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let path = match (at, &file) {
        (At::Files, _) => format!("/containers/{raw}/files{query}"),
        (At::File, Some(f)) => format!("/containers/{raw}/files/{f}"),
        (At::FileContent, Some(f)) => format!("/containers/{raw}/files/{f}/content"),
        (At::Item, _) => format!("/containers/{raw}"),
        _ => return Err(GatewayError::NotFound(req.uri().path().to_string())),
    };
    let uri = super::upstream_uri(&dep, &path)?;
    let mut rec = record(state, &principal, Kind::Container, at, &method, &dep).await?;
    let resp = if at == At::Files && method == Method::POST {
        upload(state, &dep, &uri, req).await?
    } else {
        upstream::send_with(&state.client, &dep, method.clone(), &uri, &[], false, &[]).await?
    };
    rec.status = resp.status().as_u16();
    if !resp.status().is_success() {
        return Err(UpstreamError::from_response(resp).await.into());
    }
    if at == At::FileContent {
        return Ok(super::streamed(resp));
    }
    let (head, bytes) = upstream::ok_body(resp).await?;
    if at != At::Item {
        return Ok(crate::error::json_response(head.status, bytes));
    }
    // the container itself: its id as the client knows it
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(crate::error::json_response(head.status, bytes));
    };
    if v.get("id").is_some() {
        v["id"] = Value::String(id.clone());
    }
    if method == Method::DELETE {
        owned::delete(state, Kind::Container, &dep.id, &raw).await;
    } else {
        owned::update(state, Kind::Container, &dep.id, &raw, &v).await;
    }
    Ok(json_out(head.status, &v))
}

fn json_out(status: StatusCode, v: &Value) -> Response<Body> {
    crate::error::json_response(
        status,
        Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
    )
}

/// `{file_id}` of `/v1/containers/{id}/files/{file_id}[/content]`.
fn second_id(path: &str) -> Option<String> {
    let (_, tail) = path.split_once("/files/")?;
    let id = tail.split('/').next()?;
    (!id.is_empty()).then(|| id.to_string())
}

/// `POST /v1/containers/{id}/files`: a multipart upload streamed through, or JSON
/// `{file_id}` (an id from `/v1/files`, unsealed when the gateway issued it).
async fn upload(
    state: &AppState,
    dep: &Deployment,
    uri: &http::Uri,
    req: Request<RequestBody>,
) -> Result<Response<hyper::body::Incoming>, GatewayError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/json"));
    let multipart = content_type
        .to_str()
        .is_ok_and(|c| c.to_ascii_lowercase().starts_with("multipart/"));
    if multipart {
        let len = crate::pipeline::multipart::declared_length(req.headers());
        let body = Body::chain(None, Some(req.into_body()));
        return Ok(upstream::send_once(&state.client, dep, uri, body, content_type, len).await?);
    }
    let (principal, _, raw) = crate::pipeline::authenticated_body(state, req).await?;
    let mut v: Value =
        serde_json::from_slice(&raw).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    if let Some(f) = v.get("file_id").and_then(Value::as_str).map(str::to_string) {
        v["file_id"] = Value::String(file_id(state, &f, &principal, dep).await?);
    }
    let body =
        Bytes::from(serde_json::to_vec(&v).map_err(|e| RequestError::BadValue(e.to_string()))?);
    Ok(upstream::post(&state.client, dep, uri, &[body], false).await?)
}

/// The provider's id of a `/v1/files` id the caller may use on `dep` (a unified file's copy
/// there).
async fn file_id(
    state: &AppState,
    id: &str,
    principal: &Principal,
    dep: &Deployment,
) -> Result<String, GatewayError> {
    match ids::open(state.response_ids.sealer(), Kind::File, id) {
        Some(_) => super::files::raw_on(state, principal, id, dep).await,
        // a provider file id: its owner cannot be told, as for other objects
        None if principal.is_admin() => Ok(id.to_string()),
        None => Err(ManagedError::Unmanaged(Kind::File.noun()).into()),
    }
}

/// `POST /v1/containers`.
async fn create(
    state: &AppState,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let (principal, parts, raw) = crate::pipeline::authenticated_body(state, req).await?;
    let mut v: Value =
        serde_json::from_slice(&raw).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    let Some(fields) = v.as_object_mut() else {
        return Err(RequestError::NotObject.into());
    };
    let model = fields
        .remove("model")
        .and_then(|m| m.as_str().map(str::to_string))
        .or_else(|| model_hint(&parts.headers, parts.uri.query()));
    fields.remove("custom_llm_provider");
    if !fields.get("name").is_some_and(Value::is_string) {
        return Err(RequestError::Missing("name").into());
    }
    let dep = super::pick_or_env(state, &principal, model.as_deref(), "openai").await?;
    if let Some(files) = fields.get_mut("file_ids").and_then(Value::as_array_mut) {
        for f in files.iter_mut() {
            let Some(id) = f.as_str() else {
                return Err(RequestError::BadValue("file_ids must be strings".into()).into());
            };
            *f = Value::String(file_id(state, id, &principal, &dep).await?);
        }
    }
    let uri = super::upstream_uri(&dep, "/containers")?;
    let body =
        Bytes::from(serde_json::to_vec(&v).map_err(|e| RequestError::BadValue(e.to_string()))?);
    let mut rec = record(
        state,
        &principal,
        Kind::Container,
        At::Collection,
        &Method::POST,
        &dep,
    )
    .await?;
    let resp = upstream::post(&state.client, &dep, &uri, &[body], false).await?;
    rec.status = resp.status().as_u16();
    let (head, out) = upstream::ok_body(resp).await?;
    let mut c: Value =
        serde_json::from_slice(&out).map_err(|e| upstream::invalid_json(head.status, &e))?;
    let raw = c
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if raw.is_empty() {
        return Err(UpstreamError::Body("the provider's container has no id".into()).into());
    }
    let id = ids::seal(
        state.response_ids.sealer(),
        Kind::Container,
        &raw,
        &principal,
        &dep.id,
    );
    c["id"] = Value::String(id.clone());
    owned::insert(state, Kind::Container, (&id, &raw), &c, &dep, &principal).await;
    Ok(json_out(head.status, &c))
}

/// `GET /v1/containers`: the caller's own containers (an admin's: everyone's), read again from
/// their deployments (gone ones left out); an admin naming a model lists that account.
async fn list(state: &AppState, req: Request<RequestBody>) -> Result<Response<Body>, GatewayError> {
    let principal = state.auth.caller_of(&req).await?;
    let query = req.uri().query();
    if let Some(model) = model_hint(req.headers(), query).filter(|_| principal.is_admin()) {
        return list_account(state, &principal, &model, query).await;
    }
    let page = Page::of(state, Kind::Container, query)?;
    let (rows, more) = owned::list(state, Kind::Container, &principal, &page).await?;
    let table = state.models.load_full();
    let mut data = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(dep) = table.deployments().find(|d| d.id == row.model_id).cloned() else {
            continue;
        };
        let fresh = match super::upstream_uri(&dep, &format!("/containers/{}", row.raw)) {
            Ok(uri) => {
                match upstream::send_with(&state.client, &dep, Method::GET, &uri, &[], false, &[])
                    .await
                {
                    Ok(resp) if resp.status() == StatusCode::NOT_FOUND => {
                        owned::delete(state, Kind::Container, &dep.id, &row.raw).await;
                        continue;
                    }
                    Ok(resp) => upstream::ok_body(resp)
                        .await
                        .ok()
                        .and_then(|(_, b)| serde_json::from_slice::<Value>(&b).ok()),
                    Err(_) => None,
                }
            }
            Err(_) => None,
        };
        let mut v = fresh.unwrap_or(row.object);
        v["id"] = Value::String(row.id);
        data.push(v);
    }
    Ok(json_out(StatusCode::OK, &owned::list_body(data, more)))
}

/// An admin's listing of the account behind `model` (the provider's own list), ids sealed.
async fn list_account(
    state: &AppState,
    principal: &Principal,
    model: &str,
    query: Option<&str>,
) -> Result<Response<Body>, GatewayError> {
    let dep = pick(state, principal, model).await?;
    let tail = super::forwarded_query(query)
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let uri = super::upstream_uri(&dep, &format!("/containers{tail}"))?;
    let mut rec = record(
        state,
        principal,
        Kind::Container,
        At::Collection,
        &Method::GET,
        &dep,
    )
    .await?;
    let resp = upstream::send_with(&state.client, &dep, Method::GET, &uri, &[], false, &[]).await?;
    rec.status = resp.status().as_u16();
    let (head, out) = upstream::ok_body(resp).await?;
    let mut v: Value =
        serde_json::from_slice(&out).map_err(|e| upstream::invalid_json(head.status, &e))?;
    let owner = crate::responses::owner("", principal, &dep.id);
    let seal = |raw: &str| {
        ids::seal_owned(
            state.response_ids.sealer(),
            Kind::Container,
            &Owned {
                raw: raw.to_string(),
                ..owner.clone()
            },
        )
    };
    if let Some(items) = v.get_mut("data").and_then(Value::as_array_mut) {
        for item in items.iter_mut() {
            if let Some(raw) = item.get("id").and_then(Value::as_str).map(str::to_string) {
                item["id"] = Value::String(seal(&raw));
            }
        }
    }
    for k in ["first_id", "last_id"] {
        if let Some(raw) = v.get(k).and_then(Value::as_str).map(str::to_string) {
            v[k] = Value::String(seal(&raw));
        }
    }
    Ok(json_out(head.status, &v))
}
