//! A call to an OpenAI-compatible provider (its provider spec and endpoints known): the body
//! rewritten for the provider (`model`, parameter mappings), sent to the route's endpoint, and
//! the answer relayed: a stream chunk by chunk (watched by [`super::watch`]), audio as it
//! comes, anything else read whole (usage, images made, Responses ids sealed).

use std::borrow::Cow;
use std::sync::Arc;

use http::{HeaderValue, Response, Uri, header};
use tokio::time::Instant;

use super::call::Attempt;
use super::parse::{Expect, ParsedRequest};
use super::watch::Watch;
use super::{RequestCtx, rewrite, translated, upload};
use crate::body::Body;
use crate::error::GatewayError;
use crate::responses::EventSealer;
use crate::router::Deployment;
use crate::router::Endpoints;
use crate::state::AppState;
use crate::upstream::{self, Errors, Outbound, relay::RelayBody, sse};

/// The 501 of a request of a kind `dep`'s provider does not answer (images on Bedrock, ...).
pub fn not_served(dep: &Deployment, model: &str) -> GatewayError {
    GatewayError::NotImplemented(format!(
        "Provider '{}' (model={model}) does not serve this endpoint in Tianji",
        dep.provider.name()
    ))
}

/// The spec and endpoints of an OpenAI-compatible `dep` (else the 501 of `model`).
fn spec_of<'d>(
    dep: &'d Deployment,
    model: &str,
) -> Result<(&'d crate::providers::ProviderSpec, &'d Endpoints), GatewayError> {
    match (&dep.spec, &dep.endpoints) {
        (Some(spec), Some(ep)) => Ok((spec, ep)),
        _ => Err(not_served(dep, model)),
    }
}

/// The request a call to an OpenAI-compatible `dep` sends for a JSON request: the route's
/// endpoint and the body rewritten for the provider (`model`, parameter mappings; Mistral's
/// fields), and whether a stream's usage chunk is dropped before the client sees it.
pub fn outbound<'d>(
    dep: &'d Deployment,
    parsed: &ParsedRequest,
    expect: Expect,
    model: &str,
) -> Result<(Outbound<'d>, bool), GatewayError> {
    let (spec, endpoints) = spec_of(dep, model)?;
    let fixed;
    let parsed = if matches!(spec.name.as_str(), "mistral" | "codestral")
        && matches!(expect, Expect::Chat | Expect::Embedding)
    {
        fixed = translated::for_mistral(parsed, expect)?;
        &fixed
    } else {
        parsed
    };
    let uri = endpoint(endpoints, expect)?;
    let body = rewrite::rewrite(parsed, spec, &dep.upstream_model_json)?;
    let out = Outbound {
        uri,
        body: body.parts,
        extra: Vec::new(),
        stream: parsed.stream,
    };
    Ok((out, body.drop_usage_chunk))
}

/// Call `dep` for the attempt `a`.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments in its future beside the copies its body moves them into"
)]
pub fn call(
    state: &AppState,
    dep: &Arc<Deployment>,
    a: Attempt<'_>,
    ctx: &mut RequestCtx,
) -> impl std::future::Future<Output = Result<Response<Body>, GatewayError>> {
    async move {
        if let Some(up) = a.upload {
            let uri = endpoint(spec_of(dep, a.model)?.1, a.expect)?;
            // boxed: other calls do not carry (or copy) the upload's state
            return Box::pin(upload::forward(state, dep, &uri, up, a.headers, ctx)).await;
        }
        let (out, drop_usage_chunk) = outbound(dep, &a.parsed, a.expect, a.model)?;
        if out.stream {
            let sealer = (a.expect == Expect::Responses)
                .then(|| state.response_ids.event_sealer(a.principal, &dep.id))
                .flatten();
            return stream(state, dep, &out, drop_usage_chunk, sealer, ctx).await;
        }
        if a.expect == Expect::Speech {
            return audio(state, dep, &out, ctx).await;
        }
        let t0 = Instant::now();
        let (head, bytes) = upstream::call_whole(
            &state.client,
            dep,
            &out.uri,
            &out.body,
            &out.extra,
            Errors::AsSent,
        )
        .await?;
        ctx.upstream_elapsed = t0.elapsed();
        // every answer read whole here is JSON: one that is not is the provider's failure
        let (usage, id) = sse::usage_and_id_of_json_body(&bytes)
            .map_err(|e| upstream::invalid_json(head.status, &e))?;
        ctx.completion.usage = usage;
        ctx.completion.response_id = id;
        if a.expect == Expect::ImageGeneration {
            // priced per image (and by tokens, for models that report them)
            ctx.completion.extra.images_out = images_in(&bytes);
            ctx.completion.usage.get_or_insert_with(sse::Usage::default);
        }
        let bytes = match a.expect {
            Expect::Responses => {
                let sealed = (state.response_ids).seal_body(&bytes, a.principal, &dep.id);
                // the id the client holds is the sealed one
                if let Some(sealed) = &sealed {
                    ctx.completion.response_id = sse::usage_and_id_of_json_body(sealed)
                        .ok()
                        .and_then(|(_, id)| id);
                }
                sealed.unwrap_or(bytes)
            }
            _ => bytes,
        };
        if let Some((_, resp)) = ctx.completion.bodies.as_mut() {
            *resp = Some(bytes.clone());
        }
        let mut out = Response::new(Body::full(bytes));
        *out.status_mut() = head.status;
        copy_content_type(&head, &mut out, "application/json");
        Ok(out)
    }
}

