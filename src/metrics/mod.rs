//! Prometheus metrics (`callbacks: ["prometheus"]`): LiteLLM's metric families, renamed
//! `litellm_` -> `tianji_`, with their label names and latency buckets, in one registry
//! exposed by `GET /metrics` (OpenMetrics text). Every family is registered at startup, so
//! its HELP/TYPE lines are there before the first request.
//!
//! Hot path: one [`Metrics::record`] per finished LLM request (a few atomic adds behind the
//! families' read locks); budgets and rate-limit headroom are set where they are checked;
//! deployment states are read from the router's counters at scrape time, not per request.
//! Label values are bounded: key hashes and aliases, teams, users, model names, status codes
//! (no request ids, no raw keys, no client addresses).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock, RwLock};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// LiteLLM's `LATENCY_BUCKETS` (seconds; `+Inf` is added by the histogram).
pub const LATENCY_BUCKETS: [f64; 35] = [
    0.005, 0.00625, 0.0125, 0.025, 0.05, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0,
    5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 15.0, 20.0, 25.0, 30.0, 60.0, 120.0, 180.0,
    240.0, 300.0,
];

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Who made a request and for which model: the labels of the per-request families (LiteLLM's
/// `end_user`, `hashed_api_key`, `api_key_alias`, `requested_model`, `team`, `team_alias`,
/// `user`, `model`, `model_id`; empty when unknown).
#[derive(Debug, Clone, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub end_user: String,
    pub hashed_api_key: String,
    pub api_key_alias: String,
    pub requested_model: String,
    pub team: String,
    pub team_alias: String,
    pub user: String,
    /// The provider's model name of the deployment that answered.
    pub model: String,
    /// The deployment's id.
    pub model_id: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    #[prometheus(flatten)]
    request: RequestLabels,
    status_code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    #[prometheus(flatten)]
    request: RequestLabels,
    exception_status: String,
    exception_class: String,
}

/// A team's budget gauge labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TeamLabels {
    team: String,
    team_alias: String,
}

/// A key's budget gauge labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabels {
    hashed_api_key: String,
    api_key_alias: String,
}

/// One deployment (LiteLLM's `litellm_model_name`, `model_id`, `api_base`, `api_provider`).
#[derive(Debug, Clone, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeploymentLabels {
    pub litellm_model_name: String,
    pub model_id: String,
    pub api_base: String,
    pub api_provider: String,
}

/// Rate-limit headroom labels (LiteLLM's `litellm_remaining_requests_metric`).
#[derive(Debug, Clone, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HeadroomLabels {
    pub model_group: String,
    pub api_provider: String,
    pub api_base: String,
    pub litellm_model_name: String,
    pub hashed_api_key: String,
    pub api_key_alias: String,
    pub model_id: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallbackLabels {
    callback_name: String,
}

/// A deployment's state as LiteLLM reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentState {
    Healthy = 0,
    /// Failures this minute, not cooling down.
    Partial = 1,
    /// Cooling down.
    Cooldown = 2,
}

/// What one finished LLM request did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub status: u16,
    /// The error's class (`exception_class`), when it failed.
    pub error_class: &'static str,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    pub spend: f64,
    /// From the request's start to its end (seconds).
    pub total_latency: f64,
    /// Time waiting for the provider (seconds), when it was called.
    pub api_latency: Option<f64>,
    /// From the start to the first streamed chunk (seconds).
    pub time_to_first_token: Option<f64>,
    pub cache_hit: bool,
}

