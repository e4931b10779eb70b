//! Stage `model budget`: the model budgets that apply to the request (`model_max_budget`) must
//! have room; when one is spent, the key's first budget fallback (`budget_fallbacks`) the
//! caller may use, that exists and is within its own budgets serves instead.

use super::RequestCtx;
use super::authorize::grant;
use super::read::Call;
use crate::auth::access::Granted;
use crate::error::GatewayError;
use crate::state::AppState;

/// Admit the request on its model budgets (booked when its record is finished); may switch
/// `ctx.model` to a budget fallback, whose grant is returned.
pub async fn admit(
    state: &AppState,
    call: &Call,
    granted: Granted,
    ctx: &mut RequestCtx,
) -> Result<Granted, GatewayError> {
    let mb = &state.model_budgets;
    let (principal, table) = (&call.principal, &*call.models);
    let budgets =
        |model: &str, g: &Granted| mb.applicable(principal, model, g.end_user.as_deref(), table);
    let spent = match mb.admit(budgets(&ctx.model, &granted), &ctx.model) {
        Ok(b) => {
            ctx.completion.model_budget = b;
            return Ok(granted);
        }
        Err(spent) => spent,
    };
    for fb in crate::limits::model_budget::fallbacks(principal, &ctx.model) {
        let Ok(g) = grant(state, principal, &fb, ctx.end_user.as_deref(), table).await else {
            continue;
        };
        if table.resolve(&fb).is_err() {
            continue;
        }
        if let Ok(b) = mb.admit(budgets(&fb, &g), &fb) {
            ctx.completion.model_budget = b;
            ctx.model = fb;
            return Ok(g);
        }
    }
    Err(spent.into())
}
