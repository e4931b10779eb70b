//! OpenTelemetry traces (`callbacks: ["otel"]`): one span per LLM request with a child span
//! per stage and per upstream attempt, exported over OTLP/HTTP (protobuf or JSON) by the SDK's
//! batch span processor on a tokio task. A request only hands its finished spans to a bounded
//! queue (`try_send`: spans are dropped when it is full), so a slow or dead collector never
//! slows a request. Without `otel` nothing here runs: no tracer, no span.
//!
//! Settings come from the standard variables (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`, `OTEL_EXPORTER_OTLP_PROTOCOL`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_SERVICE_NAME`,
//! `OTEL_BSP_*`) and LiteLLM's (`OTEL_EXPORTER`, `OTEL_ENDPOINT`, `OTEL_HEADERS`).
//!
//! A client's W3C `traceparent` (and `tracestate`) is continued; each upstream attempt sends
//! its own `traceparent` (through [`upstream_scope`] and [`upstream_headers`]).

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::HeaderExtractor;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{BatchConfigBuilder, SdkTracer, SdkTracerProvider};

/// The callback name that turns traces on.
pub const CALLBACK: &str = "otel";

/// The span of a whole request (LiteLLM's proxy request span).
pub const ROOT_SPAN: &str = "Received Proxy Server Request";

/// The span of one upstream attempt (LiteLLM's raw provider request span).
pub const ATTEMPT_SPAN: &str = "raw_gen_ai_request";

/// Why traces could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error(
        "OpenTelemetry protocol `{0}` is not supported (use http/protobuf or http/json; OTEL_EXPORTER: otlp_http)"
    )]
    Protocol(String),
    #[error("OpenTelemetry exporter: {0}")]
    Exporter(String),
}

/// Where and how spans are exported.
#[derive(Debug, Clone)]
pub struct Settings {
    pub endpoint: String,
    pub protocol: Protocol,
    pub headers: HashMap<String, String>,
    pub service: String,
    pub timeout: Duration,
    pub schedule_delay: Option<Duration>,
    pub max_queue_size: Option<usize>,
    pub max_export_batch_size: Option<usize>,
}

const DEFAULT_ENDPOINT: &str = "http://localhost:4318";

impl Settings {
    /// The settings from the environment (`get`: the config's `environment_variables`, then
    /// the process).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, TraceError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let protocol = protocol(
            get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                .or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"))
                .as_deref(),
            get("OTEL_EXPORTER").as_deref(),
        )?;
        let endpoint = match get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            Some(e) => e,
            None => traces_path(
                &get("OTEL_EXPORTER_OTLP_ENDPOINT")
                    .or_else(|| get("OTEL_ENDPOINT"))
                    .unwrap_or_else(|| DEFAULT_ENDPOINT.into()),
            ),
        };
        let headers = get("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
            .or_else(|| get("OTEL_EXPORTER_OTLP_HEADERS"))
            .or_else(|| get("OTEL_HEADERS"))
            .map(|h| parse_headers(&h))
            .unwrap_or_default();
        let millis = |k: &str| {
            get(k)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_millis)
        };
        let count = |k: &str| get(k).and_then(|v| v.trim().parse::<usize>().ok());
        Ok(Self {
            endpoint,
            protocol,
            headers,
            service: get("OTEL_SERVICE_NAME").unwrap_or_else(|| "tianji".into()),
            timeout: millis("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
                .or_else(|| millis("OTEL_EXPORTER_OTLP_TIMEOUT"))
                .unwrap_or(Duration::from_secs(10)),
            schedule_delay: millis("OTEL_BSP_SCHEDULE_DELAY"),
            max_queue_size: count("OTEL_BSP_MAX_QUEUE_SIZE"),
            max_export_batch_size: count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
        })
    }
}

/// The OTLP protocol from `OTEL_EXPORTER_OTLP_PROTOCOL`, else LiteLLM's `OTEL_EXPORTER`.
fn protocol(otlp: Option<&str>, litellm: Option<&str>) -> Result<Protocol, TraceError> {
    match (otlp.map(str::trim), litellm.map(str::trim)) {
        (Some("http/protobuf"), _) | (None, None | Some("otlp_http")) => Ok(Protocol::HttpBinary),
        (Some("http/json"), _) => Ok(Protocol::HttpJson),
        (Some(other), _) | (None, Some(other)) => Err(TraceError::Protocol(other.to_string())),
    }
}

/// A base endpoint with the traces path (`/v1/traces`) unless it already has it.
fn traces_path(base: &str) -> String {
    let base = base.trim().trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    }
}

/// `k=v,k2=v2` (values percent-encoded, as in `Authorization=Bearer%20...`).
fn parse_headers(text: &str) -> HashMap<String, String> {
    text.split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), percent_decode(v.trim())))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The tracer of a gateway with `otel` on.
#[derive(Debug)]
pub struct Traces {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

impl Traces {
    /// Start exporting with `settings`, sending through `client` (the batch processor runs on
    /// the current tokio runtime).
    pub fn start(
        settings: &Settings,
        client: impl opentelemetry_http::HttpClient + 'static,
    ) -> Result<Self, TraceError> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_endpoint(settings.endpoint.clone())
            .with_protocol(settings.protocol)
            .with_timeout(settings.timeout)
            .with_headers(settings.headers.clone())
            .build()
            .map_err(|e| TraceError::Exporter(e.to_string()))?;
        let mut batch = BatchConfigBuilder::default();
        if let Some(d) = settings.schedule_delay {
            batch = batch.with_scheduled_delay(d);
        }
        if let Some(n) = settings.max_queue_size {
            batch = batch.with_max_queue_size(n);
        }
        if let Some(n) = settings.max_export_batch_size {
            batch = batch.with_max_export_batch_size(n);
        }
        let processor = BatchSpanProcessor::builder(exporter, Tokio)
            .with_batch_config(batch.build())
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(
                Resource::builder_empty()
                    .with_service_name(settings.service.clone())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("tianji");
        Ok(Self { provider, tracer })
    }

