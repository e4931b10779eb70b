//! Response cache administration (proxy admins): `GET /cache/ping`, `POST /cache/delete`
//! (`{"keys": [...]}`), `POST /cache/flushall`, `GET /cache/redis/info`. Deletions reach the
//! in-process tier of every instance through the invalidation channel.

use http::{Method, Response};
use serde::Deserialize;
use serde_json::json;

use super::routes::Live;
use super::{AdminError, ok};
use crate::auth::Changed;
use crate::body::Body;
use crate::cache::Cache;
use crate::cache::tiers::PREFIX;
use crate::pipeline::parse::read_declared;
use crate::state::AppState;

/// Most keys one `/cache/delete` takes.
const MAX_DELETE: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteBody {
    keys: Vec<String>,
}

fn cache(state: &AppState) -> Result<&Cache, AdminError> {
    state.cache.as_deref().ok_or_else(|| {
        AdminError::CacheUnavailable(
            "Cache not initialized. Set tianji_settings.cache: true (and cache_params) to use it."
                .into(),
        )
    })
}

fn unavailable(e: impl std::fmt::Display) -> AdminError {
    AdminError::CacheUnavailable(format!("Cache unavailable: {e}"))
}

/// The settings `/cache/ping` shows (no URL, no password).
fn params(c: &Cache) -> serde_json::Value {
    let s = &c.settings;
    json!({
        "type": c.kind.name(),
        "ttl": s.ttl.as_secs_f64(),
        "namespace": s.namespace,
        "mode": match s.mode { crate::cache::settings::Mode::DefaultOn => "default_on", crate::cache::settings::Mode::DefaultOff => "default_off" },
        "scope": match s.scope { crate::cache::key::Scope::Global => "global", crate::cache::key::Scope::Team => "team", crate::cache::key::Scope::Key => "key" },
        "supported_call_types": s.call_types,
        "similarity_threshold": s.semantic.as_ref().map(|m| m.threshold),
        "embedding_model": s.semantic.as_ref().map(|m| m.embedding_model.clone()),
        "default_in_memory_ttl": s.in_memory_ttl.as_secs_f64(),
        "max_size_in_memory": s.max_in_memory,
    })
}

/// `GET /cache/ping`
pub async fn ping(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let c = cache(live.state)?;
    if c.has_redis() {
        c.ping().await.map_err(unavailable)?;
    }
    Ok(ok(&json!({
        "status": "healthy",
        "cache_type": c.kind.name(),
        "ping_response": true,
        "set_cache_response": "success",
        "cache_params": params(c),
        "local_entries": c.local_len(),
        "hits": c.hits.load(std::sync::atomic::Ordering::Relaxed),
        "misses": c.misses.load(std::sync::atomic::Ordering::Relaxed),
    })))
}

/// `GET /cache/redis/info`
pub async fn redis_info(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let c = cache(live.state)?;
    Ok(ok(&c.redis_info().await.map_err(unavailable)?))
}

/// `POST /cache/flushall`
pub async fn flush_all(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let c = cache(live.state)?;
    let n = c.clear().await.map_err(unavailable)?;
    live.state.invalidate(&[Changed::CacheAll]).await;
    Ok(ok(&json!({"status": "success", "deleted": n})))
}

/// `POST /cache/delete`
pub async fn delete(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let Live { state, req, .. } = live;
    let c = cache(state)?;
    debug_assert_eq!(req.method(), Method::POST);
    let (parts, body) = req.into_parts();
    let body = read_declared(&parts.headers, body, state.max_body_bytes).await?;
    let b: DeleteBody =
        serde_json::from_slice(&body).map_err(|e| AdminError::invalid("keys", e.to_string()))?;
    if b.keys.len() > MAX_DELETE {
        return Err(AdminError::invalid(
            "keys",
            format!("at most {MAX_DELETE} keys at once"),
        ));
    }
    // only cache keys: Redis holds other data (rate limits, ...) too
    if let Some(bad) = b
        .keys
        .iter()
        .find(|k| !k.starts_with(PREFIX) || k.contains(char::is_whitespace))
    {
        return Err(AdminError::invalid(
            "keys",
            format!("{bad:?} is not a cache key (they start with {PREFIX})"),
        ));
    }
    let n = c.delete(&b.keys).await.map_err(unavailable)?;
    if !b.keys.is_empty() {
        state.invalidate(&[Changed::CacheEntries(b.keys)]).await;
    }
    Ok(ok(&json!({"status": "success", "deleted": n})))
}
