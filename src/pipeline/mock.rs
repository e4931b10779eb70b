//! `mock_response`: answer like the provider would, without calling it (demo, tests, dry runs).
//! Usage is estimated from text length (about 4 characters a token), so accounting is exercised.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};

use super::parse::{Expect, ParsedRequest};
use crate::body::Body;
use crate::upstream::sse::Usage;

fn tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4).max(1)
}

fn text_chars(v: &Value) -> usize {
    match v {
        Value::String(s) => s.chars().count(),
        Value::Array(a) => a.iter().map(text_chars).sum(),
        Value::Object(o) => o
            .iter()
            .filter(|(k, _)| matches!(k.as_str(), "content" | "text"))
            .map(|(_, v)| text_chars(v))
            .sum(),
        _ => 0,
    }
}

/// Tokens of text in a JSON value (message contents), about 4 characters a token.
pub fn estimate_tokens(v: &Value) -> u64 {
    tokens(text_chars(v))
}

fn prompt_usage(req: &ParsedRequest, expect: Expect, completion: u64) -> Usage {
    let body: Value = serde_json::from_slice(&req.raw).unwrap_or(Value::Null);
    let field = match expect {
        Expect::Chat | Expect::Messages => "messages",
        Expect::Gemini { .. } => "contents",
        Expect::Completion => "prompt",
        Expect::Embedding | Expect::Responses | Expect::Speech | Expect::Moderation => "input",
        Expect::ImageGeneration => "prompt",
        Expect::Rerank => "query",
        Expect::ImageEdit
        | Expect::ImageVariation
        | Expect::Transcription
        | Expect::Translation
        | Expect::Ocr => "",
    };
    let prompt = tokens(body.get(field).map(text_chars).unwrap_or(0));
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        ..Usage::default()
    }
}

use crate::util::clock::now_whole_secs as now_secs;

