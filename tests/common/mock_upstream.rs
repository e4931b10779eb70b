//! A provider we own: records every request and answers as told (JSON, SSE with pauses, delay,
//! error status, hang, dropped connection). Plain hyper on 127.0.0.1.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: http::Method,
    pub path: String,
    /// The query string ("" when none).
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What to answer.
#[derive(Debug, Clone)]
pub enum Reply {
    Json {
        status: u16,
        body: String,
        headers: Vec<(&'static str, String)>,
    },
    /// SSE events (each a full `data: ...\n\n`), with `gap` before each one after the first.
    Sse {
        events: Vec<String>,
        gap: Duration,
    },
    /// Any bytes with this status and content type, in `chunks` pieces sent one by one.
    Raw {
        status: u16,
        content_type: &'static str,
        chunks: Vec<Bytes>,
    },
    Delay(Duration, Box<Reply>),
    Hang,
    /// Close the connection without answering.
    Drop,
}

impl Reply {
    pub fn status(status: u16, body: Value) -> Reply {
        Reply::Json {
            status,
            body: body.to_string(),
            headers: vec![],
        }
    }
}

type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

pub struct MockUpstream {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    /// Streams whose receiver went away before the last event was sent.
    pub cancelled: Arc<AtomicUsize>,
    /// Events of streams sent so far (all streams).
    pub sent_events: Arc<AtomicUsize>,
    /// Requests being answered now, and the most there ever were at once.
    pub flights: Arc<Flights>,
}

/// Concurrency seen by the mock: a request is in flight until its answer (or stream) ends.
#[derive(Debug, Default)]
pub struct Flights {
    pub now: AtomicUsize,
    pub max: AtomicUsize,
}

/// One request in flight.
struct Flight(Arc<Flights>);

impl Flight {
    fn start(f: &Arc<Flights>) -> Self {
        let n = f.now.fetch_add(1, Ordering::SeqCst) + 1;
        f.max.fetch_max(n, Ordering::SeqCst);
        Flight(f.clone())
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl MockUpstream {
    /// `http://127.0.0.1:port/v1`
    pub fn base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().clone()
    }

    pub fn last(&self) -> Recorded {
        self.requests
            .lock()
            .last()
            .cloned()
            .expect("no request reached the mock")
    }

    /// Default behaviour: OpenAI-shaped answers for chat, completions, embeddings (stream or not).
    pub async fn start() -> Self {
        Self::with(Arc::new(default_reply)).await
    }

    pub async fn with(handler: Handler) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let cancelled = Arc::new(AtomicUsize::new(0));
        let sent_events = Arc::new(AtomicUsize::new(0));
        let flights = Arc::new(Flights::default());
        let (reqs, canc, sent) = (requests.clone(), cancelled.clone(), sent_events.clone());
        let fl = flights.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (h, reqs, canc, sent, fl) = (
                    handler.clone(),
                    reqs.clone(),
                    canc.clone(),
                    sent.clone(),
                    fl.clone(),
                );
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (h, reqs, canc, sent) =
                            (h.clone(), reqs.clone(), canc.clone(), sent.clone());
                        let flight = Flight::start(&fl);
                        async move { serve(req, h, reqs, canc, sent, flight).await }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self {
            addr,
            requests,
            cancelled,
            sent_events,
            flights,
        }
    }
}

type Out = Response<BoxBody<Bytes, Infallible>>;

async fn serve(
    req: Request<Incoming>,
    h: Handler,
    reqs: Arc<Mutex<Vec<Recorded>>>,
    canc: Arc<AtomicUsize>,
    sent: Arc<AtomicUsize>,
    flight: Flight,
) -> Result<Out, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let rec = Recorded {
        method: parts.method.clone(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts.headers,
        body,
    };
    let reply = h(&rec);
    reqs.lock().push(rec);
    render(reply, canc, sent, flight).await
}

async fn render(
    mut reply: Reply,
    canc: Arc<AtomicUsize>,
    sent: Arc<AtomicUsize>,
    flight: Flight,
) -> Result<Out, std::io::Error> {
    loop {
        match reply {
            Reply::Delay(d, inner) => {
                // the mock's pace: a slow upstream
                tokio::time::sleep(d).await;
                reply = *inner;
            }
            Reply::Hang => {
                // an upstream that never answers
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return Err(std::io::Error::other("hang"));
            }
            Reply::Drop => return Err(std::io::Error::other("drop")),
            Reply::Json {
                status,
                body,
                headers,
            } => {
                let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
                *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
                r.headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
                for (k, v) in headers {
                    r.headers_mut().insert(k, v.parse().unwrap());
                }
                return Ok(r);
            }
            Reply::Raw {
                status,
                content_type,
                chunks,
            } => {
                let _flight = flight;
                let frames = chunks
                    .into_iter()
                    .map(|c| Ok::<_, Infallible>(Frame::data(c)));
                let body = StreamBody::new(futures_util::stream::iter(frames));
                let mut r = Response::new(BodyExt::boxed(body));
                *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
                r.headers_mut()
                    .insert("content-type", content_type.parse().unwrap());
                return Ok(r);
            }
            Reply::Sse { events, gap } => {
                let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
                tokio::spawn(async move {
                    let _flight = flight;
                    let n = events.len();
                    for (i, ev) in events.into_iter().enumerate() {
                        if i > 0 {
                            // the mock's pace: one event every `gap`
                            tokio::time::sleep(gap).await;
                        }
                        if tx.send(Ok(Frame::data(Bytes::from(ev)))).await.is_err() {
                            canc.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                        sent.fetch_add(1, Ordering::SeqCst);
                        let _ = n;
                    }
                });
                let body = StreamBody::new(tokio_stream_from(rx));
                let mut r = Response::new(BodyExt::boxed(body));
                r.headers_mut()
                    .insert("content-type", "text/event-stream".parse().unwrap());
                return Ok(r);
            }
        }
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A chat completion answer in OpenAI's shape.
pub fn chat_completion(model: &str, content: &str) -> Value {
    json!({
        "id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
    })
}

/// SSE events of a streamed chat completion; the usage chunk only if `include_usage`.
pub fn chat_stream_events(model: &str, words: &[&str], include_usage: bool) -> Vec<String> {
    let mut v = Vec::new();
    let usage_null = if include_usage { ",\"usage\":null" } else { "" };
    for w in words {
        v.push(format!(
            "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"{model}\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{w}\"}},\"finish_reason\":null}}]{usage_null}}}\n\n"
        ));
    }
    v.push(format!(
        "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"{model}\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}]{usage_null}}}\n\n"
    ));
    if include_usage {
        v.push(format!(
            "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"{model}\",\"choices\":[],\"usage\":{{\"prompt_tokens\":9,\"completion_tokens\":{},\"total_tokens\":{}}}}}\n\n",
            words.len(),
            9 + words.len()
        ));
    }
    v.push("data: [DONE]\n\n".to_string());
    v
}

