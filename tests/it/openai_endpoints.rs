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

const BOUNDARY: &str = "tianji-test-boundary";

/// A form with `fields` (name, value) and one file part, in this order.
fn form(parts: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let mut v = Vec::new();
    for (name, value, file) in parts {
        v.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        if *file {
            v.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n").as_bytes(),
            );
        } else {
            v.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            );
        }
        v.extend_from_slice(value);
        v.extend_from_slice(b"\r\n");
    }
    v.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    v
}

/// 1 MB of audio-like bytes, with CRLFs and dashes that look like (but are not) boundaries.
fn audio() -> Vec<u8> {
    let mut v: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for i in (0..v.len() - 40).step_by(9973) {
        v[i..i + 4].copy_from_slice(b"\r\n--");
    }
    v
}

#[tokio::test]
async fn uploads_stream_through_with_the_model_swapped() {
    let up = MockUpstream::with(Arc::new(providers::reply)).await;
    let a = up.addr;
    let gw = TestGateway::start(&format!(
        "model_list:
  - model_name: stt
    tianji_params: {{model: openai/whisper-1, api_base: \"http://{a}/v1\", api_key: sk-up}}
  - model_name: az-stt
    tianji_params: {{model: azure/whisper, api_base: \"http://{a}\", api_key: az-up, api_version: \"2024-06-01\"}}
  - model_name: image
    tianji_params: {{model: openai/gpt-image-1, api_base: \"http://{a}/v1\", api_key: sk-up}}
"
    ))
    .await;
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let post = |path: &str, body: Vec<u8>, ct: String| {
        let url = gw.url(path);
        async move {
            send(
                Method::POST,
                &url,
                &[
                    ("authorization", "Bearer sk-test-master"),
                    ("content-type", ct.as_str()),
                ],
                bytes::Bytes::from(body),
            )
            .await
        }
    };
    let file = audio();
    for (path, model, upstream_path, upstream_model) in [
        (
            "/v1/audio/transcriptions",
            "stt",
            "/v1/audio/transcriptions",
            "whisper-1",
        ),
        (
            "/v1/audio/translations",
            "stt",
            "/v1/audio/translations",
            "whisper-1",
        ),
        (
            "/audio/transcriptions",
            "az-stt",
            "/openai/deployments/whisper/audio/transcriptions",
            "whisper",
        ),
        (
            "/v1/images/edits",
            "image",
            "/v1/images/edits",
            "gpt-image-1",
        ),
        (
            "/v1/images/variations",
            "image",
            "/v1/images/variations",
            "gpt-image-1",
        ),
    ] {
        // the model first (as the SDKs send it), then after the file
        for model_first in [true, false] {
            let mut parts: Vec<(&str, &[u8], bool)> =
                vec![("file", &file, true), ("response_format", b"json", false)];
            let m = ("model", model.as_bytes(), false);
            if model_first {
                parts.insert(0, m);
            } else {
                parts.push(m);
            }
            let r = post(path, form(&parts), ct.clone()).await;
            assert_eq!(r.status, 200, "{path} {}", r.text());
            let sent = up.last();
            assert_eq!(sent.path, upstream_path);
            let mut want_parts = parts.clone();
            for p in want_parts.iter_mut() {
                if p.0 == "model" {
                    p.1 = upstream_model.as_bytes();
                }
            }
            assert!(
                sent.body == form(&want_parts),
                "{path}: the form changed beyond the model"
            );
            assert_eq!(sent.headers["content-type"], ct.as_str());
            assert_eq!(
                sent.headers["content-length"],
                sent.body.len().to_string().as_str()
            );
        }
    }
    assert_eq!(up.last().headers["authorization"], "Bearer sk-up");

    // bad uploads: 4xx JSON, nothing sent upstream
    let n = up.requests().len();
    let no_model = form(&[("file", &file, true)]);
    post("/v1/audio/transcriptions", no_model.clone(), ct.clone())
        .await
        .assert_error(400);
    post(
        "/v1/audio/transcriptions",
        no_model,
        "application/json".into(),
    )
    .await
    .assert_error(400);
    post(
        "/v1/audio/transcriptions",
        b"--nope\r\n".to_vec(),
        ct.clone(),
    )
    .await
    .assert_error(400);
    let unknown = form(&[("model", b"no-such-model", false), ("file", &file, true)]);
    let r = post("/v1/audio/transcriptions", unknown, ct.clone()).await;
    assert!(r.status.is_client_error(), "{}", r.text());
    assert_eq!(up.requests().len(), n);
    gw.gw.shutdown().await;
}
