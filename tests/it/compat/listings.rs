//! Drop-in compatibility: listings, end users and regions (see mod.rs): `/v1/models`,
//! `/model/info`, `/v2/model/info` and `/model_group/info` show only what the caller may call
//! (wildcard routes expanded from the price map, access groups on request); an end user's
//! budget limits every caller, the master key included; `allowed_model_region` routes to the
//! deployments of that region.

use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::MockUpstream;
use crate::common::{MASTER_KEY, Resp, TestGateway, one_model, send};
use crate::it::admin_keys::call;
use crate::it::limits::{admin, new_key};

fn shared_redis() -> String {
    std::env::var("TIANJI_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn get(gw: &TestGateway, path: &str, key: &str) -> Resp {
    call(gw, Method::GET, path, key, Value::Null).await
}

/// The `data[].{field}` strings of a listing.
fn names(r: &Resp, field: &str) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[field].as_str().unwrap().to_string())
        .collect()
}

/// `/v1/models`, `/model/info`, `/v2/model/info`, `/model_group/info` names for `key`.
async fn four(gw: &TestGateway, key: &str) -> [Vec<String>; 4] {
    [
        names(&get(gw, "/v1/models", key).await, "id"),
        names(&get(gw, "/model/info", key).await, "model_name"),
        names(&get(gw, "/v2/model/info", key).await, "model_name"),
        names(&get(gw, "/model_group/info", key).await, "model_group"),
    ]
}

