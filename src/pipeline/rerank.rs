//! `/v1/rerank`: Cohere's request shape in, sent to Cohere, Jina, Voyage or any server with a
//! Cohere-compatible `/rerank`, answered in Cohere's shape with the billed tokens as usage.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use http::Response;
use serde_json::Value;

use super::RequestCtx;
use super::parse::RequestError;
use super::translated::{json_outbound, send_json};
use crate::body::Body;
use crate::error::GatewayError;
use crate::providers::rerank::{self, Shape};
use crate::router::Deployment;
use crate::router::wire::Wire;
use crate::state::AppState;
use crate::upstream::Outbound;
use crate::upstream::sse::Usage;

/// The request a rerank request `req` sends to `dep`, and the shape its answer comes in.
pub async fn outbound<'d>(
    state: &AppState,
    dep: &'d Deployment,
    req: &Value,
) -> Result<(Outbound<'d>, Shape), GatewayError> {
    let (shape, uri) = match (&dep.wire, &dep.endpoints) {
        (Wire::Cohere { rerank, .. }, _) => (Shape::Cohere, Cow::Borrowed(rerank)),
        (Wire::OpenAi, Some(ep)) => (
            Shape::of(dep.provider.name()),
            Cow::Owned(
                ep.at("/rerank")
                    .ok_or_else(|| GatewayError::Internal("bad rerank URL".into()))?,
            ),
        ),
        _ => {
            return Err(GatewayError::NotImplemented(format!(
                "Rerank is not available for provider '{}'",
                dep.provider.name()
            )));
        }
    };
    let body = rerank::to_request(shape, req, &dep.upstream_model)
        .map_err(|e| RequestError::BadValue(e.to_string()))?;
    Ok((json_outbound(state, dep, uri, &body, false).await?, shape))
}

pub async fn rerank(
    state: &AppState,
    dep: &Arc<Deployment>,
    req: &Value,
    ctx: &mut RequestCtx,
) -> Result<Response<Body>, GatewayError> {
    let (out, shape) = outbound(state, dep, req).await?;
    let t0 = Instant::now();
    let answer = send_json(state, dep, &out).await?;
    ctx.upstream_elapsed = t0.elapsed();
    let unified = rerank::to_unified(shape, &answer, &ctx.call_id.simple().to_string());
    let tokens = rerank::billed_tokens(&unified);
    ctx.completion.usage = Some(Usage {
        prompt_tokens: tokens,
        total_tokens: tokens,
        ..Usage::default()
    });
    let bytes = bytes::Bytes::from(unified.to_string());
    if let Some((_, resp)) = ctx.completion.bodies.as_mut() {
        *resp = Some(bytes.clone());
    }
    Ok(crate::error::json_response(http::StatusCode::OK, bytes))
}
