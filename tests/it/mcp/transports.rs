//! Issue 25, items 1, 2 and 6: the gateway's older SSE transport (`/mcp/sse`) with the SDK's
//! `sse_client` and by hand (the endpoint event, answers as `message` events, bad input, the
//! session and its upstream session ended with the stream), sessions capped per key, and
//! stdio upstream servers (FastMCP over stdin/stdout) that answer, hang and die.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tianji::mcp::sessions::MAX_PER_OWNER;
use tianji::mcp::sse::{Event, Events};

use super::*;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};

/// Sessions the gateway holds now.
fn sessions(gw: &TestGateway) -> usize {
    gw.gw.state().mcp.sessions.len()
}

async fn no_sessions_left(gw: &TestGateway) -> bool {
    eventually(Duration::from_secs(20), || sessions(gw) == 0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_sse_client_lists_and_calls_through_the_gateway() {
    let up = ToolServer::start("http").await;
    let yaml = format!(
        "general_settings:\n  master_key: {MASTER_KEY}\nmcp_servers:\n  up:\n    url: {}\n",
        up.url()
    );
    let gw = TestGateway::start(&yaml).await;
    let got = client(
        &gw.url("/mcp/sse"),
        MASTER_KEY,
        json!([
            {"op": "list"},
            {"op": "call", "name": "up-echo", "args": {"text": "over sse"}},
            {"op": "call", "name": "up-add", "args": {"a": 2, "b": 3}},
            {"op": "resources"},
            {"op": "read", "uri": "notes://today"},
            {"op": "call", "name": "up-nope"},
        ]),
    )
    .await;
    assert!(got[0]["session"].is_string(), "{}", got[0]);
    let listed = got[1].as_array().unwrap();
    assert!(listed.contains(&json!("up-echo")), "{listed:?}");
    assert_eq!(got[2], json!({"text": "http:over sse", "is_error": false}));
    assert_eq!(got[3]["text"], "5");
    assert_eq!(got[4], json!(["up-today notes://today"]));
    assert_eq!(got[5], "notes of http");
    // the server's own answer to a tool it does not have
    assert_eq!(got[6]["is_error"], true, "{}", got[6]);
    // one server's stream
    let got = client(&gw.url("/mcp/up/sse"), MASTER_KEY, json!([{"op": "list"}])).await;
    assert!(
        got[1]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.as_str().unwrap().starts_with("up-")),
        "{}",
        got[1]
    );
    // the client closed its streams: no session is left
    assert!(no_sessions_left(&gw).await, "{} sessions", sessions(&gw));
}

/// An open event stream read by hand.
struct Stream {
    body: Incoming,
    events: Events,
    ready: std::collections::VecDeque<Event>,
}

impl Stream {
    async fn open(gw: &TestGateway, path: &str, key: &str) -> (u16, Option<Self>) {
        let req = http::Request::get(gw.url(path))
            .header("authorization", format!("Bearer {key}"))
            .header("accept", "text/event-stream")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = crate::common::client().request(req).await.unwrap();
        let status = resp.status().as_u16();
        if status != 200 {
            return (status, None);
        }
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        let s = Self {
            body: resp.into_body(),
            events: Events::default(),
            ready: Default::default(),
        };
        (status, Some(s))
    }

    /// The next event (within 20 s).
    async fn next(&mut self) -> Event {
        let read = async {
            loop {
                if let Some(e) = self.ready.pop_front() {
                    return e;
                }
                let frame = self.body.frame().await.expect("the stream ended").unwrap();
                if let Ok(data) = frame.into_data() {
                    self.ready.extend(self.events.feed(&data).unwrap());
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), read)
            .await
            .expect("no event within 20 s")
    }

    /// Whether the stream ends (within 20 s).
    async fn ends(&mut self) -> bool {
        let read = async {
            loop {
                match self.body.frame().await {
                    None | Some(Err(_)) => return true,
                    Some(Ok(_)) => {}
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), read)
            .await
            .unwrap_or(false)
    }
}

fn mock_answer(id: &Value, result: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
}

/// A Streamable HTTP upstream: one tool `a`, sessions `up-{n}`.
async fn mock() -> MockUpstream {
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    MockUpstream::with(std::sync::Arc::new(move |r: &Recorded| {
        if r.method == http::Method::DELETE {
            return Reply::status(200, json!({}));
        }
        let body = r.json();
        let id = body["id"].clone();
        match body["method"].as_str().unwrap_or_default() {
            "initialize" => {
                let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                Reply::Json {
                    status: 200,
                    body: mock_answer(&id, json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "mock", "version": "1"}})),
                    headers: vec![("mcp-session-id", format!("up-{i}"))],
                }
            }
            "notifications/initialized" => Reply::Raw {
                status: 202,
                content_type: "application/json",
                chunks: vec![],
            },
            "tools/list" => Reply::Json {
                status: 200,
                // pretty-printed, over several lines: several `data:` lines on the stream
                body: serde_json::to_string_pretty(&json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [{"name": "a", "inputSchema": {"type": "object"}}]}})).unwrap(),
                headers: vec![],
            },
            _ => Reply::Json {
                status: 200,
                body: mock_answer(&id, json!({"content": [{"type": "text", "text": "done"}], "isError": false})),
                headers: vec![],
            },
        }
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_sessions_answer_on_their_stream_refuse_bad_input_and_end_with_it() {
    let up = mock().await;
    // a small body limit: an oversize message still fits the socket's buffers, so the 413
    // is read rather than the connection cut while the body is being written
    let yaml = format!(
        "general_settings:\n  master_key: {MASTER_KEY}\n  max_request_size_mb: 0.05\nmcp_servers:\n  mock:\n    url: http://{}/mcp\n",
        up.addr
    );
    let gw = TestGateway::start(&yaml).await;
    let k = MASTER_KEY;
    let (status, _) = Stream::open(&gw, "/mcp/sse", "sk-wrong").await;
    assert_eq!(status, 401);
    let (status, _) = Stream::open(&gw, "/mcp/nope/sse", k).await;
    assert_eq!(status, 404);

    let (_, s) = Stream::open(&gw, "/mcp/sse", k).await;
    let mut s = s.unwrap();
    let first = s.next().await;
    assert_eq!(first.name, "endpoint");
    let endpoint = first.data.clone();
    let sid = endpoint
        .strip_prefix("/mcp/sse/messages?session_id=")
        .unwrap_or_else(|| panic!("{endpoint}"))
        .to_string();
    assert_eq!(sessions(&gw), 1);

    let code = |r: &Resp| r.json()["error"]["code"].as_i64().unwrap();
    // bad input: answered on the POST itself
    let r = rpc(&gw, &endpoint, k, &[], "{nope").await;
    assert_eq!((r.status.as_u16(), code(&r)), (400, -32700), "{}", r.text());
    let r = rpc(&gw, &endpoint, k, &[], r#"{"jsonrpc":"2.0","id":1}"#).await;
    assert_eq!((r.status.as_u16(), code(&r)), (400, -32600), "{}", r.text());
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(100 << 10)
    );
    let r = rpc(&gw, &endpoint, k, &[], &big).await;
    assert_eq!((r.status.as_u16(), code(&r)), (413, -32600), "{}", r.text());
    for bad in [
        "/mcp/sse/messages?session_id=0123abcd".to_string(),
        "/mcp/sse/messages".to_string(),
        "/mcp/sse/messages?session_id=../x".to_string(),
    ] {
        let r = rpc(&gw, &bad, k, &[], &request(1, "ping", json!({}))).await;
        assert_eq!((r.status.as_u16(), code(&r)), (404, -32001), "{bad}");
    }
    // a Streamable HTTP session is not a stream's
    let init = request(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    );
    let other = rpc(&gw, "/mcp", k, &[], &init).await;
    let other = other.header("mcp-session-id").unwrap().to_string();
    let r = rpc(
        &gw,
        &format!("/mcp/sse/messages?session_id={other}"),
        k,
        &[],
        &request(1, "ping", json!({})),
    )
    .await;
    assert_eq!(r.status, 404);

    // requests: 202, answered on the stream in order of arrival
    let r = rpc(&gw, &endpoint, k, &[], &init).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let e = s.next().await;
    assert_eq!(e.name, "message");
    let v: Value = serde_json::from_str(&e.data).unwrap();
    assert_eq!(v["result"]["protocolVersion"], "2025-06-18", "{v}");
    let r = rpc(
        &gw,
        &endpoint,
        k,
        &[],
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
    assert_eq!(r.status, 202);
    rpc(&gw, &endpoint, k, &[], &request(2, "tools/list", json!({}))).await;
    let v: Value = serde_json::from_str(&s.next().await.data).unwrap();
    assert_eq!(v["id"], 2);
    assert_eq!(v["result"]["tools"][0]["name"], "mock-a", "{v}");
    rpc(
        &gw,
        &endpoint,
        k,
        &[],
        &request(3, "tools/call", json!({"name": "mock-a", "arguments": {}})),
    )
    .await;
    let v: Value = serde_json::from_str(&s.next().await.data).unwrap();
    assert_eq!(v["result"]["content"][0]["text"], "done", "{v}");
    rpc(&gw, &endpoint, k, &[], &request(4, "nope/nope", json!({}))).await;
    let v: Value = serde_json::from_str(&s.next().await.data).unwrap();
    assert_eq!(v["error"]["code"], -32601, "{v}");
    // one upstream session for the whole client session
    let inits = |up: &MockUpstream| {
        up.requests()
            .iter()
            .filter(|r| r.method == http::Method::POST && r.json()["method"] == "initialize")
            .count()
    };
    assert_eq!(inits(&up), 1);

    // the client goes away: its session ends, and with it the upstream session
    drop(s);
    let ended = eventually(Duration::from_secs(20), || {
        sessions(&gw) == 1
            && up.requests().iter().any(|r| {
                r.method == http::Method::DELETE
                    && r.headers.get("mcp-session-id").is_some_and(|v| v == "up-1")
            })
    })
    .await;
    assert!(ended, "{} sessions", sessions(&gw));
    let r = rpc(&gw, &endpoint, k, &[], &request(5, "ping", json!({}))).await;
    assert_eq!(r.status, 404);

    // ending the session (DELETE /mcp) ends its stream
    let (_, s) = Stream::open(&gw, "/mcp/sse", k).await;
    let mut s = s.unwrap();
    let sid2 = s.next().await.data.rsplit('=').next().unwrap().to_string();
    assert_ne!(sid2, sid);
    let auth = format!("Bearer {k}");
    let h = [
        ("authorization", auth.as_str()),
        ("mcp-session-id", sid2.as_str()),
    ];
    let r = send(Method::DELETE, &gw.url("/mcp"), &h, Bytes::new()).await;
    assert_eq!(r.status, 200);
    assert!(s.ends().await, "the stream outlived its session");

    // sessions per key are capped: streams and Streamable HTTP sessions alike
    let held = sessions(&gw);
    for _ in held..MAX_PER_OWNER {
        let r = rpc(&gw, "/mcp", k, &[], &init).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = rpc(&gw, "/mcp", k, &[], &init).await;
    assert_eq!((r.status.as_u16(), code(&r)), (429, -32000), "{}", r.text());
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("too many MCP sessions")
    );
    let (status, _) = Stream::open(&gw, "/mcp/sse", k).await;
    assert_eq!(status, 429);
    let h = [
        ("authorization", auth.as_str()),
        ("mcp-session-id", other.as_str()),
    ];
    assert_eq!(
        send(Method::DELETE, &gw.url("/mcp"), &h, Bytes::new())
            .await
            .status,
        200
    );
    let r = rpc(&gw, "/mcp", k, &[], &init).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Processes whose environment holds `marker`.
fn processes_with(marker: &str) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == marker.as_bytes()))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_servers_answer_hang_and_die_and_their_processes_end() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/mcp_tool_server.py"
    );
    let python = crate::it::sdk::python();
    let marker = format!("TIANJI_STDIO_TEST={}", uuid::Uuid::now_v7().simple());
    let (mk, mv) = marker.split_once('=').unwrap();
    let entry = |timeout: u32| {
        format!(
            "    transport: stdio\n    command: {python:?}\n    args: [{script:?}, stdio]\n    env: {{{mk}: {mv}}}\n    timeout: {timeout}\n",
        )
    };
    let yaml = format!(
        "general_settings:\n  master_key: {MASTER_KEY}\n  mcp_allow_stdio_servers: true\nmcp_servers:\n  local:\n{}  hasty:\n{}",
        entry(60),
        entry(8)
    );
    let gw = TestGateway::start(&yaml).await;
    let got = client(
        &gw.url("/mcp"),
        MASTER_KEY,
        json!([
            {"op": "list"},
            {"op": "call", "name": "local-echo", "args": {"text": "hi"}},
            {"op": "call", "name": "local-crash"},
            {"op": "call", "name": "local-echo", "args": {"text": "again"}},
            {"op": "call", "name": "hasty-slow", "args": {"seconds": 120}},
            {"op": "call", "name": "hasty-add", "args": {"a": 1, "b": 2}},
        ]),
    )
    .await;
    let listed = got[1].as_array().unwrap();
    assert!(
        listed.contains(&json!("local-echo")) && listed.contains(&json!("hasty-slow")),
        "{listed:?}"
    );
    assert_eq!(got[2], json!({"text": "stdio:hi", "is_error": false}));
    // the process died mid-call: an MCP error at once, and a new process for the next call
    assert_eq!(got[3]["code"], -32603, "{}", got[3]);
    assert!(
        !got[3]["error"].as_str().unwrap().contains("did not answer"),
        "{}",
        got[3]
    );
    assert_eq!(got[4], json!({"text": "stdio:again", "is_error": false}));
    // a hanging server: the server's timeout, and the session still serves
    assert_eq!(got[5]["code"], -32603, "{}", got[5]);
    assert!(
        got[5]["error"].as_str().unwrap().contains("did not answer"),
        "{}",
        got[5]
    );
    assert_eq!(got[6]["text"], "3", "{}", got[6]);
    // the client ended its session: its processes are gone
    assert!(no_sessions_left(&gw).await);
    let gone = eventually(Duration::from_secs(20), || processes_with(&marker) == 0).await;
    assert!(gone, "{} stdio processes left", processes_with(&marker));

    // the SSE transport reaches stdio servers too
    let got = client(
        &gw.url("/mcp/local/sse"),
        MASTER_KEY,
        json!([{"op": "call", "name": "local-echo", "args": {"text": "both"}}]),
    )
    .await;
    assert_eq!(got[1]["text"], "stdio:both");
    assert!(no_sessions_left(&gw).await);
    let gone = eventually(Duration::from_secs(20), || processes_with(&marker) == 0).await;
    assert!(gone, "{} stdio processes left", processes_with(&marker));
}
