//! Anthropic Messages request (a client speaking `/v1/messages`) -> OpenAI chat request, for
//! deployments that are not Anthropic's.
//!
//! Dropped on purpose, because OpenAI-shaped providers refuse them: `top_k`, server tools
//! (`web_search_*`, ...) are refused with an error instead of being silently ignored.

use serde_json::{Map, Value, json};

use super::TranslateError;

fn invalid(msg: impl Into<String>) -> TranslateError {
    TranslateError::Invalid(msg.into())
}

/// Remove Anthropic's `cache_control` marks from a chat request made by [`to_chat`] (message
/// parts, messages and tools), for OpenAI-compatible upstreams that refuse unknown fields.
pub fn strip_cache_control(chat: &mut Value) {
    fn strip(v: &mut Value) {
        if let Some(o) = v.as_object_mut() {
            o.remove("cache_control");
        }
    }
    for m in chat
        .get_mut("messages")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        strip(m);
        for p in m
            .get_mut("content")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            strip(p);
        }
    }
    for t in chat
        .get_mut("tools")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        strip(t);
    }
}

/// Translate a Messages request body into a chat completion request for `model`.
pub fn to_chat(req: &Value, model: &str) -> Result<Value, TranslateError> {
    let obj = req
        .as_object()
        .ok_or_else(|| invalid("request body must be an object"))?;
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    let mut messages = Vec::new();
    if let Some(system) = obj.get("system")
        && let Some(m) = system_message(system)?
    {
        messages.push(m);
    }
    let list = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("`messages` must be a list"))?;
    for m in list {
        message(m, &mut messages)?;
    }
    out.insert("messages".into(), Value::Array(messages));
    if let Some(n) = obj.get("max_tokens").filter(|v| !v.is_null()) {
        out.insert("max_tokens".into(), n.clone());
    }
    for k in ["temperature", "top_p"] {
        if let Some(v) = obj.get(k).filter(|v| !v.is_null()) {
            out.insert(k.into(), v.clone());
        }
    }
    if let Some(stop) = obj.get("stop_sequences").and_then(Value::as_array)
        && !stop.is_empty()
    {
        out.insert("stop".into(), Value::Array(stop.clone()));
    }
    if let Some(user) = obj
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        out.insert("user".into(), json!(user));
    }
    if let Some(tools) = obj.get("tools").and_then(Value::as_array) {
        let tools = tools.iter().map(tool).collect::<Result<Vec<_>, _>>()?;
        if !tools.is_empty() {
            out.insert("tools".into(), Value::Array(tools));
        }
    }
    if let Some(tc) = obj.get("tool_choice").filter(|v| !v.is_null()) {
        let (choice, parallel) = tool_choice(tc)?;
        out.insert("tool_choice".into(), choice);
        if parallel == Some(false) {
            out.insert("parallel_tool_calls".into(), json!(false));
        }
    }
    if let Some(t) = obj.get("thinking")
        && t.get("type").and_then(Value::as_str) == Some("enabled")
    {
        let budget = t.get("budget_tokens").and_then(Value::as_u64).unwrap_or(0);
        let effort = match budget {
            0..=2047 => "low",
            2048..=8191 => "medium",
            _ => "high",
        };
        out.insert("reasoning_effort".into(), json!(effort));
    }
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), json!(true));
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(Value::Object(out))
}

/// `system` (a string or text blocks) as one system message. Blocks with `cache_control` keep
/// their parts (an Anthropic deployment behind the chat path reads them).
fn system_message(system: &Value) -> Result<Option<Value>, TranslateError> {
    match system {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(json!({"role": "system", "content": s}))),
        Value::Array(blocks) => {
            let cached = blocks.iter().any(|b| b.get("cache_control").is_some());
            let mut parts = Vec::new();
            let mut joined = String::new();
            for b in blocks {
                let text = b
                    .get("text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("`system` blocks must be text blocks"))?;
                if !joined.is_empty() {
                    joined.push('\n');
                }
                joined.push_str(text);
                let mut p = json!({"type": "text", "text": text});
                if let Some(c) = b.get("cache_control") {
                    p["cache_control"] = c.clone();
                }
                parts.push(p);
            }
            Ok(Some(if cached {
                json!({"role": "system", "content": parts})
            } else {
                json!({"role": "system", "content": joined})
            }))
        }
        _ => Err(invalid(
            "`system` must be a string or a list of text blocks",
        )),
    }
}

