//! Virtual keys on LLM routes, against a real PostgreSQL: lookup through the cache, blocked,
//! expired, model access, budget. Rows are written with SQL here; the management API writes them
//! in production.

use bytes::Bytes;
use http::Method;

use crate::common::db::TestDb;
use crate::common::mock_upstream::MockUpstream;
use crate::common::{MASTER_KEY, TestGateway, send};

fn sha256_hex(s: &str) -> String {
    tianji::auth::token_hex(s)
}

async fn setup() -> (TestDb, MockUpstream, TestGateway) {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: model-a\n    tianji_params: {{model: openai/a, api_base: \"{b}\", api_key: sk-up}}\n  - model_name: model-b\n    tianji_params: {{model: openai/b, api_base: \"{b}\", api_key: sk-up}}\n    model_info: {{access_groups: [beta]}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n",
        b = up.base(),
        u = db.url
    );
    let gw = TestGateway::start(&yaml).await;
    (db, up, gw)
}

async fn insert_key(db: &TestDb, raw: &str, extra_cols: &str, extra_vals: &str) {
    let sql = format!(
        "INSERT INTO \"TianjiLLM_VerificationToken\" (token, key_name{extra_cols}) VALUES ('{}', 'sk-...{}'{extra_vals})",
        sha256_hex(raw),
        &raw[raw.len() - 4..]
    );
    db.client().await.batch_execute(&sql).await.unwrap();
}

async fn chat(gw: &TestGateway, key: &str, model: &str) -> crate::common::Resp {
    send(
        Method::POST,
        &gw.url("/v1/chat/completions"),
        &[("authorization", &format!("Bearer {key}"))],
        Bytes::from(format!(
            r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#
        )),
    )
    .await
}

#[tokio::test]
async fn a_stored_key_works_and_a_cached_one_costs_no_query() {
    let (db, up, gw) = setup().await;
    insert_key(&db, "sk-virtual-0001", "", "").await;
    let r = chat(&gw, "sk-virtual-0001", "model-a").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.last().headers["authorization"], "Bearer sk-up");
    let store = gw.gw.state().store.clone().unwrap();
    let before = store.query_count();
    for _ in 0..5 {
        assert_eq!(chat(&gw, "sk-virtual-0001", "model-b").await.status, 200);
    }
    assert_eq!(
        store.query_count(),
        before,
        "a cached key must not query the database"
    );
    // unknown keys are refused, and the refusal is cached briefly too
    let v = chat(&gw, "sk-nope-nope-nope", "model-a")
        .await
        .assert_error(401);
    assert_eq!(
        v["error"]["message"],
        "Authentication Error, Invalid API key provided."
    );
    let before = store.query_count();
    chat(&gw, "sk-nope-nope-nope", "model-a")
        .await
        .assert_error(401);
    assert_eq!(store.query_count(), before);
}

