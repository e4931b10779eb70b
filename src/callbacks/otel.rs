//! The `otel` logging callback: each request's StandardLoggingPayload as one OTLP log record,
//! exported with the other records of its batch (see [`crate::observability::logs`]).
//!
//! A record: body = the payload as a JSON string; severity INFO (success) or ERROR (failure);
//! timestamp = the request's end; trace and span id of the request's span when traces run;
//! attributes `tianji.call_id`, `tianji.call_type`, `tianji.status`, `gen_ai.request.model`
//! (the model group asked for), `gen_ai.response.model`, `tianji.model_id`,
//! `gen_ai.usage.{input,output,total}_tokens`, `tianji.response_cost`, `tianji.cache_hit`
//! and, for failures, `error.type` and `http.response.status_code`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::logs::{AnyValue, LogRecord as _, Severity};
use opentelemetry_sdk::logs::SdkLogRecord;

use super::event::Event;
use crate::observability::logs::OtlpLogs;

/// The event name of the records.
const EVENT_NAME: &str = "tianji.request";

/// Export `batch` as log records; whether the collector took them.
pub async fn export(logs: &OtlpLogs, batch: &[Arc<Event>]) -> bool {
    let records: Vec<SdkLogRecord> = batch.iter().map(|e| record(logs, e)).collect();
    logs.export(&records).await
}

fn record(logs: &OtlpLogs, e: &Event) -> SdkLogRecord {
    let p = e.payload();
    let mut r = logs.record();
    r.set_event_name(EVENT_NAME);
    r.set_timestamp(time(e.row.end_time));
    r.set_observed_timestamp(SystemTime::now());
    let (severity, text) = if e.ok() {
        (Severity::Info, "INFO")
    } else {
        (Severity::Error, "ERROR")
    };
    r.set_severity_number(severity);
    r.set_severity_text(text);
    r.set_body(AnyValue::from(
        serde_json::to_string(&p).unwrap_or_default(),
    ));
    let s = |v: &str| AnyValue::from(v.to_string());
    let n = |v: u64| AnyValue::from(i64::try_from(v).unwrap_or(i64::MAX));
    r.add_attributes([
        ("tianji.call_id", AnyValue::from(p.id.clone())),
        ("tianji.call_type", s(p.call_type)),
        ("tianji.status", s(p.status)),
        ("gen_ai.request.model", s(p.model_group)),
        ("gen_ai.response.model", s(p.model)),
        ("tianji.model_id", s(p.model_id)),
        ("gen_ai.usage.input_tokens", n(p.prompt_tokens)),
        ("gen_ai.usage.output_tokens", n(p.completion_tokens)),
        ("gen_ai.usage.total_tokens", n(p.total_tokens)),
        ("tianji.response_cost", AnyValue::from(p.response_cost)),
        ("tianji.cache_hit", AnyValue::from(p.cache_hit)),
    ]);
    if let Some(err) = &e.row.error {
        r.add_attribute(
            "error.type",
            crate::spend::record::error_class(err.error_code),
        );
        r.add_attribute("http.response.status_code", i64::from(err.error_code));
    }
    if let Some(t) = e.trace {
        r.set_trace_context(t.trace_id, t.span_id, Some(t.flags));
    }
    r
}

/// The `SystemTime` of Unix seconds.
fn time(secs: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(secs.max(0.0))
}
