//! Native providers through the gateway against mock upstreams: the exact upstream request
//! (URL, headers, body) and the answer in OpenAI's shape.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::common::mock_upstream::{MockUpstream, Recorded, Reply, default_reply};
use crate::common::{TestGateway, stream};

#[tokio::test]
async fn azure_deployment_url_api_version_and_api_key() {
    let up = MockUpstream::start().await;
    let gw = TestGateway::start(&format!(
        "model_list:\n  - model_name: az\n    tianji_params: {{model: azure/my-gpt4o, api_base: \"http://{0}/\", api_key: az-secret, api_version: \"2024-06-01\"}}\n  - model_name: az-ad\n    tianji_params: {{model: azure/other, api_base: \"http://{0}\", azure_ad_token: eyJ-token}}\n  - model_name: az-v1\n    tianji_params: {{model: azure/gpt-4o, api_base: \"http://{0}/openai/v1\", api_key: az-secret}}\n",
        up.addr
    ))
    .await;
    let body = json!({"model": "az", "messages": [{"role": "user", "content": "hi"}]});
    let r = gw.post("/v1/chat/completions", &body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(sent.path, "/openai/deployments/my-gpt4o/chat/completions");
    assert_eq!(sent.query, "api-version=2024-06-01");
    assert_eq!(sent.headers["api-key"], "az-secret");
    assert!(sent.headers.get("authorization").is_none());
    assert_eq!(sent.json()["model"], "my-gpt4o");
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Hello from the mock"
    );

    // embeddings, default api-version, Entra ID token
    let body = json!({"model": "az-ad", "input": "hi"});
    let r = gw.post("/v1/embeddings", &body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(sent.path, "/openai/deployments/other/embeddings");
    assert_eq!(
        sent.query,
        format!("api-version={}", tianji::router::AZURE_API_VERSION)
    );
    assert_eq!(sent.headers["authorization"], "Bearer eyJ-token");
    assert!(sent.headers.get("api-key").is_none());

    // streamed, with usage asked for on the gateway's behalf and hidden from the client
    let body =
        json!({"model": "az", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let s = stream(&gw.url("/v1/chat/completions"), &body.to_string()).await;
    assert_eq!(s.status, 200);
    assert!(s.text().ends_with("data: [DONE]\n\n"));
    assert_eq!(up.last().json()["stream_options"]["include_usage"], true);

    // the v1 API: OpenAI paths under /openai/v1, no api-version
    let body = json!({"model": "az-v1", "messages": [{"role": "user", "content": "hi"}]});
    let r = gw.post("/v1/chat/completions", &body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(sent.path, "/openai/v1/chat/completions");
    assert_eq!(sent.query, "");
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn azure_errors_keep_status_and_message() {
    let up = MockUpstream::with(Arc::new(|r: &Recorded| {
        if r.json()["max_tokens"] == 1 {
            return Reply::status(
                400,
                json!({"error": {"code": "content_filter", "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.", "param": "prompt", "type": null}}),
            );
        }
        default_reply(r)
    }))
    .await;
    let gw = TestGateway::start(&format!(
        "model_list:\n  - model_name: az\n    tianji_params: {{model: azure/d, api_base: \"http://{}\", api_key: k}}\n",
        up.addr
    ))
    .await;
    let body =
        json!({"model": "az", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]});
    let e: Value = gw
        .post("/v1/chat/completions", &body.to_string())
        .await
        .assert_error(400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("content management policy"),
        "{e}"
    );
    gw.gw.shutdown().await;
}
