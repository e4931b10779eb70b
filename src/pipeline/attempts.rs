//! Stage `attempts`, for an admitted request: the router chooses a deployment, the call is made,
//! the outcome feeds the router (latency, failures, cooldowns); a failure is retried on another
//! deployment of the group (`num_retries`, `retry_policy`) and then falls back to other model
//! groups (`fallbacks`, `context_window_fallbacks`, `content_policy_fallbacks`,
//! `default_fallbacks`, at most `max_fallbacks`). Streams fall back only before their first byte,
//! since a stream's head is awaited before the answer starts. The request's own controls
//! ([`super::controls`]) set its `num_retries` and `timeout`, and its testing members make up
//! failures instead of calling (never reported to the router: no deployment failed).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Response};
use tokio::time::Instant;

use super::RequestCtx;
use super::call::{self, Attempt};
use super::controls::{CallControls, MockFailure};
use super::read::Call;
use super::route::{Routed, next_fallback, within_budget};
use crate::body::Body;
use crate::error::GatewayError;
use crate::observability::traces;
use crate::router::balancer::{Ask, InFlight};
use crate::router::policy::{ErrorClass, Policy};
use crate::router::{Deployment, Group, RouteError};
use crate::state::AppState;
use crate::upstream::UpstreamError;

/// Seconds the client allows this request (`x-tianji-timeout`, or LiteLLM's
/// `x-litellm-timeout`): each attempt's `timeout` and `stream_timeout`.
fn request_timeout(headers: &HeaderMap) -> Option<Duration> {
    static NAMES: [http::HeaderName; 2] = [
        http::HeaderName::from_static("x-tianji-timeout"),
        http::HeaderName::from_static("x-litellm-timeout"),
    ];
    NAMES
        .iter()
        .find_map(|h| headers.get(h))
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
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments in its future beside the copies its body moves them into"
)]
pub fn run(
    state: &AppState,
    mut call: Call,
    routed: Routed,
    ctx: &mut RequestCtx,
) -> impl std::future::Future<Output = Result<Response<Body>, GatewayError>> {
    async move {
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
        let controls = call.parsed.controls;
        let timeout = request_timeout(&call.headers).or(controls.timeout);
        let again = policy.may_try_again() || controls.may_try_again();
        let model = std::mem::take(&mut ctx.model);
        ctx.max_retries = policy.retries_with(&model, ErrorClass::Server, controls.num_retries);
        let mut at = Position {
            original: model.clone(),
            model,
            group,
            dep,
            tried: Vec::new(),
            retries: 0,
            fallbacks: None,
            controls,
        };
        loop {
            let dep = at.dep.clone();
            at.note(ctx);
            let timed = timed(&dep, timeout);
            ctx.timeout = Some(timed.timeout);
            let (result, to_fallbacks) = match at.made_up(&policy, &timed).await {
                Some((e, to_fallbacks)) => (Err(e), to_fallbacks),
                None => (
                    Box::pin(once(state, &policy, &at, &mut call, again, &timed, ctx)).await,
                    false,
                ),
            };
            let e = match result {
                Ok(resp) => return Ok(resp),
                Err(e) => e,
            };
            // the upload was streamed to the provider: it cannot be sent again
            let (Some(class), false) = (class_of(&e), uploading) else {
                return Err(e);
            };
            at.tried.push(dep);
            let retried = !to_fallbacks && at.retry(state, &policy, ask, &e, class, ctx).await;
            if !retried && !at.fall_back(state, &policy, &call, ask, class, ctx).await {
                return Err(e);
            }
        }
    }
}

/// One attempt on `dep` (the position's deployment with the request's time limit), reported
/// to the router.
async fn once(
    state: &AppState,
    policy: &Policy,
    at: &Position,
    call: &mut Call,
    again: bool,
    dep: &Arc<Deployment>,
    ctx: &mut RequestCtx,
) -> Result<Response<Body>, GatewayError> {
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
    let (span, up) = super::traced::attempt(dep, ctx);
    let result =
        traces::upstream_scope(up, Box::pin(call::attempt(state, dep, attempt, ctx))).await;
    super::traced::attempted(span, &result);
    let class = result.as_ref().err().and_then(class_of);
    if (state.router).report(policy, &at.dep, at.group.len(), class, t0.elapsed()) {
        let d = &at.dep;
        (state.alerts).cooldown(
            &d.id,
            &d.model_name,
            &d.api_base_shown,
            policy.cooldown_time,
        );
    }
    result
}

