//! Drop-in compatibility: config (see mod.rs). LiteLLM's configs load (every provider prefix
//! LiteLLM accepts works, or stops the config with why Tianji does not serve it; invalid
//! entries reported in one startup line; every documented section accepted), provider errors keep LiteLLM's body, and SpendLogs `request_id` is the
//! answer's id.

use std::io::Write;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply, default_reply};
use crate::common::{MASTER_KEY, TestGateway, eventually_async, providers};

/// The LiteLLM-style fixture with every documented section.
const FIXTURE: &str = include_str!("../../fixtures/compat/litellm_full_config.yaml");

use super::super::admin_keys::call;

async fn get_as(gw: &TestGateway, key: &str, path: &str) -> crate::common::Resp {
    call(gw, Method::GET, path, key, Value::Null).await
}

async fn post_as(gw: &TestGateway, key: &str, path: &str, body: Value) -> crate::common::Resp {
    call(gw, Method::POST, path, key, body).await
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Say hi"}]})
}

/// Every mock answer in one: text completions as OpenAI's, the rest as each native provider.
async fn every_provider() -> MockUpstream {
    MockUpstream::with(Arc::new(|r: &Recorded| {
        if r.path.ends_with("/completions") && !r.path.ends_with("/chat/completions") {
            return default_reply(r);
        }
        providers::reply(r)
    }))
    .await
}

