//! Stage `route`: the router picks the request's first deployment in its model group (the one
//! a Responses API `previous_response_id` pins, else by the routing strategy among those whose
//! provider is within its budget), or in the first fallback group that has one when the whole
//! group is cooling down or too small for the prompt. Only deployments of the request's
//! `allowed_model_region` count, here and in the groups the attempts stage retries and falls
//! back in. The attempts stage picks the next ones with the same functions.

use std::collections::VecDeque;
use std::sync::Arc;

use http::HeaderMap;

use super::RequestCtx;
use super::attempts::class_of;
use super::parse::ParsedRequest;
use super::read::Call;
use crate::auth::Principal;
use crate::auth::access::allowed_regions;
use crate::error::GatewayError;
use crate::router::balancer::{Ask, InFlight};
use crate::router::policy::{ErrorClass, Policy};
use crate::router::{Deployment, Group, RouteError, region};
use crate::state::AppState;

/// Where the request goes first, and what routes its next attempts.
pub struct Routed {
    /// The model group of `dep`.
    pub group: Group,
    pub dep: Arc<Deployment>,
    pub policy: Arc<Policy>,
    /// The request's tags, for tag routing.
    pub tags: Vec<String>,
}

/// Route the request: its deployment is noted in `ctx` (and counted in flight at once, so
/// concurrent requests see it), `ctx.model` becomes a fallback group's name if one serves.
pub async fn route(
    state: &AppState,
    call: &Call,
    ctx: &mut RequestCtx,
) -> Result<Routed, GatewayError> {
    let resolved = call.models.resolve(&ctx.model)?;
    let group = region::within(&resolved.group, &ctx.regions);
    let pinned = (ctx.pinned.take()).and_then(|id| group.iter().find(|d| d.id == id).cloned());
    let policy = state.router.policy();
    let tags = request_tags(&policy, &call.parsed, &call.headers);
    let ask = Ask {
        tags: &tags,
        prompt_tokens: call.parsed.raw.len() as u64 / 4,
    };
    let end_user = ctx.end_user.as_deref();
    let (model, group, dep, fell_back) = first(
        state,
        &policy,
        &call.principal,
        end_user,
        &ctx.model,
        &group,
        pinned,
        ask,
    )
    .await
    .map_err(|e| in_region(e, &group, &ctx.model, &ctx.regions))?;
    ctx.completion.in_flight = Some(InFlight::new(&dep.stats));
    ctx.attempted_fallbacks = fell_back;
    ctx.completion.model = Some(model.clone());
    ctx.completion.deployment = Some(dep.clone());
    ctx.deployment = Some(dep.clone());
    ctx.model = model;
    Ok(Routed {
        group,
        dep,
        policy,
        tags,
    })
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

/// The group's deployments whose provider is within its `provider_budget_config` budget.
pub(super) fn within_budget(state: &AppState, group: &Group) -> Result<Group, RouteError> {
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

/// A group left empty by the request's regions answers with LiteLLM's error naming them.
fn in_region(e: GatewayError, group: &Group, model: &str, regions: &[String]) -> GatewayError {
    if !group.is_empty() || regions.is_empty() {
        return e;
    }
    RouteError::NoRegionDeployment {
        model: model.to_string(),
        region: regions.join(","),
    }
    .into()
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
    // no deployment in the request's regions: a rate-limit error, as LiteLLM's router says
    let class = class_of(&e).or_else(|| group.is_empty().then_some(ErrorClass::RateLimit));
    let Some(class) = class else {
        return Err(e);
    };
    let mut queue: VecDeque<String> = policy.fallbacks_for(model, class).into();
    // boxed: only a request falling back carries (and copies) the fallbacks' look-ups
    match Box::pin(next_fallback(
        state, policy, principal, end_user, &mut queue, ask,
    ))
    .await
    {
        Some((name, group, dep)) => Ok((name, group, dep, 1)),
        None => Err(e),
    }
}

/// The next fallback group in `queue` the caller may use and the router has a deployment of.
pub(super) async fn next_fallback(
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
        let Ok(granted) = allowed else {
            tracing::debug!(fallback = %name, "fallback skipped: the caller may not use it");
            continue;
        };
        let Ok(resolved) = table.resolve(&name) else {
            tracing::debug!(fallback = %name, "fallback skipped: no such model group");
            continue;
        };
        let regions = allowed_regions(principal, granted.end_user.as_deref());
        let group = region::within(&resolved.group, &regions);
        let Ok(open) = within_budget(state, &group) else {
            continue;
        };
        if let Ok(dep) = state.router.choose(policy, &name, &open, &[], ask) {
            return Some((name, group, dep));
        }
    }
    None
}
