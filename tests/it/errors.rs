//! Bad input, auth failures, upstream failures: always a JSON error with the right status.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::json;

use crate::common::mock_upstream::{MockUpstream, Reply};
use crate::common::{MASTER_KEY, TestGateway, one_model, send};

#[tokio::test]
async fn each_auth_failure_is_a_401_with_the_reference_message() {
    let up = MockUpstream::start().await;
    let gw = TestGateway::start(&one_model("m", "openai/x", &up.base(), "")).await;
    let url = gw.url("/v1/chat/completions");
    let body = Bytes::from_static(br#"{"model":"m","messages":[]}"#);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "Authentication Error, No api key passed in."),
        (
            vec![("authorization", MASTER_KEY)],
            "Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix.",
        ),
        (
            vec![("authorization", "Bearer sk-wrong")],
            "Authentication Error, Invalid API key provided.",
        ),
        (
            vec![("x-api-key", "sk-wrong")],
            "Authentication Error, Invalid API key provided.",
        ),
    ];
    for (headers, msg) in cases {
        let r = send(Method::POST, &url, &headers, body.clone()).await;
        let v = r.assert_error(401);
        assert_eq!(v["error"]["message"], msg);
    }
    for h in ["x-api-key", "api-key", "x-tianji-api-key"] {
        let r = send(Method::POST, &url, &[(h, MASTER_KEY)], body.clone()).await;
        assert_eq!(r.status, 200, "{h}: {}", r.text());
    }
    let r = send(Method::GET, &gw.url("/v1/models"), &[], Bytes::new()).await;
    r.assert_error(401);
    assert!(up.requests().len() == 3);
}

#[tokio::test]
async fn bad_input_gets_a_4xx_json_error_never_a_500() {
    let up = MockUpstream::start().await;
    let yaml = format!(
        "{}  - model_name: \"*\"\n    tianji_params: {{model: \"*\", api_base: \"{}\"}}\n",
        one_model("m", "openai/x", &up.base(), ""),
        up.base()
    );
    let gw = TestGateway::start(&yaml).await;
    let cases: Vec<(&[u8], u16, &str)> = vec![
        (b"{not json", 400, "Invalid JSON"),
        (b"", 400, "empty body"),
        (b"[1,2]", 400, "must be a JSON object"),
        (br#"{"messages":[]}"#, 400, "model"),
        (br#"{"model":"m","messages":"hello"}"#, 400, "messages"),
        (br#"{"model":"m"}"#, 400, "messages"),
        (
            b"{\"model\":\"m\",\"messages\":[{\"content\":\"\xff\xfe\"}]}",
            400,
            "UTF-8",
        ),
        (
            br#"{"model":"m","model":"other","messages":[]}"#,
            400,
            "duplicate",
        ),
        (br#"{"model":42,"messages":[]}"#, 400, "must be a string"),
        (
            br#"{"model":"nosuchprovider/x","messages":[]}"#,
            400,
            "Unknown provider 'nosuchprovider'",
        ),
    ];
    for (body, status, needle) in cases {
        let r = send(
            Method::POST,
            &gw.url("/v1/chat/completions"),
            &[("authorization", &format!("Bearer {MASTER_KEY}"))],
            Bytes::copy_from_slice(body),
        )
        .await;
        assert_eq!(
            r.status.as_u16(),
            status,
            "case {}: {}",
            String::from_utf8_lossy(body),
            r.text()
        );
        let v = r.assert_error(status);
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{needle}: {v}"
        );
    }
    // unknown model without a catch-all
    let gw2 = TestGateway::start(&one_model("m", "openai/x", &up.base(), "")).await;
    let v = gw2
        .post("/v1/chat/completions", r#"{"model":"gpt-9","messages":[]}"#)
        .await
        .assert_error(400);
    assert_eq!(v["error"]["param"], "model");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid model name passed in model=gpt-9")
    );
    assert!(up.requests().is_empty());
}

#[tokio::test]
async fn oversize_body_is_413() {
    let up = MockUpstream::start().await;
    let yaml = format!(
        "{}general_settings:\n  master_key: {MASTER_KEY}\n  max_request_size_mb: 0.01\n",
        one_model("m", "openai/x", &up.base(), "")
    );
    let gw = TestGateway::start(&yaml).await;
    let big = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(20_000)
    );
    gw.post("/v1/chat/completions", &big)
        .await
        .assert_error(413);
    assert!(up.requests().is_empty());
}

#[tokio::test]
async fn unknown_path_is_404_and_wrong_method_405() {
    let gw = TestGateway::start("model_list: []\n").await;
    gw.get("/v1/nothing-here").await.assert_error(404);
    let r = gw.get("/v1/chat/completions").await;
    r.assert_error(405);
    assert_eq!(r.header("allow"), Some("POST"));
}

#[tokio::test]
async fn upstream_429_and_500_keep_status_and_provider_message() {
    let up = MockUpstream::with(Arc::new(|r| {
        if r.json()["messages"][0]["content"] == "limit" {
            Reply::Json {
                status: 429,
                body: json!({"error": {"message": "Rate limit reached for gpt-4o", "type": "requests", "param": null, "code": "rate_limit_exceeded"}}).to_string(),
                headers: vec![("retry-after", "7".into())],
            }
        } else {
            Reply::status(500, json!({"error": {"message": "The server had an error", "type": "server_error"}}))
        }
    }))
    .await;
    let gw = TestGateway::start(&one_model("m", "openai/x", &up.base(), "")).await;
    let r = gw
        .post(
            "/v1/chat/completions",
            r#"{"model":"m","messages":[{"role":"user","content":"limit"}]}"#,
        )
        .await;
    let v = r.assert_error(429);
    assert_eq!(v["error"]["message"], "Rate limit reached for gpt-4o");
    assert_eq!(v["error"]["type"], "requests");
    assert_eq!(r.header("retry-after"), Some("7"));
    assert!(r.header("x-tianji-call-id").is_some());
    let v = gw
        .post(
            "/v1/chat/completions",
            r#"{"model":"m","messages":[{"role":"user","content":"boom"}]}"#,
        )
        .await
        .assert_error(500);
    assert_eq!(v["error"]["message"], "The server had an error");
    // streaming requests fail the same way before the first byte
    let v = gw
        .post(
            "/v1/chat/completions",
            r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"limit"}]}"#,
        )
        .await
        .assert_error(429);
    assert_eq!(v["error"]["message"], "Rate limit reached for gpt-4o");
}