/// The model ids `/v1/models` lists.
async fn listed(gw: &TestGateway, key: &str) -> Vec<String> {
    let r = get_as(gw, key, "/v1/models").await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

/// LiteLLM's sample config (`text-completion-openai/gpt-3.5-turbo-instruct`) loads: text
/// completions go to OpenAI's `/completions`, and so does chat, answered as chat (whole and
/// streamed).
#[tokio::test]
async fn text_completion_openai_serves_completions_and_chat() {
    let up = MockUpstream::start().await;
    let gw = TestGateway::start(&format!(
        "model_list:\n  - model_name: gpt-3.5-turbo-instruct\n    litellm_params:\n      model: text-completion-openai/gpt-3.5-turbo-instruct\n      api_base: \"{}\"\n      api_key: sk-openai\n",
        up.base()
    ))
    .await;
    let r = gw
        .post(
            "/v1/completions",
            r#"{"model":"gpt-3.5-turbo-instruct","prompt":"Once"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["choices"][0]["text"], "once upon a time");
    let sent = up.last();
    assert_eq!(sent.path, "/v1/completions");
    assert_eq!(sent.json()["model"], "gpt-3.5-turbo-instruct");
    assert_eq!(
        sent.headers["authorization"].to_str().unwrap(),
        "Bearer sk-openai"
    );

    let mut ask = chat("gpt-3.5-turbo-instruct");
    ask["max_completion_tokens"] = json!(5);
    let r = gw.post("/v1/chat/completions", &ask.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["id"], "cmpl-1");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], "once upon a time");
    assert_eq!(v["usage"]["total_tokens"], 7);
    let sent = up.last().json();
    assert_eq!(up.last().path, "/v1/completions");
    assert_eq!(sent["prompt"], "Say hi");
    assert_eq!(sent["max_tokens"], 5);
    assert!(sent.get("messages").is_none(), "{sent}");

    ask["stream"] = json!(true);
    let s = crate::common::stream(&gw.url("/v1/chat/completions"), &ask.to_string()).await;
    assert_eq!(s.status, 200);
    let text = s.text();
    assert!(
        text.contains("\"object\":\"chat.completion.chunk\""),
        "{text}"
    );
    assert!(text.contains("\"delta\":{\"content\":\"hi\"}"), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert_eq!(up.last().json()["stream_options"]["include_usage"], true);
    gw.gw.shutdown().await;
}

/// Every provider prefix LiteLLM accepts that Tianji serves loads as a model like any other;
/// one it does not serve stops the config from loading, naming the entry, the provider and
/// why (never a deployment that loads and answers 501); an invalid entry is left out
/// (LiteLLM's `ignore_invalid_deployments`) instead of stopping the gateway.
#[tokio::test]
async fn every_litellm_provider_prefix_works_or_stops_the_config() {
    let data: Value = serde_json::from_str(include_str!("../../../data/litellm_providers.json"))
        .expect("data/litellm_providers.json");
    let names: Vec<String> = data["litellm_providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    let not_served: Vec<String> = data["not_served"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|v| v.as_array().unwrap().clone())
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    let up = MockUpstream::start().await;
    let entry = |n: &str| {
        format!(
            "  - model_name: \"p-{n}\"\n    litellm_params: {{model: \"{n}/m\", api_base: \"{}\", api_key: k, vertex_project: p, project_id: p, aws_access_key_id: AKIDEXAMPLE, aws_secret_access_key: s}}\n",
            up.base()
        )
    };
    let mut yaml = String::from("model_list:\n");
    let served: Vec<&String> = names.iter().filter(|n| !not_served.contains(n)).collect();
    for n in &served {
        yaml.push_str(&entry(n));
    }
    yaml.push_str("  - model_name: typo\n    litellm_params: {model: \"opneai/gpt-4o\"}\n");
    let gw = TestGateway::start(&yaml).await;
    let models = listed(&gw, MASTER_KEY).await;
    for n in &served {
        assert!(models.contains(&format!("p-{n}")), "{n} was left out");
    }
    assert!(!models.contains(&"typo".to_string()));
    for n in &not_served {
        let yaml = format!(
            "model_list:\n  - model_name: ok\n    litellm_params: {{model: openai/gpt-4o, api_key: k}}\n{}general_settings: {{master_key: {MASTER_KEY}}}\n",
            entry(n)
        );
        let loaded = tianji::Loaded::from_yaml(&yaml).expect("the config parses");
        let e = match tianji::Gateway::start(&loaded, "127.0.0.1:0".parse().unwrap()).await {
            Ok(_) => panic!("{n}: a provider Tianji does not serve loaded"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains(&format!(
                "model_list[1] p-{n} ({n}/m): provider {n} is not served by Tianji: "
            )),
            "{n}: {e}"
        );
    }
    // served, OpenAI-compatible under LiteLLM's names
    for n in ["custom_openai", "openai_like", "litellm_proxy", "zai"] {
        let r = gw
            .post("/v1/chat/completions", &chat(&format!("p-{n}")).to_string())
            .await;
        assert_eq!(r.status, 200, "{n}: {}", r.text());
        assert_eq!(up.last().path, "/v1/chat/completions", "{n}");
    }
    let e = gw
        .post("/v1/chat/completions", &chat("typo").to_string())
        .await
        .assert_error(400);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("typo"),
        "{e}"
    );
    gw.gw.shutdown().await;
}

/// `tianji --config ... --check-config`: (ok, stderr).
fn check_config(yaml: &str) -> (Option<i32>, String) {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(yaml.as_bytes()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tianji"))
        .arg("--config")
        .arg(f.path())
        .arg("--check-config")
        .env("TIANJI_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Invalid entries are left out and reported in one startup line, without refusing to start;
/// `strict_config: true` or `ignore_invalid_deployments: false` refuses to start instead. An
/// entry of a provider Tianji does not serve always refuses to start.
#[tokio::test]
async fn invalid_entries_are_one_startup_line_unless_strict() {
    let entries = "model_list:\n  - model_name: sm\n    litellm_params: {model: sagemaker/endpoint-1}\n  - model_name: ok\n    litellm_params: {model: openai/gpt-4o, api_key: k}\n  - model_name: wx\n    litellm_params: {model: \"watsonx/*\"}\n  - model_name: typo\n    litellm_params: {model: opneai/gpt-4o}\n";
    let (code, err) = check_config(entries);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("invalid model_list entries are left out"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    let line = lines[0];
    for want in [
        "model_list[0] sm (sagemaker/endpoint-1): sagemaker needs aws_access_key_id",
        "model_list[2] wx (watsonx/*)",
        "model_list[3] typo (opneai/gpt-4o)",
        "Unknown provider 'opneai'",
        "model_name has no `*`",
    ] {
        assert!(line.contains(want), "`{want}` not in: {line}");
    }
    assert!(!line.contains("model_list[1]"), "{line}");
    assert!(!err.contains("501"), "{err}");

    let (code, err) = check_config(&format!(
        "{entries}general_settings: {{strict_config: true}}\n"
    ));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("model_list[0] sm (sagemaker/endpoint-1)"),
        "{err}"
    );

    let (code, err) = check_config(&format!(
        "{entries}router_settings: {{ignore_invalid_deployments: false}}\n"
    ));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("model_list[0] sm (sagemaker/endpoint-1)"),
        "{err}"
    );

    for (entry, want) in [
        (
            "{model: replicate/meta/llama-3}",
            "model_list[1] r (replicate/meta/llama-3): provider replicate is not served by Tianji: no translation for its wire format in Tianji yet",
        ),
        (
            "{model: \"bytez/*\"}",
            "model_list[1] r/* (bytez/*): provider bytez is not served by Tianji",
        ),
    ] {
        let (code, err) = check_config(&format!(
            "model_list:\n  - model_name: ok\n    litellm_params: {{model: openai/gpt-4o, api_key: k}}\n  - model_name: {}\n    litellm_params: {entry}\n",
            if entry.contains('*') { "\"r/*\"" } else { "r" }
        ));
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains(want), "`{want}` not in {err}");
    }
}

/// A LiteLLM config using every documented section (model_list with several providers,
/// litellm_settings, general_settings, router_settings, environment_variables, credential_list,
/// guardrails, mcp_servers, ...) loads: what Tianji does not implement is at most a warning; it
/// answers `/health` and lists its models; LiteLLM's keys are honoured where LiteLLM documents
/// them (`litellm_settings.store_audit_logs`, router keys under `litellm_settings`).
#[tokio::test]
async fn litellm_config_with_every_section_loads_and_serves() {
    let db = TestDb::create().await;
    let up = every_provider().await;
    let yaml = FIXTURE
        .replace("http://mock.invalid", &format!("http://{}", up.addr))
        .replace("postgres://db.invalid/litellm", &db.url);
    let loaded = tianji::Loaded::from_yaml(&yaml).expect("the fixture loads");
    let warnings = loaded.warnings.join("\n");
    for accepted in [
        "store_audit_logs",
        "store_model_in_db",
        "credential_list",
        "litellm_credential_name",
        "num_retries",
        "allowed_fails",
        "fallbacks",
        "ignore_invalid_deployments",
        "search_tools",
        "mcp_servers",
        "cache_params",
        "environment_variables",
        "general_settings.alerting",
        "alerting_threshold",
    ] {
        assert!(
            !warnings.contains(&format!("{accepted}`")),
            "{accepted}: {warnings}"
        );
    }
    assert!(warnings.contains("`guardrails[0]`"), "{warnings}");
    assert!(
        warnings.contains("APORIA_API_KEY_1 is not set"),
        "{warnings}"
    );
    // router keys under litellm_settings moved to router_settings (which wins)
    let r = &loaded.config.router_settings;
    assert_eq!((r.num_retries, r.allowed_fails), (Some(2), Some(3)));

    let gw = TestGateway::start(&yaml).await;
    let key = "sk-1234";
    let models = listed(&gw, key).await;
    for m in [
        "gpt-3.5-turbo-instruct",
        "gpt-4o",
        "gpt4",
        "claude-3-5-sonnet",
        "bedrock-claude",
        "gemini-pro",
        "command-r",
        "text-embedding-3-small",
        "sagemaker-llama",
        "granite",
    ] {
        assert!(models.contains(&m.to_string()), "{m}: {models:?}");
    }
    let h = get_as(&gw, key, "/health").await;
    assert_eq!(h.status, 200, "{}", h.text());
    let h = h.json();
    let names = |k: &str| -> Vec<String> {
        h[k].as_array()
            .unwrap()
            .iter()
            .map(|e| e["model_name"].as_str().unwrap().to_string())
            .collect()
    };
    let (healthy, unhealthy) = (names("healthy_endpoints"), names("unhealthy_endpoints"));
    assert_eq!(healthy.len() + unhealthy.len(), 10, "{h}");
    for m in ["gpt-3.5-turbo-instruct", "claude-3-5-sonnet", "gemini-pro"] {
        assert!(healthy.contains(&m.to_string()), "{m}: {h}");
    }
    for m in ["sagemaker-llama", "granite"] {
        assert!(unhealthy.contains(&m.to_string()), "{m}: {h}");
    }
    // the credential_list entry made the Azure deployment callable
    let r = post_as(
        &gw,
        key,
        "/v1/chat/completions",
        chat("gpt-3.5-turbo-instruct"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["object"], "chat.completion");
    let azure = up
        .requests()
        .into_iter()
        .find(|q| q.path.contains("/openai/deployments/gpt-4o-eu/"))
        .expect("the health check called the Azure deployment");
    assert_eq!(azure.headers["api-key"].to_str().unwrap(), "azure-test-key");
    assert!(
        azure.query.contains("api-version=2024-10-21"),
        "{}",
        azure.query
    );

    // litellm_settings.store_audit_logs is honoured
    let k = post_as(&gw, key, "/key/generate", json!({"key_alias": "k1"})).await;
    assert_eq!(k.status, 200, "{}", k.text());
    let audit = get_as(&gw, key, "/audit?action=created").await;
    assert_eq!(audit.status, 200, "{}", audit.text());
    assert_eq!(
        audit.json()["audit_logs"][0]["updated_values"]["key_alias"],
        "k1"
    );
    gw.gw.shutdown().await;
}

/// The SpendLogs rows of the gateway's database, by request id.
async fn spend_rows(db: &TestDb) -> Vec<(String, String, Value)> {
    db.client()
        .await
        .query(
            "SELECT request_id, litellm_call_id, metadata FROM \"TianjiLLM_SpendLogs\"",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// SpendLogs `request_id` is the answer's `id` (a stream's first chunk's, a translated
/// Anthropic answer's `msg_...`), found by `/spend/logs?request_id=`; the call id stays in
/// `x-tianji-call-id`, `litellm_call_id` and the metadata. Rows stay unique: an id the
/// provider repeats, or none at all, stores the row under its call id, and none is lost.
#[tokio::test]
async fn spend_logs_request_id_is_the_answer_id() {
    let db = TestDb::create().await;
    let n = Arc::new(AtomicUsize::new(0));
    let seen = n.clone();
    let up = MockUpstream::with(Arc::new(move |r: &Recorded| {
        let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
        if r.path.ends_with("/v1/messages") || r.path.ends_with("/embeddings") {
            return providers::reply(r);
        }
        if body["stream"] == true {
            return default_reply(r);
        }
        let id = match body["messages"][0]["content"].as_str() {
            Some("same") => "chatcmpl-same".to_string(),
            _ => format!("chatcmpl-{}", seen.fetch_add(1, Ordering::SeqCst)),
        };
        let mut v = crate::common::mock_upstream::chat_completion("gpt-4o", "hi");
        v["id"] = json!(id);
        Reply::status(200, v)
    }))
    .await;
    let gw = TestGateway::start(&format!(
        "model_list:\n  - model_name: gpt\n    litellm_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: k}}\n  - model_name: emb\n    litellm_params: {{model: openai/text-embedding-3-small, api_base: \"{b}\", api_key: k}}\n  - model_name: claude\n    litellm_params: {{model: anthropic/claude-sonnet-4-5, api_base: \"http://{a}\", api_key: k}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n  proxy_batch_write_at: 0.05\n",
        b = up.base(),
        a = up.addr,
        u = db.url
    ))
    .await;
    let say = |model: &str, text: &str| {
        json!({"model": model, "messages": [{"role": "user", "content": text}]}).to_string()
    };
    let r = gw.post("/v1/chat/completions", &say("gpt", "one")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let answer_id = r.json()["id"].as_str().unwrap().to_string();
    let call_id = r.header("x-tianji-call-id").unwrap().to_string();
    let mut dup_calls = Vec::new();
    for _ in 0..2 {
        let r = gw.post("/v1/chat/completions", &say("gpt", "same")).await;
        assert_eq!(r.json()["id"], "chatcmpl-same");
        dup_calls.push(r.header("x-tianji-call-id").unwrap().to_string());
    }
    let s = crate::common::stream(
        &gw.url("/v1/chat/completions"),
        &json!({"model": "gpt", "stream": true, "messages": [{"role": "user", "content": "s"}]})
            .to_string(),
    )
    .await;
    assert_eq!(s.status, 200);
    let r = gw.post("/v1/chat/completions", &say("claude", "hi")).await;
    assert_eq!(r.json()["id"], "msg_mock", "{}", r.text());
    let r = gw
        .post("/v1/embeddings", r#"{"model":"emb","input":"hi"}"#)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let emb_call = r.header("x-tianji-call-id").unwrap().to_string();

    let stored = eventually_async(Duration::from_secs(10), || async {
        spend_rows(&db).await.len() == 6
    })
    .await;
    assert!(stored, "rows: {:?}", spend_rows(&db).await);
    let rows = spend_rows(&db).await;
    let by_call = |c: &str| rows.iter().find(|r| r.1 == c).unwrap().clone();
    let (request_id, _, meta) = by_call(&call_id);
    assert_eq!(request_id, answer_id);
    assert_eq!(meta["litellm_call_id"], call_id.as_str());
    // the repeated id: one row has it, the other its call id; both stored
    let dups: Vec<String> = dup_calls.iter().map(|c| by_call(c).0).collect();
    assert!(dups.contains(&"chatcmpl-same".to_string()), "{dups:?}");
    assert!(dups.iter().zip(&dup_calls).any(|(r, c)| r == c), "{dups:?}");
    let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert!(ids.contains(&"c1"), "the stream's first chunk id: {ids:?}");
    assert!(ids.contains(&"msg_mock"), "{ids:?}");
    assert_eq!(by_call(&emb_call).0, emb_call, "no id: the call id");

    for wanted in [answer_id.as_str(), call_id.as_str()] {
        let logs = gw
            .get(&format!("/spend/logs?request_id={wanted}&summarize=false"))
            .await;
        assert_eq!(logs.status, 200, "{}", logs.text());
        let logs = logs.json();
        assert_eq!(logs.as_array().unwrap().len(), 1, "{wanted}: {logs}");
        assert_eq!(logs[0]["request_id"], answer_id.as_str());
        assert_eq!(logs[0]["litellm_call_id"], call_id.as_str());
    }
    gw.gw.shutdown().await;
}

/// Provider errors keep LiteLLM's body (`message`, `type`, `param`, `code`): the provider's
/// OpenAI error `code` where it gave one, else the status as a string, the same whether the
/// error ends a whole answer or a stream.
#[tokio::test]
async fn provider_errors_keep_their_code_or_the_status() {
    let up = MockUpstream::with(Arc::new(|r: &Recorded| {
        let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let say = body["messages"][0]["content"].as_str().unwrap_or("");
        let stream = body["stream"] == true;
        let anthropic_error = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        match (r.path.ends_with("/v1/messages"), say, stream) {
            (false, "quota", _) => Reply::status(
                429,
                json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}),
            ),
            (false, _, _) => Reply::status(
                429,
                json!({"error": {"message": "Rate limit reached", "type": "requests", "param": null}}),
            ),
            (true, "limit", _) => Reply::status(
                429,
                json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Too many requests"}}),
            ),
            (true, _, false) => Reply::status(529, anthropic_error),
            (true, _, true) => Reply::Sse {
                events: vec![
                    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"c\",\"usage\":{\"input_tokens\":3,\"output_tokens\":0}}}\n\n".into(),
                    format!("event: error\ndata: {anthropic_error}\n\n"),
                ],
                gap: Duration::ZERO,
            },
        }
    }))
    .await;
    let gw = TestGateway::start(&format!(
        "model_list:\n  - model_name: oai\n    litellm_params: {{model: openai/gpt-4o, api_base: \"{}\", api_key: k}}\n  - model_name: claude\n    litellm_params: {{model: anthropic/claude-sonnet-4-5, api_base: \"http://{}\", api_key: k}}\n",
        up.base(),
        up.addr
    ))
    .await;
    let ask = |model: &str, say: &str| {
        json!({"model": model, "messages": [{"role": "user", "content": say}]}).to_string()
    };
    for (model, say, status, kind, code) in [
        ("oai", "limit", 429, "requests", "429"),
        (
            "oai",
            "quota",
            429,
            "insufficient_quota",
            "insufficient_quota",
        ),
        ("claude", "limit", 429, "rate_limit_error", "429"),
        ("claude", "busy", 503, "api_error", "503"),
    ] {
        let e = gw
            .post("/v1/chat/completions", &ask(model, say))
            .await
            .assert_error(status);
        assert_eq!(e["error"]["type"], kind, "{model} {say}: {e}");
        assert_eq!(e["error"]["code"], code, "{model} {say}: {e}");
        assert!(e["error"].get("param").is_some(), "{e}");
    }
    // the same Anthropic error inside a stream: the same type and code
    let s = crate::common::stream(
        &gw.url("/v1/chat/completions"),
        &json!({"model": "claude", "stream": true, "messages": [{"role": "user", "content": "busy"}]})
            .to_string(),
    )
    .await;
    let text = s.text();
    let ev: Value = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|v| v.get("error").is_some())
        .unwrap_or_else(|| panic!("no error event: {text}"));
    assert_eq!(
        ev["error"],
        json!({"message": "Overloaded", "type": "api_error", "param": null, "code": "503"}),
        "{text}"
    );
    gw.gw.shutdown().await;
}
