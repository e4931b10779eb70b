//! `general_settings.pass_through_endpoints`: extra routes forwarded to a fixed target, with
//! configured headers, the caller's Tianji key checked (unless `auth: false`) and never sent on.

use http::{HeaderName, HeaderValue, Request, Response, Uri};

use super::DROPPED;
use crate::body::Body;
pub use crate::config::passthrough::Endpoint;
use crate::error::GatewayError;
use crate::request_body::RequestBody;
use crate::state::AppState;
use crate::upstream::UpstreamError;

/// The endpoint of `config` serving `path`, and the subpath after it.
pub fn configured<'a, 'p>(
    config: &'a crate::config::Config,
    path: &'p str,
) -> Option<(&'a Endpoint, &'p str)> {
    config
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
    req: Request<RequestBody>,
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
        let principal = state.auth.caller_of(&req).await?;
        super::access::check_routes(&principal, req.uri().path())?;
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
    let mut out = Request::new(Body::chain(None, Some(incoming)));
    *out.method_mut() = parts.method.clone();
    *out.uri_mut() = uri;
    headers(ep, &parts.headers, out.headers_mut())?;
    let timeout = ep
        .timeout
        .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
        .unwrap_or(std::time::Duration::from_secs(600));
    let side = crate::pipeline::Side {
        call_type: "pass_through_endpoint",
        endpoint: "pass_through",
        model: &ep.path,
        dep: None,
        model_access: false,
        rate_limited: true,
    };
    let mut rec = crate::pipeline::side_call(state, &principal, side).await?;
    // booked under the model the answer names (see `Tap`)
    if let Some((_, Some(row))) = rec.spend.as_mut() {
        row.provider_model = Some(String::new());
    }
    let resp = tokio::time::timeout(timeout, state.client.request(out))
        .await
        .map_err(|_| UpstreamError::Timeout(timeout.as_secs_f64()))?
        .map_err(|e| UpstreamError::Connect {
            api_base: ep.target.clone(),
            detail: e.to_string(),
        })?;
    Ok(super::relay(resp, rec, "", None, state.streams.signal()))
}

/// The headers sent to an endpoint: the client's (all with `forward_headers`, else its content
/// type, length and accept; never hop-by-hop ones, nor its credentials when the endpoint checks
/// Tianji keys), then the endpoint's own (marked sensitive).
fn headers(
    ep: &Endpoint,
    client: &http::HeaderMap,
    h: &mut http::HeaderMap,
) -> Result<(), GatewayError> {
    for (k, v) in client {
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
    Ok(())
}
