//! `/team/*` against a real PostgreSQL: lifecycle, members, roles, enforcement on LLM calls,
//! soft delete (spec US2 scenario 4, US3 scenarios 4 and 5).

use http::Method;
use serde_json::{Value, json};

use super::admin_keys::{call, setup, setup_with};
use crate::common::{MASTER_KEY, Resp, TestGateway};

async fn post(gw: &TestGateway, path: &str, key: &str, body: Value) -> Resp {
    call(gw, Method::POST, path, key, body).await
}

async fn get(gw: &TestGateway, path: &str, key: &str) -> Resp {
    call(gw, Method::GET, path, key, Value::Null).await
}

async fn chat_model(gw: &TestGateway, key: &str, model: &str) -> Resp {
    post(
        gw,
        "/v1/chat/completions",
        key,
        json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
}

async fn new_key(gw: &TestGateway, body: Value) -> String {
    let r = post(gw, "/key/generate", MASTER_KEY, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["key"].as_str().unwrap().to_string()
}

fn ok(r: Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[tokio::test]
async fn team_lifecycle_members_enforcement_and_soft_delete() {
    let (db, _up, gw) = setup(true).await;
    let c = db.client().await;
    let team = ok(post(
        &gw,
        "/team/new",
        MASTER_KEY,
        json!({
            "team_alias": "eng", "models": ["m"], "max_budget": 10.0, "tags": ["x"],
            "members_with_roles": [
                {"role": "admin", "user_id": "alice"},
                {"role": "user", "user_email": "bob@example.com"}
            ]
        }),
    )
    .await);
    let team_id = team["team_id"].as_str().unwrap().to_string();
    assert_eq!(team["team_alias"], "eng");
    assert_eq!(team["metadata"]["tags"], json!(["x"]));
    let members = team["members_with_roles"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    let bob = members[1]["user_id"].as_str().unwrap().to_string();
    let users: i64 = c
        .query_one(
            "SELECT count(*) FROM \"TianjiLLM_UserTable\" WHERE $1 = ANY(teams)",
            &[&team_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 2);

    // bad input names the field
    for (body, field) in [
        (json!({"max_budget": -1}), "max_budget"),
        (json!({"budget_duration": "5x"}), "budget_duration"),
        (json!({"nope": 1}), "nope"),
        (
            json!({"members_with_roles": [{"role": "owner", "user_id": "u"}]}),
            "members_with_roles.role",
        ),
        (json!({"team_id": team_id}), "team_id"),
    ] {
        let e = post(&gw, "/team/new", MASTER_KEY, body.clone())
            .await
            .assert_error(400);
        assert_eq!(e["error"]["param"], field, "{body}");
    }
    post(
        &gw,
        "/team/update",
        MASTER_KEY,
        json!({"team_id": "no-such-team", "max_budget": 1}),
    )
    .await
    .assert_error(404);

    // keys of the team follow the team's model list
    let alice_key = new_key(&gw, json!({"team_id": team_id, "user_id": "alice"})).await;
    assert_eq!(chat_model(&gw, &alice_key, "m").await.status, 200);
    let e = chat_model(&gw, &alice_key, "m2").await.assert_error(403);
    assert_eq!(e["error"]["type"], "team_model_access_denied");

    // a team admin manages members; a plain member does not
    let carol = ok(post(
        &gw,
        "/team/member_add",
        &alice_key,
        json!({"team_id": team_id, "member": {"role": "user", "user_id": "carol"}}),
    )
    .await);
    assert_eq!(carol["members_with_roles"].as_array().unwrap().len(), 3);
    assert_eq!(carol["updated_users"][0]["user_id"], "carol");
    post(
        &gw,
        "/team/member_add",
        &alice_key,
        json!({"team_id": team_id, "member": {"role": "user", "user_id": "carol"}}),
    )
    .await
    .assert_error(400);
    let bob_key = new_key(&gw, json!({"team_id": team_id, "user_id": bob})).await;
    post(
        &gw,
        "/team/member_add",
        &bob_key,
        json!({"team_id": team_id, "member": {"role": "user", "user_id": "dave"}}),
    )
    .await
    .assert_error(403);
    // team admins manage their team's keys; members only with the team's permission, and only
    // their own
    let by_alice = ok(post(
        &gw,
        "/key/generate",
        &alice_key,
        json!({"team_id": team_id, "key_alias": "by-alice"}),
    )
    .await);
    assert_eq!(by_alice["team_id"], team_id.as_str());
    // outside the team, a key of her own only (internal users make their own keys)
    assert_eq!(
        ok(post(&gw, "/key/generate", &alice_key, json!({})).await)["user_id"],
        "alice"
    );
    post(&gw, "/key/generate", &alice_key, json!({"user_id": bob}))
        .await
        .assert_error(403);
    post(&gw, "/key/generate", &bob_key, json!({"team_id": team_id}))
        .await
        .assert_error(403);
    ok(post(
        &gw,
        "/team/permissions_update",
        &alice_key,
        json!({"team_id": team_id, "team_member_permissions": ["/key/generate"]}),
    )
    .await);
    let by_bob = ok(post(&gw, "/key/generate", &bob_key, json!({"team_id": team_id})).await);
    assert_eq!(by_bob["user_id"], bob.as_str());
    post(
        &gw,
        "/key/generate",
        &bob_key,
        json!({"team_id": team_id, "user_id": "alice"}),
    )
    .await
    .assert_error(403);
    ok(post(&gw, "/key/block", &alice_key, json!({"key": by_bob["key"]})).await);
    let outside = new_key(&gw, json!({})).await;
    post(&gw, "/key/block", &alice_key, json!({"key": outside}))
        .await
        .assert_error(403);
    post(
        &gw,
        "/key/update",
        &alice_key,
        json!({"key": by_alice["key"], "team_id": "elsewhere"}),
    )
    .await
    .assert_error(403);
    ok(post(
        &gw,
        "/key/update",
        &alice_key,
        json!({"key": by_alice["key"], "max_budget": 1.0}),
    )
    .await);

    // a key of no user is no team admin
    let plain = new_key(&gw, json!({"team_id": team_id})).await;
    post(
        &gw,
        "/team/update",
        &plain,
        json!({"team_id": team_id, "team_alias": "x"}),
    )
    .await
    .assert_error(403);

    // US3.4: member_update changes role and in-team budget
    let u = ok(post(
        &gw,
        "/team/member_update",
        MASTER_KEY,
        json!({"team_id": team_id, "user_email": "bob@example.com", "role": "admin", "max_budget_in_team": 5.0}),
    )
    .await);
    assert_eq!(u["user_id"], bob.as_str());
    assert_eq!(u["role"], "admin");
    assert_eq!(u["max_budget_in_team"], 5.0);
    let info = ok(get(&gw, &format!("/team/info?team_id={team_id}"), &bob_key).await);
    let roles = info["team_info"]["members_with_roles"].as_array().unwrap();
    assert!(
        roles
            .iter()
            .any(|m| m["user_id"] == bob.as_str() && m["role"] == "admin")
    );
    assert_eq!(info["keys"].as_array().unwrap().len(), 5);
    let ms = info["team_memberships"].as_array().unwrap();
    let bob_m = ms.iter().find(|m| m["user_id"] == bob.as_str()).unwrap();
    assert_eq!(bob_m["litellm_budget_table"]["max_budget"], 5.0);
    // bob is now an admin of the team
    ok(post(
        &gw,
        "/team/member_add",
        &bob_key,
        json!({"team_id": team_id, "member": {"role": "user", "user_id": "dave"}}),
    )
    .await);
    post(
        &gw,
        "/team/member_update",
        MASTER_KEY,
        json!({"team_id": team_id, "user_id": "nobody", "role": "user"}),
    )
    .await
    .assert_error(404);

    // a member over its in-team budget is refused
    c.execute(
        "UPDATE \"TianjiLLM_TeamMembership\" SET spend = 6 WHERE user_id = $1",
        &[&bob],
    )
    .await
    .unwrap();
    ok(post(
        &gw,
        "/team/member_update",
        MASTER_KEY,
        json!({"team_id": team_id, "user_id": bob, "max_budget_in_team": 5.5}),
    )
    .await);
    let e = chat_model(&gw, &bob_key, "m").await.assert_error(429);
    assert_eq!(e["error"]["type"], "budget_exceeded");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("User={bob} in Team={team_id}")),
        "{e}"
    );
    assert_eq!(chat_model(&gw, &alice_key, "m").await.status, 200);

    // a blocked team blocks its keys
    ok(post(&gw, "/team/block", MASTER_KEY, json!({"team_id": team_id})).await);
    let e = chat_model(&gw, &alice_key, "m").await.assert_error(403);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is blocked")
    );
    ok(post(
        &gw,
        "/team/unblock",
        MASTER_KEY,
        json!({"team_id": team_id}),
    )
    .await);
    assert_eq!(chat_model(&gw, &alice_key, "m").await.status, 200);

    // a team over budget blocks its keys
    c.execute(
        "UPDATE \"TianjiLLM_TeamTable\" SET spend = 12 WHERE team_id = $1",
        &[&team_id],
    )
    .await
    .unwrap();
    ok(post(
        &gw,
        "/team/update",
        MASTER_KEY,
        json!({"team_id": team_id, "max_budget": 11.0}),
    )
    .await);
    let e = chat_model(&gw, &alice_key, "m").await.assert_error(429);
    assert_eq!(e["error"]["type"], "budget_exceeded");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("Team={team_id}"))
    );
    // null clears the budget; model/add opens m2
    let upd = ok(post(
        &gw,
        "/team/update",
        MASTER_KEY,
        json!({"team_id": team_id, "max_budget": null, "tags": null}),
    )
    .await);
    assert!(upd["data"]["max_budget"].is_null());
    assert!(upd["data"]["metadata"].get("tags").is_none());
    ok(post(
        &gw,
        "/team/model/add",
        MASTER_KEY,
        json!({"team_id": team_id, "models": ["m2"]}),
    )
    .await);
    assert_eq!(chat_model(&gw, &alice_key, "m2").await.status, 200);
    // team admins rename their team but cannot raise its budget or limits
    for body in [
        json!({"team_id": team_id, "max_budget": 1000}),
        json!({"team_id": team_id, "tpm_limit": 1000000}),
        json!({"team_id": team_id, "model_rpm_limit": {"m": 100000}}),
        json!({"team_id": team_id, "access_group_ids": ["all"]}),
    ] {
        post(&gw, "/team/update", &alice_key, body)
            .await
            .assert_error(403);
    }
    let renamed = ok(post(
        &gw,
        "/team/update",
        &alice_key,
        json!({"team_id": team_id, "team_alias": "eng-2"}),
    )
    .await);
    assert_eq!(renamed["data"]["team_alias"], "eng-2");

    // member_delete removes the member and its keys in the team
    ok(post(
        &gw,
        "/team/member_delete",
        MASTER_KEY,
        json!({"team_id": team_id, "user_id": bob}),
    )
    .await);
    chat_model(&gw, &bob_key, "m").await.assert_error(401);

    // list
    let all = ok(get(&gw, "/team/list", MASTER_KEY).await);
    assert_eq!(all.as_array().unwrap().len(), 1);
    let mine = ok(get(&gw, "/team/list", &alice_key).await);
    assert_eq!(mine.as_array().unwrap().len(), 1);

    // US2.4: delete archives the team and its keys
    let d = ok(post(
        &gw,
        "/team/delete",
        MASTER_KEY,
        json!({"team_ids": [team_id]}),
    )
    .await);
    assert_eq!(d["deleted_teams"], json!([team_id]));
    chat_model(&gw, &alice_key, "m").await.assert_error(401);
    let row = c
        .query_one(
            "SELECT deleted_by, deleted_at IS NOT NULL, team_alias, max_budget FROM \"TianjiLLM_DeletedTeamTable\" WHERE team_id = $1",
            &[&team_id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "alice@example.com");
    assert!(row.get::<_, bool>(1));
    assert_eq!(row.get::<_, String>(2), "eng-2");
    let archived_keys: i64 = c
        .query_one(
            "SELECT count(*) FROM \"TianjiLLM_DeletedVerificationToken\" WHERE team_id = $1",
            &[&team_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        archived_keys, 5,
        "alice's, bob's two, the plain key and the one alice made"
    );
    let left: i64 = c
        .query_one(
            "SELECT (SELECT count(*) FROM \"TianjiLLM_TeamMembership\" WHERE team_id = $1) + (SELECT count(*) FROM \"TianjiLLM_UserTable\" WHERE $1 = ANY(teams))",
            &[&team_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    let actions: Vec<String> = c
        .query(
            "SELECT action FROM \"TianjiLLM_AuditLog\" WHERE table_name = 'TianjiLLM_TeamTable' AND object_id = $1 ORDER BY updated_at",
            &[&team_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(actions.first().map(String::as_str), Some("created"));
    assert_eq!(actions.last().map(String::as_str), Some("deleted"));
    get(&gw, &format!("/team/info?team_id={team_id}"), MASTER_KEY)
        .await
        .assert_error(404);
}

#[tokio::test]
async fn available_teams_and_member_permissions() {
    let (_db, _up, gw) = setup_with(
        false,
        "tianji_settings:\n  budget_exceeded_status_code: 400\n  default_internal_user_params:\n    available_teams: [t-open, t-joined]\n",
    )
    .await;
    for (id, members) in [
        ("t-open", json!([])),
        ("t-joined", json!([{"role": "user", "user_id": "u1"}])),
        ("t-private", json!([])),
    ] {
        ok(post(
            &gw,
            "/team/new",
            MASTER_KEY,
            json!({"team_id": id, "members_with_roles": members}),
        )
        .await);
    }
    let k = new_key(&gw, json!({"user_id": "u1", "max_budget": 0.0})).await;
    // US3.5: the teams u1 may join and has not
    let open = ok(get(&gw, "/team/available", &k).await);
    let ids: Vec<&str> = open
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["team_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["t-open"]);
    // a user sees only its own teams
    let mine = ok(get(&gw, "/team/list", &k).await);
    assert_eq!(mine.as_array().unwrap().len(), 1);
    get(&gw, "/team/list?user_id=someone-else", &k)
        .await
        .assert_error(403);
    get(&gw, "/team/info?team_id=t-private", &k)
        .await
        .assert_error(403);

    let p = ok(get(&gw, "/team/permissions_list?team_id=t-open", MASTER_KEY).await);
    assert!(
        p["all_available_permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("/key/generate"))
    );
    let e = post(
        &gw,
        "/team/permissions_update",
        MASTER_KEY,
        json!({"team_id": "t-open", "team_member_permissions": ["/key/everything"]}),
    )
    .await
    .assert_error(400);
    assert_eq!(e["error"]["param"], "team_member_permissions");
    ok(post(
        &gw,
        "/team/permissions_update",
        MASTER_KEY,
        json!({"team_id": "t-open", "team_member_permissions": ["/key/generate", "/key/info"]}),
    )
    .await);
    let p = ok(get(&gw, "/team/permissions_list?team_id=t-open", MASTER_KEY).await);
    assert_eq!(
        p["team_member_permissions"],
        json!(["/key/generate", "/key/info"])
    );
    get(&gw, "/team/permissions_list?team_id=t-open", &k)
        .await
        .assert_error(403);

    // budget_exceeded_status_code applies
    let e = chat_model(&gw, &k, "m").await.assert_error(400);
    assert_eq!(e["error"]["type"], "budget_exceeded");
}
