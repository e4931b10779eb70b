//! Answers that are almost OpenAI's (IBM watsonx.ai `/text/chat`, SageMaker endpoints serving
//! the Messages API of TGI, vLLM or LMI containers): the whole answer and the stream chunks
//! reshaped into exactly OpenAI's chat completion, the provider's extra members (`model_id`,
//! `created_at`, `system`, ...) dropped, the usage kept, the model named as the deployment's.

use serde_json::{Map, Value, json};

use super::chunks::{ChatChunks, ChatEvents};
use super::errors::classify;
use super::items;

/// Members of a choice's `message` (or `delta`) kept.
const MESSAGE_KEYS: &[&str] = &[
    "role",
    "content",
    "tool_calls",
    "reasoning_content",
    "refusal",
];

/// OpenAI usage from an OpenAI-shaped `usage` (missing counts are 0, the total recomputed when
/// absent).
pub fn usage(u: &Value) -> Value {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (prompt, completion) = (n("prompt_tokens"), n("completion_tokens"));
    let total = u
        .get("total_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(prompt + completion);
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total})
}

fn pick(v: &Value, keys: &[&str]) -> Value {
    let mut m = Map::new();
    for k in keys {
        if let Some(x) = v.get(*k).filter(|x| !x.is_null()) {
            m.insert((*k).to_string(), x.clone());
        }
    }
    Value::Object(m)
}

/// The chat completion of an OpenAI-shaped answer, as OpenAI words it: `model` named, `id`
/// the answer's (else `id`), `created` the answer's (else `created`).
pub fn to_chat(answer: &Value, model: &str, id: &str, created: u64) -> Value {
    let choices: Vec<Value> = items(answer, "choices")
        .enumerate()
        .map(|(i, c)| {
            let mut message = pick(c.get("message").unwrap_or(&Value::Null), MESSAGE_KEYS);
            message
                .as_object_mut()
                .map(|m| m.entry("role").or_insert_with(|| json!("assistant")));
            if message.get("content").is_none() {
                message["content"] = Value::Null;
            }
            json!({
                "index": c.get("index").and_then(Value::as_u64).unwrap_or(i as u64),
                "message": message,
                "logprobs": c.get("logprobs").cloned().unwrap_or(Value::Null),
                "finish_reason": c.get("finish_reason").cloned().unwrap_or(json!("stop")),
            })
        })
        .collect();
    let mut out = json!({
        "id": answer.get("id").and_then(Value::as_str).unwrap_or(id),
        "object": "chat.completion",
        "created": answer.get("created").and_then(Value::as_u64).unwrap_or(created),
        "model": model,
        "choices": choices,
    });
    if let Some(u) = answer.get("usage").filter(|u| u.is_object()) {
        out["usage"] = usage(u);
    }
    out
}

/// The error an OpenAI-shaped stream chunk carries, if it is one: `{"error": ...}` or
/// watsonx's `{"errors": [...], "status_code": 400}`.
fn stream_error(ev: &Value) -> Option<u16> {
    if ev.get("error").is_some() || ev.get("errors").is_some_and(Value::is_array) {
        let status = ev
            .get("status_code")
            .or_else(|| ev.pointer("/error/code"))
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| (400..600).contains(s))
            .unwrap_or(500);
        return Some(status);
    }
    None
}

/// The chunks of an OpenAI-shaped stream, read into OpenAI's (the role chunk first, the usage
/// at the end, the provider's own members dropped). A finish reason is the provider's end
/// marker; the usage, wherever it came, goes out once at the end.
#[derive(Debug)]
pub struct Events {
    provider: &'static str,
    usage: Option<Value>,
}

impl Events {
    pub fn new(provider: &'static str) -> Self {
        Self {
            provider,
            usage: None,
        }
    }
}

impl ChatEvents for Events {
    fn event(&mut self, out: &mut ChatChunks, ev: &Value) -> Vec<u8> {
        if let Some(status) = stream_error(ev) {
            let f = classify(status, self.provider, ev.to_string().as_bytes(), None);
            return out.fail_and_close(&f.message, f.error_object());
        }
        if let Some(u) = ev.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage(u));
        }
        let mut o = Vec::new();
        for (i, c) in items(ev, "choices").enumerate() {
            // a container that answered the stream request whole sends `message`
            let src = c.get("delta").or_else(|| c.get("message"));
            let mut delta = pick(src.unwrap_or(&Value::Null), MESSAGE_KEYS);
            if let Some(d) = delta.as_object_mut() {
                d.remove("role");
                if d.get("content").is_some_and(|c| c == "") {
                    d.remove("content");
                }
            }
            let finish = c.get("finish_reason").and_then(Value::as_str);
            if finish.is_some() {
                out.ended = true;
            }
            let empty = delta.as_object().is_none_or(Map::is_empty);
            o.extend(out.start());
            if empty && finish.is_none() {
                continue;
            }
            let index = c.get("index").and_then(Value::as_u64).unwrap_or(i as u64);
            o.extend(out.chunk_at(index, delta, finish));
        }
        o
    }

    fn usage_so_far(&self) -> Option<Value> {
        self.usage.clone()
    }

    const USAGE_AT_FINISH: bool = true;
    const DONE_ENDS: bool = true;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::StreamTranslate;
    use crate::providers::chunks::JsonTranslator;

    #[test]
    fn whole_answer_reshaped() {
        let a = json!({"id": "chat-1", "model_id": "ibm/granite", "created": 7, "created_at": "x",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1}, "system": {"warnings": []}});
        let c = to_chat(&a, "granite", "fallback", 9);
        assert_eq!(c["id"], "chat-1");
        assert_eq!(c["model"], "granite");
        assert_eq!(c["created"], 7);
        assert_eq!(c["object"], "chat.completion");
        assert_eq!(c["choices"][0]["message"]["content"], "Hi");
        assert_eq!(c["usage"]["total_tokens"], 4);
        assert!(c.get("system").is_none() && c.get("model_id").is_none());
    }

    #[test]
    fn stream_chunks_usage_at_end() {
        let mut t = JsonTranslator::with(ChatChunks::new("id1", "m", 5, true), Events::new("x"));
        let input = "id: 1\nevent: message\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n\
            data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n\
            data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":2,\"total_tokens\":4}}\n\n";
        let mut out = Vec::new();
        for c in input.as_bytes().chunks(3) {
            out.extend(t.feed(c));
        }
        out.extend(t.finish());
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s.matches("\"role\":\"assistant\"").count(), 1, "{s}");
        assert!(s.contains("\"content\":\"Hel\""), "{s}");
        assert!(s.contains("\"finish_reason\":\"stop\""), "{s}");
        assert!(s.contains("\"usage\":{\"completion_tokens\":2"), "{s}");
        assert!(s.ends_with("data: [DONE]\n\n"), "{s}");
        assert_eq!(t.end_state(), crate::providers::StreamEnd::Complete);
    }

    #[test]
    fn stream_error_ends_it() {
        let mut t = JsonTranslator::with(ChatChunks::new("id1", "m", 5, true), Events::new("x"));
        let mut out = t.feed(b"event: error\ndata: {\"errors\":[{\"code\":\"bad\",\"message\":\"rate limit reached\"}],\"status_code\":429}\n\n");
        out.extend(t.finish());
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("rate limit reached"), "{s}");
        assert!(s.contains("rate_limit_error"), "{s}");
        assert_eq!(s.matches("[DONE]").count(), 1, "{s}");
        assert!(matches!(
            t.end_state(),
            crate::providers::StreamEnd::Failed(_)
        ));
    }
}
