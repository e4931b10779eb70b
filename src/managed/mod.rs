//! Objects a deployment holds for a caller: files (`/v1/files`), batches (`/v1/batches`),
//! fine-tuning jobs (`/v1/fine_tuning/jobs`) and Anthropic message batches
//! (`/v1/messages/batches`, [`message_batches`]). Creation picks the deployment from `model` (body,
//! `?model=` or `x-tianji-model`) or from a file id the gateway handed out; every id in an
//! answer is replaced by a sealed one ([`ids`]) naming the owner and the deployment, so later
//! calls go back to that deployment and only the owner (or an admin) can use them. Uploads and
//! file contents stream through without being held.

pub mod batch_results;
pub mod batches;
pub mod containers;
pub mod ids;
pub mod message_batches;
pub mod owned;
pub mod responses;
pub mod videos;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use serde_json::Value;

use crate::auth::Principal;
use crate::body::Body;
use crate::error::GatewayError;
use crate::pipeline::parse::RequestError;
use crate::request_body::RequestBody;
use crate::router::Deployment;
use crate::state::AppState;
use crate::upstream::{self, UpstreamError};
pub use ids::Kind;

/// Which path of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// `/v1/files`: create (POST), list (GET).
    Collection,
    /// `/v1/files/{id}`: get (GET), delete (DELETE, files only).
    Item,
    /// `/v1/files/{id}/content`
    Content,
    /// `/v1/messages/batches/{id}/results`
    Results,
    /// `.../{id}/cancel`
    Cancel,
    /// `/v1/fine_tuning/jobs/{id}/events`
    Events,
    /// `/v1/fine_tuning/jobs/{id}/checkpoints`
    Checkpoints,
    /// `/v1/videos/{id}/remix`
    Remix,
    /// `/v1/containers/{id}/files`: upload (POST), list (GET).
    Files,
    /// `/v1/containers/{id}/files/{file_id}`: get, delete.
    File,
    /// `/v1/containers/{id}/files/{file_id}/content`
    FileContent,
}

