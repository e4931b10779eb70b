//! Guardrails (issue 23 items 1-4): the built-ins (spec US4 scenarios 1-2), the content
//! filter, selection by request, key and team, each mode, the HTTP guardrails against mock
//! servers speaking their documented formats, fail closed / fail open, and the endpoints.

mod builtins;
mod endpoints;
mod modes;
mod remote;

use std::sync::Arc;

use http::Method;
use serde_json::{Value, json};

use crate::common::mock_upstream::{
    MockUpstream, Recorded, Reply, chat_stream_events, default_reply,
};
use crate::common::{MASTER_KEY, Resp, TestGateway, send};

/// The provider: answers echo the last user message (`echo: ...`), streamed word by word.
pub(super) async fn echo_upstream() -> MockUpstream {
    MockUpstream::with(Arc::new(|r: &Recorded| {
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        if !r.path.ends_with("/chat/completions") {
            return default_reply(r);
        }
        let last = body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_string();
        let content = format!("echo: {last}");
        if body["stream"] == true {
            let words: Vec<String> = content.split(' ').map(|w| format!("{w} ")).collect();
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            return Reply::Sse {
                events: chat_stream_events("m", &words, false),
                gap: std::time::Duration::ZERO,
            };
        }
        Reply::status(
            200,
            crate::common::mock_upstream::chat_completion("m", &content),
        )
    }))
    .await
}

/// A gateway with model `m` at `up`, `extra` YAML after the model list.
pub(super) async fn gateway(up: &MockUpstream, extra: &str) -> TestGateway {
    let yaml = format!(
        "model_list:\n  - model_name: m\n    tianji_params: {{model: openai/m, api_base: \"{}\", api_key: sk-provider-secret}}\n{extra}",
        up.base()
    );
    TestGateway::start(&yaml).await
}

/// POST `body` to `path` with `key`.
pub(super) async fn post(gw: &TestGateway, path: &str, key: &str, body: Value) -> Resp {
    send(
        Method::POST,
        &gw.url(path),
        &[("authorization", &format!("Bearer {key}"))],
        bytes::Bytes::from(body.to_string()),
    )
    .await
}

/// A chat request with the master key.
pub(super) async fn chat(gw: &TestGateway, body: Value) -> Resp {
    let mut body = body;
    if body.get("model").is_none() {
        body["model"] = json!("m");
    }
    post(gw, "/v1/chat/completions", MASTER_KEY, body).await
}

/// A user message.
pub(super) fn says(text: &str) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": text}]})
}

/// The chat requests the provider got.
pub(super) fn chats(up: &MockUpstream) -> Vec<Recorded> {
    (up.requests().into_iter())
        .filter(|r| r.path.ends_with("/chat/completions"))
        .collect()
}
