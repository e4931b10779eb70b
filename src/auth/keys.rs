//! Virtual keys as the request path sees them (looked up by sha256 hex through
//! [`super::cache::Directory`]).

use serde::Deserialize;
use serde_json::Value;

/// The columns of `TianjiLLM_VerificationToken` the request path uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct KeyRecord {
    /// sha256 hex of the raw key.
    pub token: String,
    pub key_name: Option<String>,
    pub key_alias: Option<String>,
    pub spend: f64,
    pub max_budget: Option<f64>,
    /// `expires` as Unix seconds.
    pub expires_epoch: Option<f64>,
    pub models: Option<Vec<String>>,
    pub blocked: Option<bool>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub organization_id: Option<String>,
    pub allowed_routes: Option<Vec<String>>,
    pub rpm_limit: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    /// Tokens per day (batches).
    pub tpd_limit: Option<i64>,
    /// Keys of the request's `cache` object this key may set (empty or missing = any).
    pub allowed_cache_controls: Option<Vec<String>>,
    /// `{model: {budget_limit, time_period}}`
    pub model_max_budget: Value,
    /// `{model: [fallback models]}` used when the model's budget is spent.
    pub budget_fallbacks: Value,
    pub metadata: Value,
}
