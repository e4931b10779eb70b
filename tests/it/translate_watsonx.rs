//! IBM watsonx.ai through the gateway against a mock we own (its IAM token endpoint included):
//! one token exchange shared by concurrent requests, the token as Bearer, a refresh once it
//! expires; chat whole and streamed, embeddings (base64 as the SDK asks), `deployment/<id>`
//! models, upstream errors kept in their class, SpendLogs rows; and the official `openai` SDK.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};
use crate::common::{MASTER_KEY, TestGateway, eventually_async, stream};

/// The API key whose tokens expire at once (a minute is the refresh margin).
const SHORT_KEY: &str = "wx-short";

fn sse(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| format!("id: {}\nevent: message\ndata: {e}\n\n", i + 1))
        .collect()
}

fn watsonx_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::status(
        status,
        json!({"errors": [{"code": code, "message": message}], "trace": "t-1", "status_code": status}),
    )
}

/// The watsonx.ai mock: `/identity/token` hands out `iam-tok-<n>`; the API checks it.
fn mock(issued: Arc<AtomicUsize>) -> impl Fn(&Recorded) -> Reply + Send + Sync {
    move |r: &Recorded| {
        if r.path == "/identity/token" {
            let form = r.text();
            assert_eq!(
                r.headers["content-type"],
                "application/x-www-form-urlencoded"
            );
            assert!(
                form.starts_with(
                    "grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey="
                ),
                "{form}"
            );
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            let expires = if form.ends_with(SHORT_KEY) { 30 } else { 3600 };
            return Reply::Delay(
                Duration::from_millis(50),
                Box::new(Reply::status(
                    200,
                    json!({"access_token": format!("iam-tok-{n}"), "refresh_token": "not_supported",
                        "token_type": "Bearer", "expires_in": expires, "expiration": 4_000_000_000u64}),
                )),
            );
        }
        let auth = r
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !(auth.starts_with("Bearer iam-tok-") || auth == "Bearer static-tok") {
            return watsonx_error(
                401,
                "authentication_token_not_valid",
                "Failed to authenticate",
            );
        }
        if !r.query.starts_with("version=") {
            return watsonx_error(400, "missing_version", "version is required");
        }
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let said = body.to_string();
        if said.contains("fail400") {
            return watsonx_error(
                400,
                "json_validation_error",
                "Json document validation error: 'messages' failed",
            );
        }
        if said.contains("fail429") {
            return watsonx_error(429, "token_quota_reached", "Rate limit reached");
        }
        let model = body["model_id"].as_str().unwrap_or("deployed").to_string();
        match r.path.as_str() {
            p if p.ends_with("/text/chat") => Reply::status(
                200,
                json!({"id": "chat-wx-1", "model_id": model, "model": model, "created": 1_728_811_660,
                    "model_version": "3.0.0", "created_at": "2024-10-13T09:27:40.934Z",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there"},
                        "finish_reason": "stop"}],
                    "usage": {"completion_tokens": 3, "prompt_tokens": 11, "total_tokens": 14},
                    "system": {"warnings": []}}),
            ),
            p if p.ends_with("/text/chat_stream") => Reply::Sse {
                events: sse(&[
                    json!({"id": "chat-wx-2", "model_id": model, "created": 1,
                        "choices": [{"index": 0, "finish_reason": null, "delta": {"role": "assistant", "content": ""}}]}),
                    json!({"id": "chat-wx-2", "model_id": model, "created": 1,
                        "choices": [{"index": 0, "finish_reason": null, "delta": {"content": "Hello"}}]}),
                    json!({"id": "chat-wx-2", "model_id": model, "created": 1,
                        "choices": [{"index": 0, "finish_reason": null, "delta": {"content": " there"}}]}),
                    json!({"id": "chat-wx-2", "model_id": model, "created": 1,
                        "choices": [{"index": 0, "finish_reason": "stop", "delta": {"content": ""}}],
                        "usage": {"completion_tokens": 2, "prompt_tokens": 11, "total_tokens": 13}}),
                ]),
                gap: Duration::ZERO,
            },
            "/ml/v1/text/embeddings" => {
                let n = body["inputs"].as_array().map_or(0, Vec::len);
                Reply::status(
                    200,
                    json!({"model_id": model, "created_at": "x",
                        "results": vec![json!({"embedding": [0.5, -0.25, 0.125]}); n],
                        "input_token_count": 2 * n}),
                )
            }
            _ => watsonx_error(404, "not_found", "no such route"),
        }
    }
}

