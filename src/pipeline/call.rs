//! One attempt of an admitted request on a deployment: the client's format converted for it
//! (Anthropic Messages and Gemini clients: natively to their own providers, through chat to
//! the rest), then the mock answer if one is set, else the call: rerank, a native provider's
//! translation ([`super::translated`]), or an OpenAI-compatible provider
//! ([`super::compatible`]).

use std::sync::Arc;

use http::{HeaderMap, Response};
use http_body_util::BodyExt;
use serde_json::Value;

use super::multipart::Upload;
use super::parse::{self, Expect, ParsedRequest, RequestError};
use super::{RequestCtx, answer, compatible, mock, native, ocr, rerank, translated};
use crate::auth::Principal;
use crate::body::Body;
use crate::error::GatewayError;
use crate::providers::{anthropic, gemini};
use crate::router::Deployment;
use crate::router::wire::Wire;
use crate::state::AppState;

/// What one attempt sends.
pub struct Attempt<'a> {
    pub parsed: ParsedRequest,
    /// The client's format.
    pub expect: Expect,
    /// The model group of the deployment.
    pub model: &'a str,
    pub principal: &'a Principal,
    /// The client's headers.
    pub headers: &'a HeaderMap,
    pub upload: Option<Box<Upload>>,
}

/// Which call an attempt makes on a deployment.
pub enum Way<'d> {
    /// `/v1/messages` to an Anthropic deployment at this URL, the body as received.
    AnthropicMessages(&'d http::Uri),
    /// Gemini's own API to a Gemini or Vertex AI deployment, the body as received.
    GeminiGenerate(&'d crate::router::wire::Gemini),
    /// The mock answer (`mock_response` of the request or the deployment): nothing is sent.
    Mock,
    Rerank,
    Ocr,
    /// A chat request translated to a native provider's wire (or sent as a text completion).
    TranslatedChat,
    /// An embeddings request translated to a native provider's wire.
    TranslatedEmbedding,
    /// An OpenAI-compatible provider: the body rewritten, or an upload streamed.
    Compatible,
}

/// The way an attempt `a` goes on `dep`, the client's format converted for it first where it
/// must be (Anthropic Messages and Gemini requests to other providers become chat requests,
/// answered in the client's format: `outward`). The attempt and `/utils/transform_request`
/// both start here.
pub fn way<'d>(
    dep: &'d Deployment,
    a: &mut Attempt<'_>,
    outward: &mut Option<answer::Outward>,
) -> Result<Way<'d>, GatewayError> {
    let mocked = a.parsed.mock_response.is_some() || dep.mock_response.is_some();
    match a.expect {
        Expect::Messages => {
            if let (Some(uri), false) = (dep.anthropic_messages(), mocked) {
                return Ok(Way::AnthropicMessages(uri));
            }
            let model = a.model;
            as_chat(&mut a.parsed, |v| {
                let mut chat = anthropic::ingress::to_chat(v, model).map_err(bad)?;
                if matches!(dep.wire, Wire::OpenAi) {
                    anthropic::ingress::strip_cache_control(&mut chat);
                }
                Ok(chat)
            })?;
            a.expect = Expect::Chat;
            *outward = Some(answer::Outward::Anthropic);
        }
        Expect::Gemini { stream } => {
            if let (Wire::Gemini(g), false) = (&dep.wire, mocked) {
                return Ok(Way::GeminiGenerate(g));
            }
            let model = a.model;
            as_chat(&mut a.parsed, |v| {
                gemini::native::to_chat(v, model, stream).map_err(bad)
            })?;
            a.expect = Expect::Chat;
            *outward = Some(answer::Outward::Gemini);
        }
        _ => {}
    }
    if mocked {
        return Ok(Way::Mock);
    }
    if dep.spec.as_ref().is_some_and(|s| s.videos_only) {
        return Err(RequestError::BadValue(format!(
            "model {} is on {}, which generates videos only: use /v1/videos",
            a.model,
            dep.provider.name()
        ))
        .into());
    }
    Ok(match a.expect {
        Expect::Rerank => Way::Rerank,
        Expect::Ocr => Way::Ocr,
        Expect::Chat if translated::handles_chat(dep) => Way::TranslatedChat,
        Expect::Embedding if translated::handles(dep) => Way::TranslatedEmbedding,
        _ => Way::Compatible,
    })
}

/// Make the attempt on `dep`.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments in its future beside the copies its body moves them into"
)]
pub fn attempt(
    state: &AppState,
    dep: &Arc<Deployment>,
    mut a: Attempt<'_>,
    ctx: &mut RequestCtx,
) -> impl std::future::Future<Output = Result<Response<Body>, GatewayError>> {
    async move {
        match way(dep, &mut a, &mut ctx.outward)? {
            Way::AnthropicMessages(uri) => {
                native::anthropic_messages(state, dep, uri, &a.parsed, a.headers, ctx).await
            }
            Way::GeminiGenerate(g) => native::gemini_generate(state, dep, g, &a.parsed, ctx).await,
            Way::Mock => {
                let text = (a.parsed.mock_response.as_deref())
                    .or(dep.mock_response.as_deref())
                    .unwrap_or_default();
                let id = ctx.call_id.simple().to_string();
                let (mut resp, usage) = mock::respond(a.expect, &a.parsed, a.model, text, &id);
                ctx.completion.usage = Some(usage);
                if a.expect == Expect::Responses {
                    resp = seal_mocked(state, resp, a.principal, &dep.id).await;
                }
                Ok(resp)
            }
            Way::Rerank => rerank::rerank(state, dep, &a.parsed.json()?, ctx).await,
            Way::Ocr => ocr::call(state, dep, &a.parsed, a.model, a.headers, ctx).await,
            Way::TranslatedChat => translated::chat(state, dep, &a.parsed, ctx).await,
            Way::TranslatedEmbedding => {
                translated::embeddings(state, dep, a.parsed.json()?, ctx).await
            }
            Way::Compatible => compatible::call(state, dep, a, ctx).await,
        }
    }
}

fn bad(e: impl std::fmt::Display) -> GatewayError {
    RequestError::BadValue(e.to_string()).into()
}

/// Make `parsed` the chat request `to_chat` turns its body into (its mock answer kept).
fn as_chat(
    parsed: &mut ParsedRequest,
    to_chat: impl FnOnce(&Value) -> Result<Value, GatewayError>,
) -> Result<(), GatewayError> {
    let v: Value = parsed.json()?;
    let chat = to_chat(&v)?;
    let bytes = serde_json::to_vec(&chat).map_err(bad)?;
    let mock = parsed.mock_response.take();
    *parsed = parse::parse(bytes.into(), Expect::Chat)?;
    parsed.mock_response = mock;
    Ok(())
}

/// A mocked Responses API answer with its id sealed like a real one.
async fn seal_mocked(
    state: &AppState,
    resp: Response<Body>,
    principal: &Principal,
    model_id: &str,
) -> Response<Body> {
    let (head, body) = resp.into_parts();
    let Ok(c) = body.collect().await else {
        return Response::from_parts(head, Body::full(bytes::Bytes::new()));
    };
    let bytes = c.to_bytes();
    let bytes = state
        .response_ids
        .seal_body(&bytes, principal, model_id)
        .unwrap_or(bytes);
    Response::from_parts(head, Body::full(bytes))
}
