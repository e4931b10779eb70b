//! SSE relay: chunk by chunk, [DONE] kept, usage requested upstream but hidden, cancellation.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::common::mock_upstream::{MockUpstream, Reply, chat_stream_events};
use crate::common::{MASTER_KEY, TestGateway, client, eventually, one_model, stream};

const CHAT: &str = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

#[tokio::test]
async fn first_chunk_reaches_the_client_before_the_last_is_produced() {
    let up = MockUpstream::with(Arc::new(|_| Reply::Sse {
        events: chat_stream_events("x", &["a", "b", "c", "d"], true),
        gap: Duration::from_millis(250),
    }))
    .await;
    let gw = TestGateway::start(&one_model("m", "openai/x", &up.base(), "")).await;
    let req = http::Request::post(gw.url("/v1/chat/completions"))
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .body(Full::new(Bytes::from(CHAT)))
        .unwrap();
    let resp = client().request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("\"a\""));
    let total = chat_stream_events("x", &["a", "b", "c", "d"], true).len();
    let produced = up.sent_events.load(Ordering::SeqCst);
    assert!(
        produced < total,
        "upstream had produced {produced} of {total} events before the client saw the first"
    );
    let mut rest = Vec::new();
    while let Some(f) = body.frame().await {
        rest.extend_from_slice(&f.unwrap().into_data().unwrap_or_default());
    }
    let rest = String::from_utf8(rest).unwrap();
    assert!(rest.ends_with("data: [DONE]\n\n"), "{rest}");
}

#[tokio::test]
async fn usage_is_requested_upstream_and_hidden_unless_the_client_asked() {
    let up = MockUpstream::start().await;
    let gw = TestGateway::start(&one_model("m", "openai/x", &up.base(), "")).await;
    let s = stream(&gw.url("/v1/chat/completions"), CHAT).await;
    assert_eq!(s.status, 200);
    let text = s.text();
    assert_eq!(up.last().json()["stream_options"]["include_usage"], true);
    assert!(
        text.contains("Hello") && text.ends_with("data: [DONE]\n\n"),
        "{text}"
    );
    assert!(!text.contains("prompt_tokens"), "{text}");

    let asked =
        r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#;
    let text = stream(&gw.url("/chat/completions"), asked).await.text();
    assert!(text.contains("\"prompt_tokens\":9"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_stream() {
    let up = MockUpstream::with(Arc::new(|_| Reply::Sse {
        events: chat_stream_events("x", &["a"; 50], false),
        gap: Duration::from_millis(100),
    }))
    .await;
    let gw = TestGateway::start(&one_model("m", "openai/x", &up.base(), "")).await;
    let req = http::Request::post(gw.url("/v1/chat/completions"))
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .body(Full::new(Bytes::from(CHAT)))
        .unwrap();
    let resp = client().request(req).await.unwrap();
    let mut body = resp.into_body();
    let _ = body.frame().await.unwrap().unwrap();
    drop(body);
    assert!(
        eventually(Duration::from_secs(5), || up
            .cancelled
            .load(Ordering::SeqCst)
            == 1)
        .await,
        "upstream stream was not cancelled"
    );
    assert!(up.sent_events.load(Ordering::SeqCst) < 20);
}

#[tokio::test]
async fn stream_timeout_before_first_byte_is_a_json_504_and_mid_stream_an_error_event() {
    let up = MockUpstream::with(Arc::new(|r| {
        if r.json()["messages"][0]["content"] == "slow-start" {
            Reply::Delay(Duration::from_secs(5), Box::new(Reply::Hang))
        } else {
            Reply::Sse {
                events: chat_stream_events("x", &["a", "b"], false),
                gap: Duration::from_secs(5),
            }
        }
    }))
    .await;
    let gw = TestGateway::start(&one_model(
        "m",
        "openai/x",
        &up.base(),
        "      stream_timeout: 0.3\n",
    ))
    .await;
    let r = gw
        .post(
            "/v1/chat/completions",
            r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"slow-start"}]}"#,
        )
        .await;
    r.assert_error(504);
    let s = stream(&gw.url("/v1/chat/completions"), CHAT).await;
    assert_eq!(s.status, 200);
    let text = s.text();
    assert!(text.contains("\"a\""), "{text}");
    assert!(
        text.contains("stream_timeout") && text.contains("\"error\""),
        "{text}"
    );
    assert!(!text.contains("[DONE]"));
}

#[tokio::test]
async fn mock_response_streams_like_a_provider() {
    let gw = TestGateway::start("model_list:\n  - model_name: demo\n    tianji_params: {model: openai/x, mock_response: \"one two three\"}\n").await;
    let text = stream(
        &gw.url("/v1/chat/completions"),
        r#"{"model":"demo","stream":true,"messages":[],"stream_options":{"include_usage":true}}"#,
    )
    .await
    .text();
    assert!(
        text.contains("\"one \"") && text.contains("\"three\""),
        "{text}"
    );
    assert!(text.contains("\"usage\""));
    assert!(text.ends_with("data: [DONE]\n\n"));
}
