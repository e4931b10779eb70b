//! Stage `model`: the model group the request is for (from the path, else the body; OpenAI's
//! default for a moderation that names none). A Responses API request always asks for its
//! usage; one continuing an earlier response (`previous_response_id`) must own it, and is
//! pinned to the deployment that holds it. Also the stream flags the record needs.

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
        if memchr::memmem::find(&call.parsed.raw, b"\"previous_response_id\"").is_some() {
            let parsed = std::mem::take(&mut call.parsed);
            let (p, dep) = previous_response(state, &call.principal, parsed)?;
            call.parsed = p;
            ctx.pinned = dep;
        }
    }
    ctx.model = path_model
        .or_else(|| call.parsed.model.clone())
        .filter(|m| !m.is_empty())
        // OpenAI's default moderation model, when a model group of that name exists
        .or_else(|| (expect == Expect::Moderation).then(|| DEFAULT_MODERATION.to_string()))
        .ok_or(RequestError::Missing("model"))?;
    if let Expect::Gemini { stream } = expect {
        call.parsed.stream = stream;
    }
    ctx.completion.stream = call.parsed.stream;
    ctx.completion.prompt_estimate = call.parsed.raw.len() as u64 / 4;
    Ok(())
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
