//! `POST /v1/videos`: a JSON body or a multipart form (`input_reference` uploaded). OpenAI's API
//! gets the request as sent (a form streamed through, `model` swapped for the deployment's);
//! Veo and RunwayML get it translated (a form read whole, bounded, since they take the image
//! inline).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use http::{Method, Request, Response, header};
use serde_json::{Map, Value};

use super::family::{self, Family};
use super::{VideoError, cost, json_out, sealed_openai};
use crate::auth::Principal;
use crate::body::Body;
use crate::error::GatewayError;
use crate::managed::ids::{self, Kind};
use crate::managed::{At, ManagedError, model_hint, owned, pick, pick_or_env, record_reserving};
use crate::pipeline::multipart::{self, MultipartError};
use crate::pipeline::parse::RequestError;
use crate::providers::video::{self, ImageRef, Kept, State, Status, VideoAsk};
use crate::request_body::RequestBody;
use crate::router::Deployment;
use crate::state::AppState;
use crate::upstream;
use crate::util::BoxError;

/// The model of a video request naming none (OpenAI's default).
const SORA: &str = "sora-2";

/// Sora's clip length when the answer does not say.
const OPENAI_DEFAULT_SECONDS: u32 = 4;

/// Sora's longest clip (what is reserved when the length is not known before the call).
pub(super) const OPENAI_MAX_SECONDS: u32 = 12;

/// The largest form read whole (for Veo and RunwayML, which take the image inline).
const MAX_FORM_MIB: u64 = 32;

pub(super) async fn create(
    state: &AppState,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if content_type.to_ascii_lowercase().starts_with("multipart/") {
        return create_form(state, req, &content_type).await;
    }
    let (principal, parts, raw) = crate::pipeline::authenticated_body(state, req).await?;
    let v: Value =
        serde_json::from_slice(&raw).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    let Value::Object(mut fields) = v else {
        return Err(RequestError::NotObject.into());
    };
    let model = fields
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| model_hint(&parts.headers, parts.uri.query()));
    if fields
        .get("prompt")
        .and_then(Value::as_str)
        .is_none_or(|p| p.trim().is_empty())
    {
        return Err(VideoError::Ask(video::AskError::NoPrompt).into());
    }
    let dep = pick_or_env(state, &principal, model.as_deref(), SORA).await?;
    match Family::of(&dep)? {
        Family::OpenAi { base } => {
            fields.insert("model".into(), Value::String(dep.upstream_model.clone()));
            let body = Bytes::from(
                serde_json::to_vec(&fields).map_err(|e| RequestError::BadValue(e.to_string()))?,
            );
            let asked = fields.get("seconds").map_or(OPENAI_DEFAULT_SECONDS, |v| {
                video::seconds_of(&serde_json::json!({"seconds": v}), OPENAI_MAX_SECONDS)
            });
            let mut rec = record_reserving(
                state,
                &principal,
                Kind::Video,
                At::Collection,
                &Method::POST,
                &dep,
                cost(&dep, asked).unwrap_or(0.0),
            )
            .await?;
            let u = family::uri(&format!("{base}/videos"))?;
            let resp =
                upstream::send_with(&state.client, &dep, Method::POST, &u, &[body], false, &[])
                    .await?;
            if !resp.status().is_success() {
                return Err(family::failed(&dep, resp).await);
            }
            let (_, out) = upstream::ok_body(resp).await?;
            rec.status = 200;
            made_openai(state, &principal, &dep, &out, &mut rec).await
        }
        family => {
            let ask = VideoAsk::from_fields(fields).map_err(VideoError::from)?;
            start(state, &principal, &dep, &family, ask).await
        }
    }
}

/// A video OpenAI's API made: sealed, recorded, costed.
async fn made_openai(
    state: &AppState,
    principal: &Principal,
    dep: &Arc<Deployment>,
    answer: &[u8],
    rec: &mut crate::pipeline::post::Completion,
) -> Result<Response<Body>, GatewayError> {
    let v: Value = serde_json::from_slice(answer)
        .map_err(|e| upstream::invalid_json(http::StatusCode::OK, &e))?;
    let raw = v
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if raw.is_empty() {
        return Err(VideoError::NoId("video id").into());
    }
    rec.fixed_cost = cost(dep, video::seconds_of(&v, OPENAI_DEFAULT_SECONDS));
    let owner = crate::responses::owner("", principal, &dep.id);
    let v = sealed_openai(state, v, &owner, None);
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    owned::insert(state, Kind::Video, (&id, &raw), &v, dep, principal).await;
    Ok(json_out(&v))
}