#[derive(Debug, thiserror::Error)]
pub enum ManagedError {
    #[error("Forbidden. This {0} belongs to another user or team.")]
    NotYours(&'static str),
    #[error(
        "Forbidden. This {0} id was not issued by this gateway, so it cannot tell who owns it; an admin can use it with ?model= or x-tianji-model."
    )]
    Unmanaged(&'static str),
    #[error(
        "Cannot tell which deployment to use: pass `model` in the body, as ?model= or in the x-tianji-model header"
    )]
    NoModel,
    #[error(
        "Listing a provider's {0}s needs an admin (the provider's list holds every tenant's); use the ids the gateway returned"
    )]
    ListNeedsAdmin(&'static str),
    #[error("The deployment of model {0} does not serve this API")]
    Unsupported(String),
    #[error("The deployment holding this {0} is no longer configured")]
    Gone(&'static str),
}

crate::error::feature_error!(ManagedError, "managed_object");

impl ManagedError {
    pub fn status(&self) -> StatusCode {
        match self {
            ManagedError::NoModel => StatusCode::BAD_REQUEST,
            ManagedError::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
            ManagedError::Gone(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::FORBIDDEN,
        }
    }
}

/// Serve a files, batches or fine-tuning path.
pub async fn handle(
    state: &AppState,
    kind: Kind,
    at: At,
    id: Option<String>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let method = req.method().clone();
    match kind {
        Kind::MessageBatch => return message_batches::handle(state, at, id, req).await,
        Kind::Video => return videos::handle(state, at, id, req).await,
        Kind::Container => return containers::handle(state, at, id, req).await,
        _ => {}
    }
    if at == At::Collection && method == Method::POST {
        return match kind {
            Kind::File => create_file(state, req).await,
            Kind::Batch => batches::create(state, req).await,
            Kind::FineTune => create_job(state, req).await,
            Kind::MessageBatch | Kind::Video | Kind::Container => {
                Err(GatewayError::NotFound(req.uri().path().to_string()))
            }
        };
    }
    let principal = state.auth.caller_of(&req).await?;
    let hint = model_hint(req.headers(), req.uri().query());
    let query = forwarded_query(req.uri().query());
    let collection = match kind {
        Kind::File => "/files",
        Kind::Batch => "/batches",
        Kind::FineTune => "/fine_tuning/jobs",
        Kind::MessageBatch => "/messages/batches",
        Kind::Video => "/videos",
        Kind::Container => "/containers",
    };
    let (dep, path) = match (at, id) {
        (At::Collection, _) => {
            if !principal.is_admin() {
                return Err(ManagedError::ListNeedsAdmin(kind.noun()).into());
            }
            let model = hint.ok_or(ManagedError::NoModel)?;
            (
                pick(state, &principal, &model).await?,
                collection.to_string(),
            )
        }
        (_, None) => return Err(GatewayError::NotFound(req.uri().path().to_string())),
        (at, Some(id)) => {
            let (raw, dep) = held(state, kind, &id, &principal, hint.as_deref())?;
            let tail = match at {
                At::Content => "/content",
                At::Cancel => "/cancel",
                At::Events => "/events",
                At::Checkpoints => "/checkpoints",
                At::Remix => "/remix",
                _ => "",
            };
            (dep, format!("{collection}/{raw}{tail}"))
        }
    };
    let path = match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let uri = upstream_uri(&dep, &path)?;
    let body = if method == Method::POST {
        vec![Bytes::from_static(b"{}")]
    } else {
        Vec::new()
    };
    let mut rec = record(state, &principal, kind, at, &method, &dep).await?;
    let resp = upstream::send_with(&state.client, &dep, method, &uri, &body, false, &[]).await?;
    rec.status = resp.status().as_u16();
    if !resp.status().is_success() {
        return Err(UpstreamError::from_response(resp).await.into());
    }
    if at == At::Content {
        // the file's bytes, as they come
        return Ok(streamed(resp));
    }
    let (head, bytes) = upstream::ok_body(resp).await?;
    let bytes = match at {
        At::Events | At::Checkpoints => bytes,
        _ => reseal_body(state, kind, &bytes, &principal, &dep.id),
    };
    Ok(crate::error::json_response(head.status, bytes))
}

/// An upstream answer passed on as it comes (a file's, a video's bytes), with its status, type
/// and length.
pub(crate) fn streamed(resp: Response<hyper::body::Incoming>) -> Response<Body> {
    let (head, incoming) = resp.into_parts();
    let mut out = Response::new(Body::Stream(incoming));
    *out.status_mut() = head.status;
    for h in [header::CONTENT_TYPE, header::CONTENT_LENGTH] {
        if let Some(v) = head.headers.get(&h) {
            out.headers_mut().insert(h, v.clone());
        }
    }
    out
}

/// SpendLogs `endpoint` of Anthropic message batch calls.
const MESSAGE_BATCHES: &str = "/v1/messages/batches";
/// SpendLogs `endpoint` of video calls.
const VIDEOS: &str = "/v1/videos";
/// SpendLogs `endpoint` of container calls.
const CONTAINERS: &str = "/v1/containers";

/// SpendLogs `call_type` and `endpoint` of a call (LiteLLM's names).
pub fn call_type(kind: Kind, at: At, method: &Method) -> (&'static str, &'static str) {
    let post = method == Method::POST;
    match (kind, at) {
        (Kind::File, At::Collection) if post => ("acreate_file", "/v1/files"),
        (Kind::File, At::Collection) => ("afile_list", "/v1/files"),
        (Kind::File, At::Content) => ("afile_content", "/v1/files"),
        (Kind::File, _) if method == Method::DELETE => ("afile_delete", "/v1/files"),
        (Kind::File, _) => ("afile_retrieve", "/v1/files"),
        (Kind::Batch, At::Collection) if post => ("acreate_batch", "/v1/batches"),
        (Kind::Batch, At::Collection) => ("alist_batches", "/v1/batches"),
        (Kind::Batch, At::Cancel) => ("acancel_batch", "/v1/batches"),
        (Kind::Batch, _) => ("aretrieve_batch", "/v1/batches"),
        (Kind::FineTune, At::Collection) if post => {
            ("acreate_fine_tuning_job", "/v1/fine_tuning/jobs")
        }
        (Kind::FineTune, At::Collection) => ("alist_fine_tuning_jobs", "/v1/fine_tuning/jobs"),
        (Kind::FineTune, At::Cancel) => ("acancel_fine_tuning_job", "/v1/fine_tuning/jobs"),
        (Kind::FineTune, _) => ("aretrieve_fine_tuning_job", "/v1/fine_tuning/jobs"),
        (Kind::MessageBatch, At::Collection) if post => ("acreate_batch", MESSAGE_BATCHES),
        (Kind::MessageBatch, At::Collection) => ("alist_batches", MESSAGE_BATCHES),
        (Kind::MessageBatch, At::Cancel) => ("acancel_batch", MESSAGE_BATCHES),
        (Kind::MessageBatch, At::Results) => ("aretrieve_batch_results", MESSAGE_BATCHES),
        (Kind::MessageBatch, _) if method == Method::DELETE => ("adelete_batch", MESSAGE_BATCHES),
        (Kind::MessageBatch, _) => ("aretrieve_batch", MESSAGE_BATCHES),
        (Kind::Video, At::Collection) if post => ("avideo_generation", VIDEOS),
        (Kind::Video, At::Collection) => ("avideo_list", VIDEOS),
        (Kind::Video, At::Content) => ("avideo_content", VIDEOS),
        (Kind::Video, At::Remix) => ("avideo_remix", VIDEOS),
        (Kind::Video, _) if method == Method::DELETE => ("avideo_delete", VIDEOS),
        (Kind::Video, _) => ("avideo_status", VIDEOS),
        (Kind::Container, At::Collection) if post => ("acreate_container", CONTAINERS),
        (Kind::Container, At::Collection) => ("alist_containers", CONTAINERS),
        (Kind::Container, At::Files) if post => ("aupload_container_file", CONTAINERS),
        (Kind::Container, At::Files) => ("alist_container_files", CONTAINERS),
        (Kind::Container, At::File) if method == Method::DELETE => {
            ("adelete_container_file", CONTAINERS)
        }
        (Kind::Container, At::File) => ("aretrieve_container_file", CONTAINERS),
        (Kind::Container, At::FileContent) => ("aretrieve_container_file_content", CONTAINERS),
        (Kind::Container, _) if method == Method::DELETE => ("adelete_container", CONTAINERS),
        (Kind::Container, _) => ("aretrieve_container", CONTAINERS),
    }
}

/// A SpendLogs record of this call on `dep` (written when dropped).
async fn record(
    state: &AppState,
    principal: &Principal,
    kind: Kind,
    at: At,
    method: &Method,
    dep: &Arc<Deployment>,
) -> Result<crate::pipeline::post::Completion, GatewayError> {
    record_reserving(state, principal, kind, at, method, dep, 0.0).await
}

/// [`record`], `worst` USD reserved on the caller's budgets at admission (a video's known
/// price).
async fn record_reserving(
    state: &AppState,
    principal: &Principal,
    kind: Kind,
    at: At,
    method: &Method,
    dep: &Arc<Deployment>,
    worst: f64,
) -> Result<crate::pipeline::post::Completion, GatewayError> {
    let (call_type, endpoint) = call_type(kind, at, method);
    let side = crate::pipeline::Side::on(dep, call_type, endpoint);
    crate::pipeline::side_call_reserving(state, principal, side, worst).await
}

/// `x-tianji-model`, else `?model=`.
pub fn model_hint(headers: &http::HeaderMap, query: Option<&str>) -> Option<String> {
    headers
        .get("x-tianji-model")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| crate::util::query::query_param(query, "model"))
        .filter(|m| !m.is_empty())
}

/// The client's query without the gateway's own `model`.
fn forwarded_query(query: Option<&str>) -> Option<String> {
    let q: Vec<&str> = query?
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("model="))
        .collect();
    (!q.is_empty()).then(|| q.join("&"))
}

