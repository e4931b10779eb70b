//! Several models in one chat request, as LiteLLM's batch completion across models: `model`
//! names them comma-separated (`"gpt-4o,claude"`). The caller must be allowed every one (after
//! its aliases) before any is called; then each gets a request of its own, all at once, through
//! the stages from `authorize` on (rate limits, budgets, cache, retries and fallbacks, its own
//! SpendLogs row), as any other request. The answer is the list of their answers in the order
//! asked (an error object in the place of one that failed; when all failed, the first failure
//! alone), or with `fastest_response: true` the first to answer, the others cancelled.

use std::future::Future;

use bytes::{Bytes, BytesMut};
use futures_util::future::{join_all, select_ok};
use http::{HeaderName, HeaderValue, Response, header};
use http_body_util::BodyExt;
use tokio::time::Instant;

use super::parse::{Expect, RequestError};
use super::read::Call;
use super::{RequestCtx, authorize, model, respond};
use crate::body::Body;
use crate::error::GatewayError;
use crate::state::AppState;

/// Most models one request may name.
pub const MAX_MODELS: usize = 16;

static FASTEST: HeaderName = HeaderName::from_static("x-tianji-fastest_response_batch_completion");
static COST: HeaderName = HeaderName::from_static("x-tianji-response-cost");

/// Whether the request asks for several models: a chat request whose model has a comma.
pub fn wanted(call: &Call, model: &str) -> bool {
    call.expect == Expect::Chat && model.contains(',')
}

/// Serve the request (its stages up to `model` done, noted in `outer`).
pub async fn serve(state: &AppState, call: Call, mut outer: RequestCtx) -> Response<Body> {
    let models = match admit(state, &call, &outer).await {
        Ok(models) => models,
        Err(e) => return respond::respond(Err(e), &mut outer).await,
    };
    let like = Like::of(&outer);
    let runs: Vec<_> = (models.into_iter())
        .map(|(m, alias)| one(state, copy(&call), m, alias, like))
        .collect();
    let resp = if call.parsed.controls.fastest_response {
        fastest(runs).await
    } else {
        all(runs, &mut outer).await
    };
    outer.completion.status = resp.status().as_u16();
    resp
}

/// The models named (each through the caller's aliases, with the name asked for when a team
/// alias mapped it), once the caller is known to be allowed all of them.
async fn admit(
    state: &AppState,
    call: &Call,
    outer: &RequestCtx,
) -> Result<Vec<(String, Option<String>)>, GatewayError> {
    let bad = |m: String| GatewayError::from(RequestError::BadValue(m));
    let names: Vec<&str> = outer.model.split(',').map(str::trim).collect();
    if names.iter().any(|n| n.is_empty()) {
        return Err(bad("`model` lists an empty model name".into()));
    }
    if names.len() > MAX_MODELS {
        return Err(bad(format!(
            "`model` lists {} models; at most {MAX_MODELS} may be asked at once",
            names.len()
        )));
    }
    let controls = call.parsed.controls;
    if call.parsed.stream && !controls.fastest_response {
        return Err(bad(
            "`stream` needs `fastest_response: true` when `model` lists several models".into(),
        ));
    }
    let end_user = authorize::end_user_of(call);
    let mut models = Vec::with_capacity(names.len());
    for name in names {
        let (m, alias) = model::aliased(&call.principal, name.to_string());
        authorize::grant_model(state, call, &m, alias.as_deref(), end_user.as_deref()).await?;
        models.push((m, alias));
    }
    Ok(models)
}

/// What each request takes over from the one that named them all.
#[derive(Clone, Copy)]
struct Like {
    route: &'static str,
    admin: bool,
    stream: bool,
    prompt_estimate: u64,
}

impl Like {
    fn of(ctx: &RequestCtx) -> Self {
        Self {
            route: ctx.completion.route,
            admin: ctx.admin,
            stream: ctx.completion.stream,
            prompt_estimate: ctx.completion.prompt_estimate,
        }
    }
}

/// The request for one model, answered as a request of its own.
async fn one(
    state: &AppState,
    call: Call,
    model: String,
    team_alias: Option<String>,
    like: Like,
) -> Response<Body> {
    let mut ctx = RequestCtx::new(like.route);
    ctx.admin = like.admin;
    ctx.completion.stream = like.stream;
    ctx.completion.prompt_estimate = like.prompt_estimate;
    ctx.model = model;
    ctx.team_alias = team_alias;
    let result = super::llm(state, call, &mut ctx).await;
    respond::respond(result, &mut ctx).await
}

fn copy(call: &Call) -> Call {
    Call {
        principal: call.principal.clone(),
        headers: call.headers.clone(),
        parsed: call.parsed.clone(),
        upload: None,
        expect: call.expect,
        peer: call.peer,
        models: call.models.clone(),
    }
}

/// The first answer that succeeds (the others are cancelled); the last failure when none does.
async fn fastest<F>(runs: Vec<F>) -> Response<Body>
where
    F: Future<Output = Response<Body>>,
{
    let tries = runs.into_iter().map(|run| {
        Box::pin(async move {
            let r = run.await;
            if r.status().is_success() {
                Ok(r)
            } else {
                Err(r)
            }
        })
    });
    match select_ok(tries).await {
        Ok((mut r, _cancelled)) => {
            r.headers_mut()
                .insert(FASTEST.clone(), HeaderValue::from_static("True"));
            r
        }
        Err(r) => r,
    }
}

/// Every answer, as one list (with their costs added up); the first failure when all failed.
async fn all<F>(runs: Vec<F>, outer: &mut RequestCtx) -> Response<Body>
where
    F: Future<Output = Response<Body>>,
{
    let waited = Instant::now();
    let answers = join_all(runs).await;
    outer.upstream_elapsed = waited.elapsed();
    if !answers.iter().any(|r| r.status().is_success()) {
        if let Some(first) = answers.into_iter().next() {
            return first;
        }
        let e = GatewayError::Internal("no model to ask".into());
        return respond::respond(Err(e), outer).await;
    }
    let cost: f64 = (answers.iter())
        .filter_map(|r| r.headers().get(&COST)?.to_str().ok()?.parse::<f64>().ok())
        .sum();
    let mut resp = respond::respond(joined(answers).await, outer).await;
    if let Ok(v) = HeaderValue::from_str(&cost.to_string()) {
        resp.headers_mut().insert(COST.clone(), v);
    }
    resp
}

/// The answers' bodies (JSON, answers or errors) as one JSON list.
async fn joined(answers: Vec<Response<Body>>) -> Result<Response<Body>, GatewayError> {
    let mut list = BytesMut::from(&b"["[..]);
    for (i, r) in answers.into_iter().enumerate() {
        let body: Bytes = (r.into_body().collect().await)
            .map_err(|e| GatewayError::Internal(format!("reading an answer: {e}")))?
            .to_bytes();
        if i > 0 {
            list.extend_from_slice(b",");
        }
        list.extend_from_slice(&body);
    }
    list.extend_from_slice(b"]");
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::full(list.freeze()))
        .map_err(|e| GatewayError::Internal(e.to_string()))
}
