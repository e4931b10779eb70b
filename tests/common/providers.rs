//! One mock upstream that speaks every native provider wire we translate to, told apart by
//! path: Anthropic Messages, OpenAI and Azure chat, Gemini and Vertex AI (with a token
//! endpoint), Bedrock Converse (SigV4 checked, event-stream answers) and embeddings, Cohere v2.
//! Every chat answer is the same conversation: the text "Hello there" and a
//! `get_weather(city="Paris")` tool call.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use super::mock_upstream::{Recorded, Reply};

/// AWS credentials the Bedrock mock accepts (those of AWS's SigV4 test suite).
pub const AWS_KEY_ID: &str = "AKIDEXAMPLE";
pub const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// The access token the mock token endpoint hands out for a Vertex service account.
pub const VERTEX_TOKEN: &str = "ya29.mock-vertex-token";
/// Anthropic requests with this `max_tokens` fail with "prompt is too long".
pub const TOO_LONG_MAX_TOKENS: u64 = 7;

const ARGS: &str = r#"{"city":"Paris"}"#;

/// Answer `r` as the provider its path belongs to.
pub fn reply(r: &Recorded) -> Reply {
    let path = r.path.as_str();
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let stream = body["stream"].as_bool().unwrap_or(false);
    if path == "/token" {
        return vertex_token(r);
    }
    if path.starts_with("/v1/responses") {
        return responses(r);
    }
    if path == "/search" {
        let hit =
            |t: &str| json!({"title": t, "url": format!("https://{t}.example"), "content": "c"});
        return Reply::status(200, json!({"results": [hit("one"), hit("two")]}));
    }
    if path.ends_with("/messages/count_tokens") {
        return Reply::status(200, json!({"input_tokens": 14}));
    }
    if path.ends_with("/v1/messages") {
        return anthropic(&body, stream);
    }
    if path.ends_with("/chat/completions") {
        let usage = body["stream_options"]["include_usage"] == true;
        return openai_chat(&body, stream, usage);
    }
    if ["/files", "/batches", "/fine_tuning/jobs"]
        .iter()
        .any(|c| path.trim_start_matches("/v1").starts_with(c))
    {
        return provider("up")(r);
    }
    if let Some(reply) = openai_other(path, &body) {
        return reply;
    }
    if path.ends_with("/embeddings") {
        let n = body["input"].as_array().map_or(1, Vec::len);
        let data: Vec<Value> = (0..n)
            .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}))
            .collect();
        return Reply::status(
            200,
            json!({"object": "list", "model": body["model"], "data": data, "usage": {"prompt_tokens": 2, "total_tokens": 2}}),
        );
    }
    if path.starts_with("/model/") {
        if let Err(why) = sigv4_check(r) {
            return Reply::status(403, json!({"message": why}));
        }
        return bedrock(path, &body);
    }
    if let Some((_, method)) = path.rsplit_once(':') {
        if path.contains("/projects/")
            && r.headers.get("authorization").map(|v| v.as_bytes())
                != Some(format!("Bearer {VERTEX_TOKEN}").as_bytes())
        {
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials.",
            );
        }
        return gemini(method, &body);
    }
    match path {
        "/v2/chat" if stream => Reply::Sse {
            events: cohere_stream(),
            gap: Duration::ZERO,
        },
        "/v2/chat" => Reply::status(
            200,
            json!({"id": "co-1", "finish_reason": "TOOL_CALL",
                "message": {"role": "assistant", "content": [{"type": "text", "text": "Hello there"}],
                    "tool_calls": [{"id": "get_weather_1", "type": "function", "function": {"name": "get_weather", "arguments": ARGS}}]},
                "usage": {"billed_units": {"input_tokens": 14, "output_tokens": 9}, "tokens": {"input_tokens": 20, "output_tokens": 9}}}),
        ),
        "/v2/embed" => {
            let n = body["texts"].as_array().map_or(0, Vec::len);
            Reply::status(
                200,
                json!({"id": "e-1", "embeddings": {"float": vec![json!([0.1, 0.2]); n]}, "texts": body["texts"],
                    "meta": {"billed_units": {"input_tokens": 2}}, "response_type": "embeddings_by_type"}),
            )
        }
        _ => Reply::status(404, json!({"message": format!("no mock for {path}")})),
    }
}

/// The audio bytes `/audio/speech` answers with (not valid UTF-8, in three pieces).
pub fn speech_bytes() -> Vec<Bytes> {
    let all: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    all.chunks(1000).map(Bytes::copy_from_slice).collect()
}

