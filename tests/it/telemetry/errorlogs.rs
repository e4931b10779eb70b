//! ErrorLogs: one row per failed request (upstream 500, 429), written by the spend writer and
//! read through the admin-only `GET /spend/error_logs`.

use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use super::callbacks::{chat, upstream};
use crate::common::db::TestDb;
use crate::common::mock_upstream::MockUpstream;
use crate::common::{MASTER_KEY, TestGateway, eventually_async};
use crate::it::admin_keys::call;

async fn gateway(db: &TestDb, up: &MockUpstream, general: &str) -> TestGateway {
    let yaml = format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-provider-secret}}\nrouter_settings:\n  num_retries: 0\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n  proxy_batch_write_at: 0.1\n{general}",
        b = up.base(),
        u = db.url
    );
    TestGateway::start(&yaml).await
}

#[tokio::test]
async fn failed_requests_land_in_error_logs() {
    let db = TestDb::create().await;
    let up = upstream().await;
    let gw = gateway(&db, &up, "").await;
    for content in ["fail", "slow down", "fine"] {
        chat(&gw, MASTER_KEY, content).await;
    }
    let rows = || async {
        let r = gw.get("/spend/error_logs").await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json().as_array().cloned().unwrap_or_default()
    };
    assert!(
        eventually_async(Duration::from_secs(20), || async {
            rows().await.len() == 2
        })
        .await
    );
    let rows: Vec<Value> = rows().await;
    let by_code = |c: &str| {
        rows.iter()
            .find(|r| r["status_code"] == c)
            .cloned()
            .unwrap()
    };
    let e500 = by_code("500");
    assert_eq!(e500["exception_type"], "InternalServerError");
    assert!(
        e500["exception_string"]
            .as_str()
            .unwrap()
            .contains("upstream broke")
    );
    assert_eq!(e500["model_group"], "gpt");
    assert_eq!(e500["litellm_model_name"], "gpt-4o");
    assert!(!e500["model_id"].as_str().unwrap().is_empty());
    assert_eq!(e500["request_kwargs"]["model"], "gpt");
    assert!(!e500.to_string().contains("sk-provider-secret"));
    assert!(!e500.to_string().contains(MASTER_KEY));
    assert_eq!(by_code("429")["exception_type"], "RateLimitError");
    // the same request id as its SpendLogs row
    let id = e500["request_id"].as_str().unwrap();
    let r = gw
        .get(&format!("/spend/logs?request_id={id}&summarize=false"))
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 1, "{}", r.text());
    // admin only
    let r = call(&gw, Method::POST, "/key/generate", MASTER_KEY, json!({})).await;
    let key = r.json()["key"].as_str().unwrap().to_string();
    let r = call(&gw, Method::GET, "/spend/error_logs", &key, Value::Null).await;
    assert_eq!(r.status, 403, "{}", r.text());
}

#[tokio::test]
async fn disable_error_logs_writes_none() {
    let db = TestDb::create().await;
    let up = upstream().await;
    let gw = gateway(&db, &up, "  disable_error_logs: true\n").await;
    assert_eq!(chat(&gw, MASTER_KEY, "fail").await.status, 500);
    let logged = || async {
        let r = gw.get("/spend/logs?summarize=false").await;
        r.json().as_array().is_some_and(|a| a.len() == 1)
    };
    assert!(eventually_async(Duration::from_secs(20), logged).await);
    let r = gw.get("/spend/error_logs").await;
    assert_eq!(r.json(), json!([]));
}
