//! Issue 19, items 5 and 8: streams that do not end cleanly. A stream cut at the
//! graceful-shutdown deadline ends with an error event and keeps its SpendLogs row; an upstream
//! stream that closes without its end marker, and an upstream 200 whose body is not JSON, are
//! upstream failures (an error event, a 502) with failed rows, and no translation invents a
//! stop reason for them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply, chat_stream_events};
use crate::common::{MASTER_KEY, TestGateway, client, stream};

/// A gateway with a database, `gpt` (openai/gpt-4o at `oai`) and, when given, `claude`
/// (anthropic at `ant`).
async fn gateway(db: &TestDb, oai: &MockUpstream, ant: Option<&MockUpstream>) -> TestGateway {
    let claude = ant.map_or(String::new(), |a| {
        format!(
            "  - model_name: claude\n    tianji_params: {{model: anthropic/claude-sonnet-4-5, api_base: \"http://{}\", api_key: sk-ant}}\n",
            a.addr
        )
    });
    TestGateway::start(&format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up}}\n{claude}general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n  graceful_shutdown_timeout: 1\n",
        b = oai.base(),
        u = db.url
    ))
    .await
}

/// The SpendLogs rows: (status, prompt tokens, completion tokens, error message).
pub(super) async fn rows(db: &TestDb) -> Vec<(String, i32, i32, String)> {
    let sql = "SELECT status, prompt_tokens, completion_tokens, metadata FROM \"TianjiLLM_SpendLogs\" ORDER BY \"startTime\"";
    db.client()
        .await
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let meta: Value = r.get(3);
            let msg = meta["error_information"]["error_message"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (r.get(0), r.get(1), r.get(2), msg)
        })
        .collect()
}

/// The last SSE event of `text` (the block after the last blank line).
fn last_event(text: &str) -> &str {
    text.trim_end().rsplit("\n\n").next().unwrap_or_default()
}

/// An OpenAI chat chunk carrying `content` (no finish reason).
fn chunk(content: &str) -> String {
    format!(
        "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{content}\"}},\"finish_reason\":null}}]}}\n\n"
    )
}

const CHAT_STREAM: &str =
    r#"{"model":"gpt","stream":true,"messages":[{"role":"user","content":"tell me a story"}]}"#;

/// Item 5: at the graceful-shutdown deadline a running stream gets an error event before its
/// end, and its request keeps exactly one SpendLogs row (failed, with the tokens so far).
#[tokio::test]
async fn a_stream_cut_at_the_shutdown_deadline_ends_with_an_error_and_keeps_its_row() {
    let db = TestDb::create().await;
    let up = MockUpstream::with(Arc::new(|_: &Recorded| Reply::Sse {
        events: chat_stream_events("gpt-4o", &["tok"; 100], true),
        gap: Duration::from_millis(100),
    }))
    .await;
    let gw = gateway(&db, &up, None).await;
    let req = http::Request::post(gw.url("/v1/chat/completions"))
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(CHAT_STREAM)))
        .unwrap();
    let resp = client().request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut text = String::new();
    while text.matches("\"tok\"").count() < 3 {
        let f = body.frame().await.unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&f.into_data().unwrap_or_default()));
    }

    let stop = tokio::spawn(gw.gw.shutdown());
    // the stream has ~7 s to go: it must end at the 1 s deadline instead
    let ended = tokio::time::timeout(Duration::from_secs(6), async {
        while let Some(f) = body.frame().await {
            match f {
                Ok(f) => {
                    text.push_str(&String::from_utf8_lossy(&f.into_data().unwrap_or_default()))
                }
                Err(_) => break,
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the stream still ran past the deadline: {text}"
    );
    let last = last_event(&text);
    let ev: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap_or(last))
        .unwrap_or_else(|_| panic!("the stream did not end with an error event: {text}"));
    let msg = ev["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("shutting down"), "{ev}");
    assert!(!text.contains("[DONE]"), "{text}");
    tokio::time::timeout(Duration::from_secs(10), stop)
        .await
        .expect("the gateway did not stop")
        .unwrap();

    // flushed before the gateway stopped: exactly one row, failed, with the tokens so far
    let rows = rows(&db).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (status, prompt, completion, error) = &rows[0];
    assert_eq!(status, "failure", "{rows:?}");
    assert!(*prompt > 0 && *completion >= 3, "{rows:?}");
    assert!(error.contains("shutting down"), "{rows:?}");
}

/// Item 8: an OpenAI-compatible stream that closes without `[DONE]` or a finish reason ends
/// with an error event (after what arrived) and a failed row; one with a finish reason but no
/// `[DONE]` is complete.
#[tokio::test]
async fn an_openai_stream_closed_without_its_end_is_an_upstream_error() {
    let db = TestDb::create().await;
    let up = MockUpstream::with(Arc::new(|r: &Recorded| {
        let finish = r.text().contains("finish");
        let mut events = vec![chunk("Hel"), chunk("lo")];
        if finish {
            events.push(
                "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n".into(),
            );
        }
        Reply::Sse {
            events,
            gap: Duration::from_millis(5),
        }
    }))
    .await;
    let gw = gateway(&db, &up, None).await;

    let s = stream(&gw.url("/v1/chat/completions"), CHAT_STREAM).await;
    assert_eq!(s.status, 200);
    let text = s.text();
    assert!(
        text.contains("\"Hel\"") && text.contains("\"lo\""),
        "{text}"
    );
    let last = last_event(&text);
    let ev: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap_or(last))
        .unwrap_or_else(|_| panic!("no error event at the end: {text}"));
    assert!(
        ev["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ended before completion"),
        "{ev}"
    );
    assert_eq!(ev["error"]["code"], "502", "{ev}");
    assert!(!text.contains("[DONE]"), "{text}");

    let finished =
        r#"{"model":"gpt","stream":true,"messages":[{"role":"user","content":"finish"}]}"#;
    let text = stream(&gw.url("/v1/chat/completions"), finished)
        .await
        .text();
    assert!(!text.contains("\"error\""), "{text}");

    gw.gw.shutdown().await;
    let rows = rows(&db).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].0, "failure", "{rows:?}");
    assert!(rows[0].3.contains("ended before completion"), "{rows:?}");
    assert_eq!(rows[1].0, "success", "{rows:?}");
}

