//! Cache invalidation across instances: every governance write publishes what changed on a
//! Redis channel; every instance listens and drops those records from its caches (and reloads
//! database models). A listener that loses Redis drops everything once it is back, since it may
//! have missed messages. Without Redis, each instance's short cache TTLs bound staleness.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;

use super::Changed;

/// The channel every instance shares.
pub const CHANNEL: &str = "tianji:invalidate";

/// Publishes changes; see [`listen`].
pub struct Bus {
    redis: crate::util::redis_conn::Redis,
    conn: crate::util::redis_conn::Conn,
    /// This instance, so it can skip its own messages.
    instance: String,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("instance", &self.instance)
            .finish()
    }
}

/// Something that applies changes heard from other instances.
pub trait Apply: Send + Sync + 'static {
    fn apply(&self, changed: Vec<Changed>) -> impl std::future::Future<Output = ()> + Send;
}

impl Bus {
    /// Set up for `target` without connecting: the shared connection is made on first use
    /// and remade whenever it fails, so a Redis that is down (at startup or later) is used as
    /// soon as it is back. Fails only on a malformed URL (or a TLS file that cannot be read).
    pub fn open(
        target: &crate::util::redis_conn::Target,
        tls: &crate::util::redis_tls::RedisTls,
    ) -> Result<Self, redis::RedisError> {
        let redis = crate::util::redis_conn::Redis::open(target, tls)?;
        Ok(Self {
            conn: redis.conn(),
            redis,
            instance: uuid::Uuid::now_v7().simple().to_string(),
        })
    }

    /// Whether Redis answers within `within`, on a connection of its own (so a slow or dead
    /// Redis never disturbs the shared connection).
    pub async fn ping(&self, within: Duration) -> bool {
        self.probe(within).await.is_ok()
    }

    /// [`Bus::ping`], with the reason when Redis does not answer.
    pub async fn probe(&self, within: Duration) -> Result<(), String> {
        let check = async {
            let mut c = self.redis.own_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut c).await
        };
        match tokio::time::timeout(within, check).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {within:?}")),
        }
    }

    /// A handle on the Redis connection (for other shared state).
    pub fn conn(&self) -> crate::util::redis_conn::Conn {
        self.conn.clone()
    }

    /// Tell the other instances (best effort: a failure is logged, the writer's own caches are
    /// already clean and the others' expire within their TTL).
    pub async fn publish(&self, changed: &[Changed]) {
        if changed.is_empty() {
            return;
        }
        let mut msg = self.instance.clone();
        for c in changed {
            msg.push('\n');
            msg.push_str(&c.encode());
        }
        let mut conn = self.conn.clone();
        if let Err(e) = conn.publish::<_, _, i64>(CHANNEL, msg).await {
            tracing::warn!(error = %e, "could not publish a cache invalidation");
        }
    }

    /// Listen until `target` is dropped, reconnecting after errors.
    pub fn listen<A: Apply>(self: Arc<Self>, target: Weak<A>) {
        tokio::spawn(async move {
            // warn once per outage, not every second
            let mut warned = false;
            let mut attempt = 0;
            loop {
                if target.strong_count() == 0 {
                    return;
                }
                attempt += 1;
                match self.redis.pubsub(attempt).await {
                    Ok(mut ps) => {
                        if ps.subscribe(CHANNEL).await.is_ok() {
                            // what changed before this subscription was not heard: after a
                            // reconnection, and at startup too (the instance loaded its models
                            // and began serving before it subscribed, so a change another
                            // instance published in between would stay unseen)
                            if let Some(t) = target.upgrade() {
                                t.apply(vec![Changed::All]).await;
                            }
                            warned = false;
                            let mut stream = ps.on_message();
                            while let Some(msg) = stream.next().await {
                                let Some(t) = target.upgrade() else {
                                    return;
                                };
                                let Ok(text) = msg.get_payload::<String>() else {
                                    continue;
                                };
                                let mut lines = text.lines();
                                if lines.next() == Some(self.instance.as_str()) {
                                    continue;
                                }
                                t.apply(lines.filter_map(Changed::decode).collect()).await;
                            }
                        }
                        tracing::warn!("lost the cache invalidation channel; reconnecting");
                    }
                    // messages may be missed until the first subscription (Redis down at
                    // startup): it drops everything, as every subscription does
                    Err(e) if !warned => {
                        warned = true;
                        tracing::warn!(error = %e, "cannot subscribe to cache invalidations; retrying every second");
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot subscribe to cache invalidations");
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}
