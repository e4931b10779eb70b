//! `/key/*` against a real PostgreSQL: generate, use, info, block, delete, audit, bad input.

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::MockUpstream;
use crate::common::{MASTER_KEY, Resp, TestGateway, send};

pub(crate) async fn setup(audit: bool) -> (TestDb, MockUpstream, TestGateway) {
    setup_with(audit, "").await
}

/// A gateway with models `m` and `m2`, a database, and `extra` appended to the config.
pub(crate) async fn setup_with(audit: bool, extra: &str) -> (TestDb, MockUpstream, TestGateway) {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: m\n    tianji_params: {{model: openai/x, api_base: \"{b}\", api_key: sk-up}}\n  - model_name: m2\n    tianji_params: {{model: openai/y, api_base: \"{b}\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n  store_audit_logs: {audit}\n{extra}",
        b = up.base(),
        u = db.url
    );
    (db, up, TestGateway::start(&yaml).await)
}

pub(crate) async fn call(
    gw: &TestGateway,
    method: Method,
    path: &str,
    key: &str,
    body: Value,
) -> Resp {
    let mut headers = vec![("authorization".to_string(), format!("Bearer {key}"))];
    headers.push((
        "tianji-changed-by".to_string(),
        "alice@example.com".to_string(),
    ));
    let h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let body = if body.is_null() {
        Bytes::new()
    } else {
        Bytes::from(body.to_string())
    };
    send(method, &gw.url(path), &h, body).await
}

pub(crate) async fn chat(gw: &TestGateway, key: &str) -> Resp {
    call(
        gw,
        Method::POST,
        "/v1/chat/completions",
        key,
        json!({"model": "m", "messages": []}),
    )
    .await
}

#[tokio::test]
async fn generate_use_info_block_delete_with_audit() {
    let (db, _up, gw) = setup(true).await;
    let r = call(&gw, Method::POST, "/key/generate", MASTER_KEY, json!({"key_alias": "k1", "models": ["m"], "max_budget": 10.0, "metadata": {"team": "x"}, "tags": ["a"], "duration": "1h"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let key = v["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("sk-"));
    assert_eq!(v["token"], tianji::auth::token_hex(&key));
    assert_eq!(v["token_id"], v["token"]);
    assert_ne!(v["token"], v["key"]);
    assert_eq!(v["key_alias"], "k1");
    assert_eq!(v["metadata"]["tags"], json!(["a"]));
    assert!(v["expires"].is_string());
    // the raw key is stored nowhere
    let c = db.client().await;
    let dump: String = c
        .query_one(
            "SELECT string_agg(to_jsonb(t)::text, '') FROM \"TianjiLLM_VerificationToken\" t",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!dump.contains(&key));

    assert_eq!(chat(&gw, &key).await.status, 200);
    // a key reads its own info, not the master's
    let info = call(&gw, Method::GET, "/key/info", &key, Value::Null).await;
    assert_eq!(info.status, 200, "{}", info.text());
    assert_eq!(info.json()["info"]["key_alias"], "k1");
    assert_eq!(info.json()["info"]["status"], "active");
    assert!(info.json()["info"].get("token").is_none());
    let other = call(
        &gw,
        Method::GET,
        &format!("/key/info?key={}", tianji::auth::token_hex(MASTER_KEY)),
        &key,
        Value::Null,
    )
    .await;
    other.assert_error(403);
    // a virtual key is not an admin
    call(&gw, Method::POST, "/key/generate", &key, json!({}))
        .await
        .assert_error(403);

    let r = call(
        &gw,
        Method::POST,
        "/key/block",
        MASTER_KEY,
        json!({"key": key}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    chat(&gw, &key).await.assert_error(403);
    call(
        &gw,
        Method::POST,
        "/key/unblock",
        MASTER_KEY,
        json!({"key": key}),
    )
    .await;
    assert_eq!(chat(&gw, &key).await.status, 200);

    let r = call(
        &gw,
        Method::POST,
        "/key/delete",
        MASTER_KEY,
        json!({"key_aliases": ["k1"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["deleted_keys"], json!(["k1"]));
    chat(&gw, &key).await.assert_error(401);
    call(
        &gw,
        Method::GET,
        &format!("/key/info?key={key}"),
        MASTER_KEY,
        Value::Null,
    )
    .await
    .assert_error(404);
    let row = c
        .query_one("SELECT deleted_by, deleted_by_api_key, key_alias FROM \"TianjiLLM_DeletedVerificationToken\"", &[])
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, Option<String>>(0).as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(
        row.get::<_, Option<String>>(1).unwrap(),
        tianji::auth::token_hex(MASTER_KEY)
    );
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some("k1"));

    let actions: Vec<(String, String, String)> = c
        .query("SELECT action, table_name, changed_by FROM \"TianjiLLM_AuditLog\" ORDER BY updated_at, action", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let names: Vec<&str> = actions.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(
        names.iter().filter(|a| **a == "created").count(),
        1,
        "{actions:?}"
    );
    assert_eq!(
        names.iter().filter(|a| **a == "updated").count(),
        2,
        "{actions:?}"
    );
    assert_eq!(
        names.iter().filter(|a| **a == "deleted").count(),
        1,
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .all(|a| a.1 == "TianjiLLM_VerificationToken" && a.2 == "alice@example.com")
    );
}

#[tokio::test]
async fn bad_key_requests_name_the_field() {
    let (_db, _up, gw) = setup(false).await;
    let cases = [
        (json!({"nonsense": 1}), "nonsense"),
        (json!({"max_budget": -5}), "max_budget"),
        (json!({"max_budget": "lots"}), "max_budget"),
        (json!({"duration": "5 parsecs"}), "duration"),
        (json!({"budget_duration": "1y"}), "budget_duration"),
        (json!({"models": "m"}), "models"),
        (json!({"key": "not-sk"}), "key"),
        (json!({"rpm_limit": -1}), "rpm_limit"),
        (json!({"rpm_limit_type": "fast"}), "rpm_limit_type"),
    ];
    for (body, field) in cases {
        let r = call(&gw, Method::POST, "/key/generate", MASTER_KEY, body.clone()).await;
        let v = r.assert_error(400);
        assert_eq!(v["error"]["param"], field, "{body}: {v}");
    }
    assert_eq!(
        call(
            &gw,
            Method::POST,
            "/key/generate",
            MASTER_KEY,
            json!({"key_alias": "dup"})
        )
        .await
        .status,
        200
    );
    let v = call(
        &gw,
        Method::POST,
        "/key/generate",
        MASTER_KEY,
        json!({"key_alias": "dup"}),
    )
    .await
    .assert_error(400);
    assert_eq!(v["error"]["param"], "key_alias");
    let v = call(
        &gw,
        Method::POST,
        "/key/delete",
        MASTER_KEY,
        json!({"keys": ["sk-does-not-exist-123"]}),
    )
    .await
    .assert_error(404);
    assert_eq!(v["error"]["type"], "not_found_error");
    call(
        &gw,
        Method::POST,
        "/key/block",
        MASTER_KEY,
        json!({"key": "sk-does-not-exist-123"}),
    )
    .await
    .assert_error(404);
    // a custom key works as given
    let r = call(
        &gw,
        Method::POST,
        "/key/generate",
        MASTER_KEY,
        json!({"key": "sk-my-custom-key-0001"}),
    )
    .await;
    assert_eq!(r.json()["key"], "sk-my-custom-key-0001");
    assert_eq!(chat(&gw, "sk-my-custom-key-0001").await.status, 200);
}

#[tokio::test]
async fn management_routes_need_a_database_and_an_admin() {
    let gw = TestGateway::start("model_list: []\n").await;
    let v = call(&gw, Method::POST, "/key/generate", MASTER_KEY, json!({}))
        .await
        .assert_error(503);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Database not connected")
    );
    let r = send(
        Method::POST,
        &gw.url("/key/generate"),
        &[],
        Bytes::from_static(b"{}"),
    )
    .await;
    r.assert_error(401);
    call(&gw, Method::GET, "/key/generate", MASTER_KEY, Value::Null)
        .await
        .assert_error(405);
}

#[tokio::test]
async fn update_changes_given_fields_and_null_clears() {
    let (_db, _up, gw) = setup(true).await;
    let v = call(&gw, Method::POST, "/key/generate", MASTER_KEY, json!({"key_alias": "u1", "max_budget": 5, "rpm_limit": 10, "tpm_limit": 100, "metadata": {"a": 1}, "tags": ["t"]})).await.json();
    let key = v["key"].as_str().unwrap().to_string();
    assert_eq!(chat(&gw, &key).await.status, 200);

    let r = call(&gw, Method::POST, "/key/update", MASTER_KEY, json!({"key": key, "max_budget": null, "rpm_limit": null, "tpm_limit": 70000, "models": ["other"], "metadata": {"b": 2}})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let u = r.json();
    assert_eq!(u["key"], key);
    assert!(u["max_budget"].is_null() && u["rpm_limit"].is_null(), "{u}");
    assert_eq!(u["tpm_limit"], 70000);
    assert_eq!(u["key_alias"], "u1");
    assert_eq!(u["metadata"], json!({"b": 2}));
    // the cache saw the change: model m is no longer allowed
    chat(&gw, &key).await.assert_error(403);

    let r = call(
        &gw,
        Method::POST,
        "/key/update",
        MASTER_KEY,
        json!({"key": tianji::auth::token_hex(&key), "models": null, "tags": ["x", "y"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["metadata"]["tags"], json!(["x", "y"]));
    assert_eq!(r.json()["metadata"]["b"], 2);
    assert_eq!(chat(&gw, &key).await.status, 200);

    call(
        &gw,
        Method::POST,
        "/key/update",
        MASTER_KEY,
        json!({"key": key, "bogus": 1}),
    )
    .await
    .assert_error(400);
    call(
        &gw,
        Method::POST,
        "/key/update",
        MASTER_KEY,
        json!({"key": key, "max_budget": -1}),
    )
    .await
    .assert_error(400);
    call(
        &gw,
        Method::POST,
        "/key/update",
        MASTER_KEY,
        json!({"key": "sk-unknown-key-000"}),
    )
    .await
    .assert_error(404);
    call(
        &gw,
        Method::POST,
        "/key/generate",
        MASTER_KEY,
        json!({"key_alias": "taken"}),
    )
    .await;
    let v = call(
        &gw,
        Method::POST,
        "/key/update",
        MASTER_KEY,
        json!({"key": key, "key_alias": "taken"}),
    )
    .await
    .assert_error(400);
    assert_eq!(v["error"]["param"], "key_alias");
    call(
        &gw,
        Method::POST,
        "/key/update",
        &key,
        json!({"key": key, "max_budget": 100}),
    )
    .await
    .assert_error(403);
}

#[tokio::test]
async fn every_admin_route_refuses_a_plain_key_and_admits_the_master_key() {
    let (_db, _up, gw) = setup(false).await;
    let key = call(&gw, Method::POST, "/key/generate", MASTER_KEY, json!({}))
        .await
        .json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    for (path, route) in tianji::admin::routes::by_path() {
        let method = route.method();
        let body = if method == Method::GET {
            Value::Null
        } else {
            json!({})
        };
        let r = call(
            &gw,
            method.clone(),
            path,
            "sk-not-a-key-at-all",
            body.clone(),
        )
        .await;
        assert_eq!(r.status, 401, "{path} without a valid key: {}", r.text());
        if route.role != tianji::admin::Role::KeyOwner {
            let r = call(&gw, method.clone(), path, &key, body.clone()).await;
            assert_eq!(r.status, 403, "{path} with a plain key: {}", r.text());
        }
        let r = call(&gw, method, path, MASTER_KEY, body).await;
        assert!(
            r.status != 401 && r.status != 403,
            "{path} with the master key: {} {}",
            r.status,
            r.text()
        );
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
    }
}

#[tokio::test]
async fn list_v2_info_and_aliases() {
    let (_db, _up, gw) = setup(false).await;
    let mut hashes = Vec::new();
    for i in 0..5 {
        let team = if i % 2 == 0 { "team-even" } else { "team-odd" };
        let v = call(
            &gw,
            Method::POST,
            "/key/generate",
            MASTER_KEY,
            json!({"key_alias": format!("alias-{i}"), "team_id": team}),
        )
        .await
        .json();
        hashes.push(v["token"].as_str().unwrap().to_string());
    }
    let v = call(
        &gw,
        Method::GET,
        "/key/list?page=1&size=2",
        MASTER_KEY,
        Value::Null,
    )
    .await
    .json();
    assert_eq!(v["total_count"], 5);
    assert_eq!(v["total_pages"], 3);
    assert_eq!(v["keys"].as_array().unwrap().len(), 2);
    assert!(v["keys"][0].is_string());
    let v = call(
        &gw,
        Method::GET,
        "/key/list?team_id=team-even&return_full_object=true",
        MASTER_KEY,
        Value::Null,
    )
    .await
    .json();
    assert_eq!(v["total_count"], 3);
    assert!(
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["team_id"] == "team-even")
    );
    call(
        &gw,
        Method::GET,
        "/key/list?size=1000",
        MASTER_KEY,
        Value::Null,
    )
    .await
    .assert_error(400);
    call(
        &gw,
        Method::GET,
        "/key/list?page=abc",
        MASTER_KEY,
        Value::Null,
    )
    .await
    .assert_error(400);

    let v = call(
        &gw,
        Method::POST,
        "/v2/key/info",
        MASTER_KEY,
        json!({"keys": [hashes[0], hashes[1]]}),
    )
    .await
    .json();
    assert_eq!(v["info"].as_array().unwrap().len(), 2);
    assert!(v["info"][0].get("token").is_none());

    let v = call(
        &gw,
        Method::GET,
        "/key/aliases?search=alias-&team_id=team-odd",
        MASTER_KEY,
        Value::Null,
    )
    .await
    .json();
    assert_eq!(v["aliases"], json!(["alias-1", "alias-3"]));
    assert_eq!(v["total_count"], 2);
    assert_eq!(v["size"], 50);
}

#[tokio::test]
async fn regenerate_reset_spend_and_service_accounts() {
    let (db, _up, gw) = setup(true).await;
    let v = call(
        &gw,
        Method::POST,
        "/key/generate",
        MASTER_KEY,
        json!({"max_budget": 1.0}),
    )
    .await
    .json();
    let old = v["key"].as_str().unwrap().to_string();
    // over budget: spend 2 of 1
    let r = call(
        &gw,
        Method::POST,
        &format!("/key/{old}/reset_spend"),
        MASTER_KEY,
        json!({"reset_to": 2.0}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["previous_spend"], 0.0);
    chat(&gw, &old).await.assert_error(429);
    let r = call(
        &gw,
        Method::POST,
        &format!("/key/{}/reset_spend", tianji::auth::token_hex(&old)),
        MASTER_KEY,
        json!({"reset_to": 0}),
    )
    .await;
    assert_eq!(r.json()["previous_spend"], 2.0);
    assert_eq!(chat(&gw, &old).await.status, 200);
    call(
        &gw,
        Method::POST,
        &format!("/key/{old}/reset_spend"),
        MASTER_KEY,
        json!({"reset_to": -1}),
    )
    .await
    .assert_error(400);

    let r = call(
        &gw,
        Method::POST,
        "/key/regenerate",
        MASTER_KEY,
        json!({"key": old}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let new = r.json()["key"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(r.json()["rotation_count"], 1);
    chat(&gw, &old).await.assert_error(401);
    assert_eq!(chat(&gw, &new).await.status, 200);
    let n: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM \"TianjiLLM_AuditLog\" WHERE action = 'rotated'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);

    let v = call(
        &gw,
        Method::POST,
        "/key/service-account/generate",
        MASTER_KEY,
        json!({"user_id": "u"}),
    )
    .await
    .assert_error(400);
    assert_eq!(v["error"]["param"], "team_id");
    let v = call(
        &gw,
        Method::POST,
        "/key/service-account/generate",
        MASTER_KEY,
        json!({"team_id": "t1", "user_id": "u"}),
    )
    .await
    .json();
    assert_eq!(v["team_id"], "t1");
    assert!(v["user_id"].is_null());
}

#[tokio::test]
async fn database_outage_cached_keys_keep_working_and_writes_get_503() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: m\n    tianji_params: {{model: openai/x, api_base: \"{b}\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n  database_connection_timeout: 1\n",
        b = up.base(),
        u = db.url
    );
    let gw = TestGateway::start(&yaml).await;
    let key = call(
        &gw,
        Method::POST,
        "/key/generate",
        MASTER_KEY,
        json!({"key_alias": "before-outage"}),
    )
    .await
    .json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(chat(&gw, &key).await.status, 200); // now cached

    // Outage: refuse new connections to this database and cut the existing ones.
    let admin = crate::common::db::admin().await;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS false",
            db.name
        ))
        .await
        .unwrap();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[&db.name],
        )
        .await
        .unwrap();

    assert_eq!(
        chat(&gw, &key).await.status,
        200,
        "a cached key must survive a database outage"
    );
    assert_eq!(chat(&gw, MASTER_KEY).await.status, 200);
    let v = call(
        &gw,
        Method::POST,
        "/key/generate",
        MASTER_KEY,
        json!({"key_alias": "during-outage"}),
    )
    .await
    .assert_error(503);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("database"),
        "{v}"
    );
    let r = send(Method::GET, &gw.url("/health/readiness"), &[], Bytes::new()).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["db"], "unreachable");

    // Back: nothing from the outage was half-written, and writes work again.
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS true",
            db.name
        ))
        .await
        .unwrap();
    let c = db.client().await;
    let aliases: Vec<String> = c
        .query(
            "SELECT key_alias FROM \"TianjiLLM_VerificationToken\" ORDER BY key_alias",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(aliases, vec!["before-outage".to_string()]);
    let r = call(
        &gw,
        Method::POST,
        "/key/generate",
        MASTER_KEY,
        json!({"key_alias": "after-outage"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}
