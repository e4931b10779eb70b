//! Post stages: run once per LLM request whatever the outcome (success, error, client
//! disconnect mid-stream), from `Drop`. Spend, limits reconciliation and callbacks attach here.

use std::sync::Arc;

use tokio::time::Instant;
use uuid::Uuid;

use crate::router::Deployment;
use crate::upstream::sse::Usage;

/// What happened to one LLM request.
#[derive(Debug)]
pub struct Completion {
    pub call_id: Uuid,
    pub started: Instant,
    pub route: &'static str,
    pub model: Option<String>,
    pub deployment: Option<Arc<Deployment>>,
    pub status: u16,
    pub stream: bool,
    pub usage: Option<Usage>,
    pub chunks: u32,
    pub stream_error: Option<String>,
    /// Handed off to a stream relay, which reports instead.
    handed_off: bool,
}

impl Completion {
    pub fn new(call_id: Uuid, started: Instant, route: &'static str) -> Self {
        Self {
            call_id,
            started,
            route,
            model: None,
            deployment: None,
            status: 0,
            stream: false,
            usage: None,
            chunks: 0,
            stream_error: None,
            handed_off: false,
        }
    }

    /// Move the record into a stream relay; this copy stays silent.
    pub fn hand_off(&mut self) -> Completion {
        self.handed_off = true;
        Completion {
            call_id: self.call_id,
            started: self.started,
            route: self.route,
            model: self.model.take(),
            deployment: self.deployment.take(),
            status: self.status,
            stream: self.stream,
            usage: self.usage.take(),
            chunks: 0,
            stream_error: None,
            handed_off: false,
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if self.handed_off {
            return;
        }
        let usage = self.usage.unwrap_or_default();
        tracing::debug!(
            target: "tianji::access",
            call_id = %self.call_id,
            route = self.route,
            model = self.model.as_deref().unwrap_or(""),
            deployment = self.deployment.as_ref().map(|d| d.id.as_str()).unwrap_or(""),
            status = self.status,
            stream = self.stream,
            chunks = self.chunks,
            prompt_tokens = usage.prompt_tokens,
            completion_tokens = usage.completion_tokens,
            stream_error = self.stream_error.as_deref().unwrap_or(""),
            duration_ms = self.started.elapsed().as_secs_f64() * 1000.0,
            "llm request"
        );
    }
}
