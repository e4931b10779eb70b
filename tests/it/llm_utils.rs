//! `/utils/transform_request`, `/utils/token_counter`, `/utils/supported_openai_params`: the
//! preview of every provider translation equals what a mock provider received when the same
//! request was sent for real (URL path and query, body bytes, headers; credentials present
//! upstream and masked in the preview), and nothing is sent by the preview itself.

use std::sync::Arc;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::common::fixtures;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};
use crate::common::providers::{self, AWS_KEY_ID, AWS_SECRET, VERTEX_TOKEN};
use crate::common::{MASTER_KEY, TestGateway, send};

/// Token endpoints (Vertex's service account, watsonx.ai's IAM): called by the preview too,
/// as the call would, never an LLM request.
fn token_path(path: &str) -> bool {
    path == "/token" || path == "/identity/token"
}

fn mock(r: &Recorded) -> Reply {
    if r.path == "/identity/token" {
        return Reply::status(
            200,
            json!({"access_token": "iam-tok-1", "token_type": "Bearer", "expires_in": 3600, "expiration": 4_000_000_000u64}),
        );
    }
    providers::reply(r)
}

/// Credentials of the deployments: none may show in a preview.
const SECRETS: &[&str] = &[
    "sk-up-secret",
    "az-secret",
    "sk-ant-secret",
    "gem-secret",
    "co-secret",
    "txt-secret",
    "wx-key",
    "iam-tok-1",
    VERTEX_TOKEN,
    AWS_SECRET,
    AWS_KEY_ID,
    "Signature=",
];

