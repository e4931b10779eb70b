//! `POST /a2a/{agent_id}` JSON-RPC: the envelope's errors (reference codes and statuses),
//! `message/send` (and 1.0's `SendMessage`) forwarded to a remote agent with the agent's own
//! credentials and never the caller's key, the alias paths, permissions, and an agent that is
//! down answering a JSON-RPC error.

use std::sync::Arc;

use http::Method;
use serde_json::{Value, json};

use super::*;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};
use crate::common::{MASTER_KEY, send};
use crate::it::admin_keys::setup_with;

async fn rpc(gw: &TestGateway, path: &str, key: &str, body: &str) -> Resp {
    let auth = format!("Bearer {key}");
    let h = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    send(
        Method::POST,
        &gw.url(path),
        &h,
        bytes::Bytes::from(body.to_string()),
    )
    .await
}

fn send_body(method: &str) -> String {
    json!({"jsonrpc": "2.0", "id": "r1", "method": method, "params": {"message": {
        "kind": "message", "role": "user", "messageId": "m1", "parts": [{"kind": "text", "text": "hi"}]}}})
    .to_string()
}

fn agent_reply(r: &Recorded) -> Reply {
    let asked = r.json();
    Reply::status(
        200,
        json!({"jsonrpc": "2.0", "id": asked["id"], "result": {
        "kind": "message", "role": "agent", "messageId": "a1", "parts": [{"kind": "text", "text": "hello"}]}}),
    )
}

#[tokio::test]
async fn message_send_reaches_the_agent_with_its_own_credentials() {
    let (_db, _up, gw) = setup_with(false, ALLOW_LOOPBACK).await;
    let agent = MockUpstream::with(Arc::new(agent_reply)).await;
    let url = format!("{}/agent", agent.base());
    let body = json!({"agent_card_params": card("remote", &url), "extra_headers": ["x-trace", "authorization"]});
    let id = create(&gw, "remote", body).await;
    let user = key(&gw, json!({})).await;

    for (path, method) in [
        (format!("/a2a/{id}"), "message/send"),
        (format!("/a2a/{id}/message/send"), "SendMessage"),
        (format!("/v1/a2a/{id}/message/send"), "message/send"),
    ] {
        let auth = format!("Bearer {user}");
        let h = [("authorization", auth.as_str()), ("x-trace", "t-1")];
        let r = send(
            Method::POST,
            &gw.url(&path),
            &h,
            bytes::Bytes::from(send_body(method)),
        )
        .await;
        let v = ok(r);
        assert_eq!(v["id"], "r1");
        assert_eq!(v["result"]["parts"][0]["text"], "hello");
        let got = agent.last();
        assert!(got.path.ends_with("/agent"), "{}", got.path);
        assert_eq!(got.json()["method"], method, "the name the client sent");
        assert_eq!(
            got.headers["authorization"],
            format!("Bearer {AGENT_KEY}").as_str()
        );
        assert_eq!(got.headers["x-agent-token"], AGENT_HEADER);
        assert_eq!(got.headers["x-trace"], "t-1");
        let all = format!("{:?}{}", got.headers, got.json());
        assert!(!all.contains(&user), "the caller's key reached the agent");
    }
}

#[tokio::test]
async fn json_rpc_errors_have_the_reference_codes() {
    let (_db, _up, gw) = setup_with(false, ALLOW_LOOPBACK).await;
    let id = create(&gw, "down", json!({})).await;
    let path = format!("/a2a/{id}");
    let code = |r: &Resp| -> (u16, i64) {
        let v: Value = r.json();
        (r.status.as_u16(), v["error"]["code"].as_i64().unwrap_or(0))
    };
    let bad = r#"{"jsonrpc": "1.0", "id": 1, "method": "message/send", "params": {}}"#;
    let r = rpc(&gw, &path, MASTER_KEY, bad).await;
    assert_eq!(code(&r), (400, -32600));
    assert_eq!(
        r.json()["error"]["message"],
        "Invalid Request: jsonrpc must be '2.0'"
    );
    assert_eq!(
        code(&rpc(&gw, &path, MASTER_KEY, "{oops").await),
        (400, -32700)
    );
    let r = rpc(&gw, "/a2a/nope", MASTER_KEY, &send_body("message/send")).await;
    assert_eq!(code(&r), (404, -32000));
    assert_eq!(r.json()["error"]["message"], "Agent 'nope' not found");
    let r = rpc(&gw, &path, MASTER_KEY, &send_body("nope/x")).await;
    assert_eq!(code(&r), (404, -32601));
    let missing = r#"{"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {}}"#;
    assert_eq!(
        code(&rpc(&gw, &path, MASTER_KEY, missing).await),
        (400, -32602)
    );
    // the agent (127.0.0.1:9) is down: a JSON-RPC error, not a hang
    let r = rpc(&gw, &path, MASTER_KEY, &send_body("message/send")).await;
    assert_eq!(code(&r), (500, -32603), "{}", r.text());
    // not permitted: the reference's 403
    let other = create(&gw, "other", json!({})).await;
    let k = key(&gw, json!({"object_permission": {"agents": [other]}})).await;
    let r = rpc(&gw, &path, &k, &send_body("message/send")).await;
    assert_eq!(r.status, 403);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("is not allowed")
    );
}
