//! Calls to native providers (from an attempt, call.rs): a chat request becomes the provider's
//! request (Anthropic Messages, Gemini, Bedrock Converse, Cohere v2, watsonx.ai, SageMaker), and
//! the answer comes back as a chat completion (streams chunk by chunk).

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, Uri, header};
use serde_json::Value;
use tokio::time::Instant;

use super::RequestCtx;
use super::parse::{ParsedRequest, RequestError};
use super::watch::Watch;
use crate::body::Body;
use crate::error::GatewayError;
use crate::providers::bedrock::sigv4::Credentials;
use crate::providers::{
    StreamTranslate, anthropic, bedrock, cohere, embedding_list, gemini, openai_like, sagemaker,
    text_completion, watsonx,
};
use crate::router::Deployment;
use crate::router::wire::Wire;
use crate::state::AppState;
use crate::upstream::{self, Errors, Outbound, UpstreamError, relay::RelayBody, sse};

/// Whether `dep` is served by this stage.
pub fn handles(dep: &Deployment) -> bool {
    matches!(
        dep.wire,
        Wire::Anthropic { .. }
            | Wire::Gemini(_)
            | Wire::Bedrock(_)
            | Wire::Cohere { .. }
            | Wire::WatsonX(_)
            | Wire::SageMaker(_)
    )
}

/// Whether chat requests to `dep` are served by this stage: native providers, and text
/// completion models (chat sent as a text completion).
pub fn handles_chat(dep: &Deployment) -> bool {
    handles(dep) || completions_of(dep).is_some()
}

/// The `/completions` URL of a deployment whose chat requests go there as text completions.
fn completions_of(dep: &Deployment) -> Option<&Uri> {
    match (&dep.spec, &dep.endpoints) {
        (Some(spec), Some(ep)) if spec.chat_via_completions => Some(&ep.completions),
        _ => None,
    }
}

fn bad(e: impl std::fmt::Display) -> GatewayError {
    RequestError::BadValue(e.to_string()).into()
}

/// Headers that authenticate a request whose credential is not static: a Vertex AI token, a
/// watsonx.ai IAM token, a SigV4 signature over the body.
pub async fn auth_headers(
    state: &AppState,
    dep: &Deployment,
    uri: &Uri,
    body: &[u8],
) -> Result<Vec<(HeaderName, HeaderValue)>, GatewayError> {
    match &dep.wire {
        Wire::Gemini(g) => match &g.vertex {
            Some(auth) => Ok(vec![(
                header::AUTHORIZATION,
                upstream::google_token::bearer(&state.client, auth).await?,
            )]),
            None => Ok(Vec::new()),
        },
        Wire::Bedrock(b) => sign(&b.credentials, &b.region, "bedrock", uri, body),
        Wire::SageMaker(s) => sign(&s.credentials, &s.region, "sagemaker", uri, body),
        Wire::WatsonX(w) => match &w.iam {
            Some(iam) => Ok(vec![(
                header::AUTHORIZATION,
                upstream::ibm_token::bearer(&state.client, iam).await?,
            )]),
            None => Ok(Vec::new()),
        },
        _ => Ok(Vec::new()),
    }
}

/// SigV4 headers for a request to AWS `service` (`bedrock`, `sagemaker`) in `region`.
pub fn sign(
    credentials: &Credentials,
    region: &str,
    service: &str,
    uri: &Uri,
    body: &[u8],
) -> Result<Vec<(HeaderName, HeaderValue)>, GatewayError> {
    let host = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    let target = uri.to_string();
    let req = bedrock::sigv4::HttpRequest {
        method: "POST",
        uri: &target,
        headers: &[("host", host), ("content-type", "application/json")],
        body,
    };
    let signed = bedrock::sigv4::sign(
        &req,
        credentials,
        region,
        service,
        std::time::SystemTime::now(),
    )
    .map_err(|e| GatewayError::Internal(format!("SigV4 signing failed: {e}")))?;
    let mut out = Vec::with_capacity(signed.len());
    for (k, v) in signed {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| GatewayError::Internal(format!("SigV4 header {k}: {e}")))?;
        let mut value = HeaderValue::from_str(&v)
            .map_err(|e| GatewayError::Internal(format!("SigV4 header {k}: {e}")))?;
        value.set_sensitive(true);
        out.push((name, value));
    }
    Ok(out)
}

