//! The two storage tiers: an in-process moka cache in front of Redis (when configured). Reads
//! go to Redis only on a local miss; writes to Redis never hold up an answer (they run in a
//! task of their own). An entry read from Redis is kept locally for at most its remaining life
//! in Redis and `default_in_memory_ttl`.

use std::sync::Arc;
use std::time::Duration;

use crate::util::redis_conn::Conn;
use moka::Expiry;

use super::entry::Entry;

/// Every key the cache writes starts with this (so flushing never touches other Redis data).
pub const PREFIX: &str = "tianji:cache:";

/// An entry in the local tier and how long it may stay there.
#[derive(Clone)]
struct Local {
    entry: Arc<Entry>,
    life: Duration,
}

struct LocalLife;

impl Expiry<String, Local> for LocalLife {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Local,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.life)
    }
    fn expire_after_update(
        &self,
        _key: &String,
        value: &Local,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.life)
    }
}

/// Why Redis did not do what the cache asked.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error("the cache has no Redis tier (cache_params.type is local)")]
    NoRedis,
    #[error("cache redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// The Redis tier.
pub struct Redis {
    pub redis: crate::util::redis_conn::Redis,
    pub conn: Conn,
    /// The TLS files, for connections to each primary.
    pub tls: crate::util::redis_tls::RedisTls,
}

/// Local and (optionally) Redis storage.
pub struct Tiers {
    local: moka::sync::Cache<String, Local>,
    redis: Option<Redis>,
    in_memory_ttl: Duration,
}

impl Tiers {
    pub fn new(max_in_memory: u64, in_memory_ttl: Duration, redis: Option<Redis>) -> Self {
        let local = moka::sync::Cache::builder()
            .max_capacity(max_in_memory)
            .expire_after(LocalLife)
            .build();
        Self {
            local,
            redis,
            in_memory_ttl,
        }
    }

    pub fn has_redis(&self) -> bool {
        self.redis.is_some()
    }

    /// A connection to the Redis tier, if there is one.
    pub fn redis(&self) -> Option<Conn> {
        self.redis.as_ref().map(|r| r.conn.clone())
    }

    /// Entries in the local tier.
    pub fn local_len(&self) -> u64 {
        // moka counts lazily: settle pending inserts and evictions first (admin route only)
        self.local.run_pending_tasks();
        self.local.entry_count()
    }

