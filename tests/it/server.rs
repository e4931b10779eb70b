//! Server behaviour: h2c, graceful shutdown with a stream in flight, health routes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::common::mock_upstream::{MockUpstream, Reply, chat_stream_events};
use crate::common::{MASTER_KEY, TestGateway, one_model, send};

#[tokio::test]
async fn serves_h2c_with_prior_knowledge() {
    let up = MockUpstream::start().await;
    let gw = TestGateway::start(&one_model("m", "openai/x", &up.base(), "")).await;
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(HttpConnector::new());
    let req = http::Request::post(gw.url("/v1/chat/completions"))
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .body(Full::new(Bytes::from_static(
            br#"{"model":"m","messages":[]}"#,
        )))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_stream_finish() {
    let up = MockUpstream::with(Arc::new(|_| Reply::Sse {
        events: chat_stream_events("x", &["a", "b", "c"], false),
        gap: Duration::from_millis(200),
    }))
    .await;
    let gw = TestGateway::start(&one_model("m", "openai/x", &up.base(), "")).await;
    let url = gw.url("/v1/chat/completions");
    let addr = gw.addr();
    let req = http::Request::post(url)
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .body(Full::new(Bytes::from_static(
            br#"{"model":"m","stream":true,"messages":[]}"#,
        )))
        .unwrap();
    let resp = crate::common::client().request(req).await.unwrap();
    let mut body = resp.into_body();
    let _first = body.frame().await.unwrap().unwrap();
    let stopping = tokio::spawn(gw.gw.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;
    // new connections are refused while draining
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    let mut rest = Vec::new();
    while let Some(f) = body.frame().await {
        rest.extend_from_slice(&f.unwrap().into_data().unwrap_or_default());
    }
    assert!(
        String::from_utf8(rest)
            .unwrap()
            .ends_with("data: [DONE]\n\n")
    );
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn health_routes_are_public() {
    let gw = TestGateway::start("model_list: []\n").await;
    for p in ["/health/liveliness", "/health/liveness"] {
        let r = send(http::Method::GET, &gw.url(p), &[], Bytes::new()).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), "I'm alive!");
    }
    let r = send(
        http::Method::GET,
        &gw.url("/health/readiness"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.json()["status"], "healthy");
}
