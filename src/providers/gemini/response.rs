//! Gemini `GenerateContentResponse` -> OpenAI chat completion.

use serde_json::{Value, json};

use super::{finish_reason, tool_call_id};

/// OpenAI `usage` from Gemini's `usageMetadata`. Completion tokens include the thinking tokens
/// (as OpenAI counts reasoning), also shown as `completion_tokens_details.reasoning_tokens`;
/// prompt tokens include cached ones and tool-use prompt tokens (Google Search, code execution).
pub fn usage(um: &Value) -> Value {
    let n = |k: &str| um.get(k).and_then(Value::as_u64).unwrap_or(0);
    let prompt = n("promptTokenCount") + n("toolUsePromptTokenCount");
    let thoughts = n("thoughtsTokenCount");
    let completion = n("candidatesTokenCount") + thoughts;
    let total = n("totalTokenCount").max(prompt + completion);
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "prompt_tokens_details": {"cached_tokens": n("cachedContentTokenCount")},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    })
}

/// One candidate's content, read part by part.
#[derive(Debug, Default)]
pub(crate) struct Parts {
    pub text: String,
    pub reasoning: String,
    pub calls: Vec<Value>,
}

impl Parts {
    /// Read `parts`; tool calls are numbered from `first_call` and ids derive from `id`.
    pub fn read(parts: &Value, id: &str, first_call: usize) -> Self {
        let mut out = Self::default();
        for p in parts.as_array().into_iter().flatten() {
            if let Some(f) = p.get("functionCall") {
                let n = first_call + out.calls.len();
                out.calls.push(json!({
                    "id": tool_call_id(id, n, p),
                    "type": "function",
                    "function": {
                        "name": f.get("name").cloned().unwrap_or(json!("")),
                        "arguments": f.get("args").map_or_else(|| "{}".to_string(), Value::to_string),
                    },
                }));
            } else if let Some(t) = p.get("text").and_then(Value::as_str) {
                if p.get("thought") == Some(&Value::Bool(true)) {
                    out.reasoning.push_str(t);
                } else {
                    out.text.push_str(t);
                }
            }
        }
        out
    }
}

/// A candidate's `finish_reason`: tool calls win over a plain stop.
pub(crate) fn candidate_finish(reason: Option<&str>, has_calls: bool) -> &'static str {
    match reason.map(finish_reason) {
        Some("stop") | None if has_calls => "tool_calls",
        Some(r) => r,
        None => "stop",
    }
}

/// Translate a `generateContent` response for `model`, reported with `id` and `created` (Unix
/// time). A prompt blocked before generation (`promptFeedback.blockReason`, no candidates)
/// becomes one empty choice finished by `content_filter`.
pub fn to_chat(resp: &Value, model: &str, id: &str, created: u64) -> Value {
    let mut choices = Vec::new();
    for (i, c) in resp
        .get("candidates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let index = c.get("index").and_then(Value::as_u64).unwrap_or(i as u64);
        let parts = Parts::read(c.pointer("/content/parts").unwrap_or(&Value::Null), id, 0);
        let has_calls = !parts.calls.is_empty();
        let content = if parts.text.is_empty() && has_calls {
            Value::Null
        } else {
            json!(parts.text)
        };
        let mut message = json!({"role": "assistant", "content": content});
        if has_calls {
            message["tool_calls"] = Value::Array(parts.calls);
        }
        if !parts.reasoning.is_empty() {
            message["reasoning_content"] = json!(parts.reasoning);
        }
        let finish = candidate_finish(c.get("finishReason").and_then(Value::as_str), has_calls);
        choices.push(json!({"index": index, "message": message, "finish_reason": finish}));
    }
    if choices.is_empty() && resp.pointer("/promptFeedback/blockReason").is_some() {
        choices.push(
            json!({"index": 0, "message": {"role": "assistant", "content": ""},
            "finish_reason": "content_filter"}),
        );
    }
    choices.sort_by_key(|c| c["index"].as_u64().unwrap_or(0));
    json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": usage(resp.get("usageMetadata").unwrap_or(&Value::Null)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_prompts_are_content_filtered() {
        let r = json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}});
        let c = to_chat(&r, "gemini-2.5-flash", "chatcmpl-1", 1);
        assert_eq!(c["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(c["choices"][0]["message"]["content"], "");
        assert_eq!(c["usage"]["total_tokens"], 7);
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(candidate_finish(Some("STOP"), true), "tool_calls");
        assert_eq!(candidate_finish(Some("MAX_TOKENS"), true), "length");
        assert_eq!(
            candidate_finish(Some("RECITATION"), false),
            "content_filter"
        );
        assert_eq!(candidate_finish(None, false), "stop");
    }
}
