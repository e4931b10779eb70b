//! Cohere v2 and Mistral translation against golden fixtures (`tests/fixtures/cohere/`,
//! `tests/fixtures/mistral/`): chat request, response, streams replayed in every split size,
//! embeddings both ways; plus provider error classification. `TIANJI_BLESS=1` rewrites the
//! goldens (review the diff before committing).

use base64::Engine as _;
use serde_json::{Value, json};
use tianji::providers::StreamTranslate;
use tianji::providers::cohere::{embed, request, response, stream::StreamTranslator};
use tianji::providers::{StreamEnd, errors, mistral};

const CREATED: u64 = 1_700_000_000;

use crate::common::fixtures::{golden, json as json_fixture, pretty, text as fixture};

#[test]
fn chat_request_to_chat_v2() {
    let req = json_fixture("cohere", "chat_request.json");
    let out = request::to_chat_v2(&req, "command-a-03-2025").unwrap();
    golden("cohere", "chat_v2_request.json", &pretty(&out));
}

#[test]
fn chat_v2_response_to_chat() {
    let resp = json_fixture("cohere", "chat_v2_response.json");
    golden(
        "cohere",
        "chat_response.json",
        &pretty(&response::to_chat(&resp, "command-a-03-2025", CREATED)),
    );
}

fn replay(input: &str, include_usage: bool, split: usize) -> String {
    let mut t = StreamTranslator::new("command-a-03-2025", CREATED, include_usage);
    let mut out = Vec::new();
    for c in input.as_bytes().chunks(split) {
        out.extend(t.feed(c));
    }
    out.extend(t.finish());
    String::from_utf8(out).unwrap()
}

#[test]
fn streams_replayed_in_every_split() {
    for (input, want) in [
        ("stream_tools.sse", "stream_tools_chunks.sse"),
        ("stream_text.sse", "stream_text_chunks.sse"),
    ] {
        let input = fixture("cohere", input);
        let whole = replay(&input, true, input.len());
        golden("cohere", want, &whole);
        for split in 1..64 {
            assert_eq!(replay(&input, true, split), whole, "{want}: split {split}");
        }
        assert_eq!(whole.matches("data: [DONE]\n\n").count(), 1, "{want}");
        assert!(whole.ends_with("data: [DONE]\n\n"), "{want}");
        // without include_usage there is no usage chunk
        let plain = replay(&input, false, 7);
        assert!(!plain.contains(r#""usage""#), "{plain}");
    }
}

#[test]
fn a_cut_stream_still_ends_once() {
    let input = fixture("cohere", "stream_tools.sse");
    let cut = &input[..input.find("event: message-end").unwrap()];
    let mut t = StreamTranslator::new("m", CREATED, true);
    let mut out = t.feed(cut.as_bytes());
    out.extend(t.finish());
    out.extend(t.finish());
    let out = String::from_utf8(out).unwrap();
    assert_eq!(out.matches("data: [DONE]").count(), 1, "{out}");
    assert!(!out.contains("finish_reason\":\"tool_calls"), "{out}");
    // the relay reads it as cut short: `cut` ends it without `[DONE]`
    let mut t = StreamTranslator::new("m", CREATED, true);
    t.feed(cut.as_bytes());
    assert_eq!(t.end_state(), StreamEnd::Open);
    let rest = String::from_utf8([t.cut(), t.finish()].concat()).unwrap();
    assert!(!rest.contains("[DONE]"), "{rest}");
    let mut t = StreamTranslator::new("m", CREATED, true);
    t.feed(input.as_bytes());
    assert_eq!(t.end_state(), StreamEnd::Complete);
}

#[test]
fn stream_error_at_message_end() {
    let input = "data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"ERROR\",\"error\":\"model overloaded\"}}\n\n";
    let out = replay(input, false, 5);
    assert!(
        out.starts_with("data: {\"choices\":[{\"delta\":{\"content\":\"\",\"role\":\"assistant\"}"),
        "{out}"
    );
    assert!(out.contains(r#""message":"model overloaded""#), "{out}");
    assert!(out.contains(r#""finish_reason":"stop""#), "{out}");
    let mut t = StreamTranslator::new("m", CREATED, false);
    t.feed(input.as_bytes());
    assert_eq!(t.end_state(), StreamEnd::Failed("model overloaded".into()));
}

#[test]
fn embeddings_both_ways() {
    let req = json_fixture("cohere", "embed_request.json");
    let out = embed::to_request("embed-v4.0", &req).unwrap();
    golden("cohere", "embed_v2_request.json", &pretty(&out));
    let resp = json_fixture("cohere", "embed_v2_response.json");
    let list = embed::to_openai("embed-v4.0", &resp);
    golden("cohere", "embed_response.json", &pretty(&list));

    // base64 on request: Cohere still asked for floats, the answer encoded as OpenAI does
    let mut b64_req = req.clone();
    b64_req["encoding_format"] = json!("base64");
    assert!(tianji::providers::embedding_list::wants_base64(&b64_req));
    assert_eq!(
        embed::to_request("embed-v4.0", &b64_req).unwrap()["embedding_types"],
        json!(["float"])
    );
    let mut encoded = list.clone();
    tianji::providers::embedding_list::encode_base64(&mut encoded);
    let s = encoded["data"][1]["embedding"].as_str().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).unwrap();
    let floats: Vec<f32> = bytes
        .chunks(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(
        floats,
        vec![-0.011_901_855_5_f32, 0.012_481_689, 0.049_133_3]
    );

    // a single string, and the default input_type
    let one = embed::to_request("m", &json!({"input": "hi"})).unwrap();
    assert_eq!(one["texts"], json!(["hi"]));
    assert_eq!(one["input_type"], "search_document");
    assert!(one.get("output_dimension").is_none());
}

#[test]
fn bad_requests_are_refused() {
    for bad in [
        json!({"messages": "hi"}),
        json!({"messages": [{"content": "no role"}]}),
        json!({"messages": [{"role": "function", "content": "x"}]}),
        json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "t", "function": {"name": "f", "arguments": "{nope"}}]}]}),
        json!({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}),
        json!({"messages": [{"role": "user", "content": 5}]}),
        json!({"messages": [{"role": "tool", "content": "x"}]}),
        json!({"messages": [], "n": 2}),
        json!({"messages": [], "stop": 5}),
        json!({"messages": [], "tool_choice": "sometimes"}),
        json!({"messages": [], "tools": [{"type": "function", "function": {"name": "a"}}],
            "tool_choice": {"type": "function", "function": {"name": "b"}}}),
        json!({"messages": [], "tools": [{"type": "web_search"}]}),
        json!({"messages": [], "response_format": {"type": "yaml"}}),
    ] {
        assert!(request::to_chat_v2(&bad, "m").is_err(), "{bad}");
    }
    for bad in [
        json!({"input": [1, 2, 3]}),
        json!({"input": []}),
        json!({}),
        json!({"input": "x", "encoding_format": "int8"}),
        json!({"input": "x", "dimensions": "big"}),
    ] {
        assert!(embed::to_request("m", &bad).is_err(), "{bad}");
    }
}

