//! Spend and activity reports over real SpendLogs and daily tables (spec US3 scenarios 6-8), who
//! may read what, and the global spend reset.

use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::MockUpstream;
use crate::common::{MASTER_KEY, Resp, TestGateway, eventually_async};

use super::admin_keys::call;

const ONE: f64 = 9.0 * 2.5e-6 + 3.0 * 1e-5;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

async fn get(gw: &TestGateway, path: &str, key: &str) -> Resp {
    call(gw, Method::GET, path, key, Value::Null).await
}

fn ok(r: Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Wait until SpendLogs holds `n` rows; today's date (UTC, `YYYY-MM-DD`), for report ranges.
pub(crate) async fn logged_today(c: &tokio_postgres::Client, n: i64) -> String {
    let written = eventually_async(Duration::from_secs(10), || async {
        let k: i64 = c
            .query_one("SELECT count(*) FROM \"TianjiLLM_SpendLogs\"", &[])
            .await
            .unwrap()
            .get(0);
        k >= n
    })
    .await;
    assert!(written, "SpendLogs never reached {n} rows");
    c.query_one(
        "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn activity_reports_and_global_reset() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up}}\n  - model_name: emb\n    tianji_params: {{model: openai/text-embedding-3-small, api_base: \"{b}\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n  proxy_batch_write_at: 0.05\n",
        b = up.base(),
        u = db.url
    );
    let gw = TestGateway::start(&yaml).await;
    let post = |path: &'static str, key: String, body: Value| {
        let gw = &gw;
        async move { call(gw, Method::POST, path, &key, body).await }
    };
    let m = MASTER_KEY.to_string();
    let team = ok(post("/team/new", m.clone(), json!({"team_alias": "alpha"})).await);
    let team_id = team["team_id"].as_str().unwrap().to_string();
    ok(post("/user/new", m.clone(), json!({"user_id": "alice"})).await);
    ok(post("/user/new", m.clone(), json!({"user_id": "bob"})).await);
    ok(post(
        "/team/member_add",
        m.clone(),
        json!({"team_id": team_id, "member": {"role": "user", "user_id": "alice"}}),
    )
    .await);
    let alice = ok(post(
        "/key/generate",
        m.clone(),
        json!({"team_id": team_id, "user_id": "alice"}),
    )
    .await)["key"]
        .as_str()
        .unwrap()
        .to_string();
    let bob_k = ok(post(
        "/key/generate",
        m.clone(),
        json!({"user_id": "bob", "max_budget": 1.5 * ONE}),
    )
    .await);
    let bob = bob_k["key"].as_str().unwrap().to_string();

    let chat = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "user": "eve", "tags": ["x"], "max_tokens": 3});
    for _ in 0..2 {
        assert_eq!(
            post("/v1/chat/completions", alice.clone(), chat.clone())
                .await
                .status,
            200
        );
    }
    let plain =
        json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3});
    assert_eq!(
        post("/v1/chat/completions", bob.clone(), plain.clone())
            .await
            .status,
        200
    );
    assert_eq!(
        post(
            "/v1/embeddings",
            bob.clone(),
            json!({"model": "emb", "input": "x"})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        post("/v1/chat/completions", bob.clone(), plain.clone())
            .await
            .status,
        200
    );
    // bob is now over his 1.5-request budget
    post("/v1/chat/completions", bob.clone(), plain.clone())
        .await
        .assert_error(429);
    let n = 5i64;
    let c = db.client().await;
    let today = logged_today(&c, n).await;
    let q = format!("start_date={today}&end_date={today}");

    // US3.6: global activity, all traffic for an admin, own traffic for a user
    let a = ok(get(&gw, &format!("/global/activity?{q}"), MASTER_KEY).await);
    assert_eq!(a["sum_api_requests"], n);
    assert_eq!(a["sum_total_tokens"], 4 * 12 + 2);
    assert_eq!(a["daily_data"].as_array().unwrap().len(), 1);
    let a = ok(get(&gw, &format!("/global/activity?{q}"), &alice).await);
    assert_eq!(a["sum_api_requests"], 2);
    let e = get(&gw, "/global/activity", MASTER_KEY)
        .await
        .assert_error(400);
    assert_eq!(e["error"]["param"], "start_date");
    get(
        &gw,
        "/global/activity?start_date=2026-13-01&end_date=x",
        MASTER_KEY,
    )
    .await
    .assert_error(400);
    let models = ok(get(&gw, &format!("/global/activity/model?{q}"), MASTER_KEY).await);
    assert_eq!(models[0]["model"], "gpt");
    assert_eq!(models[0]["sum_api_requests"], 4);
    assert_eq!(models[1]["model"], "emb");
    let hits = ok(get(&gw, &format!("/global/activity/cache_hits?{q}"), MASTER_KEY).await);
    assert_eq!(hits["totals"]["api_requests"], n);
    assert_eq!(hits["totals"]["cache_hits"], 0);

    // US3.7: spend report per team, per customer, per key
    let r = ok(get(
        &gw,
        &format!("/global/spend/report?{q}&group_by=team"),
        MASTER_KEY,
    )
    .await);
    let teams = r[0]["teams"].as_array().unwrap();
    let alpha = teams.iter().find(|t| t["team_name"] == "alpha").unwrap();
    assert!(close(alpha["total_spend"].as_f64().unwrap(), 2.0 * ONE));
    let r = ok(get(
        &gw,
        &format!("/global/spend/report?{q}&group_by=customer"),
        MASTER_KEY,
    )
    .await);
    assert!(
        r[0]["customers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["customer"] == "eve")
    );
    let r = ok(get(
        &gw,
        &format!("/global/spend/report?{q}&group_by=api_key"),
        MASTER_KEY,
    )
    .await);
    assert_eq!(r.as_array().unwrap().len(), 2);
    get(
        &gw,
        &format!("/global/spend/report?{q}&group_by=x"),
        MASTER_KEY,
    )
    .await
    .assert_error(400);
    get(&gw, &format!("/global/spend/report?{q}"), &alice)
        .await
        .assert_error(403);

    // spend logs: everything for an admin, own rows for a user, summaries per day
    assert_eq!(
        ok(get(&gw, "/spend/logs?summarize=false", MASTER_KEY).await)
            .as_array()
            .unwrap()
            .len() as i64,
        n
    );
    let mine = ok(get(&gw, "/spend/logs?summarize=false", &alice).await);
    assert_eq!(mine.as_array().unwrap().len(), 2);
    assert!(
        mine.as_array()
            .unwrap()
            .iter()
            .all(|r| r["user"] == "alice")
    );
    let s = ok(get(&gw, &format!("/spend/logs?{q}"), MASTER_KEY).await);
    assert_eq!(s[0]["startTime"], today);
    assert!(close(
        s[0]["spend"].as_f64().unwrap(),
        4.0 * ONE + 2.0 * 2e-8
    ));
    let tags = ok(get(&gw, "/spend/tags", MASTER_KEY).await);
    assert_eq!(tags[0]["individual_request_tag"], "x");
    assert_eq!(tags[0]["log_count"], 2);
    let keys = ok(get(&gw, "/spend/keys", &alice).await);
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .all(|k| k["user_id"] == "alice")
    );
    assert!(
        ok(get(&gw, "/spend/keys", MASTER_KEY).await)
            .as_array()
            .unwrap()
            .len()
            > keys.as_array().unwrap().len()
    );
    get(&gw, "/spend/users?user_id=bob", &alice)
        .await
        .assert_error(403);
    let tags = ok(get(&gw, &format!("/global/spend/tags?{q}"), MASTER_KEY).await);
    assert_eq!(tags["spend_per_tag"][0]["name"], "x");
    let prov = ok(get(&gw, &format!("/global/spend/provider?{q}"), MASTER_KEY).await);
    assert_eq!(prov[0]["provider"], "openai");
    let g = ok(get(&gw, "/global/spend", MASTER_KEY).await);
    assert!(close(g["spend"].as_f64().unwrap(), 4.0 * ONE + 2.0 * 2e-8));
    assert_eq!(
        ok(get(&gw, "/global/spend/keys?limit=1", MASTER_KEY).await)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    get(&gw, "/global/spend/keys?limit=0", MASTER_KEY)
        .await
        .assert_error(400);
    assert_eq!(
        ok(get(&gw, "/global/spend/models", MASTER_KEY).await)[0]["model"],
        "gpt-4o"
    );
    assert!(
        ok(get(&gw, "/global/spend/teams", MASTER_KEY).await)["teams"]
            .as_array()
            .unwrap()
            .contains(&json!("alpha"))
    );
    let eu = ok(post("/global/spend/end_users", m.clone(), json!({})).await);
    assert!(
        eu.as_array()
            .unwrap()
            .iter()
            .any(|e| e["end_user"] == "eve" && e["total_count"] == 2)
    );

    // daily activity from the daily tables
    let d = ok(get(&gw, &format!("/user/daily/activity?{q}"), &alice).await);
    assert_eq!(d["results"][0]["metrics"]["api_requests"], 2);
    assert_eq!(
        d["results"][0]["breakdown"]["entities"]["alice"]["metrics"]["api_requests"],
        2
    );
    get(
        &gw,
        &format!("/user/daily/activity?{q}&user_id=bob"),
        &alice,
    )
    .await
    .assert_error(403);
    let d = ok(get(&gw, &format!("/user/daily/activity?{q}"), MASTER_KEY).await);
    assert_eq!(d["metadata"]["total_api_requests"], n);
    assert_eq!(d["metadata"]["total_pages"], 1);
    let d = ok(get(&gw, &format!("/team/daily/activity?{q}"), MASTER_KEY).await);
    assert_eq!(
        d["results"][0]["breakdown"]["entities"][&team_id]["metrics"]["api_requests"],
        2
    );
    assert_eq!(
        d["results"][0]["breakdown"]["models"]["gpt-4o"]["metrics"]["api_requests"],
        2
    );
    let d = ok(get(
        &gw,
        &format!("/end_user/daily/activity?{q}&end_user_ids=eve"),
        MASTER_KEY,
    )
    .await);
    assert_eq!(d["metadata"]["total_api_requests"], 2);
    get(&gw, &format!("/organization/daily/activity?{q}"), &alice)
        .await
        .assert_error(403);

    // US3.8: only an admin resets spend; then every key and team is at 0 and bob works again
    post("/global/spend/reset", alice.clone(), json!({}))
        .await
        .assert_error(403);
    let r = ok(post("/global/spend/reset", m.clone(), json!({})).await);
    assert_eq!(
        r["message"],
        "Spend for all API Keys and Teams reset successfully"
    );
    let left: f64 = c
        .query_one("SELECT COALESCE(sum(spend), 0) + (SELECT COALESCE(sum(spend), 0) FROM \"TianjiLLM_TeamTable\") FROM \"TianjiLLM_VerificationToken\"", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0.0);
    assert_eq!(
        post("/v1/chat/completions", bob.clone(), plain.clone())
            .await
            .status,
        200
    );
    let logs: i64 = c
        .query_one("SELECT count(*) FROM \"TianjiLLM_SpendLogs\"", &[])
        .await
        .unwrap()
        .get(0);
    assert!(logs >= n, "spend logs are kept");
    gw.gw.shutdown().await;
}

/// `database_url_read`: the reports read the replica, everything else the primary. The
/// "replica" here is another database that the primary's writes never reach, so what each
/// route read is visible.
#[tokio::test]
async fn reports_read_the_replica_and_writes_go_to_the_primary() {
    let primary = TestDb::create().await;
    let replica = TestDb::create().await;
    let up = MockUpstream::start().await;
    let models = format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{}\", api_key: sk-up}}\n",
        up.base()
    );
    let chat =
        json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3});
    // one request logged in the replica's database (the schema made there by a gateway of its own)
    let seeded = {
        let gw = TestGateway::start(&format!(
            "{models}general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{}\"\n  proxy_batch_write_at: 0.05\n",
            replica.url
        ))
        .await;
        let r = call(
            &gw,
            Method::POST,
            "/v1/chat/completions",
            MASTER_KEY,
            chat.clone(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        logged_today(&replica.client().await, 1).await;
        r.header("x-tianji-call-id").unwrap().to_string()
    };
    let gw = TestGateway::start(&format!(
        "{models}general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{}\"\n  database_url_read: \"{}\"\n  proxy_batch_write_at: 0.05\n",
        primary.url, replica.url
    ))
    .await;
    let r = call(&gw, Method::POST, "/v1/chat/completions", MASTER_KEY, chat).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let served = r.header("x-tianji-call-id").unwrap().to_string();
    let day = logged_today(&primary.client().await, 1).await;
    let key = ok(call(
        &gw,
        Method::POST,
        "/key/generate",
        MASTER_KEY,
        json!({"key_alias": "w"}),
    )
    .await);
    assert!(key["key"].is_string());
    async fn keys_in(db: &TestDb) -> i64 {
        (db.client().await)
            .query_one(
                "SELECT count(*) FROM \"TianjiLLM_VerificationToken\" WHERE key_alias = 'w'",
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }
    assert_eq!((keys_in(&primary).await, keys_in(&replica).await), (1, 0));

    // the reports see the replica's row only
    let rows = ok(get(&gw, "/spend/logs?summarize=false", MASTER_KEY).await);
    let ids: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["litellm_call_id"].as_str())
        .collect();
    assert_eq!(ids, [seeded.as_str()], "{rows}");
    assert_ne!(seeded, served);
    let activity = ok(get(
        &gw,
        &format!("/global/activity?start_date={day}&end_date={day}"),
        MASTER_KEY,
    )
    .await);
    assert_eq!(activity["sum_api_requests"], 1, "{activity}");
    // the primary's writes never reached the replica
    let c = replica.client().await;
    let rows_there: i64 = c
        .query_one("SELECT count(*) FROM \"TianjiLLM_SpendLogs\"", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows_there, 1);
}

#[tokio::test]
async fn a_replica_without_a_primary_is_a_configuration_error() {
    let e = tianji::Loaded::from_yaml(
        "model_list: []\ngeneral_settings:\n  master_key: sk-x\n  database_url_read: postgres://h/db\n",
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.contains("database_url_read") && e.contains("needs the primary"),
        "{e}"
    );
}
