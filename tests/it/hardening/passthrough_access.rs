//! Issue 19, item 2: provider pass-through checks the caller's model access against the model
//! the call names (body or path) and its pass-through route lists, and books the call under
//! that model at its price, not under the deployment lending its credential.

use std::sync::Arc;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};
use crate::common::providers;
use crate::common::{MASTER_KEY, Resp, TestGateway, send};
use crate::it::limits::{admin, new_key};

/// Chat completions answered without naming a model (so only the request tells which model
/// was used); everything else as the providers answer.
async fn upstream() -> MockUpstream {
    MockUpstream::with(Arc::new(|r: &Recorded| {
        if r.path.ends_with("/chat/completions") {
            return Reply::status(
                200,
                json!({"id": "c1", "object": "chat.completion", "created": 1,
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}}),
            );
        }
        if r.path == "/v1/models" {
            return Reply::status(200, json!({"object": "list", "data": []}));
        }
        providers::reply(r)
    }))
    .await
}

/// `mock-a` (openai/gpt-4o-mini at its own price, in access group `beta`) lends the OpenAI
/// credential; `gem` is gemini-2.5-flash.
async fn gateway(db: &TestDb, up: &MockUpstream) -> TestGateway {
    let a = up.addr;
    TestGateway::start(&format!(
        "model_list:
  - model_name: mock-a
    tianji_params: {{model: openai/gpt-4o-mini, api_base: \"http://{a}/v1\", api_key: sk-openai-provider, input_cost_per_token: 0.001, output_cost_per_token: 0.002, use_in_pass_through: true}}
    model_info: {{access_groups: [beta]}}
  - model_name: gem
    tianji_params: {{model: gemini/gemini-2.5-flash, api_base: \"http://{a}\", api_key: gem-provider, use_in_pass_through: true}}
general_settings:
  master_key: {MASTER_KEY}
  database_url: \"{}\"
  pass_through_endpoints:
    - path: /custom/chat
      target: http://{a}/v1/chat/completions
",
        db.url
    ))
    .await
}

async fn call(gw: &TestGateway, key: &str, method: Method, path: &str, body: &str) -> Resp {
    send(
        method,
        &gw.url(path),
        &[
            ("authorization", &format!("Bearer {key}")),
            ("content-type", "application/json"),
        ],
        Bytes::from(body.to_string()),
    )
    .await
}

fn chat(model: &str) -> String {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}).to_string()
}

const OPENAI: &str = "/openai/v1/chat/completions";
const GEMINI: &str = "/gemini/v1beta/models/gemini-2.5-flash:generateContent";
const GEMINI_PRO: &str = "/gemini/v1beta/models/gemini-2.5-pro:generateContent";
const GEMINI_BODY: &str = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;

fn denied(r: &Resp, kind: &str) {
    let e = r.assert_error(403);
    assert_eq!(e["error"]["type"], kind, "{e}");
}

#[tokio::test]
async fn pass_through_checks_the_named_model() {
    let db = TestDb::create().await;
    let up = upstream().await;
    let gw = gateway(&db, &up).await;
    let limited = new_key(&gw, json!({"models": ["mock-a"]})).await;
    let by_provider = new_key(&gw, json!({"models": ["openai/gpt-4o"]})).await;
    let grouped = new_key(&gw, json!({"models": ["beta"]})).await;
    let free = new_key(&gw, json!({})).await;
    let team = admin(&gw, "/team/new", json!({"models": ["gem"]})).await;
    let in_team = new_key(&gw, json!({"team_id": team["team_id"]})).await;
    let reached = || up.requests().len();

    // a key limited to mock-a may not reach gpt-4o with the gateway's OpenAI credential
    let n = reached();
    let r = call(&gw, &limited, Method::POST, OPENAI, &chat("gpt-4o")).await;
    denied(&r, "key_model_access_denied");
    // nor hide it behind a nested or a second `model`
    for body in [
        r#"{"metadata":{"model":"gpt-4o-mini"},"model":"gpt-4o","messages":[]}"#,
        r#"{"model":"gpt-4o-mini","model":"gpt-4o","messages":[]}"#,
    ] {
        let r = call(&gw, &limited, Method::POST, OPENAI, body).await;
        denied(&r, "key_model_access_denied");
    }
    // nor make a call that names no model
    let r = call(&gw, &limited, Method::GET, "/openai/v1/models", "").await;
    denied(&r, "key_model_access_denied");
    assert_eq!(reached(), n, "a refused call reached the provider");

    // mock-a's own model is allowed, by its group, its provider/model name or an access group
    let r = call(&gw, &limited, Method::POST, OPENAI, &chat("gpt-4o-mini")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last();
    assert_eq!(sent.headers["authorization"], "Bearer sk-openai-provider");
    assert_eq!(
        serde_json::from_slice::<Value>(&sent.body).unwrap()["model"],
        "gpt-4o-mini"
    );
    let r = call(&gw, &by_provider, Method::POST, OPENAI, &chat("gpt-4o")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(
        &gw,
        &by_provider,
        Method::POST,
        OPENAI,
        &chat("gpt-4o-mini"),
    )
    .await;
    denied(&r, "key_model_access_denied");
    let r = call(&gw, &grouped, Method::POST, OPENAI, &chat("gpt-4o-mini")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(&gw, &grouped, Method::POST, OPENAI, &chat("gpt-4o")).await;
    denied(&r, "key_model_access_denied");
    // unrestricted keys may call anything, named model or not
    let r = call(&gw, &free, Method::POST, OPENAI, &chat("gpt-4o")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(&gw, &free, Method::GET, "/openai/v1/models", "").await;
    assert_eq!(r.status, 200, "{}", r.text());

    // the team's models apply, to models named in the path too
    let n = reached();
    let r = call(&gw, &in_team, Method::POST, GEMINI_PRO, GEMINI_BODY).await;
    denied(&r, "team_model_access_denied");
    let r = call(&gw, &in_team, Method::POST, OPENAI, &chat("gpt-4o")).await;
    denied(&r, "team_model_access_denied");
    // a path the provider would resolve elsewhere than the model checked
    let r = call(
        &gw,
        &in_team,
        Method::POST,
        "/gemini/v1beta/models/gemini-2.5-flash/../gemini-2.5-pro:generateContent",
        GEMINI_BODY,
    )
    .await;
    r.assert_error(400);
    assert_eq!(reached(), n, "a refused call reached the provider");
    let r = call(&gw, &in_team, Method::POST, GEMINI, GEMINI_BODY).await;
    assert_eq!(r.status, 200, "{}", r.text());
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn pass_through_route_lists_apply() {
    let db = TestDb::create().await;
    let up = upstream().await;
    let gw = gateway(&db, &up).await;
    let no_openai = new_key(&gw, json!({"denied_passthrough_routes": ["/openai/*"]})).await;
    let only_gemini = new_key(&gw, json!({"allowed_passthrough_routes": ["/gemini/*"]})).await;
    let both = new_key(
        &gw,
        json!({"allowed_passthrough_routes": ["/openai/*"], "denied_passthrough_routes": ["/openai/v1/chat/completions"]}),
    )
    .await;
    let team = admin(
        &gw,
        "/team/new",
        json!({"denied_passthrough_routes": ["/gemini/*"]}),
    )
    .await;
    let in_team = new_key(&gw, json!({"team_id": team["team_id"]})).await;

    let n = up.requests().len();
    for (key, path, body) in [
        (&no_openai, OPENAI, chat("gpt-4o")),
        (&only_gemini, OPENAI, chat("gpt-4o")),
        (&only_gemini, "/custom/chat", chat("gpt-4o")),
        (&both, OPENAI, chat("gpt-4o")),
        (&in_team, GEMINI, GEMINI_BODY.to_string()),
    ] {
        let r = call(&gw, key, Method::POST, path, &body).await;
        denied(&r, "permission_error");
    }
    assert_eq!(
        up.requests().len(),
        n,
        "a refused call reached the provider"
    );
    for (key, path, body) in [
        (&no_openai, GEMINI, GEMINI_BODY.to_string()),
        (&only_gemini, GEMINI, GEMINI_BODY.to_string()),
        (
            &both,
            "/openai/v1/embeddings",
            json!({"model": "text-embedding-3-small", "input": "a"}).to_string(),
        ),
        (&in_team, OPENAI, chat("gpt-4o")),
    ] {
        let r = call(&gw, key, Method::POST, path, &body).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn pass_through_is_booked_under_the_named_model_at_its_price() {
    let db = TestDb::create().await;
    let up = upstream().await;
    let gw = gateway(&db, &up).await;
    let free = new_key(&gw, json!({"key_alias": "free"})).await;
    let limited = new_key(&gw, json!({"key_alias": "limited", "models": ["mock-a"]})).await;
    let r = call(&gw, &free, Method::POST, OPENAI, &chat("gpt-4o")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(&gw, &limited, Method::POST, OPENAI, &chat("gpt-4o-mini")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    gw.gw.shutdown().await;

    let client = db.client().await;
    let row = |alias: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(
                    "SELECT s.model, s.model_group, s.spend, s.prompt_tokens, s.completion_tokens
                     FROM \"TianjiLLM_SpendLogs\" s JOIN \"TianjiLLM_VerificationToken\" k ON k.token = s.api_key
                     WHERE k.key_alias = $1",
                    &[&alias],
                )
                .await
                .unwrap()
        }
    };
    // gpt-4o through mock-a's credential: gpt-4o's name and price map price
    let r = row("free").await;
    let (model, group, spend): (String, String, f64) = (r.get(0), r.get(1), r.get(2));
    assert_eq!((model.as_str(), group.as_str()), ("gpt-4o", "gpt-4o"));
    assert_eq!((r.get::<_, i32>(3), r.get::<_, i32>(4)), (9, 3));
    let want = 9.0 * 2.5e-6 + 3.0 * 1e-5;
    assert!((spend - want).abs() < 1e-12, "{spend} != {want}");
    // gpt-4o-mini, which mock-a serves: mock-a's own price
    let r = row("limited").await;
    let (model, spend): (String, f64) = (r.get(0), r.get(2));
    assert_eq!(model, "gpt-4o-mini");
    let want = 9.0 * 0.001 + 3.0 * 0.002;
    assert!((spend - want).abs() < 1e-12, "{spend} != {want}");
}
