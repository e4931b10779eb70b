//! Objects a deployment holds for a caller: files (`/v1/files`, [`files`]: one deployment, or
//! several at once under one unified id), batches (`/v1/batches`), fine-tuning jobs
//! (`/v1/fine_tuning/jobs`) and Anthropic message batches (`/v1/messages/batches`,
//! [`message_batches`]). Creation picks the deployment from `model` (body, `?model=` or
//! `x-tianji-model`) or from a file id the gateway handed out; every id in an answer is replaced
//! by a sealed one ([`ids`]) naming the owner and the deployment, so later calls go back to that
//! deployment and only the owner (or an admin) can use them. Files are recorded in
//! `"TianjiLLM_ManagedFileTable"` ([`file_table`]), batches and fine-tuning jobs in
//! `"TianjiLLM_ManagedObjectTable"` ([`owned`]), so lists show a caller its own objects from
//! any instance. Uploads to one deployment and file contents stream through without being held.

pub mod batch_results;
pub mod batches;
pub mod containers;
pub mod file_table;
pub mod files;
pub mod fine_tuning;
pub mod ids;
pub mod message_batches;
pub mod owned;
pub mod responses;
pub mod videos;

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Uri, header};
use serde_json::Value;

use crate::auth::Principal;
use crate::body::Body;
use crate::error::GatewayError;
use crate::request_body::RequestBody;
use crate::responses::ids::Owned;
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
    #[error(
        "This file id names a file sent to several deployments (target_model_names); this call takes a file held by one deployment"
    )]
    Unified,
}

crate::error::feature_error!(ManagedError, "managed_object");

impl ManagedError {
    pub fn status(&self) -> StatusCode {
        match self {
            ManagedError::NoModel | ManagedError::Unified => StatusCode::BAD_REQUEST,
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
            Kind::File => files::create(state, req).await,
            Kind::Batch => batches::create(state, req).await,
            Kind::FineTune => fine_tuning::create(state, req).await,
            Kind::MessageBatch | Kind::Video | Kind::Container => {
                Err(GatewayError::NotFound(req.uri().path().to_string()))
            }
        };
    }
    let principal = state.auth.caller_of(&req).await?;
    let hint = model_hint(req.headers(), req.uri().query());
    // lists come from the gateway's records, but for an admin naming a model (the provider's)
    if at == At::Collection && !(principal.is_admin() && hint.is_some()) {
        return list(state, kind, &principal, hint.as_deref(), req.uri().query()).await;
    }
    let opened = id
        .as_deref()
        .and_then(|i| ids::open(state.response_ids.sealer(), kind, i));
    if let (Some(o), Some(id)) = (&opened, &id)
        && kind == Kind::File
        && o.model_id == ids::UNIFIED
    {
        return files::unified(state, at, &method, id, o, &principal, hint.as_deref()).await;
    }
    let query = forwarded_query(req.uri().query());
    let collection = match kind {
        Kind::File => "/files",
        Kind::Batch => "/batches",
        Kind::FineTune => "/fine_tuning/jobs",
        Kind::MessageBatch => "/messages/batches",
        Kind::Video => "/videos",
        Kind::Container => "/containers",
    };
    let (dep, path, raw_id) = match (at, &id) {
        (At::Collection, _) => {
            let model = hint.clone().ok_or(ManagedError::NoModel)?;
            (
                pick(state, &principal, &model).await?,
                collection.to_string(),
                String::new(),
            )
        }
        (_, None) => return Err(GatewayError::NotFound(req.uri().path().to_string())),
        (at, Some(id)) => {
            let (raw, dep) = held(state, kind, id, &principal, hint.as_deref())?;
            let tail = match at {
                At::Content => "/content",
                At::Cancel => "/cancel",
                At::Events => "/events",
                At::Checkpoints => "/checkpoints",
                At::Remix => "/remix",
                _ => "",
            };
            let path = format!("{collection}/{raw}{tail}");
            (dep, path, raw)
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
    let resp =
        upstream::send_with(&state.client, &dep, method.clone(), &uri, &body, false, &[]).await?;
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
        At::Collection => reseal_body(state, kind, &bytes, &principal, &dep.id),
        _ => {
            // the object's ids sealed for its owner (the one the id names)
            let sealed = opened.is_some();
            let owner = match opened {
                Some(o) => Owned {
                    raw: String::new(),
                    ..o
                },
                None => crate::responses::owner("", &principal, &dep.id),
            };
            let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
                return Ok(crate::error::json_response(head.status, bytes));
            };
            let read = Read {
                kind,
                method: &method,
                dep: &dep,
                raw_id: &raw_id,
                id: id.as_deref().unwrap_or_default(),
                owner: &owner,
                sealed,
            };
            seen(state, &read, &mut v).await;
            Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
        }
    };
    Ok(crate::error::json_response(head.status, bytes))
}

/// An object read (or cancelled, or deleted) by its id.
struct Read<'a> {
    kind: Kind,
    method: &'a Method,
    dep: &'a Arc<Deployment>,
    /// The provider's id.
    raw_id: &'a str,
    /// The client's id.
    id: &'a str,
    /// Whom the id names (the caller for a provider's id).
    owner: &'a Owned,
    /// Whether the id is one the gateway handed out (records are kept for those only).
    sealed: bool,
}

