//! `tianji_settings.cache` and `cache_params`: what the operator configures, checked once at
//! startup into [`Settings`].

use std::collections::BTreeSet;
use std::time::Duration;

use super::key::Scope;
pub use crate::config::cache::{CacheParams, Kind, Mode};

/// Seconds an entry lives when neither `cache_params.ttl` nor the request says (10 minutes).
pub const DEFAULT_TTL_SECS: u64 = 600;
/// Seconds the in-process tier keeps an entry of the Redis tier (`default_in_memory_ttl`).
pub const DEFAULT_IN_MEMORY_TTL_SECS: u64 = 60;
/// Entries the in-process tier holds (`max_size_in_memory`).
pub const DEFAULT_MAX_IN_MEMORY: u64 = 10_000;
/// The call types cached by default (LiteLLM's names).
pub const DEFAULT_CALL_TYPES: [&str; 3] = ["acompletion", "atext_completion", "aembedding"];

/// The semantic cache's settings.
#[derive(Debug, Clone)]
pub struct Semantic {
    pub threshold: f32,
    pub embedding_model: String,
}

/// Checked cache settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Connect to Redis (`redis`, `redis-semantic`).
    pub redis: bool,
    pub ttl: Duration,
    pub namespace: Option<String>,
    pub call_types: BTreeSet<&'static str>,
    pub mode: Mode,
    pub scope: Scope,
    pub semantic: Option<Semantic>,
    pub in_memory_ttl: Duration,
    pub max_in_memory: u64,
}

/// A `cache_params` value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("tianji_settings.cache_params.{field}: {message}")]
pub struct SettingsError {
    pub field: &'static str,
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        field,
        message: message.into(),
    }
}

fn seconds(v: Option<f64>, field: &'static str, default: u64) -> Result<Duration, SettingsError> {
    match v {
        None => Ok(Duration::from_secs(default)),
        Some(s) if s.is_finite() && s > 0.0 => Duration::try_from_secs_f64(s)
            .map_err(|_| err(field, format!("{s} is not a usable number of seconds"))),
        Some(s) => Err(err(
            field,
            format!("must be a positive number of seconds, got {s}"),
        )),
    }
}

/// The call types the cache can serve, by LiteLLM's names (sync names included).
fn call_type(name: &str) -> Option<&'static str> {
    Some(match name {
        "acompletion" | "completion" => "acompletion",
        "atext_completion" | "text_completion" => "atext_completion",
        "aembedding" | "embedding" => "aembedding",
        _ => return None,
    })
}

impl CacheParams {
    /// Check the values; unknown call types are left out with a warning (LiteLLM configs list
    /// types this gateway does not cache, such as `atranscription`).
    pub fn settings(&self) -> Result<Settings, SettingsError> {
        let ttl = seconds(self.ttl, "ttl", DEFAULT_TTL_SECS)?;
        let in_memory_ttl = seconds(
            self.default_in_memory_ttl,
            "default_in_memory_ttl",
            DEFAULT_IN_MEMORY_TTL_SECS,
        )?;
        let mut call_types = BTreeSet::new();
        match &self.supported_call_types {
            None => call_types.extend(DEFAULT_CALL_TYPES),
            Some(names) => {
                for n in names {
                    match call_type(n) {
                        Some(t) => {
                            call_types.insert(t);
                        }
                        None => tracing::warn!(
                            call_type = %n,
                            "cache_params.supported_call_types: this call type is not cached"
                        ),
                    }
                }
            }
        }
        let semantic_kind = matches!(self.kind, Kind::RedisSemantic | Kind::LocalSemantic);
        let semantic = match (semantic_kind || self.similarity_threshold.is_some(), self) {
            (false, _) => None,
            (true, p) => {
                let t = p.similarity_threshold.ok_or_else(|| {
                    err(
                        "similarity_threshold",
                        "the semantic cache needs a similarity threshold between 0 and 1",
                    )
                })?;
                if !(t.is_finite() && t > 0.0 && t <= 1.0) {
                    return Err(err(
                        "similarity_threshold",
                        format!("must be above 0 and at most 1, got {t}"),
                    ));
                }
                let model = p
                    .embedding_model
                    .clone()
                    .filter(|m| !m.trim().is_empty())
                    .ok_or_else(|| {
                        err(
                            "embedding_model",
                            "the semantic cache needs the model group that embeds prompts",
                        )
                    })?;
                Some(Semantic {
                    threshold: t as f32,
                    embedding_model: model,
                })
            }
        };
        let max_in_memory = self.max_size_in_memory.unwrap_or(DEFAULT_MAX_IN_MEMORY);
        if max_in_memory == 0 {
            return Err(err("max_size_in_memory", "must be at least 1"));
        }
        Ok(Settings {
            redis: matches!(self.kind, Kind::Redis | Kind::RedisSemantic),
            ttl,
            namespace: self.namespace.clone().filter(|n| !n.is_empty()),
            call_types,
            mode: self.mode,
            scope: self.scope,
            semantic,
            in_memory_ttl,
            max_in_memory,
        })
    }

