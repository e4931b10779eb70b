//! The response cache (`tianji_settings.cache: true`): answers of chat, completion and
//! embedding calls stored under a key over everything that changes the answer and the
//! caller's scope (`key.rs`), in an in-process tier in front of Redis (`tiers.rs`), with
//! per-request controls (`controls.rs`), streamed answers assembled for storing and stored
//! answers replayed as streams (`stream.rs`), and a semantic tier that finds earlier prompts
//! of the same meaning (`semantic.rs`). The request path uses it through
//! `pipeline::cached`.

pub mod controls;
pub mod entry;
pub mod key;
pub mod semantic;
pub mod settings;
pub mod stream;
pub mod tiers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use controls::Controls;
pub use entry::Entry;
pub use settings::{CacheParams, Settings};
use tiers::{Redis, TierError, Tiers};

use crate::spend::usage::Usage;

/// Entries per semantic partition, partitions, and entries in all, held in process (20,000
/// vectors of 1,536 dimensions are 120 MB).
const SEMANTIC_PER_PARTITION: usize = 10_000;
const SEMANTIC_PARTITIONS: usize = 10_000;
const SEMANTIC_ENTRIES: usize = 20_000;
/// Least time between two loads of one semantic partition from Redis.
const SEMANTIC_REFRESH: Duration = Duration::from_secs(1);

/// Why the cache could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    #[error(
        "tianji_settings.cache_params.type is {0} but no Redis is configured (cache_params.url or host, router_settings.redis_url, or REDIS_URL / REDIS_HOST)"
    )]
    NoRedis(&'static str),
    #[error("cache redis ({url}): {source}")]
    Redis {
        url: String,
        source: redis::RedisError,
    },
}

/// The response cache.
pub struct Cache {
    pub settings: Settings,
    pub kind: settings::Kind,
    tiers: Tiers,
    index: Option<semantic::Index>,
    /// When each semantic partition was last loaded from Redis.
    refreshed: Mutex<HashMap<String, Instant>>,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

/// How one request uses the cache.
#[derive(Debug, Clone)]
pub struct Plan {
    pub key: String,
    pub controls: Controls,
    /// The semantic partition and the prompt text, when the semantic cache applies.
    pub semantic: Option<(String, String)>,
}

/// A stored answer found for a request.
pub struct Hit {
    pub entry: Arc<Entry>,
    /// The key it was stored under (another prompt's, for a semantic hit).
    pub key: String,
    /// Cosine similarity, for a semantic hit.
    pub similarity: Option<f32>,
}

/// An answer to store once it is complete (a stream's, at its end).
pub struct Pending {
    cache: Arc<Cache>,
    key: String,
    ttl: Duration,
    /// Partition and prompt vector, for the semantic index.
    semantic: Option<(String, Vec<f32>)>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("key", &self.key).finish()
    }
}

impl Pending {
    /// Store `body` with the call's usage.
    pub fn store(self, body: Bytes, usage: Usage) {
        let entry = Entry {
            body,
            stored_at_ms: crate::util::clock::now_ms(),
            usage,
        };
        self.cache.put(self.key, entry, self.ttl, self.semantic);
    }
}

