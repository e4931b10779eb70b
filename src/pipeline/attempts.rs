//! Attempts of one admitted request: the router chooses a deployment, the call is made, the
//! outcome feeds the router (latency, failures, cooldowns); a failure is retried on another
//! deployment of the group (`num_retries`, `retry_policy`) and then falls back to other model
//! groups (`fallbacks`, `context_window_fallbacks`, `content_policy_fallbacks`,
//! `default_fallbacks`, at most `max_fallbacks`). Streams fall back only before their first
//! byte, since a stream's head is awaited before the answer starts.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Response};
use tokio::time::Instant;

use super::multipart::Upload;
use super::parse::{Expect, ParsedRequest};
use super::{RequestCtx, dispatch};
use crate::auth::Principal;
use crate::body::Body;
use crate::error::GatewayError;
use crate::router::balancer::{Ask, InFlight};
use crate::router::policy::{ErrorClass, Policy};
use crate::router::{Deployment, Group, RouteError};
use crate::state::AppState;

/// An admitted request and its first deployment.
pub struct Request<'a> {
    pub parsed: ParsedRequest,
    pub expect: Expect,
    /// The model group the first deployment belongs to.
    pub model: String,
    pub principal: &'a Principal,
    pub headers: &'a HeaderMap,
    pub end_user: Option<String>,
    pub upload: Option<Upload>,
    pub group: Group,
    pub dep: Arc<Deployment>,
    pub policy: Arc<Policy>,
    pub tags: Vec<String>,
}

/// The request's tags for tag routing (`tags` in the body, then `x-tianji-tags`), read only
/// when `enable_tag_filtering` is on.
pub fn request_tags(policy: &Policy, parsed: &ParsedRequest, headers: &HeaderMap) -> Vec<String> {
    if !policy.enable_tag_filtering {
        return Vec::new();
    }
    let mut tags = parsed.tags.clone();
    for v in headers.get_all("x-tianji-tags") {
        if let Ok(s) = v.to_str() {
            tags.extend(
                s.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string),
            );
        }
    }
    tags
}

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

