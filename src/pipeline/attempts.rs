//! Stage `attempts`, for an admitted request: the router chooses a deployment, the call is made,
//! the outcome feeds the router (latency, failures, cooldowns); a failure is retried on another
//! deployment of the group (`num_retries`, `retry_policy`) and then falls back to other model
//! groups (`fallbacks`, `context_window_fallbacks`, `content_policy_fallbacks`,
//! `default_fallbacks`, at most `max_fallbacks`). Streams fall back only before their first byte,
//! since a stream's head is awaited before the answer starts.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Response};
use tokio::time::Instant;

use super::RequestCtx;
use super::call::{self, Attempt};
use super::read::Call;
use super::route::{Routed, next_fallback, within_budget};
use crate::body::Body;
use crate::error::GatewayError;
use crate::router::balancer::{Ask, InFlight};
use crate::router::policy::{ErrorClass, Policy};
use crate::router::{Deployment, Group, RouteError};
use crate::state::AppState;

/// Seconds the client allows this request (`x-tianji-timeout`, or LiteLLM's
/// `x-litellm-timeout`): each attempt's `timeout` and `stream_timeout`.
fn request_timeout(headers: &HeaderMap) -> Option<Duration> {
    ["x-tianji-timeout", "x-litellm-timeout"]
        .iter()
        .find_map(|h| headers.get(*h))
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// How a failed attempt counts for the router; `None` for errors that are not about the
/// deployment or the provider (the request itself was refused).
pub(super) fn class_of(e: &GatewayError) -> Option<ErrorClass> {
    match e {
        GatewayError::Upstream(u) => Some(ErrorClass::of(
            u.status().as_u16(),
            u.code(),
            &u.error_type(),
        )),
        GatewayError::Route(RouteError::ContextWindow { .. }) => Some(ErrorClass::ContextWindow),
        GatewayError::Route(RouteError::CoolingDown { .. }) => Some(ErrorClass::RateLimit),
        _ => None,
    }
}

/// How long to wait before retrying: the policy's `retry_after`; on the same deployment (the
/// only one left) also the provider's `Retry-After` or an exponential backoff (capped).
fn wait_before(policy: &Policy, e: &GatewayError, same: bool, retry: u32) -> Duration {
    let least = policy.min_retry_wait();
    if !same {
        return least;
    }
    let hinted = match e {
        GatewayError::Upstream(u) => u
            .retry_after()
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .and_then(|s| Duration::try_from_secs_f64(s).ok()),
        _ => None,
    };
    let backoff = Duration::from_millis(250u64.saturating_mul(1 << retry.min(5)));
    least
        .max(hinted.unwrap_or(backoff))
        .min(Duration::from_secs(10))
}

/// Make the attempts until one answers, the retries and fallbacks run out, or the failure is
/// the request's own.
pub async fn run(
    state: &AppState,
    mut call: Call,
    routed: Routed,
    ctx: &mut RequestCtx,
) -> Result<Response<Body>, GatewayError> {
    let Routed {
        group,
        dep,
        policy,
        tags,
    } = routed;
    let ask = Ask {
        tags: &tags,
        prompt_tokens: call.parsed.raw.len() as u64 / 4,
    };
    let uploading = call.upload.is_some();
    let timeout = request_timeout(&call.headers);
    let again = policy.may_try_again();
    let model = std::mem::take(&mut ctx.model);
    let mut at = Position {
        original: model.clone(),
        model,
        group,
        dep,
        tried: Vec::new(),
        retries: 0,
        fallbacks: None,
    };
    loop {
        let dep = at.dep.clone();
        ctx.outward = None;
        ctx.deployment = Some(dep.clone());
        ctx.completion.deployment = Some(dep.clone());
        ctx.completion.model = Some(at.model.clone());
        if ctx.completion.in_flight.is_none() {
            ctx.completion.in_flight = Some(InFlight::new(&dep.stats));
        }
        let t0 = Instant::now();
        let attempt = Attempt {
            // a copy only when another attempt may need the request again
            parsed: if again {
                call.parsed.clone()
            } else {
                std::mem::take(&mut call.parsed)
            },
            expect: call.expect,
            model: &at.model,
            principal: &call.principal,
            headers: &call.headers,
            upload: call.upload.take(),
        };
        let result = call::attempt(state, &timed(&dep, timeout), attempt, ctx).await;
        let class = result.as_ref().err().and_then(class_of);
        (state.router).report(&policy, &dep, at.group.len(), class, t0.elapsed());
        let e = match result {
            Ok(resp) => return Ok(resp),
            Err(e) => e,
        };
        // the upload was streamed to the provider: it cannot be sent again
        let (Some(class), false) = (class, uploading) else {
            return Err(e);
        };
        at.tried.push(dep);
        if !at.retry(state, &policy, ask, &e, class, ctx).await
            && !at.fall_back(state, &policy, &call, ask, class, ctx).await
        {
            return Err(e);
        }
    }
}

/// `dep` with the client's own timeout, when it set one.
fn timed(dep: &Arc<Deployment>, timeout: Option<Duration>) -> Arc<Deployment> {
    match timeout {
        Some(t) => Arc::new(Deployment {
            timeout: t,
            stream_timeout: t,
            ..(**dep).clone()
        }),
        None => dep.clone(),
    }
}

/// Where the attempts are: the next one's group and deployment, and what was tried.
struct Position {
    /// The model group asked for, whose fallbacks apply.
    original: String,
    model: String,
    group: Group,
    dep: Arc<Deployment>,
    /// The deployments of `group` tried.
    tried: Vec<Arc<Deployment>>,
    retries: u32,
    /// The fallback groups left, once the first fallback is looked for.
    fallbacks: Option<VecDeque<String>>,
}

impl Position {
    /// Again within the group, while retries are left: another deployment (after the wait the
    /// failure calls for).
    async fn retry(
        &mut self,
        state: &AppState,
        policy: &Policy,
        ask: Ask<'_>,
        e: &GatewayError,
        class: ErrorClass,
        ctx: &mut RequestCtx,
    ) -> bool {
        if self.retries >= policy.retries(&self.model, class) {
            return false;
        }
        let open = within_budget(state, &self.group).unwrap_or_else(|_| self.group.clone());
        let Ok(next) = (state.router).choose(policy, &self.model, &open, &self.tried, ask) else {
            return false;
        };
        ctx.completion.in_flight = Some(InFlight::new(&next.stats));
        self.retries += 1;
        ctx.attempted_retries += 1;
        let wait = wait_before(policy, e, Arc::ptr_eq(&next, &self.dep), self.retries);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        tracing::debug!(model = %self.model, from = %self.dep.id, to = %next.id, retry = self.retries, "retrying");
        self.dep = next;
        true
    }

    /// Then another group: the next fallback the caller may use and the router has a
    /// deployment of.
    async fn fall_back(
        &mut self,
        state: &AppState,
        policy: &Policy,
        call: &Call,
        ask: Ask<'_>,
        class: ErrorClass,
        ctx: &mut RequestCtx,
    ) -> bool {
        let original = &self.original;
        let queue =
            (self.fallbacks).get_or_insert_with(|| policy.fallbacks_for(original, class).into());
        let end_user = ctx.end_user.as_deref();
        let next = next_fallback(state, policy, &call.principal, end_user, queue, ask).await;
        let Some((name, group, next)) = next else {
            return false;
        };
        ctx.completion.in_flight = Some(InFlight::new(&next.stats));
        tracing::debug!(from = %self.model, to = %name, "falling back");
        ctx.attempted_fallbacks += 1;
        self.model = name;
        self.group = group;
        self.dep = next;
        self.retries = 0;
        self.tried.clear();
        true
    }
}