impl Cache {
    /// Set up from `cache_params`; `shared_redis` is the gateway's Redis (a server, a cluster,
    /// a Sentinel-watched primary), used when the cache names none of its own.
    pub async fn connect(
        params: &CacheParams,
        shared_redis: Option<&crate::util::redis_conn::Target>,
        tls: &crate::util::redis_tls::RedisTls,
    ) -> Result<Self, CacheError> {
        use crate::util::redis_conn::Target;
        let settings = params.settings()?;
        let redis = if settings.redis {
            let target = params
                .redis_url()
                .map(Target::Single)
                .or_else(|| shared_redis.cloned())
                .ok_or(CacheError::NoRedis(params.kind.name()))?;
            let fail = |source| CacheError::Redis {
                url: target.describe(),
                source,
            };
            // connected on first use (and again after failures): a Redis that is down at
            // startup leaves the cache working in memory, as during an outage later
            let redis = crate::util::redis_conn::Redis::open(&target, tls).map_err(fail)?;
            Some(Redis {
                conn: redis.conn(),
                redis,
                tls: tls.clone(),
            })
        } else {
            None
        };
        let index = settings.semantic.as_ref().map(|_| {
            semantic::Index::new(SEMANTIC_PER_PARTITION, SEMANTIC_PARTITIONS)
                .with_max_entries(SEMANTIC_ENTRIES)
        });
        Ok(Self {
            tiers: Tiers::new(settings.max_in_memory, settings.in_memory_ttl, redis),
            kind: params.kind,
            settings,
            index,
            refreshed: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    /// How a request of `call_type` to `group` uses the cache; None when it does not (call
    /// type not cached, `mode: default_off` without `use-cache`, neither read nor write, or
    /// no `canonical` body from the parse stage).
    pub fn plan(
        &self,
        call_type: &str,
        group: &str,
        raw: &[u8],
        canonical: Option<&[u8]>,
        controls: Controls,
        caller: key::Caller<'_>,
    ) -> Option<Plan> {
        if !self.settings.call_types.contains(call_type)
            || (self.settings.mode == settings::Mode::DefaultOff && !controls.use_cache)
            || (controls.no_cache && controls.no_store)
        {
            return None;
        }
        let ns = controls
            .namespace
            .as_deref()
            .or(self.settings.namespace.as_deref());
        let group = format!("{call_type}:{group}");
        let parts = key::KeyParts {
            group: &group,
            scope: self.settings.scope,
            caller,
            namespace: ns,
        };
        // bodies the parse stage could not put in canonical form are not cached
        let key = parts.key_of_canonical(canonical?);
        let semantic = match (&self.settings.semantic, call_type) {
            (Some(_), "acompletion" | "atext_completion") if semantic::text_only(raw) => {
                semantic::prompt_text(raw).and_then(|text| {
                    let p = parts.partition(raw).ok()?;
                    Some((p, text))
                })
            }
            _ => None,
        };
        Some(Plan {
            key,
            controls,
            semantic,
        })
    }

    /// Whether an entry is young enough for the request's `s-maxage`.
    fn fresh(entry: &Entry, controls: &Controls) -> bool {
        controls.s_maxage.is_none_or(|max| {
            entry.age_ms(crate::util::clock::now_ms())
                <= u64::try_from(max.as_millis()).unwrap_or(u64::MAX)
        })
    }

    /// The stored answer for exactly this request.
    pub async fn exact(&self, plan: &Plan) -> Option<Hit> {
        if plan.controls.no_cache {
            return None;
        }
        let entry = self.tiers.get(&plan.key).await?;
        Self::fresh(&entry, &plan.controls).then(|| Hit {
            entry,
            key: plan.key.clone(),
            similarity: None,
        })
    }

    /// The stored answer of the most similar earlier prompt in the request's partition, at
    /// or above the similarity threshold.
    pub async fn similar(&self, plan: &Plan, vector: &[f32]) -> Option<Hit> {
        let (index, sem) = (self.index.as_ref()?, self.settings.semantic.as_ref()?);
        let (partition, _) = plan.semantic.as_ref()?;
        if plan.controls.no_cache {
            return None;
        }
        let mut best = index.best(partition, vector, sem.threshold);
        if best.is_none() && self.load_partition(partition).await {
            best = index.best(partition, vector, sem.threshold);
        }
        let (key, similarity) = best?;
        let Some(entry) = self.tiers.get(&key).await else {
            // expired or deleted: forget it here too
            index.remove_key(&key);
            return None;
        };
        Self::fresh(&entry, &plan.controls).then_some(Hit {
            entry,
            key,
            similarity: Some(similarity),
        })
    }

    /// Load a partition's vectors from Redis, at most once per [`SEMANTIC_REFRESH`]; whether
    /// anything was loaded.
    async fn load_partition(&self, partition: &str) -> bool {
        let (Some(index), Some(mut conn)) = (self.index.as_ref(), self.tiers.redis()) else {
            return false;
        };
        {
            let mut r = self
                .refreshed
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            if r.get(partition)
                .is_some_and(|t| now.duration_since(*t) < SEMANTIC_REFRESH)
            {
                return false;
            }
            if r.len() >= SEMANTIC_PARTITIONS {
                r.clear();
            }
            r.insert(partition.to_string(), now);
        }
        let all: Result<HashMap<String, Vec<u8>>, _> = redis::cmd("HGETALL")
            .arg(partition)
            .query_async(&mut conn)
            .await;
        match all {
            Ok(m) => {
                let mut any = false;
                for (key, bytes) in m {
                    if let Some(v) = semantic::decode_vector(&bytes) {
                        index.insert(partition, &key, &v);
                        any = true;
                    }
                }
                any
            }
            Err(e) => {
                tracing::warn!(error = %e, "semantic cache read from redis failed");
                false
            }
        }
    }

    /// What to store once the answer is complete, unless the request said `no-store`.
    pub fn pending(self: &Arc<Self>, plan: &Plan, vector: Option<Vec<f32>>) -> Option<Pending> {
        if plan.controls.no_store {
            return None;
        }
        let semantic = match (&plan.semantic, vector) {
            (Some((p, _)), Some(v)) => Some((p.clone(), v)),
            _ => None,
        };
        Some(Pending {
            cache: self.clone(),
            key: plan.key.clone(),
            ttl: plan.controls.ttl.unwrap_or(self.settings.ttl),
            semantic,
        })
    }

    fn put(&self, key: String, entry: Entry, ttl: Duration, semantic: Option<(String, Vec<f32>)>) {
        if ttl.is_zero() {
            return;
        }
        if let (Some(index), Some((partition, vector))) = (&self.index, semantic) {
            index.insert(&partition, &key, &vector);
            if let Some(mut conn) = self.tiers.redis() {
                let (k, bytes) = (key.clone(), semantic::encode_vector(&vector));
                let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                tokio::spawn(async move {
                    let r: Result<(), _> = redis::pipe()
                        .hset(&partition, k, bytes)
                        .ignore()
                        .cmd("PEXPIRE")
                        .arg(&partition)
                        .arg(ms)
                        .ignore()
                        .query_async(&mut conn)
                        .await;
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "semantic cache write to redis failed");
                    }
                });
            }
        }
        self.tiers.put(key, entry, ttl);
    }

    /// Count a lookup's outcome.
    pub fn count(&self, hit: bool) {
        let c = if hit { &self.hits } else { &self.misses };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Delete entries everywhere; how many Redis held.
    pub async fn delete(&self, keys: &[String]) -> Result<u64, TierError> {
        if let Some(index) = &self.index {
            for k in keys {
                index.remove_key(k);
            }
        }
        self.tiers.delete(keys).await
    }

    /// Delete every entry everywhere; how many Redis held.
    pub async fn clear(&self) -> Result<u64, TierError> {
        if let Some(index) = &self.index {
            index.clear();
        }
        self.refreshed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.tiers.clear().await
    }

    /// Another instance deleted these keys (or, with `None`, everything).
    pub fn forget_local(&self, keys: Option<&[String]>) {
        match keys {
            Some(keys) => {
                if let Some(index) = &self.index {
                    for k in keys {
                        index.remove_key(k);
                    }
                }
                self.tiers.forget_local(keys);
            }
            None => {
                if let Some(index) = &self.index {
                    index.clear();
                }
                self.tiers.clear_local();
            }
        }
    }

    pub async fn ping(&self) -> Result<(), TierError> {
        self.tiers.ping().await
    }

    pub async fn redis_info(&self) -> Result<serde_json::Value, TierError> {
        self.tiers.info().await
    }

    pub fn has_redis(&self) -> bool {
        self.tiers.has_redis()
    }

    /// Entries in this instance's local tier.
    pub fn local_len(&self) -> u64 {
        self.tiers.local_len()
    }
}
