//! Post stages: run once per LLM request whatever the outcome (success, error, client
//! disconnect mid-stream), from `Drop`: the access log line, then the spend ticket is finished
//! (cost booked in the ledger, row queued for the spend writer).

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use tokio::time::Instant;
use uuid::Uuid;

use crate::router::Deployment;
use crate::spend::record::{ErrorInformation, SpendRow};
use crate::spend::{Ticket, cost};
use crate::upstream::sse::Usage;
use crate::util::clock::unix;

pub use crate::error::REQUEST_CUT;

tokio::task_local! {
    /// Set while the server drops the requests it cuts at the shutdown deadline.
    static CUTTING: ();
}

/// Run `f`, which drops requests cut at the shutdown deadline: their records say so (503).
pub fn cutting<T>(f: impl FnOnce() -> T) -> T {
    CUTTING.sync_scope((), f)
}

/// What happened to one LLM request.
pub struct Completion {
    pub call_id: Uuid,
    pub started: Instant,
    pub route: &'static str,
    pub model: Option<String>,
    pub deployment: Option<Arc<Deployment>>,
    /// The price to charge at, when not the deployment's (pass-through answers naming their
    /// model).
    pub price: Option<Arc<crate::prices::Price>>,
    pub status: u16,
    pub stream: bool,
    pub usage: Option<Usage>,
    /// The answer's `id` (`chatcmpl-...`, `msg_...`; a stream's first chunk's): the SpendLogs
    /// `request_id`.
    pub response_id: Option<String>,
    /// Prompt tokens estimated from the request's size (about 4 bytes a token), for a stream
    /// that fails before the provider reports its usage.
    pub prompt_estimate: u64,
    /// Units priced apart from tokens (images made, ...).
    pub extra: cost::Extra,
    /// A price per call, not per token (an MCP tool's `cost_per_query`).
    pub fixed_cost: Option<f64>,
    /// USD charged per call on top of what was used (an A2A agent's `cost_per_query`).
    pub flat_cost: f64,
    pub chunks: u32,
    pub stream_error: Option<String>,
    /// The error message the client got, if any.
    pub error: Option<String>,
    /// Wall clock of the first streamed chunk.
    pub first_chunk: Option<SystemTime>,
    /// Admitted requests: the spend ticket and (with a database) the row started at admission.
    pub spend: Option<(Ticket, Option<Box<SpendRow>>)>,
    /// With `store_prompts_in_spend_logs`: the request and (non-streamed) response bodies.
    pub bodies: Option<(Bytes, Option<Bytes>)>,
    /// The rate limits the request holds (parallel slots, token reservation).
    pub limits: Option<crate::limits::Held>,
    /// Model budgets to book the cost on.
    pub model_budget: Option<crate::limits::model_budget::Booking>,
    /// The attempt in flight on its deployment (for the router), until the answer ends.
    pub in_flight: Option<crate::router::balancer::InFlight>,
    /// Answered from the response cache: nothing was spent upstream.
    pub cache_hit: bool,
    /// The response cache key, when the cache applied.
    pub cache_key: Option<String>,
    /// The request's trace (with traces on), ended when the record drops.
    pub trace: Option<crate::observability::traces::RequestTrace>,
    /// Time waiting for the provider's answer head.
    pub upstream: Option<std::time::Duration>,
    /// With Prometheus on: the request in flight, and its labels (set once authenticated).
    /// (Boxed: most gateways run without Prometheus.)
    pub metrics: Option<Box<(crate::metrics::InFlight, crate::metrics::RequestLabels)>>,
    /// The logging callbacks that want this request.
    pub logging: Option<crate::callbacks::Logging>,
    /// With request alerts on (failed, slow, hanging): the request's watch.
    pub alerting: Option<crate::alerting::Watch>,
    /// Handed off to a stream relay (through its observer), which reports instead.
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
            price: None,
            status: 0,
            stream: false,
            usage: None,
            response_id: None,
            prompt_estimate: 0,
            extra: cost::Extra::default(),
            fixed_cost: None,
            flat_cost: 0.0,
            chunks: 0,
            stream_error: None,
            error: None,
            first_chunk: None,
            spend: None,
            bodies: None,
            limits: None,
            model_budget: None,
            in_flight: None,
            cache_hit: false,
            cache_key: None,
            trace: None,
            upstream: None,
            metrics: None,
            logging: None,
            alerting: None,
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
            price: self.price.take(),
            status: self.status,
            stream: self.stream,
            usage: self.usage.take(),
            response_id: self.response_id.take(),
            prompt_estimate: self.prompt_estimate,
            extra: self.extra,
            fixed_cost: self.fixed_cost,
            flat_cost: self.flat_cost,
            chunks: 0,
            stream_error: None,
            error: None,
            first_chunk: None,
            spend: self.spend.take(),
            bodies: self.bodies.take(),
            limits: self.limits.take(),
            model_budget: self.model_budget.take(),
            in_flight: self.in_flight.take(),
            cache_hit: self.cache_hit,
            cache_key: self.cache_key.take(),
            trace: self.trace.take(),
            upstream: self.upstream,
            metrics: self.metrics.take(),
            logging: self.logging.take(),
            alerting: self.alerting.take(),
            handed_off: false,
        }
    }

    /// USD for what the request used (0 when the model has no price or nothing was used).
    pub fn cost(&self) -> f64 {
        if let Some(c) = self.fixed_cost {
            return c;
        }
        // a per-call price is charged only for a call that worked
        let flat = if self.ok() { self.flat_cost } else { 0.0 };
        if self.cache_hit {
            return flat;
        }
        let price = self
            .price
            .as_ref()
            .or_else(|| self.deployment.as_ref().and_then(|d| d.price.as_ref()));
        let used = match (&self.usage, price) {
            (Some(u), Some(p)) => cost::cost(p, u, self.extra),
            _ => 0.0,
        };
        used + flat
    }

    fn ok(&self) -> bool {
        (200..400).contains(&self.status) && self.stream_error.is_none()
    }

    fn finish_spend(&mut self) {
        let Some((ticket, row)) = self.spend.take() else {
            return;
        };
        let cost = self.cost();
        let provider = self.deployment.as_ref().map(|d| d.provider.name());
        let Some(mut row) = row else {
            ticket.finish(cost, provider, None);
            return;
        };
        let end = SystemTime::now();
        let usage = self.usage.unwrap_or_default();
        let ok = self.ok();
        row.spend = cost;
        row.prompt_tokens = usage.prompt_tokens;
        row.completion_tokens = usage.completion_tokens;
        row.total_tokens = usage.total_tokens;
        row.cache_read_input_tokens = usage.cache_read_tokens;
        row.cache_creation_input_tokens = usage.cache_creation_tokens;
        row.end_time = unix(end);
        row.completion_start_time = Some(unix(self.first_chunk.unwrap_or(end)));
        row.request_duration_ms = self.started.elapsed().as_millis() as u64;
        row.status = if ok { "success" } else { "failure" };
        row.deployment.clone_from(&self.deployment);
        row.cache_hit = self.cache_hit;
        row.cache_key = self.cache_key.take().unwrap_or_default();
        row.response_id = self.response_id.take();
        row.pages = self.extra.pages;
        if !ok {
            row.error = Some(ErrorInformation {
                error_message: self
                    .stream_error
                    .clone()
                    .or_else(|| self.error.clone())
                    .unwrap_or_default(),
                error_code: self.status,
            });
        }
        if let Some((req, resp)) = self.bodies.take() {
            row.messages = crate::spend::record::asked(&req);
            row.response = resp.and_then(|r| crate::spend::record::answered(&r));
        }
        if let Some(l) = self.logging.take() {
            let trace = self.trace.as_ref().map(|t| t.ids());
            l.emit(&row, self.stream, trace);
            if !ticket.spend.store_prompts {
                row.messages = None;
                row.response = None;
            }
        }
        ticket.finish(cost, provider, Some(*row));
    }
}

