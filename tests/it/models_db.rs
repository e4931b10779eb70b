//! `/model/*` (database models join routing at once) and cross-instance cache invalidation
//! through Redis pub/sub, with two gateways sharing one PostgreSQL and one Redis.

use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use super::admin_keys::call;
use crate::common::db::TestDb;
use crate::common::mock_upstream::MockUpstream;
use crate::common::{MASTER_KEY, Resp, TestGateway, eventually_async};

fn ok(r: Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

async fn chat(gw: &TestGateway, key: &str, model: &str) -> u16 {
    call(
        gw,
        Method::POST,
        "/v1/chat/completions",
        key,
        json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
    .status
    .as_u16()
}

/// Ask until the answer's status is `want` (cross-instance changes arrive asynchronously).
async fn until(gw: &TestGateway, key: &str, model: &str, want: u16) -> bool {
    eventually_async(Duration::from_secs(10), || async {
        chat(gw, key, model).await == want
    })
    .await
}

#[tokio::test]
async fn database_models_and_key_changes_reach_every_instance() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let redis = std::env::var("TIANJI_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
    let yaml = format!(
        "model_list:\n  - model_name: m\n    tianji_params: {{model: openai/x, api_base: \"{b}\", api_key: sk-up}}\n    model_info: {{id: cfg-1}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\nrouter_settings:\n  redis_url: \"{redis}\"\n",
        b = up.base(),
        u = db.url
    );
    let a = TestGateway::start(&yaml).await;
    let b = TestGateway::start(&yaml).await;

    let made = ok(call(
        &a,
        Method::POST,
        "/model/new",
        MASTER_KEY,
        json!({"model_name": "dyn", "litellm_params": {"model": "openai/z", "api_base": up.base(), "api_key": "sk-provider-secret"}}),
    )
    .await);
    assert_eq!(made["tianji_params"]["api_key"], "********");
    let id = made["model_info"]["id"].as_str().unwrap().to_string();
    assert_eq!(chat(&a, MASTER_KEY, "dyn").await, 200);
    assert!(
        until(&b, MASTER_KEY, "dyn", 200).await,
        "instance B never saw the model"
    );
    let info = call(&a, Method::GET, "/model/info", MASTER_KEY, Value::Null).await;
    assert!(!info.text().contains("sk-provider-secret"));
    assert!(!info.text().contains("sk-up"));
    let data = info.json()["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 2);
    assert!(
        data.iter()
            .any(|d| d["model_info"]["id"] == id.as_str() && d["model_info"]["db_model"] == true)
    );
    let groups = ok(call(
        &b,
        Method::GET,
        "/model_group/info?model_group=dyn",
        MASTER_KEY,
        Value::Null,
    )
    .await);
    assert_eq!(groups["data"][0]["providers"], json!(["openai"]));

    for (body, field) in [
        (
            json!({"model_name": "x", "tianji_params": {"model": "nope/x"}}),
            "tianji_params",
        ),
        (
            json!({"tianji_params": {"model": "openai/x"}}),
            "model_name",
        ),
        (json!({"model_name": "x"}), "tianji_params"),
        (
            json!({"model_name": "x", "tianji_params": {"model": "openai/x"}, "extra": 1}),
            "extra",
        ),
    ] {
        let e = call(&a, Method::POST, "/model/new", MASTER_KEY, body.clone())
            .await
            .assert_error(400);
        assert_eq!(e["error"]["param"], field, "{body}");
    }
    call(
        &a,
        Method::POST,
        "/model/delete",
        MASTER_KEY,
        json!({"id": "cfg-1"}),
    )
    .await
    .assert_error(400);
    let upd = ok(call(
        &a,
        Method::POST,
        "/model/update",
        MASTER_KEY,
        json!({"model_id": id, "model_name": "dyn2"}),
    )
    .await);
    assert_eq!(upd["model_name"], "dyn2");
    assert!(until(&b, MASTER_KEY, "dyn2", 200).await);
    assert_ne!(chat(&b, MASTER_KEY, "dyn").await, 200);

    // a key cached on B is blocked through A: B hears about it at once, not after the TTL
    let key = ok(call(&a, Method::POST, "/key/generate", MASTER_KEY, json!({})).await)["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(chat(&b, &key, "m").await, 200);
    ok(call(
        &a,
        Method::POST,
        "/key/block",
        MASTER_KEY,
        json!({"key": key}),
    )
    .await);
    assert!(
        until(&b, &key, "m", 403).await,
        "instance B kept a blocked key"
    );

    ok(call(
        &a,
        Method::POST,
        "/model/delete",
        MASTER_KEY,
        json!({"id": id}),
    )
    .await);
    assert_ne!(chat(&a, MASTER_KEY, "dyn2").await, 200);
    assert!(
        until(&b, MASTER_KEY, "dyn2", 400).await,
        "instance B kept a deleted model"
    );
    call(
        &a,
        Method::POST,
        "/model/delete",
        MASTER_KEY,
        json!({"id": id}),
    )
    .await
    .assert_error(404);
}
