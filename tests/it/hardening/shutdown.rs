//! Issue 19, item 5, beyond the LLM-route stream (in `streams.rs`): at the graceful-shutdown
//! deadline a provider pass-through stream ends with the provider's own error event, a request
//! still waiting for its answer gets a 503, and a stream whose client stopped reading is closed;
//! each request keeps exactly one SpendLogs row saying it was cut.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use super::streams::rows;
use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply, chat_stream_events};
use crate::common::{MASTER_KEY, TestGateway, client, eventually};

/// A gateway with a database and a 1 s graceful-shutdown deadline: `gpt` (openai at `up`) and
/// `claude` (anthropic at `up`).
async fn gateway(db: &TestDb, up: &MockUpstream) -> TestGateway {
    TestGateway::start(&format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up}}\n  - model_name: claude\n    tianji_params: {{model: anthropic/claude-sonnet-4-5, api_base: \"http://{a}\", api_key: sk-ant, use_in_pass_through: true}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n  graceful_shutdown_timeout: 1\n",
        b = up.base(),
        a = up.addr,
        u = db.url
    ))
    .await
}

fn post(gw: &TestGateway, path: &str, body: &str) -> http::Request<Full<Bytes>> {
    http::Request::post(gw.url(path))
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// A long Anthropic stream: message_start, then a text delta every 100 ms.
fn long_anthropic(_: &Recorded) -> Reply {
    let mut events = vec![
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n".to_string(),
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_string(),
    ];
    events.extend((0..100).map(|_| {
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"tok\"}}\n\n".to_string()
    }));
    Reply::Sse {
        events,
        gap: Duration::from_millis(100),
    }
}

/// A provider pass-through stream (`/anthropic/v1/messages`) running at the deadline ends with
/// Anthropic's `error` event, and its row is kept: failed, saying the gateway cut it.
#[tokio::test]
async fn a_pass_through_stream_cut_at_the_deadline_ends_with_the_providers_error_event() {
    let db = TestDb::create().await;
    let up = MockUpstream::with(Arc::new(long_anthropic)).await;
    let gw = gateway(&db, &up).await;
    let body = r#"{"model":"claude-sonnet-4-5","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"tell me a story"}]}"#;
    let resp = client()
        .request(post(&gw, "/anthropic/v1/messages", body))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut text = String::new();
    while text.matches("\"tok\"").count() < 3 {
        let f = body.frame().await.unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&f.into_data().unwrap_or_default()));
    }

    let stop = tokio::spawn(gw.gw.shutdown());
    // ~10 s of stream left: it must end at the 1 s deadline instead
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
    assert_eq!(ev["type"], "error", "{ev}");
    assert!(
        ev["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("shutting down"),
        "{ev}"
    );
    tokio::time::timeout(Duration::from_secs(10), stop)
        .await
        .expect("the gateway did not stop")
        .unwrap();

    let rows = rows(&db).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (status, _, completion, error) = &rows[0];
    assert_eq!(status, "failure", "{rows:?}");
    assert!(*completion >= 3, "{rows:?}");
    assert!(error.contains("shutting down"), "{rows:?}");
}

/// A request still waiting for its provider's answer at the deadline is answered 503 (a JSON
/// error) and keeps its row, failed with the same reason.
#[tokio::test]
async fn a_request_waiting_for_its_answer_at_the_deadline_gets_a_503_and_keeps_its_row() {
    let db = TestDb::create().await;
    let up = MockUpstream::with(Arc::new(|_: &Recorded| Reply::Hang)).await;
    let gw = gateway(&db, &up).await;
    let call = tokio::spawn(client().request(post(
        &gw,
        "/v1/chat/completions",
        r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}]}"#,
    )));
    assert!(
        eventually(Duration::from_secs(5), || up.requests().len() == 1).await,
        "the request never reached the provider"
    );

    let stop = tokio::spawn(gw.gw.shutdown());
    let resp = tokio::time::timeout(Duration::from_secs(6), call)
        .await
        .expect("the request ran past the deadline")
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 503);
    let v: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("shutting down"), "{v}");
    tokio::time::timeout(Duration::from_secs(10), stop)
        .await
        .expect("the gateway did not stop")
        .unwrap();

    let rows = rows(&db).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "failure", "{rows:?}");
    assert!(rows[0].3.contains("shutting down"), "{rows:?}");
}

/// A client that stops reading its stream cannot hold the gateway past the deadline: its
/// connection is closed and the request keeps its row, failed as cut at shutdown.
#[tokio::test]
async fn a_stream_its_client_stopped_reading_is_closed_and_keeps_its_row() {
    let db = TestDb::create().await;
    // ~40 MB of chunks sent as fast as they can go: far more than loopback socket buffers hold
    let word = "x".repeat(8 << 10);
    let words: Vec<&str> = vec![word.as_str(); 5000];
    let events = chat_stream_events("gpt-4o", &words, true);
    let up = MockUpstream::with(Arc::new(move |_: &Recorded| Reply::Sse {
        events: events.clone(),
        gap: Duration::ZERO,
    }))
    .await;
    let gw = gateway(&db, &up).await;
    let resp = client()
        .request(post(
            &gw,
            "/v1/chat/completions",
            r#"{"model":"gpt","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    body.frame().await.unwrap().unwrap();
    // the client stops reading; the gateway fills the socket and waits
    let sent = || up.sent_events.load(std::sync::atomic::Ordering::SeqCst);
    let (mut last, mut same) = (sent(), 0);
    assert!(
        eventually(Duration::from_secs(20), || {
            let now = sent();
            same = if now == last && now > 10 { same + 1 } else { 0 };
            last = now;
            same >= 5
        })
        .await,
        "the upstream never stalled"
    );
    assert!(sent() < 5000, "the whole stream went through");

    tokio::time::timeout(Duration::from_secs(10), gw.gw.shutdown())
        .await
        .expect("a client that stopped reading held the gateway past the deadline");
    drop(body);

    let rows = rows(&db).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "failure", "{rows:?}");
    assert!(rows[0].3.contains("shutting down"), "{rows:?}");
}
