//! `/user/*` and roles, and the audit log (spec US2 scenarios 1, 2, 3 and 5).

use http::Method;
use serde_json::{Value, json};

use super::admin_keys::{call, setup};
use crate::common::{MASTER_KEY, Resp, TestGateway};

async fn post(gw: &TestGateway, path: &str, key: &str, body: Value) -> Resp {
    call(gw, Method::POST, path, key, body).await
}

async fn get(gw: &TestGateway, path: &str, key: &str) -> Resp {
    call(gw, Method::GET, path, key, Value::Null).await
}

fn ok(r: Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

async fn chat(gw: &TestGateway, key: &str, model: &str) -> Resp {
    post(
        gw,
        "/v1/chat/completions",
        key,
        json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
}

#[tokio::test]
async fn users_roles_and_personal_budgets() {
    let (db, _up, gw) = setup(false).await;
    let admin = ok(post(
        &gw,
        "/user/new",
        MASTER_KEY,
        json!({"user_id": "boss", "user_role": "proxy_admin", "user_email": "boss@x.com", "password": "pw"}),
    )
    .await);
    assert_eq!(admin["user_id"], "boss");
    assert_eq!(admin["user_role"], "proxy_admin");
    assert!(admin.get("password").is_none());
    let admin_key = admin["key"].as_str().unwrap().to_string();
    // an admin user's key is an admin
    ok(post(&gw, "/key/generate", &admin_key, json!({})).await);

    let viewer_key = ok(post(
        &gw,
        "/user/new",
        MASTER_KEY,
        json!({"user_id": "view", "user_role": "proxy_admin_viewer"}),
    )
    .await)["key"]
        .as_str()
        .unwrap()
        .to_string();
    ok(get(&gw, "/key/list", &viewer_key).await);
    ok(get(&gw, "/user/list", &viewer_key).await);
    post(&gw, "/key/generate", &viewer_key, json!({}))
        .await
        .assert_error(403);

    let u1 = ok(post(
        &gw,
        "/user/new",
        MASTER_KEY,
        json!({"user_id": "u1", "max_budget": 1.0, "models": ["m"], "key_alias": "u1-key"}),
    )
    .await);
    assert_eq!(u1["key_alias"], "u1-key");
    assert_eq!(u1["user_role"], "internal_user");
    let u1_key = u1["key"].as_str().unwrap().to_string();
    assert_eq!(chat(&gw, &u1_key, "m").await.status, 200);
    let e = chat(&gw, &u1_key, "m2").await.assert_error(403);
    assert_eq!(e["error"]["type"], "user_model_access_denied");
    let me = ok(get(&gw, "/user/info", &u1_key).await);
    assert_eq!(me["user_id"], "u1");
    assert_eq!(me["keys"].as_array().unwrap().len(), 1);
    get(&gw, "/user/info?user_id=boss", &u1_key)
        .await
        .assert_error(403);
    post(&gw, "/user/new", &u1_key, json!({}))
        .await
        .assert_error(403);

    for (body, field) in [
        (json!({"user_role": "god"}), "user_role"),
        (json!({"max_budget": -1}), "max_budget"),
        (json!({"user_id": "u1"}), "user_id"),
        (json!({"teams": ["no-such-team"]}), "team_id"),
        (json!({"duration": "soon"}), "duration"),
    ] {
        let e = post(&gw, "/user/new", MASTER_KEY, body.clone())
            .await
            .json();
        assert_eq!(e["error"]["param"], field, "{body}: {e}");
    }

    // a personal budget: spend at the limit refuses the user's keys
    let upd = ok(post(
        &gw,
        "/user/update",
        MASTER_KEY,
        json!({"user_id": "u1", "max_budget": 0.0, "user_alias": "One"}),
    )
    .await);
    assert_eq!(upd["data"]["user_alias"], "One");
    let e = chat(&gw, &u1_key, "m").await.assert_error(429);
    assert!(e["error"]["message"].as_str().unwrap().contains("User=u1"));
    let cleared = ok(post(
        &gw,
        "/user/update",
        MASTER_KEY,
        json!({"user_id": "u1", "max_budget": null}),
    )
    .await);
    assert!(cleared["data"]["max_budget"].is_null());
    assert_eq!(chat(&gw, &u1_key, "m").await.status, 200);
    post(
        &gw,
        "/user/update",
        MASTER_KEY,
        json!({"user_email": "nobody@example.com", "max_budget": 1}),
    )
    .await
    .assert_error(404);

    let all = ok(get(&gw, "/user/list", MASTER_KEY).await);
    assert_eq!(all["total"], 3);
    let admins = ok(get(&gw, "/user/list?role=proxy_admin", MASTER_KEY).await);
    assert_eq!(admins["total"], 1);
    assert_eq!(admins["users"][0]["user_id"], "boss");

    let n = ok(post(&gw, "/user/delete", MASTER_KEY, json!({"user_ids": ["u1"]})).await);
    assert_eq!(n, json!(1));
    chat(&gw, &u1_key, "m").await.assert_error(401);
    let archived: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM \"TianjiLLM_DeletedVerificationToken\" WHERE user_id = 'u1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(archived, 1);
    post(&gw, "/user/delete", MASTER_KEY, json!({"user_ids": ["u1"]}))
        .await
        .assert_error(404);
}

#[tokio::test]
async fn audit_log_records_and_filters_changes() {
    let (db, _up, gw) = setup(true).await;
    let made = ok(post(
        &gw,
        "/key/generate",
        MASTER_KEY,
        json!({"key_alias": "audited", "max_budget": 5.0, "soft_budget": 4.0, "object_permission": {"vector_stores": ["vs1"]}}),
    )
    .await);
    let token = made["token"].as_str().unwrap().to_string();
    // soft budget and object permissions are rows of their own, as in LiteLLM
    let info = ok(get(&gw, &format!("/key/info?key={token}"), MASTER_KEY).await);
    assert_eq!(info["info"]["litellm_budget_table"]["soft_budget"], 4.0);
    assert_eq!(
        info["info"]["object_permission"]["vector_stores"],
        json!(["vs1"])
    );

    // US2.1: created
    let created = ok(get(
        &gw,
        "/audit?table_name=verification_token&action=created",
        MASTER_KEY,
    )
    .await);
    assert_eq!(created["total"], 1);
    let row = &created["audit_logs"][0];
    assert_eq!(row["object_id"], token.as_str());
    assert_eq!(row["table_name"], "TianjiLLM_VerificationToken");
    assert_eq!(row["updated_values"]["key_alias"], "audited");
    assert_eq!(row["changed_by"], "alice@example.com");
    assert_eq!(
        row["changed_by_api_key"],
        tianji::auth::token_hex(MASTER_KEY).as_str()
    );
    assert!(row["before_value"].is_null());

    // US2.2: updated, with before and after
    ok(post(
        &gw,
        "/key/update",
        MASTER_KEY,
        json!({"key": token, "max_budget": 7.0}),
    )
    .await);
    let updated = ok(get(&gw, "/audit?action=updated", MASTER_KEY).await);
    assert_eq!(updated["total"], 1);
    let row = &updated["audit_logs"][0];
    assert_eq!(row["before_value"]["max_budget"], 5.0);
    assert_eq!(row["updated_values"]["max_budget"], 7.0);

    // US2.3: deleted, and archived with who and when
    ok(post(&gw, "/key/delete", MASTER_KEY, json!({"keys": [token]})).await);
    let c = db.client().await;
    let r = c
        .query_one(
            "SELECT deleted_by, deleted_at IS NOT NULL, deleted_by_api_key FROM \"TianjiLLM_DeletedVerificationToken\" WHERE token = $1",
            &[&token],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, String>(0), "alice@example.com");
    assert!(r.get::<_, bool>(1));
    assert_eq!(r.get::<_, String>(2), tianji::auth::token_hex(MASTER_KEY));
    let deleted = ok(get(&gw, "/audit?action=deleted", MASTER_KEY).await);
    assert_eq!(deleted["total"], 1);
    assert_eq!(deleted["audit_logs"][0]["before_value"]["max_budget"], 7.0);

    // US2.5: filters and pages
    ok(post(&gw, "/team/new", MASTER_KEY, json!({"team_id": "t1"})).await);
    let all = ok(get(&gw, "/audit?page_size=2", MASTER_KEY).await);
    assert_eq!(all["total"], 4);
    assert_eq!(all["audit_logs"].as_array().unwrap().len(), 2);
    assert_eq!(all["total_pages"], 2);
    let page2 = ok(get(&gw, "/audit?page_size=2&page=2", MASTER_KEY).await);
    assert_eq!(page2["audit_logs"].as_array().unwrap().len(), 2);
    assert_ne!(page2["audit_logs"][0]["id"], all["audit_logs"][0]["id"]);
    let teams = ok(get(&gw, "/audit?table_name=team_table", MASTER_KEY).await);
    assert_eq!(teams["total"], 1);
    assert_eq!(teams["audit_logs"][0]["object_id"], "t1");
    let today = tianji::util::clock::fmt_utc(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64(),
    )[..10]
        .to_string();
    let in_range = ok(get(
        &gw,
        &format!("/audit?start_date={today}&end_date={today}"),
        MASTER_KEY,
    )
    .await);
    assert_eq!(in_range["total"], 4);
    let before = ok(get(&gw, "/audit?end_date=2000-01-01", MASTER_KEY).await);
    assert_eq!(before["total"], 0);
    let by_object = ok(get(&gw, &format!("/audit?object_id={token}"), MASTER_KEY).await);
    assert_eq!(by_object["total"], 3);
    let id = all["audit_logs"][0]["id"].as_str().unwrap();
    let one = ok(get(&gw, &format!("/audit/{id}"), MASTER_KEY).await);
    assert_eq!(one["id"], id);
    get(&gw, "/audit/nope", MASTER_KEY).await.assert_error(404);
    let e = get(&gw, "/audit?start_date=yesterday", MASTER_KEY)
        .await
        .assert_error(400);
    assert_eq!(e["error"]["param"], "start_date");
    get(&gw, "/audit?table_name=bogus", MASTER_KEY)
        .await
        .assert_error(400);
}
