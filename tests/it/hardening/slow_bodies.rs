//! Issue 19 item 4: a request body that trickles in (`Content-Length: 1000`, one byte at a time)
//! is cut once `request_body_timeout` passes, on every kind of route: 408 with a JSON error,
//! then the connection closes. Connections beyond `max_connections_per_ip` are refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::db::TestDb;
use crate::common::mock_upstream::MockUpstream;
use crate::common::{MASTER_KEY, TestGateway, eventually, eventually_async};

/// Longest a trickled request may stay open in these tests (the timeout is 1 s).
const CUT_WITHIN: Duration = Duration::from_secs(10);
const BOUNDARY: &str = "slowXbody";

/// What a client trickling its body saw.
struct Outcome {
    /// The connection was closed by the gateway within [`CUT_WITHIN`].
    closed: bool,
    /// Everything the gateway sent.
    answer: String,
}

impl Outcome {
    fn assert_cut(&self, what: &str) {
        assert!(self.closed, "{what}: the connection stayed open");
        assert!(
            self.answer.starts_with("HTTP/1.1 408"),
            "{what}: {}",
            self.answer
        );
        let body = self.answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(v["error"]["code"], "408", "{what}: {}", self.answer);
        assert_eq!(
            v["error"]["type"], "timeout_error",
            "{what}: {}",
            self.answer
        );
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("request_body_timeout")),
            "{what}: {}",
            self.answer
        );
    }
}

/// POST `path` declaring a 1000-byte body, send `first` at once, then one byte every 200 ms
/// (counted in `trickling` once the first has gone) until the gateway closes the connection
/// (or [`CUT_WITHIN`] passes).
async fn trickle(
    addr: std::net::SocketAddr,
    path: &str,
    content_type: &str,
    first: &[u8],
    trickling: Arc<AtomicUsize>,
) -> Outcome {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = tcp.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {MASTER_KEY}\r\nContent-Type: {content_type}\r\nContent-Length: 1000\r\n\r\n"
    );
    wr.write_all(head.as_bytes()).await.unwrap();
    wr.write_all(first).await.unwrap();
    let sent = first.len();
    let writer = tokio::spawn(async move {
        for i in sent..999 {
            // a slow client's pace
            tokio::time::sleep(Duration::from_millis(200)).await;
            if wr.write_all(b" ").await.is_err() {
                return;
            }
            if i == sent {
                trickling.fetch_add(1, Ordering::SeqCst);
            }
        }
        // never the last byte: the body stays incomplete
        std::future::pending::<()>().await;
    });
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(CUT_WITHIN, async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    writer.abort();
    Outcome {
        closed,
        answer: String::from_utf8_lossy(&seen).into_owned(),
    }
}

fn gateway_yaml(up: &MockUpstream, extra: &str) -> String {
    format!(
        "model_list:
  - model_name: m
    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up, use_in_pass_through: true}}
  - model_name: stt
    tianji_params: {{model: openai/whisper-1, api_base: \"{b}\", api_key: sk-up}}
general_settings:
  master_key: {MASTER_KEY}
  request_body_timeout: 1
{extra}",
        b = up.base()
    )
}

/// A normal chat request's status, through the gateway at `addr`.
async fn chat(addr: std::net::SocketAddr) -> u16 {
    crate::common::chat_status(&format!("http://{addr}/v1/chat/completions")).await
}

#[tokio::test]
async fn forty_trickling_bodies_are_cut_while_normal_requests_are_served() {
    let up = MockUpstream::start().await;
    let gw = TestGateway::start(&gateway_yaml(&up, "")).await;
    let addr = gw.addr();
    let t0 = Instant::now();
    let trickling = Arc::new(AtomicUsize::new(0));
    let attackers: Vec<_> = (0..40)
        .map(|_| {
            let trickling = trickling.clone();
            tokio::spawn(async move {
                trickle(
                    addr,
                    "/v1/chat/completions",
                    "application/json",
                    b"{",
                    trickling,
                )
                .await
            })
        })
        .collect();
    // the gateway keeps serving while the attack runs (all 40 trickling)
    let running = eventually(CUT_WITHIN, || trickling.load(Ordering::SeqCst) == 40).await;
    assert!(running, "the attackers never all trickled");
    assert_eq!(chat(addr).await, 200);
    for a in attackers {
        a.await.unwrap().assert_cut("chat");
    }
    assert!(t0.elapsed() < CUT_WITHIN + Duration::from_secs(2));
    assert_eq!(chat(addr).await, 200);
}