#[tokio::test]
async fn a_cached_team_key_with_user_org_and_end_user_costs_no_query() {
    let (db, _up, gw) = setup().await;
    db.client()
        .await
        .batch_execute(
            "INSERT INTO \"TianjiLLM_BudgetTable\" (budget_id, max_budget, created_by, updated_by) VALUES ('b', 100, 'x', 'x');
             INSERT INTO \"TianjiLLM_OrganizationTable\" (organization_id, organization_alias, budget_id, created_by, updated_by) VALUES ('o', 'org', 'b', 'x', 'x');
             INSERT INTO \"TianjiLLM_TeamTable\" (team_id, organization_id, max_budget, members_with_roles) VALUES ('t', 'o', 100, '[{\"role\": \"user\", \"user_id\": \"u\"}]');
             INSERT INTO \"TianjiLLM_UserTable\" (user_id, user_role) VALUES ('u', 'internal_user');
             INSERT INTO \"TianjiLLM_TeamMembership\" (user_id, team_id, budget_id) VALUES ('u', 't', 'b');
             INSERT INTO \"TianjiLLM_EndUserTable\" (user_id, budget_id) VALUES ('cust', 'b');",
        )
        .await
        .unwrap();
    insert_key(&db, "sk-team-key-0001", ", team_id, user_id", ", 't', 'u'").await;
    let url = gw.url("/v1/chat/completions");
    let call = || {
        send(
            Method::POST,
            &url,
            &[("authorization", "Bearer sk-team-key-0001")],
            Bytes::from(r#"{"model":"model-a","user":"cust","messages":[]}"#),
        )
    };
    let r = call().await;
    assert_eq!(r.status, 200, "{}", r.text());
    let store = gw.gw.state().store.clone().unwrap();
    let before = store.query_count();
    for _ in 0..5 {
        assert_eq!(call().await.status, 200);
    }
    assert_eq!(
        store.query_count(),
        before,
        "key, team, user, membership, organisation and end user all come from the caches"
    );
}

#[tokio::test]
async fn access_groups_grant_their_models() {
    let (db, _up, gw) = setup().await;
    insert_key(&db, "sk-beta-key-0001", ", models", ", ARRAY['beta']").await;
    assert_eq!(chat(&gw, "sk-beta-key-0001", "model-b").await.status, 200);
    chat(&gw, "sk-beta-key-0001", "model-a")
        .await
        .assert_error(403);
}

#[tokio::test]
async fn model_access_blocked_expired_and_budget() {
    let (db, up, gw) = setup().await;
    insert_key(&db, "sk-only-model-a", ", models", ", ARRAY['model-a']").await;
    insert_key(&db, "sk-blocked-0001", ", blocked", ", true").await;
    insert_key(
        &db,
        "sk-expired-0001",
        ", expires",
        ", now() - interval '1 hour'",
    )
    .await;
    insert_key(
        &db,
        "sk-future-00001",
        ", expires",
        ", now() + interval '1 hour'",
    )
    .await;
    insert_key(
        &db,
        "sk-broke-000001",
        ", key_alias, spend, max_budget",
        ", 'broke', 1.5, 1.0",
    )
    .await;

    assert_eq!(chat(&gw, "sk-only-model-a", "model-a").await.status, 200);
    let v = chat(&gw, "sk-only-model-a", "model-b")
        .await
        .assert_error(403);
    assert_eq!(
        v["error"]["message"],
        "The requested model 'model-b' is not available for this API key, or the model name is invalid. Check the models available to you and try again."
    );
    assert_eq!(v["error"]["type"], "key_model_access_denied");
    assert_eq!(v["error"]["param"], "model");
    let models = send(
        Method::GET,
        &gw.url("/v1/models"),
        &[("authorization", "Bearer sk-only-model-a")],
        Bytes::new(),
    )
    .await;
    assert_eq!(models.json()["data"].as_array().unwrap().len(), 1);

    chat(&gw, "sk-blocked-0001", "model-a")
        .await
        .assert_error(403);
    let v = chat(&gw, "sk-expired-0001", "model-a")
        .await
        .assert_error(401);
    assert_eq!(v["error"]["type"], "expired_key");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Authentication Error - Expired Key. Key Expiry time ")
    );
    assert_eq!(chat(&gw, "sk-future-00001", "model-a").await.status, 200);
    let v = chat(&gw, "sk-broke-000001", "model-a")
        .await
        .assert_error(429);
    assert_eq!(v["error"]["type"], "budget_exceeded");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Budget has been exceeded! Key=broke")
            && msg.contains("Current cost: 1.5, Max budget: 1"),
        "{msg}"
    );
    // only the allowed calls reached the provider
    assert_eq!(up.requests().len(), 2);
}

#[tokio::test]
async fn without_a_database_virtual_keys_are_unknown_and_the_master_key_works() {
    let up = MockUpstream::start().await;
    let gw = TestGateway::start(&crate::common::one_model("m", "openai/x", &up.base(), "")).await;
    chat(&gw, "sk-virtual-0001", "m").await.assert_error(401);
    assert_eq!(chat(&gw, MASTER_KEY, "m").await.status, 200);
}
