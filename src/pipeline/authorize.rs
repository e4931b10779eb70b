//! Stage `authorize`: the caller may use the model group (no blocked key, team, user or end
//! user; model access: of the model group, or of the name asked for when the team's
//! `model_aliases` mapped it, as LiteLLM grants either), and may set the cache controls the
//! request carries; the regions its deployments must be in are noted. Returns the budgets the
//! caller is subject to. [`grant`] is the same check for side calls and budget fallbacks.

use super::RequestCtx;
use super::read::Call;
use crate::auth::access::{AccessGroups, Ask, Granted};
use crate::auth::{AuthError, Principal};
use crate::error::GatewayError;
use crate::state::AppState;

/// Authorize the LLM request; note its end user and cache controls in `ctx`.
pub async fn authorize(
    state: &AppState,
    call: &Call,
    ctx: &mut RequestCtx,
) -> Result<Granted, GatewayError> {
    let headers = &call.headers;
    ctx.end_user = end_user_of(call);
    if let (Some((_, l)), Some(e)) = (ctx.completion.metrics.as_deref_mut(), &ctx.end_user) {
        l.end_user.clone_from(e);
    }
    let team_alias = ctx.team_alias.as_deref();
    let end_user = ctx.end_user.as_deref();
    let granted = match ctx.agent {
        // an A2A agent's model: the agent grant (checked before) is the access
        Some(_) => grant(state, &call.principal, &ctx.model, end_user, &AnyModel).await?,
        None => grant_model(state, call, &ctx.model, team_alias, end_user).await?,
    };
    ctx.regions =
        crate::auth::access::allowed_regions(&call.principal, granted.end_user.as_deref());
    // per-request cache controls (body and headers), each one the key may set
    let parsed = &call.parsed;
    ctx.controls = match &state.cache {
        Some(_) => Some(crate::cache::Controls::of(
            &parsed.raw,
            !parsed.cache_controls.is_empty(),
            headers,
        )?),
        None => None,
    };
    let header_controls = (ctx.controls.as_ref()).map_or(&[][..], |c| &c.header_names[..]);
    crate::auth::access::check_cache_controls(
        &call.principal,
        (parsed.cache_controls.iter().map(String::as_str)).chain(header_controls.iter().copied()),
    )?;
    Ok(granted)
}

/// Every model: budgets and blocks are checked, model lists are not.
pub(super) struct AnyModel;

impl AccessGroups for AnyModel {
    fn grants(&self, _: &str, _: &str) -> bool {
        true
    }
}

/// The end user the request is for: the one the caller's JWT names, else `user` in the body,
/// else `x-tianji-end-user-id`.
pub fn end_user_of(call: &Call) -> Option<String> {
    if let Some(e) = call.principal.key().and_then(|k| k.end_user.clone()) {
        return Some(e);
    }
    static END_USER: http::HeaderName = http::HeaderName::from_static("x-tianji-end-user-id");
    call.parsed.end_user.clone().or_else(|| {
        (call.headers.get(&END_USER))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    })
}

/// Check the caller of `call` may call model group `model`, or else `team_alias`, the name it
/// asked for that its team's `model_aliases` mapped to `model` (set by a proxy admin).
pub async fn grant_model(
    state: &AppState,
    call: &Call,
    model: &str,
    team_alias: Option<&str>,
    end_user: Option<&str>,
) -> Result<Granted, GatewayError> {
    let (principal, groups) = (&call.principal, &*call.models);
    match (
        grant(state, principal, model, end_user, groups).await,
        team_alias,
    ) {
        (Err(GatewayError::Auth(AuthError::ModelDenied { .. })), Some(asked)) => {
            grant(state, principal, asked, end_user, groups).await
        }
        (r, _) => r,
    }
}

/// Check the caller may call `model` (for `end_user`; model lists from `groups`) and return
/// the budgets it is subject to.
pub async fn grant(
    state: &AppState,
    principal: &Principal,
    model: &str,
    end_user: Option<&str>,
    groups: &dyn AccessGroups,
) -> Result<Granted, GatewayError> {
    let ask = Ask {
        model,
        end_user,
        groups,
    };
    Ok(crate::auth::access::authorize(state.auth.directory(), principal, ask).await?)
}
