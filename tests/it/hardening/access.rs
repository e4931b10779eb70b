//! Items 1, 11 and 12: no role above one's own through the management API, a team admin's own
//! limits under the team's, and `allowed_routes` over `/v1/models`.

use http::Method;
use serde_json::{Value, json};

use crate::common::{MASTER_KEY, Resp, TestGateway};
use crate::it::admin_keys::{call, setup};

async fn post(gw: &TestGateway, path: &str, key: &str, body: Value) -> Resp {
    call(gw, Method::POST, path, key, body).await
}

fn ok(r: Resp) -> Value {
    assert!(r.status.is_success(), "{} {}", r.status, r.text());
    r.json()
}

async fn get(gw: &TestGateway, path: &str, key: &str) -> Resp {
    call(gw, Method::GET, path, key, Value::Null).await
}

async fn key(gw: &TestGateway, body: Value) -> String {
    ok(post(gw, "/key/generate", MASTER_KEY, body).await)["key"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Users `boss` (proxy admin), `viewer` (admin viewer), `ta`, `m1`, `m2`, `iu`, `out`
/// (internal users); organisations `o1`, `o2`; team `t` (in `o1`: budget 100, rpm 50, models `m`; `ta`
/// admin, `m1`, `m2` and `boss` members; members may generate and update their own keys) and team
/// `u` (no limits; `ta` admin).
async fn world(gw: &TestGateway) {
    for (u, role) in [
        ("boss", "proxy_admin"),
        ("viewer", "proxy_admin_viewer"),
        ("ta", "internal_user"),
        ("m1", "internal_user"),
        ("m2", "internal_user"),
        ("iu", "internal_user"),
        ("out", "internal_user"),
    ] {
        ok(post(
            gw,
            "/user/new",
            MASTER_KEY,
            json!({"user_id": u, "user_role": role, "auto_create_key": false}),
        )
        .await);
    }
    for o in ["o1", "o2"] {
        ok(post(
            gw,
            "/organization/new",
            MASTER_KEY,
            json!({"organization_id": o, "organization_alias": o}),
        )
        .await);
    }
    ok(post(
        gw,
        "/team/new",
        MASTER_KEY,
        json!({
            "team_id": "t", "team_alias": "t", "organization_id": "o1",
            "max_budget": 100.0, "rpm_limit": 50, "models": ["m"],
            "team_member_permissions": ["/key/generate", "/key/update"],
            "members_with_roles": [
                {"role": "admin", "user_id": "ta"},
                {"role": "user", "user_id": "m1"},
                {"role": "user", "user_id": "m2"},
                {"role": "user", "user_id": "boss"}
            ]
        }),
    )
    .await);
    ok(post(
        gw,
        "/team/new",
        MASTER_KEY,
        json!({"team_id": "u", "team_alias": "u",
               "members_with_roles": [{"role": "admin", "user_id": "ta"}]}),
    )
    .await);
}

#[tokio::test]
async fn a_team_admin_cannot_mint_or_take_over_an_admin_key() {
    let (_db, _up, gw) = setup(false).await;
    world(&gw).await;
    let ta = key(&gw, json!({"team_id": "t", "user_id": "ta"})).await;

    // The reported attack: a key for a proxy admin in one's own team.
    let e = post(
        &gw,
        "/key/generate",
        &ta,
        json!({"team_id": "t", "user_id": "boss"}),
    )
    .await
    .assert_error(403);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("above"),
        "{e}"
    );
    // Users outside the team, or another organisation: refused as well.
    post(
        &gw,
        "/key/generate",
        &ta,
        json!({"team_id": "t", "user_id": "out"}),
    )
    .await
    .assert_error(403);
    post(
        &gw,
        "/key/generate",
        &ta,
        json!({"team_id": "t", "organization_id": "o2"}),
    )
    .await
    .assert_error(403);

    // A member's key is fine, and records the creator's grant, which later updates keep.
    let m1 = ok(post(
        &gw,
        "/key/generate",
        &ta,
        json!({"team_id": "t", "user_id": "m1", "metadata": {"tianji_role_cap": "proxy_admin"}}),
    )
    .await);
    assert_eq!(m1["metadata"]["tianji_role_cap"], "internal_user", "{m1}");
    let m1_key = m1["key"].as_str().unwrap().to_string();
    let upd = ok(post(
        &gw,
        "/key/update",
        &ta,
        json!({"key": m1_key, "metadata": {}}),
    )
    .await);
    assert_eq!(upd["metadata"]["tianji_role_cap"], "internal_user", "{upd}");

    // An existing key of the proxy admin in the team: no regenerate (that hands over its
    // secret), no update, block or delete by the team admin.
    let boss_key = key(&gw, json!({"team_id": "t", "user_id": "boss"})).await;
    for (path, body) in [
        ("/key/regenerate", json!({"key": boss_key})),
        ("/key/update", json!({"key": boss_key, "max_budget": 0.0})),
        ("/key/block", json!({"key": boss_key})),
        ("/key/delete", json!({"keys": [boss_key]})),
    ] {
        post(&gw, path, &ta, body).await.assert_error(403);
    }
    ok(get(&gw, "/key/list", &boss_key).await);

    // A proxy admin's key capped at internal_user acts as internal_user.
    let capped = key(
        &gw,
        json!({"user_id": "boss", "metadata": {"tianji_role_cap": "internal_user"}}),
    )
    .await;
    get(&gw, "/key/list", &capped).await.assert_error(403);
    post(
        &gw,
        "/key/generate",
        MASTER_KEY,
        json!({"metadata": {"tianji_role_cap": "god"}}),
    )
    .await
    .assert_error(400);
}

#[tokio::test]
async fn a_team_admins_own_limits_stay_under_the_team() {
    let (_db, _up, gw) = setup(false).await;
    world(&gw).await;
    // Keys a proxy admin gave the team admin, with limits of their own.
    let in_t = key(
        &gw,
        json!({"team_id": "t", "user_id": "ta", "max_budget": 5.0, "models": ["m"]}),
    )
    .await;
    let in_u = key(
        &gw,
        json!({"team_id": "u", "user_id": "ta", "max_budget": 5.0, "rpm_limit": 10}),
    )
    .await;
    let upd = |k: &str, key_in: &str, v: Value| {
        let mut body = v;
        body["key"] = json!(key_in);
        (k.to_string(), body)
    };
    // Above the team's limits: refused; within: fine.
    for (caller, body) in [
        upd(&in_t, &in_t, json!({"max_budget": 500.0})),
        upd(&in_t, &in_t, json!({"models": ["m", "m2"]})),
        upd(&in_t, &in_t, json!({"rpm_limit": 51})),
        // The team sets none: not above what a proxy admin gave.
        upd(&in_u, &in_u, json!({"max_budget": 50.0})),
        upd(&in_u, &in_u, json!({"max_budget": null})),
        upd(&in_u, &in_u, json!({"rpm_limit": 11})),
        upd(
            &in_u,
            &in_u,
            json!({"temp_budget_increase": 10.0, "temp_budget_expiry": "2099-01-01T00:00:00Z"}),
        ),
    ] {
        post(&gw, "/key/update", &caller, body.clone())
            .await
            .assert_error(403);
    }
    ok(post(
        &gw,
        "/key/update",
        &in_t,
        json!({"key": in_t, "max_budget": 50.0}),
    )
    .await);
    ok(post(
        &gw,
        "/key/update",
        &in_u,
        json!({"key": in_u, "max_budget": 3.0}),
    )
    .await);
    // New keys, too, stay within the team.
    post(
        &gw,
        "/key/generate",
        &in_t,
        json!({"team_id": "t", "max_budget": 101.0}),
    )
    .await
    .assert_error(403);
    post(
        &gw,
        "/key/generate",
        &in_t,
        json!({"team_id": "t", "models": ["m2"]}),
    )
    .await
    .assert_error(403);

    // Its own membership budget.
    ok(post(
        &gw,
        "/team/member_update",
        MASTER_KEY,
        json!({"team_id": "u", "user_id": "ta", "max_budget_in_team": 10.0}),
    )
    .await);
    post(
        &gw,
        "/team/member_update",
        &in_u,
        json!({"team_id": "u", "user_id": "ta", "max_budget_in_team": 1000.0}),
    )
    .await
    .assert_error(403);
    post(
        &gw,
        "/team/member_update",
        &in_t,
        json!({"team_id": "t", "user_id": "ta", "max_budget_in_team": 1000.0}),
    )
    .await
    .assert_error(403);
    ok(post(
        &gw,
        "/team/member_update",
        &in_t,
        json!({"team_id": "t", "user_id": "ta", "max_budget_in_team": 60.0}),
    )
    .await);
    ok(post(
        &gw,
        "/team/member_update",
        &in_u,
        json!({"team_id": "u", "user_id": "ta", "max_budget_in_team": 8.0}),
    )
    .await);
    // Members it adds, too.
    post(
        &gw,
        "/team/member_add",
        &in_t,
        json!({"team_id": "t", "member": {"user_id": "out"}, "max_budget_in_team": 101.0}),
    )
    .await
    .assert_error(403);
    // A proxy admin may raise anything.
    ok(post(
        &gw,
        "/key/update",
        MASTER_KEY,
        json!({"key": in_u, "max_budget": 500.0}),
    )
    .await);
}

#[tokio::test]
async fn allowed_routes_cover_the_model_list() {
    let (_db, _up, gw) = setup(false).await;
    let chat_only = key(&gw, json!({"allowed_routes": ["/chat/completions"]})).await;
    let llm = key(&gw, json!({"allowed_routes": ["llm_api_routes"]})).await;
    for path in ["/v1/models", "/models", "/v1/models/m"] {
        let e = get(&gw, path, &chat_only).await.assert_error(403);
        assert_eq!(e["error"]["type"], "permission_error", "{path}: {e}");
        ok(get(&gw, path, &llm).await);
    }
}

/// Who calls, in the walk below.
const CALLERS: [&str; 6] = [
    "plain key",
    "internal user",
    "team member",
    "team admin",
    "admin viewer",
    "proxy admin",
];

/// Every management route that takes an identity or a role, tried by each role with a request
/// that would raise someone's privilege, reach outside the caller's team or organisation, or
/// take over a key of a higher role. Only the roles listed may do it.
#[tokio::test]
async fn route_by_role_walk_over_identity_and_role_fields() {
    let (_db, _up, gw) = setup(false).await;
    world(&gw).await;
    let callers = [
        key(&gw, json!({})).await,
        key(&gw, json!({"user_id": "iu"})).await,
        key(&gw, json!({"team_id": "t", "user_id": "m1"})).await,
        key(&gw, json!({"team_id": "t", "user_id": "ta"})).await,
        key(&gw, json!({"user_id": "viewer"})).await,
        MASTER_KEY.to_string(),
    ];
    let admin = ["proxy admin"];
    let team_admin = ["team admin", "proxy admin"];
    for (who, caller) in CALLERS.iter().zip(&callers) {
        let n = who.replace(' ', "-");
        let boss_key = key(&gw, json!({"team_id": "t", "user_id": "boss"})).await;
        let boss_key2 = key(&gw, json!({"team_id": "t", "user_id": "boss"})).await;
        let own = key(
            &gw,
            json!({"team_id": "t", "user_id": if *who == "team member" { "m1" } else { "ta" }}),
        )
        .await;
        let cases: Vec<(&str, Method, &str, Value)> = vec![
            (
                "key for a proxy admin",
                Method::POST,
                "/key/generate",
                json!({"team_id": "t", "user_id": "boss"}),
            ),
            (
                "key for a non-member",
                Method::POST,
                "/key/generate",
                json!({"team_id": "t", "user_id": "out"}),
            ),
            (
                "key for another member",
                Method::POST,
                "/key/generate",
                json!({"team_id": "t", "user_id": "m2", "key_alias": format!("m2-{n}")}),
            ),
            (
                "key in another organisation",
                Method::POST,
                "/key/generate",
                json!({"team_id": "t", "organization_id": "o2"}),
            ),
            (
                "key over the team's budget",
                Method::POST,
                "/key/generate",
                json!({"team_id": "t", "max_budget": 1000.0}),
            ),
            (
                "key moved to another user",
                Method::POST,
                "/key/update",
                json!({"key": own, "user_id": "boss"}),
            ),
            (
                "key moved to another team",
                Method::POST,
                "/key/update",
                json!({"key": own, "team_id": "u"}),
            ),
            (
                "own key over the team's budget",
                Method::POST,
                "/key/update",
                json!({"key": own, "max_budget": 1000.0}),
            ),
            (
                "update a proxy admin's key",
                Method::POST,
                "/key/update",
                json!({"key": boss_key, "max_budget": 1.0}),
            ),
            (
                "block a proxy admin's key",
                Method::POST,
                "/key/block",
                json!({"key": boss_key}),
            ),
            (
                "regenerate a proxy admin's key",
                Method::POST,
                "/key/regenerate",
                json!({"key": boss_key}),
            ),
            (
                "delete a proxy admin's key",
                Method::POST,
                "/key/delete",
                json!({"keys": [boss_key2]}),
            ),
            (
                "service account key",
                Method::POST,
                "/key/service-account/generate",
                json!({"team_id": "t"}),
            ),
            (
                "add a member",
                Method::POST,
                "/team/member_add",
                json!({"team_id": "t", "member": {"user_id": format!("new-{n}")}}),
            ),
            (
                "add a member over the team's budget",
                Method::POST,
                "/team/member_add",
                json!({"team_id": "t", "member": {"user_id": format!("rich-{n}")},
                    "max_budget_in_team": 1000.0}),
            ),
            (
                "make oneself a richer member",
                Method::POST,
                "/team/member_update",
                json!({"team_id": "t", "user_id": "ta", "max_budget_in_team": 1000.0}),
            ),
            (
                "move the team to another organisation",
                Method::POST,
                "/team/update",
                json!({"team_id": "u", "organization_id": "o2"}),
            ),
            (
                "team in another organisation",
                Method::POST,
                "/team/new",
                json!({"organization_id": "o2", "team_alias": format!("x-{n}")}),
            ),
            (
                "create a proxy admin",
                Method::POST,
                "/user/new",
                json!({"user_id": format!("admin-{n}"), "user_role": "proxy_admin"}),
            ),
            (
                "promote a user",
                Method::POST,
                "/user/update",
                json!({"user_id": "out", "user_role": "proxy_admin"}),
            ),
            (
                "join an organisation as its admin",
                Method::POST,
                "/organization/member_add",
                json!({"organization_id": "o2", "member": {"user_id": "iu", "role": "org_admin"}}),
            ),
            (
                "change an organisation role",
                Method::PATCH,
                "/organization/member_update",
                json!({"organization_id": "o2", "user_id": "iu", "role": "internal_user"}),
            ),
        ];
        for (what, method, path, body) in cases {
            let allowed: &[&str] = match what {
                "key for another member" | "add a member" => &team_admin,
                _ => &admin,
            };
            let r = call(&gw, method, path, caller, body).await;
            if allowed.contains(who) {
                assert!(
                    r.status.is_success(),
                    "{who}: {what} ({path}): {} {}",
                    r.status,
                    r.text()
                );
            } else {
                assert_eq!(
                    r.status,
                    403,
                    "{who}: {what} ({path}) must be refused: {}",
                    r.text()
                );
            }
        }
    }
}
