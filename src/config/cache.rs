//! `tianji_settings.cache_params`: what the operator configures (checked in `crate::cache`).

use serde::Deserialize;

/// Who may share an entry (`cache_params.scope`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Every caller.
    Global,
    /// The keys of one team; a key without a team only with itself.
    #[default]
    Team,
    /// One key.
    Key,
}

/// Where entries live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Kind {
    /// In process only.
    #[default]
    #[serde(rename = "local")]
    Local,
    /// In process, in front of Redis (shared by every instance).
    #[serde(rename = "redis")]
    Redis,
    /// `redis` plus the semantic cache (LiteLLM's spelling).
    #[serde(rename = "redis-semantic")]
    RedisSemantic,
    /// `local` plus the semantic cache.
    #[serde(rename = "local-semantic")]
    LocalSemantic,
}

/// When a request is cached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every request of a supported call type (unless it says `no-cache`/`no-store`).
    #[default]
    DefaultOn,
    /// Only requests that ask with `cache: {"use-cache": true}`.
    DefaultOff,
}

/// `tianji_settings.cache_params`
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CacheParams {
    #[serde(rename = "type", default)]
    pub kind: Kind,
    /// Redis of the cache, when not the shared one (`router_settings.redis_*` or `REDIS_*`).
    pub url: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub password: Option<String>,
    /// Seconds an entry lives (default 600).
    pub ttl: Option<f64>,
    /// Prefix of every key (`tianji:cache:{namespace}:...`, default `default`).
    pub namespace: Option<String>,
    /// Call types cached (default `acompletion`, `atext_completion`, `aembedding`).
    pub supported_call_types: Option<Vec<String>>,
    #[serde(default)]
    pub mode: Mode,
    /// Who shares entries (default `team`).
    #[serde(default)]
    pub scope: Scope,
    /// Semantic cache: least cosine similarity of two prompts for a hit (0 to 1).
    pub similarity_threshold: Option<f64>,
    /// Semantic cache: the model group that embeds prompts.
    #[serde(alias = "redis_semantic_cache_embedding_model")]
    pub embedding_model: Option<String>,
    /// Seconds the in-process tier keeps an entry of the Redis tier (default 60).
    pub default_in_memory_ttl: Option<f64>,
    /// Entries the in-process tier holds (default 10,000).
    pub max_size_in_memory: Option<u64>,
}