impl Completion {
    /// How the request ended, for its alerts.
    fn outcome(&self) -> crate::alerting::Outcome<'_> {
        crate::alerting::Outcome {
            status: self.status,
            ok: self.ok(),
            error: self.stream_error.as_deref().or(self.error.as_deref()),
            model: self.model.as_deref(),
            deployment: (self.deployment.as_ref())
                .map(|d| (d.id.as_str(), d.api_base_shown.as_str())),
            region: self.deployment.as_ref().and_then(|d| d.region.as_deref()),
        }
    }

    /// Count the request in the Prometheus families (with Prometheus on).
    fn record_metrics(&mut self) {
        let Some((in_flight, mut labels)) = self.metrics.take().map(|m| *m) else {
            return;
        };
        if let Some(m) = &self.model {
            labels.requested_model.clone_from(m);
        }
        if let Some(d) = &self.deployment {
            labels.model.clone_from(&d.upstream_model);
            labels.model_id.clone_from(&d.id);
        }
        let usage = self.usage.unwrap_or_default();
        let elapsed = self.started.elapsed();
        let ttft = self.first_chunk.and_then(|t| {
            let since = SystemTime::now().duration_since(t).ok()?;
            Some(elapsed.saturating_sub(since).as_secs_f64())
        });
        let status = if self.ok() || self.status >= 400 {
            self.status
        } else {
            500
        };
        let outcome = crate::metrics::Outcome {
            status,
            error_class: crate::metrics::exception_class(status),
            input_tokens: usage.prompt_tokens,
            output_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens,
            spend: self.cost(),
            total_latency: elapsed.as_secs_f64(),
            api_latency: self
                .upstream
                .filter(|_| !self.cache_hit)
                .map(|d| d.as_secs_f64()),
            time_to_first_token: ttft,
            cache_hit: self.cache_hit,
        };
        in_flight.metrics().record(&labels, &outcome);
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if self.handed_off {
            return;
        }
        if CUTTING.try_with(|_| ()).is_ok() {
            self.stream_error
                .get_or_insert_with(|| REQUEST_CUT.to_string());
            if self.status == 0 {
                self.status = 503;
            }
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
        if let Some(mut held) = self.limits.take() {
            // a cache hit used no tokens of any deployment
            if let (Some(u), false) = (&self.usage, self.cache_hit) {
                held.used(u.prompt_tokens, u.completion_tokens);
            }
            drop(held);
        }
        if let Some(b) = self.model_budget.take() {
            b.book(self.cost());
        }
        if let (Some(f), Some(u)) = (self.in_flight.take(), &self.usage) {
            f.used(u.total_tokens);
        }
        if let Some(w) = self.alerting.take() {
            w.finish(&self.outcome());
        }
        let spend = (self.trace.as_ref()).map(|t| t.child("spend_write"));
        self.record_metrics();
        self.finish_spend();
        drop(spend);
        if let Some(t) = self.trace.take() {
            super::traced::finish(t, self);
        }
    }
}
