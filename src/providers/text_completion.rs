//! Chat requests to a text completion model (LiteLLM's `text-completion-openai`, `azure_text`):
//! the chat request becomes an OpenAI `/completions` request and the answer (or its stream)
//! comes back as a chat completion.
//!
//! The prompt is the text of the messages: one message's text as it is (LiteLLM's prompt), several
//! joined by blank lines (LiteLLM sends them as a list, which the completions API answers as a
//! batch, one choice per message; one prompt is what a chat client means).

use serde_json::{Map, Value, json};

use super::chunks::{ChatChunks, ChatEvents, JsonTranslator};
use super::{items, text_of};

/// Members of a chat request a completions request takes as they are.
const KEPT: &[&str] = &[
    "best_of",
    "echo",
    "frequency_penalty",
    "logit_bias",
    "max_tokens",
    "n",
    "presence_penalty",
    "seed",
    "stop",
    "stream",
    "suffix",
    "temperature",
    "top_p",
    "user",
];

/// The `/completions` request for chat request `req` to `model`. A stream asks for its usage.
pub fn to_completion(req: &Value, model: &str) -> Result<Value, String> {
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("messages must be a list")?;
    let texts: Vec<String> = messages
        .iter()
        .map(|m| text_of(m.get("content").unwrap_or(&Value::Null)))
        .collect();
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert("prompt".into(), json!(texts.join("\n\n")));
    for k in KEPT {
        if let Some(v) = req.get(*k) {
            out.insert((*k).into(), v.clone());
        }
    }
    if let Some(v) = req.get("max_completion_tokens") {
        out.entry("max_tokens").or_insert_with(|| v.clone());
    }
    if let Some(n) = req.get("top_logprobs").filter(|n| n.is_u64()) {
        out.insert("logprobs".into(), n.clone());
    }
    if req.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(Value::Object(out))
}

/// A choice of a completions answer as a chat choice (`delta` for streams, else `message`).
fn choice(c: &Value, key: &str) -> Value {
    let text = c.get("text").and_then(Value::as_str).unwrap_or("");
    let content = if key == "delta" {
        json!({"content": text})
    } else {
        json!({"role": "assistant", "content": text})
    };
    json!({
        "index": c.get("index").cloned().unwrap_or(json!(0)),
        key: content,
        "logprobs": c.get("logprobs").cloned().unwrap_or(Value::Null),
        "finish_reason": c.get("finish_reason").cloned().unwrap_or(Value::Null),
    })
}

/// A whole completions answer as a chat completion (its id, model and usage kept).
pub fn to_chat(answer: &Value, model: &str, created: u64) -> Value {
    let choices: Vec<Value> = items(answer, "choices")
        .map(|c| choice(c, "message"))
        .collect();
    let mut out = json!({
        "id": answer.get("id").cloned().unwrap_or(Value::Null),
        "object": "chat.completion",
        "created": answer.get("created").cloned().unwrap_or(json!(created)),
        "model": answer.get("model").cloned().unwrap_or(json!(model)),
        "choices": choices,
    });
    for k in ["usage", "system_fingerprint"] {
        if let Some(v) = answer.get(k).filter(|v| !v.is_null()) {
            out[k] = v.clone();
        }
    }
    out
}

/// A translated completions stream.
pub type StreamTranslator = JsonTranslator<Events>;

impl StreamTranslator {
    /// A translator reporting `model` and `created` until the provider's chunks name their own
    /// id and model.
    pub fn new(model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        Self::with(ChatChunks::new(id, model, created, include_usage), Events)
    }
}

/// Completions chunks need no state beyond the chat chunks'.
#[derive(Debug)]
pub struct Events;

impl ChatEvents for Events {
    const DONE_ENDS: bool = true;

    fn event(&mut self, out: &mut ChatChunks, ev: &Value) -> Vec<u8> {
        if ev.get("error").is_some() {
            let f = super::errors::in_stream(500, "openai", ev);
            return out.fail(&f.message, f.error_object());
        }
        for (k, field) in [("id", &mut out.id), ("model", &mut out.model)] {
            if let Some(v) = ev.get(k).and_then(Value::as_str).filter(|v| !v.is_empty()) {
                v.clone_into(field);
            }
        }
        let mut o = Vec::new();
        for c in items(ev, "choices") {
            o.extend(out.start());
            let chat = choice(c, "delta");
            let finish = chat["finish_reason"].as_str();
            if finish.is_some() {
                out.ended = true;
            }
            let index = chat["index"].as_u64().unwrap_or(0);
            o.extend(out.chunk_at(index, chat["delta"].clone(), finish));
        }
        if let Some(u) = ev.get("usage").filter(|u| u.is_object()) {
            o.extend(out.usage(u.clone()));
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{StreamEnd, StreamTranslate};

    #[test]
    fn chat_request_becomes_a_completion_request() {
        let req = json!({"model": "m", "messages": [{"role": "user", "content": "Say hi"}],
            "max_completion_tokens": 5, "temperature": 0.2, "tools": [], "stream": true});
        assert_eq!(
            to_completion(&req, "gpt-3.5-turbo-instruct").unwrap(),
            json!({"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi", "max_tokens": 5,
                "temperature": 0.2, "stream": true, "stream_options": {"include_usage": true}})
        );
        let two = json!({"messages": [{"role": "system", "content": "Be brief"},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]}]});
        assert_eq!(
            to_completion(&two, "m").unwrap()["prompt"],
            "Be brief\n\nHi"
        );
        assert!(to_completion(&json!({}), "m").is_err());
    }

    #[test]
    fn answer_becomes_a_chat_completion() {
        let a = json!({"id": "cmpl-1", "object": "text_completion", "created": 5, "model": "i",
            "choices": [{"text": "Hello", "index": 0, "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}});
        let c = to_chat(&a, "m", 9);
        assert_eq!(c["id"], "cmpl-1");
        assert_eq!(c["object"], "chat.completion");
        assert_eq!(c["choices"][0]["message"]["content"], "Hello");
        assert_eq!(c["choices"][0]["finish_reason"], "stop");
        assert_eq!(c["usage"]["total_tokens"], 3);
    }

    #[test]
    fn stream_becomes_chat_chunks_however_split() {
        let input = "data: {\"id\":\"cmpl-9\",\"object\":\"text_completion\",\"model\":\"i\",\"choices\":[{\"text\":\"He\",\"index\":0,\"finish_reason\":null}]}\n\ndata: {\"id\":\"cmpl-9\",\"choices\":[{\"text\":\"llo\",\"index\":0,\"finish_reason\":\"stop\"}]}\n\ndata: {\"id\":\"cmpl-9\",\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":2,\"total_tokens\":4}}\n\ndata: [DONE]\n\n";
        let run = |split: usize| {
            let mut t = StreamTranslator::new("m", "chatcmpl-x", 1, true);
            let mut out = t.feed(&input.as_bytes()[..split]);
            out.extend(t.feed(&input.as_bytes()[split..]));
            out.extend(t.finish());
            assert_eq!(t.end_state(), StreamEnd::Complete);
            String::from_utf8(out).unwrap()
        };
        let whole = run(0);
        for split in [1, 40, 150, input.len()] {
            assert_eq!(run(split), whole);
        }
        assert!(whole.contains(r#""id":"cmpl-9""#), "{whole}");
        assert!(whole.contains(r#""delta":{"content":"He"}"#), "{whole}");
        assert!(whole.contains(r#""finish_reason":"stop""#), "{whole}");
        assert!(whole.contains(r#""total_tokens":4"#), "{whole}");
        assert!(whole.ends_with("data: [DONE]\n\n"), "{whole}");
    }
}