#[tokio::test]
async fn max_retries_retries_5xx_then_succeeds() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = calls.clone();
    let up = MockUpstream::with(Arc::new(move |_| {
        if c.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            Reply::status(503, json!({"error": {"message": "busy"}}))
        } else {
            Reply::status(
                200,
                crate::common::mock_upstream::chat_completion("x", "ok"),
            )
        }
    }))
    .await;
    let gw = TestGateway::start(&one_model(
        "m",
        "openai/x",
        &up.base(),
        "      max_retries: 1\n",
    ))
    .await;
    let r = gw
        .post("/v1/chat/completions", r#"{"model":"m","messages":[]}"#)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.requests().len(), 2);
}

#[tokio::test]
async fn upstream_timeout_is_a_json_408() {
    let up = MockUpstream::with(Arc::new(|_| Reply::Hang)).await;
    let gw = TestGateway::start(&one_model(
        "m",
        "openai/x",
        &up.base(),
        "      timeout: 0.3\n",
    ))
    .await;
    let v = gw
        .post("/v1/chat/completions", r#"{"model":"m","messages":[]}"#)
        .await
        .assert_error(408);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{v}"
    );
}

#[tokio::test]
async fn connection_refused_and_dropped_connections_are_502() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let gw = TestGateway::start(&one_model(
        "m",
        "openai/x",
        &format!("http://127.0.0.1:{port}/v1"),
        "",
    ))
    .await;
    let v = gw
        .post("/v1/chat/completions", r#"{"model":"m","messages":[]}"#)
        .await
        .assert_error(502);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Connection error"),
        "{v}"
    );
    assert!(!v.to_string().contains("sk-provider-secret"));

    let up = MockUpstream::with(Arc::new(|_| Reply::Drop)).await;
    let gw = TestGateway::start(&one_model("m", "openai/x", &up.base(), "")).await;
    gw.post("/v1/chat/completions", r#"{"model":"m","messages":[]}"#)
        .await
        .assert_error(502);
    let _ = Duration::ZERO;
}

#[tokio::test]
async fn a_provider_without_an_endpoint_answers_501() {
    let gw = TestGateway::start("model_list:\n  - model_name: claude\n    tianji_params: {model: anthropic/claude-3-5-sonnet, api_key: k}\n").await;
    // Anthropic translates chat, not embeddings
    gw.post("/v1/embeddings", r#"{"model":"claude","input":"x"}"#)
        .await
        .assert_error(501);
}