pub fn default_reply(r: &Recorded) -> Reply {
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let model = body["model"].as_str().unwrap_or("unknown").to_string();
    let stream = body["stream"].as_bool().unwrap_or(false);
    let include_usage = body["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    if r.path.ends_with("/embeddings") {
        return Reply::status(
            200,
            json!({"object": "list", "model": model, "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
                   "usage": {"prompt_tokens": 2, "total_tokens": 2}}),
        );
    }
    if r.path.ends_with("/completions") && !r.path.ends_with("/chat/completions") {
        if stream {
            return Reply::Sse {
                events: vec![
                    format!(
                        "data: {{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"model\":\"{model}\",\"choices\":[{{\"index\":0,\"text\":\"hi\",\"finish_reason\":null}}]}}\n\n"
                    ),
                    "data: [DONE]\n\n".into(),
                ],
                gap: Duration::ZERO,
            };
        }
        return Reply::status(
            200,
            json!({"id": "cmpl-1", "object": "text_completion", "created": 1, "model": model,
                   "choices": [{"index": 0, "text": "once upon a time", "logprobs": null, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}),
        );
    }
    if stream {
        return Reply::Sse {
            events: chat_stream_events(&model, &["Hello", " world"], include_usage),
            gap: Duration::ZERO,
        };
    }
    Reply::status(200, chat_completion(&model, "Hello from the mock"))
}
