//! `/v1/messages` (a client speaking Anthropic Messages): golden fixtures of the translation to
//! chat and back (`tests/fixtures/messages/`, `TIANJI_BLESS=1` rewrites them), then through the
//! gateway to an Anthropic deployment (native) and an OpenAI-compatible one (translated).

use crate::common::fixtures::{self, pretty};
use serde_json::Value;
use tianji::providers::StreamTranslate;
use tianji::providers::anthropic::{egress, ingress};

const DIR: &str = "messages";

fn fixture(name: &str) -> String {
    fixtures::text(DIR, name)
}

fn golden(name: &str, got: &str) {
    fixtures::golden(DIR, name, got)
}

fn read(dir: &str, name: &str) -> String {
    fixtures::text(dir, name)
}

#[test]
fn messages_request_to_chat() {
    let req: Value = serde_json::from_str(&fixture("messages_request.json")).unwrap();
    let out = ingress::to_chat(&req, "gpt-4o").unwrap();
    golden("chat_request.json", &pretty(&out));
}

#[test]
fn chat_response_to_messages() {
    let resp: Value = serde_json::from_str(&fixture("chat_response.json")).unwrap();
    golden(
        "messages_response.json",
        &pretty(&egress::to_messages_response(&resp)),
    );
}

#[test]
fn chat_stream_to_messages_events_in_every_split() {
    let input = fixture("chat_stream.sse");
    let whole = {
        let mut t = egress::ChunkTranslator::new("gpt-4o");
        let mut out = t.feed(input.as_bytes());
        out.extend(t.finish());
        String::from_utf8(out).unwrap()
    };
    golden("messages_stream.sse", &whole);
    for split in 1..64 {
        let mut t = egress::ChunkTranslator::new("gpt-4o");
        let mut out = Vec::new();
        for c in input.as_bytes().chunks(split) {
            out.extend(t.feed(c));
        }
        out.extend(t.finish());
        assert_eq!(String::from_utf8(out).unwrap(), whole, "split {split}");
    }
}

