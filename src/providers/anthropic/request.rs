//! OpenAI chat completion request -> Anthropic Messages request.

use serde_json::{Map, Value, json};

use super::TranslateError;
use crate::providers::openai_chat;
use crate::providers::text_of;

/// Anthropic requires `max_tokens`; used when the client sets none.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

fn invalid(m: impl Into<String>) -> TranslateError {
    TranslateError::Invalid(m.into())
}

/// One OpenAI content part as an Anthropic content block.
fn block(part: &Value) -> Result<Value, TranslateError> {
    let kind = part.get("type").and_then(Value::as_str).unwrap_or("text");
    let mut b = match kind {
        "text" => {
            json!({"type": "text", "text": part.get("text").and_then(Value::as_str).unwrap_or("")})
        }
        "image_url" => {
            let url = openai_chat::image_url(part).map_err(invalid)?;
            image(url)?
        }
        other => {
            return Err(invalid(format!(
                "content part type `{other}` is not supported"
            )));
        }
    };
    if let Some(cc) = part.get("cache_control") {
        b["cache_control"] = cc.clone();
    }
    Ok(b)
}

/// An image block from a `data:` URL or an http(s) URL.
fn image(url: &str) -> Result<Value, TranslateError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| invalid("malformed data: URL in image_url"))?;
        let media_type = meta.strip_suffix(";base64").unwrap_or(meta);
        return Ok(
            json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}),
        );
    }
    Ok(json!({"type": "image", "source": {"type": "url", "url": url}}))
}

/// A message `content` as Anthropic blocks (a plain string stays a string).
fn content(c: &Value) -> Result<Value, TranslateError> {
    match c {
        Value::String(_) => Ok(c.clone()),
        Value::Array(parts) => Ok(Value::Array(
            parts.iter().map(block).collect::<Result<_, _>>()?,
        )),
        Value::Null => Ok(json!([])),
        _ => Err(invalid(
            "message content must be a string or a list of parts",
        )),
    }
}

fn as_blocks(c: Value) -> Vec<Value> {
    match c {
        Value::String(s) if s.is_empty() => vec![],
        Value::String(s) => vec![json!({"type": "text", "text": s})],
        Value::Array(a) => a,
        _ => vec![],
    }
}

/// Translate `req` (an OpenAI chat body) for Anthropic model `model`.
pub fn to_messages(req: &Value, model: &str) -> Result<Value, TranslateError> {
    let msgs = openai_chat::messages(req).map_err(invalid)?;
    let mut system: Vec<Value> = Vec::new();
    let mut out: Vec<Value> = Vec::new();
    for m in msgs {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
        let c = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => match c {
                Value::Array(parts) => {
                    for p in parts {
                        system.push(block(p)?);
                    }
                }
                _ => system.push(json!({"type": "text", "text": text_of(c)})),
            },
            "assistant" => {
                let mut blocks = as_blocks(content(c)?);
                if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
                    for call in calls {
                        let f = call.get("function").unwrap_or(&Value::Null);
                        let args = f.get("arguments").and_then(Value::as_str).unwrap_or("{}");
                        let input: Value =
                            serde_json::from_str(if args.trim().is_empty() { "{}" } else { args })
                                .map_err(|e| {
                                    invalid(format!("tool call arguments are not JSON: {e}"))
                                })?;
                        blocks.push(json!({"type": "tool_use", "id": call.get("id").cloned().unwrap_or(Value::Null),
                            "name": f.get("name").cloned().unwrap_or(Value::Null), "input": input}));
                    }
                }
                out.push(json!({"role": "assistant", "content": blocks}));
            }
            "tool" | "function" => {
                let result = json!({"type": "tool_result",
                    "tool_use_id": m.get("tool_call_id").cloned().unwrap_or(Value::Null),
                    "content": text_of(c)});
                // consecutive tool results go into one user turn
                match out.last_mut() {
                    Some(last)
                        if last["role"] == "user"
                            && last["content"]
                                .as_array()
                                .is_some_and(|a| a.iter().all(|b| b["type"] == "tool_result")) =>
                    {
                        if let Some(a) = last["content"].as_array_mut() {
                            a.push(result);
                        }
                    }
                    _ => out.push(json!({"role": "user", "content": [result]})),
                }
            }
            _ => out.push(json!({"role": "user", "content": content(c)?})),
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), Value::Array(out));
    if !system.is_empty() {
        let plain = system
            .iter()
            .all(|b| b["type"] == "text" && b.get("cache_control").is_none());
        let sys = if plain {
            json!(
                system
                    .iter()
                    .filter_map(|b| b["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        } else {
            Value::Array(system)
        };
        body.insert("system".into(), sys);
    }
    let max = ["max_tokens", "max_completion_tokens"]
        .iter()
        .filter_map(|k| req.get(*k).and_then(Value::as_u64))
        .min()
        .unwrap_or(DEFAULT_MAX_TOKENS);
    body.insert("max_tokens".into(), json!(max));
    for k in ["temperature", "top_p", "top_k", "stream"] {
        if let Some(v) = req.get(k).filter(|v| !v.is_null()) {
            body.insert(k.into(), v.clone());
        }
    }
    match req.get("stop") {
        Some(Value::String(s)) => {
            body.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) => {
            body.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if let Some(tools) = req.get("tools").and_then(Value::as_array) {
        let t: Vec<Value> = tools
            .iter()
            .map(|t| {
                let f = t.get("function").unwrap_or(t);
                let mut o = json!({"name": f.get("name").cloned().unwrap_or(Value::Null),
                    "input_schema": f.get("parameters").cloned().unwrap_or(json!({"type": "object", "properties": {}}))});
                if let Some(d) = f.get("description") {
                    o["description"] = d.clone();
                }
                if let Some(cc) = t.get("cache_control") {
                    o["cache_control"] = cc.clone();
                }
                o
            })
            .collect();
        body.insert("tools".into(), Value::Array(t));
    }
    if let Some(tc) = req.get("tool_choice") {
        let choice = match tc {
            Value::String(s) if s == "required" => Some(json!({"type": "any"})),
            Value::String(s) if s == "none" => Some(json!({"type": "none"})),
            Value::String(_) => Some(json!({"type": "auto"})),
            Value::Object(o) => o
                .get("function")
                .and_then(|f| f.get("name"))
                .map(|n| json!({"type": "tool", "name": n})),
            _ => None,
        };
        if let Some(mut c) = choice {
            if req.get("parallel_tool_calls") == Some(&Value::Bool(false)) && c["type"] != "none" {
                c["disable_parallel_tool_use"] = json!(true);
            }
            body.insert("tool_choice".into(), c);
        }
    }
    if let Some(effort) = req.get("reasoning_effort").and_then(Value::as_str) {
        let budget = match effort {
            "low" | "minimal" => 1024,
            "medium" => 2048,
            _ => 4096,
        };
        body.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
        // the answer needs room beyond the thinking budget
        if max <= budget {
            body.insert("max_tokens".into(), json!(budget + max));
        }
    }
    if let Some(user) = req.get("user").and_then(Value::as_str) {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    Ok(Value::Object(body))
}
