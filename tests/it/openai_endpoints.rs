//! OpenAI's other JSON endpoints through the gateway: images, audio speech (bytes relayed as
//! they come), moderations, and rerank in Cohere's shape to Cohere, Jina and Voyage.

use std::sync::Arc;

use http::Method;
use serde_json::json;

use crate::common::mock_upstream::MockUpstream;
use crate::common::providers::{self, speech_bytes};
use crate::common::{TestGateway, send};

async fn gateway(up: &MockUpstream) -> TestGateway {
    let a = up.addr;
    TestGateway::start(&format!(
        "model_list:
  - model_name: image
    tianji_params: {{model: openai/gpt-image-1, api_base: \"http://{a}/v1\", api_key: sk-up}}
    model_info: {{output_cost_per_image: 0.04}}
  - model_name: az-image
    tianji_params: {{model: azure/dalle, api_base: \"http://{a}\", api_key: az-up, api_version: \"2024-10-21\"}}
  - model_name: tts
    tianji_params: {{model: openai/gpt-4o-mini-tts, api_base: \"http://{a}/v1\", api_key: sk-up}}
  - model_name: omni-moderation-latest
    tianji_params: {{model: openai/omni-moderation-latest, api_base: \"http://{a}/v1\", api_key: sk-up}}
  - model_name: cohere-rerank
    tianji_params: {{model: cohere/rerank-v3.5, api_base: \"http://{a}\", api_key: co-up}}
  - model_name: voyage-rerank
    tianji_params: {{model: voyage/rerank-2, api_base: \"http://{a}/v1\", api_key: vo-up}}
  - model_name: jina-rerank
    tianji_params: {{model: jina_ai/jina-reranker-v2-base-multilingual, api_base: \"http://{a}/v1\", api_key: ji-up}}
  - model_name: mocked
    tianji_params: {{model: openai/gpt-4o, mock_response: \"a red fox\"}}
"
    ))
    .await
}

#[tokio::test]
async fn images_generations_forwarded_and_priced_per_image() {
    let up = MockUpstream::with(Arc::new(providers::reply)).await;
    let gw = gateway(&up).await;
    let body = json!({"model": "image", "prompt": "a red fox", "n": 2, "size": "1024x1024"});
    let r = gw.post("/v1/images/generations", &body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);
    let sent = up.last();
    assert_eq!(sent.path, "/v1/images/generations");
    assert_eq!(sent.headers["authorization"], "Bearer sk-up");
    assert_eq!(
        sent.json(),
        json!({"model": "gpt-image-1", "prompt": "a red fox", "n": 2, "size": "1024x1024"})
    );
    let cost: f64 = r.header("x-tianji-response-cost").unwrap().parse().unwrap();
    assert!((cost - 0.08).abs() < 1e-9, "{cost}");

    // Azure: the deployment's path and api-version; the bare path works too
    let body = json!({"model": "az-image", "prompt": "a red fox"});
    let r = gw.post("/images/generations", &body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(sent.path, "/openai/deployments/dalle/images/generations");
    assert_eq!(sent.query, "api-version=2024-10-21");
    assert_eq!(sent.headers["api-key"], "az-up");

    // bad input: no prompt, nothing sent
    let n = up.requests().len();
    gw.post(
        "/v1/images/generations",
        &json!({"model": "image"}).to_string(),
    )
    .await
    .assert_error(400);
    assert_eq!(up.requests().len(), n);

    // mock_response answers offline
    let body = json!({"model": "mocked", "prompt": "a fox"});
    let r = gw.post("/v1/images/generations", &body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"][0]["revised_prompt"], "a red fox");
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn speech_bytes_relayed_unchanged() {
    let up = MockUpstream::with(Arc::new(providers::reply)).await;
    let gw = gateway(&up).await;
    let body = json!({"model": "tts", "input": "Hello there", "voice": "alloy"});
    let r = gw.post("/v1/audio/speech", &body.to_string()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("audio/mpeg"));
    assert_eq!(r.body.to_vec(), speech_bytes().concat());
    assert_eq!(up.last().path, "/v1/audio/speech");
    assert_eq!(up.last().json()["model"], "gpt-4o-mini-tts");
    gw.post(
        "/v1/audio/speech",
        &json!({"model": "tts", "voice": "alloy"}).to_string(),
    )
    .await
    .assert_error(400);
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn moderations_with_and_without_a_model() {
    let up = MockUpstream::with(Arc::new(providers::reply)).await;
    let gw = gateway(&up).await;
    // no model: OpenAI's default moderation model group
    let r = gw
        .post("/v1/moderations", &json!({"input": "hurt"}).to_string())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["results"][0]["flagged"], true);
    assert_eq!(up.last().path, "/v1/moderations");
    assert_eq!(up.last().json()["model"], "omni-moderation-latest");
    gw.post(
        "/v1/moderations",
        &json!({"model": "omni-moderation-latest"}).to_string(),
    )
    .await
    .assert_error(400);
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn rerank_in_cohere_shape_for_cohere_jina_and_voyage() {
    let up = MockUpstream::with(Arc::new(providers::reply)).await;
    let gw = gateway(&up).await;
    let ask = |model: &str| {
        json!({"model": model, "query": "capital of France", "documents": ["Berlin", {"text": "Paris"}],
            "top_n": 2, "return_documents": true})
    };
    // Cohere v2
    let r = gw
        .post("/v1/rerank", &ask("cohere-rerank").to_string())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(sent.path, "/v2/rerank");
    assert_eq!(sent.headers["authorization"], "Bearer co-up");
    assert_eq!(sent.json()["model"], "rerank-v3.5");
    assert_eq!(sent.json()["top_n"], 2);
    let got = r.json();
    assert_eq!(got["id"], "rr-1");
    assert_eq!(got["results"][0]["index"], 1);
    assert_eq!(got["meta"]["billed_units"]["search_units"], 1);

    // Voyage: top_k, plain string documents, answer from `data`
    let r = gw
        .post("/v2/rerank", &ask("voyage-rerank").to_string())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(sent.path, "/v1/rerank");
    assert_eq!(sent.headers["authorization"], "Bearer vo-up");
    assert_eq!(
        sent.json(),
        json!({"model": "rerank-2", "query": "capital of France", "documents": ["Berlin", "Paris"], "top_k": 2, "return_documents": true})
    );
    let got = r.json();
    assert_eq!(got["results"][0]["document"]["text"], "Paris");
    assert_eq!(got["meta"]["billed_units"]["total_tokens"], 11);

    // Jina
    let r = gw.post("/rerank", &ask("jina-rerank").to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.last().path, "/v1/rerank");
    assert_eq!(up.last().json()["documents"][1]["text"], "Paris");
    assert_eq!(r.json()["meta"]["tokens"]["input_tokens"], 9);

    // bad input
    let n = up.requests().len();
    for bad in [
        json!({"model": "cohere-rerank", "documents": ["a"]}),
        json!({"model": "cohere-rerank", "query": "q", "documents": []}),
    ] {
        gw.post("/v1/rerank", &bad.to_string())
            .await
            .assert_error(400);
    }
    assert_eq!(up.requests().len(), n);

    // a key without access to the model
    let r = send(
        Method::POST,
        &gw.url("/v1/rerank"),
        &[("authorization", "Bearer sk-nobody")],
        bytes::Bytes::from(ask("cohere-rerank").to_string()),
    )
    .await;
    r.assert_error(401);
    gw.gw.shutdown().await;
}