/// The error a testing member makes up for `group` (LiteLLM's messages).
fn mock_error(kind: MockFailure, group: &str, policy: &Policy) -> GatewayError {
    let (status, code, class, list) = match kind {
        MockFailure::RateLimit => {
            let message = format!(
                "This is a mock exception for model={group}, to trigger a rate limit error."
            );
            return status_error(429, None, message);
        }
        MockFailure::Fallbacks => (500, None, ErrorClass::Server, "Fallbacks"),
        MockFailure::ContextWindow => (
            400,
            Some("context_length_exceeded"),
            ErrorClass::ContextWindow,
            "Context_Window_Fallbacks",
        ),
        MockFailure::ContentPolicy => (
            400,
            Some("content_policy_violation"),
            ErrorClass::ContentPolicy,
            "Content_Policy_Fallbacks",
        ),
    };
    let fallbacks = policy.fallbacks_for(group, class);
    let message = format!(
        "This is a mock exception for model={group}, to trigger a fallback. {list}={fallbacks:?}"
    );
    status_error(status, code, message)
}

fn status_error(status: u16, code: Option<&'static str>, message: String) -> GatewayError {
    GatewayError::Upstream(UpstreamError::Status {
        status: http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY),
        message,
        kind: None,
        param: None,
        code,
        provider_code: None,
        retry_after: None,
    })
}

/// `dep` with the client's own timeout, when it set one.
fn timed(dep: &Arc<Deployment>, timeout: Option<Duration>) -> Arc<Deployment> {
    match timeout {
        Some(t) => Arc::new(Deployment {
            timeout: t,
            stream_timeout: t,
            timeout_header: crate::router::timeout_header(t),
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
    /// The request's own retries and testing members (its made-up failure, until made).
    controls: CallControls,
}

impl Position {
    /// Note the attempt about to be made on `self.dep` in `ctx` (and its record).
    fn note(&self, ctx: &mut RequestCtx) {
        let dep = &self.dep;
        ctx.outward = None;
        ctx.deployment = Some(dep.clone());
        ctx.completion.deployment = Some(dep.clone());
        ctx.completion.model = Some(self.model.clone());
        if ctx.completion.in_flight.is_none() {
            ctx.completion.in_flight = Some(InFlight::new(&dep.stats));
        }
    }

    /// The failure the request's testing members make up instead of this attempt on `dep`, and
    /// whether it goes straight to the fallbacks (LiteLLM raises those above the retries): the
    /// first attempt's `mock_testing_*` failure; with `mock_timeout`, every attempt in the group
    /// asked for, once its time limit has passed.
    async fn made_up(&mut self, policy: &Policy, dep: &Deployment) -> Option<(GatewayError, bool)> {
        if let Some(kind) = self.controls.mock_failure.take() {
            let to_fallbacks = kind != MockFailure::RateLimit;
            return Some((mock_error(kind, &self.model, policy), to_fallbacks));
        }
        if !self.controls.mock_timeout || self.model != self.original {
            return None;
        }
        tokio::time::sleep(dep.timeout).await;
        Some((
            UpstreamError::Timeout(dep.timeout.as_secs_f64()).into(),
            false,
        ))
    }

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
        let allowed = policy.retries_with(&self.model, class, self.controls.num_retries);
        ctx.max_retries = allowed;
        if self.retries >= allowed {
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
        // boxed: only a request falling back carries (and copies) the fallbacks' look-ups
        let next = Box::pin(next_fallback(
            state,
            policy,
            &call.principal,
            end_user,
            queue,
            ask,
        ))
        .await;
        let Some((name, group, next)) = next else {
            return false;
        };
        ctx.completion.in_flight = Some(InFlight::new(&next.stats));
        tracing::debug!(from = %self.model, to = %name, "falling back");
        state.alerts.fallback(&self.model, &name, class);
        ctx.attempted_fallbacks += 1;
        self.model = name;
        self.group = group;
        self.dep = next;
        self.retries = 0;
        self.tried.clear();
        true
    }
}
