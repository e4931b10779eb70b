//! Spend accounting against a real Postgres: one SpendLogs row per request with the cost from
//! the price map, roll-ups to every entity and the daily tables, budgets under bursts, the
//! flush on shutdown.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply, default_reply};
use crate::common::{MASTER_KEY, Resp, TestGateway, eventually, eventually_async, send};

use super::admin_keys::call;

/// gpt-4o and text-embedding-3-small as the embedded price map has them.
const IN: f64 = 2.5e-6;
const OUT: f64 = 1e-5;
const EMB_IN: f64 = 2e-8;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

/// A gateway with `gpt` (openai/gpt-4o) and `emb` (openai/text-embedding-3-small) at `up`.
async fn gateway(db: &TestDb, up: &MockUpstream, general: &str) -> TestGateway {
    let yaml = format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up}}\n  - model_name: emb\n    tianji_params: {{model: openai/text-embedding-3-small, api_base: \"{b}\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n{general}",
        b = up.base(),
        u = db.url
    );
    TestGateway::start(&yaml).await
}

/// The mock's default answers, or a 500 when the request says "fail".
async fn failing_mock(delay: Duration) -> MockUpstream {
    MockUpstream::with(Arc::new(move |r: &Recorded| {
        let reply = if String::from_utf8_lossy(&r.body).contains("\"fail\"") {
            Reply::status(
                500,
                json!({"error": {"message": "upstream broke", "type": "server_error"}}),
            )
        } else {
            default_reply(r)
        };
        if delay.is_zero() {
            reply
        } else {
            Reply::Delay(delay, Box::new(reply))
        }
    }))
    .await
}

