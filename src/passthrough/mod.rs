//! Provider pass-through: `/{provider}/{*path}` (anthropic, openai, gemini, vertex-ai,
//! bedrock, cohere, mistral, azure) forwards any method and path to the provider with the
//! credential of the deployment of that provider marked `use_in_pass_through: true`, else the
//! provider's credential in the environment (`crate::router::ModelTable::pass_through`; an
//! unmarked deployment is never used). The caller authenticates
//! with a Tianji key (`Authorization`, `x-api-key`, `x-goog-api-key` or `?key=`); its key is
//! never forwarded. Bodies and answers stream through (Bedrock and Vertex bodies are read to
//! be signed); the answer is read for usage on the way, so the call is charged when it tells.
//!
//! The caller's pass-through route lists and model access apply ([`access`]): the model a call
//! names (path or body) is checked like an LLM route's, and the call is booked under that
//! model at its price; the deployment lending its credential only counts the call on its own
//! rate limits.

pub mod access;
mod configured;
pub mod usage;

pub use configured::{Endpoint, configured, endpoint};

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Request, Response, Uri, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::body::Body;
use crate::error::GatewayError;
use crate::pipeline::parse::RequestError;
use crate::pipeline::post::Completion;
use crate::request_body::RequestBody;
use crate::router::Deployment;
use crate::router::wire::Wire;
use crate::state::AppState;
use crate::upstream::UpstreamError;

/// The path prefixes served, and the provider names of deployments each one uses.
pub const PROVIDERS: &[(&str, &[&str])] = &[
    ("anthropic", &["anthropic"]),
    ("openai", &["openai"]),
    ("gemini", &["gemini"]),
    ("vertex-ai", &["vertex_ai", "vertex_ai_beta"]),
    ("vertex_ai", &["vertex_ai", "vertex_ai_beta"]),
    ("bedrock", &["bedrock", "bedrock_converse"]),
    ("cohere", &["cohere", "cohere_chat"]),
    ("mistral", &["mistral"]),
    ("azure", &["azure"]),
];

#[derive(Debug, thiserror::Error)]
pub enum PassThroughError {
    #[error(
        "No {0} credentials for pass-through ({1}): mark a deployment of that provider `use_in_pass_through: true` or set its API key in the environment"
    )]
    NoDeployment(String, crate::router::PassThroughMissing),
}

/// Client headers never sent on: credentials, hop-by-hop, and what the gateway sets itself.
const DROPPED: &[&str] = &[
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "cookie",
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "te",
    "upgrade",
    "keep-alive",
    "proxy-authorization",
];

/// A body of a caller free to use any model is read for its `model` only up to this size
/// (larger ones stream on, booked by the model the answer names).
const PEEK_BODY: usize = 256 << 10;

/// The request body: whole when it was read to the end, else what was read and the rest.
enum ReadBody {
    Whole(Bytes),
    Partial(Bytes, RequestBody),
}

/// Read `incoming` until its end or `cap` bytes (`limit`: a body longer than `cap` is an
/// error rather than partial).
async fn read_body(
    mut incoming: RequestBody,
    cap: usize,
    limit: bool,
) -> Result<ReadBody, RequestError> {
    let mut buf = BytesMut::new();
    while buf.len() <= cap {
        match incoming.frame().await {
            None => return Ok(ReadBody::Whole(buf.freeze())),
            Some(Err(e)) => return Err(crate::pipeline::parse::read_error(e.into())),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
    if limit {
        return Err(RequestError::Read(format!(
            "request body larger than {cap} bytes"
        )));
    }
    Ok(ReadBody::Partial(buf.freeze(), incoming))
}

/// Serve `/{prefix}/{path}`.
pub async fn handle(
    state: &AppState,
    prefix: &str,
    path: &str,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let principal = state.auth.caller_of(&req).await?;
    access::check_routes(&principal, req.uri().path())?;
    if access::dot_segments(path) {
        return Err(RequestError::BadValue(format!("bad pass-through path: {path}")).into());
    }
    let dir = state.auth.directory();
    let restricted = access::restriction(dir, &principal).await?;
    let names = PROVIDERS
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, n)| *n)
        .unwrap_or_default();
    let table = state.models.load_full();
    let provider = names.first().copied().unwrap_or_default();
    let dep: Arc<Deployment> = table.pass_through(provider, names).map_err(|e| {
        GatewayError::NotImplemented(PassThroughError::NoDeployment(prefix.into(), e).to_string())
    })?;
    let uri = target(&dep, path, req.uri().query())?;
    let (parts, incoming) = req.into_parts();
    let mut out = forwarded(&parts, &dep, uri.clone());
    let signed = matches!(dep.wire, Wire::Bedrock(_) | Wire::Gemini(_));
    // the body is read first to be signed (SigV4, Vertex tokens) or to check the model it names
    // (a caller restricted to some models); else a small JSON body is read for its model
    let body = if signed || restricted.is_some() {
        read_body(incoming, state.max_body_bytes, true).await?
    } else if is_json(&parts.headers) {
        read_body(incoming, PEEK_BODY, false).await?
    } else {
        ReadBody::Partial(Bytes::new(), incoming)
    };
    let path_model = usage::path_model(path);
    let body_model = match &body {
        ReadBody::Whole(b) => access::body_model(b),
        ReadBody::Partial(..) => None,
    };
    if let Some(refusal) = restricted {
        let named = [path_model.as_deref(), body_model.as_deref()];
        check_models(dir, &principal, &table, names, refusal, named).await?;
    }
    // the path names the model where it does (Azure: the deployment), else the body
    let named = path_model.clone().or(body_model);
    attach(
        state,
        &mut out,
        body,
        signed.then_some(&dep),
        &parts.headers,
    )
    .await?;
    let side = crate::pipeline::Side {
        call_type: "pass_through_endpoint",
        endpoint: "pass_through",
        model: named.as_deref().unwrap_or_default(),
        dep: Some(dep.clone()),
        model_access: false,
        rate_limited: true,
    };
    let mut rec = crate::pipeline::side_call(state, &principal, side).await?;
    book_as(&mut rec, named, &table, names);
    let resp = tokio::time::timeout(dep.timeout, state.client.request(out))
        .await
        .map_err(|_| UpstreamError::Timeout(dep.timeout.as_secs_f64()))?
        .map_err(|e| UpstreamError::Connect {
            api_base: dep.api_base.clone(),
            detail: e.to_string(),
        })?;
    let cut = state.streams.signal();
    Ok(relay(resp, rec, provider, path_model, cut))
}

