//! Bedrock Converse response -> OpenAI chat completion.

use serde_json::{Value, json};

use super::finish_reason;

/// OpenAI `usage` from Converse's `usage`: prompt tokens include cache reads and writes, as
/// OpenAI counts them; cache reads also appear as `prompt_tokens_details.cached_tokens`, and
/// both as the `cache_*_input_tokens` fields our usage reader understands.
pub fn usage(u: &Value) -> Value {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (input, output) = (n("inputTokens"), n("outputTokens"));
    let (read, created) = (n("cacheReadInputTokens"), n("cacheWriteInputTokens"));
    crate::providers::cached_usage(input, output, read, created)
}

/// Translate a Converse response body. The response carries neither an id nor the model, so
/// the caller passes them, with `created`, the Unix time to report.
pub fn to_chat(resp: &Value, model: &str, id: &str, created: u64) -> Value {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    let content = resp
        .pointer("/output/message/content")
        .and_then(Value::as_array);
    for b in content.into_iter().flatten() {
        if let Some(t) = b.get("text").and_then(Value::as_str) {
            text.push_str(t);
        } else if let Some(tu) = b.get("toolUse") {
            calls.push(json!({
                "id": tu.get("toolUseId").cloned().unwrap_or(Value::Null),
                "type": "function",
                "function": {
                    "name": tu.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": tu.get("input").map_or_else(|| "{}".to_string(), Value::to_string),
                },
            }));
        } else if let Some(r) = b
            .pointer("/reasoningContent/reasoningText/text")
            .and_then(Value::as_str)
        {
            reasoning.push_str(r);
        }
    }
    let message = crate::providers::assistant_message(&text, &reasoning, calls);
    let stop = resp
        .get("stopReason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(stop)}],
        "usage": usage(resp.get("usage").unwrap_or(&Value::Null)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasoning_and_text() {
        let resp = json!({"output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s"}}},
            {"text": "Hi"}]}}, "stopReason": "max_tokens",
            "usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}});
        let chat = to_chat(&resp, "m", "chatcmpl-1", 7);
        assert_eq!(chat["choices"][0]["message"]["content"], "Hi");
        assert_eq!(chat["choices"][0]["message"]["reasoning_content"], "hmm");
        assert_eq!(chat["choices"][0]["finish_reason"], "length");
        assert_eq!(chat["usage"]["total_tokens"], 5);
        assert_eq!(chat["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    }

    #[test]
    fn empty_response_is_an_empty_answer() {
        let chat = to_chat(&json!({}), "m", "id", 1);
        assert_eq!(chat["choices"][0]["message"]["content"], "");
        assert_eq!(chat["choices"][0]["finish_reason"], "stop");
        assert_eq!(chat["usage"]["prompt_tokens"], 0);
    }
}
