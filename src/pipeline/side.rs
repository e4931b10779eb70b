//! Admission and record of a call outside the LLM pipeline (files, batches, fine-tuning,
//! search, pass-through): the caller's blocks, model access, rate limits and budgets are
//! checked as for an LLM call, and a SpendLogs row with the call's `call_type` and `endpoint`
//! is written when the returned record is dropped.

use std::sync::Arc;

use super::RequestCtx;
use super::post::Completion;
use crate::auth::Principal;
use crate::auth::access::{AccessGroups, Ask, authorize, budget_error};
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

/// Every model: budgets and blocks are checked, model lists are not.
struct AnyModel;

impl AccessGroups for AnyModel {
    fn grants(&self, _: &str, _: &str) -> bool {
        true
    }
}

/// Admit the call and start its record (set its `status`, and its `usage` when the answer
/// tells; it costs 0 unless usage and a price are known).
pub async fn side_call(
    state: &AppState,
    principal: &Principal,
    side: Side<'_>,
) -> Result<Completion, GatewayError> {
    use crate::spend::record::{Caller, SpendRow};
    let table = state.models.load_full();
    let groups: &dyn AccessGroups = if side.model_access {
        &*table
    } else {
        &AnyModel
    };
    let ask = Ask {
        model: side.model,
        end_user: None,
        groups,
    };
    let granted = authorize(state.auth.directory(), principal, ask).await?;

    let ctx = RequestCtx::new(side.call_type);
    let mut c = ctx.completion;
    let ds = crate::limits::descriptors(&crate::limits::Subject {
        principal,
        model: side.model,
        end_user: None,
        deployment: side.dep.as_deref(),
        global_parallel: state.global_max_parallel,
    });
    if side.rate_limited && !ds.is_empty() {
        c.limits = state.limits.acquire(ds, 0).await?;
    }
    let reservation = state
        .spend
        .ledger
        .admit(granted.lines, 0.0)
        .map_err(|(e, lines)| {
            budget_error(
                state.auth.budget_status,
                principal,
                &lines[e.index],
                e.current,
            )
        })?;

    c.model = Some(side.model.to_string());
    c.deployment = side.dep;
    let slot = state.spend.slot().await;
    let row = slot.is_some().then(|| {
        let caller = Caller::of(principal, state.auth.master_hash());
        Box::new(SpendRow {
            request_id: ctx.call_id,
            call_type: side.call_type,
            endpoint: side.endpoint,
            caller,
            start_time: crate::spend::unix(ctx.wall_start),
            model_group: side.model.to_string(),
            ..Default::default()
        })
    });
    c.spend = Some((
        crate::spend::Ticket {
            spend: state.spend.clone(),
            slot,
            reservation,
        },
        row,
    ));
    Ok(c)
}