/// OpenAI's images, audio, moderations and rerank endpoints (Cohere, Jina and Voyage rerank
/// told apart by their request: Voyage sends `top_k`).
fn openai_other(path: &str, body: &Value) -> Option<Reply> {
    let path = path.split('?').next().unwrap_or(path);
    Some(if path.ends_with("/images/generations") {
        let n = body["n"].as_u64().unwrap_or(1) as usize;
        Reply::status(
            200,
            json!({"created": 1, "data": vec![json!({"url": "https://img.example/1.png"}); n]}),
        )
    } else if path.ends_with("/audio/transcriptions") || path.ends_with("/audio/translations") {
        Reply::status(200, json!({"text": "Hello there"}))
    } else if path.ends_with("/images/edits") || path.ends_with("/images/variations") {
        Reply::status(
            200,
            json!({"created": 1, "data": [{"b64_json": "iVBORw0KGgo="}]}),
        )
    } else if path.ends_with("/audio/speech") {
        Reply::Raw {
            status: 200,
            content_type: "audio/mpeg",
            chunks: speech_bytes(),
        }
    } else if path.ends_with("/moderations") {
        Reply::status(
            200,
            json!({"id": "modr-1", "model": body["model"], "results": [{"flagged": true,
                "categories": {"violence": true}, "category_scores": {"violence": 0.9}}]}),
        )
    } else if path.ends_with("/rerank") {
        let n = body["documents"].as_array().map_or(0, Vec::len);
        let results: Vec<Value> = (0..n)
            .rev()
            .map(|i| json!({"index": i, "relevance_score": 0.1 * (i as f64 + 1.0), "document": body["documents"][i]}))
            .collect();
        if body.get("top_k").is_some() {
            json_ok(
                json!({"object": "list", "data": results, "model": body["model"], "usage": {"total_tokens": 11}}),
            )
        } else if path == "/v2/rerank" {
            json_ok(
                json!({"id": "rr-1", "results": results, "meta": {"billed_units": {"search_units": 1}}}),
            )
        } else {
            json_ok(
                json!({"model": body["model"], "results": results, "usage": {"total_tokens": 9}}),
            )
        }
    } else {
        return None;
    })
}

fn json_ok(v: Value) -> Reply {
    Reply::status(200, v)
}

fn sse(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| format!("data: {e}\n\n")).collect()
}

// ---- Anthropic ----

fn anthropic(body: &Value, stream: bool) -> Reply {
    if body["max_tokens"] == TOO_LONG_MAX_TOKENS {
        return Reply::status(
            400,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long: 250000 tokens > 200000 maximum"}}),
        );
    }
    let model = body["model"].clone();
    if !stream {
        return Reply::status(
            200,
            json!({"id": "msg_mock", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": "Hello there"},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 14, "output_tokens": 9}}),
        );
    }
    let events = [
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_mock", "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 14, "output_tokens": 1}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " there"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\":"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 9}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ];
    Reply::Sse {
        events: events
            .iter()
            .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
            .collect(),
        gap: Duration::ZERO,
    }
}

// ---- OpenAI (and Azure) ----

