//! Anthropic translation against golden fixtures (`tests/fixtures/anthropic/`): request,
//! response, and a stream replayed in every split size. `TIANJI_BLESS=1` rewrites the goldens
//! (review the diff before committing).

use crate::common::fixtures::{self, pretty};
use serde_json::Value;
use tianji::providers::StreamTranslate;
use tianji::providers::anthropic::{request, response, stream::StreamTranslator};

const DIR: &str = "anthropic";

fn fixture(name: &str) -> String {
    fixtures::text(DIR, name)
}

fn golden(name: &str, got: &str) {
    fixtures::golden(DIR, name, got)
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

mod through_the_gateway {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::fixture;
    use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};
    use crate::common::{TestGateway, stream};

    fn anthropic(r: &Recorded) -> Reply {
        if r.path != "/v1/messages" {
            return Reply::status(
                404,
                json!({"type": "error", "error": {"type": "not_found_error", "message": "no"}}),
            );
        }
        if r.json()["stream"] == true {
            let events = fixture("stream.sse")
                .split("\n\n")
                .filter(|e| !e.trim().is_empty())
                .map(|e| format!("{e}\n\n"))
                .collect();
            return Reply::Sse {
                events,
                gap: Duration::from_millis(2),
            };
        }
        if r.json()["max_tokens"] == 7 {
            return Reply::status(
                400,
                json!({"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long"}}),
            );
        }
        Reply::Json {
            status: 200,
            body: fixture("messages_response.json"),
            headers: vec![],
        }
    }

    async fn gateway(up: &MockUpstream) -> TestGateway {
        TestGateway::start(&format!(
            "model_list:\n  - model_name: claude\n    tianji_params: {{model: anthropic/claude-sonnet-4-5, api_base: \"http://{}\", api_key: sk-ant-test}}\n",
            up.addr
        ))
        .await
    }

    #[tokio::test]
    async fn chat_to_an_anthropic_deployment() {
        let up = MockUpstream::with(Arc::new(anthropic)).await;
        let gw = gateway(&up).await;
        let req: Value = serde_json::from_str(&fixture("chat_request.json")).unwrap();
        let mut plain = req.clone();
        plain["stream"] = json!(false);
        let r = gw.post("/v1/chat/completions", &plain.to_string()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        // the exact upstream request
        let sent = up.last();
        assert_eq!(sent.path, "/v1/messages");
        assert_eq!(sent.headers["x-api-key"], "sk-ant-test");
        assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
        assert!(sent.headers.get("authorization").is_none());
        let mut want: Value = serde_json::from_str(&fixture("messages_request.json")).unwrap();
        want["stream"] = json!(false);
        assert_eq!(sent.json(), want);
        // the answer in OpenAI's shape, costed from Anthropic's usage
        let chat: Value = r.json();
        let golden: Value = serde_json::from_str(&fixture("chat_response.json")).unwrap();
        assert_eq!(chat["choices"], golden["choices"]);
        assert_eq!(chat["usage"], golden["usage"]);
        assert!(r.header("x-tianji-response-cost").is_some());
        // provider errors keep their status and message
        let mut short = plain.clone();
        short["max_completion_tokens"] = json!(7);
        let e = gw
            .post("/v1/chat/completions", &short.to_string())
            .await
            .assert_error(400);
        assert_eq!(e["error"]["message"], "prompt is too long");
        gw.gw.shutdown().await;
    }

    #[tokio::test]
    async fn streamed_chat_to_an_anthropic_deployment() {
        let up = MockUpstream::with(Arc::new(anthropic)).await;
        let gw = gateway(&up).await;
        let body = json!({"model": "claude", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
        let s = stream(&gw.url("/v1/chat/completions"), &body.to_string()).await;
        assert_eq!(s.status, 200);
        let text = s.text();
        assert!(text.contains(r#""content":"Hello""#), "{text}");
        assert!(text.contains(r#""finish_reason":"tool_calls""#), "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        assert!(
            !text.contains(r#""usage""#),
            "usage chunk sent without include_usage: {text}"
        );
        // with include_usage the client gets the usage chunk too
        let body = json!({"model": "claude", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "hi"}]});
        let s = stream(&gw.url("/v1/chat/completions"), &body.to_string()).await;
        let text = s.text();
        assert!(text.contains(r#""prompt_tokens":30"#), "{text}");
        assert!(up.last().json().get("stream_options").is_none());
        gw.gw.shutdown().await;
    }
}
