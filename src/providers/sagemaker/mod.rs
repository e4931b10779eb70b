//! AWS SageMaker endpoint translation, pure (no I/O), for the two request styles LiteLLM
//! sends to `POST /endpoints/<name>/invocations` (and `/invocations-response-stream`):
//!
//! - `sagemaker_chat/<endpoint>`: the container serves OpenAI's Messages API (TGI, vLLM, LMI):
//!   the chat request goes as it is ([`chat_request`]); answers are OpenAI-shaped
//!   ([`crate::providers::openai_like`]).
//! - `sagemaker/<endpoint>`: Hugging Face TGI's generate API: `{inputs, parameters}`
//!   ([`tgi_request`]) answered `[{generated_text}]` ([`tgi_to_chat`]); streamed, TGI's
//!   `generate_stream` tokens (`{"token": {"text": ...}}`).
//!
//! Streams come as AWS event-stream messages whose `PayloadPart` events carry the container's
//! bytes (SSE `data:` lines, or bare JSON lines), split anywhere ([`stream`]). Embeddings:
//! `{inputs}` answered by a list of vectors or `{embedding: [...]}` ([`embed_request`],
//! [`embed_to_openai`]), as LiteLLM's Hugging Face embedding config does.
//!
//! TGI's prompt is the messages' text joined by blank lines (LiteLLM fetches each model's chat
//! template from the Hugging Face hub; a gateway does not). TGI reports no prompt token count:
//! usage is estimated at 4 characters a token, the completion's from `details.generated_tokens`
//! when the container sends it.

pub mod stream;

use serde_json::{Map, Value, json};

use super::{items, text_of};

/// Why a request cannot be translated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TranslateError {
    #[error("Invalid request for a SageMaker endpoint: {0}")]
    Invalid(String),
}

fn invalid(m: impl Into<String>) -> TranslateError {
    TranslateError::Invalid(m.into())
}

/// Tokens in `text`, estimated at 4 characters a token.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// The prompt TGI gets for a chat request: the messages' text joined by blank lines.
pub fn prompt(req: &Value) -> Result<String, TranslateError> {
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("messages must be a list"))?;
    Ok(messages
        .iter()
        .map(|m| text_of(m.get("content").unwrap_or(&Value::Null)))
        .collect::<Vec<_>>()
        .join("\n\n"))
}

/// The `{inputs, parameters}` body for a chat request to a TGI endpoint (LiteLLM's
/// `SagemakerConfig`): `max_tokens`/`max_completion_tokens` -> `max_new_tokens` (at least 1),
/// `temperature` (0 raised to 0.01: TGI refuses 0), `top_p`, `stop`, `n` -> `best_of` with
/// sampling; `stream: true` for the response stream.
pub fn tgi_request(req: &Value, stream: bool) -> Result<Value, TranslateError> {
    let inputs = prompt(req)?;
    let mut p = Map::new();
    if let Some(m) = req
        .get("max_completion_tokens")
        .or_else(|| req.get("max_tokens"))
        .and_then(Value::as_u64)
    {
        p.insert("max_new_tokens".into(), json!(m.max(1)));
    }
    if let Some(t) = req.get("temperature").and_then(Value::as_f64) {
        p.insert("temperature".into(), json!(if t == 0.0 { 0.01 } else { t }));
    }
    if let Some(v) = req.get("top_p").filter(|v| v.is_number()) {
        p.insert("top_p".into(), v.clone());
    }
    match req.get("stop") {
        Some(s @ Value::String(_)) => {
            p.insert("stop".into(), json!([s]));
        }
        Some(s @ Value::Array(_)) => {
            p.insert("stop".into(), s.clone());
        }
        _ => {}
    }
    if let Some(n) = req.get("n").and_then(Value::as_u64).filter(|n| *n > 1) {
        p.insert("best_of".into(), json!(n));
        p.insert("do_sample".into(), json!(true));
    }
    let mut body = json!({"inputs": inputs, "parameters": p});
    if stream {
        body["stream"] = json!(true);
    }
    Ok(body)
}

/// The body for a chat request to a Messages API endpoint: the request as it is, `model` the
/// endpoint's name; a stream asks for its usage.
pub fn chat_request(req: &Value, endpoint: &str, stream: bool) -> Result<Value, TranslateError> {
    let Value::Object(mut body) = req.clone() else {
        return Err(invalid("the request must be a JSON object"));
    };
    if !body.get("messages").is_some_and(Value::is_array) {
        return Err(invalid("messages must be a list"));
    }
    body.insert("model".into(), json!(endpoint));
    body.remove("stream_options");
    if stream {
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    } else {
        body.remove("stream");
    }
    Ok(Value::Object(body))
}

