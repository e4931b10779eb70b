//! `otel` as a logs sink: each request's StandardLoggingPayload reaches the OTLP receiver of
//! `traces.rs` as one log record (over HTTP protobuf and over gRPC), with its severity, the
//! request's trace and span ids, and no secret; `OTEL_LOGS_EXPORTER=none` keeps the traces only.

use std::sync::Arc;

use serde_json::{Value, json};

use super::traces::{Collector, Log, Mode, WAIT, chat, config};
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply, default_reply};
use crate::common::{MASTER_KEY, TestGateway, eventually};

/// The model answers, or fails (500) when the prompt says "fail".
async fn upstream() -> MockUpstream {
    MockUpstream::with(Arc::new(|r: &Recorded| {
        if String::from_utf8_lossy(&r.body).contains("\"fail\"") {
            Reply::status(500, json!({"error": {"message": "upstream broke"}}))
        } else {
            default_reply(r)
        }
    }))
    .await
}

async fn failing_chat(gw: &TestGateway) -> crate::common::Resp {
    crate::common::send(
        http::Method::POST,
        &gw.url("/v1/chat/completions"),
        &[("authorization", &format!("Bearer {MASTER_KEY}"))],
        bytes::Bytes::from_static(
            br#"{"model":"m","messages":[{"role":"user","content":"fail"}]}"#,
        ),
    )
    .await
}

/// The record of the request with `call_id`, if it came.
fn record(c: &Collector, call_id: &str) -> Option<Log> {
    (c.logs().into_iter()).find(|l| l.attr("tianji.call_id") == Some(call_id))
}

/// One record per request, success INFO and failure ERROR, the payload as the body, the request
/// span's ids, no secret: over `protocol`.
async fn one_record_per_request(protocol: &str) -> Collector {
    let collector = Collector::start(Mode::Answer).await;
    let mock = upstream().await;
    let gw = TestGateway::start(&config(&mock, &collector.base(), protocol, 50)).await;
    let ok = chat(&gw, &[]).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let bad = failing_chat(&gw).await;
    assert_eq!(bad.status, 500, "{}", bad.text());
    let (ok_id, bad_id) = (
        ok.header("x-tianji-call-id").unwrap().to_string(),
        bad.header("x-tianji-call-id").unwrap().to_string(),
    );
    let both = || record(&collector, &ok_id).is_some() && record(&collector, &bad_id).is_some();
    assert!(
        eventually(WAIT, both).await,
        "records: {:#?}",
        collector.logs()
    );
    // the spans too, to match the records against
    let root = |id: &str| {
        (collector.spans().into_iter()).find(|s| {
            s.name == "Received Proxy Server Request" && s.attr("tianji.call_id") == Some(id)
        })
    };
    assert!(eventually(WAIT, || root(&ok_id).is_some() && root(&bad_id).is_some()).await);

    let via = if protocol == "grpc" { "grpc" } else { "http" };
    for (id, success) in [(&ok_id, true), (&bad_id, false)] {
        let logs: Vec<Log> = (collector.logs().into_iter())
            .filter(|l| l.attr("tianji.call_id") == Some(id.as_str()))
            .collect();
        assert_eq!(logs.len(), 1, "one record per request: {logs:#?}");
        let log = &logs[0];
        assert_eq!(log.via, via);
        assert_eq!(log.service, "tianji-test");
        let payload: Value = serde_json::from_str(&log.body).expect("the payload as JSON");
        assert_eq!(payload["id"], id.as_str());
        assert_eq!(payload["model_group"], "m");
        assert_eq!(log.attr("gen_ai.request.model"), Some("m"));
        let span = root(id).unwrap();
        assert_eq!((&log.trace, &log.span), (&span.trace, &span.span));
        if success {
            assert_eq!((log.severity, log.severity_text.as_str()), (9, "INFO"));
            assert_eq!(payload["status"], "success");
            assert_eq!(payload["prompt_tokens"], 9);
            assert_eq!(payload["completion_tokens"], 3);
            assert_eq!(log.attr("gen_ai.usage.total_tokens"), Some("12"));
            assert_eq!(log.attr("gen_ai.response.model"), Some("gpt-4o-mini"));
        } else {
            assert_eq!((log.severity, log.severity_text.as_str()), (17, "ERROR"));
            assert_eq!(payload["status"], "failure");
            assert_eq!(log.attr("http.response.status_code"), Some("500"));
            assert_eq!(log.attr("error.type"), Some("InternalServerError"));
        }
    }
    for l in collector.logs() {
        let all = format!("{} {:?}", l.body, l.attrs);
        assert!(
            !all.contains("sk-provider-secret") && !all.contains(MASTER_KEY),
            "a secret in {all}"
        );
    }
    collector
}

#[tokio::test]
async fn each_request_is_one_log_record_over_http_protobuf() {
    one_record_per_request("http/protobuf").await;
}

#[tokio::test]
async fn each_request_is_one_log_record_over_grpc() {
    let c = one_record_per_request("grpc").await;
    assert!(c.json().is_empty());
}

#[tokio::test]
async fn otel_logs_exporter_none_keeps_the_traces_only() {
    let collector = Collector::start(Mode::Answer).await;
    let mock = upstream().await;
    let yaml = format!(
        "{}  OTEL_LOGS_EXPORTER: none\n",
        config(&mock, &collector.base(), "http/protobuf", 50)
    );
    let gw = TestGateway::start(&yaml).await;
    for _ in 0..3 {
        assert_eq!(chat(&gw, &[]).await.status, 200);
    }
    let roots = || {
        (collector.spans().iter())
            .filter(|s| s.name == "Received Proxy Server Request")
            .count()
    };
    assert!(eventually(WAIT, || roots() == 3).await);
    // shutting down flushes every sink: none sent a record
    let state = gw.gw.state().clone();
    gw.gw.shutdown().await;
    assert!(collector.logs().is_empty(), "{:#?}", collector.logs());
    assert_eq!(state.callbacks.load().totals(), (0, 0, 0), "no sink ran");
}
