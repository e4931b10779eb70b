//! Issue 24 (A2A), first part: the agents table and registry, `/v1/agents` CRUD with audit rows
//! and redaction, agent cards in both protocol versions, permissions (key, team, both, access
//! groups, default deny, admins) on lists and cards, the private-URL guard, and bad input;
//! JSON-RPC to remote agents (send, streams relayed as they arrive, task methods, both protocol
//! versions), also through the official a2a-sdk client and server;
//! model-backed agents, agent limits, agent spend and daily activity.

mod cards;
mod crud;
mod model;
mod permissions;
mod rpc;
mod sdk;
mod stream;
mod usage;

use http::Method;
use serde_json::{Value, json};

use crate::common::{MASTER_KEY, Resp, TestGateway};
use crate::it::admin_keys::call;

/// The agent's own credentials: never shown to non-admins, never in audit rows.
const AGENT_KEY: &str = "sk-agent-secret-1234";
const AGENT_HEADER: &str = "hdr-secret-5678";

fn ok(r: Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

async fn get(gw: &TestGateway, path: &str, key: &str) -> Resp {
    call(gw, Method::GET, path, key, Value::Null).await
}

async fn post(gw: &TestGateway, path: &str, key: &str, body: Value) -> Resp {
    call(gw, Method::POST, path, key, body).await
}

/// A card pointing at `url`.
fn card(name: &str, url: &str) -> Value {
    json!({
        "protocolVersion": "0.3.0", "name": name, "description": format!("{name} agent"),
        "url": url, "version": "1.0.0",
        "capabilities": {"streaming": true}, "defaultInputModes": ["text"],
        "defaultOutputModes": ["text"],
        "skills": [{"id": "s1", "name": "skill", "description": "d", "tags": ["t"]}],
    })
}

/// Create an agent as the master key; its id.
async fn create(gw: &TestGateway, name: &str, extra: Value) -> String {
    let mut body = json!({
        "agent_name": name,
        "agent_card_params": card(name, "http://127.0.0.1:9/agent"),
        "litellm_params": {"api_key": AGENT_KEY},
        "static_headers": {"x-agent-token": AGENT_HEADER},
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let made = ok(post(gw, "/v1/agents", MASTER_KEY, body).await);
    made["agent_id"].as_str().unwrap().to_string()
}

/// A new key with `body` (`/key/generate`).
async fn key(gw: &TestGateway, body: Value) -> String {
    let made = ok(post(gw, "/key/generate", MASTER_KEY, body).await);
    made["key"].as_str().unwrap().to_string()
}

/// The agent names `key` lists.
async fn listed(gw: &TestGateway, key: &str) -> Vec<String> {
    let list = ok(get(gw, "/v1/agents", key).await);
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent_name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// Settings that let agents point at loopback (the tests' agents do).
const ALLOW_LOOPBACK: &str = "  agent_allow_private_urls: true\n";
