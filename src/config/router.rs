//! `router_settings` value types: the routing strategy, retries per error class, fallbacks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `router_settings.routing_strategy`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// Random, weighted by `weight`, else `rpm`, else `tpm` (uniform when none is set).
    #[default]
    #[serde(rename = "simple-shuffle", alias = "shuffle")]
    SimpleShuffle,
    /// Fewest requests in flight.
    #[serde(rename = "least-busy")]
    LeastBusy,
    /// Lowest average latency (time to the answer's first byte); unmeasured ones first.
    #[serde(rename = "latency-based-routing", alias = "lowest-latency")]
    LatencyBased,
    /// Lowest tokens used this minute (shared through Redis), within `rpm`/`tpm`.
    #[serde(
        rename = "usage-based-routing-v2",
        alias = "usage-based-routing",
        alias = "lowest-tpm-rpm",
        alias = "usage-based"
    )]
    UsageBased,
    /// Cheapest per token.
    #[serde(rename = "cost-based-routing", alias = "lowest-cost")]
    CostBased,
}

/// Retries per error class (`retry_policy`); a class left out uses `num_retries`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RetryPolicy(pub BTreeMap<RetryClass, u32>);

/// The error classes of a `retry_policy`, named as LiteLLM's keys; another key is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[allow(clippy::enum_variant_names)]
pub enum RetryClass {
    BadRequestErrorRetries,
    AuthenticationErrorRetries,
    TimeoutErrorRetries,
    RateLimitErrorRetries,
    ContentPolicyViolationErrorRetries,
    InternalServerErrorRetries,
}

impl RetryPolicy {
    /// The retries set for `class`, if any.
    pub fn get(&self, class: RetryClass) -> Option<u32> {
        self.0.get(&class).copied()
    }
}

/// `[{model: [fallback, ...]}, ...]` as LiteLLM writes it, or a plain map.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "FallbackList", into = "Vec<BTreeMap<String, Vec<String>>>")]
pub struct Fallbacks(pub BTreeMap<String, Vec<String>>);

#[derive(Deserialize)]
#[serde(untagged)]
enum FallbackList {
    List(Vec<BTreeMap<String, Vec<String>>>),
    Map(BTreeMap<String, Vec<String>>),
}

impl From<FallbackList> for Fallbacks {
    fn from(l: FallbackList) -> Self {
        match l {
            FallbackList::Map(m) => Fallbacks(m),
            FallbackList::List(v) => Fallbacks(v.into_iter().flatten().collect()),
        }
    }
}

impl From<Fallbacks> for Vec<BTreeMap<String, Vec<String>>> {
    fn from(f: Fallbacks) -> Self {
        f.0.into_iter()
            .map(|(k, v)| BTreeMap::from([(k, v)]))
            .collect()
    }
}
