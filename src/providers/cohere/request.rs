//! OpenAI chat completion request -> Cohere `POST /v2/chat` body.
//!
//! Renamed fields: `top_p` -> `p`, `top_k` -> `k`, `max_completion_tokens`/`max_tokens` ->
//! `max_tokens`, `stop` -> `stop_sequences`, `reasoning_effort` -> `thinking`. Fields Cohere has
//! no counterpart for (`user`, `parallel_tool_calls`, `stream_options`, `logprobs`, ...) are
//! dropped; `n > 1` is refused.

use serde_json::{Map, Value, json};

use super::{TranslateError, invalid};
use crate::providers::openai_chat::{self, ToolChoice};

/// Thinking budget for `reasoning_effort` (the same scale as the Anthropic translation).
fn thinking_budget(effort: &str) -> u64 {
    match effort {
        "minimal" | "low" => 1024,
        "medium" => 2048,
        _ => 4096,
    }
}

/// Text of a `content` that is a string or a list of text parts (other parts refused).
fn text_of(content: &Value, what: &str) -> Result<String, TranslateError> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut texts = Vec::with_capacity(parts.len());
            for p in parts {
                match p.get("type").and_then(Value::as_str).unwrap_or("text") {
                    "text" => texts.push(p.get("text").and_then(Value::as_str).unwrap_or("")),
                    // an assistant refusal in the history is text the model said
                    "refusal" => texts.push(p.get("refusal").and_then(Value::as_str).unwrap_or("")),
                    other => {
                        return Err(invalid(format!(
                            "{what} content part type `{other}` is not supported"
                        )));
                    }
                }
            }
            Ok(texts.join("\n"))
        }
        _ => Err(invalid(format!(
            "{what} content must be a string or a list of parts"
        ))),
    }
}

/// One OpenAI user content part as a Cohere content item.
fn user_part(part: &Value) -> Result<Value, TranslateError> {
    match part.get("type").and_then(Value::as_str).unwrap_or("text") {
        "text" => Ok(
            json!({"type": "text", "text": part.get("text").and_then(Value::as_str).unwrap_or("")}),
        ),
        "image_url" => {
            let image = part.get("image_url").unwrap_or(&Value::Null);
            let url = openai_chat::image_url(part).map_err(invalid)?;
            let mut out = json!({"url": url});
            if let Some(detail) = image.get("detail").filter(|d| d.is_string()) {
                out["detail"] = detail.clone();
            }
            Ok(json!({"type": "image_url", "image_url": out}))
        }
        other => Err(invalid(format!(
            "content part type `{other}` is not supported"
        ))),
    }
}

/// A user `content`: a string stays a string, parts become Cohere content items.
fn user_content(c: &Value) -> Result<Value, TranslateError> {
    match c {
        Value::String(_) => Ok(c.clone()),
        Value::Null => Ok(json!("")),
        Value::Array(parts) => Ok(Value::Array(
            parts.iter().map(user_part).collect::<Result<_, _>>()?,
        )),
        _ => Err(invalid(
            "user message content must be a string or a list of parts",
        )),
    }
}

/// Assistant `tool_calls` in the shape v2 takes (OpenAI's), arguments checked to be JSON.
fn tool_calls(calls: &[Value]) -> Result<Vec<Value>, TranslateError> {
    calls
        .iter()
        .map(|call| {
            let f = call
                .get("function")
                .ok_or_else(|| invalid("tool call without `function`"))?;
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("tool call function.name must be a string"))?;
            let args = match f.get("arguments") {
                None | Some(Value::Null) => "{}",
                Some(Value::String(s)) if s.trim().is_empty() => "{}",
                Some(Value::String(s)) => s,
                Some(_) => return Err(invalid("tool call arguments must be a JSON string")),
            };
            serde_json::from_str::<Value>(args)
                .map_err(|e| invalid(format!("tool call arguments are not JSON: {e}")))?;
            Ok(json!({
                "id": call.get("id").cloned().unwrap_or(Value::Null),
                "type": "function",
                "function": {"name": name, "arguments": args},
            }))
        })
        .collect()
}

fn message(m: &Value) -> Result<Value, TranslateError> {
    let role = m
        .get("role")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("every message needs a string `role`"))?;
    let c = m.get("content").unwrap_or(&Value::Null);
    Ok(match role {
        "system" | "developer" => json!({"role": "system", "content": text_of(c, "system")?}),
        "user" => json!({"role": "user", "content": user_content(c)?}),
        "assistant" => {
            let text = text_of(c, "assistant")?;
            let calls = m
                .get("tool_calls")
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty());
            match calls {
                Some(calls) => {
                    // with tool calls, v2 carries the assistant's words as `tool_plan`
                    let plan = m
                        .get("tool_plan")
                        .and_then(Value::as_str)
                        .map_or(text, str::to_string);
                    let mut out = json!({"role": "assistant", "tool_calls": tool_calls(calls)?});
                    if !plan.is_empty() {
                        out["tool_plan"] = json!(plan);
                    }
                    out
                }
                None => json!({"role": "assistant", "content": text}),
            }
        }
        "tool" => {
            let id = m
                .get("tool_call_id")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("tool message needs a string `tool_call_id`"))?;
            let content = match c {
                Value::Array(_) => json!([{"type": "text", "text": text_of(c, "tool")?}]),
                _ => json!(text_of(c, "tool")?),
            };
            json!({"role": "tool", "tool_call_id": id, "content": content})
        }
        other => return Err(invalid(format!("message role `{other}` is not supported"))),
    })
}