fn openai_chat(body: &Value, stream: bool, include_usage: bool) -> Reply {
    let model = body["model"].clone();
    let call = json!({"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ARGS}});
    if !stream {
        return Reply::status(
            200,
            json!({"id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there", "tool_calls": [call]}, "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 14, "completion_tokens": 9, "total_tokens": 23}}),
        );
    }
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut events = vec![
        chunk(
            json!({"role": "assistant", "content": "Hello"}),
            Value::Null,
        ),
        chunk(json!({"content": " there"}), Value::Null),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
    ];
    if include_usage {
        events.push(json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model,
            "choices": [], "usage": {"prompt_tokens": 14, "completion_tokens": 9, "total_tokens": 23}}));
    }
    let mut events = sse(&events);
    events.push("data: [DONE]\n\n".into());
    Reply::Sse {
        events,
        gap: Duration::ZERO,
    }
}

// ---- Gemini and Vertex AI ----

fn google_error(code: u16, status: &str, message: &str) -> Reply {
    Reply::status(
        code,
        json!({"error": {"code": code, "message": message, "status": status}}),
    )
}

/// The token endpoint of the fixture service account: a JWT-bearer grant gets [`VERTEX_TOKEN`].
fn vertex_token(r: &Recorded) -> Reply {
    let form = String::from_utf8_lossy(&r.body);
    let grant = form.contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer");
    let assertion = form
        .split('&')
        .find_map(|kv| kv.strip_prefix("assertion="))
        .unwrap_or_default();
    if !grant || assertion.split('.').count() != 3 {
        return Reply::status(400, json!({"error": "invalid_grant"}));
    }
    Reply::status(
        200,
        json!({"access_token": VERTEX_TOKEN, "expires_in": 3599, "token_type": "Bearer"}),
    )
}

fn gemini(method: &str, body: &Value) -> Reply {
    let usage = json!({"promptTokenCount": 14, "candidatesTokenCount": 9, "totalTokenCount": 23});
    let call = json!({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}});
    match method {
        "generateContent" => Reply::status(
            200,
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello there"}, call]}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": usage, "modelVersion": "gemini-mock", "responseId": "g-1"}),
        ),
        "streamGenerateContent" => {
            let part = |p: Value| json!({"candidates": [{"content": {"role": "model", "parts": [p]}, "index": 0}], "modelVersion": "gemini-mock", "responseId": "g-1"});
            let mut last = part(call.clone());
            last["candidates"][0]["finishReason"] = json!("STOP");
            last["usageMetadata"] = usage;
            Reply::Sse {
                events: sse(&[
                    part(json!({"text": "Hello"})),
                    part(json!({"text": " there"})),
                    last,
                ]),
                gap: Duration::ZERO,
            }
        }
        "countTokens" => Reply::status(200, json!({"totalTokens": 14})),
        "batchEmbedContents" => {
            let n = body["requests"].as_array().map_or(0, Vec::len);
            Reply::status(
                200,
                json!({"embeddings": vec![json!({"values": [0.1, 0.2]}); n]}),
            )
        }
        "predict" => {
            let n = body["instances"].as_array().map_or(0, Vec::len);
            Reply::status(
                200,
                json!({"predictions": vec![json!({"embeddings": {"values": [0.1, 0.2], "statistics": {"token_count": 2}}}); n]}),
            )
        }
        _ => google_error(404, "NOT_FOUND", "no such method"),
    }
}

// ---- Bedrock ----

fn bedrock(path: &str, body: &Value) -> Reply {
    if path.ends_with("/converse") {
        return Reply::status(
            200,
            json!({"output": {"message": {"role": "assistant", "content": [{"text": "Hello there"},
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}]}},
                "stopReason": "tool_use", "usage": {"inputTokens": 14, "outputTokens": 9, "totalTokens": 23},
                "metrics": {"latencyMs": 5}}),
        );
    }
    if path.ends_with("/converse-stream") {
        let events = [
            ("messageStart", json!({"role": "assistant"})),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": "Hello"}}),
            ),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": " there"}}),
            ),
            ("contentBlockStop", json!({"contentBlockIndex": 0})),
            (
                "contentBlockStart",
                json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather"}}}),
            ),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\":"}}}),
            ),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Paris\"}"}}}),
            ),
            ("contentBlockStop", json!({"contentBlockIndex": 1})),
            ("messageStop", json!({"stopReason": "tool_use"})),
            (
                "metadata",
                json!({"usage": {"inputTokens": 14, "outputTokens": 9, "totalTokens": 23}, "metrics": {"latencyMs": 5}}),
            ),
        ];
        return Reply::Raw {
            status: 200,
            content_type: "application/vnd.amazon.eventstream",
            chunks: events
                .iter()
                .map(|(t, p)| eventstream_event(t, p))
                .collect(),
        };
    }
    if path.ends_with("/invoke") {
        if body.get("inputText").is_some() {
            return Reply::status(
                200,
                json!({"embedding": [0.1, 0.2], "inputTextTokenCount": 2}),
            );
        }
        let n = body["texts"].as_array().map_or(0, Vec::len);
        return Reply::status(
            200,
            json!({"embeddings": vec![json!([0.1, 0.2]); n], "id": "b-1", "response_type": "embeddings_floats", "texts": body["texts"]}),
        );
    }
    Reply::status(404, json!({"message": "UnknownOperationException"}))
}

/// One AWS event-stream message carrying a JSON event.
pub fn eventstream_event(event_type: &str, payload: &Value) -> Bytes {
    Bytes::from(tianji::providers::bedrock::eventstream::encode(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    ))
}