fn yaml(a: std::net::SocketAddr, creds: &std::path::Path) -> String {
    let aws = format!(
        "aws_access_key_id: {AWS_KEY_ID}, aws_secret_access_key: \"{AWS_SECRET}\", aws_region_name: us-west-2"
    );
    let vertex = format!(
        "vertex_project: proj-1, vertex_location: europe-west4, vertex_credentials: \"{}\"",
        creds.display()
    );
    format!(
        "model_list:
  - model_name: oai
    tianji_params: {{model: openai/gpt-4o-mini, api_base: \"http://{a}/v1\", api_key: sk-up-secret}}
  - model_name: oai-embed
    tianji_params: {{model: openai/text-embedding-3-small, api_base: \"http://{a}/v1\", api_key: sk-up-secret}}
  - model_name: az
    tianji_params: {{model: azure/my-dep, api_base: \"http://{a}\", api_key: az-secret, api_version: \"2024-10-21\"}}
  - model_name: claude
    tianji_params: {{model: anthropic/claude-sonnet-4-5, api_base: \"http://{a}\", api_key: sk-ant-secret}}
  - model_name: gem
    tianji_params: {{model: gemini/gemini-2.5-flash, api_base: \"http://{a}\", api_key: gem-secret}}
  - model_name: gem-embed
    tianji_params: {{model: gemini/gemini-embedding-001, api_base: \"http://{a}\", api_key: gem-secret}}
  - model_name: vgem
    tianji_params: {{model: vertex_ai/gemini-2.5-pro, api_base: \"http://{a}\", {vertex}}}
  - model_name: bed
    tianji_params: {{model: bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0, api_base: \"http://{a}\", {aws}}}
  - model_name: bed-embed
    tianji_params: {{model: bedrock/amazon.titan-embed-text-v2:0, api_base: \"http://{a}\", {aws}}}
  - model_name: co
    tianji_params: {{model: cohere/command-r-plus, api_base: \"http://{a}\", api_key: co-secret}}
  - model_name: co-embed
    tianji_params: {{model: cohere/embed-english-v3.0, api_base: \"http://{a}\", api_key: co-secret}}
  - model_name: co-rerank
    tianji_params: {{model: cohere/rerank-english-v3.0, api_base: \"http://{a}\", api_key: co-secret}}
  - model_name: wx
    tianji_params: {{model: watsonx/ibm/granite-3-8b-instruct, api_base: \"http://{a}\", api_key: wx-key, project_id: p-1}}
  - model_name: sm
    tianji_params: {{model: sagemaker_chat/chat-ep, api_base: \"http://{a}\", {aws}}}
  - model_name: sm-tgi
    tianji_params: {{model: sagemaker/tgi-ep, api_base: \"http://{a}\", {aws}}}
  - model_name: txt
    tianji_params: {{model: text-completion-openai/gpt-3.5-turbo-instruct, api_base: \"http://{a}/v1\", api_key: txt-secret}}
  - model_name: mocked
    tianji_params: {{model: openai/gpt-4o, mock_response: hi}}
environment_variables:
  WATSONX_IAM_URL: \"http://{a}/identity/token\"
general_settings:
  master_key: {MASTER_KEY}
"
    )
}

fn chat(model: &str) -> Value {
    json!({"model": model, "max_tokens": 20, "temperature": 0.5,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is the weather in Paris?"}]})
}

/// The LLM requests the mock received (token exchanges left out).
fn llm_requests(up: &MockUpstream) -> Vec<Recorded> {
    up.requests()
        .into_iter()
        .filter(|r| !token_path(&r.path))
        .collect()
}

/// Preview `body` as `call_type`, send it for real to `path`, and compare.
async fn same_request(
    gw: &TestGateway,
    up: &MockUpstream,
    call_type: &str,
    path: &str,
    body: Value,
) {
    let label = format!("{call_type} {}", body["model"]);
    let before = llm_requests(up).len();
    let r = gw
        .post(
            "/utils/transform_request",
            &json!({"call_type": call_type, "request_body": body}).to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{label}: {}", r.text());
    assert!(r.header("x-tianji-model-id").is_some(), "{label}");
    let text = r.text();
    for s in SECRETS {
        assert!(!text.contains(s), "{label}: {s} shown in {text}");
    }
    assert_eq!(
        llm_requests(up).len(),
        before,
        "{label}: the preview sent nothing"
    );
    let preview = r.json();

    // the same request, for real
    let _ = gw.post(path, &body.to_string()).await;
    let sent = llm_requests(up);
    assert_eq!(sent.len(), before + 1, "{label}: one upstream request");
    let sent = &sent[before];

    // URL: path and query
    let query = if sent.query.is_empty() {
        String::new()
    } else {
        format!("?{}", sent.query)
    };
    assert_eq!(
        preview["raw_request_api_base"],
        format!("http://{}{}{query}", up.addr, sent.path),
        "{label}"
    );
    // body: the same JSON, and the same bytes (shown verbatim)
    assert_eq!(preview["raw_request_body"], sent.json(), "{label}");
    #[derive(serde::Deserialize)]
    struct Shown<'a> {
        #[serde(borrow)]
        raw_request_body: &'a serde_json::value::RawValue,
    }
    let shown: Shown = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        shown.raw_request_body.get(),
        sent.text(),
        "{label}: body bytes"
    );
    // headers: every one the gateway set, credentials masked
    let shown = preview["raw_request_headers"].as_object().unwrap();
    for (name, value) in shown {
        let value = value.as_str().unwrap();
        let got = sent
            .headers
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{label}: {name} not sent"))
            .to_str()
            .unwrap();
        if value.contains("***") {
            assert_ne!(got, value, "{label}: {name}");
            assert!(got.len() > 3, "{label}: {name} sent empty");
            if let Some((scheme, _)) = value.split_once(' ') {
                assert!(got.starts_with(scheme), "{label}: {name} {got}");
            }
        } else if name == "x-amz-date" {
            assert_eq!(got.len(), value.len(), "{label}: {name}");
        } else {
            assert_eq!(got, value, "{label}: {name}");
        }
    }
    for (name, _) in &sent.headers {
        if ["host", "content-length", "transfer-encoding"].contains(&name.as_str()) {
            continue;
        }
        assert!(
            shown.contains_key(name.as_str()),
            "{label}: {name} not shown"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transform_request_equals_what_each_provider_receives() {
    let up = MockUpstream::with(Arc::new(mock)).await;
    let mut sa = fixtures::json("gemini", "service_account.json");
    sa["token_uri"] = json!(format!("http://{}/token", up.addr));
    let creds = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(creds.path(), sa.to_string()).unwrap();
    let gw = TestGateway::start(&yaml(up.addr, creds.path())).await;

    let mut streamed = chat("oai");
    streamed["stream"] = json!(true);
    let embed = |m: &str| json!({"model": m, "input": ["a", "b"]});
    let cases: Vec<(&str, &str, Value)> = vec![
        // OpenAI-compatible: the body as sent, `model` replaced
        ("completion", "/v1/chat/completions", chat("oai")),
        ("acompletion", "/v1/chat/completions", streamed),
        ("embedding", "/v1/embeddings", embed("oai-embed")),
        (
            "text_completion",
            "/v1/completions",
            json!({"model": "oai", "prompt": "Say hi", "max_tokens": 5}),
        ),
        // Azure: deployment URL, api-version, api-key
        ("completion", "/v1/chat/completions", chat("az")),
        // Anthropic: translated, and Messages as received
        ("completion", "/v1/chat/completions", chat("claude")),
        (
            "anthropic_messages",
            "/v1/messages",
            json!({"model": "claude", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}),
        ),
        // Gemini with its API key, Vertex AI with a service account's token
        ("completion", "/v1/chat/completions", chat("gem")),
        ("embedding", "/v1/embeddings", embed("gem-embed")),
        ("completion", "/v1/chat/completions", chat("vgem")),
        // Bedrock, SigV4-signed
        ("completion", "/v1/chat/completions", chat("bed")),
        (
            "embedding",
            "/v1/embeddings",
            json!({"model": "bed-embed", "input": "a"}),
        ),
        // Cohere
        ("completion", "/v1/chat/completions", chat("co")),
        ("embedding", "/v1/embeddings", embed("co-embed")),
        (
            "rerank",
            "/v1/rerank",
            json!({"model": "co-rerank", "query": "q", "documents": ["a", "b"]}),
        ),
        // watsonx.ai with its IAM token
        ("completion", "/v1/chat/completions", chat("wx")),
        // SageMaker, Messages API and TGI
        ("completion", "/v1/chat/completions", chat("sm")),
        ("completion", "/v1/chat/completions", chat("sm-tgi")),
        // a text completion provider: chat sent as a prompt
        ("completion", "/v1/chat/completions", chat("txt")),
    ];
    for (call_type, path, body) in cases {
        same_request(&gw, &up, call_type, path, body).await;
    }

    // Vertex's token was fetched (and cached) as the call does it
    assert!(up.requests().iter().any(|r| r.path == "/token"));
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn transform_request_refusals() {
    let up = MockUpstream::with(Arc::new(mock)).await;
    let creds = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        creds.path(),
        fixtures::json("gemini", "service_account.json").to_string(),
    )
    .unwrap();
    let gw = TestGateway::start(&yaml(up.addr, creds.path())).await;
    let ask = |call_type: &str, body: Value| {
        json!({"call_type": call_type, "request_body": body}).to_string()
    };
    // a model that is no group
    let r = gw
        .post("/utils/transform_request", &ask("completion", chat("nope")))
        .await;
    assert!(r.status.is_client_error(), "{}", r.text());
    assert!(r.json()["error"]["message"].is_string());
    // no model, unknown call type, not an object, an upload, a mocked deployment
    for body in [
        ask("completion", json!({"messages": []})),
        ask("dance", chat("oai")),
        json!({"call_type": "completion", "request_body": "x"}).to_string(),
        "not json".to_string(),
        ask("transcription", json!({"model": "oai"})),
        ask("completion", chat("mocked")),
    ] {
        let r = gw.post("/utils/transform_request", &body).await;
        r.assert_error(400);
    }
    assert!(llm_requests(&up).is_empty(), "nothing was sent");
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn utils_routes_for_keys_and_admins() {
    let db = crate::common::db::TestDb::create().await;
    let up = MockUpstream::with(Arc::new(mock)).await;
    let creds = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        creds.path(),
        fixtures::json("gemini", "service_account.json").to_string(),
    )
    .unwrap();
    let yaml = yaml(up.addr, creds.path()).replace(
        "general_settings:\n",
        &format!("general_settings:\n  database_url: \"{}\"\n", db.url),
    );
    let gw = TestGateway::start(&yaml).await;
    let made = gw
        .post("/key/generate", &json!({"models": ["oai"]}).to_string())
        .await;
    assert_eq!(made.status, 200, "{}", made.text());
    let key = made.json()["key"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {key}");
    let as_key = |method: Method, path: &str, body: Value| {
        let url = gw.url(path);
        let bearer = bearer.clone();
        async move {
            let body = if body.is_null() {
                Bytes::new()
            } else {
                Bytes::from(body.to_string())
            };
            send(method, &url, &[("authorization", &bearer)], body).await
        }
    };

    // transform_request: admins only
    let r = as_key(
        Method::POST,
        "/utils/transform_request",
        json!({"call_type": "completion", "request_body": chat("oai")}),
    )
    .await;
    r.assert_error(403);

    // token_counter: LiteLLM's answer, for a key too
    let r = as_key(
        Method::POST,
        "/utils/token_counter",
        json!({"model": "oai", "messages": [{"role": "user", "content": "hello world"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"total_tokens": 9, "request_model": "oai", "model_used": "gpt-4o-mini",
            "tokenizer_type": "openai_tokenizer", "original_response": null, "error": false,
            "error_message": null, "status_code": null})
    );
    // a name that is no group is counted as it is
    let r = gw
        .post(
            "/utils/token_counter",
            &json!({"model": "gpt-4", "prompt": "hello world"}).to_string(),
        )
        .await;
    assert_eq!(r.json()["total_tokens"], 2);
    assert_eq!(r.json()["model_used"], "gpt-4");
    // tools and a system prompt count too
    let plain = json!({"model": "claude", "messages": [{"role": "user", "content": "hi"}]});
    let mut full = plain.clone();
    full["system"] = json!("Be brief.");
    full["tools"] = json!([{"name": "get_weather", "description": "Weather of a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let n = |v: Value| {
        let gw = &gw;
        async move {
            gw.post("/utils/token_counter", &v.to_string()).await.json()["total_tokens"]
                .as_u64()
                .unwrap()
        }
    };
    assert!(n(full).await > n(plain).await);
    // nothing to count
    let r = gw
        .post("/utils/token_counter", &json!({"model": "oai"}).to_string())
        .await;
    let e = r.assert_error(400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("prompt or messages or contents"),
        "{e}"
    );
    // a group the key may not use
    let r = as_key(
        Method::POST,
        "/utils/token_counter",
        json!({"model": "claude", "prompt": "hi"}),
    )
    .await;
    assert!(r.status == 401 || r.status == 403, "{}", r.text());

    // supported_openai_params
    let params = |v: &Value| -> Vec<String> {
        v["supported_openai_params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect()
    };
    let r = as_key(
        Method::GET,
        "/utils/supported_openai_params?model=oai",
        Value::Null,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let openai = params(&r.json());
    assert!(openai.contains(&"logit_bias".to_string()));
    let r = gw.get("/utils/supported_openai_params?model=claude").await;
    let anthropic = params(&r.json());
    assert!(anthropic.contains(&"thinking".to_string()));
    assert!(!anthropic.contains(&"logit_bias".to_string()));
    let r = gw
        .get("/utils/supported_openai_params?model=bedrock/amazon.nova-pro-v1:0")
        .await;
    assert!(params(&r.json()).contains(&"tool_choice".to_string()));
    let e = gw
        .get("/utils/supported_openai_params?model=no-such-provider/x")
        .await
        .assert_error(400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Could not map model"),
        "{e}"
    );
    gw.get("/utils/supported_openai_params")
        .await
        .assert_error(400);
    gw.gw.shutdown().await;
}
