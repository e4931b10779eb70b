//! Provider pass-through `/{provider}/{*path}`: the path, query and body reach the provider as
//! sent, with the configured credential; the caller's Tianji key never does.

use std::sync::Arc;

use bytes::Bytes;
use http::Method;
use serde_json::json;

use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};
use crate::common::providers::{self, AWS_KEY_ID, AWS_SECRET};
use crate::common::{MASTER_KEY, TestGateway, send};

#[tokio::test]
async fn provider_credentials_injected_caller_key_never_forwarded() {
    let up = MockUpstream::with(Arc::new(|r: &Recorded| {
        if r.path.starts_with("/model/") {
            return providers::reply(r);
        }
        Reply::status(
            200,
            json!({"path": r.path, "query": r.query, "method": r.method.as_str()}),
        )
    }))
    .await;
    let a = up.addr;
    let gw = TestGateway::start(&format!(
        "model_list:
  - model_name: claude
    tianji_params: {{model: anthropic/claude-sonnet-4-5, api_base: \"http://{a}\", api_key: sk-ant-provider, use_in_pass_through: true}}
  - model_name: gpt
    tianji_params: {{model: openai/gpt-4o, api_base: \"http://{a}/v1\", api_key: sk-openai-provider, use_in_pass_through: true}}
  - model_name: gem
    tianji_params: {{model: gemini/gemini-2.5-flash, api_base: \"http://{a}\", api_key: gem-provider, use_in_pass_through: true}}
  - model_name: bed
    tianji_params: {{model: bedrock/amazon.nova-pro-v1:0, api_base: \"http://{a}\", aws_access_key_id: {AWS_KEY_ID}, aws_secret_access_key: \"{AWS_SECRET}\", aws_region_name: us-west-2, use_in_pass_through: true}}
  - model_name: az
    tianji_params: {{model: azure/dep, api_base: \"http://{a}\", api_key: az-provider, use_in_pass_through: true}}
"
    ))
    .await;
    let call =
        |method: Method, path: &str, headers: Vec<(&'static str, String)>, body: &'static str| {
            let url = gw.url(path);
            async move {
                let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                send(method, &url, &h, Bytes::from_static(body.as_bytes())).await
            }
        };
    let bearer = || ("authorization", format!("Bearer {MASTER_KEY}"));

    // Anthropic, the caller's key in x-api-key as the anthropic SDK sends it
    let body = r#"{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[]}"#;
    let r = call(
        Method::POST,
        "/anthropic/v1/messages?beta=true",
        vec![
            ("x-api-key", MASTER_KEY.to_string()),
            ("anthropic-beta", "files-api-2025-04-14".into()),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.query, "beta=true");
    assert_eq!(sent.headers["x-api-key"], "sk-ant-provider");
    assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
    assert_eq!(sent.headers["anthropic-beta"], "files-api-2025-04-14");
    assert_eq!(sent.body, Bytes::from_static(body.as_bytes()));

    // Anthropic message batches: ids stay in the path
    for (m, path) in [
        (Method::POST, "/anthropic/v1/messages/batches"),
        (Method::GET, "/anthropic/v1/messages/batches/msgbatch_01"),
        (
            Method::GET,
            "/anthropic/v1/messages/batches/msgbatch_01/results",
        ),
    ] {
        let r = call(
            m.clone(),
            path,
            vec![bearer()],
            if m == Method::POST {
                "{\"requests\":[]}"
            } else {
                ""
            },
        )
        .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(up.last().path, path.trim_start_matches("/anthropic"));
        assert_eq!(up.last().method, m);
    }

    // OpenAI: the /v1 of the deployment's base is not doubled
    let r = call(Method::GET, "/openai/v1/models", vec![bearer()], "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.last().path, "/v1/models");
    assert_eq!(
        up.last().headers["authorization"],
        "Bearer sk-openai-provider"
    );

    // Gemini: the caller's ?key= is not passed on
    let r = call(
        Method::POST,
        &format!("/gemini/v1beta/models/gemini-2.5-flash:generateContent?key={MASTER_KEY}&alt=sse"),
        vec![],
        "{\"contents\":[]}",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(sent.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(sent.query, "alt=sse");
    assert_eq!(sent.headers["x-goog-api-key"], "gem-provider");

    // Bedrock: signed with the deployment's credentials (checked by the mock)
    let r = call(
        Method::POST,
        "/bedrock/model/amazon.nova-pro-v1:0/converse",
        vec![bearer(), ("content-type", "application/json".into())],
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]}]}",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    providers::sigv4_check(&up.last()).unwrap();

    // Azure: api-key
    let r = call(
        Method::GET,
        "/azure/openai/deployments/dep/models?api-version=1",
        vec![bearer()],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.last().headers["api-key"], "az-provider");

    // the provider's own errors come back as sent
    let r = call(
        Method::POST,
        "/bedrock/model/x/unknown",
        vec![bearer()],
        "{}",
    )
    .await;
    assert_eq!(r.status, 404);

    // no Tianji key: refused, nothing sent; no deployment of the provider: a JSON 501
    let n = up.requests().len();
    call(Method::GET, "/openai/v1/models", vec![], "")
        .await
        .assert_error(401);
    call(
        Method::GET,
        "/openai/v1/models",
        vec![("authorization", "Bearer sk-provider-guess".into())],
        "",
    )
    .await
    .assert_error(401);
    call(
        Method::POST,
        "/mistral/v1/chat/completions",
        vec![bearer()],
        "{}",
    )
    .await
    .assert_error(501);
    assert_eq!(up.requests().len(), n);

    // the caller's key reached no provider
    for r in up.requests() {
        for (name, value) in &r.headers {
            assert!(
                !value.to_str().unwrap_or_default().contains(MASTER_KEY),
                "{} {name}",
                r.path
            );
        }
        assert!(!r.query.contains(MASTER_KEY), "{}", r.path);
    }
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn configured_pass_through_endpoints() {
    let up = MockUpstream::with(Arc::new(|r: &Recorded| {
        Reply::status(200, json!({"path": r.path, "query": r.query}))
    }))
    .await;
    let a = up.addr;
    let gw = TestGateway::start(&format!(
        "model_list: []
general_settings:
  master_key: {MASTER_KEY}
  pass_through_endpoints:
    - path: /v1/rerank-custom
      target: http://{a}/rerank
      headers: {{Authorization: Bearer custom-secret, x-team: blue}}
      methods: [POST]
    - path: /public
      target: http://{a}/pub
      include_subpath: true
      forward_headers: true
      auth: false
"
    ))
    .await;
    let r = gw
        .post("/v1/rerank-custom?top=1", "{\"query\":\"q\"}")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(
        (sent.path.as_str(), sent.query.as_str()),
        ("/rerank", "top=1")
    );
    assert_eq!(sent.headers["authorization"], "Bearer custom-secret");
    assert_eq!(sent.headers["x-team"], "blue");
    assert_eq!(sent.body, Bytes::from_static(b"{\"query\":\"q\"}"));
    // auth on: no key, no call; a method not listed: 405
    let n = up.requests().len();
    send(
        Method::POST,
        &gw.url("/v1/rerank-custom"),
        &[],
        Bytes::from_static(b"{}"),
    )
    .await
    .assert_error(401);
    gw.get("/v1/rerank-custom").await.assert_error(405);
    assert_eq!(up.requests().len(), n);
    // auth off, subpaths, the client's headers passed on
    let r = send(
        Method::GET,
        &gw.url("/public/a/b?x=1"),
        &[("x-client", "c1")],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(
        (sent.path.as_str(), sent.query.as_str()),
        ("/pub/a/b", "x=1")
    );
    assert_eq!(sent.headers["x-client"], "c1");
    // not a subpath of a configured path
    gw.get("/publicity").await.assert_error(404);
    gw.gw.shutdown().await;
}

/// Pass-through answers are read for usage (JSON of every provider's shape, SSE and Bedrock
/// event streams): SpendLogs rows carry tokens and the cost of the model the answer names;
/// budgets and rate limits of the caller's key apply.
#[tokio::test]
async fn pass_through_spend_budgets_and_limits() {
    let db = TestDb::create().await;
    let up = MockUpstream::with(Arc::new(providers::reply)).await;
    let a = up.addr;
    let gw = TestGateway::start(&format!(
        "model_list:
  - model_name: claude
    tianji_params: {{model: anthropic/claude-3-haiku-20240307, api_base: \"http://{a}\", api_key: sk-ant-provider, use_in_pass_through: true}}
  - model_name: gpt
    tianji_params: {{model: openai/gpt-4o-mini, api_base: \"http://{a}/v1\", api_key: sk-openai-provider, use_in_pass_through: true}}
  - model_name: gem
    tianji_params: {{model: gemini/gemini-2.5-pro, api_base: \"http://{a}\", api_key: gem-provider, use_in_pass_through: true}}
  - model_name: bed
    tianji_params: {{model: bedrock/amazon.nova-lite-v1:0, api_base: \"http://{a}\", aws_access_key_id: {AWS_KEY_ID}, aws_secret_access_key: \"{AWS_SECRET}\", aws_region_name: us-west-2, use_in_pass_through: true}}
general_settings:
  master_key: {MASTER_KEY}
  database_url: \"{}\"
  pass_through_endpoints:
    - path: /custom/chat
      target: http://{a}/v1/chat/completions
",
        db.url
    ))
    .await;
    let key = |body: serde_json::Value| {
        let gw = &gw;
        async move {
            let r = send(
                Method::POST,
                &gw.url("/key/generate"),
                &[("authorization", &format!("Bearer {MASTER_KEY}"))],
                Bytes::from(body.to_string()),
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.text());
            r.json()["key"].as_str().unwrap().to_string()
        }
    };
    let spender = key(json!({"key_alias": "spender"})).await;
    let call = |key: &str, path: &str, body: serde_json::Value| {
        let url = gw.url(path);
        let auth = format!("Bearer {key}");
        async move {
            send(
                Method::POST,
                &url,
                &[
                    ("authorization", auth.as_str()),
                    ("content-type", "application/json"),
                ],
                Bytes::from(body.to_string()),
            )
            .await
        }
    };
    let chat = json!({"messages": [{"role": "user", "content": "hi"}]});
    let with = |extra: serde_json::Value| {
        let mut v = chat.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    let calls: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "/anthropic/v1/messages",
            with(json!({"model": "claude-sonnet-4-5", "max_tokens": 10})),
            "claude-sonnet-4-5",
        ),
        (
            "/anthropic/v1/messages",
            with(json!({"model": "claude-sonnet-4-5", "max_tokens": 10, "stream": true})),
            "claude-sonnet-4-5",
        ),
        (
            "/openai/v1/chat/completions",
            with(json!({"model": "gpt-4o"})),
            "gpt-4o",
        ),
        (
            "/openai/v1/chat/completions",
            with(
                json!({"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true}}),
            ),
            "gpt-4o",
        ),
        (
            "/gemini/v1beta/models/gemini-2.5-flash:generateContent",
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
            "gemini-2.5-flash",
        ),
        (
            "/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
            "gemini-2.5-flash",
        ),
        (
            "/bedrock/model/amazon.nova-pro-v1:0/converse",
            json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}),
            "amazon.nova-pro-v1:0",
        ),
        (
            "/bedrock/model/amazon.nova-pro-v1:0/converse-stream",
            json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}),
            "amazon.nova-pro-v1:0",
        ),
        ("/custom/chat", with(json!({"model": "gpt-4o"})), "gpt-4o"),
    ];
    for (path, body, _) in &calls {
        let r = call(&spender, path, body.clone()).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }

    // a budget: admitted while under it, refused once a pass-through call spent it
    let capped = key(json!({"max_budget": 0.0001})).await;
    let first = call(&capped, calls[0].0, calls[0].1.clone()).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let mut refused = None;
    for _ in 0..100 {
        let r = call(&capped, "/openai/v1/chat/completions", calls[2].1.clone()).await;
        if r.status != 200 {
            refused = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let refused = refused.expect("the spent budget was never enforced");
    let e = refused.assert_error(429);
    assert_eq!(e["error"]["type"], "budget_exceeded", "{e}");

    // a rate limit: the third call in the minute is refused before reaching the provider
    let limited = key(json!({"rpm_limit": 2})).await;
    for _ in 0..2 {
        let r = call(&limited, "/openai/v1/chat/completions", calls[2].1.clone()).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let n = up.requests().len();
    call(&limited, "/openai/v1/chat/completions", calls[2].1.clone())
        .await
        .assert_error(429);
    assert_eq!(up.requests().len(), n);
    gw.gw.shutdown().await;

    // one row per call, with the answer's tokens and the price of the model it names
    let client = db.client().await;
    let rows = client
        .query(
            "SELECT s.spend, s.prompt_tokens, s.completion_tokens, s.call_type, s.api_key
             FROM \"TianjiLLM_SpendLogs\" s JOIN \"TianjiLLM_VerificationToken\" k ON k.token = s.api_key
             WHERE k.key_alias = 'spender' ORDER BY s.\"startTime\"",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), calls.len());
    for (row, (path, _, model)) in rows.iter().zip(&calls) {
        let spend: f64 = row.get(0);
        let (p, c): (i32, i32) = (row.get(1), row.get(2));
        assert_eq!(row.get::<_, String>(3), "pass_through_endpoint");
        assert!(p > 0 && c > 0, "{path}: {p} {c}");
        let (pi, ci) = match *model {
            "claude-sonnet-4-5" => (3e-6, 1.5e-5),
            "gpt-4o" => (2.5e-6, 1e-5),
            "gemini-2.5-flash" => (3e-7, 2.5e-6),
            _ => (8e-7, 3.2e-6),
        };
        let want = p as f64 * pi + c as f64 * ci;
        assert!((spend - want).abs() < 1e-12, "{path}: {spend} != {want}");
    }
    let key_spend: f64 = client
        .query_one(
            "SELECT spend FROM \"TianjiLLM_VerificationToken\" WHERE key_alias = 'spender'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let total: f64 = rows.iter().map(|r| r.get::<_, f64>(0)).sum();
    assert!((key_spend - total).abs() < 1e-12, "{key_spend} {total}");
}

/// Without a deployment of the provider: a wildcard entry of it, else its credentials in the
/// environment; neither: a JSON 501.
#[tokio::test]
async fn pass_through_wildcard_and_environment_credentials() {
    let up = MockUpstream::with(Arc::new(providers::reply)).await;
    let a = up.addr;
    let gw = TestGateway::start(&format!(
        "model_list:
  - model_name: \"cohere/*\"
    tianji_params: {{model: \"cohere/*\", api_base: \"http://{a}\", api_key: co-wildcard, use_in_pass_through: true}}
environment_variables:
  ANTHROPIC_API_KEY: sk-ant-env
  ANTHROPIC_API_BASE: \"http://{a}\"
general_settings:
  master_key: {MASTER_KEY}
"
    ))
    .await;
    let auth = format!("Bearer {MASTER_KEY}");
    let post = |path: &str, body: &'static str| {
        let url = gw.url(path);
        let auth = auth.clone();
        async move {
            send(
                Method::POST,
                &url,
                &[("authorization", auth.as_str())],
                Bytes::from_static(body.as_bytes()),
            )
            .await
        }
    };
    let r = post(
        "/anthropic/v1/messages",
        r#"{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[]}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.last().headers["x-api-key"], "sk-ant-env");
    let r = post("/cohere/v2/chat", r#"{"model":"command-r","messages":[]}"#).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.last().headers["authorization"], "Bearer co-wildcard");
    let e = post("/mistral/v1/chat/completions", "{}")
        .await
        .assert_error(501);
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("MISTRAL") || msg.contains("environment"),
        "{msg}"
    );
    gw.gw.shutdown().await;
}

/// Issue 26, item 5: the credential and base of pass-through come from the deployment marked
/// `use_in_pass_through: true`, else from the provider's variables (`ANTHROPIC_API_KEY`,
/// `ANTHROPIC_API_BASE` in `environment_variables`); an unmarked deployment is never used.
#[tokio::test]
async fn pass_through_uses_only_the_marked_deployment_else_the_environment() {
    let unmarked = MockUpstream::with(Arc::new(providers::reply)).await;
    let chosen = MockUpstream::with(Arc::new(providers::reply)).await;
    let (a, b) = (unmarked.addr, chosen.addr);
    let body = r#"{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[]}"#;
    let post = |gw: &TestGateway, path: &str| {
        let url = gw.url(path);
        async move {
            send(
                Method::POST,
                &url,
                &[("x-api-key", MASTER_KEY)],
                Bytes::from_static(body.as_bytes()),
            )
            .await
        }
    };

    // two Anthropic deployments, the second marked: its key and base, whatever the order
    let gw = TestGateway::start(&format!(
        "model_list:
  - model_name: claude-first
    tianji_params: {{model: anthropic/claude-sonnet-4-5, api_base: \"http://{a}\", api_key: sk-ant-unmarked}}
  - model_name: claude-chosen
    tianji_params: {{model: anthropic/claude-sonnet-4-5, api_base: \"http://{b}\", api_key: sk-ant-marked, use_in_pass_through: true}}
  - model_name: co
    tianji_params: {{model: cohere/command-r, api_base: \"http://{a}\", api_key: co-unmarked}}
environment_variables:
  ANTHROPIC_API_KEY: sk-ant-env
general_settings:
  master_key: {MASTER_KEY}
"
    ))
    .await;
    let r = post(&gw, "/anthropic/v1/messages").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(chosen.requests().len(), 1);
    assert_eq!(chosen.last().headers["x-api-key"], "sk-ant-marked");
    // an unmarked Cohere deployment and no COHERE_API_KEY: no credential, nothing sent
    post(&gw, "/cohere/v2/chat").await.assert_error(501);
    assert!(unmarked.requests().is_empty());
    gw.gw.shutdown().await;

    // none marked: ANTHROPIC_API_KEY and ANTHROPIC_API_BASE of environment_variables
    let gw = TestGateway::start(&format!(
        "model_list:
  - model_name: claude-first
    tianji_params: {{model: anthropic/claude-sonnet-4-5, api_base: \"http://{a}\", api_key: sk-ant-unmarked}}
environment_variables:
  ANTHROPIC_API_KEY: sk-ant-env
  ANTHROPIC_API_BASE: \"http://{b}\"
general_settings:
  master_key: {MASTER_KEY}
"
    ))
    .await;
    let r = post(&gw, "/anthropic/v1/messages").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(chosen.requests().len(), 2);
    assert_eq!(chosen.last().headers["x-api-key"], "sk-ant-env");
    assert_eq!(chosen.last().path, "/v1/messages");
    // the unmarked deployment's account saw no call, and no credential of it left the gateway
    assert!(unmarked.requests().is_empty());
    for r in chosen.requests() {
        assert!(!format!("{:?}", r.headers).contains("sk-ant-unmarked"));
    }
    gw.gw.shutdown().await;
}