/// Start a Veo operation or a RunwayML task for `ask` (a mock deployment's video is made at
/// once).
async fn start(
    state: &AppState,
    principal: &Principal,
    dep: &Arc<Deployment>,
    family: &Family,
    ask: VideoAsk,
) -> Result<Response<Body>, GatewayError> {
    let seconds = ask.seconds.unwrap_or(match family {
        Family::Runway => video::runway::DEFAULT_SECONDS,
        Family::Gemini { .. } | Family::Vertex { .. } => video::veo::DEFAULT_SECONDS,
        Family::OpenAi { .. } | Family::Mock => OPENAI_DEFAULT_SECONDS,
    });
    let call = match family {
        Family::Gemini { model_url, .. } | Family::Vertex { model_url } => Some((
            family::uri(&format!("{model_url}:predictLongRunning"))?,
            video::veo::create_body(&ask).map_err(VideoError::from)?,
        )),
        Family::Runway => {
            let (path, body) = video::runway::create(&dep.upstream_model, &ask);
            Some((family::runway_uri(dep, path)?, body))
        }
        Family::Mock => None,
        Family::OpenAi { .. } => return Err(VideoError::BadId.into()),
    };
    let mut rec = record_reserving(
        state,
        principal,
        Kind::Video,
        At::Collection,
        &Method::POST,
        dep,
        cost(dep, seconds).unwrap_or(0.0),
    )
    .await?;
    let (op, now) = match call {
        Some((uri, body)) => {
            let answer = family::call_json(state, dep, Method::POST, &uri, Some(&body)).await?;
            let op = match family {
                Family::Runway => video::runway::task_id(&answer),
                _ => video::veo::operation_name(&answer),
            }
            .ok_or(VideoError::NoId("operation or task id"))?
            .to_string();
            let now = match family {
                Family::Runway => video::runway::state(&answer),
                _ => State {
                    status: Status::Queued,
                    progress: 0,
                    completed_at: None,
                    error: None,
                    source: None,
                },
            };
            (op, now)
        }
        None => (
            format!("mock-{}", uuid::Uuid::now_v7().simple()),
            family::mock_state(),
        ),
    };
    rec.status = 200;
    rec.fixed_cost = cost(dep, seconds);
    let kept = Kept {
        op,
        seconds,
        size: ask.size.clone(),
        created_at: crate::util::clock::now_whole_secs(),
    };
    let raw = kept.encode();
    let id = ids::seal(
        state.response_ids.sealer(),
        Kind::Video,
        &raw,
        principal,
        &dep.id,
    );
    let v = video::object(&id, &dep.upstream_model, &kept, &now);
    owned::insert(state, Kind::Video, (&id, &raw), &v, dep, principal).await;
    Ok(json_out(&v))
}

/// A multipart create: `model` read first (or from the hint), then the form streamed to OpenAI's
/// API or read whole for the others.
async fn create_form(
    state: &AppState,
    req: Request<RequestBody>,
    content_type: &str,
) -> Result<Response<Body>, GatewayError> {
    let principal = state.auth.caller_of(&req).await?;
    let (parts, body) = req.into_parts();
    let boundary = multipart::boundary(content_type)?;
    let declared = multipart::declared_length(&parts.headers);
    let (model, head, rest, len) = match model_hint(&parts.headers, parts.uri.query()) {
        Some(m) => (m, None, Some(body), declared),
        None => {
            let up = multipart::read_to_model(body, &boundary, declared, 1 << 20)
                .await
                .map_err(|e| match e {
                    MultipartError::Missing(_) | MultipartError::TooFar(_) => {
                        GatewayError::from(ManagedError::NoModel)
                    }
                    other => other.into(),
                })?;
            let model = up.model.clone();
            let dep = pick(state, &principal, &model).await?;
            if let Family::OpenAi { base } = Family::of(&dep)? {
                let (head, len) = up.with_model(&dep.upstream_model);
                return send_form(
                    state,
                    &principal,
                    &dep,
                    &base,
                    head,
                    up.rest,
                    content_type,
                    len,
                )
                .await;
            }
            (model, Some(up.head.clone()), up.rest, None)
        }
    };
    let dep = pick(state, &principal, &model).await?;
    let family = Family::of(&dep)?;
    if let Family::OpenAi { base } = &family {
        // the model came from the hint: the form is sent with the deployment's model first
        let part = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n{}\r\n",
            dep.upstream_model
        );
        let len = len.map(|l| l + part.len() as u64);
        return send_form(
            state,
            &principal,
            &dep,
            base,
            Bytes::from(part),
            rest,
            content_type,
            len,
        )
        .await;
    }
    let ask = read_form(head, rest, &boundary).await?;
    start(state, &principal, &dep, &family, ask).await
}