/// A chat request to a native deployment, answered as a chat completion.
pub async fn chat(
    state: &AppState,
    dep: &Arc<Deployment>,
    parsed: &ParsedRequest,
    ctx: &mut RequestCtx,
) -> Result<Response<Body>, GatewayError> {
    let req: Value = parsed.json()?;
    let model = dep.upstream_model.as_str();
    let created = crate::util::clock::unix(ctx.wall_start) as u64;
    let id = format!("chatcmpl-{}", ctx.call_id.simple());
    let stream = parsed.stream;
    let out = chat_outbound(state, dep, &req, stream).await?;
    let (uri, body, extra) = (&*out.uri, &out.body, &out.extra);
    let provider = dep.provider.name();
    let errors = Errors::Native(provider);
    let t0 = Instant::now();
    if stream {
        let (_, incoming) =
            super::watch::open_stream(state, dep, uri, body, extra, errors, ctx).await?;
        let inward = stream_translator(dep, &req, model, &id, created);
        // usage always comes back for spend; the client sees it only if it asked
        let drop_usage = parsed.include_usage != Some(true);
        return Ok(relay(state, dep, incoming, inward, drop_usage, ctx));
    }
    let (head, bytes) = upstream::call_whole(&state.client, dep, uri, body, extra, errors).await?;
    ctx.upstream_elapsed = t0.elapsed();
    let answer: Value = serde_json::from_slice(&bytes)
        .map_err(|e| UpstreamError::Body(format!("{provider} sent invalid JSON: {e}")))?;
    let chat = match &dep.wire {
        _ if completions_of(dep).is_some() => text_completion::to_chat(&answer, model, created),
        Wire::Gemini(_) => gemini::response::to_chat(&answer, model, &id, created),
        Wire::Bedrock(_) => bedrock::response::to_chat(&answer, model, &id, created),
        Wire::Cohere { .. } => cohere::response::to_chat(&answer, model, created),
        Wire::WatsonX(_) => openai_like::to_chat(&answer, model, &id, created),
        Wire::SageMaker(s) if s.messages_api => openai_like::to_chat(&answer, model, &id, created),
        Wire::SageMaker(_) => {
            let prompt = sagemaker::prompt(&req).map_err(bad)?;
            sagemaker::tgi_to_chat(&answer, &prompt, model, &id, created)
        }
        _ => anthropic::response::to_chat(&answer, created),
    };
    let out = Bytes::from(chat.to_string());
    ctx.completion.usage = sse::usage_of_body(&out);
    ctx.completion.response_id = chat["id"].as_str().map(str::to_string);
    if let Some((_, resp)) = ctx.completion.bodies.as_mut() {
        *resp = Some(out.clone());
    }
    Ok(crate::error::json_response(head.status, out))
}

/// The request a chat request `req` sends to a native `dep` (streamed or not): the provider's
/// URL and body, authenticated for its wire.
pub async fn chat_outbound(
    state: &AppState,
    dep: &Deployment,
    req: &Value,
    stream: bool,
) -> Result<Outbound<'static>, GatewayError> {
    let (uri, body) = provider_request(dep, req, dep.upstream_model.as_str(), stream)?;
    json_outbound(state, dep, Cow::Owned(uri), &body, stream).await
}

/// A POST of the JSON `body` to `uri` of `dep`, authenticated for its wire.
pub async fn json_outbound<'d>(
    state: &AppState,
    dep: &Deployment,
    uri: Cow<'d, Uri>,
    body: &Value,
    stream: bool,
) -> Result<Outbound<'d>, GatewayError> {
    let body = Bytes::from(serde_json::to_vec(body).map_err(bad)?);
    let extra = auth_headers(state, dep, &uri, &body).await?;
    Ok(Outbound {
        uri,
        body: vec![body],
        extra,
        stream,
    })
}