#[tokio::test]
async fn listings_follow_the_callers_access() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let b = up.base();
    let yaml = format!(
        "model_list:
  - model_name: gpt-4o
    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-provider-secret}}
    model_info: {{access_groups: [beta-models]}}
  - model_name: claude
    tianji_params: {{model: openai/gpt-4o-mini, api_base: \"{b}\", api_key: sk-provider-secret}}
  - model_name: \"anthropic/*\"
    tianji_params: {{model: \"anthropic/*\", api_base: \"{b}\", api_key: sk-provider-secret}}
  - model_name: \"*\"
    tianji_params: {{model: \"openai/*\", api_base: \"{b}\", api_key: sk-provider-secret}}
general_settings:
  master_key: {MASTER_KEY}
  database_url: \"{u}\"
",
        u = db.url
    );
    let gw = TestGateway::start(&yaml).await;
    let haiku = "anthropic/claude-haiku-4-5".to_string();

    // the master key: groups, then the wildcard route's models from the price map (the route
    // itself only when asked)
    let [models, info, info_v2, groups] = four(&gw, MASTER_KEY).await;
    assert_eq!(models[..2], ["gpt-4o", "claude"]);
    assert!(models.contains(&haiku), "{models:?}");
    assert!(!models.contains(&"anthropic/*".to_string()));
    // a catch-all route the price map cannot expand is listed itself (as LiteLLM does)
    assert_eq!(models.last().map(String::as_str), Some("*"));
    assert!(groups.contains(&haiku), "{groups:?}");
    assert_eq!(info, ["gpt-4o", "claude", "anthropic/*", "*"]);
    assert_eq!(info_v2, info);
    let wild = get(&gw, "/v1/models?return_wildcard_routes=true", MASTER_KEY).await;
    assert!(names(&wild, "id").contains(&"anthropic/*".to_string()));
    let g = get(
        &gw,
        "/model_group/info?model_group=anthropic/claude-haiku-4-5",
        MASTER_KEY,
    )
    .await;
    let g = &g.json()["data"][0];
    assert_eq!(g["providers"], json!(["anthropic"]));
    assert_eq!(g["mode"], "chat");
    assert!(g["max_input_tokens"].as_u64().unwrap() > 0, "{g}");
    assert!(g["input_cost_per_token"].as_f64().unwrap() > 0.0, "{g}");

    // a key limited to one model sees only it, everywhere
    let k = new_key(&gw, json!({"models": ["gpt-4o"]})).await;
    for listed in four(&gw, &k).await {
        assert_eq!(listed, ["gpt-4o"]);
    }
    assert_eq!(get(&gw, "/v1/models/claude", &k).await.status, 404);
    assert_eq!(get(&gw, "/v1/models/gpt-4o", &k).await.status, 200);

    // a personal key: its user's models apply (LiteLLM's test_get_personal_models_for_user)
    let user = admin(
        &gw,
        "/user/new",
        json!({"models": ["claude"], "auto_create_key": false}),
    )
    .await;
    let personal = new_key(&gw, json!({"user_id": user["user_id"]})).await;
    for listed in four(&gw, &personal).await {
        assert_eq!(listed, ["claude"]);
    }

    // a team key: the team's models, a wildcard expanded; `all-team-models` on the key
    let team = admin(
        &gw,
        "/team/new",
        json!({"models": ["gpt-4o", "anthropic/*"]}),
    )
    .await;
    for key_models in [json!([]), json!(["all-team-models"])] {
        let tk = new_key(
            &gw,
            json!({"team_id": team["team_id"], "models": key_models}),
        )
        .await;
        let [models, info, _, groups] = four(&gw, &tk).await;
        assert_eq!(models[0], "gpt-4o");
        assert!(models.contains(&haiku), "{models:?}");
        assert!(!models.contains(&"claude".to_string()), "{models:?}");
        assert_eq!(info, ["gpt-4o", "anthropic/*"]);
        assert!(groups.contains(&haiku) && !groups.contains(&"claude".to_string()));
    }

    // a key for a provider's wildcard behind the catch-all route: that provider's models
    let groq = new_key(&gw, json!({"models": ["groq/*"]})).await;
    let [models, info, _, groups] = four(&gw, &groq).await;
    assert!(
        !models.is_empty() && models.iter().all(|m| m.starts_with("groq/")),
        "{models:?}"
    );
    assert_eq!(info, ["*"]);
    assert_eq!(groups, models);

    // model access groups: only on request, and only those the caller may use
    let beta = new_key(&gw, json!({"models": ["beta-models"]})).await;
    assert_eq!(
        names(&get(&gw, "/v1/models", &beta).await, "id"),
        ["gpt-4o"]
    );
    let only = "/v1/models?only_model_access_groups=true";
    assert_eq!(names(&get(&gw, only, &beta).await, "id"), ["beta-models"]);
    assert_eq!(
        names(&get(&gw, only, MASTER_KEY).await, "id"),
        ["beta-models"]
    );
    assert!(names(&get(&gw, only, &k).await, "id").is_empty());
    let with = "/v1/models?include_model_access_groups=True";
    assert_eq!(
        names(&get(&gw, with, &beta).await, "id"),
        ["gpt-4o", "beta-models"]
    );

    // /v2/model/info: filters and LiteLLM's page fields
    let v2 = get(&gw, "/v2/model/info?size=1&page=2", MASTER_KEY)
        .await
        .json();
    assert_eq!(v2["total_count"], 4);
    assert_eq!(v2["total_pages"], 4);
    assert_eq!(
        (v2["current_page"].clone(), v2["size"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(v2["data"][0]["model_name"], "claude");
    let v2 = get(&gw, "/v2/model/info?search=CLAU", MASTER_KEY).await;
    assert_eq!(names(&v2, "model_name"), ["claude"]);
    let id = get(&gw, "/model/info", &k).await.json()["data"][0]["model_info"]["id"].clone();
    let by_id = format!("/v2/model/info?modelId={}", id.as_str().unwrap());
    assert_eq!(
        names(&get(&gw, &by_id, MASTER_KEY).await, "model_name"),
        ["gpt-4o"]
    );
    get(&gw, "/v2/model/info?size=0", MASTER_KEY)
        .await
        .assert_error(400);
    get(&gw, "/v2/model/info?page=x", &k)
        .await
        .assert_error(400);

    // model_info carries the price map's fields; credentials never show
    let info = get(&gw, "/model/info", &k).await;
    assert_eq!(
        info.json()["data"][0]["model_info"]["litellm_provider"],
        "openai"
    );
    for path in [
        "/model/info",
        "/v2/model/info",
        "/model_group/info",
        "/v1/models",
    ] {
        let r = get(&gw, path, MASTER_KEY).await;
        assert!(!r.text().contains("sk-provider-secret"), "{path}");
    }
    gw.gw.shutdown().await;
}

fn as_user(model: &str, user: &str) -> String {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "user": user})
        .to_string()
}

async fn chat(gw: &TestGateway, key: &str, body: String, headers: &[(&str, &str)]) -> Resp {
    let auth = format!("Bearer {key}");
    let mut h = vec![("authorization", auth.as_str())];
    h.extend_from_slice(headers);
    send(
        Method::POST,
        &gw.url("/v1/chat/completions"),
        &h,
        body.into(),
    )
    .await
}

/// `general_settings` with the master key and `db`, `router_settings` with the shared Redis.
fn settings(db: &TestDb) -> String {
    let (u, r) = (&db.url, shared_redis());
    format!(
        "general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\nrouter_settings:\n  redis_url: \"{r}\"\n"
    )
}

/// An end user `id` whose budget row has `limits`.
async fn end_user_with(gw: &TestGateway, id: &str, mut limits: Value) {
    limits["budget_id"] = json!(format!("b-{id}"));
    let budget = admin(gw, "/budget/new", limits).await;
    let body = json!({"user_id": id, "budget_id": budget["budget_id"]});
    admin(gw, "/end_user/new", body).await;
}

#[tokio::test]
async fn end_user_budgets_apply_to_the_master_key() {
    let (db, up) = (TestDb::create().await, MockUpstream::start().await);
    let gw = TestGateway::start(&one_model(
        "gpt",
        "openai/gpt-4o",
        &up.base(),
        &settings(&db),
    ))
    .await;
    let tag = uuid::Uuid::now_v7().simple().to_string();
    // LiteLLM's test_enduser_tpm_limits_with_master_key, with rpm: a budget row of 1 rpm
    let capped = format!("capped-{tag}");
    end_user_with(&gw, &capped, json!({"rpm_limit": 1})).await;
    let first = chat(&gw, MASTER_KEY, as_user("gpt", &capped), &[]).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert!(
        first
            .header("x-ratelimit-end_user-remaining-requests")
            .is_some()
    );
    let e = chat(&gw, MASTER_KEY, as_user("gpt", &capped), &[])
        .await
        .assert_error(429);
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!("Rate limit exceeded for end_user: {capped}.")),
        "{e}"
    );
    // named by the end-user header too
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let by_header = [("x-tianji-end-user-id", capped.as_str())];
    chat(&gw, MASTER_KEY, body.clone(), &by_header)
        .await
        .assert_error(429);
    // the master key itself, and other end users, are not limited (no limit, no rate headers)
    let free = chat(&gw, MASTER_KEY, body, &[]).await;
    assert_eq!(free.status, 200);
    assert!(
        free.header("x-ratelimit-end_user-remaining-requests")
            .is_none()
    );

    // tpm_limit (LiteLLM's own test: fewer than 5 of 10 pass)
    let tpm = format!("tpm-{tag}");
    end_user_with(&gw, &tpm, json!({"tpm_limit": 2})).await;
    let mut passed = 0;
    for _ in 0..10 {
        if chat(&gw, MASTER_KEY, as_user("gpt", &tpm), &[])
            .await
            .status
            == 200
        {
            passed += 1;
        }
    }
    assert!(passed < 5, "{passed} of 10 passed a tpm_limit of 2");

    // max_budget: a spent end user is refused for the master key as for keys
    let broke = format!("broke-{tag}");
    admin(
        &gw,
        "/end_user/new",
        json!({"user_id": broke, "max_budget": 0.0}),
    )
    .await;
    let e = chat(&gw, MASTER_KEY, as_user("gpt", &broke), &[])
        .await
        .assert_error(429);
    assert_eq!(e["error"]["type"], "budget_exceeded", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("End User={broke}"))
    );
    let k = new_key(&gw, json!({})).await;
    chat(&gw, &k, as_user("gpt", &broke), &[])
        .await
        .assert_error(429);
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn region_routing_follows_allowed_model_region() {
    let db = TestDb::create().await;
    let dep = |id: &str, extra: &str| {
        format!(
            "  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, mock_response: \"from {id}\"{extra}}}\n    model_info: {{id: {id}}}\n"
        )
    };
    let yaml = format!(
        "model_list:\n{}{}{}  - model_name: us-only\n    tianji_params: {{model: openai/gpt-4o, mock_response: hi, region_name: us}}\n  - model_name: nova\n    tianji_params: {{model: bedrock/amazon.nova-lite-v1:0, mock_response: hi, aws_region_name: eu-central-1}}\n  - model_name: gemini-eu\n    tianji_params: {{model: vertex_ai/gemini-2.5-flash, mock_response: hi, vertex_project: p, vertex_location: europe-west4}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n",
        dep("dep-eu", ", region_name: eu"),
        dep("dep-us", ", region_name: US"),
        dep("dep-none", ""),
        u = db.url
    );
    let gw = TestGateway::start(&yaml).await;
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let (eu, us) = (format!("eu-{tag}"), format!("us-{tag}"));
    admin(
        &gw,
        "/end_user/new",
        json!({"user_id": eu, "allowed_model_region": "eu"}),
    )
    .await;
    admin(
        &gw,
        "/end_user/new",
        json!({"user_id": us, "allowed_model_region": "us"}),
    )
    .await;
    let e = call(
        &gw,
        Method::POST,
        "/end_user/new",
        MASTER_KEY,
        json!({"user_id": format!("x-{tag}"), "allowed_model_region": "asia"}),
    )
    .await;
    e.assert_error(400);

    // LiteLLM's test_end_user_specific_region: every call of an EU end user goes to the EU
    // deployment and says so
    let k = new_key(&gw, json!({})).await;
    for _ in 0..8 {
        let r = chat(&gw, &k, as_user("gpt", &eu), &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-tianji-model-id"), Some("dep-eu"));
        assert_eq!(r.header("x-tianji-model-region"), Some("eu"));
        let r = chat(&gw, MASTER_KEY, as_user("gpt", &us), &[]).await;
        assert_eq!(r.header("x-tianji-model-id"), Some("dep-us"));
        assert_eq!(r.header("x-tianji-model-region"), Some("us"));
    }
    // a model group without a deployment in the region: LiteLLM's 429
    let e = chat(&gw, &k, as_user("us-only", &eu), &[])
        .await
        .assert_error(429);
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("allowed_model_region=eu") && msg.contains("us-only"),
        "{e}"
    );
    // regions from the provider's location: Bedrock's AWS region, Vertex AI's location
    for model in ["nova", "gemini-eu"] {
        let r = chat(&gw, &k, as_user(model, &eu), &[]).await;
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        assert_eq!(r.header("x-tianji-model-region"), Some("eu"), "{model}");
        chat(&gw, &k, as_user(model, &us), &[])
            .await
            .assert_error(429);
    }
    // a key's own region (metadata.allowed_model_region), with or without an end user
    let us_key = new_key(&gw, json!({"metadata": {"allowed_model_region": "us"}})).await;
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    for _ in 0..4 {
        let r = chat(&gw, &us_key, body.clone(), &[]).await;
        assert_eq!(r.header("x-tianji-model-id"), Some("dep-us"));
    }
    // a key in the US and an end user in the EU: no deployment is in both
    chat(&gw, &us_key, as_user("gpt", &eu), &[])
        .await
        .assert_error(429);
    gw.gw.shutdown().await;
}
