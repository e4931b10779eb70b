//! Cohere v2 chat response -> OpenAI chat completion.

use serde_json::{Value, json};

use super::{count, finish_reason};

/// OpenAI `usage` from a v2 `usage` object. Token counts come from `tokens` (what the model
/// read and wrote), falling back to `billed_units` when `tokens` is absent; `cached_tokens`
/// (prompt tokens served from Cohere's cache, part of the input) becomes
/// `prompt_tokens_details.cached_tokens`.
pub fn usage(u: &Value) -> Value {
    let n = |k: &str| {
        count(u.get("tokens").and_then(|t| t.get(k)))
            .or_else(|| count(u.get("billed_units").and_then(|b| b.get(k))))
            .unwrap_or(0)
    };
    let (prompt, completion) = (n("input_tokens"), n("output_tokens"));
    let cached = count(u.get("cached_tokens")).unwrap_or(0);
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    })
}

/// A v2 `tool_calls` entry as an OpenAI tool call (`arguments` kept a JSON string).
pub(super) fn tool_call(c: &Value) -> Value {
    let f = c.get("function").unwrap_or(&Value::Null);
    let arguments = match f.get("arguments") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => "{}".to_string(),
        Some(other) => other.to_string(),
    };
    json!({
        "id": c.get("id").cloned().unwrap_or(Value::Null),
        "type": "function",
        "function": {"name": f.get("name").cloned().unwrap_or(Value::Null), "arguments": arguments},
    })
}

/// Translate a v2 chat response for `model` (Cohere does not echo it); `created` is the Unix
/// time to report. Text items become `content`, thinking items `reasoning_content`; the
/// `tool_plan` (the words before tool calls) is the content when there is no text.
pub fn to_chat(resp: &Value, model: &str, created: u64) -> Value {
    let msg = resp.get("message").unwrap_or(&Value::Null);
    let mut text = String::new();
    let mut reasoning = String::new();
    match msg.get("content") {
        Some(Value::String(s)) => text.push_str(s),
        Some(Value::Array(items)) => {
            for item in items {
                match item.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        text.push_str(item.get("text").and_then(Value::as_str).unwrap_or(""))
                    }
                    Some("thinking") => reasoning
                        .push_str(item.get("thinking").and_then(Value::as_str).unwrap_or("")),
                    _ => {}
                }
            }
        }
        _ => {}
    }
    if text.is_empty()
        && let Some(plan) = msg.get("tool_plan").and_then(Value::as_str)
    {
        text.push_str(plan);
    }
    let calls: Vec<Value> = msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(tool_call)
        .collect();
    let message = crate::providers::assistant_message(&text, &reasoning, calls);
    let reason = resp
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("COMPLETE");
    json!({
        "id": resp.get("id").cloned().unwrap_or(json!("")),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(reason)}],
        "usage": usage(resp.get("usage").unwrap_or(&Value::Null)),
    })
}
