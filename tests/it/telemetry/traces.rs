//! OpenTelemetry traces (`callbacks: [otel]`): a local OTLP receiver (HTTP, and gRPC over h2c)
//! decodes the exported `ExportTraceServiceRequest`s and `ExportLogsServiceRequest`s
//! (opentelemetry-proto) and the tests read back the span tree, the continued client trace and
//! the `traceparent` each upstream attempt carried; a dead or hanging collector leaves requests
//! answering as usual. The receiver is shared with the OTLP logs tests (`otel_logs.rs`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use parking_lot::Mutex;
use prost::Message;
use serde_json::json;
use tokio::net::TcpListener;

use crate::common::mock_upstream::{MockUpstream, Reply, default_reply};
use crate::common::{MASTER_KEY, TestGateway, eventually, one_model, send};

pub(super) const WAIT: Duration = Duration::from_secs(15);
const CLIENT_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_SPAN: &str = "b7ad6b7169203331";
const GRPC_TRACES: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const GRPC_LOGS: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// One exported span, as the receiver decoded it.
#[derive(Debug, Clone)]
pub(super) struct Got {
    pub name: String,
    pub trace: String,
    pub span: String,
    pub parent: String,
    pub attrs: Vec<(String, String)>,
    pub error: bool,
}

impl Got {
    pub fn attr(&self, k: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

/// One exported log record, as the receiver decoded it.
#[derive(Debug, Clone)]
pub(super) struct Log {
    pub body: String,
    pub severity: i32,
    pub severity_text: String,
    pub trace: String,
    pub span: String,
    pub attrs: Vec<(String, String)>,
    /// The resource's `service.name`.
    pub service: String,
    /// How it came: `http` or `grpc`.
    pub via: &'static str,
}

impl Log {
    pub fn attr(&self, k: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

/// How the receiver behaves.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Mode {
    Answer,
    Hang,
}

#[derive(Default)]
struct Received {
    spans: Mutex<Vec<Got>>,
    logs: Mutex<Vec<Log>>,
    json: Mutex<Vec<String>>,
    grpc_calls: AtomicUsize,
}

/// An OTLP receiver we own: OTLP/HTTP (`/v1/traces`, `/v1/logs`; protobuf bodies decoded, JSON
/// bodies kept raw) and OTLP/gRPC (h2c with prior knowledge, unary `Export` calls answered with
/// an empty framed response and `grpc-status: 0`).
pub(super) struct Collector {
    addr: SocketAddr,
    got: Arc<Received>,
    pub posts: Arc<AtomicUsize>,
}

type Answer = Response<BoxBody<Bytes, Infallible>>;

impl Collector {
    pub async fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let c = Collector {
            addr,
            got: Default::default(),
            posts: Default::default(),
        };
        let (got, posts) = (c.got.clone(), c.posts.clone());
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (got, posts) = (got.clone(), posts.clone());
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (got, posts) = (got.clone(), posts.clone());
                    async move {
                        posts.fetch_add(1, Ordering::SeqCst);
                        if mode == Mode::Hang {
                            std::future::pending::<()>().await;
                        }
                        Ok::<_, Infallible>(receive(req, &got).await)
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(sock), svc)
                        .await;
                });
            }
        });
        c
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn spans(&self) -> Vec<Got> {
        self.got.spans.lock().clone()
    }

    pub fn logs(&self) -> Vec<Log> {
        self.got.logs.lock().clone()
    }

    pub fn json(&self) -> Vec<String> {
        self.got.json.lock().clone()
    }

    /// gRPC `Export` calls answered.
    pub fn grpc_calls(&self) -> usize {
        self.got.grpc_calls.load(Ordering::SeqCst)
    }
}

