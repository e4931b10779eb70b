//! Requests in a provider's own format sent to a deployment of that provider: forwarded as
//! received with only `model` replaced (no translation), usage read on the way back.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response};
use serde_json::Value;
use tokio::time::Instant;

use super::parse::{self, ParsedRequest, RequestError};
use super::watch::Watch;
use super::{RequestCtx, authorize, rewrite};
use crate::body::Body;
use crate::error::GatewayError;
use crate::providers::{ProviderSpec, anthropic};
use crate::router::Deployment;
use crate::state::AppState;
use crate::upstream::{self, Errors, Outbound, relay::RelayBody, sse};

/// Client headers passed through to Anthropic.
const ANTHROPIC_PASS: &[&str] = &["anthropic-beta"];

/// A native body: `model` replaced, nothing else touched.
static PLAIN: LazyLock<ProviderSpec> = LazyLock::new(|| ProviderSpec {
    name: String::new(),
    base_url: String::new(),
    api_key_env: None,
    api_base_env: None,
    api_key_required: false,
    api_base_required: false,
    auth_header: String::new(),
    auth_prefix: String::new(),
    headers: Default::default(),
    param_mappings: Default::default(),
    content_list_to_string: false,
    stream_options: false,
    chat_via_completions: false,
    videos_only: false,
    aliases: Vec::new(),
});

/// `parsed` with `model` set to the deployment's model.
pub fn with_model(parsed: &ParsedRequest, dep: &Deployment) -> Result<Vec<Bytes>, RequestError> {
    Ok(rewrite::rewrite(parsed, &PLAIN, &dep.upstream_model_json)?.parts)
}

/// The client headers named in `names`, to send upstream.
fn passed(headers: &HeaderMap, names: &[&'static str]) -> Vec<(HeaderName, HeaderValue)> {
    names
        .iter()
        .filter_map(|n| {
            let v = headers.get(*n)?;
            Some((HeaderName::from_static(n), v.clone()))
        })
        .collect()
}

/// The request `/v1/messages` sends to an Anthropic deployment at `uri`: the body with only
/// `model` replaced, the client's `anthropic-beta`.
pub fn anthropic_outbound<'d>(
    dep: &Deployment,
    uri: Cow<'d, http::Uri>,
    parsed: &ParsedRequest,
    client_headers: &HeaderMap,
) -> Result<Outbound<'d>, GatewayError> {
    Ok(Outbound {
        uri,
        body: with_model(parsed, dep)?,
        extra: passed(client_headers, ANTHROPIC_PASS),
        stream: parsed.stream,
    })
}

/// `/v1/messages` to an Anthropic deployment.
pub async fn anthropic_messages(
    state: &AppState,
    dep: &Arc<Deployment>,
    uri: &http::Uri,
    parsed: &ParsedRequest,
    client_headers: &HeaderMap,
    ctx: &mut RequestCtx,
) -> Result<Response<Body>, GatewayError> {
    let out = anthropic_outbound(dep, Cow::Borrowed(uri), parsed, client_headers)?;
    let created = crate::util::clock::unix(ctx.wall_start) as u64;
    let t0 = Instant::now();
    let (uri, body, extra) = (&*out.uri, &out.body, &out.extra);
    if out.stream {
        let (_, incoming) =
            super::watch::open_stream(state, dep, uri, body, extra, Errors::AsSent, ctx).await?;
        let watch = Watch::new(ctx.hand_off()).boxed();
        let cut = state.streams.signal();
        let relay = RelayBody::new(incoming, false, dep.stream_timeout, watch, cut)
            .tapping(Box::new(anthropic::stream::StreamTranslator::new(
                created, true,
            )))
            .anthropic_errors();
        return Ok(super::watch::sse_response(relay));
    }
    let (head, bytes) =
        upstream::call_whole(&state.client, dep, uri, body, extra, Errors::AsSent).await?;
    ctx.upstream_elapsed = t0.elapsed();
    let msg = serde_json::from_slice::<Value>(&bytes)
        .map_err(|e| upstream::invalid_json(head.status, &e))?;
    let u = serde_json::json!({"usage": anthropic::response::usage(&msg["usage"])});
    Ok(answered(ctx, head.status, bytes, &u, &msg["id"]))
}

/// A whole native answer `bytes` as it goes to the client: `usage` (an object with OpenAI
/// `usage`) and the answer's `id` noted for the spend row, the body kept when prompts are
/// stored.
fn answered(
    ctx: &mut RequestCtx,
    status: http::StatusCode,
    bytes: Bytes,
    usage: &Value,
    id: &Value,
) -> Response<Body> {
    ctx.completion.usage = sse::usage_of_body(usage.to_string().as_bytes());
    ctx.completion.response_id = id.as_str().map(str::to_string);
    if let Some((_, resp)) = ctx.completion.bodies.as_mut() {
        *resp = Some(bytes.clone());
    }
    crate::error::json_response(status, bytes)
}

