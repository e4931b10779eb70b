//! Bad input at `/mcp`: no key, malformed JSON-RPC, batches, unknown methods, unknown or ended
//! sessions, unsupported protocol versions, oversize messages, other methods, unknown servers;
//! an unreachable server is left out of `tools/list`.

use serde_json::json;

use super::*;

#[tokio::test]
async fn bad_input_gets_json_rpc_errors() {
    let yaml = format!(
        "general_settings:\n  master_key: {MASTER_KEY}\nmcp_servers:\n  gone:\n    url: http://127.0.0.1:9/mcp\n    timeout: 5\n"
    );
    let gw = TestGateway::start(&yaml).await;
    let k = MASTER_KEY;
    let init = request(
        1,
        "initialize",
        json!({"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    );

    // no key
    let r = send(
        Method::POST,
        &gw.url("/mcp"),
        &[],
        bytes::Bytes::from(init.clone()),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());

    let code = |r: &Resp| r.json()["error"]["code"].as_i64().unwrap();
    let r = rpc(&gw, "/mcp", k, &[], "{nope").await;
    assert_eq!((r.status.as_u16(), code(&r)), (400, -32700), "{}", r.text());
    let r = rpc(
        &gw,
        "/mcp",
        k,
        &[],
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
    )
    .await;
    assert_eq!((r.status.as_u16(), code(&r)), (400, -32600), "{}", r.text());
    let r = rpc(
        &gw,
        "/mcp",
        k,
        &[],
        r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
    )
    .await;
    assert_eq!((r.status.as_u16(), code(&r)), (400, -32600));
    assert_eq!(r.json()["id"], 1);
    let r = rpc(
        &gw,
        "/mcp",
        k,
        &[],
        &request(2, "resources/nope", json!({})),
    )
    .await;
    assert_eq!((r.status.as_u16(), code(&r)), (200, -32601), "{}", r.text());
    let r = rpc(
        &gw,
        "/mcp",
        k,
        &[],
        &request(3, "tools/call", json!({"arguments": {}})),
    )
    .await;
    assert_eq!((r.status.as_u16(), code(&r)), (200, -32602), "{}", r.text());
    let r = rpc(
        &gw,
        "/mcp",
        k,
        &[],
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
    assert_eq!(r.status, 202);

    // sessions: issued, used, ended; unknown ones are 404
    let r = rpc(&gw, "/mcp", k, &[], &init).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"]["protocolVersion"], "2025-03-26");
    let sid = r.header("mcp-session-id").unwrap().to_string();
    let with = [("mcp-session-id", sid.as_str())];
    let r = rpc(&gw, "/mcp", k, &with, &request(4, "ping", json!({}))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"], json!({}));
    // an unreachable server is left out, the list still answers
    let r = rpc(&gw, "/mcp", k, &with, &request(5, "tools/list", json!({}))).await;
    assert_eq!(r.json()["result"]["tools"], json!([]), "{}", r.text());
    let auth = format!("Bearer {k}");
    let del = |sid: String| {
        let url = gw.url("/mcp");
        let auth = auth.clone();
        async move {
            let h = [
                ("authorization", auth.as_str()),
                ("mcp-session-id", sid.as_str()),
            ];
            send(Method::DELETE, &url, &h, bytes::Bytes::new()).await
        }
    };
    assert_eq!(del(sid.clone()).await.status, 200);
    let r = rpc(&gw, "/mcp", k, &with, &request(6, "ping", json!({}))).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(del(sid).await.status, 404);
    let r = rpc(
        &gw,
        "/mcp",
        k,
        &[("mcp-session-id", "made-up")],
        &request(7, "ping", json!({})),
    )
    .await;
    assert_eq!(r.status, 404);

    // versions: an unknown one in the header is refused; initialize falls back to the newest
    let r = rpc(
        &gw,
        "/mcp",
        k,
        &[("mcp-protocol-version", "1999-01-01")],
        &request(8, "ping", json!({})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let old = request(
        9,
        "initialize",
        json!({"protocolVersion": "1999-01-01", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    );
    let r = rpc(&gw, "/mcp", k, &[], &old).await;
    assert_eq!(r.json()["result"]["protocolVersion"], "2025-11-25");

    // oversize, other methods, unknown servers
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(5 << 20)
    );
    let r = rpc(&gw, "/mcp", k, &[], &big).await;
    assert_eq!(r.status, 413, "{}", r.text());
    let r = send(
        Method::GET,
        &gw.url("/mcp"),
        &[("authorization", auth.as_str())],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 405);
    let r = rpc(&gw, "/mcp/nope", k, &[], &request(1, "ping", json!({}))).await;
    assert_eq!(r.status, 404, "{}", r.text());
}