fn chat(model: &str, text: &str) -> String {
    json!({"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": text}]})
        .to_string()
}

fn exchanges(up: &MockUpstream) -> Vec<Recorded> {
    up.requests()
        .into_iter()
        .filter(|r| r.path == "/identity/token")
        .collect()
}

fn yaml(a: std::net::SocketAddr, db: Option<&str>) -> String {
    let db = db.map_or(String::new(), |u| format!("  database_url: \"{u}\"\n"));
    format!(
        "model_list:
  - model_name: wx
    tianji_params: {{model: watsonx/ibm/granite-3-8b-instruct, api_base: \"http://{a}\", api_key: wx-key, project_id: p-1}}
  - model_name: wx-short
    tianji_params: {{model: watsonx/ibm/granite-3-8b-instruct, api_base: \"http://{a}\", api_key: {SHORT_KEY}, space_id: s-1, api_version: \"2025-02-11\"}}
  - model_name: wx-embed
    tianji_params: {{model: watsonx/ibm/slate-30m-english-rtrvr, api_base: \"http://{a}\", api_key: wx-key, project_id: p-1}}
  - model_name: wx-deployed
    tianji_params: {{model: watsonx/deployment/dep-1, api_base: \"http://{a}\", token: static-tok}}
environment_variables:
  WATSONX_IAM_URL: \"http://{a}/identity/token\"
general_settings:
  master_key: {MASTER_KEY}
{db}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watsonx_chat_streams_embeddings_and_one_token_exchange() {
    let db = TestDb::create().await;
    let issued = Arc::new(AtomicUsize::new(0));
    let up = MockUpstream::with(Arc::new(mock(issued.clone()))).await;
    let gw = TestGateway::start(&yaml(up.addr, Some(&db.url))).await;

    // many requests at once: one token exchange, its token on every call
    let mut calls = Vec::new();
    for _ in 0..8 {
        let url = gw.url("/v1/chat/completions");
        calls.push(tokio::spawn(async move {
            crate::common::send(
                http::Method::POST,
                &url,
                &[("authorization", &format!("Bearer {MASTER_KEY}"))],
                bytes::Bytes::from(chat("wx", "hi")),
            )
            .await
        }));
    }
    for c in calls {
        let r = c.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["model"], "ibm/granite-3-8b-instruct");
        assert_eq!(v["choices"][0]["message"]["content"], "Hello there");
        assert_eq!(v["usage"]["total_tokens"], 14);
        assert!(
            v.get("model_id").is_none() && v.get("system").is_none(),
            "{v}"
        );
    }
    let ex = exchanges(&up);
    assert_eq!(ex.len(), 1, "one exchange for eight requests");
    assert!(ex[0].text().ends_with("&apikey=wx-key"));
    let sent: Vec<Recorded> = up
        .requests()
        .into_iter()
        .filter(|r| r.path == "/ml/v1/text/chat")
        .collect();
    assert_eq!(sent.len(), 8);
    for r in &sent {
        assert_eq!(r.headers["authorization"], "Bearer iam-tok-1");
        assert_eq!(r.query, "version=2024-03-13");
        let b = r.json();
        assert_eq!(b["model_id"], "ibm/granite-3-8b-instruct");
        assert_eq!(b["project_id"], "p-1");
        assert_eq!(b["max_tokens"], 20);
        assert!(b.get("model").is_none() && b.get("stream").is_none(), "{b}");
    }

    // streamed: chunks in OpenAI's shape, usage when asked for, the same token
    let body = json!({"model": "wx", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "hi"}]});
    let s = stream(&gw.url("/v1/chat/completions"), &body.to_string()).await;
    assert_eq!(s.status, 200);
    let text = s.text();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let mut content = String::new();
    let mut usage = Value::Null;
    for line in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if line == "[DONE]" {
            continue;
        }
        let c: Value = serde_json::from_str(line).unwrap();
        assert_eq!(c["object"], "chat.completion.chunk", "{c}");
        assert!(c.get("model_id").is_none(), "{c}");
        if let Some(d) = c["choices"][0]["delta"]["content"].as_str() {
            content.push_str(d);
        }
        if c["usage"].is_object() {
            usage = c["usage"].clone();
        }
    }
    assert_eq!(content, "Hello there");
    assert_eq!(usage["total_tokens"], 13, "{text}");
    let last = up.last();
    assert_eq!(last.path, "/ml/v1/text/chat_stream");
    assert_eq!(last.headers["authorization"], "Bearer iam-tok-1");
    assert_eq!(exchanges(&up).len(), 1);

    // a token that expires within the refresh margin is exchanged again on the next call
    for n in 2..=3 {
        let r = gw
            .post("/v1/chat/completions", &chat("wx-short", "hi"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let last = up.last();
        assert_eq!(
            last.headers["authorization"],
            format!("Bearer iam-tok-{n}").as_str()
        );
        assert_eq!(last.query, "version=2025-02-11");
        assert_eq!(last.json()["space_id"], "s-1");
    }
    assert_eq!(exchanges(&up).len(), 3);

    // embeddings, base64 as the OpenAI SDKs ask by default
    let r = gw
        .post(
            "/v1/embeddings",
            &json!({"model": "wx-embed", "input": ["a", "b"], "encoding_format": "base64"})
                .to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v["data"][1]["embedding"].as_str().unwrap())
        .unwrap();
    let floats: Vec<f32> = raw
        .chunks(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(floats, vec![0.5, -0.25, 0.125]);
    assert_eq!(v["usage"]["prompt_tokens"], 4);
    let sent = up.last().json();
    assert_eq!(sent["inputs"], json!(["a", "b"]));
    assert_eq!(sent["model_id"], "ibm/slate-30m-english-rtrvr");

    // a deployment: its id in the path, a static token, nothing of the model in the body
    let r = gw
        .post("/v1/chat/completions", &chat("wx-deployed", "hi"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let last = up.last();
    assert_eq!(last.path, "/ml/v1/deployments/dep-1/text/chat");
    assert_eq!(last.headers["authorization"], "Bearer static-tok");
    assert!(last.json().get("model_id").is_none());

    // upstream errors keep their class
    let e = gw
        .post("/v1/chat/completions", &chat("wx", "fail400"))
        .await
        .assert_error(400);
    assert_eq!(e["error"]["type"], "invalid_request_error", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Json document validation error"),
        "{e}"
    );
    let e = gw
        .post("/v1/chat/completions", &chat("wx", "fail429"))
        .await
        .assert_error(429);
    assert_eq!(e["error"]["type"], "rate_limit_error", "{e}");
    // no secret in any answer
    assert!(!e.to_string().contains("iam-tok") && !e.to_string().contains("wx-key"));

    // SpendLogs: provider watsonx, the usage watsonx reported
    let client = db.client().await;
    let ok = eventually_async(Duration::from_secs(10), || async {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM \"TianjiLLM_SpendLogs\" WHERE custom_llm_provider = 'watsonx'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        n >= 14
    })
    .await;
    assert!(ok, "SpendLogs rows for watsonx never came");
    let row = client
        .query_one(
            "SELECT prompt_tokens, completion_tokens, total_tokens, model FROM \"TianjiLLM_SpendLogs\" WHERE call_type LIKE '%completion%' AND total_tokens = 13",
            &[],
        )
        .await
        .unwrap();
    let (p, c, t, m): (i32, i32, i32, String) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!((p, c, t), (11, 2, 13));
    assert!(m.contains("granite"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watsonx_through_the_openai_sdk() {
    let issued = Arc::new(AtomicUsize::new(0));
    let up = MockUpstream::with(Arc::new(mock(issued))).await;
    crate::it::sdk::run_python_with(
        "openai_models.py",
        &yaml(up.addr, None),
        MASTER_KEY,
        &["chat=wx", "chat=wx-deployed", "embed=wx-embed"],
    )
    .await;
    // one exchange per deployment holding the key (wx, wx-embed), whatever the number of calls
    assert_eq!(exchanges(&up).len(), 2);
}
