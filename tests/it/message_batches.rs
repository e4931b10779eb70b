//! Issue 26, item 4: Anthropic message batches as gateway routes, driven by the official
//! `anthropic` SDK (`client.messages.batches.create/retrieve/list/cancel/results/delete`)
//! against a mock Anthropic account that keeps batches in memory and records credentials.

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::common::anthropic_account::{AnthropicAccount, usage_of};
use crate::common::db::TestDb;
use crate::common::{MASTER_KEY, TestGateway, eventually_async, send};

async fn run_sdk(gw: &TestGateway, key: &str, other: &str, account: &str) -> Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/anthropic_batches.py"
    );
    let mut cmd = Command::new(crate::it::sdk::python());
    cmd.arg(script)
        .args([&gw.url(""), key, other, account])
        .env("PYTHONUNBUFFERED", "1");
    let out = crate::it::sdk::output_within(cmd, Duration::from_secs(120)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("ALL OK"),
        "anthropic_batches.py failed:\n{stdout}\n{stderr}"
    );
    let line = stdout.lines().rev().nth(1).unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test]
async fn message_batches_through_the_anthropic_sdk() {
    let db = TestDb::create().await;
    let account = AnthropicAccount::start().await;
    let a = account.up.addr;
    let gw = TestGateway::start(&format!(
        "model_list:
  - model_name: claude
    tianji_params: {{model: anthropic/claude-haiku-4-5, api_base: \"http://{a}\", api_key: sk-ant-batches}}
  - model_name: gpt
    tianji_params: {{model: openai/gpt-4o, api_base: \"http://{a}/v1\", api_key: sk-openai}}
general_settings:
  master_key: {MASTER_KEY}
  database_url: \"{}\"
",
        db.url
    ))
    .await;
    let alice = crate::it::mcp::key(&gw, json!({"user_id": "alice"})).await;
    let bob = crate::it::mcp::key(&gw, json!({"user_id": "bob"})).await;
    let limited = crate::it::mcp::key(&gw, json!({"user_id": "carol", "rpm_limit": 3})).await;

    let seen = run_sdk(&gw, &alice, &bob, &format!("http://{a}")).await;
    let sealed = seen["id"].as_str().unwrap().to_string();

    // what reached the account: its own credential, never a gateway key; the deployment's model
    let sent = account.up.requests();
    let batch_calls: Vec<_> = sent
        .iter()
        .filter(|r| r.path.starts_with("/v1/messages/batches"))
        .collect();
    assert!(batch_calls.len() >= 8, "{}", batch_calls.len());
    for r in &batch_calls {
        assert_eq!(r.headers["x-api-key"], "sk-ant-batches", "{}", r.path);
        assert!(r.headers.get("authorization").is_none(), "{}", r.path);
        for k in [alice.as_str(), bob.as_str(), MASTER_KEY] {
            assert!(!format!("{:?}", r.headers).contains(k), "{}", r.path);
        }
    }
    let create = batch_calls
        .iter()
        .find(|r| r.method == Method::POST && r.path == "/v1/messages/batches")
        .unwrap();
    assert_eq!(
        create.json()["requests"][0]["params"]["model"],
        "claude-haiku-4-5"
    );
    // the sealed id names no provider id
    assert!(!sealed.contains("mock"), "{sealed}");
    assert!(
        account
            .batches
            .lock()
            .values()
            .any(|b| b.body["requests"].as_array().map_or(0, Vec::len) == 4)
    );

    // spend: one row booked from the results' usage at the batch price (haiku 4.5: 0.5x)
    let (input, output): (u64, u64) = [0usize, 1, 3]
        .iter()
        .map(|i| usage_of(*i))
        .fold((0, 0), |(a, b), (i, o)| (a + i, b + o));
    assert_eq!(seen["input_tokens"], input);
    assert_eq!(seen["output_tokens"], output);
    let expected = input as f64 * 5e-7 + output as f64 * 2.5e-6;
    let client = db.client().await;
    let q = "SELECT spend, prompt_tokens, completion_tokens FROM \"TianjiLLM_SpendLogs\" WHERE call_type = 'aretrieve_batch_results'";
    let written = eventually_async(Duration::from_secs(15), || async {
        client.query(q, &[]).await.unwrap().len() >= 2
    })
    .await;
    assert!(written, "the results' rows were never written");
    let rows = client.query(q, &[]).await.unwrap();
    let booked: Vec<(f64, i32, i32)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .filter(|r| r.0 > 0.0)
        .collect();
    assert_eq!(booked.len(), 1, "{booked:?}");
    assert!(
        (booked[0].0 - expected).abs() < 1e-12,
        "{booked:?} {expected}"
    );
    assert_eq!((booked[0].1, booked[0].2), (input as i32, output as i32));
    let creates: i64 = client
        .query_one(
            "SELECT count(*) FROM \"TianjiLLM_SpendLogs\" WHERE call_type = 'acreate_batch'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(creates, 2);

    let call = |key: String, method: Method, path: String, body: Value| {
        let url = gw.url(&path);
        async move {
            let auth = format!("Bearer {key}");
            send(
                method,
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
    let req = |id: &str, model: &str| json!({"custom_id": id, "params": {"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}});
    let n = account.up.requests().len();
    // the batch limiter: 4 requests over an rpm limit of 3, all or nothing; nothing sent
    let four: Vec<Value> = (0..4).map(|i| req(&format!("q{i}"), "claude")).collect();
    call(
        limited.clone(),
        Method::POST,
        "/v1/messages/batches".into(),
        json!({"requests": four}),
    )
    .await
    .assert_error(429);
    // bad input: clear 4xx, nothing sent
    for body in [
        json!({"requests": []}),
        json!({"requests": [req("a", "claude"), req("b", "gpt")]}),
        json!({"requests": [{"custom_id": "a"}]}),
        json!({"requests": [req("a", "gpt")]}),
        json!([1]),
    ] {
        let r = call(
            alice.clone(),
            Method::POST,
            "/v1/messages/batches".into(),
            body.clone(),
        )
        .await;
        r.assert_error(400);
    }
    // ids the gateway did not issue are refused to non-admins
    call(
        alice.clone(),
        Method::GET,
        "/v1/messages/batches/msgbatch_mock0001".into(),
        json!({}),
    )
    .await
    .assert_error(403);
    assert_eq!(account.up.requests().len(), n);

    // an admin naming a model lists that account, ids sealed
    let r = call(
        MASTER_KEY.into(),
        Method::GET,
        "/v1/messages/batches?model=claude".into(),
        json!({}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let listed = r.json()["data"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0]["id"].as_str().unwrap().starts_with("msgbatch_"));
    assert!(!r.text().contains("msgbatch_mock"), "{}", r.text());
    // an admin reads alice's batch, which stays hers
    let r = call(
        MASTER_KEY.into(),
        Method::GET,
        format!("/v1/messages/batches/{sealed}"),
        json!({}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], sealed.as_str());
    // alice deletes it; bob could not
    call(
        bob.clone(),
        Method::DELETE,
        format!("/v1/messages/batches/{sealed}"),
        json!({}),
    )
    .await
    .assert_error(403);
    let r = call(
        alice.clone(),
        Method::DELETE,
        format!("/v1/messages/batches/{sealed}"),
        json!({}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(account.batches.lock().is_empty());
    gw.gw.shutdown().await;
}
