//! Requests the gateway makes for a caller (RAG: the embeddings of chunks and queries, a scan's
//! OCR, a rerank, the completion with retrieved context): `body` runs the stages from `model` on as
//! if the caller had sent it to the route of `expect`, so the caller's model access, rate
//! limits and budgets apply and the call has its own SpendLogs row.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Response};
use http_body_util::BodyExt;

use super::parse::{self, Expect};
use super::{RequestCtx, model, read, respond, route_name, traced};
use crate::auth::Principal;
use crate::body::Body;
use crate::error::GatewayError;
use crate::state::AppState;

/// Who a made request is for: the caller, its request's headers (trace, tags) and address.
#[derive(Clone)]
pub struct For {
    pub principal: Principal,
    pub headers: HeaderMap,
    pub peer: SocketAddr,
}

/// Serve `body` for `who` as the route of `expect` serves it: the answer as that route gives
/// it (a stream when `body` asks for one), or its error as a JSON error answer.
pub async fn call(state: &AppState, who: &For, expect: Expect, body: Bytes) -> Response<Body> {
    run(state, who, expect, body).await.0
}

/// The answer, and the request's context (its record ends when it drops).
async fn run(
    state: &AppState,
    who: &For,
    expect: Expect,
    body: Bytes,
) -> (Response<Body>, RequestCtx) {
    let mut ctx = RequestCtx::new(route_name(expect));
    traced::start(state, &who.headers, &mut ctx);
    if let Some(m) = &state.metrics {
        ctx.completion.metrics = Some(Box::new((m.start(), read::metric_labels(&who.principal))));
    }
    ctx.admin = who.principal.is_admin();
    let result = match parse::parse_with(body, expect, state.cache.is_some()) {
        Ok(parsed) => {
            ctx.completion.prompt_estimate = parsed.raw.len() as u64 / 4;
            let mut call = read::Call {
                principal: who.principal.clone(),
                headers: who.headers.clone(),
                parsed,
                upload: None,
                expect,
                peer: who.peer,
                models: state.models.load_full(),
            };
            match model::name(state, &mut call, None, &mut ctx) {
                // boxed: the stages' future is large, and a made request runs inside another's
                Ok(()) => Box::pin(super::llm(state, call, &mut ctx)).await,
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e.into()),
    };
    ctx.stage = None;
    let resp = Box::pin(respond::respond(result, &mut ctx)).await;
    (resp, ctx)
}

/// [`call`] for a whole answer: its status and body, read before the request's record ends.
pub async fn whole(
    state: &AppState,
    who: &For,
    expect: Expect,
    body: Bytes,
) -> Result<(http::StatusCode, Bytes), GatewayError> {
    let (resp, ctx) = run(state, who, expect, body).await;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| GatewayError::Internal(format!("reading a model answer: {e}")))?
        .to_bytes();
    drop(ctx);
    Ok((status, bytes))
}
