//! Drop-in compatibility: admin (see mod.rs). Issue 21 items 2, 3, 6, 7 and 13: team and
//! organisation aliases repeat unless uniqueness is asked for, internal users create their own
//! keys (`key_generation_settings` restricts it), organisations list their members and teams,
//! `/user/update` creates a missing user, and `/global/spend/*` answer in LiteLLM's shapes.

use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::MockUpstream;
use crate::common::{MASTER_KEY, Resp, TestGateway};
use crate::it::admin_keys::{call, chat, setup_with};
use crate::it::spend_reports::logged_today;

async fn post(gw: &TestGateway, path: &str, key: &str, body: Value) -> Resp {
    call(gw, Method::POST, path, key, body).await
}

async fn get(gw: &TestGateway, path: &str, key: &str) -> Resp {
    call(gw, Method::GET, path, key, Value::Null).await
}

fn ok(r: Resp) -> Value {
    assert!(r.status.is_success(), "{} {}", r.status, r.text());
    r.json()
}

/// `body` to `path` with the master key: the answer, which must be a success.
async fn admin(gw: &TestGateway, path: &str, body: Value) -> Value {
    ok(post(gw, path, MASTER_KEY, body).await)
}

/// `r` must be an error with `status` whose message contains `part`.
fn refused(r: Resp, status: u16, part: &str) -> Value {
    let e = r.assert_error(status);
    let message = e["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(part), "{e}");
    e
}

/// A new key from the master key; its raw value.
async fn key(gw: &TestGateway, body: Value) -> String {
    admin(gw, "/key/generate", body).await["key"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Users created by the master key: `(user_id, user_role, models)`.
async fn users(gw: &TestGateway, list: &[(&str, &str, Value)]) {
    for (id, role, models) in list {
        let body =
            json!({"user_id": id, "user_role": role, "models": models, "auto_create_key": false});
        admin(gw, "/user/new", body).await;
    }
}

/// The config `setup_with` writes, for a second gateway on the same database.
fn yaml(up: &MockUpstream, db: &TestDb, extra: &str) -> String {
    format!(
        "model_list:\n  - model_name: m\n    tianji_params: {{model: openai/x, api_base: \"{b}\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n{extra}",
        b = up.base(),
        u = db.url
    )
}

const UNIQUE: &str =
    "  enforce_unique_team_alias: true\n  enforce_unique_organization_alias: true\n";

/// Ten concurrent creates of `path` with the same alias: how many succeeded; the others must
/// be clean 400s naming `field`.
async fn race(gw: &TestGateway, path: &str, field: &str, alias: &str) -> usize {
    let tries = (0..10).map(|_| post(gw, path, MASTER_KEY, json!({field: alias})));
    let answers = futures_util::future::join_all(tries).await;
    let mut created = 0;
    for r in answers {
        if r.status.is_success() {
            created += 1;
            continue;
        }
        let e = refused(r, 400, alias);
        assert_eq!(e["error"]["param"], field, "{e}");
    }
    created
}

#[tokio::test]
async fn team_and_organization_aliases_repeat_unless_uniqueness_is_enforced() {
    // LiteLLM: aliases are labels; two teams (or organisations) may share one.
    let (db, up, gw) = setup_with(false, "").await;
    for _ in 0..2 {
        admin(&gw, "/team/new", json!({"team_alias": "eng"})).await;
        let org = json!({"organization_alias": "acme"});
        admin(&gw, "/organization/new", org).await;
    }
    let ops = admin(&gw, "/team/new", json!({"team_alias": "ops"})).await;
    let rename = json!({"team_id": ops["team_id"], "team_alias": "eng"});
    admin(&gw, "/team/update", rename).await;
    let teams = ok(get(&gw, "/team/list?team_alias=eng", MASTER_KEY).await);
    assert_eq!(teams.as_array().unwrap().len(), 3, "{teams}");
    drop(gw);

    // Opted in while duplicates exist: startup says which flag and which alias.
    let loaded = tianji::Loaded::from_yaml(&yaml(&up, &db, UNIQUE)).unwrap();
    let start = tianji::Gateway::start(&loaded, "127.0.0.1:0".parse().unwrap()).await;
    let e = start
        .err()
        .expect("duplicates must keep the index from being built");
    let e = e.to_string();
    assert!(
        e.contains("enforce_unique_team_alias") && e.contains("eng"),
        "{e}"
    );

    // On a clean database the index holds under concurrency: exactly one create wins.
    let (_db2, _up2, strict) = setup_with(false, UNIQUE).await;
    assert_eq!(race(&strict, "/team/new", "team_alias", "same").await, 1);
    let org_wins = race(
        &strict,
        "/organization/new",
        "organization_alias",
        "same-org",
    )
    .await;
    assert_eq!(org_wins, 1);
    let other = admin(&strict, "/team/new", json!({"team_alias": "other"})).await;
    let taken = json!({"team_id": other["team_id"], "team_alias": "same"});
    let e = post(&strict, "/team/update", MASTER_KEY, taken)
        .await
        .assert_error(400);
    assert_eq!(e["error"]["param"], "team_alias", "{e}");
}

#[tokio::test]
async fn dropping_the_flag_accepts_duplicate_aliases_again() {
    let (db, up, strict) = setup_with(false, UNIQUE).await;
    admin(&strict, "/team/new", json!({"team_alias": "a"})).await;
    post(&strict, "/team/new", MASTER_KEY, json!({"team_alias": "a"}))
        .await
        .assert_error(400);
    drop(strict);
    let relaxed = TestGateway::start(&yaml(&up, &db, "")).await;
    admin(&relaxed, "/team/new", json!({"team_alias": "a"})).await;
    let org = json!({"organization_alias": "o"});
    admin(&relaxed, "/organization/new", org.clone()).await;
    admin(&relaxed, "/organization/new", org).await;
}

#[tokio::test]
async fn internal_users_create_their_own_keys_and_nothing_more() {
    let (_db, _up, gw) = setup_with(false, "").await;
    users(
        &gw,
        &[
            ("iu", "internal_user", json!(["m"])),
            ("wide", "internal_user", json!([])),
            ("other", "internal_user", json!([])),
            ("looker", "internal_user_viewer", json!([])),
        ],
    )
    .await;
    let org = json!({"organization_id": "o2", "organization_alias": "o2"});
    admin(&gw, "/organization/new", org).await;
    admin(&gw, "/team/new", json!({"team_id": "t", "team_alias": "t"})).await;
    let iu = key(&gw, json!({"user_id": "iu"})).await;

    // Their own key, with models within their own: allowed, and it works.
    let asked = json!({"user_id": "iu", "models": ["m"], "key_alias": "mine"});
    let mine = ok(post(&gw, "/key/generate", &iu, asked).await);
    assert_eq!(mine["user_id"], "iu", "{mine}");
    assert_eq!(
        mine["metadata"]["tianji_role_cap"], "internal_user",
        "{mine}"
    );
    assert_eq!(chat(&gw, mine["key"].as_str().unwrap()).await.status, 200);
    let unnamed = ok(post(&gw, "/key/generate", &iu, json!({})).await);
    assert_eq!(unnamed["user_id"], "iu", "{unnamed}");

    // Someone else's key, models beyond their own, another organisation or team: refused.
    for body in [
        json!({"user_id": "other"}),
        json!({"models": ["m2"]}),
        json!({"organization_id": "o2"}),
        json!({"team_id": "t", "user_id": "iu"}),
        json!({"metadata": {"tianji_role_cap": "proxy_admin"}, "user_id": "other"}),
    ] {
        post(&gw, "/key/generate", &iu, body)
            .await
            .assert_error(403);
    }
    let capped = json!({"metadata": {"tianji_role_cap": "proxy_admin"}});
    let capped = ok(post(&gw, "/key/generate", &iu, capped).await);
    assert_eq!(capped["metadata"]["tianji_role_cap"], "internal_user");

    // A key restricted to some models and routes passes its restriction on.
    let narrow = json!({"user_id": "wide", "models": ["m"], "allowed_routes": ["/key/generate", "/v1/chat/completions"]});
    let narrow = key(&gw, narrow).await;
    let child = ok(post(&gw, "/key/generate", &narrow, json!({})).await);
    assert_eq!(child["models"], json!(["m"]), "{child}");
    assert_eq!(
        child["allowed_routes"],
        json!(["/key/generate", "/v1/chat/completions"])
    );
    for body in [
        json!({"models": ["m2"]}),
        json!({"allowed_routes": ["/user/info"]}),
    ] {
        post(&gw, "/key/generate", &narrow, body)
            .await
            .assert_error(403);
    }
    // Viewers create no keys.
    let looker = key(&gw, json!({"user_id": "looker"})).await;
    post(&gw, "/key/generate", &looker, json!({}))
        .await
        .assert_error(403);
}

const KEYGEN: &str = "tianji_settings:\n  key_generation_settings:\n    personal_key_generation:\n      allowed_user_roles: [proxy_admin]\n      required_params: [key_alias]\n    team_key_generation:\n      allowed_team_member_roles: [admin]\n      required_params: [tags]\n";

#[tokio::test]
async fn key_generation_settings_restrict_who_creates_which_key() {
    let (_db, _up, gw) = setup_with(false, KEYGEN).await;
    users(
        &gw,
        &[
            ("iu", "internal_user", json!([])),
            ("ta", "internal_user", json!([])),
            ("mem", "internal_user", json!([])),
        ],
    )
    .await;
    let team = json!({"team_id": "t", "team_alias": "t",
        "team_member_permissions": ["/key/generate"],
        "members_with_roles": [{"role": "admin", "user_id": "ta"}, {"role": "user", "user_id": "mem"}]});
    admin(&gw, "/team/new", team).await;

    // Personal keys: proxy admins only, each with a key_alias.
    let iu = key(&gw, json!({"user_id": "iu", "key_alias": "iu"})).await;
    let personal = post(&gw, "/key/generate", &iu, json!({"key_alias": "x"})).await;
    refused(personal, 400, "Personal key creation has been restricted");
    let bare = post(&gw, "/key/generate", MASTER_KEY, json!({"user_id": "iu"})).await;
    let e = refused(bare, 400, "Required param key_alias not in data");
    assert_eq!(e["error"]["param"], "key_alias", "{e}");

    // Team keys: team admins only, with tags; proxy admins are not restricted, but the team
    // must exist.
    let mem = key(&gw, json!({"team_id": "t", "user_id": "mem"})).await;
    let ta = key(&gw, json!({"team_id": "t", "user_id": "ta"})).await;
    let tagged = json!({"team_id": "t", "tags": ["x"]});
    let by_member = post(&gw, "/key/generate", &mem, tagged.clone()).await;
    refused(by_member, 400, "allowed_team_member_roles");
    let untagged = post(&gw, "/key/generate", &ta, json!({"team_id": "t"})).await;
    let e = refused(untagged, 400, "Required param tags");
    assert_eq!(e["error"]["param"], "tags", "{e}");
    ok(post(&gw, "/key/generate", &ta, tagged).await);
    admin(&gw, "/key/generate", json!({"team_id": "t"})).await;
    let unknown = post(&gw, "/key/generate", MASTER_KEY, json!({"team_id": "nope"})).await;
    refused(unknown, 400, "Unable to find team");
}

#[tokio::test]
async fn organization_list_and_info_carry_members_and_teams() {
    let (_db, _up, gw) = setup_with(false, "").await;
    let org = json!({"organization_id": "o1", "organization_alias": "acme"});
    admin(&gw, "/organization/new", org).await;
    admin(
        &gw,
        "/organization/new",
        json!({"organization_alias": "empty"}),
    )
    .await;
    let member =
        json!({"organization_id": "o1", "member": {"user_id": "u1", "role": "internal_user"}});
    admin(&gw, "/organization/member_add", member).await;
    let team = json!({"team_alias": "t1", "organization_id": "o1"});
    admin(&gw, "/team/new", team).await;

    let all = ok(get(&gw, "/organization/list", MASTER_KEY).await);
    let acme = all
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["organization_id"] == "o1")
        .unwrap();
    assert_eq!(acme["members"][0]["user_id"], "u1", "{acme}");
    assert_eq!(acme["members"][0]["user_role"], "internal_user", "{acme}");
    assert_eq!(acme["teams"][0]["team_alias"], "t1", "{acme}");
    assert!(acme["litellm_budget_table"].is_object(), "{acme}");
    let empty = all
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["organization_alias"] == "empty");
    assert_eq!(empty.unwrap()["members"], json!([]));

    let info = ok(get(&gw, "/organization/info?organization_id=o1", MASTER_KEY).await);
    assert_eq!(info["members"][0]["user"]["user_id"], "u1", "{info}");
    assert!(info["members"][0]["user"].get("password").is_none());
    assert_eq!(info["teams"][0]["team_alias"], "t1", "{info}");

    // A member lists its own organisations, with their members and teams.
    let u1 = key(&gw, json!({"user_id": "u1"})).await;
    let own = ok(get(&gw, "/organization/list", &u1).await);
    assert_eq!(own.as_array().unwrap().len(), 1, "{own}");
    assert_eq!(own[0]["teams"][0]["team_alias"], "t1");
}

#[tokio::test]
async fn user_update_by_an_admin_creates_a_missing_user() {
    let (_db, _up, gw) = setup_with(false, "").await;
    let body = json!({"user_id": "new-u", "user_alias": "N", "max_budget": 5.0,
        "user_role": "internal_user_viewer", "password": "pw"});
    let r = admin(&gw, "/user/update", body).await;
    assert_eq!(r["user_id"], "new-u");
    assert_eq!(r["data"]["user_alias"], "N", "{r}");
    assert_eq!(r["data"]["max_budget"], 5.0, "{r}");
    assert!(r["data"].get("password").is_none(), "{r}");
    let info = ok(get(&gw, "/user/info?user_id=new-u", MASTER_KEY).await);
    assert_eq!(
        info["user_info"]["user_role"], "internal_user_viewer",
        "{info}"
    );

    // Then it is an update like any other.
    let r = admin(
        &gw,
        "/user/update",
        json!({"user_id": "new-u", "max_budget": 7.0}),
    )
    .await;
    assert_eq!(r["data"]["max_budget"], 7.0);
    assert_eq!(r["data"]["user_alias"], "N");
    // Only admins, and an unknown e-mail names nobody to create.
    let k = key(&gw, json!({"user_id": "new-u"})).await;
    post(&gw, "/user/update", &k, json!({"user_id": "x"}))
        .await
        .assert_error(403);
    post(
        &gw,
        "/user/update",
        MASTER_KEY,
        json!({"user_email": "nobody@example.com"}),
    )
    .await
    .assert_error(404);
}

#[tokio::test]
async fn global_spend_routes_answer_in_litellm_shapes() {
    let (db, _up, gw) = setup_with(false, "  proxy_batch_write_at: 0.05\n").await;
    users(
        &gw,
        &[
            ("alice", "internal_user", json!([])),
            ("bob", "internal_user", json!([])),
        ],
    )
    .await;
    let team = json!({"team_alias": "alpha", "members_with_roles": [{"role": "user", "user_id": "alice"}]});
    let team_id = admin(&gw, "/team/new", team).await["team_id"].clone();
    let alice = key(&gw, json!({"team_id": team_id, "user_id": "alice"})).await;
    let bob = key(&gw, json!({"user_id": "bob"})).await;
    let ask = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "user": "eve"});
    for k in [&alice, &alice, &bob] {
        let mut body = ask.clone();
        if k == &bob {
            body["user"] = json!("zed");
        }
        assert_eq!(post(&gw, "/v1/chat/completions", k, body).await.status, 200);
    }
    let c = db.client().await;
    let today = logged_today(&c, 3).await;
    let q = format!("start_date={today}&end_date={today}");

    // /global/spend/teams: LiteLLM's daily_spend, teams and top totals, with the alias.
    let teams = ok(get(&gw, "/global/spend/teams", MASTER_KEY).await);
    let top = teams["total_spend_per_team"].as_array().unwrap();
    let alpha = top
        .iter()
        .find(|t| t["team_alias"] == "alpha")
        .expect("alpha");
    assert_eq!(alpha["team_id"], "alpha", "{teams}");
    assert!(alpha["total_spend"].is_number(), "{teams}");
    assert!(
        teams["teams"]
            .as_array()
            .unwrap()
            .contains(&json!("Unassigned"))
    );
    assert_eq!(teams["daily_spend"][0]["date"], today.as_str());
    assert!(teams["daily_spend"][0]["alpha"].is_number(), "{teams}");

    let g = ok(get(&gw, "/global/spend", MASTER_KEY).await);
    assert_eq!(g["max_budget"], 0.0, "{g}");

    // A team's spend for one customer.
    let path = format!(
        "/global/spend/report?{q}&team_id={}&customer_id=eve",
        team_id.as_str().unwrap()
    );
    let r = ok(get(&gw, &path, MASTER_KEY).await);
    let tc = &r[0]["teams_customers"][0];
    assert_eq!(tc["team_name"], "alpha", "{r}");
    assert_eq!(tc["customer"], "eve", "{r}");
    assert!(tc["metadata"][0]["api_key"].is_string(), "{r}");

    // Internal users read their own top keys, models, providers, tags and end users.
    let bob_token = tianji::auth::token_hex(&bob);
    let keys = ok(get(&gw, "/global/spend/keys", &bob).await);
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
    assert_eq!(keys[0]["api_key"], bob_token.as_str());
    assert_eq!(
        ok(get(&gw, "/global/spend/keys", MASTER_KEY).await)
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        ok(get(&gw, "/global/spend/models", &bob).await)[0]["model"],
        "x"
    );
    ok(get(&gw, &format!("/global/spend/provider?{q}"), &bob).await);
    ok(get(&gw, &format!("/global/spend/tags?{q}"), &bob).await);
    let eu = ok(post(&gw, "/global/spend/end_users", &bob, json!({})).await);
    let names: Vec<&Value> = eu
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["end_user"])
        .collect();
    assert_eq!(names, [&json!("zed")], "{eu}");
    get(&gw, "/global/spend/teams", &bob)
        .await
        .assert_error(403);
}
