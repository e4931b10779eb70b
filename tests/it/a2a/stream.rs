//! `message/stream` and `tasks/resubscribe` relayed from a remote agent (our mock) as they
//! arrive, with the method name and `A2A-Version` the client sent; a stream that stalls ends with
//! a JSON-RPC error event (before its first event: a JSON-RPC error answer); so does one running
//! at the graceful-shutdown deadline; events split across chunks are passed on whole; a JSON
//! answer to a stream is relayed as it is; an agent that is down or never answers is a JSON-RPC
//! error, not a hang; an oversized body is a JSON-RPC error; a private agent URL is refused
//! without being named.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use super::*;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};
use crate::common::{MASTER_KEY, client, send};
use crate::it::admin_keys::setup_with;

fn body(method: &str) -> String {
    let params = if method.contains("ubscribe") {
        json!({"id": "task-1"})
    } else {
        json!({"message": {"kind": "message", "role": "user", "messageId": "m1",
            "parts": [{"kind": "text", "text": "hi"}]}})
    };
    json!({"jsonrpc": "2.0", "id": "s1", "method": method, "params": params}).to_string()
}

/// Three JSON-RPC results as SSE events, the first `n` of `m`.
fn events(id: &Value) -> Vec<String> {
    (1..=3)
        .map(|i| {
            let ev = json!({"jsonrpc": "2.0", "id": id, "result": {"kind": "status-update",
                "taskId": "task-1", "contextId": "c1", "final": i == 3,
                "status": {"state": if i == 3 { "completed" } else { "working" }}, "seq": i}});
            format!("data: {ev}\r\n\r\n")
        })
        .collect()
}

/// An agent that streams three events `gap` apart when asked for SSE.
fn streaming_agent(gap: Duration) -> impl Fn(&Recorded) -> Reply + Send + Sync {
    move |r: &Recorded| {
        let id = r.json()["id"].clone();
        if r.headers["accept"] == "text/event-stream" {
            Reply::Sse {
                events: events(&id),
                gap,
            }
        } else {
            Reply::status(
                200,
                json!({"jsonrpc": "2.0", "id": id, "result": {"ok": true}}),
            )
        }
    }
}

/// An agent whose card points at `agent`, with `params` as its `litellm_params`.
async fn agent_at(gw: &TestGateway, agent: &MockUpstream, name: &str, params: Value) -> String {
    let url = format!("{}/agent", agent.base());
    create(
        gw,
        name,
        json!({"agent_card_params": card(name, &url), "litellm_params": params}),
    )
    .await
}

/// Open a stream as `key`; the response head and the body to read.
async fn open(
    gw: &TestGateway,
    path: &str,
    key: &str,
    headers: &[(&str, &str)],
    body: String,
) -> http::Response<hyper::body::Incoming> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(gw.url(path))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    client()
        .request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .expect("request")
}

async fn rest(resp: http::Response<hyper::body::Incoming>) -> String {
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The JSON of each `data:` line of an SSE text.
fn data(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d.trim_end()).expect("event JSON"))
        .collect()
}

