//! Stage `prompt` (between `read` and `model`): a chat or Responses request naming a prompt
//! template (`prompt_id`, with `prompt_variables` and optionally `prompt_version`) is rewritten
//! before anything else reads it, as LiteLLM's pre-call hook does: the caller must be allowed
//! the prompt (`crate::prompts::access`), its template is rendered (bounded) into messages that
//! go before the request's own (`messages`, or a Responses `input`), the template's `model`
//! replaces the request's, its front matter's parameters override the request's, and the
//! prompt members are dropped. The new body is parsed again, so every later stage (model
//! access, limits, cache key) sees the rendered request. A request without `prompt_id` pays
//! one flag test (the parse noticed the member on its tape).

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::parse::{self, Expect, RequestError};
use super::read::Call;
use crate::error::GatewayError;
use crate::prompts::{PromptError, access};
use crate::state::AppState;

crate::error::feature_error!(
    PromptError,
    "prompt",
    fn param(&self) -> Option<&str> {
        PromptError::param(self)
    }
);

/// The members that name the prompt; none goes upstream.
const PROMPT_MEMBERS: &[&str] = &[
    "prompt_id",
    "prompt_variables",
    "prompt_version",
    "prompt_label",
];

/// Rewrite `call` when it names a prompt (see the module doc).
pub(super) fn apply(state: &AppState, call: &mut Call) -> Result<(), GatewayError> {
    if !call.parsed.prompt_id || !matches!(call.expect, Expect::Chat | Expect::Responses) {
        return Ok(());
    }
    let body: Map<String, Value> = serde_json::from_slice(&call.parsed.raw)
        .map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    let body = rendered(state, &call.principal, call.expect, body)?;
    let raw = serde_json::to_vec(&body).map_err(|e| GatewayError::Internal(e.to_string()))?;
    call.parsed = parse::parse_with(Bytes::from(raw), call.expect, state.cache.is_some())?;
    Ok(())
}

/// `body` with its prompt rendered in.
fn rendered(
    state: &AppState,
    principal: &crate::auth::Principal,
    expect: Expect,
    mut body: Map<String, Value>,
) -> Result<Map<String, Value>, PromptError> {
    let asked = match body.get("prompt_id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => {
            return Err(PromptError::Field {
                field: "prompt_id",
                message: "must be the id of a prompt",
            });
        }
    };
    let vars = match body.get("prompt_variables") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(PromptError::Field {
                field: "prompt_variables",
                message: "must be a map of variable names to values",
            });
        }
    };
    let version = version_of(body.get("prompt_version"))?;
    for m in PROMPT_MEMBERS {
        body.remove(*m);
    }
    let prompts = state.prompts.load();
    let prompt = prompts
        .find(&asked, version)
        .ok_or_else(|| PromptError::NotFound(asked.clone()))?;
    if !access::permits(principal, &prompt.id, prompt.version) {
        return Err(PromptError::NotAllowed(prompt.id.clone()));
    }
    let mut messages = prompt.messages(&vars)?;
    match expect {
        Expect::Responses => {
            match body.remove("input") {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => messages.push(json!({"role": "user", "content": s})),
                Some(Value::Array(items)) => messages.extend(items),
                Some(_) => {
                    return Err(PromptError::Field {
                        field: "input",
                        message: "must be a string or a list of input items",
                    });
                }
            }
            body.insert("input".into(), Value::Array(messages));
        }
        _ => {
            match body.remove("messages") {
                None | Some(Value::Null) => {}
                Some(Value::Array(client)) => messages.extend(client),
                Some(_) => {
                    return Err(PromptError::Field {
                        field: "messages",
                        message: "must be a list of messages",
                    });
                }
            }
            body.insert("messages".into(), Value::Array(messages));
        }
    }
    for (k, v) in prompt.template.params() {
        if !matches!(k.as_str(), "messages" | "input" | "model")
            && !PROMPT_MEMBERS.contains(&k.as_str())
        {
            body.insert(k, v);
        }
    }
    if let Some(model) = prompt.template.model()? {
        body.insert("model".into(), json!(model));
    }
    Ok(body)
}

/// `prompt_version`: a positive integer (or its digits as a string).
fn version_of(v: Option<&Value>) -> Result<Option<i32>, PromptError> {
    let bad = PromptError::Field {
        field: "prompt_version",
        message: "must be a positive integer",
    };
    let n = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(_) => None,
    };
    match n.and_then(|n| i32::try_from(n).ok()) {
        Some(n) if n >= 1 => Ok(Some(n)),
        _ => Err(bad),
    }
}