/// Recompute the request's SigV4 signature from scratch (the algorithm of AWS's published test
/// suite, not the gateway's signer) with [`AWS_KEY_ID`]/[`AWS_SECRET`], over the headers the
/// request says it signed, and compare.
pub fn sigv4_check(r: &Recorded) -> Result<(), String> {
    sigv4_check_for(r, "bedrock")
}

/// [`sigv4_check`] for AWS `service_name` (`bedrock`, `sagemaker`).
pub fn sigv4_check_for(r: &Recorded, service_name: &str) -> Result<(), String> {
    use ring::hmac;
    use sha2::{Digest, Sha256};
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let h = |n: &str| {
        r.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| format!("missing header {n}"))
    };
    let authz = h("authorization")?;
    let date = h("x-amz-date")?;
    let rest = authz
        .strip_prefix(&format!("AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/"))
        .ok_or("wrong algorithm or access key")?;
    let (scope, rest) = rest
        .split_once(", SignedHeaders=")
        .ok_or("no SignedHeaders")?;
    let (signed, signature) = rest.split_once(", Signature=").ok_or("no Signature")?;
    let mut scope_parts = scope.split('/');
    let (day, region, service) = (
        scope_parts.next().unwrap_or_default(),
        scope_parts.next().unwrap_or_default(),
        scope_parts.next().unwrap_or_default(),
    );
    if service != service_name || !date.starts_with(day) {
        return Err(format!("bad scope {scope}"));
    }
    for required in ["host", "x-amz-date"] {
        if !signed.split(';').any(|s| s == required) {
            return Err(format!("{required} not signed"));
        }
    }
    // the canonical URI encodes the path as sent once more
    let canonical_path: String = r
        .path
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let mut canonical_headers = String::new();
    for name in signed.split(';') {
        canonical_headers.push_str(&format!("{name}:{}\n", h(name)?.trim()));
    }
    let creq = format!(
        "POST\n{canonical_path}\n{}\n{canonical_headers}\n{signed}\n{}",
        r.query,
        hex(&Sha256::digest(&r.body))
    );
    let sts = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex(&Sha256::digest(creq.as_bytes()))
    );
    let mut key = format!("AWS4{AWS_SECRET}").into_bytes();
    for part in [day, region, service, "aws4_request"] {
        key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), part.as_bytes())
            .as_ref()
            .to_vec();
    }
    let expected =
        hex(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), sts.as_bytes()).as_ref());
    if expected == signature {
        Ok(())
    } else {
        Err(format!(
            "The request signature we calculated does not match the signature you provided ({signature} != {expected})"
        ))
    }
}

// ---- Cohere ----

fn cohere_stream() -> Vec<String> {
    let events = [
        json!({"type": "message-start", "id": "co-1", "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
        json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
        json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hello"}}}}),
        json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": " there"}}}}),
        json!({"type": "content-end", "index": 0}),
        json!({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": {"id": "get_weather_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}}}}),
        json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {"function": {"arguments": "{\"city\":"}}}}}),
        json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {"function": {"arguments": "\"Paris\"}"}}}}}),
        json!({"type": "tool-call-end", "index": 0}),
        json!({"type": "message-end", "delta": {"finish_reason": "TOOL_CALL", "usage": {"billed_units": {"input_tokens": 14, "output_tokens": 9}, "tokens": {"input_tokens": 20, "output_tokens": 9}}}}),
    ];
    events
        .iter()
        .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap_or("")))
        .collect()
}

// ---- Files, batches, fine-tuning jobs ----

