//! Management events (spec US4 scenario 3): key generated, updated, deleted fire the webhook
//! with the key's metadata (alias, masked name, user, team, models, budget, spend, metadata),
//! never the raw key, its hash or a secret in its metadata; teams and internal users too, to
//! `management_webhook_url` whatever `alerting` says.

use http::Method;
use serde_json::{Value, json};

use super::{WAIT, admin, assert_no_secrets, bodies, gateway, ok_reply, receiver};
use crate::common::db::TestDb;
use crate::common::eventually;
use crate::common::mock_upstream::MockUpstream;

fn events_named(r: &MockUpstream, event: &str) -> Vec<Value> {
    bodies(r)
        .into_iter()
        .filter(|b| b["event"] == event)
        .collect()
}

#[tokio::test]
async fn key_events_fire_the_webhook_with_key_metadata_and_no_secret() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let hook = receiver(ok_reply).await;
    let gw = gateway(
        &db,
        &up,
        "  alerting: [webhook]\n  alert_types: [new_virtual_key_created, virtual_key_updated, virtual_key_deleted]",
        &format!("  WEBHOOK_URL: \"http://{}/hook\"", hook.addr),
    )
    .await;
    let r = admin(
        &gw,
        Method::POST,
        "/key/generate",
        json!({"key_alias": "ops-key", "user_id": "u-ops", "models": ["gpt"], "max_budget": 12.5,
               "metadata": {"env": "prod", "api_key": "sk-meta-secret-000"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let raw = r.json()["key"].as_str().unwrap().to_string();
    let hash = r.json()["token_id"].as_str().unwrap().to_string();
    assert!(eventually(WAIT, || !events_named(&hook, "key_created").is_empty()).await);
    let e = &events_named(&hook, "key_created")[0];
    assert_eq!(e["event_group"], "key", "{e}");
    assert_eq!(e["event_type"], "new_virtual_key_created", "{e}");
    assert_eq!(e["key_alias"], "ops-key", "{e}");
    assert_eq!(e["user_id"], "u-ops", "{e}");
    assert_eq!(e["models"], json!(["gpt"]), "{e}");
    assert_eq!(e["max_budget"].as_f64(), Some(12.5), "{e}");
    assert_eq!(e["spend"].as_f64(), Some(0.0), "{e}");
    assert_eq!(e["metadata"]["env"], "prod", "{e}");
    assert!(e["token"].is_null(), "{e}");
    let name = e["key_name"].as_str().unwrap();
    assert!(name.starts_with("sk-") && name.len() < raw.len(), "{name}");
    assert!(
        raw.ends_with(&name[name.len() - 4..]),
        "{name} vs the raw key"
    );
    assert!(
        e["event_message"].as_str().unwrap().contains("ops-key"),
        "{e}"
    );

    // update, delete
    let r = admin(
        &gw,
        Method::POST,
        "/key/update",
        json!({"key": raw, "max_budget": 20.0}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(eventually(WAIT, || !events_named(&hook, "key_updated").is_empty()).await);
    let e = &events_named(&hook, "key_updated")[0];
    assert_eq!(e["max_budget"].as_f64(), Some(20.0), "{e}");
    assert_eq!(e["event_type"], "virtual_key_updated", "{e}");
    let r = admin(&gw, Method::POST, "/key/regenerate", json!({"key": raw})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rotated = r.json()["key"].as_str().unwrap().to_string();
    let rotated_hash = r.json()["token_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(eventually(WAIT, || !events_named(&hook, "key_regenerated").is_empty()).await);
    let e = &events_named(&hook, "key_regenerated")[0];
    assert_eq!(e["key_alias"], "ops-key", "{e}");
    let name = e["key_name"].as_str().unwrap();
    assert!(rotated.ends_with(&name[name.len() - 4..]), "{name}");
    let r = admin(&gw, Method::POST, "/key/delete", json!({"keys": [rotated]})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(eventually(WAIT, || !events_named(&hook, "key_deleted").is_empty()).await);
    assert_eq!(
        events_named(&hook, "key_deleted")[0]["key_alias"],
        "ops-key"
    );
    let mut secrets = vec![raw.as_str(), hash.as_str(), rotated.as_str()];
    secrets.extend(["sk-meta-secret-000", super::PROVIDER_KEY]);
    if !rotated_hash.is_empty() {
        secrets.push(&rotated_hash);
    }
    assert_no_secrets(&hook, &secrets);
}

#[tokio::test]
async fn alert_types_choose_the_events_and_the_key_hash_only_when_asked() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let hook = receiver(ok_reply).await;
    // only deletions asked, with the hash
    let gw = gateway(
        &db,
        &up,
        "  alerting: [webhook]\n  alert_types: [virtual_key_deleted]\n  alerting_include_key_hash: true",
        &format!("  WEBHOOK_URL: \"http://{}/hook\"", hook.addr),
    )
    .await;
    let r = admin(
        &gw,
        Method::POST,
        "/key/generate",
        json!({"key_alias": "h"}),
    )
    .await;
    let raw = r.json()["key"].as_str().unwrap().to_string();
    let hash = r.json()["token_id"].as_str().unwrap().to_string();
    admin(&gw, Method::POST, "/key/delete", json!({"keys": [raw]})).await;
    assert!(eventually(WAIT, || !events_named(&hook, "key_deleted").is_empty()).await);
    assert!(events_named(&hook, "key_created").is_empty());
    assert_eq!(events_named(&hook, "key_deleted")[0]["token"], json!(hash));
    assert_no_secrets(&hook, &[&raw]);
}

#[tokio::test]
async fn teams_and_users_go_to_the_management_webhook() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let hook = receiver(ok_reply).await;
    // no alert channel: the management webhook gets every management event anyway
    let gw = gateway(
        &db,
        &up,
        &format!(
            "  management_webhook_url: \"http://{}/management\"",
            hook.addr
        ),
        "",
    )
    .await;
    let r = admin(
        &gw,
        Method::POST,
        "/team/new",
        json!({"team_alias": "blue", "max_budget": 5.0}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let team_id = r.json()["team_id"].as_str().unwrap().to_string();
    admin(
        &gw,
        Method::POST,
        "/team/update",
        json!({"team_id": team_id, "team_alias": "navy"}),
    )
    .await;
    let r = admin(
        &gw,
        Method::POST,
        "/user/new",
        json!({"user_id": "u-mgmt", "user_email": "mgmt@example.com", "password": "pw-secret-123"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let raw = r.json()["key"].as_str().unwrap().to_string();
    admin(
        &gw,
        Method::POST,
        "/user/update",
        json!({"user_id": "u-mgmt", "user_alias": "M"}),
    )
    .await;
    admin(
        &gw,
        Method::POST,
        "/user/delete",
        json!({"user_ids": ["u-mgmt"]}),
    )
    .await;
    admin(
        &gw,
        Method::POST,
        "/team/delete",
        json!({"team_ids": [team_id]}),
    )
    .await;
    let wanted = [
        "team_created",
        "team_updated",
        "team_deleted",
        "internal_user_created",
        "internal_user_updated",
        "internal_user_deleted",
        "key_created",
    ];
    let all_there = || wanted.iter().all(|w| !events_named(&hook, w).is_empty());
    assert!(eventually(WAIT, all_there).await, "{:?}", bodies(&hook));
    assert_eq!(events_named(&hook, "team_updated")[0]["team_alias"], "navy");
    let u = &events_named(&hook, "internal_user_created")[0];
    assert_eq!(u["user_id"], "u-mgmt", "{u}");
    assert_eq!(u["user_email"], "mgmt@example.com", "{u}");
    assert!(hook.requests().iter().all(|r| r.path == "/management"));
    assert_no_secrets(&hook, &[&raw, "pw-secret-123"]);
}
