//! Stage `cache` (with `tianji_settings.cache: true`), after admission and before the call:
//! answer from the cache (exactly the same request, else with the semantic cache a prompt of
//! the same meaning), or note what to store once the answer is complete. A hit costs nothing
//! upstream: its SpendLogs row says `cache_hit` with the original call's tokens and zero spend.

use std::sync::Arc;

use http::{HeaderValue, Response, header};
use http_body_util::BodyExt;

use super::RequestCtx;
use super::call::{self, Attempt};
use super::parse::{Expect, ParsedRequest, parse};
use super::read::Call;
use crate::auth::Principal;
use crate::body::Body;
use crate::cache::{Cache, Hit, Pending, Plan};
use crate::error::GatewayError;
use crate::state::AppState;

/// What the cache stage found.
pub enum Looked {
    /// The answer, from the cache.
    Hit(Response<Body>),
    /// Call the provider; store its answer with this (None: `no-store`).
    Miss(Option<Pending>),
}

/// The cache's part of a request, kept for the response headers and the SpendLogs row.
#[derive(Debug, Clone)]
pub struct CacheUse {
    pub key: String,
    pub hit: bool,
}

/// The stage: the cached answer on a hit; on a miss, what to store is noted in `ctx`. Not for
/// uploads and mocked requests.
pub async fn check(
    state: &AppState,
    call: &mut Call,
    ctx: &mut RequestCtx,
) -> Option<Response<Body>> {
    let (Some(cache), Some(controls)) = (&state.cache, ctx.controls.take()) else {
        return None;
    };
    if call.upload.is_some() || call.parsed.mock_response.is_some() {
        return None;
    }
    let caller = crate::cache::key::Caller {
        key: key_hash(state, &call.principal),
        team: team(&call.principal),
    };
    let canonical = call.parsed.canonical.take();
    let plan = cache.plan(
        super::budget::call_type(call.expect).0,
        &ctx.model,
        &call.parsed.raw,
        canonical.as_deref(),
        controls,
        caller,
    )?;
    ctx.completion.cache_key = Some(plan.key.clone());
    // boxed: requests the cache does not apply to do not carry (or copy) the lookup's state
    match Box::pin(lookup(state, cache, plan, &call.parsed, ctx)).await {
        Looked::Hit(resp) => Some(resp),
        Looked::Miss(pending) => {
            ctx.cache_pending = pending;
            None
        }
    }
}

/// The sha256 hex of the caller's key (the master key's for admins; "" on an open gateway).
fn key_hash<'a>(state: &'a AppState, principal: &'a Principal) -> &'a str {
    match principal {
        Principal::Key(k) => &k.key.token,
        Principal::Master => state.auth.master_hash().map_or("", |h| h),
        Principal::Open => "",
    }
}

/// The caller's team, if its key has one.
fn team(principal: &Principal) -> Option<&str> {
    match principal {
        Principal::Key(k) => k.key.team_id.as_deref(),
        _ => None,
    }
}

/// Look the request up.
async fn lookup(
    state: &AppState,
    cache: &Arc<Cache>,
    plan: Plan,
    parsed: &ParsedRequest,
    ctx: &mut RequestCtx,
) -> Looked {
    let mut vector = None;
    let mut found = cache.exact(&plan).await;
    if found.is_none()
        && let (Some((_, text)), Some(sem)) = (&plan.semantic, &cache.settings.semantic)
    {
        vector = embed(state, &sem.embedding_model, text).await;
        if let Some(v) = &vector {
            found = cache.similar(&plan, v).await;
        }
    }
    cache.count(found.is_some());
    match found {
        Some(hit) => Looked::Hit(answer(hit, parsed, ctx)),
        None => {
            ctx.cache = Some(CacheUse {
                key: plan.key.clone(),
                hit: false,
            });
            Looked::Miss(cache.pending(&plan, vector))
        }
    }
}

/// The stored answer as the client asked for it (replayed as a stream when it streams).
fn answer(hit: Hit, parsed: &ParsedRequest, ctx: &mut RequestCtx) -> Response<Body> {
    let body = hit.entry.body.clone();
    let c = &mut ctx.completion;
    c.usage = Some(hit.entry.usage);
    c.cache_hit = true;
    c.cache_key = Some(hit.key.clone());
    // no deployment was used
    c.in_flight = None;
    if let Some((_, resp)) = c.bodies.as_mut() {
        *resp = Some(body.clone());
    }
    if let Some(s) = hit.similarity {
        tracing::debug!(key = %hit.key, similarity = s, "semantic cache hit");
    }
    ctx.cache = Some(CacheUse {
        key: hit.key,
        hit: true,
    });
    let events = parsed
        .stream
        .then(|| crate::cache::stream::replay(&body, parsed.include_usage == Some(true)))
        .flatten();
    let mut resp = match events {
        Some(events) => {
            let mut r = Response::new(Body::chunks(events));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
        None => {
            let mut r = Response::new(Body::full(body));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
    };
    *resp.status_mut() = http::StatusCode::OK;
    resp
}

/// Store a whole (non-streamed) answer, when it is a success (a stream's relay stores its
/// own at its end).
pub fn store_whole(result: &Result<Response<Body>, GatewayError>, ctx: &mut RequestCtx) {
    let (Some(pending), Ok(resp)) = (ctx.cache_pending.take(), result) else {
        return;
    };
    if resp.status() != http::StatusCode::OK {
        return;
    }
    if let Body::Full(Some(b)) = resp.body() {
        pending.store(b.clone(), ctx.completion.usage.unwrap_or_default());
    }
}

/// The prompt's vector from the semantic cache's embedding model (a call through the usual
/// attempt path, without a spend row); None when that fails (the lookup is then a miss).
async fn embed(state: &AppState, model: &str, text: &str) -> Option<Vec<f32>> {
    let table = state.models.load_full();
    let resolved = match table.resolve(model) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(model, error = %e, "semantic cache: no embedding model");
            return None;
        }
    };
    let policy = state.router.policy();
    let ask = crate::router::balancer::Ask {
        tags: &[],
        prompt_tokens: text.len() as u64 / 4,
    };
    let dep = state
        .router
        .choose(&policy, model, &resolved.group, &[], ask)
        .ok()?;
    let body = serde_json::json!({"model": model, "input": text}).to_string();
    let parsed = parse(body.into(), Expect::Embedding).ok()?;
    let mut ctx = RequestCtx::new("semantic_cache");
    let attempt = Attempt {
        parsed,
        expect: Expect::Embedding,
        model,
        principal: &Principal::Master,
        headers: &http::HeaderMap::new(),
        upload: None,
    };
    let called = Box::pin(call::attempt(state, &dep, attempt, &mut ctx)).await;
    let bytes = match called {
        Ok(resp) if resp.status().is_success() => resp.into_body().collect().await.ok()?,
        Ok(resp) => {
            tracing::warn!(model, status = %resp.status(), "semantic cache: embedding failed");
            return None;
        }
        Err(e) => {
            tracing::warn!(model, error = %e, "semantic cache: embedding failed");
            return None;
        }
    };
    crate::cache::semantic::embedding_of(&bytes.to_bytes())
}