/// The provider's URL for a route.
fn endpoint(endpoints: &Endpoints, expect: Expect) -> Result<Cow<'_, Uri>, GatewayError> {
    let path = match expect {
        Expect::Chat | Expect::Messages | Expect::Gemini { .. } => {
            return Ok(Cow::Borrowed(&endpoints.chat));
        }
        Expect::Completion => return Ok(Cow::Borrowed(&endpoints.completions)),
        Expect::Embedding => return Ok(Cow::Borrowed(&endpoints.embeddings)),
        Expect::Responses => return Ok(Cow::Borrowed(&endpoints.responses)),
        Expect::ImageGeneration => "/images/generations",
        Expect::Speech => "/audio/speech",
        Expect::Rerank => "/rerank",
        Expect::ImageEdit => "/images/edits",
        Expect::ImageVariation => "/images/variations",
        Expect::Transcription => "/audio/transcriptions",
        Expect::Translation => "/audio/translations",
        Expect::Moderation => "/moderations",
        Expect::Ocr => "/ocr",
    };
    let uri = (endpoints.at(path))
        .ok_or_else(|| GatewayError::Internal(format!("bad URL for {path}")))?;
    Ok(Cow::Owned(uri))
}

/// The head of an answer whose body is read as it comes (its wait timed for the record).
async fn head_of(
    state: &AppState,
    dep: &Deployment,
    out: &Outbound<'_>,
    within: upstream::HeadWithin,
    ctx: &mut RequestCtx,
) -> Result<(http::response::Parts, hyper::body::Incoming), GatewayError> {
    let t0 = Instant::now();
    let resp = upstream::call_head(
        &state.client,
        dep,
        within,
        &out.uri,
        &out.body,
        &out.extra,
        Errors::AsSent,
    )
    .await?;
    ctx.upstream_elapsed = t0.elapsed();
    Ok(resp.into_parts())
}

/// A stream: its head awaited, its chunks relayed to the client as they come.
async fn stream(
    state: &AppState,
    dep: &Arc<Deployment>,
    out: &Outbound<'_>,
    drop_usage_chunk: bool,
    sealer: Option<EventSealer>,
    ctx: &mut RequestCtx,
) -> Result<Response<Body>, GatewayError> {
    let (head, incoming) = super::watch::open_stream(
        state,
        dep,
        &out.uri,
        &out.body,
        &out.extra,
        Errors::AsSent,
        ctx,
    )
    .await?;
    let watch = Watch::new(ctx.hand_off())
        .sealing(sealer)
        .recording(ctx.cache_pending.take());
    let relay = RelayBody::new(
        incoming,
        drop_usage_chunk,
        dep.stream_timeout,
        watch.boxed(),
        state.streams.signal(),
    )
    .answering_as(ctx.outward.map(|o| o.stream(&dep.model_name)));
    let mut out = Response::new(Body::Relay(Box::new(relay)));
    copy_content_type(&head, &mut out, "text/event-stream");
    out.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(out)
}

/// Audio: the bytes go to the client as they come.
async fn audio(
    state: &AppState,
    dep: &Arc<Deployment>,
    out: &Outbound<'_>,
    ctx: &mut RequestCtx,
) -> Result<Response<Body>, GatewayError> {
    let (head, incoming) = head_of(state, dep, out, upstream::HeadWithin::Timeout, ctx).await?;
    ctx.completion.usage = Some(sse::Usage::default());
    let mut out = Response::new(Body::Stream(incoming));
    *out.status_mut() = head.status;
    copy_content_type(&head, &mut out, "audio/mpeg");
    Ok(out)
}

/// How many images an images API answer holds (`data`).
fn images_in(body: &[u8]) -> u32 {
    #[derive(serde::Deserialize)]
    struct Images {
        #[serde(default)]
        data: Vec<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Images>(body)
        .map_or(0, |i| u32::try_from(i.data.len()).unwrap_or(u32::MAX))
}

/// The provider's content type, or `default` when it sent none.
fn copy_content_type(
    head: &http::response::Parts,
    out: &mut Response<Body>,
    default: &'static str,
) {
    let ct = head
        .headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static(default));
    out.headers_mut().insert(header::CONTENT_TYPE, ct);
}
