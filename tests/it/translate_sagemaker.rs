//! AWS SageMaker endpoints through the gateway against a mock we own that recomputes every
//! request's SigV4 signature (service `sagemaker`) and answers response streams as AWS event
//! streams of `PayloadPart` events: `sagemaker_chat/` (Messages API containers) and
//! `sagemaker/` (TGI), chat whole and streamed, embeddings, errors kept in their class,
//! SpendLogs rows; and the official `openai` SDK.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};
use crate::common::providers::{AWS_KEY_ID, AWS_SECRET, sigv4_check_for};
use crate::common::{MASTER_KEY, TestGateway, eventually_async, stream};

/// One `PayloadPart` event carrying `bytes`.
fn part(bytes: &[u8]) -> Bytes {
    Bytes::from(tianji::providers::bedrock::eventstream::encode(
        &[
            (":event-type", "PayloadPart"),
            (":content-type", "application/octet-stream"),
            (":message-type", "event"),
        ],
        bytes,
    ))
}

/// `text` cut in pieces of `size` bytes, each its own payload part (lines split across parts,
/// as SageMaker does).
fn parts(text: &str, size: usize) -> Vec<Bytes> {
    text.as_bytes().chunks(size).map(part).collect()
}

fn event_stream(chunks: Vec<Bytes>) -> Reply {
    Reply::Raw {
        status: 200,
        content_type: "application/vnd.amazon.eventstream",
        chunks,
    }
}

fn aws_error(status: u16, kind: &str, message: &str) -> Reply {
    Reply::Json {
        status,
        body: json!({"message": message}).to_string(),
        headers: vec![("x-amzn-errortype", kind.to_string())],
    }
}

