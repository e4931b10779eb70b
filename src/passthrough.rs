//! Provider pass-through: `/{provider}/{*path}` (anthropic, openai, gemini, vertex-ai,
//! bedrock, cohere, mistral, azure) forwards any method and path to the provider with the
//! credential of the first configured deployment of that provider. The caller authenticates
//! with a Tianji key (`Authorization`, `x-api-key`, `x-goog-api-key` or `?key=`); its key is
//! never forwarded. Bodies and answers stream through (Bedrock bodies are read to be signed).

use std::sync::Arc;

use http::{HeaderName, HeaderValue, Request, Response, Uri, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::body::Body;
use crate::error::GatewayError;
use crate::pipeline::parse::RequestError;
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
        "No {0} deployment is configured: pass-through uses the credentials of a deployment of that provider in model_list"
    )]
    NoDeployment(String),
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
    req: Request<Incoming>,
) -> Result<Response<Body>, GatewayError> {
    let principal = state.auth.authenticate(req.headers()).await?;
    crate::auth::access::check_route(&principal, req.uri().path())?;
    let names = PROVIDERS
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, n)| *n)
        .unwrap_or_default();
    let table = state.models.load_full();
    let dep: Arc<Deployment> = table
        .deployments()
        .find(|d| names.contains(&d.provider.name()) && d.mock_response.is_none())
        .cloned()
        .ok_or_else(|| {
            GatewayError::NotImplemented(PassThroughError::NoDeployment(prefix.into()).to_string())
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
            .map_err(|e| RequestError::Read(e.to_string()))?
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
    let mut rec = crate::pipeline::side_call(
        state,
        &principal,
        "pass_through_endpoint",
        "pass_through",
        &dep.model_name,
        Some(dep.clone()),
    )
    .await;
    let resp = tokio::time::timeout(dep.timeout, state.client.request(out))
        .await
        .map_err(|_| UpstreamError::Timeout(dep.timeout.as_secs_f64()))?
        .map_err(|e| UpstreamError::Connect {
            api_base: dep.api_base.clone(),
            detail: e.to_string(),
        })?;
    rec.status = resp.status().as_u16();
    Ok(relay(resp))
}

/// One entry of `general_settings.pass_through_endpoints`: requests to `path` go to `target`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Endpoint {
    /// The gateway path, e.g. `/v1/rerank-custom`.
    pub path: String,
    /// The URL requests go to.
    pub target: String,
    /// Headers added to every forwarded request (values may be `os.environ/NAME`).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Also pass the client's headers on (never its credentials when `auth` is on).
    #[serde(default)]
    pub forward_headers: bool,
    /// Also serve `path/...`, appending the rest to `target`.
    #[serde(default)]
    pub include_subpath: bool,
    /// Require a Tianji key (default true).
    #[serde(default = "yes")]
    pub auth: bool,
    /// Methods served (default all).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Seconds (default 600).
    #[serde(default)]
    pub timeout: Option<f64>,
}

fn yes() -> bool {
    true
}

/// The configured endpoint serving `path`, and the subpath after it.
pub fn configured<'a, 'p>(state: &'a AppState, path: &'p str) -> Option<(&'a Endpoint, &'p str)> {
    state
        .config
        .general_settings
        .pass_through_endpoints
        .iter()
        .find_map(|ep| {
            let base = ep.path.trim_end_matches('/');
            if path == base {
                return Some((ep, ""));
            }
            let rest = path.strip_prefix(base)?;
            (ep.include_subpath && rest.starts_with('/')).then_some((ep, rest))
        })
}

/// Serve a configured pass-through endpoint.
pub async fn endpoint(
    state: &AppState,
    ep: &Endpoint,
    sub: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, GatewayError> {
    if !ep.methods.is_empty()
        && !ep
            .methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(req.method().as_str()))
    {
        return Err(GatewayError::MethodNotAllowed {
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
            allowed: "the methods of this pass-through endpoint",
        });
    }
    let principal = if ep.auth {
        let principal = state.auth.authenticate(req.headers()).await?;
        crate::auth::access::check_route(&principal, req.uri().path())?;
        principal
    } else {
        crate::auth::Principal::Open
    };
    let target = ep.target.trim_end_matches('/');
    let target = match req.uri().query() {
        Some(q) => format!("{target}{sub}?{q}"),
        None => format!("{target}{sub}"),
    };
    let uri: Uri = target
        .parse()
        .map_err(|_| GatewayError::Internal(format!("bad pass-through target {target}")))?;
    let (parts, incoming) = req.into_parts();
    let mut out = Request::new(Body::Chain {
        head: None,
        rest: Some(incoming),
    });
    *out.method_mut() = parts.method.clone();
    *out.uri_mut() = uri;
    let h = out.headers_mut();
    for (k, v) in &parts.headers {
        let credential = ep.auth && DROPPED.contains(&k.as_str());
        let hop = matches!(
            k.as_str(),
            "host" | "connection" | "transfer-encoding" | "te" | "upgrade" | "keep-alive"
        );
        let always = matches!(k.as_str(), "content-type" | "content-length" | "accept");
        if !hop && !credential && (ep.forward_headers || always) {
            h.append(k.clone(), v.clone());
        }
    }
    for (k, v) in &ep.headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| GatewayError::Internal(format!("bad header name {k}")))?;
        let mut value = HeaderValue::from_str(v)
            .map_err(|_| GatewayError::Internal(format!("bad value for header {k}")))?;
        value.set_sensitive(true);
        h.insert(name, value);
    }
    let timeout = ep
        .timeout
        .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
        .unwrap_or(std::time::Duration::from_secs(600));
    let mut rec = crate::pipeline::side_call(
        state,
        &principal,
        "pass_through_endpoint",
        "pass_through",
        &ep.path,
        None,
    )
    .await;
    let resp = tokio::time::timeout(timeout, state.client.request(out))
        .await
        .map_err(|_| UpstreamError::Timeout(timeout.as_secs_f64()))?
        .map_err(|e| UpstreamError::Connect {
            api_base: ep.target.clone(),
            detail: e.to_string(),
        })?;
    rec.status = resp.status().as_u16();
    Ok(relay(resp))
}

/// The provider's answer as it is (errors included), streamed.
fn relay(resp: Response<Incoming>) -> Response<Body> {
    let (head, body) = resp.into_parts();
    let mut reply = Response::new(Body::Stream(body));
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