async fn ok(r: Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

async fn post(gw: &TestGateway, path: &str, key: &str, body: Value) -> Resp {
    call(gw, Method::POST, path, key, body).await
}

async fn rows(db: &TestDb, sql: &str) -> Vec<tokio_postgres::Row> {
    db.client().await.query(sql, &[]).await.unwrap()
}

async fn count(db: &TestDb, table: &str) -> i64 {
    rows(db, &format!("SELECT count(*) FROM \"{table}\"")).await[0].get(0)
}

async fn wait_rows(db: &TestDb, n: i64) {
    let written = eventually_async(Duration::from_secs(10), || async {
        count(db, "TianjiLLM_SpendLogs").await >= n
    })
    .await;
    assert!(written, "SpendLogs never reached {n} rows");
}

async fn spend_of(db: &TestDb, table: &str, col: &str, id: &str) -> f64 {
    let r = db
        .client()
        .await
        .query(
            &format!("SELECT spend FROM \"{table}\" WHERE \"{col}\" = $1"),
            &[&id],
        )
        .await
        .unwrap();
    r.first().map(|r| r.get(0)).unwrap_or(-1.0)
}

async fn chat_as(gw: &TestGateway, key: &str, body: Value) -> Resp {
    send(
        Method::POST,
        &gw.url(if body.get("input").is_some() {
            "/v1/embeddings"
        } else {
            "/v1/chat/completions"
        }),
        &[("authorization", &format!("Bearer {key}"))],
        Bytes::from(body.to_string()),
    )
    .await
}

#[tokio::test]
async fn every_request_is_logged_costed_and_rolled_up() {
    let db = TestDb::create().await;
    let up = failing_mock(Duration::ZERO).await;
    let gw = gateway(&db, &up, "  proxy_batch_write_at: 0.05\n").await;
    let org = ok(post(
        &gw,
        "/organization/new",
        MASTER_KEY,
        json!({"organization_alias": "acme"}),
    )
    .await)
    .await;
    let org_id = org["organization_id"].as_str().unwrap().to_string();
    let team = ok(post(
        &gw,
        "/team/new",
        MASTER_KEY,
        json!({"team_alias": "t", "organization_id": org_id}),
    )
    .await)
    .await;
    let team_id = team["team_id"].as_str().unwrap().to_string();
    ok(post(&gw, "/user/new", MASTER_KEY, json!({"user_id": "alice"})).await).await;
    ok(post(
        &gw,
        "/team/member_add",
        MASTER_KEY,
        json!({"team_id": team_id, "member": {"role": "user", "user_id": "alice"}}),
    )
    .await)
    .await;
    let k = ok(post(
        &gw,
        "/key/generate",
        MASTER_KEY,
        json!({"team_id": team_id, "user_id": "alice"}),
    )
    .await)
    .await;
    let key = k["key"].as_str().unwrap().to_string();
    let token = k["token"].as_str().unwrap().to_string();

    let msgs = json!([{"role": "user", "content": "hi"}]);
    let mut expected = Vec::new();
    // 3 plain chats for end user "eve" with a tag
    for _ in 0..3 {
        let r = chat_as(&gw, &key, json!({"model": "gpt", "messages": msgs, "user": "eve", "metadata": {"tags": ["blue"]}})).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let cost: f64 = r.header("x-tianji-response-cost").unwrap().parse().unwrap();
        assert!(close(cost, 9.0 * IN + 3.0 * OUT), "{cost}");
        expected.push((9.0 * IN + 3.0 * OUT, "success"));
    }
    // 2 streams (usage read from the stream the gateway asked for)
    for _ in 0..2 {
        let r = chat_as(
            &gw,
            &key,
            json!({"model": "gpt", "messages": msgs, "stream": true}),
        )
        .await;
        assert_eq!(r.status, 200);
        assert!(r.text().ends_with("data: [DONE]\n\n"));
        expected.push((9.0 * IN + 2.0 * OUT, "success"));
    }
    // 2 failures
    for _ in 0..2 {
        let r = chat_as(
            &gw,
            &key,
            json!({"model": "gpt", "messages": [{"role": "user", "content": "fail"}]}),
        )
        .await;
        assert_eq!(r.status, 500, "{}", r.text());
        expected.push((0.0, "failure"));
    }
    // 2 embeddings
    for _ in 0..2 {
        let r = chat_as(&gw, &key, json!({"model": "emb", "input": "hello"})).await;
        assert_eq!(r.status, 200, "{}", r.text());
        expected.push((2.0 * EMB_IN, "success"));
    }
    let n = expected.len() as i64;
    wait_rows(&db, n).await;
    // let the roll-ups of the last flush land (same transaction, so they already have)
    assert_eq!(count(&db, "TianjiLLM_SpendLogs").await, n);

    let logs = rows(&db, "SELECT spend, status, api_key, call_type, model, model_group, custom_llm_provider, \"user\", team_id, organization_id, end_user, request_tags, messages, \"startTime\" <= \"endTime\", metadata FROM \"TianjiLLM_SpendLogs\"").await;
    let mut got: Vec<(f64, String)> = logs.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut want: Vec<(f64, String)> = expected.iter().map(|(c, s)| (*c, s.to_string())).collect();
    let by = |a: &(f64, String), b: &(f64, String)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    got.sort_by(by);
    want.sort_by(by);
    for (g, w) in got.iter().zip(&want) {
        assert!(close(g.0, w.0) && g.1 == w.1, "got {got:?} want {want:?}");
    }
    for r in &logs {
        assert_eq!(r.get::<_, String>(2), token, "api_key is the hash");
        assert_eq!(r.get::<_, String>(7), "alice");
        assert_eq!(
            r.get::<_, Option<String>>(8).as_deref(),
            Some(team_id.as_str())
        );
        assert_eq!(
            r.get::<_, Option<String>>(9).as_deref(),
            Some(org_id.as_str())
        );
        assert_eq!(
            r.get::<_, Value>(12),
            json!({}),
            "prompts are not stored by default"
        );
        assert!(r.get::<_, bool>(13));
        let meta: Value = r.get(14);
        assert_eq!(meta["user_api_key_team_id"], json!(team_id));
        assert!(!meta.to_string().contains(&key), "raw key in metadata");
    }
    let call_types: Vec<String> = logs.iter().map(|r| r.get(3)).collect();
    assert_eq!(call_types.iter().filter(|c| *c == "aembedding").count(), 2);
    assert_eq!(call_types.iter().filter(|c| *c == "acompletion").count(), 7);
    let r0 = logs
        .iter()
        .find(|r| r.get::<_, Option<String>>(10).is_some())
        .unwrap();
    assert_eq!(r0.get::<_, String>(4), "gpt-4o");
    assert_eq!(r0.get::<_, String>(5), "gpt");
    assert_eq!(r0.get::<_, String>(6), "openai");
    assert_eq!(r0.get::<_, Value>(11), json!(["blue"]));
    assert!(
        !rows(
            &db,
            "SELECT to_jsonb(s)::text FROM \"TianjiLLM_SpendLogs\" s"
        )
        .await
        .iter()
        .any(|r| r.get::<_, String>(0).contains("sk-up")),
        "provider key stored"
    );

    let total: f64 = expected.iter().map(|e| e.0).sum();
    let eve = 3.0 * (9.0 * IN + 3.0 * OUT);
    assert!(close(
        spend_of(&db, "TianjiLLM_VerificationToken", "token", &token).await,
        total
    ));
    assert!(close(
        spend_of(&db, "TianjiLLM_TeamTable", "team_id", &team_id).await,
        total
    ));
    assert!(close(
        spend_of(&db, "TianjiLLM_UserTable", "user_id", "alice").await,
        total
    ));
    assert!(close(
        spend_of(
            &db,
            "TianjiLLM_OrganizationTable",
            "organization_id",
            &org_id
        )
        .await,
        total
    ));
    assert!(close(
        spend_of(&db, "TianjiLLM_EndUserTable", "user_id", "eve").await,
        eve
    ));
    assert!(close(
        spend_of(&db, "TianjiLLM_TagTable", "tag_name", "blue").await,
        eve
    ));
    let member: f64 = db
        .client()
        .await
        .query_one("SELECT spend FROM \"TianjiLLM_TeamMembership\" WHERE user_id = 'alice' AND team_id = $1", &[&team_id])
        .await
        .unwrap()
        .get(0);
    assert!(close(member, total));

    // daily tables agree with the logs
    for (table, col, id, want_spend, want_requests, want_failed) in [
        (
            "TianjiLLM_DailyUserSpend",
            "user_id",
            "alice",
            total,
            9i64,
            2i64,
        ),
        (
            "TianjiLLM_DailyTeamSpend",
            "team_id",
            team_id.as_str(),
            total,
            9,
            2,
        ),
        (
            "TianjiLLM_DailyOrganizationSpend",
            "organization_id",
            org_id.as_str(),
            total,
            9,
            2,
        ),
        (
            "TianjiLLM_DailyEndUserSpend",
            "end_user_id",
            "eve",
            eve,
            3,
            0,
        ),
        ("TianjiLLM_DailyTagSpend", "tag", "blue", eve, 3, 0),
    ] {
        let r = db
            .client()
            .await
            .query_one(
                &format!("SELECT sum(spend), sum(api_requests)::bigint, sum(failed_requests)::bigint, sum(successful_requests)::bigint, sum(prompt_tokens)::bigint, count(DISTINCT date) FROM \"{table}\" WHERE \"{col}\" = $1"),
                &[&id],
            )
            .await
            .unwrap();
        assert!(close(r.get(0), want_spend), "{table}");
        assert_eq!(r.get::<_, i64>(1), want_requests, "{table}");
        assert_eq!(r.get::<_, i64>(2), want_failed, "{table}");
        assert_eq!(r.get::<_, i64>(3), want_requests - want_failed, "{table}");
        assert_eq!(r.get::<_, i64>(5), 1, "{table}");
    }
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn a_burst_cannot_overspend_a_key_budget() {
    let db = TestDb::create().await;
    let up = failing_mock(Duration::from_millis(300)).await;
    let gw = gateway(&db, &up, "").await;
    // one request costs 9 prompt + 3 completion tokens; the budget is 2.5 of them
    let one = 9.0 * IN + 3.0 * OUT;
    let k = ok(post(
        &gw,
        "/key/generate",
        MASTER_KEY,
        json!({"max_budget": 2.5 * one}),
    )
    .await)
    .await;
    let key = k["key"].as_str().unwrap().to_string();
    let body =
        json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3});
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (url, key, body) = (
            gw.url("/v1/chat/completions"),
            key.clone(),
            body.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            send(
                Method::POST,
                &url,
                &[("authorization", &format!("Bearer {key}"))],
                Bytes::from(body),
            )
            .await
        }));
    }
    let mut okc = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status.as_u16() {
            200 => okc += 1,
            429 => {
                let e = r.json();
                assert_eq!(e["error"]["type"], "budget_exceeded", "{e}");
                assert!(
                    e["error"]["message"]
                        .as_str()
                        .unwrap()
                        .starts_with("Budget has been exceeded! Key=")
                );
            }
            s => panic!("unexpected {s}: {}", r.text()),
        }
    }
    assert!((1..=3).contains(&okc), "{okc} of 20 succeeded");
    // sequential requests then stop once the budget is reached, before the writer stored anything
    let mut more = 0;
    while chat_as(&gw, &key, body.clone()).await.status == 200 {
        more += 1;
        assert!(more < 5);
    }
    assert!(
        okc + more <= 3,
        "{okc} + {more} requests fit in 2.5 requests' budget"
    );
    gw.gw.shutdown().await;
    let spent = spend_of(
        &db,
        "TianjiLLM_VerificationToken",
        "token",
        k["token"].as_str().unwrap(),
    )
    .await;
    assert!(close(spent, (okc + more) as f64 * one), "{spent}");
    assert!(spent <= 2.5 * one + one);
}