#[test]
fn bad_messages_requests_are_refused() {
    use serde_json::json;
    for bad in [
        json!({"messages": "hi"}),
        json!({"messages": [{"role": "system", "content": "x"}]}),
        json!({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}),
        json!({"messages": [], "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
        json!({"messages": [], "tool_choice": {"type": "tool"}}),
    ] {
        assert!(ingress::to_chat(&bad, "m").is_err(), "{bad}");
    }
}

mod through_the_gateway {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use http::Method;
    use serde_json::{Value, json};

    use super::read;
    use crate::common::mock_upstream::{MockUpstream, Recorded, Reply, default_reply};
    use crate::common::{MASTER_KEY, TestGateway, send};

    fn anthropic(r: &Recorded) -> Reply {
        if r.path == "/v1/messages/count_tokens" {
            return Reply::status(200, json!({"input_tokens": 77}));
        }
        if r.path != "/v1/messages" {
            return Reply::status(404, json!({"type": "error", "error": {"message": "no"}}));
        }
        if r.json()["stream"] == true {
            let events = read("anthropic", "stream.sse")
                .split("\n\n")
                .filter(|e| !e.trim().is_empty())
                .map(|e| format!("{e}\n\n"))
                .collect();
            return Reply::Sse {
                events,
                gap: Duration::from_millis(1),
            };
        }
        Reply::Json {
            status: 200,
            body: read("anthropic", "messages_response.json"),
            headers: vec![],
        }
    }

    /// `/v1/messages` with an Anthropic client's headers (its Tianji key in `x-api-key`).
    async fn messages(gw: &TestGateway, path: &str, body: &Value) -> crate::common::Resp {
        send(
            Method::POST,
            &gw.url(path),
            &[
                ("x-api-key", MASTER_KEY),
                ("anthropic-version", "2023-06-01"),
                ("anthropic-beta", "prompt-caching-2024-07-31"),
            ],
            Bytes::from(body.to_string()),
        )
        .await
    }

    async fn gateway(anthropic: &MockUpstream, openai: &MockUpstream) -> TestGateway {
        TestGateway::start(&format!(
            "model_list:\n  - model_name: claude\n    tianji_params: {{model: anthropic/claude-sonnet-4-5, api_base: \"http://{}\", api_key: sk-ant-provider}}\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"http://{}/v1\", api_key: sk-openai-provider}}\n",
            anthropic.addr, openai.addr
        ))
        .await
    }

    #[tokio::test]
    async fn native_to_anthropic_forwards_the_body_as_received() {
        let (a, o) = (
            MockUpstream::with(Arc::new(anthropic)).await,
            MockUpstream::start().await,
        );
        let gw = gateway(&a, &o).await;
        let raw = "{\"model\":\"claude\",  \"max_tokens\":64,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"top_k\":3}";
        let r = send(
            Method::POST,
            &gw.url("/v1/messages"),
            &[
                ("x-api-key", MASTER_KEY),
                ("anthropic-beta", "prompt-caching-2024-07-31"),
            ],
            Bytes::from(raw),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let sent = a.last();
        assert_eq!(sent.path, "/v1/messages");
        // the body exactly as received, model replaced
        assert_eq!(
            std::str::from_utf8(&sent.body).unwrap(),
            raw.replace("\"claude\"", "\"claude-sonnet-4-5\"")
        );
        // the deployment's credential, never the caller's
        assert_eq!(sent.headers["x-api-key"], "sk-ant-provider");
        assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
        assert_eq!(sent.headers["anthropic-beta"], "prompt-caching-2024-07-31");
        assert!(sent.headers.get("authorization").is_none());
        // the answer untouched, costed from Anthropic's usage
        assert_eq!(
            r.json(),
            serde_json::from_str::<Value>(&read("anthropic", "messages_response.json")).unwrap()
        );
        assert!(r.header("x-tianji-response-cost").is_some());

        // streamed: Anthropic's events relayed untouched
        let body = json!({"model": "claude", "max_tokens": 64, "stream": true,
            "messages": [{"role": "user", "content": "hi"}]});
        let r = messages(&gw, "/v1/messages", &body).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), read("anthropic", "stream.sse"));

        // count_tokens goes to Anthropic
        let r = messages(&gw, "/v1/messages/count_tokens", &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json(), json!({"input_tokens": 77}));
        assert_eq!(a.last().path, "/v1/messages/count_tokens");
        gw.gw.shutdown().await;
    }

    #[tokio::test]
    async fn translated_for_an_openai_deployment() {
        let (a, o) = (
            MockUpstream::with(Arc::new(anthropic)).await,
            MockUpstream::with(Arc::new(|r: &Recorded| {
                if r.json()["stream"] == true {
                    let events = super::fixture("chat_stream.sse")
                        .split("\n\n")
                        .filter(|e| !e.trim().is_empty())
                        .map(|e| format!("{e}\n\n"))
                        .collect();
                    return Reply::Sse {
                        events,
                        gap: Duration::from_millis(1),
                    };
                }
                if r.json()["max_tokens"] == 5 {
                    return Reply::status(
                        400,
                        json!({"error": {"message": "This model's maximum context length is 8 tokens", "type": "invalid_request_error", "code": "context_length_exceeded"}}),
                    );
                }
                if r.json()["tools"].is_array() {
                    return Reply::Json {
                        status: 200,
                        body: super::fixture("chat_response.json"),
                        headers: vec![],
                    };
                }
                default_reply(r)
            }))
            .await,
        );
        let gw = gateway(&a, &o).await;
        let mut req: Value =
            serde_json::from_str(&super::fixture("messages_request.json")).unwrap();
        req["model"] = json!("gpt");
        req["stream"] = json!(false);
        let r = messages(&gw, "/v1/messages", &req).await;
        assert_eq!(r.status, 200, "{}", r.text());
        // the exact upstream request: the golden chat translation, model replaced
        let sent = o.last();
        assert_eq!(sent.path, "/v1/chat/completions");
        assert_eq!(sent.headers["authorization"], "Bearer sk-openai-provider");
        assert!(sent.headers.get("x-api-key").is_none());
        let mut want: Value = serde_json::from_str(&super::fixture("chat_request.json")).unwrap();
        want.as_object_mut().unwrap().remove("stream");
        want.as_object_mut().unwrap().remove("stream_options");
        // OpenAI-compatible upstreams get no `cache_control` marks
        tianji::providers::anthropic::ingress::strip_cache_control(&mut want);
        assert!(!sent.text().contains("cache_control"));
        assert_eq!(sent.json(), want);
        // the answer in Anthropic's shape
        let golden: Value =
            serde_json::from_str(&super::fixture("messages_response.json")).unwrap();
        assert_eq!(r.json(), golden);
        assert!(r.header("x-tianji-response-cost").is_some());

        // streamed, tools included
        req["stream"] = json!(true);
        let r = messages(&gw, "/v1/messages", &req).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), super::fixture("messages_stream.sse"));
        assert_eq!(o.last().json()["stream_options"]["include_usage"], true);

        // provider errors keep status and message
        let small = json!({"model": "gpt", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
        let r = messages(&gw, "/v1/messages", &small).await;
        let e = r.assert_error(400);
        assert_eq!(e["error"]["code"], "context_length_exceeded");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("maximum context length"),
            "{e}"
        );

        // count_tokens is estimated for non-Anthropic models
        let r = messages(&gw, "/v1/messages/count_tokens", &small).await;
        assert_eq!(r.status, 200);
        assert!(r.json()["input_tokens"].as_u64().unwrap() >= 1);

        // bad input is a 400 JSON error, nothing sent upstream
        let before = o.requests().len();
        for bad in [
            json!({"model": "gpt", "max_tokens": 5, "messages": "hi"}),
            json!({"model": "gpt", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "audio"}]}]}),
            json!({"max_tokens": 5, "messages": []}),
        ] {
            messages(&gw, "/v1/messages", &bad).await.assert_error(400);
        }
        assert_eq!(o.requests().len(), before);
        gw.gw.shutdown().await;
    }

    #[tokio::test]
    async fn mock_response_answers_in_messages_format() {
        let gw = TestGateway::start(
            "model_list:\n  - model_name: m\n    tianji_params: {model: openai/gpt-4o, mock_response: \"Hi there\"}\n",
        )
        .await;
        let body = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
        let r = messages(&gw, "/v1/messages", &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["type"], "message");
        assert_eq!(v["content"][0]["text"], "Hi there");
        assert_eq!(v["stop_reason"], "end_turn");
        let mut body = body;
        body["stream"] = json!(true);
        let r = messages(&gw, "/v1/messages", &body).await;
        let text = r.text();
        assert!(text.starts_with("event: message_start\n"), "{text}");
        assert!(
            text.contains(r#"{"text":"Hi ","type":"text_delta"}"#),
            "{text}"
        );
        assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
        gw.gw.shutdown().await;
    }

    /// A stream that stalls past `stream_timeout` ends with Anthropic's `error` event, whether
    /// the stream is Anthropic's own (tapped) or translated from chat chunks.
    #[tokio::test]
    async fn mid_stream_stall_is_an_anthropic_error_event() {
        let stall = |first: String| Reply::Sse {
            events: vec![first, "data: {}\n\n".into()],
            gap: Duration::from_secs(30),
        };
        let ant = MockUpstream::with(Arc::new(move |_: &Recorded| {
            stall(
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n".into(),
            )
        }))
        .await;
        let oai = MockUpstream::with(Arc::new(move |_: &Recorded| {
            stall("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n".into())
        }))
        .await;
        let gw = TestGateway::start(&format!(
            "model_list:\n  - model_name: claude\n    tianji_params: {{model: anthropic/claude-sonnet-4-5, api_base: \"http://{}\", api_key: k, stream_timeout: 0.3}}\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"http://{}/v1\", api_key: k, stream_timeout: 0.3}}\n",
            ant.addr, oai.addr
        ))
        .await;
        for model in ["claude", "gpt"] {
            let body = json!({"model": model, "max_tokens": 10, "stream": true,
                "messages": [{"role": "user", "content": "hi"}]});
            let r = messages(&gw, "/v1/messages", &body).await;
            assert_eq!(r.status, 200, "{model}");
            let text = r.text();
            let last = text
                .trim_end()
                .rsplit("\n\n")
                .next()
                .unwrap_or_default()
                .to_string();
            assert!(last.starts_with("event: error\ndata: "), "{model}: {text}");
            let ev: Value = serde_json::from_str(last.split_once("data: ").unwrap().1).unwrap();
            assert_eq!(ev["type"], "error", "{model}: {ev}");
            assert!(
                ev["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("stream_timeout"),
                "{model}: {ev}"
            );
            assert!(text.starts_with("event: message_start"), "{model}: {text}");
            assert!(!text.contains("\"code\":\"502\""), "{model}: {text}");
        }
        gw.gw.shutdown().await;
    }
}
