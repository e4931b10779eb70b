//! Admission and record of a call outside the LLM pipeline (files, batches, fine-tuning,
//! search, pass-through): the caller's blocks, model access, rate limits and budgets are
//! checked by the LLM request's own stages (`authorize`, `limits`, `budget`), and a SpendLogs
//! row with the call's `call_type` and `endpoint` is written when the returned record is
//! dropped.

use std::sync::Arc;

use super::RequestCtx;
use super::agent::AgentCall;
use super::authorize::AnyModel;
use super::post::Completion;
use super::{authorize, budget, limits};
use crate::auth::Principal;
use crate::auth::access::AccessGroups;
use crate::error::GatewayError;
use crate::router::Deployment;
use crate::state::AppState;

/// What a side call is.
pub struct Side<'a> {
    /// SpendLogs `call_type` (LiteLLM's names: `acreate_file`, `asearch`, ...).
    pub call_type: &'static str,
    /// SpendLogs `endpoint`.
    pub endpoint: &'static str,
    /// The model group, or the tool or path the call is for (SpendLogs `model_group`).
    pub model: &'a str,
    /// The deployment serving the call, when there is one.
    pub dep: Option<Arc<Deployment>>,
    /// Check the caller's model access for `model` (not for tools and pass-through paths).
    pub model_access: bool,
    /// Count the call on the rate limits (not for batch creation, which reserves the whole
    /// batch's requests itself).
    pub rate_limited: bool,
}

impl<'a> Side<'a> {
    /// A call to the deployment `dep` of a model group (model access checked, rate limited).
    pub fn on(dep: &'a Arc<Deployment>, call_type: &'static str, endpoint: &'static str) -> Self {
        Side {
            call_type,
            endpoint,
            model: &dep.model_name,
            dep: Some(dep.clone()),
            model_access: true,
            rate_limited: true,
        }
    }
}

/// Admit the call and start its record (set its `status`, and its `usage` when the answer
/// tells; it costs 0 unless usage and a price are known).
pub async fn side_call(
    state: &AppState,
    principal: &Principal,
    side: Side<'_>,
) -> Result<Completion, GatewayError> {
    admit(state, principal, side, None, 0.0).await
}

/// [`side_call`] for a call whose cost is known before it is made (a video's seconds at the
/// model's price): `worst` USD reserved on the caller's budgets at admission, so a budget that
/// cannot cover it refuses the call.
pub async fn side_call_reserving(
    state: &AppState,
    principal: &Principal,
    side: Side<'_>,
    worst: f64,
) -> Result<Completion, GatewayError> {
    admit(state, principal, side, None, worst).await
}

/// [`side_call`], for `agent` when the call is an A2A agent's (its limits counted too, the row
/// its own).
pub(super) async fn admit(
    state: &AppState,
    principal: &Principal,
    side: Side<'_>,
    mut agent: Option<AgentCall>,
    worst: f64,
) -> Result<Completion, GatewayError> {
    let table = state.models.load_full();
    let groups: &dyn AccessGroups = if side.model_access {
        &*table
    } else {
        &AnyModel
    };
    let granted = authorize::grant(state, principal, side.model, None, groups).await?;

    let mut ctx = RequestCtx::new(side.call_type);
    if side.rate_limited {
        let subject = crate::limits::Subject {
            principal,
            model: side.model,
            end_user: None,
            deployment: side.dep.as_deref(),
            global_parallel: state.global_max_parallel,
        };
        let extra = (agent.as_mut()).map_or_else(Vec::new, |a| std::mem::take(&mut a.limits));
        ctx.completion.limits = limits::acquire(state, &subject, None, 0, extra).await?.held;
    }
    let kind = (side.call_type, side.endpoint);
    ctx.completion.flat_cost = agent.as_ref().map_or(0.0, |a| a.flat_cost);
    ctx.agent = agent;
    budget::reserve(state, principal, granted.lines, worst, &mut ctx, |ctx| {
        let mut row = budget::row(state, principal, ctx, kind, side.model);
        if let Some(a) = &ctx.agent {
            a.mark(&mut row);
        }
        row
    })
    .await?;
    let mut c = ctx.completion;
    c.model = Some(side.model.to_string());
    c.deployment = side.dep;
    Ok(c)
}
