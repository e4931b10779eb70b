//! Stage `model`: the model group the request is for (from the path, else the body; OpenAI's
//! default for a moderation that names none), through the caller's aliases: its team's
//! `model_aliases`, else its key's `aliases` (as LiteLLM: before any access check; both come
//! with the cached key). A Responses API request always asks for its usage; one continuing an
//! earlier response (`previous_response_id`) must own it, and is pinned to the deployment that
//! holds it. Also the stream flags the record needs, and the body's testing controls refused
//! unless the config allows them.

use super::RequestCtx;
use super::parse::{self, Expect, ParsedRequest, RequestError};
use super::read::Call;
use crate::auth::Principal;
use crate::error::GatewayError;
use crate::state::AppState;

/// The model group `/v1/moderations` uses when the request names none.
const DEFAULT_MODERATION: &str = "omni-moderation-latest";

/// Name the model group (`ctx.model`) and the pinned deployment (`ctx.pinned`).
pub fn name(
    state: &AppState,
    call: &mut Call,
    path_model: Option<String>,
    ctx: &mut RequestCtx,
) -> Result<(), GatewayError> {
    let expect = call.expect;
    if expect == Expect::Responses {
        call.parsed.include_usage = Some(true);
        if crate::holds!(&call.parsed.raw, b"\"previous_response_id\"") {
            let parsed = std::mem::take(&mut call.parsed);
            let (p, dep) = previous_response(state, &call.principal, parsed)?;
            call.parsed = p;
            ctx.pinned = dep;
        }
    }
    (call.parsed.controls).check_testing(state.config().general_settings.allow_mock_testing())?;
    let asked = path_model
        .or_else(|| call.parsed.model.clone())
        .filter(|m| !m.is_empty())
        // OpenAI's default moderation model, when a model group of that name exists
        .or_else(|| (expect == Expect::Moderation).then(|| DEFAULT_MODERATION.to_string()))
        .ok_or(RequestError::Missing("model"))?;
    (ctx.model, ctx.team_alias) = aliased(&call.principal, asked);
    if ctx.pinned.is_none() {
        super::skills::pin(state, call, ctx)?;
    }
    if let Expect::Gemini { stream } = expect {
        call.parsed.stream = stream;
    }
    ctx.completion.stream = call.parsed.stream;
    ctx.completion.prompt_estimate = call.parsed.raw.len() as u64 / 4;
    Ok(())
}

/// The model group `asked` stands for with the caller's aliases (its team's, else its key's),
/// and the name asked for when a team alias mapped it (a proxy admin sets those: access lists
/// naming the alias grant it too, see `authorize`).
pub fn aliased(principal: &Principal, asked: String) -> (String, Option<String>) {
    let Some(k) = principal.key() else {
        return (asked, None);
    };
    if let Some(group) = (k.team.as_ref()).and_then(|t| t.model_alias(&asked)) {
        return (group.to_string(), Some(asked));
    }
    match k.key.alias(&asked) {
        Some(group) => (group.to_string(), None),
        None => (asked, None),
    }
}

/// Check the caller owns `previous_response_id` and put the provider's id in the body; also
/// the deployment holding it, when the id says.
fn previous_response(
    state: &AppState,
    principal: &Principal,
    parsed: ParsedRequest,
) -> Result<(ParsedRequest, Option<String>), GatewayError> {
    let mut v: serde_json::Value = parsed.json()?;
    let Some(id) = v
        .get("previous_response_id")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
    else {
        return Ok((parsed, None));
    };
    let (raw, model_id) = state.response_ids.check(&id, principal)?;
    v["previous_response_id"] = serde_json::Value::String(raw);
    let bytes = serde_json::to_vec(&v).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    let mut p = parse::parse(bytes.into(), Expect::Responses)?;
    p.include_usage = Some(true);
    Ok((p, model_id))
}
