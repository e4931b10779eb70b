//! Azure AI (serverless and Foundry endpoints, Claude through Anthropic's Messages API) and
//! `azure_text` through the gateway against a mock we own: the URL, `api-version` and auth
//! header sent, chat whole and streamed, embeddings, completions, upstream errors kept, SpendLogs
//! rows naming the provider; and the official `openai` SDK.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply, default_reply};
use crate::common::{MASTER_KEY, TestGateway, eventually_async, providers, stream};

fn mock(r: &Recorded) -> Reply {
    let said = String::from_utf8_lossy(&r.body);
    if said.contains("fail400") {
        return Reply::status(
            400,
            json!({"error": {"code": "Bad Request", "message": "Extra inputs are not permitted", "status": 400}}),
        );
    }
    if said.contains("fail429") {
        return Reply::status(
            429,
            json!({"error": {"code": "429", "message": "Rate limit is exceeded. Try again in 1 seconds."}}),
        );
    }
    if r.path.ends_with("/completions") && !r.path.ends_with("/chat/completions") {
        if said.contains("\"stream\":true") {
            let chunk = |text: &str, finish: serde_json::Value| {
                format!(
                    "data: {}\n\n",
                    json!({"id": "cmpl-1", "object": "text_completion", "model": "gpt-35-instruct",
                        "choices": [{"index": 0, "text": text, "finish_reason": finish}]})
                )
            };
            return Reply::Sse {
                events: vec![
                    chunk("once", serde_json::Value::Null),
                    chunk(" upon", json!("stop")),
                    format!(
                        "data: {}\n\n",
                        json!({"id": "cmpl-1", "object": "text_completion", "model": "gpt-35-instruct",
                            "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})
                    ),
                    "data: [DONE]\n\n".into(),
                ],
                gap: Duration::ZERO,
            };
        }
        return default_reply(r);
    }
    providers::reply(r)
}

fn yaml(a: std::net::SocketAddr, db: Option<&str>) -> String {
    let db = db.map_or(String::new(), |u| format!("  database_url: \"{u}\"\n"));
    format!(
        "model_list:
  - model_name: mistral
    tianji_params: {{model: azure_ai/mistral-large, api_base: \"http://{a}\", api_key: az-ai-key}}
  - model_name: phi
    tianji_params: {{model: azure_ai/phi-4, api_base: \"http://{a}/v1?api-version=2024-05-01-preview\", azure_ad_token: entra-tok}}
  - model_name: az-embed
    tianji_params: {{model: azure_ai/cohere-embed-v3, api_base: \"http://{a}\", api_key: az-ai-key, api_version: \"2024-06-01\"}}
  - model_name: az-claude
    tianji_params: {{model: azure_ai/claude-sonnet-4-5, api_base: \"http://{a}/anthropic\", api_key: az-claude-key}}
  - model_name: instruct
    tianji_params: {{model: azure_text/gpt-35-instruct, api_base: \"http://{a}\", api_key: az-text-key, api_version: \"2024-06-01\"}}
general_settings:
  master_key: {MASTER_KEY}
{db}"
    )
}

fn chat(model: &str, text: &str) -> String {
    json!({"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": text}]})
        .to_string()
}

fn header<'a>(r: &'a Recorded, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_ai_urls_auth_claude_and_azure_text() {
    let db = TestDb::create().await;
    let up = MockUpstream::with(Arc::new(mock)).await;
    let gw = TestGateway::start(&yaml(up.addr, Some(&db.url))).await;

    // a serverless endpoint: `/chat/completions`, the key as Bearer, no api-version set
    let r = gw
        .post("/v1/chat/completions", &chat("mistral", "hi"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["object"], "chat.completion");
    let sent = up.last();
    assert_eq!(sent.path, "/chat/completions");
    assert_eq!(sent.query, "");
    assert_eq!(header(&sent, "authorization"), Some("Bearer az-ai-key"));
    assert!(sent.headers.get("api-key").is_none());
    assert_eq!(sent.json()["model"], "mistral-large");

    // the api-version in api_base kept, an Entra ID token as Bearer; streamed
    let body =
        json!({"model": "phi", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let s = stream(&gw.url("/v1/chat/completions"), &body.to_string()).await;
    assert_eq!(s.status, 200);
    assert!(s.text().ends_with("data: [DONE]\n\n"), "{}", s.text());
    let sent = up.last();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.query, "api-version=2024-05-01-preview");
    assert_eq!(header(&sent, "authorization"), Some("Bearer entra-tok"));
    assert_eq!(sent.json()["stream_options"]["include_usage"], true);

    // embeddings with the deployment's api-version
    let r = gw
        .post(
            "/v1/embeddings",
            &json!({"model": "az-embed", "input": ["a", "b"]}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);
    let sent = up.last();
    assert_eq!(sent.path, "/embeddings");
    assert_eq!(sent.query, "api-version=2024-06-01");

    // Claude: Anthropic's Messages API under `/anthropic`, the key as `api-key`
    let r = gw
        .post("/v1/chat/completions", &chat("az-claude", "hi"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["choices"][0]["message"]["content"].is_string(), "{v}");
    let sent = up.last();
    assert_eq!(sent.path, "/anthropic/v1/messages");
    assert_eq!(header(&sent, "api-key"), Some("az-claude-key"));
    assert_eq!(header(&sent, "anthropic-version"), Some("2023-06-01"));
    assert!(sent.headers.get("x-api-key").is_none());
    assert_eq!(sent.json()["model"], "claude-sonnet-4-5");
    let body = json!({"model": "az-claude", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let s = stream(&gw.url("/v1/chat/completions"), &body.to_string()).await;
    assert!(s.text().ends_with("data: [DONE]\n\n"), "{}", s.text());

    // azure_text: chat sent as a text completion, and /v1/completions as it is
    let r = gw
        .post("/v1/chat/completions", &chat("instruct", "hi"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["object"], "chat.completion");
    let sent = up.last();
    assert_eq!(sent.path, "/openai/deployments/gpt-35-instruct/completions");
    assert_eq!(sent.query, "api-version=2024-06-01");
    assert_eq!(header(&sent, "api-key"), Some("az-text-key"));
    assert_eq!(sent.json()["prompt"], "hi");
    let r = gw
        .post(
            "/v1/completions",
            &json!({"model": "instruct", "prompt": "Once"}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["object"], "text_completion");
    assert_eq!(up.last().json()["prompt"], "Once");
    let body = json!({"model": "instruct", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let s = stream(&gw.url("/v1/chat/completions"), &body.to_string()).await;
    let text = s.text();
    assert!(text.contains("chat.completion.chunk"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");

    // upstream errors keep their class
    gw.post("/v1/chat/completions", &chat("mistral", "fail400"))
        .await
        .assert_error(400);
    let e = gw
        .post("/v1/chat/completions", &chat("mistral", "fail429"))
        .await
        .assert_error(429);
    assert!(!e.to_string().contains("az-ai-key"));

    let client = db.client().await;
    let ok = eventually_async(Duration::from_secs(10), || async {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM \"TianjiLLM_SpendLogs\" WHERE custom_llm_provider IN ('azure_ai', 'azure_text') AND status = 'success'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        n >= 8
    })
    .await;
    assert!(ok, "SpendLogs rows never came");
    let rows = client
        .query(
            "SELECT custom_llm_provider, total_tokens FROM \"TianjiLLM_SpendLogs\" WHERE model IN ('mistral-large', 'claude-sonnet-4-5') AND status = 'success'",
            &[],
        )
        .await
        .unwrap();
    assert!(rows.len() >= 3, "{}", rows.len());
    for r in rows {
        let (p, t): (String, i32) = (r.get(0), r.get(1));
        assert_eq!(p, "azure_ai");
        assert!(t > 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_ai_and_azure_text_through_the_openai_sdk() {
    let up = MockUpstream::with(Arc::new(mock)).await;
    crate::it::sdk::run_python_with(
        "openai_models.py",
        &yaml(up.addr, None),
        MASTER_KEY,
        &[
            "chat=mistral",
            "chat=az-claude",
            "chat=instruct",
            "embed=az-embed",
        ],
    )
    .await;
}
