//! OpenTelemetry traces (`callbacks: ["otel"]`): one span per LLM request with a child span
//! per stage and per upstream attempt, exported over OTLP (HTTP or gRPC) by the SDK's
//! batch span processor on a tokio task. A request only hands its finished spans to a bounded
//! queue (`try_send`: spans are dropped when it is full), so a slow or dead collector never
//! slows a request. Without `otel` (or with `OTEL_TRACES_EXPORTER=none`) nothing here runs: no
//! tracer, no span.
//!
//! Settings: [`super::otlp::Settings`] (OTLP/HTTP protobuf or JSON through our own client, or
//! gRPC).
//!
//! A client's W3C `traceparent` (and `tracestate`) is continued; each upstream attempt sends
//! its own `traceparent` (through [`upstream_scope`] and [`upstream_headers`]).

use std::future::Future;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    Span as _, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::HeaderExtractor;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{BatchConfigBuilder, SdkTracer, SdkTracerProvider};

pub use super::otlp::OtlpError;
use super::otlp::Settings;

/// The callback name that turns traces on.
pub const CALLBACK: &str = "otel";

/// The span of a whole request (LiteLLM's proxy request span).
pub const ROOT_SPAN: &str = "Received Proxy Server Request";

/// The span of one upstream attempt (LiteLLM's raw provider request span).
pub const ATTEMPT_SPAN: &str = "raw_gen_ai_request";

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
    ) -> Result<Self, OtlpError> {
        let exporter = super::otlp::exporter!(
            opentelemetry_otlp::SpanExporter::builder(),
            settings,
            client
        )?;
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

/// The ids of a request's span, for what is logged about the request (OTLP log records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanIds {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub flags: TraceFlags,
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

    /// The ids of the request's span.
    pub fn ids(&self) -> SpanIds {
        let span = self.cx.span();
        let sc = span.span_context();
        SpanIds {
            trace_id: sc.trace_id(),
            span_id: sc.span_id(),
            flags: sc.trace_flags(),
        }
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
