//! Anthropic Messages response -> OpenAI chat completion.

use serde_json::{Value, json};

use super::finish_reason;

/// OpenAI `usage` from Anthropic's: prompt tokens include cache reads and writes, as OpenAI
/// counts them; cache reads also appear as `prompt_tokens_details.cached_tokens`.
pub fn usage(u: &Value) -> Value {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (input, output) = (n("input_tokens"), n("output_tokens"));
    let (read, created) = (
        n("cache_read_input_tokens"),
        n("cache_creation_input_tokens"),
    );
    crate::providers::cached_usage(input, output, read, created)
}

/// Translate a Messages response body; `created` is the Unix time to report.
pub fn to_chat(resp: &Value, created: u64) -> Value {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for b in resp
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("thinking") => {
                reasoning.push_str(b.get("thinking").and_then(Value::as_str).unwrap_or(""))
            }
            Some("tool_use") => calls.push(json!({
                "id": b.get("id").cloned().unwrap_or(Value::Null),
                "type": "function",
                "function": {
                    "name": b.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": b.get("input").map_or_else(|| "{}".to_string(), Value::to_string),
                },
            })),
            _ => {}
        }
    }
    let message = crate::providers::assistant_message(&text, &reasoning, calls);
    let stop = resp
        .get("stop_reason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    json!({
        "id": resp.get("id").cloned().unwrap_or(json!("")),
        "object": "chat.completion",
        "created": created,
        "model": resp.get("model").cloned().unwrap_or(json!("")),
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(stop)}],
        "usage": usage(resp.get("usage").unwrap_or(&Value::Null)),
    })
}
