//! Stage `authorize`: the caller may use the model group (no blocked key, team, user or end
//! user; model access), and may set the cache controls the request carries; the regions its
//! deployments must be in are noted. Returns the budgets the caller is subject to. [`grant`] is the same check for side calls and budget
//! fallbacks.

use super::RequestCtx;
use super::read::Call;
use crate::auth::Principal;
use crate::auth::access::{AccessGroups, Ask, Granted};
use crate::error::GatewayError;
use crate::state::AppState;

/// Authorize the LLM request; note its end user and cache controls in `ctx`.
pub async fn authorize(
    state: &AppState,
    call: &Call,
    ctx: &mut RequestCtx,
) -> Result<Granted, GatewayError> {
    let headers = &call.headers;
    ctx.end_user = call.parsed.end_user.clone().or_else(|| {
        headers
            .get("x-tianji-end-user-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    let end_user = ctx.end_user.as_deref();
    let granted = grant(state, &call.principal, &ctx.model, end_user, &*call.models).await?;
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
