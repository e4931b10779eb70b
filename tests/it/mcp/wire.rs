//! What an upstream Streamable HTTP server sees, against a mock we own: one `initialize` and
//! `notifications/initialized` per client session, its `Mcp-Session-Id` and the agreed
//! `MCP-Protocol-Version` on every later request, the server's credential (never the
//! caller's key; a client's `x-mcp-{server}-{header}` as `{header}`), SSE answers with other events first, a session the server ended renewed
//! once, a broken answer reported, results passed through unchanged, and the upstream session
//! ended with `DELETE` when the client's ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;

use super::*;
use crate::common::eventually;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};

fn answer(id: &serde_json::Value, result: serde_json::Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
}

#[tokio::test]
async fn upstream_sessions_are_opened_once_reused_renewed_and_ended() {
    let inits = Arc::new(AtomicUsize::new(0));
    let counter = inits.clone();
    let up = MockUpstream::with(Arc::new(move |r: &Recorded| {
        if r.method == http::Method::DELETE {
            return Reply::status(200, json!({}));
        }
        let body = r.json();
        let id = body["id"].clone();
        let session = r.headers.get("mcp-session-id").map(|v| v.to_str().unwrap().to_string());
        match body["method"].as_str().unwrap_or_default() {
            "initialize" => {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                Reply::Json {
                    status: 200,
                    body: answer(&id, json!({"protocolVersion": "2025-03-26", "capabilities": {"tools": {}}, "serverInfo": {"name": "mock", "version": "1"}})),
                    headers: vec![("mcp-session-id", format!("up-{n}"))],
                }
            }
            "notifications/initialized" => Reply::Raw {
                status: 202,
                content_type: "application/json",
                chunks: vec![],
            },
            "tools/list" => Reply::Sse {
                events: vec![
                    "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"hi\"}}\n\n".into(),
                    format!("event: message\ndata: {}\n\n", answer(&id, json!({"tools": [{"name": "a", "inputSchema": {"type": "object"}}, {"name": "expire", "inputSchema": {"type": "object"}}]}))),
                ],
                gap: Duration::from_millis(5),
            },
            "tools/call" => match body["params"]["name"].as_str().unwrap_or_default() {
                "expire" if session.as_deref() == Some("up-1") => Reply::status(404, json!({})),
                "garbage" => Reply::Raw {
                    status: 200,
                    content_type: "application/json",
                    chunks: vec![Bytes::from_static(b"not json")],
                },
                name => Reply::Json {
                    status: 200,
                    body: answer(&id, json!({"content": [{"type": "text", "text": format!("{name} on {}", session.unwrap_or_default())}], "structuredContent": {"n": 1}, "isError": false})),
                    headers: vec![],
                },
            },
            _ => Reply::status(400, json!({})),
        }
    }))
    .await;
    let yaml = format!(
        "general_settings:\n  master_key: {MASTER_KEY}\nmcp_servers:\n  mock:\n    url: http://{}/mcp\n    auth_type: api_key\n    auth_value: up-secret\n",
        up.addr
    );
    let gw = TestGateway::start(&yaml).await;
    let init = request(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    );
    let sid = rpc(&gw, "/mcp", MASTER_KEY, &[], &init)
        .await
        .header("mcp-session-id")
        .unwrap()
        .to_string();
    let with = [
        ("mcp-session-id", sid.as_str()),
        ("x-mcp-mock-x-tenant", "t-7"),
    ];

    let listed = rpc(
        &gw,
        "/mcp",
        MASTER_KEY,
        &with,
        &request(2, "tools/list", json!({})),
    )
    .await
    .json();
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mock-a", "mock-expire"], "{listed}");
    let called = rpc(
        &gw,
        "/mcp",
        MASTER_KEY,
        &with,
        &request(3, "tools/call", json!({"name": "mock-a", "arguments": {}})),
    )
    .await
    .json();
    assert_eq!(
        called,
        json!({"jsonrpc": "2.0", "id": 3, "result": {"content": [{"type": "text", "text": "a on up-1"}], "structuredContent": {"n": 1}, "isError": false}})
    );
    // the server ended its session: a new one, and the call goes through
    let renewed = rpc(
        &gw,
        "/mcp",
        MASTER_KEY,
        &with,
        &request(4, "tools/call", json!({"name": "mock-expire"})),
    )
    .await
    .json();
    assert_eq!(
        renewed["result"]["content"][0]["text"], "expire on up-2",
        "{renewed}"
    );
    let broken = rpc(
        &gw,
        "/mcp",
        MASTER_KEY,
        &with,
        &request(5, "tools/call", json!({"name": "mock-garbage"})),
    )
    .await
    .json();
    assert_eq!(broken["error"]["code"], -32603, "{broken}");
    assert_eq!(inits.load(Ordering::SeqCst), 2);

    let reqs = up.requests();
    for r in &reqs {
        assert_eq!(r.headers["x-api-key"], "up-secret");
        // a client's per-server header, passed on without its prefix
        assert_eq!(r.headers["x-tenant"], "t-7");
        assert!(
            r.headers.get("authorization").is_none(),
            "the caller's key reached the server"
        );
    }
    let after_init: Vec<&Recorded> = reqs
        .iter()
        .filter(|r| r.json()["method"] != "initialize")
        .collect();
    for r in &after_init {
        assert!(r.headers.get("mcp-session-id").is_some(), "{}", r.text());
        assert_eq!(r.headers["mcp-protocol-version"], "2025-03-26");
    }
    let initialized = reqs
        .iter()
        .filter(|r| r.json()["method"] == "notifications/initialized")
        .count();
    assert_eq!(initialized, 2);

    // ending the client session ends the upstream one
    let auth = format!("Bearer {MASTER_KEY}");
    let h = [
        ("authorization", auth.as_str()),
        ("mcp-session-id", sid.as_str()),
    ];
    let r = send(Method::DELETE, &gw.url("/mcp"), &h, Bytes::new()).await;
    assert_eq!(r.status, 200);
    let deleted = eventually(Duration::from_secs(10), || {
        up.requests().iter().any(|r| {
            r.method == http::Method::DELETE
                && r.headers.get("mcp-session-id").is_some_and(|v| v == "up-2")
        })
    })
    .await;
    assert!(deleted, "the upstream session was not ended");
}
