//! Non-streaming pass-through: what reaches the provider and what comes back.

use serde_json::json;

use crate::common::mock_upstream::MockUpstream;
use crate::common::{MASTER_KEY, TestGateway, one_model, send};

#[tokio::test]
async fn chat_completion_reaches_the_provider_with_model_replaced_and_its_own_key() {
    let up = MockUpstream::start().await;
    let gw = TestGateway::start(&one_model("my-gpt", "openai/gpt-4o-mini", &up.base(), "")).await;
    let r = gw
        .post(
            "/v1/chat/completions",
            r#"{"model":"my-gpt","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from the mock");
    let seen = up.last();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(seen.json()["model"], "gpt-4o-mini");
    assert_eq!(seen.headers["authorization"], "Bearer sk-provider-secret");
    // the caller's key never goes upstream
    assert!(!format!("{:?}", seen.headers).contains(MASTER_KEY));
    for h in [
        "x-tianji-call-id",
        "x-tianji-model-id",
        "x-tianji-model-api-base",
        "x-tianji-response-duration-ms",
        "x-tianji-overhead-duration-ms",
    ] {
        assert!(r.header(h).is_some(), "missing {h}");
    }
    assert_eq!(
        r.header("x-tianji-model-api-base"),
        Some(up.base().as_str())
    );
    let id = uuid::Uuid::parse_str(r.header("x-tianji-call-id").unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7);
}

#[tokio::test]
async fn unknown_fields_and_unusual_values_pass_through_byte_for_byte() {
    let up = MockUpstream::start().await;
    let gw = TestGateway::start(&one_model("m", "openai/upstream-name", &up.base(), "")).await;
    let body = "{\n  \"messages\": [{\"role\":\"user\",\"content\":\"caf\\u00e9 \\\"q\\\" \u{1F600}\"}],\n  \"model\"  :  \"m\",\n  \"temperature\": 0.70,\n  \"x_vendor\": {\"deep\": [1e400, 123456789012345678901234567890, -0.0, null, true]},\n  \"logit_bias\": {\"50256\": -100}\n}";
    let r = gw.post("/v1/chat/completions", body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = String::from_utf8(up.last().body.to_vec()).unwrap();
    assert_eq!(sent, body.replace("\"m\"", "\"upstream-name\""));
}

#[tokio::test]
async fn embeddings_and_completions() {
    let up = MockUpstream::start().await;
    let gw = TestGateway::start(&one_model("m", "openai/x", &up.base(), "")).await;
    let r = gw
        .post("/v1/embeddings", r#"{"model":"m","input":"hello"}"#)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"][0]["embedding"], json!([0.1, 0.2, 0.3]));
    assert_eq!(up.last().path, "/v1/embeddings");
    let r = gw
        .post("/completions", r#"{"model":"m","prompt":"once"}"#)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["object"], "text_completion");
    assert_eq!(up.last().path, "/v1/completions");
}

#[tokio::test]
async fn models_list_and_get() {
    let up = MockUpstream::start().await;
    let yaml = format!(
        "{}router_settings:\n  model_group_alias:\n    alias-a: m\n    hidden-b: {{model: m, hidden: true}}\n",
        one_model("m", "openai/x", &up.base(), "")
    );
    let gw = TestGateway::start(&yaml).await;
    let r = gw.get("/v1/models").await;
    assert_eq!(r.status, 200);
    let ids: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec!["m", "alias-a"]);
    assert_eq!(gw.get("/models/m").await.json()["id"], "m");
    gw.get("/v1/models/nope").await.assert_error(404);
    // hidden aliases still route
    let r = gw
        .post(
            "/v1/chat/completions",
            r#"{"model":"hidden-b","messages":[]}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.last().json()["model"], "x");
}

#[tokio::test]
async fn azure_style_paths_take_the_model_from_the_path() {
    let up = MockUpstream::start().await;
    let gw = TestGateway::start(&one_model("dep1", "openai/real-model", &up.base(), "")).await;
    let url = gw.url("/openai/deployments/dep1/chat/completions?api-version=2024-02-01");
    let r = send(
        http::Method::POST,
        &url,
        &[("api-key", MASTER_KEY)],
        r#"{"messages":[{"role":"user","content":"x"}]}"#.into(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.last().json()["model"], "real-model");
    let url = gw.url("/engines/dep1/embeddings");
    let r = send(
        http::Method::POST,
        &url,
        &[("api-key", MASTER_KEY)],
        r#"{"input":"x","model":"ignored"}"#.into(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.last().json()["model"], "real-model");
}

#[tokio::test]
async fn wildcard_routing_picks_the_most_specific_deployment() {
    let specific = MockUpstream::start().await;
    let general = MockUpstream::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: \"*\"\n    tianji_params: {{model: \"openai/*\", api_base: \"{g}\"}}\n  - model_name: \"groq/*\"\n    tianji_params: {{model: \"groq/*\", api_base: \"{s}\", api_key: gk}}\n",
        g = general.base(),
        s = specific.base()
    );
    let gw = TestGateway::start(&yaml).await;
    let r = gw
        .post(
            "/v1/chat/completions",
            r#"{"model":"groq/llama-3.1-8b","messages":[]}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(specific.last().json()["model"], "llama-3.1-8b");
    assert_eq!(specific.last().headers["authorization"], "Bearer gk");
    let r = gw
        .post(
            "/v1/chat/completions",
            r#"{"model":"gpt-4o","messages":[]}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(general.last().json()["model"], "gpt-4o");
    assert_eq!(specific.requests().len(), 1);
}

#[tokio::test]
async fn mock_response_in_config_or_request_answers_without_upstream() {
    let up = MockUpstream::start().await;
    let yaml = format!(
        "{}  - model_name: canned\n    tianji_params: {{model: openai/x, mock_response: \"canned answer\"}}\n",
        one_model("m", "openai/x", &up.base(), "")
    );
    let gw = TestGateway::start(&yaml).await;
    let r = gw
        .post(
            "/v1/chat/completions",
            r#"{"model":"canned","messages":[{"role":"user","content":"hello"}]}"#,
        )
        .await;
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "canned answer"
    );
    assert!(r.json()["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let r = gw
        .post(
            "/v1/chat/completions",
            r#"{"model":"m","messages":[],"mock_response":"from body"}"#,
        )
        .await;
    assert_eq!(r.json()["choices"][0]["message"]["content"], "from body");
    assert!(up.requests().is_empty());
}