#[test]
fn request_choices() {
    let base = json!({"messages": [{"role": "user", "content": "hi"}]});
    let with = |k: &str, v: Value| {
        let mut r = base.clone();
        r[k] = v;
        request::to_chat_v2(&r, "m").unwrap()
    };
    assert_eq!(
        with("tool_choice", json!("required"))["tool_choice"],
        "REQUIRED"
    );
    assert_eq!(with("tool_choice", json!("none"))["tool_choice"], "NONE");
    assert!(
        with("tool_choice", json!("auto"))
            .get("tool_choice")
            .is_none()
    );
    assert_eq!(
        with("response_format", json!({"type": "json_object"}))["response_format"],
        json!({"type": "json_object"})
    );
    assert!(
        with("response_format", json!({"type": "text"}))
            .get("response_format")
            .is_none()
    );
    assert_eq!(
        with("reasoning_effort", json!("none"))["thinking"],
        json!({"type": "disabled"})
    );
    assert_eq!(
        with("reasoning_effort", json!("high"))["thinking"],
        json!({"type": "enabled", "token_budget": 4096})
    );
    let plain = request::to_chat_v2(&base, "m").unwrap();
    assert_eq!(plain["stream"], false);
    assert!(plain.get("max_tokens").is_none());
    // an assistant turn without tool calls keeps its text as content
    let turn = with(
        "messages",
        json!([{"role": "assistant", "content": [{"type": "text", "text": "Hi!"}]}]),
    );
    assert_eq!(
        turn["messages"][0],
        json!({"role": "assistant", "content": "Hi!"})
    );
}

