//! Virtual keys as the request path sees them (looked up by sha256 hex through
//! [`super::cache::Directory`]).

use serde::Deserialize;
use serde_json::Value;

use super::records::{Limits, ObjectPermission};

/// The columns of `TianjiLLM_VerificationToken` the request path uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct KeyRecord {
    /// The key's object permission row (agents).
    pub object_permission: Option<ObjectPermission>,
    /// Access groups (agents belong to them).
    pub access_group_ids: Option<Vec<String>>,
    /// sha256 hex of the raw key.
    pub token: String,
    pub key_name: Option<String>,
    pub key_alias: Option<String>,
    /// `expires` as Unix seconds.
    pub expires_epoch: Option<f64>,
    pub models: Option<Vec<String>>,
    #[serde(flatten)]
    pub limits: Limits,
    pub blocked: Option<bool>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub organization_id: Option<String>,
    pub allowed_routes: Option<Vec<String>>,
    /// Tokens per day (batches).
    pub tpd_limit: Option<i64>,
    /// Keys of the request's `cache` object this key may set (empty or missing = any).
    pub allowed_cache_controls: Option<Vec<String>>,
    /// `{model: [fallback models]}` used when the model's budget is spent.
    pub budget_fallbacks: Value,
    /// `{asked model: model group}`: names this key may call a model group by.
    pub aliases: Value,
    pub metadata: Value,
}

impl KeyRecord {
    /// The model group the key's `aliases` map `model` to.
    pub fn alias(&self, model: &str) -> Option<&str> {
        self.aliases.get(model)?.as_str()
    }
}
