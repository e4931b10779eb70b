//! At most one alert per window per subject: Redis `SET key 1 NX PX window` when Redis is
//! configured (so across instances), an in-process map otherwise (or while Redis fails).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Redis key prefix of sent alerts (`{prefix}{type}:{subject}`).
pub const KEY_PREFIX: &str = "tianji:alert:";

pub struct Dedup {
    redis: Option<crate::util::redis_conn::Conn>,
    local: HashMap<String, Instant>,
}

impl Dedup {
    pub fn new(redis: Option<crate::util::redis_conn::Conn>) -> Self {
        Self {
            redis,
            local: HashMap::new(),
        }
    }

    /// Whether an alert about `subject` of `kind` may go out now (and, if so, that it did).
    pub async fn first(&mut self, kind: &str, subject: &str, window: Duration) -> bool {
        if window.is_zero() {
            return true;
        }
        let key = format!("{KEY_PREFIX}{kind}:{subject}");
        if let Some(conn) = &self.redis {
            let mut conn = conn.clone();
            let r: redis::RedisResult<Option<String>> = redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(window.as_millis().max(1) as u64)
                .query_async(&mut conn)
                .await;
            match r {
                Ok(set) => return set.is_some(),
                Err(e) => {
                    tracing::debug!(error = %e, "alert deduplication falls back to this instance")
                }
            }
        }
        let now = Instant::now();
        if self.local.len() > 10_000 {
            self.local.retain(|_, until| *until > now);
        }
        match self.local.get(&key) {
            Some(until) if *until > now => false,
            _ => {
                self.local.insert(key, now + window);
                true
            }
        }
    }
}
