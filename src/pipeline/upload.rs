//! Multipart uploads (`/v1/audio/transcriptions`, `/v1/audio/translations`,
//! `/v1/images/edits`, `/v1/images/variations`): read to the `model` field, routed like any
//! request, then the form goes to the provider with the deployment's model swapped in and the
//! file streamed through as it arrives.

use std::sync::Arc;
use std::time::Instant;

use http::{HeaderMap, HeaderValue, Request, Response, Uri, header};

use super::RequestCtx;
use super::multipart::{self, MultipartError, Upload};
use super::parse::RequestError;
use crate::body::Body;
use crate::error::GatewayError;
use crate::request_body::RequestBody;
use crate::router::Deployment;
use crate::state::AppState;
use crate::upstream::{self, UpstreamError, sse};

/// At most this much of an upload is held while looking for its `model` field.
const HEAD_LIMIT: usize = 16 * 1024 * 1024;

impl From<MultipartError> for GatewayError {
    fn from(e: MultipartError) -> Self {
        match e {
            MultipartError::Read(m) => RequestError::Read(m).into(),
            MultipartError::Missing(f) => RequestError::Missing(f).into(),
            other => RequestError::BadValue(other.to_string()).into(),
        }
    }
}

/// Authenticate, check the content type and declared size, and read to the `model` field.
pub async fn read(
    state: &AppState,
    req: Request<RequestBody>,
) -> Result<(crate::auth::Principal, http::request::Parts, Upload), GatewayError> {
    let principal = state.auth.caller_of(&req).await?;
    let (parts, body) = req.into_parts();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multipart::boundary(content_type)?;
    let declared = multipart::declared_length(&parts.headers);
    if declared.is_some_and(|n| n > state.max_body_bytes as u64) {
        return Err(RequestError::TooLarge {
            limit_mb: state.max_body_bytes as f64 / (1024.0 * 1024.0),
        }
        .into());
    }
    let limit = HEAD_LIMIT.min(state.max_body_bytes);
    let up = multipart::read_to_model(body, &boundary, declared, limit).await?;
    Ok((principal, parts, up))
}

/// Send the form to `uri` of `dep` and relay the answer (JSON, or text for
/// `response_format: text`/`srt`/`vtt`).
pub async fn forward(
    state: &AppState,
    dep: &Arc<Deployment>,
    uri: &Uri,
    mut up: Box<Upload>,
    client_headers: &HeaderMap,
    ctx: &mut RequestCtx,
) -> Result<Response<Body>, GatewayError> {
    let content_type = client_headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("multipart/form-data"));
    let (head, len) = up.with_model(&dep.upstream_model);
    let body = Body::chain(Some(head), up.rest.take());
    let t0 = Instant::now();
    let call = async {
        let resp = upstream::send_once(&state.client, dep, uri, body, content_type, len).await?;
        upstream::ok_body(resp).await
    };
    let (head, bytes) = tokio::time::timeout(dep.timeout, call)
        .await
        .map_err(|_| UpstreamError::Timeout(dep.timeout.as_secs_f64()))??;
    ctx.upstream_elapsed = t0.elapsed();
    ctx.completion.usage = Some(sse::usage_of_body(&bytes).unwrap_or_default());
    let mut out = Response::new(Body::full(bytes));
    *out.status_mut() = head.status;
    let ct = head
        .headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/json"));
    out.headers_mut().insert(header::CONTENT_TYPE, ct);
    Ok(out)
}