fn upstream_uri(dep: &Deployment, path: &str) -> Result<Uri, ManagedError> {
    dep.uri(path)
        .ok_or_else(|| ManagedError::Unsupported(dep.model_name.clone()))
}

/// A deployment of `model` the caller may use.
pub async fn pick(
    state: &AppState,
    principal: &Principal,
    model: &str,
) -> Result<Arc<Deployment>, GatewayError> {
    let table = state.models.load_full();
    crate::auth::access::authorize(
        state.auth.directory(),
        principal,
        crate::auth::access::Ask {
            model,
            end_user: None,
            groups: &*table,
        },
    )
    .await?;
    Ok(table.resolve(model)?.pick().clone())
}

/// The id of a deployment made from the environment's OpenAI credentials.
const ENV_OPENAI: &str = "env:openai";

/// A deployment on OpenAI made from `OPENAI_API_KEY` (and `OPENAI_API_BASE`), as LiteLLM falls
/// back to for these APIs when no model group is named; `None` without a key.
fn env_openai(state: &AppState, model: &str) -> Option<Arc<Deployment>> {
    state.env.get("OPENAI_API_KEY").filter(|k| !k.is_empty())?;
    let entry: crate::config::ModelEntry = serde_json::from_value(serde_json::json!({
        "model_name": model,
        "tianji_params": {"model": format!("openai/{model}")},
    }))
    .ok()?;
    let mut d = Deployment::build(
        &entry,
        model,
        &format!("openai/{model}"),
        &state.catalog,
        &state.env,
        &crate::router::Defaults::default(),
    )
    .ok()?;
    d.id = ENV_OPENAI.to_string();
    Some(Arc::new(d))
}