    /// The span of a request, continuing the client's `traceparent` when it sent one.
    pub fn request(&self, headers: &HeaderMap, route: &'static str) -> RequestTrace {
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        let span = self
            .tracer
            .span_builder(ROOT_SPAN)
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("gen_ai.operation.name", route),
                KeyValue::new("tianji.route", route),
            ])
            .start_with_context(&self.tracer, &parent);
        RequestTrace {
            cx: parent.with_span(span),
            tracer: self.tracer.clone(),
        }
    }

    /// Export what is queued and stop (graceful shutdown). Waits at most `limit`.
    pub async fn shutdown(&self, limit: Duration) {
        let provider = self.provider.clone();
        let done = tokio::task::spawn_blocking(move || provider.shutdown());
        if let Ok(Ok(Err(e))) = tokio::time::timeout(limit, done).await {
            tracing::debug!(error = %e, "traces shutdown");
        }
    }
}

impl Drop for Traces {
    fn drop(&mut self) {
        // The SDK's shutdown blocks until the processor task answers: never on a runtime
        // thread (that task may need it). A no-op once shut down.
        let provider = self.provider.clone();
        let _ = std::thread::Builder::new()
            .name("otel-shutdown".into())
            .spawn(move || provider.shutdown());
    }
}

/// The trace of one request: its span, the parent of its stages' and attempts' spans.
pub struct RequestTrace {
    cx: Context,
    tracer: SdkTracer,
}

/// A child span; ends when dropped.
pub type Stage = opentelemetry_sdk::trace::Span;

impl RequestTrace {
    /// A stage's span (`auth`, `router`, `limits`, `cache`, `spend_write`).
    pub fn child(&self, name: &'static str) -> Stage {
        self.tracer.start_with_context(name, &self.cx)
    }

    /// The span of upstream attempt `n` (1 first), and the headers that carry it upstream.
    pub fn attempt(&self, n: u32, deployment: &str, provider: &str) -> (Stage, Upstream) {
        let span = self
            .tracer
            .span_builder(ATTEMPT_SPAN)
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("tianji.attempt", i64::from(n)),
                KeyValue::new("tianji.model_id", deployment.to_string()),
                KeyValue::new("gen_ai.system", provider.to_string()),
            ])
            .start_with_context(&self.tracer, &self.cx);
        let sc = span.span_context();
        let traceparent = format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        );
        let tracestate = sc.trace_state().header();
        let up = Upstream {
            traceparent: HeaderValue::from_str(&traceparent).ok(),
            tracestate: HeaderValue::from_str(&tracestate)
                .ok()
                .filter(|v| !v.is_empty()),
        };
        (span, up)
    }

    /// Set attributes of the request's span.
    pub fn set(&self, attrs: impl IntoIterator<Item = KeyValue>) {
        self.cx.span().set_attributes(attrs);
    }

    /// End the request's span, as failed with `error` when there is one.
    pub fn end(self, error: Option<String>) {
        let span = self.cx.span();
        if let Some(e) = error {
            span.set_status(Status::error(e));
        } else {
            span.set_status(Status::Ok);
        }
        span.end();
    }
}

/// The trace headers of one upstream attempt.
#[derive(Debug, Clone)]
pub struct Upstream {
    traceparent: Option<HeaderValue>,
    tracestate: Option<HeaderValue>,
}

tokio::task_local! {
    static UPSTREAM: Upstream;
}

/// Run `f` (an upstream attempt) with `up` as the trace headers its calls send.
pub async fn upstream_scope<F: Future>(up: Option<Upstream>, f: F) -> F::Output {
    match up {
        Some(up) => UPSTREAM.scope(up, f).await,
        None => f.await,
    }
}

/// Add the attempt's trace headers (when traced) to an upstream request.
pub fn upstream_headers(h: &mut HeaderMap) {
    let _ = UPSTREAM.try_with(|up| {
        if let Some(v) = &up.traceparent {
            h.insert("traceparent", v.clone());
        }
        if let Some(v) = &up.tracestate {
            h.insert("tracestate", v.clone());
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn standard_and_litellm_variables() {
        let s = Settings::from_env(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=k,x=Bearer%20y"),
            ("OTEL_SERVICE_NAME", "gw"),
        ]))
        .unwrap();
        assert_eq!(s.endpoint, "http://c:4318/v1/traces");
        assert_eq!(s.headers["x"], "Bearer y");
        assert_eq!(s.service, "gw");
        assert_eq!(s.protocol, Protocol::HttpBinary);
        // LiteLLM's own names
        let litellm = [
            ("OTEL_EXPORTER", "otlp_http"),
            ("OTEL_ENDPOINT", "https://api.example"),
            ("OTEL_HEADERS", "Authorization=Bearer%20t"),
        ];
        let s = Settings::from_env(env(&litellm)).unwrap();
        assert_eq!(
            (s.endpoint.as_str(), s.headers["Authorization"].as_str()),
            ("https://api.example/v1/traces", "Bearer t")
        );
        let s = Settings::from_env(env(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c/x"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ]))
        .unwrap();
        assert_eq!(s.endpoint, "http://c/x");
        assert_eq!(s.protocol, Protocol::HttpJson);
        assert!(Settings::from_env(env(&[("OTEL_EXPORTER", "console")])).is_err());
    }
}
