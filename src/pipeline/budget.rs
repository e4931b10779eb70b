//! Stage `budget`: the request's worst-case cost is reserved on every budget that applies to
//! it (key, user, team, organisation, end user, tags: refused when one has no room left), then
//! a spend-log slot is taken and the request's SpendLogs row started; the ticket goes into the
//! record, which books the real cost when it is finished. Side calls reserve through
//! [`reserve`] too.

use std::sync::Arc;

use super::RequestCtx;
use super::parse::Expect;
use super::read::Call;
use crate::alerting::{AlertType, Budget, BudgetEvent};
use crate::auth::Principal;
use crate::auth::access::budget_error;
use crate::error::GatewayError;
use crate::router::Deployment;
use crate::spend::ledger::Line;
use crate::spend::record::{Caller, SpendRow};
use crate::state::AppState;

/// Reserve for the LLM request on `dep` (its price's worst case for the prompt and
/// `max_tokens`).
pub async fn reserve_for(
    state: &AppState,
    call: &Call,
    dep: &Arc<Deployment>,
    lines: Vec<Line>,
    ctx: &mut RequestCtx,
) -> Result<(), GatewayError> {
    let parsed = &call.parsed;
    let worst = dep.price.as_ref().map_or(0.0, |p| {
        crate::spend::cost::worst_case(p, parsed.raw.len() as u64 / 4, parsed.max_tokens)
    });
    let kind = call_type(call.expect);
    reserve(state, &call.principal, lines, worst, ctx, |ctx| {
        let mut row = SpendRow {
            end_user: ctx.end_user.clone(),
            request_tags: parsed.tags.clone(),
            requester_ip_address: Some(call.peer.ip()),
            ..row(state, &call.principal, ctx, kind, &ctx.model)
        };
        if let Some(a) = &ctx.agent {
            a.mark(&mut row);
        }
        row
    })
    .await?;
    let log_bodies = ctx
        .completion
        .logging
        .as_ref()
        .is_some_and(crate::callbacks::Logging::wants_bodies);
    if state.spend.store_prompts || log_bodies {
        ctx.completion.bodies = Some((parsed.raw.clone(), None));
    }
    Ok(())
}

/// Reserve `worst` USD on the budgets of `lines`; with a spend-log slot, the row `row` makes
/// starts the record's.
pub async fn reserve(
    state: &AppState,
    principal: &Principal,
    lines: Vec<Line>,
    worst: f64,
    ctx: &mut RequestCtx,
    row: impl FnOnce(&RequestCtx) -> SpendRow,
) -> Result<(), GatewayError> {
    let watched = state.metrics.as_ref().map(|_| budgets_of(&lines));
    let alerted = (state.alerts.wants(AlertType::BudgetAlerts)).then(|| lines.clone());
    let reservation = state
        .spend
        .ledger
        .admit(lines, worst)
        .map_err(|(e, lines)| {
            let b = Budget {
                event: BudgetEvent::Crossed,
                spend: e.current,
                limit: e.max_budget,
            };
            state.alerts.budget(principal, &lines[e.index].account, b);
            budget_error(
                state.auth.budget_status,
                principal,
                &lines[e.index],
                e.current,
            )
        })?;
    if let (Some(m), Some(w)) = (&state.metrics, watched) {
        remaining_budgets(state, m, principal, w);
    }
    if let Some(lines) = alerted {
        state
            .alerts
            .admitted(principal, &lines, &state.spend.ledger);
    }
    let key_alias = principal.key().and_then(|k| k.key.key_alias.as_deref());
    ctx.completion.alerting = state.alerts.watch(&ctx.model, key_alias);
    let slot = state.spend.slot().await;
    ctx.completion.logging = match principal {
        Principal::Key(k) => (state.callbacks.load()).logging(Some(&k.key), k.team.as_deref()),
        _ => (state.callbacks.load()).logging(None, None),
    };
    let row = (slot.is_some() || ctx.completion.logging.is_some()).then(|| Box::new(row(ctx)));
    let ticket = crate::spend::Ticket {
        spend: state.spend.clone(),
        slot,
        reservation,
    };
    ctx.completion.spend = Some((ticket, row));
    Ok(())
}

/// The SpendLogs row as far as it is known at admission (the post stage fills in the rest):
/// the call (`call_type`, `endpoint`), its caller, its start and its model group.
pub fn row(
    state: &AppState,
    principal: &Principal,
    ctx: &RequestCtx,
    (call_type, endpoint): (&'static str, &'static str),
    model: &str,
) -> SpendRow {
    SpendRow {
        call_id: ctx.call_id,
        call_type,
        endpoint,
        caller: Caller::of(principal, state.auth.master_hash()),
        start_time: crate::util::clock::unix(ctx.wall_start),
        model_group: model.to_string(),
        ..Default::default()
    }
}

/// SpendLogs `call_type` and `endpoint` of a route (LiteLLM's names).
pub fn call_type(e: Expect) -> (&'static str, &'static str) {
    match e {
        Expect::Chat => ("acompletion", "/v1/chat/completions"),
        Expect::Completion => ("atext_completion", "/v1/completions"),
        Expect::Embedding => ("aembedding", "/v1/embeddings"),
        Expect::Responses => ("aresponses", "/v1/responses"),
        Expect::Messages => ("anthropic_messages", "/v1/messages"),
        Expect::Gemini { .. } => ("agenerate_content", "/v1beta/models:generateContent"),
        Expect::ImageGeneration => ("aimage_generation", "/v1/images/generations"),
        Expect::Speech => ("aspeech", "/v1/audio/speech"),
        Expect::Moderation => ("amoderation", "/v1/moderations"),
        Expect::Rerank => ("arerank", "/v1/rerank"),
        Expect::ImageEdit => ("aimage_edit", "/v1/images/edits"),
        Expect::ImageVariation => ("aimage_variation", "/v1/images/variations"),
        Expect::Transcription => ("atranscription", "/v1/audio/transcriptions"),
        Expect::Translation => ("atranslation", "/v1/audio/translations"),
        Expect::Ocr => ("aocr", "/v1/ocr"),
    }
}

/// The key's and team's budgets among `lines` (for their gauges).
fn budgets_of(lines: &[Line]) -> [Option<(crate::spend::ledger::Account, f64)>; 2] {
    use crate::spend::ledger::Account;
    let find = |key: bool| {
        lines.iter().find_map(|l| match &l.account {
            Account::Key(_) if key && l.max_budget >= 0.0 => {
                Some((l.account.clone(), l.max_budget))
            }
            Account::Team(_) if !key && l.max_budget >= 0.0 => {
                Some((l.account.clone(), l.max_budget))
            }
            _ => None,
        })
    };
    [find(true), find(false)]
}

/// Set the key's and team's remaining budget gauges from the ledger's spend now.
fn remaining_budgets(
    state: &AppState,
    m: &crate::metrics::Metrics,
    principal: &Principal,
    watched: [Option<(crate::spend::ledger::Account, f64)>; 2],
) {
    let Principal::Key(k) = principal else {
        return;
    };
    for (account, max) in watched.into_iter().flatten() {
        let spent = state.spend.ledger.get(&account).map_or(0.0, |(s, _)| s);
        match &account {
            crate::spend::ledger::Account::Key(hash) => {
                m.key_budget(hash, k.key.key_alias.as_deref().unwrap_or(""), max - spent);
            }
            crate::spend::ledger::Account::Team(team) => {
                let alias = k.team.as_ref().and_then(|t| t.team_alias.as_deref());
                m.team_budget(team, alias.unwrap_or(""), max - spent);
            }
            _ => {}
        }
    }
}