/// [`pick`] for videos and containers: a model group when `model` names one; otherwise, when the
/// caller may use `model` (or `fallback`: any model) and `OPENAI_API_KEY` is set, OpenAI with the
/// environment's credentials.
pub async fn pick_or_env(
    state: &AppState,
    principal: &Principal,
    model: Option<&str>,
    fallback: &str,
) -> Result<Arc<Deployment>, GatewayError> {
    let table = state.models.load_full();
    if let Some(m) = model
        && table.resolve(m).is_ok()
    {
        return pick(state, principal, m).await;
    }
    let name = model.unwrap_or(fallback);
    let Some(dep) = env_openai(state, name) else {
        return match model {
            Some(m) => pick(state, principal, m).await,
            None => Err(ManagedError::NoModel.into()),
        };
    };
    crate::auth::access::authorize(
        state.auth.directory(),
        principal,
        crate::auth::access::Ask {
            model: name,
            end_user: None,
            groups: &*table,
        },
    )
    .await?;
    Ok(dep)
}

/// The provider's id behind `id` and the deployment holding it, if `principal` may use it.
/// Ids the gateway did not issue are for admins only, with `hint` naming the model.
pub fn held(
    state: &AppState,
    kind: Kind,
    id: &str,
    principal: &Principal,
    hint: Option<&str>,
) -> Result<(String, Arc<Deployment>), GatewayError> {
    let table = state.models.load_full();
    let sealer = state.response_ids.sealer();
    let Some(o) = ids::open(sealer, kind, id) else {
        if !principal.is_admin() {
            return Err(ManagedError::Unmanaged(kind.noun()).into());
        }
        let model = hint.ok_or(ManagedError::NoModel)?;
        return Ok((id.to_string(), table.resolve(model)?.pick().clone()));
    };
    if !principal.is_admin() {
        let user = principal.user_id().unwrap_or_default();
        let team = crate::responses::caller_team(principal);
        if (!o.user_id.is_empty() && o.user_id != user)
            || (!o.team_id.is_empty() && o.team_id != team)
        {
            return Err(ManagedError::NotYours(kind.noun()).into());
        }
    }
    let dep = table
        .deployments()
        .find(|d| d.id == o.model_id)
        .cloned()
        .or_else(|| {
            (o.model_id == ENV_OPENAI)
                .then(|| env_openai(state, "openai"))
                .flatten()
        })
        .ok_or(ManagedError::Gone(kind.noun()))?;
    Ok((o.raw, dep))
}

/// Replace the provider's ids in an answer (one object or a list) with sealed ones.
pub fn reseal_body(
    state: &AppState,
    kind: Kind,
    bytes: &Bytes,
    principal: &Principal,
    dep: &str,
) -> Bytes {
    let Ok(mut v) = serde_json::from_slice::<Value>(bytes) else {
        return bytes.clone();
    };
    let seal = |k: Kind, raw: &str| ids::seal(state.response_ids.sealer(), k, raw, principal, dep);
    let one = |o: &mut Value| {
        let fields: &[(&str, Kind)] = match kind {
            Kind::File => &[("id", Kind::File)],
            Kind::Batch => &[
                ("id", Kind::Batch),
                ("input_file_id", Kind::File),
                ("output_file_id", Kind::File),
                ("error_file_id", Kind::File),
            ],
            Kind::MessageBatch => &[("id", Kind::MessageBatch)],
            Kind::Video => &[("id", Kind::Video), ("remixed_from_video_id", Kind::Video)],
            Kind::Container => &[("id", Kind::Container)],
            Kind::FineTune => &[
                ("id", Kind::FineTune),
                ("training_file", Kind::File),
                ("validation_file", Kind::File),
            ],
        };
        for (f, k) in fields {
            if let Some(raw) = o.get(*f).and_then(Value::as_str).map(str::to_string) {
                o[*f] = Value::String(seal(*k, &raw));
            }
        }
        if let Some(files) = o.get_mut("result_files").and_then(Value::as_array_mut) {
            for f in files {
                if let Some(raw) = f.as_str().map(str::to_string) {
                    *f = Value::String(seal(Kind::File, &raw));
                }
            }
        }
    };
    let is_list = v.get("object").and_then(Value::as_str) == Some("list");
    match v.get_mut("data").and_then(Value::as_array_mut) {
        Some(items) if is_list => items.iter_mut().for_each(one),
        _ => one(&mut v),
    }
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .unwrap_or_else(|_| bytes.clone())
}

