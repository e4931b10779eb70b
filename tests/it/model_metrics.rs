//! `/model/metrics`, `/model/metrics/slow_responses`, `/model/metrics/exceptions` (spec US10):
//! LiteLLM's parameters and answer shapes over real SpendLogs and ErrorLogs rows, written by
//! requests through the gateway and placed in time by the test.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Reply, default_reply};
use crate::common::{MASTER_KEY, TestGateway, eventually_async};

use super::admin_keys::call;

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

#[tokio::test]
async fn latency_slow_responses_and_exceptions() {
    let db = TestDb::create().await;
    let up = MockUpstream::with(Arc::new(|r| {
        if r.json()["model"] == "broken" {
            Reply::status(
                429,
                json!({"error": {"message": "slow down", "type": "rate_limit"}}),
            )
        } else {
            default_reply(r)
        }
    }))
    .await;
    let yaml = format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up}}\n  - model_name: bad\n    tianji_params: {{model: openai/broken, api_base: \"{b}\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n  proxy_batch_write_at: 0.05\n  alerting_threshold: 10\nrouter_settings:\n  disable_cooldowns: true\n",
        b = up.base(),
        u = db.url
    );
    let gw = TestGateway::start(&yaml).await;
    let chat = |model: &'static str| {
        let gw = &gw;
        async move {
            call(
                gw,
                Method::POST,
                "/v1/chat/completions",
                MASTER_KEY,
                json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "num_retries": 0}),
            )
            .await
        }
    };
    for _ in 0..3 {
        assert_eq!(chat("gpt").await.status, 200);
        assert_eq!(chat("bad").await.status, 429);
    }
    let c = db.client().await;
    assert!(
        eventually_async(Duration::from_secs(20), || async {
            let s: i64 = c
                .query_one("SELECT count(*) FROM \"TianjiLLM_SpendLogs\" WHERE model_group = 'gpt' AND status = 'success'", &[])
                .await
                .unwrap()
                .get(0);
            let e: i64 = c
                .query_one("SELECT count(*) FROM \"TianjiLLM_ErrorLogs\" WHERE model_group = 'bad'", &[])
                .await
                .unwrap()
                .get(0);
            s == 3 && e == 3
        })
        .await,
        "spend and error rows were not written"
    );
    // Place the three successes on two days with known durations (the mock answers with 12
    // completion tokens... whatever it reported: read it back), plus rows of an https
    // deployment on Azure, a cache hit (left out) and a slow request.
    c.batch_execute(
        "WITH r AS (SELECT request_id, row_number() OVER (ORDER BY request_id) AS i
                    FROM \"TianjiLLM_SpendLogs\" WHERE model_group = 'gpt')
         UPDATE \"TianjiLLM_SpendLogs\" s
         SET \"startTime\" = CASE WHEN r.i = 1 THEN timestamp '2026-03-01 10:00:00' ELSE timestamp '2026-03-02 10:00:00' END,
             \"endTime\" = CASE WHEN r.i = 1 THEN timestamp '2026-03-01 10:00:02'
                               WHEN r.i = 2 THEN timestamp '2026-03-02 10:00:04'
                               ELSE timestamp '2026-03-02 10:00:12' END,
             completion_tokens = 4
         FROM r WHERE s.request_id = r.request_id;
         INSERT INTO \"TianjiLLM_SpendLogs\" (request_id, call_type, \"startTime\", \"endTime\", model, model_group, api_base, completion_tokens, cache_hit, status) VALUES
           ('az-1', 'acompletion', '2026-03-02 09:00:00', '2026-03-02 09:00:01', 'azure/gpt-4o', 'gpt', 'https://x.openai.azure.com/openai/deployments/g', 10, 'False', 'success'),
           ('az-2', 'acompletion', '2026-03-02 09:00:00', '2026-03-02 09:00:03', 'azure/gpt-4o', 'gpt', 'https://x.openai.azure.com/openai/deployments/g', 10, 'False', 'success'),
           ('hit', 'acompletion', '2026-03-02 09:00:00', '2026-03-02 09:01:00', 'azure/gpt-4o', 'gpt', 'https://x.openai.azure.com/openai/deployments/g', 10, 'True', 'success'),
           ('other', 'acompletion', '2026-03-02 09:00:00', '2026-03-02 09:00:01', 'x', 'other', '', 10, 'False', 'success');
         UPDATE \"TianjiLLM_ErrorLogs\" SET \"startTime\" = '2026-03-02 11:00:00', \"endTime\" = '2026-03-02 11:00:01';",
    )
    .await
    .unwrap();
    let get = |path: &'static str| {
        let gw = &gw;
        async move {
            let r = call(gw, Method::GET, path, MASTER_KEY, Value::Null).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text());
            r.json()
        }
    };

    let m = get("/model/metrics?_selected_model_group=gpt&startTime=2026-03-01&endTime=2026-03-02")
        .await;
    let data = m["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{m}");
    assert_eq!(data[0]["date"], "2026-03-01");
    assert!(close(&data[0]["gpt-4o"], 0.5), "{m}"); // 2 s / 4 tokens
    assert_eq!(data[1]["date"], "2026-03-02");
    assert!(close(&data[1]["gpt-4o"], 2.0), "{m}"); // (1 + 3) / 2
    assert!(close(&data[1]["https://x.openai.azure.com"], 0.2), "{m}"); // (0.1 + 0.3) / 2
    assert_eq!(
        m["all_api_bases"],
        json!(["gpt-4o", "https://x.openai.azure.com"])
    );
    // The window bounds the rows; no group: every group.
    let m = get("/model/metrics?startTime=2026-03-02T00:00:00Z&endTime=2026-03-02T23:59:59").await;
    assert_eq!(m["data"].as_array().unwrap().len(), 1, "{m}");
    assert!(close(&m["data"][0]["x"], 0.1), "{m}");
    let m = get("/model/metrics?_selected_model_group=nothing").await;
    assert_eq!(m, json!({"data": [], "all_api_bases": []}));

    let slow = get("/model/metrics/slow_responses?_selected_model_group=gpt&startTime=2026-03-01&endTime=2026-03-03").await;
    let slow = slow.as_array().unwrap().clone();
    let of = |base: &str| {
        slow.iter()
            .find(|e| e["api_base"].as_str().unwrap().starts_with(base))
            .cloned()
            .unwrap()
    };
    // threshold 10 s: one of the three gateway requests took 12 s; the cache hit is left out
    let mine = of("http://");
    assert_eq!(
        (mine["total_count"].as_i64(), mine["slow_count"].as_i64()),
        (Some(3), Some(1)),
        "{slow:?}"
    );
    let az = of("https://x.openai.azure.com");
    assert_eq!(az["api_base"], "https://x.openai.azure.com");
    assert_eq!(
        (az["total_count"].as_i64(), az["slow_count"].as_i64()),
        (Some(2), Some(0))
    );

    let ex = get("/model/metrics/exceptions?_selected_model_group=bad&startTime=2026-03-02&endTime=2026-03-02").await;
    let rows = ex["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{ex}");
    assert_eq!(rows[0]["total_exceptions"], 3, "{ex}");
    let kinds = ex["exception_types"].as_array().unwrap();
    assert_eq!(kinds.len(), 1, "{ex}");
    assert_eq!(rows[0][kinds[0].as_str().unwrap()], 3, "{ex}");
    assert!(
        rows[0]["model"].as_str().unwrap().starts_with("broken"),
        "{ex}"
    );
    let ex = get("/model/metrics/exceptions?_selected_model_group=gpt").await;
    assert_eq!(ex, json!({"data": [], "exception_types": []}));

    // Bad parameters are 400s; a key that is not an admin's is refused.
    let r = call(
        &gw,
        Method::GET,
        "/model/metrics?startTime=yesterday",
        MASTER_KEY,
        Value::Null,
    )
    .await;
    r.assert_error(400);
    let r = call(
        &gw,
        Method::GET,
        "/model/metrics?startTime=2026-03-05&endTime=2026-03-01",
        MASTER_KEY,
        Value::Null,
    )
    .await;
    r.assert_error(400);
    let key = call(&gw, Method::POST, "/key/generate", MASTER_KEY, json!({}))
        .await
        .json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    for path in [
        "/model/metrics",
        "/model/metrics/slow_responses",
        "/model/metrics/exceptions",
        "/cron_jobs",
    ] {
        let r = call(&gw, Method::GET, path, &key, Value::Null).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text());
    }
}