/// An Anthropic stream cut before `message_stop` (message_start, one text delta).
fn cut_anthropic(_: &Recorded) -> Reply {
    Reply::Sse {
        events: vec![
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n".into(),
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".into(),
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n".into(),
        ],
        gap: Duration::from_millis(5),
    }
}

/// Item 8: a cut stream translated to or from Anthropic's format gets no invented
/// `stop_reason`/`finish_reason`: it ends with the client format's error event. Covered: an
/// Anthropic deployment read as chat chunks and as Messages events, and an OpenAI deployment's
/// stream without `[DONE]` read as Messages events.
#[tokio::test]
async fn a_cut_stream_gets_no_invented_stop_reason() {
    let db = TestDb::create().await;
    let ant = MockUpstream::with(Arc::new(cut_anthropic)).await;
    let oai = MockUpstream::with(Arc::new(|_: &Recorded| Reply::Sse {
        events: vec![chunk("Hel"), chunk("lo")],
        gap: Duration::from_millis(5),
    }))
    .await;
    let gw = gateway(&db, &oai, Some(&ant)).await;

    // an Anthropic deployment, a chat client: chunks, then the error; no finish, no [DONE]
    let chat = r#"{"model":"claude","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let text = stream(&gw.url("/v1/chat/completions"), chat).await.text();
    assert!(text.contains("\"Hello\""), "{text}");
    assert!(!text.contains("\"finish_reason\":\"stop\""), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    let last = last_event(&text);
    let ev: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap_or(last))
        .unwrap_or_else(|_| panic!("no error event at the end: {text}"));
    assert!(ev["error"]["message"].is_string(), "{ev}");

    // Messages clients, of the Anthropic deployment (its bytes as they come) and of the
    // OpenAI one (chat chunks translated): an `error` event ends the stream, no stop reason
    for model in ["claude", "gpt"] {
        let body = json!({"model": model, "max_tokens": 10, "stream": true,
            "messages": [{"role": "user", "content": "hi"}]});
        let text = stream(&gw.url("/v1/messages"), &body.to_string())
            .await
            .text();
        assert!(text.starts_with("event: message_start"), "{model}: {text}");
        assert!(!text.contains("end_turn"), "{model}: {text}");
        assert!(!text.contains("message_stop"), "{model}: {text}");
        let last = last_event(&text);
        assert!(last.starts_with("event: error\ndata: "), "{model}: {text}");
        let ev: Value = serde_json::from_str(last.split_once("data: ").unwrap().1).unwrap();
        assert_eq!(ev["type"], "error", "{model}: {ev}");
    }

    gw.gw.shutdown().await;
    let rows = rows(&db).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (status, prompt, _, error) in &rows {
        assert_eq!(status, "failure", "{rows:?}");
        assert!(error.contains("ended before completion"), "{rows:?}");
        assert!(*prompt > 0, "{rows:?}");
    }
    // the chat client's row has the input tokens Anthropic reported
    assert_eq!(rows[0].1, 25, "{rows:?}");
}

/// Item 8: a 200 whose body is not JSON is a 502 with a JSON error (not echoing the body) and
/// a failed row, on chat, embeddings and an Anthropic deployment.
#[tokio::test]
async fn a_200_with_invalid_json_is_a_502_and_a_failed_row() {
    let db = TestDb::create().await;
    let garbage = |_: &Recorded| Reply::Raw {
        status: 200,
        content_type: "application/json",
        chunks: vec![Bytes::from_static(
            b"{\"id\":\"chatcmpl-1\",\"choices\":[{\"message\":{\"content\":\"SECRET-UPSTREAM-TEXT",
        )],
    };
    let oai = MockUpstream::with(Arc::new(garbage)).await;
    let ant = MockUpstream::with(Arc::new(garbage)).await;
    let gw = gateway(&db, &oai, Some(&ant)).await;
    let calls = [
        (
            "/v1/chat/completions",
            json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}),
        ),
        ("/v1/embeddings", json!({"model": "gpt", "input": "hi"})),
        (
            "/v1/messages",
            json!({"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}),
        ),
    ];
    for (path, body) in &calls {
        let r = gw.post(path, &body.to_string()).await;
        let v = r.assert_error(502);
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("not valid JSON"), "{path}: {v}");
        assert!(!r.text().contains("SECRET-UPSTREAM-TEXT"), "{path}: {v}");
    }
    gw.gw.shutdown().await;
    let rows = rows(&db).await;
    assert_eq!(rows.len(), calls.len(), "{rows:?}");
    for (status, _, _, error) in &rows {
        assert_eq!(status, "failure", "{rows:?}");
        assert!(error.contains("not valid JSON"), "{rows:?}");
    }
}