/// `POST /v1/files`: a multipart upload streamed to the deployment named by `?model=`,
/// `x-tianji-model` or a `model` field before the file (that field is not passed on).
async fn create_file(
    state: &AppState,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let principal = state.auth.caller_of(&req).await?;
    let (parts, body) = req.into_parts();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static(""));
    let boundary = crate::pipeline::multipart::boundary(content_type.to_str().unwrap_or(""))?;
    let declared = crate::pipeline::multipart::declared_length(&parts.headers);
    let hint = model_hint(&parts.headers, parts.uri.query());
    let (model, first, rest, len) = match hint {
        Some(m) => (m, Bytes::new(), Some(body), declared),
        None => {
            let up = crate::pipeline::multipart::read_to_model(body, &boundary, declared, 1 << 20)
                .await
                .map_err(|e| match e {
                    crate::pipeline::multipart::MultipartError::Missing(_)
                    | crate::pipeline::multipart::MultipartError::TooFar(_) => {
                        GatewayError::from(ManagedError::NoModel)
                    }
                    other => other.into(),
                })?;
            let (head, len) = up.without_model();
            (up.model.clone(), head, up.rest, len)
        }
    };
    let dep = pick(state, &principal, &model).await?;
    let uri = upstream_uri(&dep, "/files")?;
    let body = Body::Chain {
        head: (!first.is_empty()).then_some(first),
        rest,
    };
    let mut rec = record(
        state,
        &principal,
        Kind::File,
        At::Collection,
        &Method::POST,
        &dep,
    )
    .await?;
    let resp = upstream::send_once(&state.client, &dep, &uri, body, content_type, len).await?;
    rec.status = resp.status().as_u16();
    let (head, bytes) = upstream::ok_body(resp).await?;
    let bytes = reseal_body(state, Kind::File, &bytes, &principal, &dep.id);
    Ok(crate::error::json_response(head.status, bytes))
}

/// `POST /v1/fine_tuning/jobs`: `training_file` (and `validation_file`) may be ids the gateway
/// handed out, which pin the deployment; `model` naming a model group picks it otherwise (and
/// is replaced by the deployment's model).
async fn create_job(
    state: &AppState,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let (principal, parts, raw) = crate::pipeline::authenticated_body(state, req).await?;
    let mut v: Value =
        serde_json::from_slice(&raw).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    if !v.is_object() {
        return Err(RequestError::NotObject.into());
    }
    let training = v
        .get("training_file")
        .and_then(Value::as_str)
        .ok_or(RequestError::Missing("training_file"))?
        .to_string();
    let hint = model_hint(&parts.headers, parts.uri.query());
    let table = state.models.load_full();
    let body_model = v.get("model").and_then(Value::as_str).map(str::to_string);
    // a model group named in the body (or the hint) picks the deployment
    let group = body_model
        .clone()
        .filter(|m| table.resolve(m).is_ok())
        .or(hint.clone());
    let sealed = ids::open(state.response_ids.sealer(), Kind::File, &training).is_some();
    let (raw_training, dep) = if sealed || group.is_none() {
        held(state, Kind::File, &training, &principal, group.as_deref())?
    } else {
        let dep = pick(state, &principal, group.as_deref().unwrap_or_default()).await?;
        let (raw, _) = held(state, Kind::File, &training, &principal, group.as_deref())?;
        (raw, dep)
    };
    v["training_file"] = Value::String(raw_training);
    if let Some(val) = v
        .get("validation_file")
        .and_then(Value::as_str)
        .map(str::to_string)
    {
        let (raw, _) = held(state, Kind::File, &val, &principal, group.as_deref())?;
        v["validation_file"] = Value::String(raw);
    }
    if body_model.as_deref().is_some_and(|m| m == dep.model_name) {
        v["model"] = Value::String(dep.upstream_model.clone());
    }
    let uri = upstream_uri(&dep, "/fine_tuning/jobs")?;
    let bytes =
        Bytes::from(serde_json::to_vec(&v).map_err(|e| RequestError::BadValue(e.to_string()))?);
    let mut rec = record(
        state,
        &principal,
        Kind::FineTune,
        At::Collection,
        &Method::POST,
        &dep,
    )
    .await?;
    let resp = upstream::post(&state.client, &dep, &uri, &[bytes], false).await?;
    rec.status = resp.status().as_u16();
    let (head, out) = upstream::ok_body(resp).await?;
    let out = reseal_body(state, Kind::FineTune, &out, &principal, &dep.id);
    Ok(crate::error::json_response(head.status, out))
}
