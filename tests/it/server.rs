//! Server behaviour: h2c, graceful shutdown with a stream in flight, health routes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::common::mock_upstream::{MockUpstream, Reply, chat_stream_events};
use crate::common::{MASTER_KEY, TestGateway, eventually_async, one_model, send};

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
    // new connections are refused while draining
    let refused = eventually_async(Duration::from_secs(5), || async {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
    assert!(refused, "new connections were still accepted");
    assert!(!stopping.is_finished(), "drained before the stream ended");
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

#[tokio::test]
async fn serves_https_when_ssl_files_are_set() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");
    let yaml = format!(
        "model_list:\n  - model_name: demo\n    tianji_params: {{model: openai/x, mock_response: hi}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  ssl_certfile: {dir}/cert.pem\n  ssl_keyfile: {dir}/key.pem\n"
    );
    let gw = TestGateway::start(&yaml).await;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(format!("{dir}/ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::post("/v1/chat/completions")
        .header("host", "localhost")
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .body(Full::new(Bytes::from_static(
            br#"{"model":"demo","messages":[]}"#,
        )))
        .unwrap();
    let resp = tx.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("chat.completion"));
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = TestGateway::start(&format!(
        "model_list: []\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  header_read_timeout: 0.3\n"
    ))
    .await;
    let mut s = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
    s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let mut seen = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "connection stayed open");
    let text = String::from_utf8_lossy(&seen);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

/// `GET /routes`: every path of the route table with its methods, who may call it and its
/// description, for any valid key (not without one).
#[tokio::test]
async fn routes_lists_the_route_table() {
    let db = crate::common::db::TestDb::create().await;
    let gw = TestGateway::start(&format!(
        "general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{}\"\n",
        db.url
    ))
    .await;
    let r = send(
        http::Method::POST,
        &gw.url("/key/generate"),
        &[("authorization", &format!("Bearer {MASTER_KEY}"))],
        Bytes::from_static(b"{}"),
    )
    .await;
    let key = r.json()["key"].as_str().unwrap().to_string();
    let r = send(http::Method::GET, &gw.url("/routes"), &[], Bytes::new()).await;
    r.assert_error(401);
    let r = send(
        http::Method::GET,
        &gw.url("/routes"),
        &[("authorization", &format!("Bearer {key}"))],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let listed = r.json()["routes"].as_array().unwrap().clone();
    let table = tianji::routes::list();
    let paths: usize = table.iter().map(|i| i.paths.len()).sum();
    assert_eq!(listed.len(), paths);
    for info in &table {
        for path in info.paths {
            let row = listed
                .iter()
                .find(|r| r["path"] == *path)
                .unwrap_or_else(|| panic!("{path} not listed"));
            assert_eq!(
                row["methods"],
                serde_json::json!(info.methods.names()),
                "{path}"
            );
            assert_eq!(row["access"], info.access, "{path}");
            assert_eq!(row["description"], info.about, "{path}");
        }
    }
    let one = |p: &str| listed.iter().find(|r| r["path"] == p).unwrap().clone();
    assert_eq!(
        one("/v1/chat/completions")["methods"],
        serde_json::json!(["POST"])
    );
    assert_eq!(one("/v1/chat/completions")["access"], "key");
    assert_eq!(one("/key/generate")["access"], "team_admin");
    assert_eq!(one("/key/info")["access"], "key_owner");
    assert_eq!(one("/health/liveliness")["access"], "public");
    assert_eq!(
        one("/v1/videos")["methods"],
        serde_json::json!(["GET", "HEAD", "POST"])
    );
}