fn mock(r: &Recorded) -> Reply {
    if let Err(why) = sigv4_check_for(r, "sagemaker") {
        return aws_error(403, "InvalidSignatureException", &why);
    }
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let said = body.to_string();
    if said.contains("fail400") {
        return aws_error(
            400,
            "ValidationError",
            "Received client error (400) from primary with message \"Input validation error: `inputs` must have less than 4096 tokens\"",
        );
    }
    if said.contains("fail429") {
        return aws_error(429, "ThrottlingException", "Rate exceeded");
    }
    let Some(rest) = r.path.strip_prefix("/endpoints/") else {
        return aws_error(404, "ResourceNotFound", "no such path");
    };
    let (endpoint, action) = rest.split_once('/').unwrap_or((rest, ""));
    match (endpoint, action) {
        ("chat-ep", "invocations") => Reply::status(
            200,
            json!({"id": "chatcmpl-sm", "object": "chat.completion", "created": 1, "model": "tgi",
                "system_fingerprint": "3.0.1",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there"},
                    "logprobs": null, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}),
        ),
        ("chat-ep", "invocations-response-stream") => {
            let chunk = |delta: Value, finish: Value| {
                format!(
                    "data: {}\n\n",
                    json!({"id": "s", "object": "chat.completion.chunk", "created": 1, "model": "tgi",
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
                )
            };
            let sse = [
                chunk(json!({"role": "assistant", "content": "Hello"}), Value::Null),
                chunk(json!({"content": " there"}), Value::Null),
                chunk(json!({}), json!("stop")),
                format!(
                    "data: {}\n\n",
                    json!({"id": "s", "object": "chat.completion.chunk", "created": 1, "model": "tgi",
                        "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}})
                ),
                "data: [DONE]\n\n".to_string(),
            ]
            .concat();
            event_stream(parts(&sse, 23))
        }
        ("tgi-ep", "invocations") => Reply::Json {
            status: 200,
            body: json!([{"generated_text": "Hello there"}]).to_string(),
            headers: vec![],
        },
        ("tgi-ep", "invocations-response-stream") => {
            let token = |i: u64, text: &str, last: bool| {
                let (generated, details) = if last {
                    (
                        json!("Hello there"),
                        json!({"finish_reason": "eos_token", "generated_tokens": 3}),
                    )
                } else {
                    (Value::Null, Value::Null)
                };
                format!(
                    "data:{}\n\n",
                    json!({"index": i, "token": {"id": i, "text": text, "logprob": -0.1, "special": last},
                        "generated_text": generated, "details": details})
                )
            };
            let sse = [
                token(1, "Hello", false),
                token(2, " there", false),
                token(3, "</s>", true),
            ]
            .concat();
            event_stream(parts(&sse, 17))
        }
        ("emb-ep", "invocations") => {
            let n = body["inputs"].as_array().map_or(0, Vec::len);
            Reply::Json {
                status: 200,
                body: json!(vec![json!([0.5, 0.25]); n]).to_string(),
                headers: vec![],
            }
        }
        _ => aws_error(404, "ValidationError", "Endpoint not found"),
    }
}

fn yaml(a: std::net::SocketAddr, db: Option<&str>) -> String {
    let db = db.map_or(String::new(), |u| format!("  database_url: \"{u}\"\n"));
    let aws = format!(
        "aws_access_key_id: {AWS_KEY_ID}, aws_secret_access_key: \"{AWS_SECRET}\", aws_region_name: eu-west-1"
    );
    format!(
        "model_list:
  - model_name: sm-chat
    tianji_params: {{model: sagemaker_chat/chat-ep, api_base: \"http://{a}\", {aws}}}
  - model_name: sm-tgi
    tianji_params: {{model: sagemaker/tgi-ep, api_base: \"http://{a}\", {aws}}}
  - model_name: sm-embed
    tianji_params: {{model: sagemaker/emb-ep, api_base: \"http://{a}\", {aws}}}
general_settings:
  master_key: {MASTER_KEY}
{db}"
    )
}

fn chat(model: &str, text: &str) -> String {
    json!({"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": text}]})
        .to_string()
}

/// The content and usage of a streamed answer.
fn read_stream(text: &str) -> (String, Value) {
    let mut content = String::new();
    let mut usage = Value::Null;
    for line in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if line == "[DONE]" {
            continue;
        }
        let c: Value = serde_json::from_str(line).unwrap();
        assert!(c.get("error").is_none(), "{c}");
        if let Some(d) = c["choices"][0]["delta"]["content"].as_str() {
            content.push_str(d);
        }
        if c["usage"].is_object() {
            usage = c["usage"].clone();
        }
    }
    (content, usage)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sagemaker_chat_tgi_streams_embeddings_and_errors() {
    let db = TestDb::create().await;
    let up = MockUpstream::with(Arc::new(mock)).await;
    let gw = TestGateway::start(&yaml(up.addr, Some(&db.url))).await;

    // Messages API container: the request as it is, the answer reshaped
    let r = gw
        .post("/v1/chat/completions", &chat("sm-chat", "hi"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello there");
    assert_eq!(v["model"], "chat-ep");
    assert_eq!(v["usage"]["total_tokens"], 11);
    let sent = up.last();
    assert_eq!(sent.path, "/endpoints/chat-ep/invocations");
    assert!(
        sent.headers["authorization"]
            .to_str()
            .unwrap()
            .contains("/eu-west-1/sagemaker/aws4_request"),
    );
    assert_eq!(sent.json()["messages"][0]["content"], "hi");
    assert_eq!(sent.json()["model"], "chat-ep");

    // streamed: the response stream endpoint, payload parts split mid-line
    let body = json!({"model": "sm-chat", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "hi"}]});
    let s = stream(&gw.url("/v1/chat/completions"), &body.to_string()).await;
    assert_eq!(s.status, 200);
    let text = s.text();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let (content, usage) = read_stream(&text);
    assert_eq!(content, "Hello there");
    assert_eq!(usage["total_tokens"], 11, "{text}");
    let sent = up.last();
    assert_eq!(sent.path, "/endpoints/chat-ep/invocations-response-stream");
    assert_eq!(sent.json()["stream"], true);

    // TGI: {inputs, parameters} answered [{generated_text}]
    let r = gw
        .post("/v1/chat/completions", &chat("sm-tgi", "hi there"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello there");
    assert_eq!(v["usage"]["prompt_tokens"], 2);
    let sent = up.last().json();
    assert_eq!(
        sent,
        json!({"inputs": "hi there", "parameters": {"max_new_tokens": 20}})
    );
    let body = json!({"model": "sm-tgi", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "hi"}]});
    let s = stream(&gw.url("/v1/chat/completions"), &body.to_string()).await;
    let text = s.text();
    let (content, usage) = read_stream(&text);
    assert_eq!(content, "Hello there", "{text}");
    assert_eq!(usage["completion_tokens"], 3, "{text}");
    assert!(text.contains("\"finish_reason\":\"stop\""), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");

    // embeddings (base64 as the SDKs ask)
    let r = gw
        .post(
            "/v1/embeddings",
            &json!({"model": "sm-embed", "input": ["one two", "three"]}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["data"][1]["embedding"], json!([0.5, 0.25]));
    assert_eq!(v["usage"]["prompt_tokens"], 3);
    assert_eq!(up.last().json(), json!({"inputs": ["one two", "three"]}));

    // upstream errors keep their class; a wrong signature is refused by the mock
    let e = gw
        .post("/v1/chat/completions", &chat("sm-chat", "fail400"))
        .await
        .assert_error(400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("4096 tokens"),
        "{e}"
    );
    gw.post("/v1/chat/completions", &chat("sm-tgi", "fail429"))
        .await
        .assert_error(429);
    assert!(!e.to_string().contains(AWS_SECRET));

    // SpendLogs rows name the provider and carry the usage
    let client = db.client().await;
    let ok = eventually_async(Duration::from_secs(10), || async {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM \"TianjiLLM_SpendLogs\" WHERE custom_llm_provider IN ('sagemaker', 'sagemaker_chat') AND status = 'success'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        n >= 5
    })
    .await;
    assert!(ok, "SpendLogs rows for sagemaker never came");
    let rows = client
        .query(
            "SELECT custom_llm_provider, total_tokens FROM \"TianjiLLM_SpendLogs\" WHERE model = 'chat-ep' AND status = 'success'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        let (p, t): (String, i32) = (r.get(0), r.get(1));
        assert_eq!((p.as_str(), t), ("sagemaker_chat", 11));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sagemaker_through_the_openai_sdk() {
    let up = MockUpstream::with(Arc::new(mock)).await;
    crate::it::sdk::run_python_with(
        "openai_models.py",
        &yaml(up.addr, None),
        MASTER_KEY,
        &["chat=sm-chat", "chat=sm-tgi", "embed=sm-embed"],
    )
    .await;
    assert!(
        up.requests()
            .iter()
            .all(|r| sigv4_check_for(r, "sagemaker").is_ok())
    );
}