/// A provider holding files, batches and fine-tuning jobs; every id carries `tag`.
pub fn provider(tag: &'static str) -> impl Fn(&Recorded) -> Reply + Send + Sync {
    move |r: &Recorded| {
        let ok = |v: Value| Reply::status(200, v);
        let p = r.path.trim_start_matches("/v1");
        let file = |id: &str| json!({"id": id, "object": "file", "bytes": 3, "filename": "in.jsonl", "purpose": "batch"});
        let batch = |id: &str, status: &str| {
            json!({"id": id, "object": "batch", "status": status, "endpoint": "/v1/chat/completions",
                "input_file_id": format!("file-{tag}-in"), "output_file_id": format!("file-{tag}-out"), "error_file_id": null})
        };
        let job = |id: &str| {
            json!({"id": id, "object": "fine_tuning.job", "model": "gpt-4o-mini", "status": "queued",
                "training_file": format!("file-{tag}-in"), "validation_file": null, "result_files": [format!("file-{tag}-res")]})
        };
        match (r.method.as_str(), p) {
            ("POST", "/files") => ok(file(&format!("file-{tag}-in"))),
            ("GET", "/files") => ok(
                json!({"object": "list", "data": [file(&format!("file-{tag}-in"))], "has_more": false}),
            ),
            ("GET", x) if x.ends_with("/content") => Reply::Raw {
                status: 200,
                content_type: "application/octet-stream",
                chunks: vec![Bytes::from(file_content(x))],
            },
            ("GET", x) if x.starts_with("/files/") => ok(file(&x["/files/".len()..])),
            ("DELETE", x) if x.starts_with("/files/") => {
                ok(json!({"id": &x["/files/".len()..], "object": "file", "deleted": true}))
            }
            ("POST", "/batches") => ok(batch(&format!("batch_{tag}"), "validating")),
            ("GET", "/batches") => ok(
                json!({"object": "list", "data": [batch(&format!("batch_{tag}"), "completed")], "has_more": false}),
            ),
            ("POST", x) if x.ends_with("/cancel") && x.starts_with("/batches/") => ok(batch(
                x.trim_start_matches("/batches/")
                    .trim_end_matches("/cancel"),
                "cancelling",
            )),
            ("GET", x) if x.starts_with("/batches/") => {
                ok(batch(&x["/batches/".len()..], "completed"))
            }
            ("POST", "/fine_tuning/jobs") => ok(job(&format!("ftjob-{tag}"))),
            ("GET", x) if x.ends_with("/events") => ok(
                json!({"object": "list", "data": [{"object": "fine_tuning.job.event", "id": "ev-1", "message": "queued"}], "has_more": false}),
            ),
            ("GET", x) if x.ends_with("/checkpoints") => {
                ok(json!({"object": "list", "data": [], "has_more": false}))
            }
            ("POST", x) if x.ends_with("/cancel") => ok(job(x
                .trim_start_matches("/fine_tuning/jobs/")
                .trim_end_matches("/cancel"))),
            ("GET", x) if x.starts_with("/fine_tuning/jobs/") => {
                ok(job(&x["/fine_tuning/jobs/".len()..]))
            }
            _ => Reply::status(
                404,
                json!({"error": {"message": format!("no route {} {p}", r.method)}}),
            ),
        }
    }
}

/// A file's content as the mock serves it: one JSONL batch line naming the path.
pub fn file_content(path: &str) -> String {
    format!("{{\"custom_id\":\"{path}\",\"body\":{{\"max_tokens\":5}}}}\n")
}

/// The id of every response the Responses API mock makes.
pub const RESPONSE_ID: &str = "resp_up1";

/// The OpenAI Responses API: create (streamed or not), get, delete, cancel, input items.
pub fn responses(r: &Recorded) -> Reply {
    let ok = |v: Value| Reply::status(200, v);
    match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/v1/responses") => {
            if String::from_utf8_lossy(&r.body).contains("\"stream\":true") {
                let ev = |t: &str, v: Value| format!("event: {t}\ndata: {v}\n\n");
                Reply::Sse {
                    events: vec![
                        ev(
                            "response.created",
                            json!({"type": "response.created", "response": {"id": RESPONSE_ID, "object": "response", "status": "in_progress"}}),
                        ),
                        ev(
                            "response.output_text.delta",
                            json!({"type": "response.output_text.delta", "item_id": "msg_1", "delta": "Hi"}),
                        ),
                        ev(
                            "response.completed",
                            json!({"type": "response.completed", "response": {"id": RESPONSE_ID, "object": "response", "status": "completed", "usage": {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}}}),
                        ),
                    ],
                    gap: Duration::from_millis(5),
                }
            } else {
                ok(
                    json!({"id": RESPONSE_ID, "object": "response", "status": "completed", "output": [],
                          "usage": {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}}),
                )
            }
        }
        ("GET", p) if p.ends_with("/input_items") => ok(json!({"object": "list", "data": []})),
        ("POST", p) if p.ends_with("/cancel") => {
            ok(json!({"id": RESPONSE_ID, "object": "response", "status": "cancelled"}))
        }
        ("DELETE", _) => ok(json!({"id": RESPONSE_ID, "object": "response", "deleted": true})),
        ("GET", _) => ok(json!({"id": RESPONSE_ID, "object": "response", "status": "completed"})),
        _ => Reply::status(404, json!({"error": {"message": "no such route"}})),
    }
}
