//! One logging sink: a bounded queue and a background task that sends what is queued in
//! batches (a JSON POST, an S3 object, an OTLP logs export). The request path only `try_send`s (a full queue drops the event and counts it);
//! a sink that hangs or fails never slows a request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::event::Event;
use crate::body::Body;
use crate::metrics::Metrics;
use crate::upstream::HttpClient;

/// Events a sink queues before it drops new ones (`tianji_settings.callback_queue_size`).
pub const QUEUE: usize = 10_000;
/// Most events in one batch.
pub const MAX_BATCH: usize = 512;
/// Longest one batch may take to send.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Counters of one sink (also counted in Prometheus' `tianji_callback_logging_failures_metric`
/// and `tianji_callback_events_dropped_metric` when metrics are on).
#[derive(Debug, Default)]
pub struct Stats {
    /// Events delivered.
    pub sent: AtomicU64,
    /// Events dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Events in batches that failed (error, timeout, non-2xx answer).
    pub failed: AtomicU64,
    name: &'static str,
    metrics: Option<Arc<Metrics>>,
}

impl Stats {
    fn new(name: &'static str, metrics: Option<Arc<Metrics>>) -> Self {
        Self {
            name,
            metrics,
            ..Self::default()
        }
    }

    fn lost(&self, n: u64, dropped: bool) {
        let counter = if dropped { &self.dropped } else { &self.failed };
        counter.fetch_add(n, Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            m.callback_failure(self.name, n, dropped);
        }
    }
}

/// Where and how a sink sends.
#[derive(Debug, Clone)]
pub enum Target {
    /// `generic_api`: a JSON array of payloads POSTed to a URL with headers.
    Generic {
        url: Uri,
        headers: Vec<(HeaderName, HeaderValue)>,
    },
    /// Langfuse's ingestion API with basic auth.
    Langfuse { url: Uri, auth: HeaderValue },
    /// Datadog's logs intake.
    Datadog {
        url: Uri,
        api_key: HeaderValue,
        source: String,
        service: String,
        tags: String,
    },
    /// An S3 bucket: one object per batch.
    S3(Arc<super::s3::Bucket>),
    /// OTLP logs: one record per event.
    Otel(Arc<crate::observability::logs::OtlpLogs>),
}

/// The sending end of a running sink.
pub struct Sink {
    pub name: &'static str,
    tx: mpsc::Sender<Arc<Event>>,
    pub stats: Arc<Stats>,
}

impl Sink {
    /// Start the sink's task; it stops when every sender is gone or `stop` turns true (sending
    /// what is queued first).
    pub fn start(
        name: &'static str,
        target: Target,
        client: HttpClient,
        metrics: Option<Arc<Metrics>>,
        queue: usize,
        stop: watch::Receiver<bool>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let stats = Arc::new(Stats::new(name, metrics));
        let task = tokio::spawn(run(rx, target, client, stats.clone(), stop));
        (Self { name, tx, stats }, task)
    }

    /// Queue `event` without waiting; a full queue drops it.
    pub fn offer(&self, event: &Arc<Event>) {
        if self.tx.try_send(event.clone()).is_err() {
            self.stats.lost(1, true);
        }
    }
}

async fn run(
    mut rx: mpsc::Receiver<Arc<Event>>,
    target: Target,
    client: HttpClient,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let first = tokio::select! {
            e = rx.recv() => e,
            _ = stop.wait_for(|s| *s) => None,
        };
        let Some(first) = first else { break };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        send(&client, &target, &stats, &mut batch).await;
    }
    // shutting down (or every sender gone): send what is left
    rx.close();
    while let Some(e) = rx.recv().await {
        batch.push(e);
        if batch.len() == MAX_BATCH {
            send(&client, &target, &stats, &mut batch).await;
        }
    }
    if !batch.is_empty() {
        send(&client, &target, &stats, &mut batch).await;
    }
}

/// Send `batch` and empty it, counting the outcome.
async fn send(client: &HttpClient, target: &Target, stats: &Stats, batch: &mut Vec<Arc<Event>>) {
    let n = batch.len() as u64;
    let ok = tokio::time::timeout(SEND_TIMEOUT, deliver(client, target, batch))
        .await
        .unwrap_or(false);
    batch.clear();
    if ok {
        stats.sent.fetch_add(n, Ordering::Relaxed);
    } else {
        stats.lost(n, false);
        tracing::warn!(
            events = n,
            "logging callback: a batch could not be delivered"
        );
    }
}

