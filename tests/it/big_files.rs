//! A 200 MB file uploaded through the gateway and downloaded back, and a 200 MB video's content
//! downloaded: all stream, and the gateway process's peak resident memory stays under 100 MB
//! (read from /proc).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::net::TcpListener;

use crate::common::{GatewayProcess, MASTER_KEY, client};

const SIZE: u64 = 200 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// `SIZE` bytes in `CHUNK` pieces, never all in memory.
fn big_stream() -> impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send {
    let piece = Bytes::from(vec![b'x'; CHUNK]);
    let n = SIZE as usize / CHUNK;
    futures_util::stream::iter((0..n).map(move |_| Ok(Frame::data(piece.clone()))))
}

/// A provider that counts uploaded bytes and serves a big file, holding neither.
async fn provider(received: Arc<AtomicU64>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let received = received.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let received = received.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        let resp: Response<
                            http_body_util::combinators::BoxBody<Bytes, Infallible>,
                        > = if req.method() == Method::POST && path == "/v1/videos" {
                            let j = json!({"id": "video_big", "object": "video", "status": "completed", "seconds": "4", "model": "sora-2"});
                            Response::new(
                                http_body_util::Full::new(Bytes::from(j.to_string()))
                                    .map_err(|e| match e {})
                                    .boxed(),
                            )
                        } else if req.method() == Method::POST && path == "/v1/files" {
                            let mut body = req.into_body();
                            let mut n = 0u64;
                            while let Some(Ok(f)) = body.frame().await {
                                if let Ok(d) = f.into_data() {
                                    n += d.len() as u64;
                                }
                            }
                            received.store(n, Ordering::SeqCst);
                            let j = json!({"id": "file-big", "object": "file", "bytes": n, "purpose": "batch"});
                            Response::new(
                                http_body_util::Full::new(Bytes::from(j.to_string()))
                                    .map_err(|e| match e {})
                                    .boxed(),
                            )
                        } else {
                            let mut r = Response::new(StreamBody::new(big_stream()).boxed());
                            r.headers_mut()
                                .insert("content-length", SIZE.to_string().parse().unwrap());
                            r
                        };
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_upload_and_download_stream_through_in_under_100_mb() {
    let received = Arc::new(AtomicU64::new(0));
    let addr = provider(received.clone()).await;
    let gw = GatewayProcess::start(&format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"http://{addr}/v1\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  max_request_size_mb: 1024\n"
    ))
    .await;
    let before = gw.peak_rss();

    // upload: a multipart form around 200 MB, streamed by the client
    let boundary = "big-boundary";
    let head = Bytes::from(format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jsonl\"\r\n\r\n"
    ));
    let tail = Bytes::from(format!("\r\n--{boundary}--\r\n"));
    let total = head.len() as u64 + SIZE + tail.len() as u64;
    let frames = futures_util::stream::iter([Ok::<_, Infallible>(Frame::data(head))])
        .chain(big_stream())
        .chain(futures_util::stream::iter([Ok(Frame::data(tail))]));
    use futures_util::StreamExt;
    let req = Request::post(gw.url("/v1/files?model=gpt"))
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("content-length", total)
        .body(StreamBody::new(frames))
        .unwrap();
    let c = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let resp = c.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(received.load(Ordering::SeqCst), total);
    let id = v["id"].as_str().unwrap().to_string();

    // download: 200 MB streamed back
    let req = Request::get(gw.url(&format!("/v1/files/{id}/content")))
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap();
    let resp = client().request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut got = 0u64;
    while let Some(f) = body.frame().await {
        if let Ok(d) = f.unwrap().into_data() {
            got += d.len() as u64;
        }
    }
    assert_eq!(got, SIZE);

    // a 200 MB video: its content streams through the same way
    let req = Request::post(gw.url("/v1/videos"))
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from(
            json!({"model": "gpt", "prompt": "a long take"}).to_string(),
        )))
        .unwrap();
    let resp = client().request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let video = v["id"].as_str().unwrap().to_string();
    let req = Request::get(gw.url(&format!("/v1/videos/{video}/content")))
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap();
    let resp = client().request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut got = 0u64;
    while let Some(f) = body.frame().await {
        if let Ok(d) = f.unwrap().into_data() {
            got += d.len() as u64;
        }
    }
    assert_eq!(got, SIZE);

    let peak = gw.peak_rss();
    eprintln!(
        "gateway peak RSS: {:.1} MB before, {:.1} MB after 200 MB up, 200 MB down and a 200 MB video down",
        before as f64 / 1048576.0,
        peak as f64 / 1048576.0
    );
    assert!(
        peak > 0 && peak < 100 * 1024 * 1024,
        "peak RSS {peak} bytes"
    );
}