/// Stream a form to OpenAI's `/videos`.
#[allow(clippy::too_many_arguments)]
async fn send_form(
    state: &AppState,
    principal: &Principal,
    dep: &Arc<Deployment>,
    base: &str,
    head: Bytes,
    rest: Option<RequestBody>,
    content_type: &str,
    len: Option<u64>,
) -> Result<Response<Body>, GatewayError> {
    let u = family::uri(&format!("{base}/videos"))?;
    let ct = http::HeaderValue::from_str(content_type).map_err(|_| MultipartError::NotMultipart)?;
    // the form's seconds are not read (it streams): the longest clip is reserved
    let mut rec = record_reserving(
        state,
        principal,
        Kind::Video,
        At::Collection,
        &Method::POST,
        dep,
        cost(dep, OPENAI_MAX_SECONDS).unwrap_or(0.0),
    )
    .await?;
    let body = Body::chain((!head.is_empty()).then_some(head), rest);
    let resp = upstream::send_once(&state.client, dep, &u, body, ct, len).await?;
    if !resp.status().is_success() {
        return Err(family::failed(dep, resp).await);
    }
    let (_, out) = upstream::ok_body(resp).await?;
    rec.status = 200;
    made_openai(state, principal, dep, &out, &mut rec).await
}

/// A whole form (at most [`MAX_FORM_MIB`]): text fields as strings, `input_reference` (or
/// `image`) as the reference image.
async fn read_form(
    head: Option<Bytes>,
    rest: Option<RequestBody>,
    boundary: &str,
) -> Result<VideoAsk, GatewayError> {
    let first = stream::iter(head.map(Ok::<Bytes, BoxError>));
    let rest = match rest {
        Some(r) => http_body_util::BodyExt::into_data_stream(r)
            .map_err(BoxError::from)
            .boxed(),
        None => stream::empty().boxed(),
    };
    let mut form = multer::Multipart::new(first.chain(rest), boundary.to_string());
    let bad = |e: multer::Error| VideoError::Form(e.to_string());
    let max = MAX_FORM_MIB << 20;
    let mut total = 0u64;
    let mut fields = Map::new();
    let mut image = None;
    while let Some(mut field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_string();
        let is_file = field.file_name().is_some();
        let mime = field
            .content_type()
            .map(|m| m.to_string())
            .or_else(|| field.file_name().and_then(mime_of_name).map(str::to_string));
        let mut buf = Vec::new();
        while let Some(piece) = field.chunk().await.map_err(bad)? {
            total += piece.len() as u64;
            if total > max {
                return Err(VideoError::TooLarge(MAX_FORM_MIB).into());
            }
            buf.extend_from_slice(&piece);
        }
        if is_file && matches!(name.as_str(), "input_reference" | "image") {
            image = Some(ImageRef::Inline {
                mime: mime.unwrap_or_else(|| "image/png".into()),
                data: Bytes::from(buf),
            });
            continue;
        }
        let text = String::from_utf8(buf)
            .map_err(|_| VideoError::Form(format!("field `{name}` is not UTF-8 text")))?;
        let value = match name.as_str() {
            // JSON objects sent as form fields (provider parameters)
            "parameters" | "metadata" => serde_json::from_str(&text).unwrap_or(Value::String(text)),
            _ => Value::String(text),
        };
        fields.insert(name, value);
    }
    let mut ask = VideoAsk::from_fields(fields).map_err(VideoError::from)?;
    if image.is_some() {
        ask.image = image;
    }
    Ok(ask)
}

/// An image's type from its file name.
fn mime_of_name(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        _ => return None,
    })
}