#[tokio::test]
async fn streams_are_relayed_as_they_arrive_with_the_clients_method_and_version() {
    let (_db, _up, gw) = setup_with(false, ALLOW_LOOPBACK).await;
    // the mock's pace: 150 ms between events, so the first reaches the client before the last
    // is sent
    let agent = MockUpstream::with(Arc::new(streaming_agent(Duration::from_millis(150)))).await;
    let id = agent_at(&gw, &agent, "streamer", json!({"api_key": AGENT_KEY})).await;
    let user = key(&gw, json!({})).await;

    let cases = [
        (format!("/a2a/{id}"), "message/stream", Some("0.3"), "0.3"),
        (
            format!("/a2a/{id}/message/stream"),
            "SendStreamingMessage",
            Some("1.0"),
            "1.0",
        ),
        // a 1.0 client that sent no version: the agent is told 1.0
        (
            format!("/v1/a2a/{id}/message/stream"),
            "SendStreamingMessage",
            None,
            "1.0",
        ),
        (format!("/a2a/{id}"), "tasks/resubscribe", None, ""),
        (format!("/a2a/{id}"), "SubscribeToTask", Some("1.0"), "1.0"),
    ];
    for (path, method, version, agent_saw) in cases {
        let before = agent.sent_events.load(Ordering::SeqCst);
        let mut h = vec![("a2a-extensions", "urn:x")];
        if let Some(v) = version {
            h.push(("a2a-version", v));
        }
        let mut resp = open(&gw, &path, &user, &h, body(method)).await;
        assert_eq!(resp.status(), 200, "{method}");
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let first = resp
            .body_mut()
            .frame()
            .await
            .expect("a first event")
            .expect("frame")
            .into_data()
            .expect("data");
        let sent = agent.sent_events.load(Ordering::SeqCst) - before;
        assert!(sent < 3, "{method}: the stream was held back until its end");
        let text = String::from_utf8_lossy(&first).into_owned() + &rest(resp).await;
        let got = data(&text);
        let seq: Vec<i64> = got
            .iter()
            .map(|e| e["result"]["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(seq, [1, 2, 3], "{method}: {text}");
        assert!(got.iter().all(|e| e["id"] == "s1"));

        let asked = agent.last();
        assert_eq!(asked.json()["method"], method, "the name the client sent");
        assert_eq!(asked.headers["accept"], "text/event-stream");
        assert_eq!(
            asked
                .headers
                .get("a2a-version")
                .map(|v| v.to_str().unwrap()),
            (!agent_saw.is_empty()).then_some(agent_saw),
            "{method}"
        );
        assert_eq!(asked.headers["a2a-extensions"], "urn:x");
        assert_eq!(
            asked.headers["authorization"],
            format!("Bearer {AGENT_KEY}").as_str()
        );
        assert!(!format!("{:?}", asked.headers).contains(&user));
    }

    // the task methods go out under the client's name too, answered whole
    for method in ["tasks/get", "GetTask", "CancelTask", "ListTasks"] {
        let b = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": {"id": "task-1"}});
        let auth = format!("Bearer {user}");
        let h = [("authorization", auth.as_str()), ("a2a-version", "1.0")];
        let r = send(
            Method::POST,
            &gw.url(&format!("/a2a/{id}")),
            &h,
            Bytes::from(b.to_string()),
        )
        .await;
        assert_eq!(ok(r)["result"]["ok"], true);
        let asked = agent.last();
        assert_eq!(asked.json()["method"], method);
        assert_eq!(asked.headers["accept"], "application/json");
    }
}

#[tokio::test]
async fn a_stream_that_stalls_ends_with_a_json_rpc_error_event() {
    let (_db, _up, gw) = setup_with(false, ALLOW_LOOPBACK).await;
    // the mock's pace: 30 s between events, far past the agent's 0.3 s timeout
    let agent = MockUpstream::with(Arc::new(streaming_agent(Duration::from_secs(30)))).await;
    let params = json!({"api_key": AGENT_KEY, "timeout": 0.3});
    let id = agent_at(&gw, &agent, "staller", params).await;
    let resp = open(
        &gw,
        &format!("/a2a/{id}"),
        MASTER_KEY,
        &[],
        body("message/stream"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let text = rest(resp).await;
    let got = data(&text);
    assert_eq!(got.len(), 2, "{text}");
    assert_eq!(got[0]["result"]["seq"], 1);
    assert_eq!(got[1]["id"], "s1");
    assert_eq!(got[1]["error"]["code"], -32603, "{text}");
    assert!(text.contains("event: error\n"), "{text}");
    assert!(
        got[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sent nothing"),
        "{text}"
    );

    // a stream that stalls before its first event is a JSON-RPC error, not a stream
    let mute = MockUpstream::with(Arc::new(|_: &Recorded| Reply::Sse {
        events: vec![String::new(), "data: {}\n\n".to_string()],
        gap: Duration::from_secs(30),
    }))
    .await;
    let params = json!({"timeout": 0.3});
    let id = agent_at(&gw, &mute, "mute", params).await;
    let resp = open(
        &gw,
        &format!("/a2a/{id}"),
        MASTER_KEY,
        &[],
        body("message/stream"),
    )
    .await;
    assert_eq!(resp.status(), 500);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: Value = serde_json::from_str(&rest(resp).await).unwrap();
    assert_eq!(
        (v["id"].as_str(), v["error"]["code"].as_i64()),
        (Some("s1"), Some(-32603))
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sent nothing"),
        "{v}"
    );
}

#[tokio::test]
async fn events_split_across_chunks_are_passed_on_whole_and_json_answers_as_they_are() {
    let (_db, _up, gw) = setup_with(false, ALLOW_LOOPBACK).await;
    let chunks = [
        "data: {\"a\"",
        ":1}\r\n",
        "\r\ndata: {\"b\":2}\n\ndata: {\"c\"",
        ":3}\n\n",
    ];
    let agent = MockUpstream::with(Arc::new(move |r: &Recorded| {
        if r.json()["params"]["message"]["parts"][0]["text"] == "json" {
            let id = r.json()["id"].clone();
            let e = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32001, "message": "Task not found"}});
            return Reply::status(200, e);
        }
        Reply::Raw {
            status: 200,
            content_type: "text/event-stream; charset=utf-8",
            chunks: chunks.iter().map(|c| Bytes::from_static(c.as_bytes())).collect(),
        }
    }))
    .await;
    let id = agent_at(&gw, &agent, "splitter", json!({})).await;
    let resp = open(
        &gw,
        &format!("/a2a/{id}"),
        MASTER_KEY,
        &[],
        body("message/stream"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(rest(resp).await, chunks.concat(), "nothing lost or added");

    let mut b: Value = serde_json::from_str(&body("message/stream")).unwrap();
    b["params"]["message"]["parts"][0]["text"] = json!("json");
    let resp = open(&gw, &format!("/a2a/{id}"), MASTER_KEY, &[], b.to_string()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: Value = serde_json::from_str(&rest(resp).await).unwrap();
    assert_eq!(v["error"]["code"], -32001);
    assert_eq!(v["id"], "s1");
}

#[tokio::test]
async fn agents_down_or_silent_and_bad_bodies_are_json_rpc_errors() {
    let (_db, _up, gw) = setup_with(
        false,
        &format!("{ALLOW_LOOPBACK}  max_request_size_mb: 0.001\n"),
    )
    .await;
    let code = |status: u16, text: &str| -> (u16, i64) {
        let v: Value = serde_json::from_str(text).unwrap_or_else(|_| panic!("{text}"));
        (status, v["error"]["code"].as_i64().unwrap_or(0))
    };
    // down (127.0.0.1:9): streaming or not, a JSON-RPC error before any event
    let down = create(&gw, "down", json!({})).await;
    for method in ["message/stream", "message/send", "SubscribeToTask"] {
        let resp = open(&gw, &format!("/a2a/{down}"), MASTER_KEY, &[], body(method)).await;
        let status = resp.status().as_u16();
        let ct = resp.headers()["content-type"].clone();
        assert_eq!(ct, "application/json", "{method}");
        assert_eq!(code(status, &rest(resp).await), (500, -32603), "{method}");
    }
    // silent: no answer within the agent's timeout
    let hang = MockUpstream::with(Arc::new(|_: &Recorded| Reply::Hang)).await;
    let params = json!({"timeout": 0.3});
    let silent = agent_at(&gw, &hang, "silent", params).await;
    for method in ["message/stream", "message/send"] {
        let resp = open(
            &gw,
            &format!("/a2a/{silent}"),
            MASTER_KEY,
            &[],
            body(method),
        )
        .await;
        let status = resp.status().as_u16();
        let text = rest(resp).await;
        assert_eq!(code(status, &text), (500, -32603), "{method}: {text}");
        assert!(text.contains("did not answer within"), "{text}");
    }
    // oversized: the reference's invalid request, never a 5xx
    let big = body("message/stream").replace("hi", &"x".repeat(4096));
    let resp = open(&gw, &format!("/a2a/{down}"), MASTER_KEY, &[], big).await;
    let status = resp.status().as_u16();
    assert_eq!(code(status, &rest(resp).await), (413, -32600));
    // missing params on the stream alias
    let bare = r#"{"jsonrpc": "2.0", "id": 1, "method": "message/stream"}"#;
    let path = format!("/a2a/{down}/message/stream");
    let resp = open(&gw, &path, MASTER_KEY, &[], bare.to_string()).await;
    let status = resp.status().as_u16();
    assert_eq!(code(status, &rest(resp).await), (400, -32602));
}

/// A stream still running at the graceful-shutdown deadline ends with the JSON-RPC error event,
/// and the gateway stops.
#[tokio::test]
async fn a_stream_running_at_the_shutdown_deadline_ends_with_an_error_event() {
    let extra = format!("{ALLOW_LOOPBACK}  graceful_shutdown_timeout: 1\n");
    let (_db, _up, gw) = setup_with(false, &extra).await;
    // the mock's pace: an event every 100 ms, 100 of them (10 s): longer than the deadline
    let agent = MockUpstream::with(Arc::new(|r: &Recorded| {
        let id = r.json()["id"].clone();
        let ev = json!({"jsonrpc": "2.0", "id": id, "result": {"kind": "status-update"}});
        Reply::Sse {
            events: vec![format!("data: {ev}\n\n"); 100],
            gap: Duration::from_millis(100),
        }
    }))
    .await;
    let id = agent_at(&gw, &agent, "long", json!({})).await;
    let resp = open(
        &gw,
        &format!("/a2a/{id}"),
        MASTER_KEY,
        &[],
        body("message/stream"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut text = String::new();
    while text.matches("status-update").count() < 2 {
        let f = body.frame().await.unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&f.into_data().unwrap_or_default()));
    }
    let stop = tokio::spawn(gw.gw.shutdown());
    let ended = tokio::time::timeout(Duration::from_secs(6), async {
        while let Some(Ok(f)) = body.frame().await {
            text.push_str(&String::from_utf8_lossy(&f.into_data().unwrap_or_default()));
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream ran past the deadline: {text}");
    let last = text.trim_end().rsplit("\n\n").next().unwrap_or_default();
    assert!(last.starts_with("event: error\ndata: "), "{text}");
    let ev: Value = serde_json::from_str(last.split_once("data: ").unwrap().1).unwrap();
    assert_eq!(
        (ev["id"].as_str(), ev["error"]["code"].as_i64()),
        (Some("s1"), Some(-32603))
    );
    assert!(
        ev["error"]["message"]
            .as_str()
            .unwrap()
            .contains("shutting down"),
        "{ev}"
    );
    tokio::time::timeout(Duration::from_secs(10), stop)
        .await
        .expect("the gateway did not stop")
        .unwrap();
}

/// An agent stored with a private URL (while that was allowed) is refused by a gateway that does
/// not allow them, without the caller learning the URL.
#[tokio::test]
async fn an_agent_on_a_private_address_is_refused_without_naming_it() {
    let db = crate::common::db::TestDb::create().await;
    let yaml = |extra: &str| {
        format!(
            "general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n{extra}",
            u = db.url
        )
    };
    let open_gw = TestGateway::start(&yaml(ALLOW_LOOPBACK)).await;
    let id = create(&open_gw, "inside", json!({})).await;
    let strict = TestGateway::start(&yaml("")).await;
    let resp = open(
        &strict,
        &format!("/a2a/{id}"),
        MASTER_KEY,
        &[],
        body("message/send"),
    )
    .await;
    assert_eq!(resp.status(), 500);
    let text = rest(resp).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], -32603, "{text}");
    assert!(text.contains("agent_allow_private_urls"), "{text}");
    assert!(
        !text.contains("127.0.0.1"),
        "the agent's URL was named: {text}"
    );
}