/// Function tools in the v2 shape (`{type: function, function: {name, description,
/// parameters}}`); returns whether any asked for `strict`.
fn tools(list: &[Value]) -> Result<(Vec<Value>, bool), TranslateError> {
    let mut strict = false;
    let mut out = Vec::with_capacity(list.len());
    for t in list {
        if t.get("type").and_then(Value::as_str).unwrap_or("function") != "function" {
            return Err(invalid("only `function` tools are supported"));
        }
        let f = t.get("function").unwrap_or(t);
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("tool function.name must be a string"))?;
        let mut func = json!({"name": name});
        for k in ["description", "parameters"] {
            if let Some(v) = f.get(k).filter(|v| !v.is_null()) {
                func[k] = v.clone();
            }
        }
        strict |= f.get("strict") == Some(&Value::Bool(true));
        out.push(json!({"type": "function", "function": func}));
    }
    Ok((out, strict))
}

/// `response_format`: JSON mode and JSON schema both become v2's `json_object`.
fn response_format(rf: &Value) -> Result<Option<Value>, TranslateError> {
    match rf.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut out = json!({"type": "json_object"});
            if let Some(schema) = rf.get("json_schema").and_then(|s| s.get("schema")) {
                out["json_schema"] = schema.clone();
            }
            Ok(Some(out))
        }
        _ => Err(invalid(
            "response_format.type must be `text`, `json_object` or `json_schema`",
        )),
    }
}

/// Translate `chat` (an OpenAI chat body) for Cohere model `model`.
pub fn to_chat_v2(chat: &Value, model: &str) -> Result<Value, TranslateError> {
    let msgs = openai_chat::messages(chat).map_err(invalid)?;
    if chat.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(invalid("n > 1 is not supported"));
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert(
        "messages".into(),
        Value::Array(msgs.iter().map(message).collect::<Result<_, _>>()?),
    );
    body.insert(
        "stream".into(),
        json!(chat.get("stream").and_then(Value::as_bool).unwrap_or(false)),
    );
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "p"),
        ("top_k", "k"),
        ("seed", "seed"),
        ("frequency_penalty", "frequency_penalty"),
        ("presence_penalty", "presence_penalty"),
    ] {
        if let Some(v) = chat.get(from).filter(|v| !v.is_null()) {
            body.insert(to.into(), v.clone());
        }
    }
    if let Some(max) = ["max_tokens", "max_completion_tokens"]
        .iter()
        .filter_map(|k| chat.get(*k).and_then(Value::as_u64))
        .min()
    {
        body.insert("max_tokens".into(), json!(max));
    }
    match chat.get("stop") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            body.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            body.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        Some(_) => return Err(invalid("stop must be a string or a list of strings")),
    }
    let mut tool_list = match chat.get("tools") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => {
            let (list, strict) = tools(list)?;
            if strict {
                body.insert("strict_tools".into(), json!(true));
            }
            list
        }
        Some(_) => return Err(invalid("tools must be a list")),
    };
    match openai_chat::tool_choice(chat).map_err(invalid)? {
        None | Some(ToolChoice::Auto) => {}
        Some(ToolChoice::Required) => {
            body.insert("tool_choice".into(), json!("REQUIRED"));
        }
        Some(ToolChoice::None) => {
            body.insert("tool_choice".into(), json!("NONE"));
        }
        Some(ToolChoice::Named(name)) => {
            // v2 cannot name a tool: require a tool call and offer only the named one
            tool_list.retain(|t| t["function"]["name"] == name);
            if tool_list.is_empty() {
                return Err(invalid(format!(
                    "tool_choice names `{name}`, which is not in tools"
                )));
            }
            body.insert("tool_choice".into(), json!("REQUIRED"));
        }
    }
    if !tool_list.is_empty() {
        body.insert("tools".into(), Value::Array(tool_list));
    }
    if let Some(rf) = chat.get("response_format").filter(|v| !v.is_null())
        && let Some(rf) = response_format(rf)?
    {
        body.insert("response_format".into(), rf);
    }
    match chat.get("reasoning_effort") {
        None | Some(Value::Null) => {}
        Some(Value::String(e)) if e == "none" => {
            body.insert("thinking".into(), json!({"type": "disabled"}));
        }
        Some(Value::String(e)) => {
            body.insert(
                "thinking".into(),
                json!({"type": "enabled", "token_budget": thinking_budget(e)}),
            );
        }
        Some(_) => return Err(invalid("reasoning_effort must be a string")),
    }
    Ok(Value::Object(body))
}
