//! Virtual keys: looked up by sha256 hex through a moka cache in front of Postgres. A hit makes
//! no database query; unknown keys are cached briefly too, so a flood of bad keys cannot turn
//! into a flood of queries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use crate::store::{Query, Store, StoreError};

/// How long a found key stays cached (writes through the management API invalidate sooner).
const POSITIVE_TTL: Duration = Duration::from_secs(60);
/// How long "no such key" stays cached.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);

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
    pub metadata: Value,
}

type Entry = Option<Arc<KeyRecord>>;

struct Expiry;

impl moka::Expiry<String, Entry> for Expiry {
    fn expire_after_create(&self, _: &String, v: &Entry, _: Instant) -> Option<Duration> {
        Some(if v.is_some() {
            POSITIVE_TTL
        } else {
            NEGATIVE_TTL
        })
    }
}

/// The key cache.
pub struct KeyCache {
    store: Arc<Store>,
    cache: moka::future::Cache<String, Entry>,
}

impl KeyCache {
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            cache: moka::future::Cache::builder()
                .max_capacity(1_000_000)
                .expire_after(Expiry)
                .build(),
        }
    }

    /// The key with this sha256 hex, if it exists. Concurrent misses share one query.
    pub async fn get(&self, token: &str) -> Result<Entry, Arc<StoreError>> {
        if let Some(hit) = self.cache.get(token).await {
            return Ok(hit);
        }
        let store = self.store.clone();
        let t = token.to_string();
        self.cache
            .try_get_with(token.to_string(), async move {
                let rows = store.query(Query::GetKeyByToken, &[&t]).await?;
                let Some(row) = rows.first() else {
                    return Ok::<Entry, StoreError>(None);
                };
                let v: Value = row.try_get(0)?;
                let rec: KeyRecord = serde_json::from_value(v)
                    .map_err(|e| StoreError::Unavailable(format!("unreadable key row: {e}")))?;
                Ok(Some(Arc::new(rec)))
            })
            .await
    }

    /// Forget a key (after a write, or an invalidation message from another instance).
    pub async fn invalidate(&self, token: &str) {
        self.cache.invalidate(token).await;
    }
}