    /// The local entry, else Redis's (then kept locally). A Redis failure is a miss.
    pub async fn get(&self, key: &str) -> Option<Arc<Entry>> {
        if let Some(l) = self.local.get(key) {
            return Some(l.entry);
        }
        let mut conn = self.redis()?;
        let got: Result<(Option<Vec<u8>>, i64), _> = redis::pipe()
            .get(key)
            .pttl(key)
            .query_async(&mut conn)
            .await;
        let (value, pttl) = match got {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "cache read from redis failed; treated as a miss");
                return None;
            }
        };
        let entry = Arc::new(Entry::decode(&value?)?);
        // -1: no expiry; -2: gone meanwhile
        let left = match pttl {
            -2 => return None,
            ms if ms > 0 => Duration::from_millis(ms.unsigned_abs()),
            _ => self.in_memory_ttl,
        };
        self.local.insert(
            key.to_string(),
            Local {
                entry: entry.clone(),
                life: left.min(self.in_memory_ttl),
            },
        );
        Some(entry)
    }

    /// Store for `ttl`: locally now, in Redis from a task of its own.
    pub fn put(&self, key: String, entry: Entry, ttl: Duration) {
        let entry = Arc::new(entry);
        if let Some(mut conn) = self.redis() {
            let (k, v) = (key.clone(), entry.encode());
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            tokio::spawn(async move {
                let set: Result<(), _> = redis::cmd("SET")
                    .arg(&k)
                    .arg(v)
                    .arg("PX")
                    .arg(ms)
                    .query_async(&mut conn)
                    .await;
                if let Err(e) = set {
                    tracing::warn!(error = %e, "cache write to redis failed");
                }
            });
        }
        let life = if self.has_redis() {
            ttl.min(self.in_memory_ttl)
        } else {
            ttl
        };
        self.local.insert(key, Local { entry, life });
    }

    /// Drop these keys from this instance's local tier.
    pub fn forget_local(&self, keys: &[String]) {
        for k in keys {
            self.local.invalidate(k);
        }
    }

    /// Drop this instance's local tier.
    pub fn clear_local(&self) {
        self.local.invalidate_all();
    }

    /// Delete keys in both tiers (Redis first, so a concurrent read cannot bring them back
    /// from there); returns how many Redis held.
    pub async fn delete(&self, keys: &[String]) -> Result<u64, TierError> {
        let mut n = 0;
        if let Some(mut conn) = self.redis()
            && !keys.is_empty()
        {
            n = redis::cmd("DEL")
                .arg(keys)
                .query_async::<u64>(&mut conn)
                .await?;
        }
        self.forget_local(keys);
        Ok(n)
    }

    /// Delete every cache key in both tiers (only the cache's: Redis may hold other data);
    /// returns how many Redis held.
    pub async fn clear(&self) -> Result<u64, TierError> {
        let mut n = 0;
        let primaries = match &self.redis {
            Some(r) => r.redis.primaries(&r.tls).await?,
            None => Vec::new(),
        };
        for mut conn in primaries {
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{PREFIX}*"))
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await?;
                if !keys.is_empty() {
                    // one key a command: a cluster node's keys may sit in different slots
                    let mut p = redis::pipe();
                    for k in &keys {
                        p.cmd("UNLINK").arg(k);
                    }
                    let counts: Vec<u64> = p.query_async(&mut conn).await?;
                    n += counts.iter().sum::<u64>();
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        self.clear_local();
        Ok(n)
    }

    /// PING, then a write and a read of a health-check key.
    pub async fn ping(&self) -> Result<(), TierError> {
        let r = self.redis.as_ref().ok_or(TierError::NoRedis)?;
        let mut c = r.redis.own_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut c).await?;
        let k = format!("{PREFIX}health_check");
        redis::cmd("SET")
            .arg(&k)
            .arg("ok")
            .arg("EX")
            .arg(10)
            .query_async::<()>(&mut c)
            .await?;
        redis::cmd("GET")
            .arg(&k)
            .query_async::<String>(&mut c)
            .await?;
        Ok(())
    }

    /// `INFO` (as a map of its fields) and `CLIENT LIST` (one map per client).
    pub async fn info(&self) -> Result<serde_json::Value, TierError> {
        let r = self.redis.as_ref().ok_or(TierError::NoRedis)?;
        let mut c = r.redis.own_connection().await?;
        let info: String = redis::cmd("INFO").query_async(&mut c).await?;
        let clients: String = redis::cmd("CLIENT").arg("LIST").query_async(&mut c).await?;
        let mut fields = serde_json::Map::new();
        for line in info.lines() {
            if let Some((k, v)) = line.trim().split_once(':') {
                fields.insert(k.to_string(), info_value(v));
            }
        }
        let clients: Vec<serde_json::Value> = clients
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let m: serde_json::Map<String, serde_json::Value> = l
                    .split(' ')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
                    .collect();
                serde_json::Value::Object(m)
            })
            .collect();
        Ok(serde_json::json!({
            "num_clients": clients.len(),
            "clients": clients,
            "info": fields,
        }))
    }
}

/// An `INFO` value: a number when it is one.
fn info_value(v: &str) -> serde_json::Value {
    if let Ok(i) = v.parse::<i64>() {
        return i.into();
    }
    match v.parse::<f64>() {
        Ok(f) if f.is_finite() => f.into(),
        _ => serde_json::Value::String(v.to_string()),
    }
}