/// A caller restricted to some models (`refusal` says why it may not go without one): the
/// models the path and the body name must be among them, and at least one must be named.
async fn check_models(
    dir: Option<&crate::auth::cache::Directory>,
    principal: &crate::auth::Principal,
    table: &crate::router::ModelTable,
    providers: &[&str],
    refusal: crate::auth::AuthError,
    named: [Option<&str>; 2],
) -> Result<(), GatewayError> {
    if named.iter().all(Option::is_none) {
        return Err(refusal.into());
    }
    for m in named.into_iter().flatten() {
        access::check_model(dir, principal, table, providers, m).await?;
    }
    Ok(())
}

/// Book the call under the model it names (`named`), at that model's price; never as the
/// deployment lending its credential.
fn book_as(
    rec: &mut Completion,
    named: Option<String>,
    table: &crate::router::ModelTable,
    providers: &[&str],
) {
    rec.price = named
        .as_deref()
        .and_then(|m| access::price(table, providers, m));
    if let Some((_, Some(row))) = rec.spend.as_mut() {
        row.provider_model = Some(named.unwrap_or_default());
    }
}

/// The provider URL of a pass-through call: the deployment's base without its API version
/// segment, then the client's path and query (without a `key=` credential).
fn target(dep: &Deployment, path: &str, query: Option<&str>) -> Result<Uri, RequestError> {
    let base = dep.api_base.trim_end_matches('/');
    let root = ["/v1", "/v1beta", "/v2"]
        .iter()
        .find_map(|v| base.strip_suffix(v))
        .unwrap_or(base);
    let query: Vec<&str> = query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("key="))
        .collect();
    let target = if query.is_empty() {
        format!("{root}/{path}")
    } else {
        format!("{root}/{path}?{}", query.join("&"))
    };
    target
        .parse()
        .map_err(|_| RequestError::BadValue(format!("bad pass-through path: {path}")))
}

/// The request to the provider, without its body: the client's method and headers (never its
/// credentials or hop-by-hop headers), the deployment's headers.
fn forwarded(parts: &http::request::Parts, dep: &Deployment, uri: Uri) -> Request<Body> {
    let mut out = Request::new(Body::empty());
    *out.method_mut() = parts.method.clone();
    *out.uri_mut() = uri;
    let h = out.headers_mut();
    for (k, v) in &parts.headers {
        if !DROPPED.contains(&k.as_str()) {
            h.append(k.clone(), v.clone());
        }
    }
    for (k, v) in &dep.headers {
        h.insert(k.clone(), v.clone());
    }
    out
}

fn is_json(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"))
}

/// Put the body on `out`: signed for `signing` (SigV4, Vertex tokens; the body was read whole),
/// else as read and the rest as it comes, with the client's `Content-Length`.
async fn attach(
    state: &AppState,
    out: &mut Request<Body>,
    body: ReadBody,
    signing: Option<&Arc<Deployment>>,
    client: &http::HeaderMap,
) -> Result<(), GatewayError> {
    *out.body_mut() = match (body, signing) {
        (ReadBody::Whole(body), Some(dep)) => {
            let uri = out.uri().clone();
            let extra: Vec<(HeaderName, HeaderValue)> =
                crate::pipeline::auth_headers(state, dep, &uri, &body).await?;
            let h = out.headers_mut();
            for (k, v) in extra {
                h.insert(k, v);
            }
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            Body::full(body)
        }
        (body, _) => {
            if let Some(len) = client.get(header::CONTENT_LENGTH) {
                out.headers_mut()
                    .insert(header::CONTENT_LENGTH, len.clone());
            }
            match body {
                ReadBody::Whole(b) => Body::full(b),
                ReadBody::Partial(head, rest) => {
                    Body::chain((!head.is_empty()).then_some(head), Some(rest))
                }
            }
        }
    };
    Ok(())
}

/// The provider's answer as it is (errors included), streamed and read for usage by the call's
/// record `rec` (`provider` names the price map's provider, `""` when unknown) and cut by `cut`
/// at the shutdown deadline.
fn relay(
    resp: Response<Incoming>,
    mut rec: Completion,
    provider: &'static str,
    path_model: Option<String>,
    cut: crate::upstream::relay::CutSignal,
) -> Response<Body> {
    let (head, body) = resp.into_parts();
    rec.status = head.status.as_u16();
    let content_type = head
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let tap = usage::Tap::new(body, content_type, provider, path_model, rec, cut);
    let mut reply = Response::new(Body::Tap(Box::new(tap)));
    *reply.status_mut() = head.status;
    for (k, v) in &head.headers {
        if !matches!(
            k.as_str(),
            "connection" | "transfer-encoding" | "keep-alive" | "set-cookie"
        ) {
            reply.headers_mut().append(k.clone(), v.clone());
        }
    }
    reply
}
