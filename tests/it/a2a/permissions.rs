//! Who sees which agent, on the list and on the card: key grants only, team grants only, both
//! (intersection), access groups (the object permission's and `access_group_ids`),
//! `agent_access_default_deny`, and admins unrestricted.

use serde_json::{Value, json};

use super::*;
use crate::common::MASTER_KEY;
use crate::it::admin_keys::setup_with;

/// The card of `id` as `key` gets it: its status (and the 403 body).
async fn card_status(gw: &TestGateway, id: &str, key: &str) -> (u16, Value) {
    let r = get(gw, &format!("/a2a/{id}/.well-known/agent-card.json"), key).await;
    let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status.as_u16(), body)
}

async fn team(gw: &TestGateway, body: Value) -> String {
    let made = ok(post(gw, "/team/new", MASTER_KEY, body).await);
    made["team_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn key_team_both_groups_and_admins() {
    let (_db, _up, gw) = setup_with(false, ALLOW_LOOPBACK).await;
    let a1 = create(&gw, "a1", json!({"agent_access_groups": ["g1"]})).await;
    let a2 = create(&gw, "a2", json!({"access_group_ids": ["g2"]})).await;
    let a3 = create(&gw, "a3", json!({})).await;
    let all = ["a1", "a2", "a3"];

    // admins, and keys that grant nothing: every agent
    assert_eq!(listed(&gw, MASTER_KEY).await, all);
    let open = key(&gw, json!({})).await;
    assert_eq!(listed(&gw, &open).await, all);
    assert_eq!(card_status(&gw, &a2, &open).await.0, 200);

    // key only
    let k = key(&gw, json!({"object_permission": {"agents": [a1, a3]}})).await;
    assert_eq!(listed(&gw, &k).await, ["a1", "a3"]);
    assert_eq!(card_status(&gw, &a1, &k).await.0, 200);
    let (status, body) = card_status(&gw, &a2, &k).await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"detail": format!("Agent '{a2}' is not allowed for your key/team. Contact proxy admin for access.")})
    );
    assert_eq!(get(&gw, &format!("/v1/agents/{a2}"), &k).await.status, 403);

    // team only (agents by name count too)
    let t = team(&gw, json!({"object_permission": {"agents": [a1, "a2"]}})).await;
    let tk = key(&gw, json!({"team_id": t})).await;
    assert_eq!(listed(&gw, &tk).await, ["a1", "a2"]);
    assert_eq!(card_status(&gw, &a3, &tk).await.0, 403);

    // both: the intersection
    let both = key(
        &gw,
        json!({"team_id": t, "object_permission": {"agents": [a1, a3]}}),
    )
    .await;
    assert_eq!(listed(&gw, &both).await, ["a1"]);
    assert_eq!(card_status(&gw, &a3, &both).await.0, 403);
    assert_eq!(card_status(&gw, &a1, &both).await.0, 200);

    // access groups: the object permission's agent_access_groups, and access_group_ids
    let g1 = key(
        &gw,
        json!({"object_permission": {"agent_access_groups": ["g1"]}}),
    )
    .await;
    assert_eq!(listed(&gw, &g1).await, ["a1"]);
    let g2 = key(&gw, json!({"access_group_ids": ["g2"]})).await;
    assert_eq!(listed(&gw, &g2).await, ["a2"]);
    let tg = team(&gw, json!({"access_group_ids": ["g1", "g2"]})).await;
    let tgk = key(
        &gw,
        json!({"team_id": tg, "object_permission": {"agents": [a2, a3]}}),
    )
    .await;
    assert_eq!(listed(&gw, &tgk).await, ["a2"]);

    // a key's permission change applies at once
    let body = json!({"key": k, "object_permission": {"agents": [a2]}});
    let changed = post(&gw, "/key/update", MASTER_KEY, body).await;
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_eq!(listed(&gw, &k).await, ["a2"]);
}

#[tokio::test]
async fn default_deny_leaves_unrestricted_keys_nothing() {
    let extra = format!("{ALLOW_LOOPBACK}  agent_access_default_deny: true\n");
    let (_db, _up, gw) = setup_with(false, &extra).await;
    let a1 = create(&gw, "a1", json!({})).await;
    create(&gw, "a2", json!({})).await;
    let open = key(&gw, json!({})).await;
    assert!(listed(&gw, &open).await.is_empty());
    assert_eq!(card_status(&gw, &a1, &open).await.0, 403);
    // an explicit grant still works, and admins see everything
    let k = key(&gw, json!({"object_permission": {"agents": [a1]}})).await;
    assert_eq!(listed(&gw, &k).await, ["a1"]);
    assert_eq!(listed(&gw, MASTER_KEY).await, ["a1", "a2"]);
    assert_eq!(card_status(&gw, &a1, MASTER_KEY).await.0, 200);
}
