//! Anthropic translation against golden fixtures (`tests/fixtures/anthropic/`): request,
//! response, and a stream replayed in every split size. `TIANJI_BLESS=1` rewrites the goldens
//! (review the diff before committing).

use serde_json::Value;
use tianji::providers::anthropic::{request, response, stream::StreamTranslator};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/anthropic/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn golden(name: &str, got: &str) {
    let path = format!(
        "{}/tests/fixtures/anthropic/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    if std::env::var("TIANJI_BLESS").is_ok() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    assert_eq!(
        got,
        fixture(name),
        "{name} differs (TIANJI_BLESS=1 rewrites it)"
    );
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap() + "\n"
}

#[test]
fn chat_request_to_messages() {
    let req: Value = serde_json::from_str(&fixture("chat_request.json")).unwrap();
    let out = request::to_messages(&req, "claude-sonnet-4-5").unwrap();
    golden("messages_request.json", &pretty(&out));
}

#[test]
fn messages_response_to_chat() {
    let resp: Value = serde_json::from_str(&fixture("messages_response.json")).unwrap();
    golden(
        "chat_response.json",
        &pretty(&response::to_chat(&resp, 1_700_000_000)),
    );
}

#[test]
fn stream_replayed_in_every_split() {
    let input = fixture("stream.sse");
    let whole = {
        let mut t = StreamTranslator::new(1_700_000_000, true);
        let mut out = t.feed(input.as_bytes());
        out.extend(t.finish());
        String::from_utf8(out).unwrap()
    };
    golden("stream_chunks.sse", &whole);
    for split in 1..64 {
        let mut t = StreamTranslator::new(1_700_000_000, true);
        let mut out = Vec::new();
        for c in input.as_bytes().chunks(split) {
            out.extend(t.feed(c));
        }
        out.extend(t.finish());
        assert_eq!(String::from_utf8(out).unwrap(), whole, "split {split}");
    }
}

#[test]
fn bad_requests_are_refused() {
    let bad = serde_json::json!({"messages": "hi"});
    assert!(request::to_messages(&bad, "m").is_err());
    let bad = serde_json::json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "t", "function": {"name": "f", "arguments": "{nope"}}]}]});
    assert!(request::to_messages(&bad, "m").is_err());
    let bad =
        serde_json::json!({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]});
    assert!(request::to_messages(&bad, "m").is_err());
}
