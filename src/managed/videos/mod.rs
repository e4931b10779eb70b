//! `/v1/videos` (OpenAI's video API) over OpenAI and Azure (Sora), the Gemini API and Vertex AI
//! (Veo's long-running operations, polled into the same video object) and RunwayML (tasks). The
//! deployment is chosen like files' (`model` in the body, `x-tianji-model`, `?model=`); ids are
//! sealed to the owner and the deployment ([`super::ids`]); for Veo and RunwayML the id also
//! carries what the provider does not say again (seconds, size, creation time). A video costs
//! its seconds at the model's per-second price, booked when it is created (or remixed); its
//! content streams through as it comes. `GET /v1/videos` lists the caller's own videos from
//! `"TianjiLLM_ManagedObjectTable"`.

mod create;
mod family;

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::ids::{self, Kind};
use super::owned::{self, Page};
use super::{At, held, model_hint, pick, record, record_reserving};
use crate::auth::Principal;
use crate::body::Body;
use crate::error::GatewayError;
use crate::pipeline::parse::RequestError;
use crate::providers::video::{self, AskError, Kept, Status};
use crate::request_body::RequestBody;
use crate::responses::ids::Owned;
use crate::router::Deployment;
use crate::state::AppState;
use family::Family;

#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error(
        "Model {0} ({1}) does not generate videos: videos are served by OpenAI or Azure (Sora), Gemini or Vertex AI (Veo) and RunwayML deployments"
    )]
    NotVideo(String, String),
    #[error("{0}")]
    Ask(#[from] AskError),
    #[error("{0}")]
    Veo(#[from] video::veo::VeoError),
    #[error("Remixing a video is not supported by {0}; create a new video instead")]
    RemixUnsupported(String),
    #[error("The video is not ready to download: its status is {0}")]
    NotReady(&'static str),
    #[error("The provider's answer has no {0}")]
    NoId(&'static str),
    #[error("This video id does not carry the record the gateway needs to read it back")]
    BadId,
    #[error("The video request is not a valid form: {0}")]
    Form(String),
    #[error("The video request is larger than {0} MiB")]
    TooLarge(u64),
}

crate::error::feature_error!(VideoError, "video");

impl VideoError {
    pub fn status(&self) -> StatusCode {
        match self {
            VideoError::NoId(_) => StatusCode::BAD_GATEWAY,
            VideoError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Serve a `/v1/videos` path.
pub async fn handle(
    state: &AppState,
    at: At,
    id: Option<String>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let method = req.method().clone();
    match (at, id) {
        (At::Collection, _) if method == Method::POST => create::create(state, req).await,
        (At::Collection, _) => list(state, req).await,
        (At::Remix, Some(id)) => remix(state, &id, req).await,
        (At::Content, Some(id)) => content(state, &id, req).await,
        (At::Item, Some(id)) if method == Method::DELETE => delete(state, &id, req).await,
        (At::Item, Some(id)) => retrieve(state, &id, req).await,
        _ => Err(GatewayError::NotFound(req.uri().path().to_string())),
    }
}

/// A JSON answer.
fn json_out(v: &Value) -> Response<Body> {
    crate::error::json_response(
        StatusCode::OK,
        Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
    )
}

/// What it costs to make `seconds` of video on `dep`.
fn cost(dep: &Deployment, seconds: u32) -> Option<f64> {
    dep.price
        .as_ref()
        .map(|p| p.video_per_second * f64::from(seconds))
}

/// The owner a video id names (the caller's for ids the gateway did not issue).
fn owner_of(state: &AppState, id: &str, principal: &Principal, dep: &Deployment) -> Owned {
    ids::open(state.response_ids.sealer(), Kind::Video, id)
        .unwrap_or_else(|| crate::responses::owner("", principal, &dep.id))
}

/// An OpenAI-format video as the client sees it: `id` and `remixed_from_video_id` sealed for
/// `owner` (`id` is `shown` when the client already has it).
fn sealed_openai(state: &AppState, mut v: Value, owner: &Owned, shown: Option<&str>) -> Value {
    let sealer = state.response_ids.sealer();
    let seal = |raw: &str| {
        ids::seal_owned(
            sealer,
            Kind::Video,
            &Owned {
                raw: raw.to_string(),
                ..owner.clone()
            },
        )
    };
    if let Some(raw) = v.get("id").and_then(Value::as_str).map(str::to_string) {
        v["id"] = Value::String(shown.map_or_else(|| seal(&raw), str::to_string));
    }
    if let Some(raw) = v
        .get("remixed_from_video_id")
        .and_then(Value::as_str)
        .map(str::to_string)
    {
        v["remixed_from_video_id"] = Value::String(seal(&raw));
    }
    v
}

/// A video named by its id, opened for a call.
struct Opened {
    principal: Principal,
    raw: String,
    dep: Arc<Deployment>,
    family: Family,
    /// The call's SpendLogs record (admitted).
    rec: crate::pipeline::post::Completion,
}

/// The caller, the video `id` names (the owner's or an admin's only) and its deployment, and the
/// call at `at` (the request's method) admitted.
async fn open(
    state: &AppState,
    id: &str,
    req: &Request<RequestBody>,
    at: At,
) -> Result<Opened, GatewayError> {
    let principal = state.auth.caller_of(req).await?;
    let hint = model_hint(req.headers(), req.uri().query());
    let (raw, dep) = held(state, Kind::Video, id, &principal, hint.as_deref())?;
    let family = Family::of(&dep)?;
    let rec = record(state, &principal, Kind::Video, at, req.method(), &dep).await?;
    Ok(Opened {
        principal,
        raw,
        dep,
        family,
        rec,
    })
}

/// The video `raw` on `dep` as the client sees it now (`id` the client's id for it).
async fn current(
    state: &AppState,
    dep: &Deployment,
    family: &Family,
    raw: &str,
    id: &str,
    owner: &Owned,
) -> Result<Value, GatewayError> {
    match family {
        Family::OpenAi { base } => {
            let u = family::uri(&format!("{base}/videos/{raw}"))?;
            let v = family::call_json(state, dep, Method::GET, &u, None).await?;
            Ok(sealed_openai(state, v, owner, Some(id)))
        }
        _ => {
            let kept = Kept::decode(raw).ok_or(VideoError::BadId)?;
            let now = family::state_of(state, dep, family, &kept).await?;
            Ok(video::object(id, &dep.upstream_model, &kept, &now))
        }
    }
}

/// `GET /v1/videos/{id}`.
async fn retrieve(
    state: &AppState,
    id: &str,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let Opened {
        principal,
        raw,
        dep,
        family,
        mut rec,
    } = open(state, id, &req, At::Item).await?;
    let owner = owner_of(state, id, &principal, &dep);
    let v = current(state, &dep, &family, &raw, id, &owner).await?;
    rec.status = 200;
    owned::update(state, Kind::Video, &dep.id, &raw, &v).await;
    Ok(json_out(&v))
}

/// `GET /v1/videos/{id}/content` (`?variant=` passed on to OpenAI's API).
async fn content(
    state: &AppState,
    id: &str,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let Opened {
        raw,
        dep,
        family,
        mut rec,
        ..
    } = open(state, id, &req, At::Content).await?;
    let out = match &family {
        Family::OpenAi { base } => {
            let query = super::forwarded_query(req.uri().query())
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            let u = family::uri(&format!("{base}/videos/{raw}/content{query}"))?;
            let resp =
                crate::upstream::send_with(&state.client, &dep, Method::GET, &u, &[], false, &[])
                    .await?;
            if !resp.status().is_success() {
                return Err(family::failed(&dep, resp).await);
            }
            super::streamed(resp)
        }
        _ => {
            let kept = Kept::decode(&raw).ok_or(VideoError::BadId)?;
            let now = family::state_of(state, &dep, &family, &kept).await?;
            let source = match (now.status, now.source) {
                (Status::Completed, Some(s)) => s,
                (s, _) => return Err(VideoError::NotReady(s.as_str()).into()),
            };
            family::download(state, &dep, &family, source).await?
        }
    };
    rec.status = out.status().as_u16();
    Ok(out)
}

/// `DELETE /v1/videos/{id}`: OpenAI's API and RunwayML delete it upstream; Veo keeps nothing to
/// delete, so the gateway forgets it.
async fn delete(
    state: &AppState,
    id: &str,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let Opened {
        raw,
        dep,
        family,
        mut rec,
        ..
    } = open(state, id, &req, At::Item).await?;
    match &family {
        Family::OpenAi { base } => {
            let u = family::uri(&format!("{base}/videos/{raw}"))?;
            family::call_json(state, &dep, Method::DELETE, &u, None).await?;
        }
        Family::Runway => {
            let kept = Kept::decode(&raw).ok_or(VideoError::BadId)?;
            let u = family::runway_uri(&dep, &format!("/tasks/{}", kept.op))?;
            family::call_json(state, &dep, Method::DELETE, &u, None).await?;
        }
        Family::Gemini { .. } | Family::Vertex { .. } | Family::Mock => {}
    }
    rec.status = 200;
    owned::delete(state, Kind::Video, &dep.id, &raw).await;
    Ok(json_out(
        &json!({"id": id, "object": "video.deleted", "deleted": true}),
    ))
}

/// `POST /v1/videos/{id}/remix` (`{prompt}`): OpenAI's API only.
async fn remix(
    state: &AppState,
    id: &str,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let (principal, parts, raw_body) = crate::pipeline::authenticated_body(state, req).await?;
    let hint = model_hint(&parts.headers, parts.uri.query());
    let (raw, dep) = held(state, Kind::Video, id, &principal, hint.as_deref())?;
    let Family::OpenAi { base } = Family::of(&dep)? else {
        return Err(VideoError::RemixUnsupported(dep.provider.name().to_string()).into());
    };
    let body: Value =
        serde_json::from_slice(&raw_body).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    if !body.get("prompt").is_some_and(Value::is_string) {
        return Err(VideoError::Ask(AskError::NoPrompt).into());
    }
    let mut rec = record_reserving(
        state,
        &principal,
        Kind::Video,
        At::Remix,
        &Method::POST,
        &dep,
        cost(&dep, create::OPENAI_MAX_SECONDS).unwrap_or(0.0),
    )
    .await?;
    let u = family::uri(&format!("{base}/videos/{raw}/remix"))?;
    let v = family::call_json(state, &dep, Method::POST, &u, Some(&body)).await?;
    rec.status = 200;
    rec.fixed_cost = cost(&dep, video::seconds_of(&v, 4));
    let new_raw = v
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if new_raw.is_empty() {
        return Err(VideoError::NoId("video id").into());
    }
    let owner = crate::responses::owner("", &principal, &dep.id);
    let v = sealed_openai(state, v, &owner, None);
    let new_id = v
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    owned::insert(
        state,
        Kind::Video,
        (&new_id, &new_raw),
        &v,
        &dep,
        &principal,
    )
    .await;
    Ok(json_out(&v))
}

/// `GET /v1/videos`: the caller's own videos (an admin's: everyone's) from the gateway's
/// records, unfinished ones read again from their providers; an admin naming a model lists that
/// deployment's account (OpenAI's API).
async fn list(state: &AppState, req: Request<RequestBody>) -> Result<Response<Body>, GatewayError> {
    let principal = state.auth.caller_of(&req).await?;
    let query = req.uri().query();
    let hint = model_hint(req.headers(), query);
    if let Some(model) = hint.filter(|_| principal.is_admin()) {
        return list_account(state, &principal, &model, query).await;
    }
    let page = Page::of(state, Kind::Video, query)?;
    let (rows, more) = owned::list(state, Kind::Video, &principal, &page).await?;
    let table = state.models.load_full();
    let mut data = Vec::with_capacity(rows.len());
    for row in rows {
        let done = row
            .status
            .as_deref()
            .is_some_and(|s| Status::parse(s).is_final());
        let dep = table.deployments().find(|d| d.id == row.model_id).cloned();
        let fresh = match (&dep, done) {
            (Some(dep), false) => match Family::of(dep) {
                Ok(family) => {
                    let owner = owner_of(state, &row.id, &principal, dep);
                    current(state, dep, &family, &row.raw, &row.id, &owner)
                        .await
                        .ok()
                }
                Err(_) => None,
            },
            _ => None,
        };
        match (fresh, dep) {
            (Some(v), Some(dep)) => {
                owned::update(state, Kind::Video, &dep.id, &row.raw, &v).await;
                data.push(v);
            }
            _ => {
                let mut v = row.object;
                v["id"] = Value::String(row.id);
                data.push(v);
            }
        }
    }
    Ok(json_out(&owned::list_body(data, more)))
}

/// An admin's listing of the account behind `model` (OpenAI's API: the provider's own list,
/// every tenant's), ids sealed.
async fn list_account(
    state: &AppState,
    principal: &Principal,
    model: &str,
    query: Option<&str>,
) -> Result<Response<Body>, GatewayError> {
    let dep = pick(state, principal, model).await?;
    let Family::OpenAi { base } = Family::of(&dep)? else {
        return Err(super::ManagedError::ListNeedsAdmin("video").into());
    };
    let tail = super::forwarded_query(query)
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let mut rec = record(
        state,
        principal,
        Kind::Video,
        At::Collection,
        &Method::GET,
        &dep,
    )
    .await?;
    let u = family::uri(&format!("{base}/videos{tail}"))?;
    let mut v = family::call_json(state, &dep, Method::GET, &u, None).await?;
    rec.status = 200;
    let owner = crate::responses::owner("", principal, &dep.id);
    if let Some(items) = v.get_mut("data").and_then(Value::as_array_mut) {
        for item in items.iter_mut() {
            *item = sealed_openai(state, item.take(), &owner, None);
        }
    }
    for k in ["first_id", "last_id"] {
        if let Some(raw) = v.get(k).and_then(Value::as_str).map(str::to_string) {
            v[k] = Value::String(ids::seal_owned(
                state.response_ids.sealer(),
                Kind::Video,
                &Owned {
                    raw,
                    ..owner.clone()
                },
            ));
        }
    }
    Ok(json_out(&v))
}