/// The provider's URL and request for a chat request.
fn provider_request(
    dep: &Deployment,
    req: &Value,
    model: &str,
    stream: bool,
) -> Result<(Uri, Value), GatewayError> {
    if let Some(uri) = completions_of(dep) {
        return Ok((
            uri.clone(),
            text_completion::to_completion(req, model).map_err(bad)?,
        ));
    }
    Ok(match &dep.wire {
        Wire::Anthropic { messages } => (
            messages.clone(),
            anthropic::request::to_messages(req, model).map_err(bad)?,
        ),
        Wire::Gemini(g) => (
            if stream { &g.stream } else { &g.generate }.clone(),
            gemini::request::to_generate_content(req).map_err(bad)?,
        ),
        Wire::Bedrock(b) => (
            b.uri(if stream {
                "converse-stream"
            } else {
                "converse"
            })
            .ok_or_else(|| GatewayError::Internal("bad Bedrock model URL".into()))?,
            bedrock::request::to_converse(req).map_err(bad)?,
        ),
        Wire::Cohere { chat, .. } => (
            chat.clone(),
            cohere::request::to_chat_v2(req, model).map_err(bad)?,
        ),
        Wire::WatsonX(w) => (
            if stream { &w.chat_stream } else { &w.chat }.clone(),
            watsonx::chat_request(req, &w.scope).map_err(bad)?,
        ),
        Wire::SageMaker(s) => (
            if stream { &s.stream } else { &s.invoke }.clone(),
            if s.messages_api {
                sagemaker::chat_request(req, &s.endpoint, stream).map_err(bad)?
            } else {
                sagemaker::tgi_request(req, stream).map_err(bad)?
            },
        ),
        Wire::OpenAi => {
            return Err(GatewayError::Internal(format!(
                "Provider '{}' is OpenAI-shaped: not translated",
                dep.provider.name()
            )));
        }
    })
}

/// The translator of the provider's stream into chat completion chunks.
fn stream_translator(
    dep: &Deployment,
    req: &Value,
    model: &str,
    id: &str,
    created: u64,
) -> Box<dyn StreamTranslate> {
    match &dep.wire {
        Wire::WatsonX(_) => Box::new(watsonx::stream_translator(model, id, created, true)),
        Wire::SageMaker(s) if s.messages_api => Box::new(sagemaker::stream::ChatStream::chat(
            model, id, created, true,
        )),
        Wire::SageMaker(_) => Box::new(sagemaker::stream::TgiStream::tgi(
            model,
            id,
            created,
            true,
            &sagemaker::prompt(req).unwrap_or_default(),
        )),
        _ if completions_of(dep).is_some() => Box::new(text_completion::StreamTranslator::new(
            model, id, created, true,
        )),
        Wire::Gemini(_) => Box::new(gemini::stream::StreamTranslator::new(
            model, id, created, true,
        )),
        Wire::Bedrock(_) => Box::new(bedrock::stream::StreamTranslator::new(
            model, id, created, true,
        )),
        Wire::Cohere { .. } => {
            Box::new(cohere::stream::StreamTranslator::new(model, created, true))
        }
        _ => Box::new(anthropic::stream::StreamTranslator::new(created, true)),
    }
}

/// The provider's stream relayed to the client as chat completion chunks (or in the client's
/// own format).
fn relay(
    state: &AppState,
    dep: &Deployment,
    incoming: hyper::body::Incoming,
    inward: Box<dyn StreamTranslate>,
    drop_usage: bool,
    ctx: &mut RequestCtx,
) -> Response<Body> {
    let watch = Watch::new(ctx.hand_off()).recording(ctx.cache_pending.take());
    let relay = RelayBody::new(
        incoming,
        drop_usage,
        dep.stream_timeout,
        watch.boxed(),
        state.streams.signal(),
    )
    .translating(inward)
    .answering_as(ctx.outward.map(|o| o.stream(&dep.model_name)));
    super::watch::sse_response(relay)
}

/// Send `out` to `dep` and read the JSON answer.
pub(super) async fn send_json(
    state: &AppState,
    dep: &Deployment,
    out: &Outbound<'_>,
) -> Result<Value, GatewayError> {
    let provider = dep.provider.name();
    let errors = Errors::Native(provider);
    let (_, bytes) =
        upstream::call_whole(&state.client, dep, &out.uri, &out.body, &out.extra, errors).await?;
    Ok(serde_json::from_slice(&bytes)
        .map_err(|e| UpstreamError::Body(format!("{provider} sent invalid JSON: {e}")))?)
}