/// The object `r` read, made what the client sees: ids sealed for its owner, a provider's file
/// id given back as the client's (a unified file's) id when the gateway recorded one; batches
/// and fine-tuning jobs kept as seen now, a finished batch's output files recorded for the
/// owner's file listings; a deleted file forgotten.
async fn seen(state: &AppState, r: &Read<'_>, v: &mut Value) {
    let (kind, dep) = (r.kind, r.dep);
    let raw_str = |v: &Value, f: &str| v.get(f).and_then(Value::as_str).map(str::to_string);
    let inputs: &[&str] = match kind {
        Kind::Batch => &["input_file_id"],
        Kind::FineTune => &["training_file", "validation_file"],
        _ => &[],
    };
    let raw_inputs: Vec<(&str, String)> = inputs
        .iter()
        .filter_map(|f| Some((*f, raw_str(v, f)?)))
        .collect();
    let raw_outputs: Vec<(&str, String)> = ["output_file_id", "error_file_id"]
        .into_iter()
        .filter(|_| kind == Kind::Batch)
        .filter_map(|f| Some((f, raw_str(v, f)?)))
        .collect();
    reseal_value(state, kind, v, r.owner);
    for (f, raw) in raw_inputs {
        if let Some(client) = files::client_id(state, dep, &raw).await {
            v[f] = Value::String(client);
        }
    }
    match kind {
        Kind::Batch | Kind::FineTune if r.sealed => {
            owned::update(state, kind, &dep.id, r.raw_id, v).await;
            let done = v
                .get("status")
                .and_then(Value::as_str)
                .is_some_and(|s| matches!(s, "completed" | "failed" | "expired" | "cancelled"));
            if done && !raw_outputs.is_empty() {
                let outs: Vec<(String, String)> = raw_outputs
                    .into_iter()
                    .filter_map(|(f, raw)| Some((raw_str(v, f)?, raw)))
                    .collect();
                files::record_outputs(state, dep, &outs, r.owner).await;
            }
        }
        Kind::File if r.method == Method::DELETE => {
            if let Some(store) = &state.store
                && let Err(e) = file_table::delete(store, r.id, &dep.id, r.raw_id).await
            {
                tracing::warn!(deployment = %dep.id, error = %e, "deleted file still recorded");
            }
        }
        _ => {}
    }
}

/// `GET /v1/files`, `/v1/batches`, `/v1/fine_tuning/jobs` from the gateway's records: the
/// caller's own (an admin's: everyone's), `?model=` keeping those of that model group.
async fn list(
    state: &AppState,
    kind: Kind,
    principal: &Principal,
    hint: Option<&str>,
    query: Option<&str>,
) -> Result<Response<Body>, GatewayError> {
    if kind == Kind::File {
        return files::list(state, principal, hint, query).await;
    }
    let mut page = owned::Page::of(state, kind, query)?;
    page.group = hint.map(str::to_string);
    let (rows, more) = owned::list(state, kind, principal, &page).await?;
    let data = rows
        .into_iter()
        .map(|r| {
            let mut v = r.object;
            if v.is_object() {
                v["id"] = Value::String(r.id);
            }
            v
        })
        .collect();
    Ok(crate::error::json_response(
        StatusCode::OK,
        Bytes::from(serde_json::to_vec(&owned::list_body(data, more)).unwrap_or_default()),
    ))
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
    check_owner(principal, &o, kind)?;
    if o.model_id == ids::UNIFIED {
        return Err(ManagedError::Unified.into());
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

/// Whether `principal` may use an object the id `o` names: its owner (user and team) or an
/// admin.
pub fn check_owner(principal: &Principal, o: &Owned, kind: Kind) -> Result<(), ManagedError> {
    if principal.is_admin() {
        return Ok(());
    }
    let user = crate::responses::caller_user(principal);
    let team = crate::responses::caller_team(principal);
    if (!o.user_id.is_empty() && o.user_id != user) || (!o.team_id.is_empty() && o.team_id != team)
    {
        return Err(ManagedError::NotYours(kind.noun()));
    }
    Ok(())
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
    reseal_value(
        state,
        kind,
        &mut v,
        &crate::responses::owner("", principal, dep),
    );
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .unwrap_or_else(|_| bytes.clone())
}

/// Replace the provider's ids in an answer (one object or a list) with ids sealed for `owner`
/// (its `model_id` the deployment holding them).
pub fn reseal_value(state: &AppState, kind: Kind, v: &mut Value, owner: &Owned) {
    let seal = |k: Kind, raw: &str| {
        ids::seal_owned(
            state.response_ids.sealer(),
            k,
            &Owned {
                raw: raw.to_string(),
                ..owner.clone()
            },
        )
    };
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
        _ => one(v),
    }
}

/// A provider's answer to a create (a batch, a fine-tuning job) as the client sees it: ids
/// sealed for the caller, the file ids it sent given back as it sent them (`inputs`: field,
/// client's id), and recorded for the caller's listings.
pub(crate) async fn created(
    state: &AppState,
    kind: Kind,
    dep: &Deployment,
    principal: &Principal,
    bytes: &Bytes,
    inputs: &[(&str, &str)],
) -> Bytes {
    let Ok(mut v) = serde_json::from_slice::<Value>(bytes) else {
        return bytes.clone();
    };
    let raw = v
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    reseal_value(
        state,
        kind,
        &mut v,
        &crate::responses::owner("", principal, &dep.id),
    );
    for (field, client) in inputs {
        if v.get(*field).is_some_and(Value::is_string) {
            v[*field] = Value::String(client.to_string());
        }
    }
    if let Some(id) = v
        .get("id")
        .and_then(Value::as_str)
        .filter(|_| !raw.is_empty())
    {
        owned::insert(state, kind, (id, &raw), &v, dep, principal).await;
    }
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .unwrap_or_else(|_| bytes.clone())
}
