//! `/organization/*`, `/budget/*`, `/end_user/*` (`/customer/*`) and their enforcement.

use http::Method;
use serde_json::{Value, json};

use super::admin_keys::{call, setup};
use crate::common::{MASTER_KEY, Resp, TestGateway};

fn ok(r: Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

async fn chat(gw: &TestGateway, key: &str, model: &str, user: Option<&str>) -> Resp {
    let mut body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    if let Some(u) = user {
        body["user"] = json!(u);
    }
    call(gw, Method::POST, "/v1/chat/completions", key, body).await
}

async fn key(gw: &TestGateway, body: Value) -> String {
    ok(call(gw, Method::POST, "/key/generate", MASTER_KEY, body).await)["key"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn organizations_members_models_and_budgets() {
    let (db, _up, gw) = setup(true).await;
    let org = ok(call(
        &gw,
        Method::POST,
        "/organization/new",
        MASTER_KEY,
        json!({"organization_alias": "acme", "max_budget": 10.0, "models": ["m"]}),
    )
    .await);
    let org_id = org["organization_id"].as_str().unwrap().to_string();
    assert_eq!(org["litellm_budget_table"]["max_budget"], 10.0);
    for (body, field) in [
        (json!({"models": ["m"]}), "organization_alias"),
        (
            json!({"organization_alias": "b", "max_budget": -2}),
            "max_budget",
        ),
    ] {
        let e = call(
            &gw,
            Method::POST,
            "/organization/new",
            MASTER_KEY,
            body.clone(),
        )
        .await
        .assert_error(400);
        assert_eq!(e["error"]["param"], field, "{body}");
    }

    let team = ok(call(
        &gw,
        Method::POST,
        "/team/new",
        MASTER_KEY,
        json!({"team_id": "t-acme", "organization_id": org_id}),
    )
    .await);
    assert_eq!(team["organization_id"], org_id.as_str());
    let k = key(&gw, json!({"team_id": "t-acme"})).await;
    assert_eq!(chat(&gw, &k, "m", None).await.status, 200);
    let e = chat(&gw, &k, "m2", None).await.assert_error(403);
    assert_eq!(e["error"]["type"], "org_model_access_denied");

    // an organisation over budget blocks its teams' keys
    db.client()
        .await
        .execute(
            "UPDATE \"TianjiLLM_OrganizationTable\" SET spend = 10 WHERE organization_id = $1",
            &[&org_id],
        )
        .await
        .unwrap();
    let upd = ok(call(
        &gw,
        Method::PATCH,
        "/organization/update",
        MASTER_KEY,
        json!({"organization_id": org_id, "max_budget": 9.0, "metadata": {"tier": "gold"}}),
    )
    .await);
    assert_eq!(upd["litellm_budget_table"]["max_budget"], 9.0);
    assert_eq!(upd["metadata"]["tier"], "gold");
    let e = chat(&gw, &k, "m", None).await.assert_error(429);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("Organization={org_id}"))
    );

    // members
    let added = ok(call(
        &gw,
        Method::POST,
        "/organization/member_add",
        MASTER_KEY,
        json!({"organization_id": org_id, "member": [{"role": "org_admin", "user_id": "o1"}], "max_budget_in_organization": 3.0}),
    )
    .await);
    assert_eq!(
        added["updated_users"][0]["organization_id"],
        org_id.as_str()
    );
    assert_eq!(
        added["updated_organization_memberships"][0]["user_role"],
        "org_admin"
    );
    let e = call(
        &gw,
        Method::POST,
        "/organization/member_add",
        MASTER_KEY,
        json!({"organization_id": org_id, "member": {"role": "owner", "user_id": "o2"}}),
    )
    .await
    .assert_error(400);
    assert_eq!(e["error"]["param"], "member.role");
    let o1 = key(&gw, json!({"user_id": "o1"})).await;
    let info = ok(call(
        &gw,
        Method::GET,
        &format!("/organization/info?organization_id={org_id}"),
        &o1,
        Value::Null,
    )
    .await);
    assert_eq!(info["members"].as_array().unwrap().len(), 1);
    assert_eq!(info["teams"][0]["team_id"], "t-acme");
    let mine = ok(call(&gw, Method::GET, "/organization/list", &o1, Value::Null).await);
    assert_eq!(mine.as_array().unwrap().len(), 1);
    let stranger = key(&gw, json!({"user_id": "x"})).await;
    call(
        &gw,
        Method::GET,
        &format!("/organization/info?organization_id={org_id}"),
        &stranger,
        Value::Null,
    )
    .await
    .assert_error(403);
    let changed = ok(call(
        &gw,
        Method::PATCH,
        "/organization/member_update",
        MASTER_KEY,
        json!({"organization_id": org_id, "user_id": "o1", "role": "internal_user"}),
    )
    .await);
    assert_eq!(
        changed["updated_organization_memberships"][0]["user_role"],
        "internal_user"
    );
    ok(call(
        &gw,
        Method::DELETE,
        "/organization/member_delete",
        MASTER_KEY,
        json!({"organization_id": org_id, "user_id": "o1"}),
    )
    .await);
    call(
        &gw,
        Method::DELETE,
        "/organization/member_delete",
        MASTER_KEY,
        json!({"organization_id": org_id, "user_id": "o1"}),
    )
    .await
    .assert_error(404);

    // an organisation's budget cannot be deleted from under it
    let budget_id = org["budget_id"].as_str().unwrap();
    call(
        &gw,
        Method::POST,
        "/budget/delete",
        MASTER_KEY,
        json!({"id": budget_id}),
    )
    .await
    .assert_error(400);

    let gone = ok(call(
        &gw,
        Method::DELETE,
        "/organization/delete",
        MASTER_KEY,
        json!({"organization_ids": [org_id]}),
    )
    .await);
    assert_eq!(gone.as_array().unwrap().len(), 1);
    let t = ok(call(
        &gw,
        Method::GET,
        "/team/info?team_id=t-acme",
        MASTER_KEY,
        Value::Null,
    )
    .await);
    assert!(t["team_info"]["organization_id"].is_null());
    assert_eq!(chat(&gw, &k, "m2", None).await.status, 200);
}

#[tokio::test]
async fn budgets_and_end_users() {
    let (_db, _up, gw) = setup(false).await;
    let b = ok(call(
        &gw,
        Method::POST,
        "/budget/new",
        MASTER_KEY,
        json!({"budget_id": "b1", "max_budget": 0.0, "budget_duration": "30d"}),
    )
    .await);
    assert_eq!(b["budget_id"], "b1");
    assert!(b["budget_reset_at"].is_string());
    call(
        &gw,
        Method::POST,
        "/budget/new",
        MASTER_KEY,
        json!({"budget_id": "b1"}),
    )
    .await
    .assert_error(400);
    let e = call(
        &gw,
        Method::POST,
        "/budget/new",
        MASTER_KEY,
        json!({"tpm_limit": 1.5}),
    )
    .await
    .assert_error(400);
    assert_eq!(e["error"]["param"], "tpm_limit");
    let info = ok(call(
        &gw,
        Method::POST,
        "/budget/info",
        MASTER_KEY,
        json!({"budgets": ["b1"]}),
    )
    .await);
    assert_eq!(info.as_array().unwrap().len(), 1);
    assert_eq!(
        ok(call(&gw, Method::GET, "/budget/list", MASTER_KEY, Value::Null).await)
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let k = key(&gw, json!({})).await;
    ok(call(
        &gw,
        Method::POST,
        "/end_user/new",
        MASTER_KEY,
        json!({"user_id": "cust1", "budget_id": "b1", "alias": "Customer One"}),
    )
    .await);
    let e = chat(&gw, &k, "m", Some("cust1")).await.assert_error(429);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("End User=cust1")
    );
    // the end user may also come from a header
    let r = crate::common::send(
        Method::POST,
        &gw.url("/v1/chat/completions"),
        &[
            ("authorization", &format!("Bearer {k}")),
            ("x-tianji-end-user-id", "cust1"),
        ],
        bytes::Bytes::from(r#"{"model":"m","messages":[]}"#),
    )
    .await;
    r.assert_error(429);
    // raising the shared budget applies at once
    ok(call(
        &gw,
        Method::POST,
        "/budget/update",
        MASTER_KEY,
        json!({"budget_id": "b1", "max_budget": 100.0}),
    )
    .await);
    assert_eq!(chat(&gw, &k, "m", Some("cust1")).await.status, 200);
    // unknown end users are fine
    assert_eq!(chat(&gw, &k, "m", Some("someone")).await.status, 200);

    // block and unblock (an unknown end user is created blocked)
    let bl = ok(call(
        &gw,
        Method::POST,
        "/customer/block",
        MASTER_KEY,
        json!({"user_ids": ["cust1", "cust-new"]}),
    )
    .await);
    assert_eq!(bl["blocked_users"], json!(["cust1", "cust-new"]));
    chat(&gw, &k, "m", Some("cust1")).await.assert_error(403);
    chat(&gw, &k, "m", Some("cust-new")).await.assert_error(403);
    ok(call(
        &gw,
        Method::POST,
        "/end_user/unblock",
        MASTER_KEY,
        json!({"user_ids": ["cust1"]}),
    )
    .await);
    assert_eq!(chat(&gw, &k, "m", Some("cust1")).await.status, 200);

    // an end user's own budget and models
    let c2 = ok(call(
        &gw,
        Method::POST,
        "/customer/new",
        MASTER_KEY,
        json!({"user_id": "cust2", "max_budget": 5.0, "models": ["m2"]}),
    )
    .await);
    assert_eq!(c2["litellm_budget_table"]["max_budget"], 5.0);
    let e = chat(&gw, &k, "m", Some("cust2")).await.assert_error(403);
    assert_eq!(e["error"]["type"], "customer_model_access_denied");
    let u = ok(call(
        &gw,
        Method::POST,
        "/end_user/update",
        MASTER_KEY,
        json!({"user_id": "cust2", "models": null, "max_budget": 6.0}),
    )
    .await);
    assert_eq!(u["litellm_budget_table"]["max_budget"], 6.0);
    assert_eq!(chat(&gw, &k, "m", Some("cust2")).await.status, 200);
    let got = ok(call(
        &gw,
        Method::GET,
        "/customer/info?end_user_id=cust2",
        MASTER_KEY,
        Value::Null,
    )
    .await);
    assert_eq!(got["user_id"], "cust2");
    // the three made through the API, and "someone", whom only a request named: the spend
    // writer records an end user at its next flush (as LiteLLM), so wait for it
    let listed = || async {
        let list = ok(call(&gw, Method::GET, "/end_user/list", MASTER_KEY, Value::Null).await);
        let mut ids: Vec<String> = (list.as_array().unwrap().iter())
            .map(|u| u["user_id"].as_str().unwrap_or_default().to_string())
            .collect();
        ids.sort();
        ids == ["cust-new", "cust1", "cust2", "someone"]
    };
    assert!(
        crate::common::eventually_async(std::time::Duration::from_secs(10), listed).await,
        "/end_user/list: {}",
        ok(call(&gw, Method::GET, "/end_user/list", MASTER_KEY, Value::Null).await)
    );
    let e = call(
        &gw,
        Method::POST,
        "/end_user/new",
        MASTER_KEY,
        json!({"user_id": "c4", "allowed_model_region": "mars"}),
    )
    .await
    .assert_error(400);
    assert_eq!(e["error"]["param"], "allowed_model_region");
    // a plain key manages no end users
    call(
        &gw,
        Method::POST,
        "/end_user/new",
        &k,
        json!({"user_id": "c5"}),
    )
    .await
    .assert_error(403);
    let d = ok(call(
        &gw,
        Method::POST,
        "/end_user/delete",
        MASTER_KEY,
        json!({"user_ids": ["cust2"]}),
    )
    .await);
    assert_eq!(d["deleted_customers"], 1);
    ok(call(
        &gw,
        Method::POST,
        "/budget/delete",
        MASTER_KEY,
        json!({"id": "b1"}),
    )
    .await);
    call(
        &gw,
        Method::POST,
        "/budget/update",
        MASTER_KEY,
        json!({"budget_id": "b1", "max_budget": 1}),
    )
    .await
    .assert_error(404);
}