/// The provider's URL and bodies for an embeddings request `req` to a native `dep` (Bedrock
/// models that embed one input a call get one body an input).
fn embedding_bodies<'d>(
    dep: &'d Deployment,
    req: &Value,
) -> Result<(Cow<'d, Uri>, Vec<Value>), GatewayError> {
    let model = dep.upstream_model.as_str();
    Ok(match &dep.wire {
        Wire::Gemini(g) if g.vertex.is_some() => (
            Cow::Borrowed(&g.embed),
            vec![gemini::embed::to_vertex_predict(req).map_err(bad)?],
        ),
        Wire::Gemini(g) => (
            Cow::Borrowed(&g.embed),
            vec![gemini::embed::to_batch_embed(model, req).map_err(bad)?],
        ),
        Wire::Bedrock(b) => (
            Cow::Owned(
                b.uri("invoke")
                    .ok_or_else(|| GatewayError::Internal("bad Bedrock model URL".into()))?,
            ),
            bedrock::embed::requests(model, req).map_err(bad)?,
        ),
        Wire::Cohere { embed, .. } => (
            Cow::Borrowed(embed),
            vec![cohere::embed::to_request(model, req).map_err(bad)?],
        ),
        Wire::WatsonX(w) => (
            Cow::Borrowed(&w.embed),
            vec![watsonx::embed_request(req, &w.scope).map_err(bad)?],
        ),
        Wire::SageMaker(s) => (
            Cow::Borrowed(&s.invoke),
            vec![sagemaker::embed_request(req).map_err(bad)?],
        ),
        _ => {
            return Err(GatewayError::NotImplemented(format!(
                "Embeddings are not available for provider '{}'",
                dep.provider.name()
            )));
        }
    })
}

/// The requests an embeddings request `req` sends to a native `dep` (one, but for Bedrock
/// models that embed one input a call), each with the body it carries.
pub async fn embedding_outbounds<'d>(
    state: &AppState,
    dep: &'d Deployment,
    req: &Value,
) -> Result<Vec<(Outbound<'d>, Value)>, GatewayError> {
    let (uri, bodies) = embedding_bodies(dep, req)?;
    let mut out = Vec::with_capacity(bodies.len());
    for body in bodies {
        out.push((
            json_outbound(state, dep, uri.clone(), &body, false).await?,
            body,
        ));
    }
    Ok(out)
}

/// An embeddings request to a native deployment, answered in OpenAI's shape (base64 vectors
/// when the client asked for them, as the OpenAI SDKs do by default).
pub async fn embeddings(
    state: &AppState,
    dep: &Arc<Deployment>,
    req: Value,
    ctx: &mut RequestCtx,
) -> Result<Response<Body>, GatewayError> {
    let model = dep.upstream_model.as_str();
    let t0 = Instant::now();
    let sent = embedding_outbounds(state, dep, &req).await?;
    let mut answers = Vec::with_capacity(sent.len());
    for (out, _) in &sent {
        answers.push(send_json(state, dep, out).await?);
    }
    let (Some((_, body)), Some(resp)) = (sent.first(), answers.first()) else {
        return Err(GatewayError::Internal("no embeddings request made".into()));
    };
    let mut list = match &dep.wire {
        Wire::Gemini(g) if g.vertex.is_some() => gemini::embed::from_vertex_predict(model, resp),
        Wire::Gemini(_) => {
            // Gemini reports no token count: estimated like the mock (4 characters a token)
            let tokens = super::mock::estimate_tokens(req.get("input").unwrap_or(&Value::Null));
            gemini::embed::to_openai(model, resp, tokens)
        }
        Wire::Bedrock(_) => bedrock::embed::to_openai(model, &answers),
        Wire::Cohere { .. } => cohere::embed::to_openai(model, resp),
        Wire::WatsonX(_) => watsonx::embed_to_openai(model, resp),
        Wire::SageMaker(_) => sagemaker::embed_to_openai(model, body, resp),
        _ => {
            return Err(GatewayError::NotImplemented(format!(
                "Embeddings are not available for provider '{}'",
                dep.provider.name()
            )));
        }
    };
    ctx.upstream_elapsed = t0.elapsed();
    // the usage read from the translated answer itself: it is serialized once, below
    ctx.completion.usage = list
        .get("usage")
        .and_then(|u| <sse::Usage as serde::Deserialize>::deserialize(u).ok());
    if embedding_list::wants_base64(&req) {
        embedding_list::encode_base64(&mut list);
    }
    let out = Bytes::from(list.to_string());
    Ok(crate::error::json_response(http::StatusCode::OK, out))
}

/// A Mistral request: the OpenAI body reduced to the fields Mistral accepts (it refuses
/// unknown ones) and its few renames.
pub fn for_mistral(
    parsed: &ParsedRequest,
    expect: super::parse::Expect,
) -> Result<ParsedRequest, GatewayError> {
    use super::parse::{Expect, parse};
    let mut v: serde_json::Map<String, Value> = parsed.json()?;
    match expect {
        Expect::Embedding => crate::providers::mistral::fix_embedding_request(&mut v),
        _ => crate::providers::mistral::fix_request(&mut v),
    }
    let bytes = serde_json::to_vec(&v).map_err(bad)?;
    let mut p = parse(bytes.into(), expect)?;
    p.mock_response = parsed.mock_response.clone();
    Ok(p)
}