/// Whether `batch` reached `target` (a 2xx answer, or the OTLP exporter's success).
async fn deliver(client: &HttpClient, target: &Target, batch: &[Arc<Event>]) -> bool {
    let req = match target {
        Target::Otel(logs) => return super::otel::export(logs, batch).await,
        Target::S3(bucket) => bucket.request(batch),
        _ => request(target, batch),
    };
    match req {
        Some(req) => matches!(client.request(req).await, Ok(resp) if resp.status().is_success()),
        None => false,
    }
}

/// The JSON POST of the HTTP intakes.
fn request(target: &Target, batch: &[Arc<Event>]) -> Option<Request<Body>> {
    let (url, body, headers): (&Uri, Vec<u8>, Vec<(HeaderName, HeaderValue)>) = match target {
        Target::Generic { url, headers } => (
            url,
            serde_json::to_vec(&batch.iter().map(|e| e.payload()).collect::<Vec<_>>()).ok()?,
            headers.clone(),
        ),
        Target::Langfuse { url, auth } => (
            url,
            serde_json::to_vec(
                &json!({"batch": batch.iter().flat_map(|e| langfuse(e)).collect::<Vec<_>>()}),
            )
            .ok()?,
            vec![(http::header::AUTHORIZATION, auth.clone())],
        ),
        Target::Datadog {
            url,
            api_key,
            source,
            service,
            tags,
        } => (
            url,
            serde_json::to_vec(
                &batch
                    .iter()
                    .map(|e| datadog(e, source, service, tags))
                    .collect::<Vec<_>>(),
            )
            .ok()?,
            vec![(HeaderName::from_static("dd-api-key"), api_key.clone())],
        ),
        Target::S3(_) | Target::Otel(_) => return None,
    };
    let mut b = Request::builder()
        .method(Method::POST)
        .uri(url.clone())
        .header(http::header::CONTENT_TYPE, "application/json");
    for (k, v) in headers {
        b = b.header(k, v);
    }
    b.body(Body::full(Bytes::from(body))).ok()
}

/// A trace and its generation, as Langfuse's ingestion API takes them.
fn langfuse(e: &Event) -> [Value; 2] {
    let p = serde_json::to_value(e.payload()).unwrap_or_default();
    let id = &p["id"];
    let now = rfc3339(crate::util::clock::now_secs());
    let at = |k: &str| rfc3339(p[k].as_f64().unwrap_or_default());
    let metadata = &p["metadata"];
    let name = format!("litellm-{}", p["call_type"].as_str().unwrap_or_default());
    let event = |kind: &str, body: Value| {
        json!({"id": uuid::Uuid::now_v7().to_string(), "timestamp": now, "type": kind,
            "body": body})
    };
    let trace = event(
        "trace-create",
        json!({
            "id": id,
            "timestamp": at("startTime"),
            "name": name,
            "userId": p["end_user"],
            "input": p["messages"],
            "output": p["response"],
            "metadata": metadata,
            "tags": p["request_tags"],
        }),
    );
    let generation = event(
        "generation-create",
        json!({
            "id": id,
            "traceId": id,
            "name": name,
            "startTime": at("startTime"),
            "endTime": at("endTime"),
            "completionStartTime": at("completionStartTime"),
            "model": p["model"],
            "modelParameters": p["model_parameters"],
            "input": p["messages"],
            "output": p["response"],
            "usage": {
                "input": p["prompt_tokens"],
                "output": p["completion_tokens"],
                "total": p["total_tokens"],
                "unit": "TOKENS",
            },
            "usageDetails": {
                "input": p["prompt_tokens"],
                "output": p["completion_tokens"],
                "total": p["total_tokens"],
            },
            "costDetails": {"total": p["response_cost"]},
            "metadata": metadata,
            "level": if e.ok() { "DEFAULT" } else { "ERROR" },
            "statusMessage": p["error_str"],
        }),
    );
    [trace, generation]
}

/// One Datadog log: the payload as its message.
fn datadog(e: &Event, source: &str, service: &str, tags: &str) -> Value {
    json!({
        "ddsource": source,
        "ddtags": tags,
        "hostname": "",
        "message": serde_json::to_string(&e.payload()).unwrap_or_default(),
        "service": service,
        "status": if e.ok() { "info" } else { "error" },
    })
}

/// ISO 8601 UTC with milliseconds of Unix seconds.
fn rfc3339(secs: f64) -> String {
    let ms = ((secs.fract() * 1000.0) as u32).min(999);
    format!(
        "{}.{ms:03}Z",
        crate::util::clock::fmt_utc(secs).replacen(' ', "T", 1)
    )
}