#[test]
fn responses_finish_and_usage() {
    let resp = json!({"id": "r1", "finish_reason": "MAX_TOKENS",
        "message": {"role": "assistant", "content": [{"type": "text", "text": "Once upon"}]},
        "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 2}}});
    let chat = response::to_chat(&resp, "command-r", CREATED);
    assert_eq!(chat["choices"][0]["finish_reason"], "length");
    assert_eq!(chat["choices"][0]["message"]["content"], "Once upon");
    assert!(chat["choices"][0]["message"].get("tool_calls").is_none());
    // billed units when there are no token counts
    assert_eq!(chat["usage"]["prompt_tokens"], 5);
    assert_eq!(chat["usage"]["total_tokens"], 7);
    for (cohere, openai) in [
        ("COMPLETE", "stop"),
        ("STOP_SEQUENCE", "stop"),
        ("MAX_TOKENS", "length"),
        ("TOOL_CALL", "tool_calls"),
        ("ERROR", "stop"),
        ("TIMEOUT", "stop"),
        ("complete", "stop"),
    ] {
        assert_eq!(tianji::providers::cohere::finish_reason(cohere), openai);
    }
}

#[test]
fn mistral_chat_request_fixed() {
    let Value::Object(mut body) = json_fixture("mistral", "chat_request.json") else {
        panic!("not an object")
    };
    mistral::fix_request(&mut body);
    let out = Value::Object(body);
    golden("mistral", "chat_request_fixed.json", &pretty(&out));
    // the assistant's call and its tool result still pair up
    assert_eq!(
        out["messages"][2]["tool_calls"][0]["id"],
        out["messages"][3]["tool_call_id"]
    );
}

#[test]
fn mistral_embedding_request_fixed() {
    let Value::Object(mut body) = json_fixture("mistral", "embedding_request.json") else {
        panic!("not an object")
    };
    mistral::fix_embedding_request(&mut body);
    golden(
        "mistral",
        "embedding_request_fixed.json",
        &pretty(&Value::Object(body)),
    );
}

/// Expected (status, OpenAI type, OpenAI code).
type Want = (u16, &'static str, Option<&'static str>);
/// (status, provider, body, `x-amzn-errortype`, expected).
type Case = (u16, &'static str, &'static str, Option<&'static str>, Want);

#[test]
fn provider_errors_classified() {
    let cases: &[Case] = &[
        (
            400,
            "openai",
            r#"{"error":{"message":"This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
            None,
            (
                400,
                "invalid_request_error",
                Some("context_length_exceeded"),
            ),
        ),
        (
            400,
            "anthropic",
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#,
            None,
            (
                400,
                "invalid_request_error",
                Some("context_length_exceeded"),
            ),
        ),
        (
            529,
            "anthropic",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            None,
            (503, "api_error", None),
        ),
        (
            400,
            "gemini",
            r#"{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#,
            None,
            (
                400,
                "invalid_request_error",
                Some("context_length_exceeded"),
            ),
        ),
        (
            429,
            "vertex_ai",
            r#"[{"error":{"code":429,"message":"Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_minute_per_project_per_base_model","status":"RESOURCE_EXHAUSTED"}}]"#,
            None,
            (429, "rate_limit_error", Some("rate_limit_exceeded")),
        ),
        (
            400,
            "bedrock",
            r#"{"message":"Input is too long for requested model."}"#,
            Some("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            (
                400,
                "invalid_request_error",
                Some("context_length_exceeded"),
            ),
        ),
        (
            429,
            "bedrock",
            r#"{"message":"Too many tokens, please wait before trying again."}"#,
            Some("ThrottlingException"),
            (429, "rate_limit_error", Some("rate_limit_exceeded")),
        ),
        (
            400,
            "azure",
            r#"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400}}"#,
            None,
            (
                400,
                "invalid_request_error",
                Some("content_policy_violation"),
            ),
        ),
        (
            400,
            "cohere",
            r#"{"id":"x","message":"too many tokens: total number of tokens in the prompt cannot exceed 4081 - received 4549."}"#,
            None,
            (
                400,
                "invalid_request_error",
                Some("context_length_exceeded"),
            ),
        ),
        (
            401,
            "mistral",
            r#"{"message":"Unauthorized","request_id":"abc"}"#,
            None,
            (401, "authentication_error", None),
        ),
        (
            500,
            "openai",
            r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}"#,
            None,
            (500, "api_error", None),
        ),
    ];
    for (status, provider, body, header, want) in cases {
        let f = errors::classify(*status, provider, body.as_bytes(), *header);
        assert_eq!((f.status, f.kind, f.code), *want, "{provider} {body}");
        assert!(
            !f.message.is_empty() && !f.message.starts_with('{'),
            "{}",
            f.message
        );
    }
}
