//! Agent cards: the stored card with its URL the gateway's, as 0.3 or 1.0 by `a2a-version`;
//! both well-known paths; 404 for unknown agents and agents without a card; and a change made
//! on one instance served by another (the registry reloads through the invalidation channel).

use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use super::*;
use crate::common::db::TestDb;
use crate::common::mock_upstream::MockUpstream;
use crate::common::{MASTER_KEY, eventually_async, send};

async fn card_of(
    gw: &TestGateway,
    id: &str,
    file: &str,
    version: Option<&str>,
) -> crate::common::Resp {
    let auth = format!("Bearer {MASTER_KEY}");
    let mut h = vec![("authorization", auth.as_str())];
    if let Some(v) = version {
        h.push(("a2a-version", v));
    }
    let url = gw.url(&format!("/a2a/{id}/.well-known/{file}"));
    send(Method::GET, &url, &h, bytes::Bytes::new()).await
}

#[tokio::test]
async fn cards_in_both_versions_across_instances() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let redis = std::env::var("TIANJI_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
    let yaml = format!(
        "model_list:\n  - model_name: m\n    tianji_params: {{model: openai/x, api_base: \"{b}\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n{ALLOW_LOOPBACK}router_settings:\n  redis_url: \"{redis}\"\n",
        b = up.base(),
        u = db.url
    );
    let a = TestGateway::start(&yaml).await;
    let b = TestGateway::start(&yaml).await;
    let id = create(&a, "remote", json!({})).await;

    // the other instance serves it once it has heard of it
    let seen = eventually_async(Duration::from_secs(10), || async {
        card_of(&b, &id, "agent-card.json", None).await.status == 200
    })
    .await;
    assert!(seen, "instance b never served the new agent's card");

    let base = b.url(&format!("/a2a/{id}"));
    let v03 = ok(card_of(&b, &id, "agent-card.json", None).await);
    assert_eq!(v03["url"], base.as_str());
    assert_eq!(v03["protocolVersion"], "0.3.0");
    assert_eq!(v03["name"], "remote");
    assert_eq!(v03["skills"][0]["id"], "s1");
    assert!(
        !v03.to_string().contains("127.0.0.1:9"),
        "the agent's own URL leaked: {v03}"
    );
    // the older path answers the same
    assert_eq!(ok(card_of(&b, &id, "agent.json", Some("0.3")).await), v03);

    let v10 = ok(card_of(&b, &id, "agent-card.json", Some("1.0")).await);
    assert!(
        v10.get("url").is_none() && v10.get("protocolVersion").is_none(),
        "{v10}"
    );
    assert_eq!(
        v10["supportedInterfaces"],
        json!([{"url": base, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}])
    );
    assert_eq!(v10["capabilities"]["streaming"], true);

    // unknown agents, and agents without a card
    card_of(&a, "nope", "agent-card.json", None)
        .await
        .assert_error(404);
    let bare = json!({"agent_name": "bare", "agent_card_params": {}});
    let bare_id = ok(post(&a, "/v1/agents", MASTER_KEY, bare).await)["agent_id"]
        .as_str()
        .unwrap()
        .to_string();
    card_of(&a, &bare_id, "agent-card.json", None)
        .await
        .assert_error(404);
    // no key, no card
    let anon = send(
        Method::GET,
        &a.url(&format!("/a2a/{id}/.well-known/agent-card.json")),
        &[],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(anon.status, 401, "{}", anon.text());

    // deleted on a, gone from b
    let path = format!("/v1/agents/{id}");
    ok(crate::it::admin_keys::call(&a, Method::DELETE, &path, MASTER_KEY, Value::Null).await);
    let gone = eventually_async(Duration::from_secs(10), || async {
        card_of(&b, &id, "agent-card.json", None).await.status == 404
    })
    .await;
    assert!(gone, "instance b still serves a deleted agent");
}

/// The official `a2a-sdk` card resolver (`tests/python/a2a_cards.py`) reads the gateway's card
/// in both versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a2a_sdk_resolves_the_gateway_card() {
    let db = TestDb::create().await;
    let yaml = format!(
        "general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n",
        u = db.url
    );
    crate::it::sdk::run_python("a2a_cards.py", &yaml, MASTER_KEY).await;
}