/// The group's deployments whose provider is within its `provider_budget_config` budget.
fn within_budget(state: &AppState, group: &Group) -> Result<Group, RouteError> {
    let Some(pb) = &state.spend.providers else {
        return Ok(group.clone());
    };
    let mut refusal = None;
    let open: Vec<Arc<Deployment>> = group
        .iter()
        .filter(|d| match pb.over(d.provider.name()) {
            Some((spend, max_budget)) => {
                refusal.get_or_insert(RouteError::ProviderBudget {
                    provider: d.provider.name().to_string(),
                    spend,
                    max_budget,
                });
                false
            }
            None => true,
        })
        .cloned()
        .collect();
    match (open.is_empty(), refusal) {
        (true, Some(e)) => Err(e),
        _ => Ok(Group::from(open)),
    }
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

/// The first deployment for `model`: chosen by the router, else (the whole group cooling
/// down, or too small for the prompt) from the first fallback group that has one. Returns
/// the group it belongs to and how many fallbacks that took.
#[allow(clippy::too_many_arguments)]
pub async fn first(
    state: &AppState,
    policy: &Policy,
    principal: &Principal,
    end_user: Option<&str>,
    model: &str,
    group: &Group,
    pinned: Option<Arc<Deployment>>,
    ask: Ask<'_>,
) -> Result<(String, Group, Arc<Deployment>, u32), GatewayError> {
    if let Some(d) = pinned {
        return Ok((model.to_string(), group.clone(), d, 0));
    }
    let open = within_budget(state, group)?;
    let e = match state.router.choose(policy, model, &open, &[], ask) {
        Ok(d) => return Ok((model.to_string(), group.clone(), d, 0)),
        Err(e) => GatewayError::from(e),
    };
    let Some(class) = class_of(&e) else {
        return Err(e);
    };
    let mut queue: VecDeque<String> = policy.fallbacks_for(model, class).into();
    match next_fallback(state, policy, principal, end_user, &mut queue, ask).await {
        Some((name, group, dep)) => Ok((name, group, dep, 1)),
        None => Err(e),
    }
}

/// The next fallback group in `queue` the caller may use and the router has a deployment of.
async fn next_fallback(
    state: &AppState,
    policy: &Policy,
    principal: &Principal,
    end_user: Option<&str>,
    queue: &mut VecDeque<String>,
    ask: Ask<'_>,
) -> Option<(String, Group, Arc<Deployment>)> {
    let table = state.models.load_full();
    while let Some(name) = queue.pop_front() {
        let allowed = crate::auth::access::authorize(
            state.auth.directory(),
            principal,
            crate::auth::access::Ask {
                model: &name,
                end_user,
                groups: &*table,
            },
        )
        .await;
        if allowed.is_err() {
            tracing::debug!(fallback = %name, "fallback skipped: the caller may not use it");
            continue;
        }
        let Ok(resolved) = table.resolve(&name) else {
            tracing::debug!(fallback = %name, "fallback skipped: no such model group");
            continue;
        };
        let Ok(open) = within_budget(state, &resolved.group) else {
            continue;
        };
        if let Ok(dep) = state.router.choose(policy, &name, &open, &[], ask) {
            return Some((name, resolved.group, dep));
        }
    }
    None
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
    mut r: Request<'_>,
    ctx: &mut RequestCtx,
) -> Result<Response<Body>, GatewayError> {
    let policy = r.policy.clone();
    let ask_tags = std::mem::take(&mut r.tags);
    let ask = Ask {
        tags: &ask_tags,
        prompt_tokens: r.parsed.raw.len() as u64 / 4,
    };
    let uploading = r.upload.is_some();
    let timeout = request_timeout(r.headers);
    let again = policy.may_try_again();
    let original = r.model.clone();
    let mut tried: Vec<Arc<Deployment>> = Vec::new();
    let mut retries = 0u32;
    let mut fallbacks: Option<VecDeque<String>> = None;
    loop {
        let dep = r.dep.clone();
        ctx.outward = None;
        ctx.deployment = Some(dep.clone());
        ctx.completion.deployment = Some(dep.clone());
        ctx.completion.model = Some(r.model.clone());
        if ctx.completion.in_flight.is_none() {
            ctx.completion.in_flight = Some(InFlight::new(&dep.stats));
        }
        let t0 = Instant::now();
        let call = match timeout {
            Some(t) => Arc::new(Deployment {
                timeout: t,
                stream_timeout: t,
                ..(*dep).clone()
            }),
            None => dep.clone(),
        };
        let result = dispatch(
            state,
            &call,
            // a copy only when another attempt may need the request again
            if again {
                r.parsed.clone()
            } else {
                std::mem::take(&mut r.parsed)
            },
            r.expect,
            &r.model,
            r.principal,
            r.headers,
            r.upload.take(),
            ctx,
        )
        .await;
        let class = result.as_ref().err().and_then(class_of);
        state
            .router
            .report(&policy, &dep, r.group.len(), class, t0.elapsed());
        let e = match result {
            Ok(resp) => return Ok(resp),
            Err(e) => e,
        };
        let Some(class) = class else {
            return Err(e);
        };
        if uploading {
            // the upload was streamed to the provider: it cannot be sent again
            return Err(e);
        }
        tried.push(dep.clone());

        // again within the group
        if retries < policy.retries(&r.model, class) {
            let open = within_budget(state, &r.group).unwrap_or_else(|_| r.group.clone());
            if let Ok(next) = state.router.choose(&policy, &r.model, &open, &tried, ask) {
                ctx.completion.in_flight = Some(InFlight::new(&next.stats));
                retries += 1;
                ctx.attempted_retries += 1;
                let wait = wait_before(&policy, &e, Arc::ptr_eq(&next, &dep), retries);
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                tracing::debug!(model = %r.model, from = %dep.id, to = %next.id, retry = retries, "retrying");
                r.dep = next;
                continue;
            }
        }

        // then another group
        let queue = fallbacks.get_or_insert_with(|| policy.fallbacks_for(&original, class).into());
        match next_fallback(
            state,
            &policy,
            r.principal,
            r.end_user.as_deref(),
            queue,
            ask,
        )
        .await
        {
            Some((name, group, next)) => {
                ctx.completion.in_flight = Some(InFlight::new(&next.stats));
                tracing::debug!(from = %r.model, to = %name, "falling back");
                ctx.attempted_fallbacks += 1;
                r.model = name;
                r.group = group;
                r.dep = next;
                retries = 0;
                tried.clear();
            }
            None => return Err(e),
        }
    }
}