/// TGI's generated text and details: `[{generated_text, details}]`, a bare object, or
/// `{generation}` (older JumpStart containers).
fn generation(answer: &Value) -> (String, &Value) {
    let first = match answer {
        Value::Array(a) => a.first().unwrap_or(&Value::Null),
        other => other,
    };
    let text = first
        .get("generated_text")
        .or_else(|| first.get("generation"))
        .and_then(Value::as_str)
        .unwrap_or("");
    (
        text.to_string(),
        first.get("details").unwrap_or(&Value::Null),
    )
}

/// OpenAI `finish_reason` for TGI's (`length`, `eos_token`, `stop_sequence`).
pub fn finish_reason(reason: Option<&str>) -> &'static str {
    match reason {
        Some("length") => "length",
        _ => "stop",
    }
}

/// A TGI answer to `prompt` as a chat completion.
pub fn tgi_to_chat(answer: &Value, prompt: &str, model: &str, id: &str, created: u64) -> Value {
    let (text, details) = generation(answer);
    let prompt_tokens = estimate_tokens(prompt);
    let completion = details
        .get("generated_tokens")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| estimate_tokens(&text));
    json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
            "logprobs": null,
            "finish_reason": finish_reason(details.get("finish_reason").and_then(Value::as_str))}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion},
    })
}

/// The `{inputs}` body of an embeddings request (strings only).
pub fn embed_request(req: &Value) -> Result<Value, TranslateError> {
    match req.get("input") {
        Some(s @ Value::String(_)) => Ok(json!({"inputs": [s]})),
        Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_string) => {
            Ok(json!({"inputs": a}))
        }
        _ => Err(invalid(
            "input must be a string or a non-empty list of strings (token arrays are not supported)",
        )),
    }
}

/// An embeddings answer (a list of vectors, or `{embedding: [...]}`) as OpenAI's list; usage
/// counted in words of `inputs`, as LiteLLM does.
pub fn embed_to_openai(model: &str, body: &Value, answer: &Value) -> Value {
    let vectors = match answer {
        Value::Array(_) => Some(answer),
        other => other.get("embedding"),
    };
    let data: Vec<Value> = vectors
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
        .collect();
    let tokens: u64 = items(body, "inputs")
        .filter_map(Value::as_str)
        .map(|t| t.split_whitespace().count() as u64)
        .sum();
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tgi_body() {
        let req = json!({"messages": [{"role": "system", "content": "Be brief"},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
            "max_tokens": 0, "temperature": 0, "top_p": 0.9, "stop": "\n", "n": 2, "user": "u"});
        assert_eq!(
            tgi_request(&req, true).unwrap(),
            json!({"inputs": "Be brief\n\nHi", "stream": true, "parameters": {"max_new_tokens": 1,
                "temperature": 0.01, "top_p": 0.9, "stop": ["\n"], "best_of": 2, "do_sample": true}})
        );
        assert!(tgi_request(&json!({}), false).is_err());
    }

    #[test]
    fn tgi_answers() {
        let c = tgi_to_chat(
            &json!([{"generated_text": "Hello there"}]),
            "Hi you",
            "m",
            "id",
            1,
        );
        assert_eq!(c["choices"][0]["message"]["content"], "Hello there");
        assert_eq!(
            c["usage"],
            json!({"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5})
        );
        let c = tgi_to_chat(
            &json!({"generated_text": "x", "details": {"finish_reason": "length", "generated_tokens": 7}}),
            "",
            "m",
            "id",
            1,
        );
        assert_eq!(c["choices"][0]["finish_reason"], "length");
        assert_eq!(c["usage"]["completion_tokens"], 7);
        let c = tgi_to_chat(&json!({"generation": "old"}), "", "m", "id", 1);
        assert_eq!(c["choices"][0]["message"]["content"], "old");
    }

    #[test]
    fn chat_body() {
        let req = json!({"model": "x", "messages": [], "stream": true, "stream_options": {"include_usage": false}});
        let b = chat_request(&req, "ep-1", false).unwrap();
        assert_eq!(b, json!({"model": "ep-1", "messages": []}));
        let b = chat_request(&req, "ep-1", true).unwrap();
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert!(chat_request(&json!({"messages": 1}), "e", false).is_err());
    }

    #[test]
    fn embeddings() {
        let body = embed_request(&json!({"input": "one two three"})).unwrap();
        assert_eq!(body, json!({"inputs": ["one two three"]}));
        assert!(embed_request(&json!({"input": [1]})).is_err());
        for answer in [json!([[0.5, 0.25]]), json!({"embedding": [[0.5, 0.25]]})] {
            let out = embed_to_openai("m", &body, &answer);
            assert_eq!(out["data"][0]["embedding"], json!([0.5, 0.25]));
            assert_eq!(out["usage"]["prompt_tokens"], 3);
        }
    }
}