/// One Messages message, appended as one or more chat messages (tool results become `tool`
/// messages ahead of the user's other content).
fn message(m: &Value, out: &mut Vec<Value>) -> Result<(), TranslateError> {
    let role = m
        .get("role")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("every message needs a `role`"))?;
    if role != "user" && role != "assistant" {
        return Err(invalid(format!(
            "message role must be `user` or `assistant`, got `{role}`"
        )));
    }
    let blocks = match m.get("content") {
        Some(Value::String(s)) => {
            out.push(json!({"role": role, "content": s}));
            return Ok(());
        }
        Some(Value::Array(b)) => b,
        _ => return Err(invalid("message `content` must be a string or a list")),
    };
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    let mut reasoning = String::new();
    for b in blocks {
        let kind = b.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "text" => {
                let mut p = json!({"type": "text", "text": b.get("text").and_then(Value::as_str).unwrap_or("")});
                if let Some(c) = b.get("cache_control") {
                    p["cache_control"] = c.clone();
                }
                parts.push(p);
            }
            "image" => parts.push(image(b)?),
            "document" => parts.push(document(b)?),
            "tool_use" if role == "assistant" => {
                let id = b.get("id").and_then(Value::as_str).unwrap_or("");
                let name = b.get("name").and_then(Value::as_str).unwrap_or("");
                let args = b.get("input").map_or_else(|| "{}".into(), Value::to_string);
                calls.push(json!({"id": id, "type": "function",
                    "function": {"name": name, "arguments": args}}));
            }
            "tool_result" if role == "user" => {
                let id = b.get("tool_use_id").and_then(Value::as_str).unwrap_or("");
                out.push(json!({"role": "tool", "tool_call_id": id,
                    "content": tool_result_text(b.get("content"))}));
            }
            "thinking" if role == "assistant" => {
                reasoning.push_str(b.get("thinking").and_then(Value::as_str).unwrap_or(""))
            }
            "redacted_thinking" => {}
            other => {
                return Err(invalid(format!(
                    "content block type `{other}` is not supported in a {role} message"
                )));
            }
        }
    }
    if role == "assistant" {
        let text: String = parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect();
        if parts.is_empty() && calls.is_empty() {
            return Ok(());
        }
        let mut msg = json!({"role": "assistant",
            "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
        if !calls.is_empty() {
            msg["tool_calls"] = Value::Array(calls);
        }
        if !reasoning.is_empty() {
            msg["reasoning_content"] = json!(reasoning);
        }
        out.push(msg);
    } else if !parts.is_empty() {
        // plain text in one string when nothing needs parts (widest provider support)
        let plain = parts
            .iter()
            .all(|p| p["type"] == "text" && p.get("cache_control").is_none());
        let content = if plain {
            let mut s = String::new();
            for p in &parts {
                s.push_str(p["text"].as_str().unwrap_or(""));
            }
            json!(s)
        } else {
            Value::Array(parts)
        };
        out.push(json!({"role": "user", "content": content}));
    }
    Ok(())
}

fn image(b: &Value) -> Result<Value, TranslateError> {
    let src = b
        .get("source")
        .ok_or_else(|| invalid("image block needs a `source`"))?;
    let url = match src.get("type").and_then(Value::as_str) {
        Some("base64") => format!(
            "data:{};base64,{}",
            src.get("media_type")
                .and_then(Value::as_str)
                .unwrap_or("image/png"),
            src.get("data").and_then(Value::as_str).unwrap_or("")
        ),
        Some("url") => src
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        _ => return Err(invalid("image `source.type` must be `base64` or `url`")),
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

fn document(b: &Value) -> Result<Value, TranslateError> {
    let src = b
        .get("source")
        .ok_or_else(|| invalid("document block needs a `source`"))?;
    match src.get("type").and_then(Value::as_str) {
        Some("base64") => Ok(json!({"type": "file", "file": {"file_data": format!(
            "data:{};base64,{}",
            src.get("media_type").and_then(Value::as_str).unwrap_or("application/pdf"),
            src.get("data").and_then(Value::as_str).unwrap_or("")
        )}})),
        Some("text") => Ok(
            json!({"type": "text", "text": src.get("data").and_then(Value::as_str).unwrap_or("")}),
        ),
        _ => Err(invalid(
            "document `source.type` must be `base64` or `text` for this model",
        )),
    }
}

/// A tool result's content as text (blocks joined; images cannot ride in a tool message).
fn tool_result_text(c: Option<&Value>) -> String {
    match c {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn tool(t: &Value) -> Result<Value, TranslateError> {
    if let Some(kind) = t.get("type").and_then(Value::as_str)
        && kind != "custom"
    {
        return Err(invalid(format!(
            "tool type `{kind}` runs on Anthropic's servers and is only available on Anthropic models"
        )));
    }
    let name = t
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("every tool needs a `name`"))?;
    let mut f = json!({"name": name,
        "parameters": t.get("input_schema").cloned().unwrap_or(json!({"type": "object"}))});
    if let Some(d) = t.get("description").and_then(Value::as_str) {
        f["description"] = json!(d);
    }
    Ok(json!({"type": "function", "function": f}))
}

/// `tool_choice` and whether parallel tool use stays allowed.
fn tool_choice(tc: &Value) -> Result<(Value, Option<bool>), TranslateError> {
    let parallel = tc
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        .map(|d| !d);
    let choice = match tc.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = tc
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("tool_choice of type `tool` needs a `name`"))?;
            json!({"type": "function", "function": {"name": name}})
        }
        _ => return Err(invalid("tool_choice.type must be auto, any, tool or none")),
    };
    Ok((choice, parallel))
}

/// Tokens of a Messages request's input, estimated at about 4 characters a token (system,
/// message text, tool results and tool definitions).
pub fn estimate_tokens(req: &Value) -> u64 {
    fn chars(v: &Value) -> usize {
        match v {
            Value::String(s) => s.chars().count(),
            Value::Array(a) => a.iter().map(chars).sum(),
            Value::Object(o) => o
                .iter()
                .filter(|(k, _)| {
                    matches!(
                        k.as_str(),
                        "content" | "text" | "input" | "name" | "description" | "input_schema"
                    )
                })
                .map(|(k, v)| match (k.as_str(), v) {
                    ("input" | "input_schema", v) if !v.is_string() => v.to_string().len(),
                    _ => chars(v),
                })
                .sum(),
            _ => 0,
        }
    }
    let n = ["system", "messages", "tools"]
        .iter()
        .filter_map(|k| req.get(*k))
        .map(chars)
        .sum::<usize>();
    (n as u64).div_ceil(4).max(1)
}