#[tokio::test]
async fn shutdown_stores_every_queued_row() {
    let db = TestDb::create().await;
    let up = failing_mock(Duration::ZERO).await;
    // the writer would wait a minute before flushing: only the shutdown flush stores rows
    let gw = gateway(&db, &up, "  proxy_batch_write_at: 60\n").await;
    let n = 40;
    for i in 0..n {
        let r = chat_as(
            &gw,
            MASTER_KEY,
            json!({"model": "gpt", "messages": [{"role": "user", "content": format!("q{i}")}]}),
        )
        .await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(gw.gw.state().spend.queued(), n);
    assert_eq!(count(&db, "TianjiLLM_SpendLogs").await, 0);
    gw.gw.shutdown().await;
    assert_eq!(count(&db, "TianjiLLM_SpendLogs").await, n as i64);
}

#[tokio::test]
async fn disable_spend_logs_keeps_rollups_and_prompts_are_opt_in() {
    let db = TestDb::create().await;
    let up = failing_mock(Duration::ZERO).await;
    let gw = gateway(&db, &up, "  disable_spend_logs: true\n").await;
    let k = ok(post(&gw, "/key/generate", MASTER_KEY, json!({})).await).await;
    let key = k["key"].as_str().unwrap();
    assert_eq!(
        chat_as(
            &gw,
            key,
            json!({"model": "gpt", "messages": [{"role": "user", "content": "secret prompt"}]})
        )
        .await
        .status,
        200
    );
    gw.gw.shutdown().await;
    assert_eq!(count(&db, "TianjiLLM_SpendLogs").await, 0);
    assert!(close(
        spend_of(
            &db,
            "TianjiLLM_VerificationToken",
            "token",
            k["token"].as_str().unwrap()
        )
        .await,
        9.0 * IN + 3.0 * OUT
    ));

    let db = TestDb::create().await;
    let gw = gateway(&db, &up, "  store_prompts_in_spend_logs: true\n").await;
    assert_eq!(
        chat_as(
            &gw,
            MASTER_KEY,
            json!({"model": "gpt", "messages": [{"role": "user", "content": "secret prompt"}]})
        )
        .await
        .status,
        200
    );
    gw.gw.shutdown().await;
    let r = rows(
        &db,
        "SELECT messages, response FROM \"TianjiLLM_SpendLogs\"",
    )
    .await;
    assert_eq!(r[0].get::<_, Value>(0)[0]["content"], "secret prompt");
    assert_eq!(
        r[0].get::<_, Value>(1)["choices"][0]["message"]["content"],
        "Hello from the mock"
    );
}

#[tokio::test]
async fn budgets_reset_on_schedule() {
    let db = TestDb::create().await;
    let up = failing_mock(Duration::ZERO).await;
    let gw = gateway(
        &db,
        &up,
        "  proxy_batch_write_at: 0.05\n  proxy_budget_rescheduler_min_time: 0.1\n  proxy_budget_rescheduler_max_time: 0.2\n",
    )
    .await;
    let one = 9.0 * IN + 3.0 * OUT;
    let team = ok(post(
        &gw,
        "/team/new",
        MASTER_KEY,
        json!({"max_budget": 10.0 * one, "budget_duration": "2s"}),
    )
    .await)
    .await;
    let k = ok(post(
        &gw,
        "/key/generate",
        MASTER_KEY,
        json!({"max_budget": 1.5 * one, "budget_duration": "1s", "team_id": team["team_id"]}),
    )
    .await)
    .await;
    let key = k["key"].as_str().unwrap();
    let body =
        json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3});
    assert_eq!(chat_as(&gw, key, body.clone()).await.status, 200);
    assert_eq!(chat_as(&gw, key, body.clone()).await.status, 200);
    let e = chat_as(&gw, key, body.clone()).await.assert_error(429);
    assert_eq!(e["error"]["type"], "budget_exceeded");
    wait_rows(&db, 2).await;
    // within a few scheduler runs the key's period ends, its spend goes back to 0, and it works
    let back = eventually_async(Duration::from_secs(10), || async {
        chat_as(&gw, key, body.clone()).await.status == 200
    })
    .await;
    assert!(back, "the key's budget never reset");
    let r = rows(
        &db,
        "SELECT budget_reset_at > (now() AT TIME ZONE 'UTC') FROM \"TianjiLLM_VerificationToken\"",
    )
    .await;
    assert!(r[0].get::<_, bool>(0));
    // the team's own period (2s) resets its spend too
    let team_reset = eventually_async(Duration::from_secs(10), || async {
        let s = spend_of(
            &db,
            "TianjiLLM_TeamTable",
            "team_id",
            team["team_id"].as_str().unwrap(),
        )
        .await;
        s < 2.0 * one
    })
    .await;
    assert!(team_reset, "the team's budget never reset");
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn live_spend_is_shared_through_redis() {
    let db = TestDb::create().await;
    let up = failing_mock(Duration::ZERO).await;
    let redis =
        std::env::var("TIANJI_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    // the writer stores nothing for a minute: the second instance can only learn through Redis
    let general =
        format!("  proxy_batch_write_at: 60\nrouter_settings:\n  redis_url: \"{redis}\"\n");
    let a = gateway(&db, &up, &general).await;
    let b = gateway(&db, &up, &general).await;
    let one = 9.0 * IN + 3.0 * OUT;
    let k = ok(post(
        &a,
        "/key/generate",
        MASTER_KEY,
        json!({"max_budget": 2.5 * one}),
    )
    .await)
    .await;
    let key = k["key"].as_str().unwrap();
    let body =
        json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3});
    let mut on_a = 0;
    while chat_as(&a, key, body.clone()).await.status == 200 {
        on_a += 1;
        assert!(on_a < 10);
    }
    assert_eq!(on_a, 3);
    // a's costs reach Redis (its next sync round)
    let token = tianji::auth::token_hex(key);
    let total = format!("tianji:{{spend}}:key:{token}");
    let rc = redis::Client::open(redis.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let shared = eventually_async(Duration::from_secs(10), || {
        let (mut rc, total) = (rc.clone(), total.clone());
        async move {
            let v: Option<f64> = redis::cmd("GET")
                .arg(&total)
                .query_async(&mut rc)
                .await
                .unwrap();
            v.is_some_and(|v| (v - 3.0 * one).abs() < 1e-9)
        }
    })
    .await;
    assert!(shared, "a's costs never reached Redis");
    // b has not seen the key yet: its first request is admitted, then it learns the shared total
    // (on its own it would admit two more)
    assert_eq!(chat_as(&b, key, body.clone()).await.status, 200);
    // b's sync round: its view becomes the shared total
    let account = tianji::spend::ledger::Account::Key(token);
    let ledger = b.gw.state().spend.ledger.clone();
    let learned = eventually(Duration::from_secs(10), || {
        ledger
            .get(&account)
            .is_some_and(|(spend, _)| (spend - 4.0 * one).abs() < 1e-9)
    })
    .await;
    assert!(learned, "b never learned the shared total");
    let e = chat_as(&b, key, body.clone()).await.assert_error(429);
    let msg = e["error"]["message"].as_str().unwrap();
    let current: f64 = msg
        .split("Current cost: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!((current - 4.0 * one).abs() < 1e-9, "{msg}");
    // a global reset reaches both instances' live spend
    ok(post(&a, "/global/spend/reset", MASTER_KEY, json!({})).await).await;
    let mut back = false;
    let mut last = String::new();
    for _ in 0..60 {
        let r = chat_as(&b, key, body.clone()).await;
        if r.status == 200 {
            back = true;
            break;
        }
        last = r.text();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "instance b never saw the reset: {last}");
    a.gw.shutdown().await;
    b.gw.shutdown().await;
}

#[tokio::test]
async fn provider_budgets_steer_routing() {
    let up = failing_mock(Duration::ZERO).await;
    // one group served by openai and deepseek; a budget on openai of 1.5 requests
    let one = 9.0 * IN + 3.0 * OUT;
    let yaml = format!(
        "model_list:\n  - model_name: g\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up}}\n  - model_name: g\n    tianji_params: {{model: deepseek/deepseek-chat, api_base: \"{b}\", api_key: sk-up, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}}\n  - model_name: only-openai\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up}}\nrouter_settings:\n  provider_budget_config:\n    openai: {{budget_limit: {limit}, time_period: 1d}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n",
        b = up.base(),
        limit = 1.5 * one
    );
    let gw = TestGateway::start(&yaml).await;
    let body = |m: &str| json!({"model": m, "messages": [{"role": "user", "content": "hi"}]});
    // spend openai up to its budget
    let mut openai = 0;
    while openai < 2 {
        let r = chat_as(&gw, MASTER_KEY, body("only-openai")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        openai += 1;
    }
    let e = chat_as(&gw, MASTER_KEY, body("only-openai"))
        .await
        .assert_error(429);
    assert_eq!(e["error"]["type"], "budget_exceeded");
    assert!(
        e["error"]["message"].as_str().unwrap().starts_with(
            "No deployments available - crossed budget: Exceeded budget for provider openai"
        ),
        "{e}"
    );
    // the group still answers, always through deepseek now
    for _ in 0..10 {
        let r = chat_as(&gw, MASTER_KEY, body("g")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(up.last().json()["model"], "deepseek-chat");
    }
    let b = super::admin_keys::call(
        &gw,
        Method::GET,
        "/provider/budgets",
        MASTER_KEY,
        Value::Null,
    )
    .await;
    let v = ok(b).await;
    let p = &v["providers"]["openai"];
    assert!(close(p["spend"].as_f64().unwrap(), 2.0 * one), "{v}");
    assert_eq!(p["time_period"], "1d");
    assert!(p["budget_reset_at"].as_str().unwrap().ends_with('Z'));
    assert!(v["providers"].get("deepseek").is_none());
}

/// Answer ids that repeat across flushes (a provider that reuses its ids, a cached answer): a
/// flush asks the database only about cached answers' ids, so a repeated id that was not asked
/// about collides in the COPY; that flush is stored again asking about every id, and the row
/// gets its call id as `request_id`. Nothing is lost or stored twice, and rows whose JSON
/// columns are left to the defaults (no tags, no bodies) read the same as rows that send them.
#[tokio::test]
async fn repeated_answer_ids_fall_back_to_call_ids() {
    use tianji::spend::ledger::Reservation;
    use tianji::spend::record::SpendRow;
    use tianji::spend::{Spend, SpendOptions, Ticket};
    use tianji::store::{Store, StoreOptions};

    let db = TestDb::create().await;
    let store = Store::connect(&db.url, StoreOptions::default())
        .await
        .unwrap();
    let mut opts = SpendOptions::default();
    opts.writer.every = Duration::from_millis(20);
    let spend = Arc::new(Spend::start(Some(Arc::new(store)), opts));
    let mut calls = Vec::new();
    let mut stored = 0;
    // one flush: push the rows, wait until they are stored
    let mut flush = async |rows: &[(&str, bool, &[&str])]| {
        for (id, cache_hit, tags) in rows {
            let call_id = uuid::Uuid::now_v7();
            calls.push((call_id.to_string(), id.to_string()));
            let row = SpendRow {
                call_id,
                response_id: Some(id.to_string()),
                cache_hit: *cache_hit,
                request_tags: tags.iter().map(|t| t.to_string()).collect(),
                call_type: "acompletion",
                endpoint: "/v1/chat/completions",
                start_time: 1_764_500_000.0,
                end_time: 1_764_500_001.0,
                status: "success",
                ..SpendRow::default()
            };
            let t = Ticket {
                spend: spend.clone(),
                slot: spend.slot().await,
                reservation: Reservation::default(),
            };
            t.finish(0.0, None, Some(row));
        }
        stored += rows.len() as i64;
        wait_rows(&db, stored).await;
    };
    flush(&[("chatcmpl-a", false, &[])]).await;
    // not asked about: the COPY collides, and the batch is stored again
    flush(&[("chatcmpl-a", false, &[]), ("chatcmpl-b", false, &["t"])]).await;
    // a cached answer's id is asked about first; the writer asks about all since the collision
    flush(&[("chatcmpl-b", true, &[]), ("chatcmpl-c", false, &[])]).await;
    // nothing repeats: the writer stops asking about all
    flush(&[("chatcmpl-d", false, &[])]).await;
    // a cached answer's id asked about alone
    flush(&[("chatcmpl-a", true, &[])]).await;
    flush(&[("chatcmpl-d", false, &[]), ("chatcmpl-c", false, &["t"])]).await;
    spend.shutdown().await;

    let got = rows(
        &db,
        "SELECT litellm_call_id, request_id, request_tags::text, messages::text, response::text, metadata->>'litellm_call_id' FROM \"TianjiLLM_SpendLogs\"",
    )
    .await;
    assert_eq!(got.len(), calls.len());
    let first_of = |id: &str| calls.iter().find(|(_, a)| a == id).map(|(c, _)| c.clone());
    for (call, answer) in &calls {
        let r = got
            .iter()
            .find(|r| r.get::<_, String>(0) == *call)
            .unwrap_or_else(|| panic!("row of call {call} missing"));
        let request_id: String = r.get(1);
        // the first row with an answer id keeps it; the others have their call id
        let expected = if first_of(answer).as_deref() == Some(call.as_str()) {
            answer.clone()
        } else {
            call.clone()
        };
        assert_eq!(request_id, expected, "call {call} (answer {answer})");
        let tags: String = r.get(2);
        assert!(tags == "[]" || tags == "[\"t\"]", "{tags}");
        assert_eq!(r.get::<_, String>(3), "{}");
        assert_eq!(r.get::<_, String>(4), "{}");
        assert_eq!(r.get::<_, String>(5), *call);
    }
    let tagged = got.iter().filter(|r| r.get::<_, String>(2) != "[]").count();
    assert_eq!(tagged, 2);
}