type Histograms<S> = Family<S, Histogram, fn() -> Histogram>;
type FloatCounter = Counter<f64, AtomicU64>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Every family, registered once.
pub struct Metrics {
    registry: Registry,
    // requests, by outcome
    proxy_total_requests: Family<StatusLabels, Counter>,
    proxy_failed_requests: Family<FailureLabels, Counter>,
    requests: Family<RequestLabels, Counter>,
    in_flight: Gauge,
    cache_hits: Family<RequestLabels, Counter>,
    // usage
    tokens: Tokens,
    spend: Family<RequestLabels, FloatCounter>,
    // latency
    request_total_latency: Histograms<RequestLabels>,
    llm_api_latency: Histograms<RequestLabels>,
    time_to_first_token: Histograms<RequestLabels>,
    // headroom and health
    remaining_team_budget: Family<TeamLabels, FloatGauge>,
    remaining_api_key_budget: Family<KeyLabels, FloatGauge>,
    remaining_requests: Family<HeadroomLabels, Gauge>,
    deployment_state: Family<DeploymentLabels, Gauge>,
    callback_failures: Family<CallbackLabels, Counter>,
    callback_drops: Family<CallbackLabels, Counter>,
    /// Each request label set's handles: a request pays one map lookup, not one per family.
    series: RwLock<HashMap<RequestLabels, Arc<Series>, foldhash::fast::RandomState>>,
}

/// The series of one request label set, each a handle sharing its family's series, made when
/// first used (so the exposition shows only series that happened).
#[derive(Default)]
struct Series {
    requests: OnceLock<Counter>,
    tokens: [OnceLock<Counter>; 3],
    spend: OnceLock<FloatCounter>,
    total_latency: OnceLock<Histogram>,
    api_latency: OnceLock<Histogram>,
    ttft: OnceLock<Histogram>,
    cache_hits: OnceLock<Counter>,
    /// By status: the total requests counter and, for failures, the failed one.
    statuses: RwLock<Vec<(u16, Counter, Option<Counter>)>>,
}

impl Series {
    fn by_status(
        &self,
        m: &Metrics,
        labels: &RequestLabels,
        o: &Outcome,
    ) -> (Counter, Option<Counter>) {
        let find = |v: &[(u16, Counter, Option<Counter>)]| {
            v.iter()
                .find(|(s, _, _)| *s == o.status)
                .map(|(_, t, f)| (t.clone(), f.clone()))
        };
        if let Some(found) = find(&read(&self.statuses)) {
            return found;
        }
        let mut all = write(&self.statuses);
        if let Some(found) = find(&all) {
            return found;
        }
        let status = status_text(o.status);
        let total = m.proxy_total_requests.get_or_create_owned(&StatusLabels {
            request: labels.clone(),
            status_code: status.clone(),
        });
        let failed = (!(200..400).contains(&o.status)).then(|| {
            m.proxy_failed_requests.get_or_create_owned(&FailureLabels {
                request: labels.clone(),
                exception_status: status,
                exception_class: o.error_class.to_string(),
            })
        });
        all.push((o.status, total.clone(), failed.clone()));
        (total, failed)
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The token counters: input, output, total.
struct Tokens([Family<RequestLabels, Counter>; 3]);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A metric whose HELP/TYPE lines are encoded even before it has a series (the crate skips
/// empty families).
#[derive(Debug)]
struct Always<M>(M);

impl<M: EncodeMetric> EncodeMetric for Always<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }
    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }
    fn is_empty(&self) -> bool {
        false
    }
}

/// Register `metric` (a clone: families share their series) and return it.
fn reg<M>(r: &mut Registry, name: &str, help: &str, metric: M) -> M
where
    M: EncodeMetric + Clone + Send + Sync + std::fmt::Debug + 'static,
{
    r.register(name, help, Always(metric.clone()));
    metric
}