async fn receive(req: Request<Incoming>, got: &Received) -> Answer {
    let path = req.uri().path().to_string();
    let content_type = (req.headers().get("content-type"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    if content_type.starts_with("application/grpc") {
        // a gRPC message: a 5-byte prefix (compressed flag, big-endian length) then protobuf
        assert_eq!(body[0], 0, "uncompressed");
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        let msg = body.slice(5..5 + len);
        match path.as_str() {
            GRPC_TRACES => spans(ExportTraceServiceRequest::decode(msg).unwrap(), got),
            GRPC_LOGS => logs(ExportLogsServiceRequest::decode(msg).unwrap(), got, "grpc"),
            other => panic!("unexpected gRPC method {other}"),
        }
        got.grpc_calls.fetch_add(1, Ordering::SeqCst);
        return grpc_ok();
    }
    assert!(
        path == "/v1/traces" || path == "/v1/logs",
        "unexpected path {path}"
    );
    if content_type.starts_with("application/json") {
        got.json
            .lock()
            .push(String::from_utf8_lossy(&body).into_owned());
    } else if path == "/v1/traces" {
        spans(
            ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export"),
            got,
        );
    } else {
        logs(
            ExportLogsServiceRequest::decode(body).expect("an OTLP protobuf export"),
            got,
            "http",
        );
    }
    Response::new(Full::new(Bytes::new()).boxed())
}

/// A successful unary gRPC answer: an empty message, then `grpc-status: 0` as trailers.
fn grpc_ok() -> Answer {
    let mut frame = BytesMut::with_capacity(5);
    frame.put_u8(0);
    frame.put_u32(0);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames = futures_util::stream::iter([
        Ok::<_, Infallible>(Frame::data(frame.freeze())),
        Ok(Frame::trailers(trailers)),
    ]);
    Response::builder()
        .header("content-type", "application/grpc")
        .body(StreamBody::new(frames).boxed())
        .unwrap()
}

fn spans(export: ExportTraceServiceRequest, got: &Received) {
    let mut out = got.spans.lock();
    for rs in export.resource_spans {
        for ss in rs.scope_spans {
            for s in ss.spans {
                out.push(Got {
                    name: s.name,
                    trace: hex(&s.trace_id),
                    span: hex(&s.span_id),
                    parent: hex(&s.parent_span_id),
                    attrs: (s.attributes.into_iter())
                        .map(|kv| (kv.key, text(kv.value.and_then(|v| v.value))))
                        .collect(),
                    error: s.status.is_some_and(|st| st.code == 2),
                });
            }
        }
    }
}

fn logs(export: ExportLogsServiceRequest, got: &Received, via: &'static str) {
    let mut out = got.logs.lock();
    for rl in export.resource_logs {
        let service = (rl.resource.iter())
            .flat_map(|r| r.attributes.iter())
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.clone().and_then(|v| v.value)))
            .unwrap_or_default();
        for sl in rl.scope_logs {
            for r in sl.log_records {
                out.push(Log {
                    body: text(r.body.and_then(|v| v.value)),
                    severity: r.severity_number,
                    severity_text: r.severity_text,
                    trace: hex(&r.trace_id),
                    span: hex(&r.span_id),
                    attrs: (r.attributes.into_iter())
                        .map(|kv| (kv.key, text(kv.value.and_then(|v| v.value))))
                        .collect(),
                    service: service.clone(),
                    via,
                });
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn text(v: Option<AnyValue>) -> String {
    match v {
        Some(AnyValue::StringValue(s)) => s,
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// A gateway with `otel` on, exporting to `endpoint` (`protocol`), one model `m` at `mock`.
pub(super) async fn gateway(mock: &MockUpstream, endpoint: &str, protocol: &str) -> TestGateway {
    gateway_every(mock, endpoint, protocol, 50).await
}

/// [`gateway`] exporting every `delay_ms`.
async fn gateway_every(
    mock: &MockUpstream,
    endpoint: &str,
    protocol: &str,
    delay_ms: u64,
) -> TestGateway {
    TestGateway::start(&config(mock, endpoint, protocol, delay_ms)).await
}

pub(super) fn config(mock: &MockUpstream, endpoint: &str, protocol: &str, delay_ms: u64) -> String {
    format!(
        "{}router_settings:\n  num_retries: 1\ntianji_settings:\n  callbacks: [\"otel\"]\nenvironment_variables:\n  OTEL_EXPORTER_OTLP_ENDPOINT: \"{endpoint}\"\n  OTEL_EXPORTER_OTLP_PROTOCOL: \"{protocol}\"\n  OTEL_BSP_SCHEDULE_DELAY: \"{delay_ms}\"\n  OTEL_EXPORTER_OTLP_TIMEOUT: \"500\"\n  OTEL_SERVICE_NAME: tianji-test\n",
        one_model("m", "openai/gpt-4o-mini", &mock.base(), "")
    )
}

pub(super) async fn chat(gw: &TestGateway, extra: &[(&str, &str)]) -> crate::common::Resp {
    let auth = format!("Bearer {MASTER_KEY}");
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    send(
        Method::POST,
        &gw.url("/v1/chat/completions"),
        &headers,
        Bytes::from_static(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#),
    )
    .await
}

/// A mock that fails its first request (500) and answers the rest.
pub(super) async fn fails_once() -> MockUpstream {
    let n = Arc::new(AtomicUsize::new(0));
    MockUpstream::with(Arc::new(move |r| {
        if n.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::status(500, json!({"error": {"message": "boom"}}))
        } else {
            default_reply(r)
        }
    }))
    .await
}

#[tokio::test]
async fn a_request_is_one_span_tree_continuing_the_client_trace_and_carried_upstream() {
    span_tree("http/protobuf").await;
}

#[tokio::test]
async fn grpc_exports_the_same_span_tree() {
    let collector = span_tree("grpc").await;
    assert!(collector.grpc_calls() > 0);
    assert!(collector.json().is_empty());
}

/// A request retried once, exported over `protocol`: the span tree, the continued trace and
/// the `traceparent` of each attempt; then a request of its own trace. The collector is returned.
async fn span_tree(protocol: &str) -> Collector {
    let collector = Collector::start(Mode::Answer).await;
    let mock = fails_once().await;
    let gw = gateway(&mock, &collector.base(), protocol).await;
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let r = chat(
        &gw,
        &[("traceparent", &traceparent), ("tracestate", "vendor=x")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-tianji-attempted-retries"), Some("1"));

    let done = || {
        collector
            .spans()
            .iter()
            .any(|s| s.name == "Received Proxy Server Request")
    };
    assert!(eventually(WAIT, done).await, "no request span exported");
    let spans = collector.spans();
    let root = spans
        .iter()
        .find(|s| s.name == "Received Proxy Server Request")
        .unwrap();
    // the client's trace goes on: same trace id, the client's span as parent
    assert_eq!(root.trace, CLIENT_TRACE);
    assert_eq!(root.parent, CLIENT_SPAN);
    assert!(!root.error);
    assert_eq!(root.attr("gen_ai.request.model"), Some("m"));
    assert_eq!(root.attr("gen_ai.response.model"), Some("gpt-4o-mini"));
    assert_eq!(root.attr("gen_ai.system"), Some("openai"));
    assert_eq!(root.attr("gen_ai.operation.name"), Some("chat_completions"));
    assert_eq!(root.attr("gen_ai.usage.input_tokens"), Some("9"));
    assert_eq!(root.attr("gen_ai.usage.output_tokens"), Some("3"));
    assert_eq!(root.attr("gen_ai.usage.total_tokens"), Some("12"));
    assert_eq!(root.attr("http.response.status_code"), Some("200"));
    let call_id = r.header("x-tianji-call-id").unwrap();
    assert_eq!(root.attr("tianji.call_id"), Some(call_id));

    // every stage's span is a child of the request's
    let children: Vec<&Got> = spans.iter().filter(|s| s.parent == root.span).collect();
    for stage in ["auth", "router", "limits", "cache", "spend_write"] {
        let n = children.iter().filter(|s| s.name == stage).count();
        assert_eq!(n, 1, "stage span {stage}: {children:#?}");
    }
    let attempts: Vec<&&Got> = children
        .iter()
        .filter(|s| s.name == "raw_gen_ai_request")
        .collect();
    assert_eq!(attempts.len(), 2, "one span per attempt: {children:#?}");
    assert!(children.iter().all(|s| s.trace == CLIENT_TRACE));
    let first = attempts
        .iter()
        .find(|s| s.attr("tianji.attempt") == Some("1"));
    let second = attempts
        .iter()
        .find(|s| s.attr("tianji.attempt") == Some("2"));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert!(first.error, "the failed attempt's span is an error");
    assert_eq!(first.attr("http.response.status_code"), Some("500"));
    assert!(!second.error);

    // each upstream call carried its own attempt's span as parent, and the client's tracestate
    let sent: Vec<String> = (mock.requests().iter())
        .map(|r| r.headers["traceparent"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        sent,
        vec![
            format!("00-{CLIENT_TRACE}-{}-01", first.span),
            format!("00-{CLIENT_TRACE}-{}-01", second.span),
        ]
    );
    assert!(
        (mock.requests().iter()).all(|r| r.headers["tracestate"] == "vendor=x"),
        "tracestate passed upstream"
    );

    // no secret reaches the collector
    for s in &spans {
        for (k, v) in &s.attrs {
            assert!(
                !v.contains("sk-provider-secret") && !v.contains(MASTER_KEY),
                "{k}={v}"
            );
        }
    }

    // without a traceparent: a trace of its own
    let r = chat(&gw, &[]).await;
    assert_eq!(r.status, 200);
    let call_id = r.header("x-tianji-call-id").unwrap().to_string();
    let own = || {
        (collector.spans().into_iter()).find(|s| s.attr("tianji.call_id") == Some(call_id.as_str()))
    };
    assert!(eventually(WAIT, || own().is_some()).await);
    let root = own().unwrap();
    assert_ne!(root.trace, CLIENT_TRACE);
    assert!(root.parent.is_empty(), "a root span: {root:?}");
    let last = mock.last();
    let tp = last.headers["traceparent"].to_str().unwrap();
    assert!(tp.starts_with(&format!("00-{}-", root.trace)), "{tp}");
    collector
}

#[tokio::test]
async fn http_json_exports_the_request_span_and_its_log_record() {
    let collector = Collector::start(Mode::Answer).await;
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, &collector.base(), "http/json").await;
    let r = chat(&gw, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = || {
        (collector.json().iter()).any(|b| {
            b.contains("Received Proxy Server Request") && b.contains("raw_gen_ai_request")
        })
    };
    assert!(eventually(WAIT, got).await, "no JSON export");
    // the request's log record, to /v1/logs as JSON too
    let call_id = r.header("x-tianji-call-id").unwrap();
    let log = || {
        (collector.json().iter()).any(|b| {
            b.contains("resourceLogs") && b.contains("tianji.call_id") && b.contains(call_id)
        })
    };
    assert!(
        eventually(WAIT, log).await,
        "no JSON log export: {:?}",
        collector.json()
    );
}

#[tokio::test]
async fn a_dead_or_hanging_collector_leaves_requests_answering() {
    let mock = MockUpstream::start().await;
    // a closed port
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let hanging = Collector::start(Mode::Hang).await;
    for endpoint in [format!("http://{dead}"), hanging.base()] {
        let gw = gateway(&mock, &endpoint, "http/protobuf").await;
        for _ in 0..30 {
            let r = tokio::time::timeout(Duration::from_secs(20), chat(&gw, &[]))
                .await
                .expect("a request waited on the collector");
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.json()["choices"][0]["message"]["role"], "assistant");
        }
    }
    // the hanging collector was tried (and its export never answered)
    assert!(eventually(WAIT, || hanging.posts.load(Ordering::SeqCst) > 0).await);
}

#[tokio::test]
async fn spans_still_queued_are_exported_on_graceful_shutdown() {
    let collector = Collector::start(Mode::Answer).await;
    let mock = MockUpstream::start().await;
    // a batch every 10 minutes: only the shutdown flush can send it within the test
    let gw = gateway_every(&mock, &collector.base(), "http/protobuf", 600_000).await;
    for _ in 0..3 {
        assert_eq!(chat(&gw, &[]).await.status, 200);
    }
    assert!(collector.spans().is_empty());
    gw.gw.shutdown().await;
    let roots = (collector.spans().iter())
        .filter(|s| s.name == "Received Proxy Server Request")
        .count();
    assert_eq!(roots, 3);
}

#[tokio::test]
async fn an_unknown_protocol_is_refused_at_startup_naming_it() {
    let yaml = "tianji_settings:\n  callbacks: [\"otel\"]\nenvironment_variables:\n  OTEL_EXPORTER_OTLP_PROTOCOL: thrift\n";
    let loaded = tianji::Loaded::from_yaml(yaml).unwrap();
    let Err(e) = tianji::prepare_with(&loaded, false).await else {
        panic!("started with an unsupported OTLP protocol");
    };
    assert!(e.is_config());
    assert!(e.to_string().contains("thrift"), "{e}");
}

#[tokio::test]
async fn a_streamed_answer_s_span_ends_with_its_stream_and_its_usage() {
    let collector = Collector::start(Mode::Answer).await;
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, &collector.base(), "http/protobuf").await;
    let body = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#;
    let s = crate::common::stream(&gw.url("/v1/chat/completions"), body).await;
    assert_eq!(s.status, 200);
    assert!(s.text().contains("[DONE]"));
    let root =
        || (collector.spans().into_iter()).find(|s| s.name == "Received Proxy Server Request");
    assert!(eventually(WAIT, || root().is_some()).await);
    let root = root().unwrap();
    assert_eq!(root.attr("gen_ai.request.stream"), Some("true"));
    assert_eq!(root.attr("gen_ai.usage.input_tokens"), Some("9"));
    assert!(root.attr("gen_ai.usage.output_tokens").is_some());
    let children = collector.spans();
    let attempts = (children.iter())
        .filter(|s| s.parent == root.span && s.name == "raw_gen_ai_request")
        .count();
    assert_eq!(attempts, 1);
}

#[tokio::test]
async fn a_virtual_key_is_named_by_its_hash_alias_and_user_never_by_itself() {
    let db = crate::common::db::TestDb::create().await;
    let collector = Collector::start(Mode::Answer).await;
    let mock = MockUpstream::start().await;
    let yaml = format!(
        "{}general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{}\"\n",
        config(&mock, &collector.base(), "http/protobuf", 50),
        db.url
    );
    let gw = TestGateway::start(&yaml).await;
    let made = gw
        .post(
            "/key/generate",
            r#"{"key_alias":"trace-key","user_id":"u-trace"}"#,
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.text());
    let raw = made.json()["key"].as_str().unwrap().to_string();
    let r = send(
        Method::POST,
        &gw.url("/v1/chat/completions"),
        &[("authorization", &format!("Bearer {raw}"))],
        Bytes::from_static(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let root =
        || (collector.spans().into_iter()).find(|s| s.name == "Received Proxy Server Request");
    assert!(eventually(WAIT, || root().is_some()).await);
    let root = root().unwrap();
    assert_eq!(root.attr("metadata.user_api_key_alias"), Some("trace-key"));
    assert_eq!(root.attr("metadata.user_api_key_user_id"), Some("u-trace"));
    let hash = root.attr("metadata.user_api_key_hash").unwrap();
    assert_eq!(hash.len(), 64, "{hash}");
    let secret = raw.trim_start_matches("sk-");
    for s in collector.spans() {
        assert!(s.attrs.iter().all(|(_, v)| !v.contains(secret)), "{s:?}");
    }
}