/// `POST /v1/messages/count_tokens`: Anthropic deployments count natively; for others the
/// count is estimated (about 4 characters a token), as no tokenizer of theirs is at hand.
pub async fn count_tokens(
    state: &AppState,
    req: http::Request<crate::request_body::RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let (principal, parts, raw) = super::authenticated_body(state, req).await?;
    let parsed = parse::parse(raw, parse::Expect::Messages)?;
    let model = parsed
        .model
        .clone()
        .filter(|m| !m.is_empty())
        .ok_or(RequestError::Missing("model"))?;
    let table = state.models.load_full();
    authorize::grant(state, &principal, &model, None, &*table).await?;
    let dep = table.resolve(&model)?.pick().clone();
    if let Some(messages) = dep.anthropic_messages()
        && dep.mock_response.is_none()
        && let Ok(uri) = format!("{messages}/count_tokens").parse::<http::Uri>()
    {
        let out = anthropic_outbound(&dep, Cow::Owned(uri), &parsed, &parts.headers)?;
        let (head, bytes) = upstream::call_whole(
            &state.client,
            &dep,
            &out.uri,
            &out.body,
            &out.extra,
            Errors::AsSent,
        )
        .await?;
        return Ok(crate::error::json_response(head.status, bytes));
    }
    let v: Value = parsed.json()?;
    let n = anthropic::ingress::estimate_tokens(&v);
    Ok(crate::error::json_response(
        http::StatusCode::OK,
        Bytes::from(serde_json::json!({"input_tokens": n}).to_string()),
    ))
}

/// The request Gemini's own API sends to a Gemini or Vertex AI deployment: the body as
/// received (the model is in the URL), authenticated for its wire.
pub async fn gemini_outbound<'d>(
    state: &AppState,
    dep: &Deployment,
    g: &'d crate::router::wire::Gemini,
    parsed: &ParsedRequest,
) -> Result<Outbound<'d>, GatewayError> {
    let uri = if parsed.stream {
        &g.stream
    } else {
        &g.generate
    };
    let extra = super::translated::auth_headers(state, dep, uri, &parsed.raw).await?;
    Ok(Outbound {
        uri: Cow::Borrowed(uri),
        body: vec![parsed.raw.clone()],
        extra,
        stream: parsed.stream,
    })
}

/// `/v1beta/models/{model}:generateContent` (or streamed) to a Gemini or Vertex AI deployment:
/// the body as received (the model is in the URL).
pub async fn gemini_generate(
    state: &AppState,
    dep: &Arc<Deployment>,
    g: &crate::router::wire::Gemini,
    parsed: &ParsedRequest,
    ctx: &mut RequestCtx,
) -> Result<Response<Body>, GatewayError> {
    use crate::providers::gemini;
    let out = gemini_outbound(state, dep, g, parsed).await?;
    let (uri, body, extra) = (&*out.uri, &out.body, &out.extra);
    let created = crate::util::clock::unix(ctx.wall_start) as u64;
    let id = format!("chatcmpl-{}", ctx.call_id.simple());
    let model = dep.upstream_model.as_str();
    let provider = dep.provider.name();
    let t0 = Instant::now();
    if out.stream {
        let errors = Errors::Native(provider);
        let (_, incoming) =
            super::watch::open_stream(state, dep, uri, body, extra, errors, ctx).await?;
        let watch = Watch::new(ctx.hand_off()).boxed();
        let cut = state.streams.signal();
        let relay = RelayBody::new(incoming, false, dep.stream_timeout, watch, cut)
            .tapping(Box::new(gemini::stream::StreamTranslator::new(
                model, &id, created, true,
            )))
            .gemini_errors();
        return Ok(super::watch::sse_response(relay));
    }
    let errors = Errors::Native(provider);
    let (head, bytes) = upstream::call_whole(&state.client, dep, uri, body, extra, errors).await?;
    ctx.upstream_elapsed = t0.elapsed();
    let v = serde_json::from_slice::<Value>(&bytes)
        .map_err(|e| upstream::invalid_json(head.status, &e))?;
    let chat = gemini::response::to_chat(&v, model, &id, created);
    Ok(answered(ctx, head.status, bytes, &chat, &chat["id"]))
}

/// `/v1beta/models/{model}:countTokens`: Gemini and Vertex AI deployments count natively;
/// for others the count is estimated (about 4 characters a token).
pub async fn gemini_count_tokens(
    state: &AppState,
    model: &str,
    req: http::Request<crate::request_body::RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    use crate::providers::gemini;
    let (principal, _parts, raw) = super::authenticated_body(state, req).await?;
    let table = state.models.load_full();
    authorize::grant(state, &principal, model, None, &*table).await?;
    let dep = table.resolve(model)?.pick().clone();
    let v: Value =
        serde_json::from_slice(&raw).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    if let crate::router::wire::Wire::Gemini(g) = &dep.wire
        && dep.mock_response.is_none()
    {
        let extra = super::translated::auth_headers(state, &dep, &g.count_tokens, &raw).await?;
        let provider = dep.provider.name();
        let body = std::slice::from_ref(&raw);
        let errors = Errors::Native(provider);
        let (head, bytes) =
            upstream::call_whole(&state.client, &dep, &g.count_tokens, body, &extra, errors)
                .await?;
        return Ok(crate::error::json_response(head.status, bytes));
    }
    let chat = gemini::native::to_chat(&v, model, false)
        .map_err(|e| RequestError::BadValue(e.to_string()))?;
    let n = crate::pipeline::mock::estimate_tokens(chat.get("messages").unwrap_or(&Value::Null));
    Ok(crate::error::json_response(
        http::StatusCode::OK,
        Bytes::from(gemini::native::count_tokens_response(n).to_string()),
    ))
}