#[tokio::test]
async fn slow_bodies_are_cut_on_uploads_admin_and_pass_through_routes() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let gw = TestGateway::start(&gateway_yaml(
        &up,
        &format!("  database_url: \"{}\"\n", db.url),
    ))
    .await;
    let addr = gw.addr();
    let multipart = format!("multipart/form-data; boundary={BOUNDARY}");
    // the model part at once, then the file slowly: the upload is streamed to the upstream
    let model_first = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nstt\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
    );
    let cases: Vec<(&str, &str, String, Vec<u8>)> = vec![
        (
            "upload, streamed to the upstream",
            "/v1/audio/transcriptions",
            multipart.clone(),
            model_first.into_bytes(),
        ),
        (
            "upload, before its model field",
            "/v1/audio/transcriptions",
            multipart.clone(),
            format!("--{BOUNDARY}\r\n").into_bytes(),
        ),
        (
            "admin",
            "/key/generate",
            "application/json".into(),
            b"{".to_vec(),
        ),
        (
            "provider pass-through",
            "/openai/v1/chat/completions",
            "application/json".into(),
            b"{".to_vec(),
        ),
        (
            "responses",
            "/v1/responses",
            "application/json".into(),
            b"{".to_vec(),
        ),
    ];
    let runs: Vec<_> = cases
        .into_iter()
        .map(|(what, path, ct, first)| {
            let trickling = Arc::new(AtomicUsize::new(0));
            tokio::spawn(async move { (what, trickle(addr, path, &ct, &first, trickling).await) })
        })
        .collect();
    for r in runs {
        let (what, outcome) = r.await.unwrap();
        outcome.assert_cut(what);
    }
    assert_eq!(chat(addr).await, 200);
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A kept-alive HTTP/1.1 connection to `addr`.
async fn connect(addr: std::net::SocketAddr) -> (Sender, tokio::task::JoinHandle<()>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    (tx, task)
}

async fn liveness(tx: &mut Sender) -> Result<u16, String> {
    let req = Request::get("/health/liveliness")
        .header("host", "gw")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tx.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    resp.into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(status)
}

#[tokio::test]
async fn connections_beyond_the_per_address_cap_are_refused() {
    let up = MockUpstream::start().await;
    let gw = TestGateway::start(&gateway_yaml(&up, "  max_connections_per_ip: 4\n")).await;
    let addr = gw.addr();
    let mut open = Vec::new();
    for _ in 0..4 {
        let (mut tx, task) = connect(addr).await;
        assert_eq!(liveness(&mut tx).await, Ok(200));
        open.push((tx, task));
    }
    // a fifth is closed at once
    let (mut fifth, _task) = connect(addr).await;
    let refused = tokio::time::timeout(Duration::from_secs(5), liveness(&mut fifth))
        .await
        .expect("the fifth connection was neither served nor closed");
    assert!(refused.is_err(), "{refused:?}");
    // the four open ones still work
    for (tx, _) in &mut open {
        assert_eq!(liveness(tx).await, Ok(200));
    }
    // one closes: its place is free again
    let (tx, task) = open.pop().unwrap();
    drop(tx);
    task.abort();
    let _ = task.await;
    let served = eventually_async(Duration::from_secs(5), || async {
        let (mut tx, _task) = connect(addr).await;
        liveness(&mut tx).await == Ok(200)
    })
    .await;
    assert!(served, "the freed place was not given to a new connection");
}