fn usage_json(u: &Usage) -> Value {
    json!({"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens, "total_tokens": u.total_tokens})
}

/// Split text into stream pieces (words with their following space).
fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == ' ' {
            out.push(&text[start..=i]);
            start = i + 1;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

/// Build the mocked answer and its usage.
pub fn respond(
    expect: Expect,
    req: &ParsedRequest,
    model: &str,
    text: &str,
    call_id: &str,
) -> (Response<Body>, Usage) {
    let completion = if expect == Expect::Embedding {
        0
    } else {
        tokens(text.chars().count())
    };
    let usage = prompt_usage(req, expect, completion);
    let m = Mocked {
        expect,
        model,
        text,
        call_id,
        created: now_secs(),
    };
    // A mocked Responses call answers with the whole response object, even when streamed.
    if req.stream
        && matches!(
            expect,
            Expect::Chat | Expect::Messages | Expect::Gemini { .. } | Expect::Completion
        )
    {
        return (m.stream(req.include_usage == Some(true), &usage), usage);
    }
    if expect == Expect::Speech {
        // the text itself stands in for the audio
        let mut resp = Response::new(Body::full(Bytes::from(text.to_string())));
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/mpeg"));
        return (resp, usage);
    }
    let bytes = serde_json::to_vec(&m.body(req, &usage)).unwrap_or_default();
    (
        crate::error::json_response(StatusCode::OK, Bytes::from(bytes)),
        usage,
    )
}

/// One mocked answer.
struct Mocked<'a> {
    expect: Expect,
    model: &'a str,
    text: &'a str,
    call_id: &'a str,
    created: u64,
}

impl Mocked<'_> {
    /// A streamed chat or text completion.
    fn stream(&self, include_usage: bool, usage: &Usage) -> Response<Body> {
        let (expect, model, text, call_id, created) = (
            self.expect,
            self.model,
            self.text,
            self.call_id,
            self.created,
        );
        let mut parts = Vec::new();
        let (object, id) = match expect {
            Expect::Chat | Expect::Messages | Expect::Gemini { .. } => {
                ("chat.completion.chunk", format!("chatcmpl-{call_id}"))
            }
            _ => ("text_completion", format!("cmpl-{call_id}")),
        };
        let chunk = |choice: Value| json!({"id": id, "object": object, "created": created, "model": model, "choices": [choice]});
        if matches!(
            expect,
            Expect::Chat | Expect::Messages | Expect::Gemini { .. }
        ) {
            parts.push(sse(&chunk(json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}))));
        }
        for p in pieces(text) {
            let choice = match expect {
                Expect::Chat | Expect::Messages | Expect::Gemini { .. } => {
                    json!({"index": 0, "delta": {"content": p}, "finish_reason": null})
                }
                _ => json!({"index": 0, "text": p, "logprobs": null, "finish_reason": null}),
            };
            parts.push(sse(&chunk(choice)));
        }
        let last = match expect {
            Expect::Chat | Expect::Messages | Expect::Gemini { .. } => {
                json!({"index": 0, "delta": {}, "finish_reason": "stop"})
            }
            _ => json!({"index": 0, "text": "", "logprobs": null, "finish_reason": "stop"}),
        };
        parts.push(sse(&chunk(last)));
        if include_usage {
            parts.push(sse(&json!({"id": id, "object": object, "created": created, "model": model, "choices": [], "usage": usage_json(usage)})));
        }
        parts.push(Bytes::from_static(b"data: [DONE]\n\n"));
        let mut resp = Response::new(Body::chunks(parts));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        resp
    }

    /// A whole answer (not audio).
    fn body(&self, req: &ParsedRequest, usage: &Usage) -> Value {
        let (model, text, call_id, created) = (self.model, self.text, self.call_id, self.created);
        match self.expect {
            Expect::Chat | Expect::Messages | Expect::Gemini { .. } => json!({
                "id": format!("chatcmpl-{call_id}"), "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": usage_json(usage),
            }),
            Expect::Completion => json!({
                "id": format!("cmpl-{call_id}"), "object": "text_completion", "created": created, "model": model,
                "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": "stop"}],
                "usage": usage_json(usage),
            }),
            Expect::Responses => json!({
                "id": format!("resp_{call_id}"), "object": "response", "created_at": created, "model": model,
                "status": "completed",
                "output": [{"type": "message", "id": format!("msg_{call_id}"), "status": "completed", "role": "assistant",
                            "content": [{"type": "output_text", "text": text, "annotations": []}]}],
                "usage": {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens, "total_tokens": usage.total_tokens},
            }),
            Expect::Embedding => {
                let body: Value = serde_json::from_slice(&req.raw).unwrap_or(Value::Null);
                let n = match body.get("input") {
                    Some(Value::Array(a)) if a.iter().all(|x| !x.is_number()) => a.len().max(1),
                    _ => 1,
                };
                let data: Vec<Value> = (0..n)
                    .map(|i| {
                        let v: Vec<f64> = (0..8)
                            .map(|k| (((i * 31 + k * 7) % 17) as f64 - 8.0) / 10.0)
                            .collect();
                        json!({"object": "embedding", "index": i, "embedding": v})
                    })
                    .collect();
                let mut list = json!({"object": "list", "data": data, "model": model,
                       "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.prompt_tokens}});
                if crate::providers::embedding_list::wants_base64(&body) {
                    crate::providers::embedding_list::encode_base64(&mut list);
                }
                list
            }
            Expect::Speech => Value::Null,
            Expect::Transcription | Expect::Translation => json!({"text": text}),
            Expect::Ocr => json!({
                "pages": [{"index": 0, "markdown": text, "images": [], "dimensions": null}],
                "model": model, "document_annotation": null,
                "usage_info": {"pages_processed": 1, "doc_size_bytes": null}, "object": "ocr",
            }),
            Expect::ImageGeneration | Expect::ImageEdit | Expect::ImageVariation => json!({
                "created": created,
                "data": [{"url": "https://example.com/tianji-mock.png", "revised_prompt": text}],
            }),
            Expect::Moderation => json!({
                "id": format!("modr-{call_id}"), "model": model,
                "results": [{"flagged": false, "categories": {}, "category_scores": {}}],
            }),
            Expect::Rerank => {
                let body: Value = serde_json::from_slice(&req.raw).unwrap_or(Value::Null);
                let n = body
                    .get("documents")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let results: Vec<Value> = (0..n)
                    .map(|i| json!({"index": i, "relevance_score": 1.0 / (i as f64 + 1.0)}))
                    .collect();
                json!({"id": call_id, "results": results, "meta": {"billed_units": {"search_units": 1}}})
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::parse::parse;

    #[test]
    fn chat_mock_has_realistic_usage() {
        let req = parse(
            Bytes::from_static(
                br#"{"model":"m","messages":[{"role":"user","content":"hello there friend"}]}"#,
            ),
            Expect::Chat,
        )
        .unwrap();
        let (_, u) = respond(Expect::Chat, &req, "m", "Hi! How can I help?", "x");
        assert_eq!(u.prompt_tokens, 5);
        assert_eq!(u.completion_tokens, 5);
        assert_eq!(u.total_tokens, 10);
    }

    #[test]
    fn pieces_keep_all_text() {
        assert_eq!(pieces("a bc d").concat(), "a bc d");
        assert_eq!(pieces("a bc d").len(), 3);
    }
}