fn histograms<S>() -> Histograms<S>
where
    S: Clone + std::hash::Hash + Eq,
{
    Family::new_with_constructor(latency_histogram as fn() -> Histogram)
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::default();
        Self {
            proxy_total_requests: reg(
                &mut r,
                "tianji_proxy_total_requests_metric",
                "Total number of requests made to the proxy server - track number of client side requests",
                Family::default(),
            ),
            proxy_failed_requests: reg(
                &mut r,
                "tianji_proxy_failed_requests_metric",
                "Total number of failed responses from proxy - the client did not get a success response from tianji proxy",
                Family::default(),
            ),
            requests: reg(
                &mut r,
                "tianji_requests_metric",
                "Total number of LLM calls to tianji - track total per API Key, team, user",
                Family::default(),
            ),
            tokens: Tokens(
                [
                    ("input", "input"),
                    ("output", "output"),
                    ("total", "input + output"),
                ]
                .map(|(name, what)| {
                    let help = format!("Total number of {what} tokens from LLM requests");
                    let name = format!("tianji_{name}_tokens_metric");
                    reg(&mut r, &name, &help, Family::default())
                }),
            ),
            spend: reg(
                &mut r,
                "tianji_spend_metric",
                "Total spend on LLM requests",
                Family::default(),
            ),
            request_total_latency: reg(
                &mut r,
                "tianji_request_total_latency_metric",
                "Total latency (seconds) for a request to tianji",
                histograms(),
            ),
            llm_api_latency: reg(
                &mut r,
                "tianji_llm_api_latency_metric",
                "Total latency (seconds) for a models LLM API call",
                histograms(),
            ),
            time_to_first_token: reg(
                &mut r,
                "tianji_llm_api_time_to_first_token_metric",
                "Time to first token for a models LLM API call",
                histograms(),
            ),
            remaining_team_budget: reg(
                &mut r,
                "tianji_remaining_team_budget_metric",
                "Remaining budget for team",
                Family::default(),
            ),
            remaining_api_key_budget: reg(
                &mut r,
                "tianji_remaining_api_key_budget_metric",
                "Remaining budget for api key",
                Family::default(),
            ),
            remaining_requests: reg(
                &mut r,
                "tianji_remaining_requests_metric",
                "Remaining requests for model in the current rate-limit window",
                Family::default(),
            ),
            deployment_state: reg(
                &mut r,
                "tianji_deployment_state",
                "LLM Deployment Analytics - The state of the deployment: 0 = healthy, 1 = partial outage, 2 = complete outage",
                Family::default(),
            ),
            cache_hits: reg(
                &mut r,
                "tianji_cache_hits_metric",
                "Total number of tianji cache hits",
                Family::default(),
            ),
            callback_failures: reg(
                &mut r,
                "tianji_callback_logging_failures_metric",
                "Total number of failures (and dropped events) when emitting logs to callbacks",
                Family::default(),
            ),
            callback_drops: reg(
                &mut r,
                "tianji_callback_events_dropped_metric",
                "Events a logging callback dropped because its queue was full",
                Family::default(),
            ),
            in_flight: reg(
                &mut r,
                "tianji_in_flight_requests",
                "LLM requests being served now",
                Gauge::default(),
            ),
            series: RwLock::default(),
            registry: r,
        }
    }

    /// Count one finished LLM request.
    pub fn record(&self, labels: &RequestLabels, o: &Outcome) {
        let series = self.series_of(labels);
        let (total, failed) = series.by_status(self, labels, o);
        total.inc();
        if let Some(f) = failed {
            f.inc();
        }
        let made = |cell: &OnceLock<Counter>, family: &Family<RequestLabels, Counter>| {
            cell.get_or_init(|| family.get_or_create_owned(labels))
                .clone()
        };
        made(&series.requests, &self.requests).inc();
        let counts = [o.input_tokens, o.output_tokens, o.total_tokens];
        for ((cell, family), n) in series.tokens.iter().zip(&self.tokens.0).zip(counts) {
            if n > 0 {
                made(cell, family).inc_by(n);
            }
        }
        if o.spend > 0.0 {
            series
                .spend
                .get_or_init(|| self.spend.get_or_create_owned(labels))
                .inc_by(o.spend);
        }
        let hist = |cell: &OnceLock<Histogram>, family: &Histograms<RequestLabels>, v: f64| {
            cell.get_or_init(|| family.get_or_create_owned(labels))
                .observe(v);
        };
        hist(
            &series.total_latency,
            &self.request_total_latency,
            o.total_latency,
        );
        if let Some(v) = o.api_latency {
            hist(&series.api_latency, &self.llm_api_latency, v);
        }
        if let Some(v) = o.time_to_first_token {
            hist(&series.ttft, &self.time_to_first_token, v);
        }
        if o.cache_hit {
            made(&series.cache_hits, &self.cache_hits).inc();
        }
    }

    /// The handles of `labels` (made on first sight).
    fn series_of(&self, labels: &RequestLabels) -> Arc<Series> {
        if let Some(s) = read(&self.series).get(labels) {
            return s.clone();
        }
        write(&self.series)
            .entry(labels.clone())
            .or_default()
            .clone()
    }

    /// A request starts: in flight until the guard drops.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.inc();
        InFlight(self.clone())
    }

    /// Set a team's remaining budget.
    pub fn team_budget(&self, team: &str, alias: &str, remaining: f64) {
        self.remaining_team_budget
            .get_or_create(&TeamLabels {
                team: team.to_string(),
                team_alias: alias.to_string(),
            })
            .set(remaining);
    }

    /// Set a key's remaining budget.
    pub fn key_budget(&self, hashed_key: &str, alias: &str, remaining: f64) {
        self.remaining_api_key_budget
            .get_or_create(&KeyLabels {
                hashed_api_key: hashed_key.to_string(),
                api_key_alias: alias.to_string(),
            })
            .set(remaining);
    }

    /// Set the requests left in the current rate-limit window.
    pub fn remaining_requests(&self, labels: &HeadroomLabels, remaining: i64) {
        self.remaining_requests.get_or_create(labels).set(remaining);
    }

    /// Count `n` events a callback failed to deliver; `dropped`: they never left its queue
    /// (it was full), and are also counted in `tianji_callback_events_dropped_metric`.
    pub fn callback_failure(&self, callback: &str, n: u64, dropped: bool) {
        let labels = CallbackLabels {
            callback_name: callback.to_string(),
        };
        self.callback_failures.get_or_create(&labels).inc_by(n);
        if dropped {
            self.callback_drops.get_or_create(&labels).inc_by(n);
        }
    }

    /// The text exposition; `deployments` are the states of the deployments now.
    pub fn encode(
        &self,
        deployments: impl IntoIterator<Item = (DeploymentLabels, DeploymentState)>,
    ) -> Result<String, std::fmt::Error> {
        self.deployment_state.clear();
        for (labels, state) in deployments {
            self.deployment_state
                .get_or_create(&labels)
                .set(state as i64);
        }
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// An LLM request in flight (`tianji_in_flight_requests`).
#[derive(Debug)]
pub struct InFlight(Arc<Metrics>);

impl InFlight {
    pub fn metrics(&self) -> &Metrics {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

pub use crate::util::status::exception_class;

/// A status code as a label value.
fn status_text(status: u16) -> String {
    let mut b = itoa::Buffer::new();
    b.format(status).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exposed_before_any_request() {
        let m = Metrics::new();
        let text = m.encode([]).unwrap_or_default();
        for f in [
            "tianji_proxy_total_requests_metric",
            "tianji_deployment_state",
            "tianji_in_flight_requests",
            "tianji_llm_api_time_to_first_token_metric",
            "tianji_remaining_team_budget_metric",
        ] {
            assert!(text.contains(&format!("# TYPE {f} ")), "{f} in {text}");
        }
        assert!(text.contains("tianji_in_flight_requests 0"), "{text}");
    }

    #[test]
    fn a_failure_counts_in_both_request_families() {
        let m = Metrics::new();
        let l = RequestLabels {
            requested_model: "m".into(),
            ..Default::default()
        };
        m.record(
            &l,
            &Outcome {
                status: 500,
                error_class: "InternalServerError",
                ..Default::default()
            },
        );
        let text = m.encode([]).unwrap_or_default();
        assert!(text.contains("exception_status=\"500\""), "{text}");
        assert!(text.contains("status_code=\"500\""), "{text}");
    }
}
