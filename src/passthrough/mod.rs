//! Provider pass-through: `/{provider}/{*path}` (anthropic, openai, gemini, vertex-ai,
//! bedrock, cohere, mistral, azure) forwards any method and path to the provider with the
//! credential of the first configured deployment of that provider. The caller authenticates
//! with a Tianji key (`Authorization`, `x-api-key`, `x-goog-api-key` or `?key=`); its key is
//! never forwarded. Bodies and answers stream through (Bedrock and Vertex bodies are read to
//! be signed); the answer is read for usage on the way, so the call is charged when it tells.
//! Without a deployment of the provider, a wildcard entry or the provider's credentials in the
//! environment are used.

mod configured;
pub mod usage;

pub use configured::{Endpoint, configured, endpoint};

use std::sync::Arc;

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
        "No {0} credentials for pass-through ({1}): add a deployment of that provider to model_list or set its API key in the environment"
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

/// Serve `/{prefix}/{path}`.
pub async fn handle(
    state: &AppState,
    prefix: &str,
    path: &str,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let principal = state.auth.authenticate(req.headers()).await?;
    crate::auth::access::check_route(&principal, req.uri().path())?;
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

    // target: the deployment's base without its API version segment, then the client's path
    let base = dep.api_base.trim_end_matches('/');
    let root = ["/v1", "/v1beta", "/v2"]
        .iter()
        .find_map(|v| base.strip_suffix(v))
        .unwrap_or(base);
    let query: Vec<&str> = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("key="))
        .collect();
    let target = if query.is_empty() {
        format!("{root}/{path}")
    } else {
        format!("{root}/{path}?{}", query.join("&"))
    };
    let uri: Uri = target
        .parse()
        .map_err(|_| RequestError::BadValue(format!("bad pass-through path: {path}")))?;

    let (parts, incoming) = req.into_parts();
    let mut out = Request::new(Body::empty());
    *out.method_mut() = parts.method.clone();
    *out.uri_mut() = uri.clone();
    let h = out.headers_mut();
    for (k, v) in &parts.headers {
        if !DROPPED.contains(&k.as_str()) {
            h.append(k.clone(), v.clone());
        }
    }
    for (k, v) in &dep.headers {
        h.insert(k.clone(), v.clone());
    }
    let signed = matches!(dep.wire, Wire::Bedrock(_) | Wire::Gemini(_));
    *out.body_mut() = if signed {
        // SigV4 and Vertex tokens: the body is read (within the request size limit) first
        let body = http_body_util::Limited::new(incoming, state.max_body_bytes)
            .collect()
            .await
            .map_err(crate::pipeline::parse::read_error)?
            .to_bytes();
        let extra: Vec<(HeaderName, HeaderValue)> =
            crate::pipeline::auth_headers(state, &dep, &uri, &body).await?;
        for (k, v) in extra {
            h.insert(k, v);
        }
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        Body::full(body)
    } else {
        if let Some(len) = parts.headers.get(header::CONTENT_LENGTH) {
            h.insert(header::CONTENT_LENGTH, len.clone());
        }
        Body::Chain {
            head: None,
            rest: Some(incoming),
        }
    };
    let side = crate::pipeline::Side {
        call_type: "pass_through_endpoint",
        endpoint: "pass_through",
        model: &dep.model_name,
        dep: Some(dep.clone()),
        model_access: false,
        rate_limited: true,
    };
    let rec = crate::pipeline::side_call(state, &principal, side).await?;
    let resp = tokio::time::timeout(dep.timeout, state.client.request(out))
        .await
        .map_err(|_| UpstreamError::Timeout(dep.timeout.as_secs_f64()))?
        .map_err(|e| UpstreamError::Connect {
            api_base: dep.api_base.clone(),
            detail: e.to_string(),
        })?;
    Ok(relay(resp, rec, provider, usage::path_model(path)))
}

/// The provider's answer as it is (errors included), streamed and read for usage by the call's
/// record `rec` (`provider` names the price map's provider, `""` when unknown).
fn relay(
    resp: Response<Incoming>,
    mut rec: Completion,
    provider: &'static str,
    path_model: Option<String>,
) -> Response<Body> {
    let (head, body) = resp.into_parts();
    rec.status = head.status.as_u16();
    let content_type = head
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let tap = usage::Tap::new(body, content_type, provider, path_model, rec);
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