    /// The cache's own Redis URL, when `url` or `host` is set.
    pub fn redis_url(&self) -> Option<String> {
        if let Some(u) = self.url.clone().filter(|u| !u.is_empty()) {
            return Some(u);
        }
        let host = self.host.clone().filter(|h| !h.is_empty())?;
        let port = self.port.unwrap_or(6379);
        let auth = match &self.password {
            Some(p) if !p.is_empty() => format!(":{p}@"),
            _ => String::new(),
        };
        Some(format!("redis://{auth}{host}:{port}"))
    }
}

impl Kind {
    /// The name `/cache/ping` and readiness report.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Local => "local",
            Kind::Redis => "redis",
            Kind::RedisSemantic => "redis-semantic",
            Kind::LocalSemantic => "local-semantic",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: serde_json::Value) -> CacheParams {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn defaults_and_checks() {
        let s = params(serde_json::json!({})).settings().unwrap();
        assert!(!s.redis);
        assert_eq!(s.ttl, Duration::from_secs(600));
        assert_eq!(s.scope, Scope::Team);
        assert_eq!(s.mode, Mode::DefaultOn);
        assert_eq!(s.call_types.len(), 3);
        assert!(s.semantic.is_none());

        let s = params(serde_json::json!({"type": "redis-semantic", "similarity_threshold": 0.8,
            "redis_semantic_cache_embedding_model": "emb", "supported_call_types": ["completion", "atranscription"],
            "mode": "default_off", "scope": "global", "ttl": 5}))
        .settings()
        .unwrap();
        assert!(s.redis);
        assert_eq!(s.semantic.unwrap().embedding_model, "emb");
        assert_eq!(
            s.call_types.iter().copied().collect::<Vec<_>>(),
            ["acompletion"]
        );
        assert_eq!(s.mode, Mode::DefaultOff);
        assert_eq!(s.scope, Scope::Global);

        for bad in [
            serde_json::json!({"ttl": -1}),
            serde_json::json!({"type": "redis-semantic"}),
            serde_json::json!({"similarity_threshold": 1.5, "embedding_model": "e"}),
            serde_json::json!({"similarity_threshold": 0.5}),
            serde_json::json!({"max_size_in_memory": 0}),
        ] {
            assert!(params(bad.clone()).settings().is_err(), "{bad}");
        }
        assert!(serde_json::from_value::<CacheParams>(serde_json::json!({"type": "s3"})).is_err());
    }

    #[test]
    fn own_redis_url() {
        let p = params(serde_json::json!({"host": "h", "port": 7000, "password": "pw"}));
        assert_eq!(p.redis_url().unwrap(), "redis://:pw@h:7000");
        assert!(params(serde_json::json!({})).redis_url().is_none());
    }
}
