//! One Redis, whatever its shape: a single server (`redis_url`), a Redis Cluster
//! (`redis_startup_nodes`), or a primary watched by Sentinel (`service_name` +
//! `sentinel_nodes`). Every use of Redis (limits, cache, cooldowns, usage routing, spend
//! windows, alerts, invalidation) holds a [`Conn`] and reads pub/sub through
//! [`Redis::pubsub`].
//!
//! - Single: redis's `ConnectionManager` (connected on first use, remade after failures).
//! - Cluster: redis's cluster connection (slots, redirections, a failed-over primary's
//!   replica), made on first use and again after it cannot reach the cluster. Keys a script or
//!   pipeline touches together share a hash tag (`tianji:{rl}:...`) so they live in one slot.
//!   Pub/sub (broadcast to the whole cluster) listens on one node, the next one after a failure.
//! - Sentinel: a connection to the primary the sentinels name, asked again after a connection
//!   error or a `READONLY` answer (the old primary demoted): after a failover the next call
//!   reaches the new primary.
//!
//! A call that fails is not retried here: callers decide (the limiter falls back to counting in
//! memory, sinks retry later), as with a single server.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Client, Cmd, Pipeline, RedisError, RedisFuture, Value};

use super::redis_tls::RedisTls;

/// Where Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One server (`redis://` or `rediss://`).
    Single(String),
    /// A Redis Cluster: URLs of some of its nodes (the rest are discovered).
    Cluster(Vec<String>),
    /// A primary that Sentinel watches.
    Sentinel {
        /// The name the sentinels monitor it as (`service_name`).
        service: String,
        /// The sentinels' URLs (with `sentinel_password`, if any).
        sentinels: Vec<String>,
        /// A URL whose scheme, user, password and database apply to the primary (its host is
        /// a placeholder: the sentinels name the primary): `redis://user:pass@primary/0`,
        /// `rediss://...` for TLS.
        primary: String,
    },
}

impl Target {
    /// How it may be shown (passwords hidden).
    pub fn describe(&self) -> String {
        let hide = |u: &String| hide_userinfo(u);
        match self {
            Target::Single(u) => hide(u),
            Target::Cluster(nodes) => format!(
                "cluster {}",
                nodes.iter().map(hide).collect::<Vec<_>>().join(",")
            ),
            Target::Sentinel {
                service, sentinels, ..
            } => format!(
                "sentinel service {service} via {}",
                sentinels.iter().map(hide).collect::<Vec<_>>().join(",")
            ),
        }
    }
}

/// `scheme://***@host...` for a URL with userinfo.
fn hide_userinfo(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***@{}", &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// A Redis of some shape, not yet connected.
#[derive(Clone)]
pub struct Redis {
    target: Target,
    conn: Conn,
    /// Clients pub/sub may listen through (one per known node; the primary's for Sentinel is
    /// asked when listening).
    listeners: Arc<Vec<Client>>,
    sentinel: Option<Arc<SentinelPrimary>>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("target", &self.target.describe())
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Set up without connecting: connections are made on first use and remade after
    /// failures. Fails on a malformed URL or a TLS file that cannot be read.
    pub fn open(target: &Target, tls: &RedisTls) -> Result<Self, RedisError> {
        match target {
            Target::Single(url) => {
                let client = tls.client(url)?;
                let conn = ConnectionManager::new_lazy_with_config(
                    client.clone(),
                    redis::aio::ConnectionManagerConfig::new(),
                )?;
                Ok(Self {
                    target: target.clone(),
                    conn: Conn::Single(conn),
                    listeners: Arc::new(vec![client]),
                    sentinel: None,
                })
            }
            Target::Cluster(nodes) => {
                let first = nodes.first().ok_or_else(|| invalid("no cluster node"))?;
                // a command to a primary that just died is retried a few times, quickly,
                // while the cluster promotes its replica (redis's default backs off for up
                // to minutes, holding the request that long)
                let mut b = redis::cluster::ClusterClientBuilder::new(nodes.clone())
                    .retries(4)
                    .min_retry_wait(50)
                    .max_retry_wait(1000)
                    .connection_timeout(std::time::Duration::from_secs(1))
                    .response_timeout(std::time::Duration::from_secs(5));
                if let Some(certs) = tls.certificates(first)? {
                    b = b.certs(certs);
                }
                let client = b.build()?;
                let listeners = nodes
                    .iter()
                    .map(|n| tls.client(n))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Self {
                    target: target.clone(),
                    conn: Conn::Cluster(Arc::new(LazyCluster {
                        client,
                        conn: ArcSwapOption::empty(),
                        connecting: tokio::sync::Mutex::new(()),
                    })),
                    listeners: Arc::new(listeners),
                    sentinel: None,
                })
            }
            Target::Sentinel {
                service,
                sentinels,
                primary,
            } => {
                let info = redis::IntoConnectionInfo::into_connection_info(primary.as_str())?;
                let mut node = redis::sentinel::SentinelNodeConnectionInfo::default()
                    .set_redis_connection_info(info.redis_settings().clone());
                if primary.starts_with("rediss://") {
                    node = node.set_tls_mode(redis::TlsMode::Secure);
                }
                let client = redis::sentinel::SentinelClient::build(
                    sentinels.clone(),
                    service.clone(),
                    Some(node),
                    redis::sentinel::SentinelServerType::Master,
                )?;
                let s = Arc::new(SentinelPrimary {
                    client: tokio::sync::Mutex::new(client),
                    conn: ArcSwapOption::empty(),
                });
                Ok(Self {
                    target: target.clone(),
                    conn: Conn::Sentinel(s.clone()),
                    listeners: Arc::new(Vec::new()),
                    sentinel: Some(s),
                })
            }
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// A handle on the shared connection.
    pub fn conn(&self) -> Conn {
        self.conn.clone()
    }

    /// A connection of its own to one server (health checks, `INFO`, pub/sub publishing is
    /// not done here): the single server, the first cluster node that answers, the primary.
    pub async fn own_connection(&self) -> Result<MultiplexedConnection, RedisError> {
        if let Some(s) = &self.sentinel {
            return s.client.lock().await.get_async_connection().await;
        }
        let mut last = invalid("no Redis node");
        for c in self.listeners.iter() {
            match c.get_multiplexed_async_connection().await {
                Ok(conn) => return Ok(conn),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A connection to every primary (the cluster's, from `CLUSTER NODES`; else the one
    /// server or primary): for what must visit every key (`SCAN`).
    pub async fn primaries(
        &self,
        tls: &RedisTls,
    ) -> Result<Vec<MultiplexedConnection>, RedisError> {
        let mut first = self.own_connection().await?;
        let Target::Cluster(nodes) = &self.target else {
            return Ok(vec![first]);
        };
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut first)
            .await?;
        // the scheme and userinfo of the configured nodes, with each primary's address
        let prefix = nodes
            .first()
            .and_then(|n| n.rfind(['@', '/']).map(|i| &n[..=i]))
            .unwrap_or("redis://");
        let mut out = Vec::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(addr), Some(flags)) = (f.get(1), f.get(2)) else {
                continue;
            };
            if !flags.split(',').any(|x| x == "master") || flags.contains("fail") {
                continue;
            }
            let addr = addr.split('@').next().unwrap_or(addr);
            let url = format!("{prefix}{addr}");
            out.push(tls.client(&url)?.get_multiplexed_async_connection().await?);
        }
        Ok(out)
    }

    /// A pub/sub connection: the single server, a cluster node (starting at `attempt`, so a
    /// listener that lost its node tries the next), the primary Sentinel names now.
    pub async fn pubsub(&self, attempt: usize) -> Result<redis::aio::PubSub, RedisError> {
        if let Some(s) = &self.sentinel {
            let client = s.client.lock().await.async_get_client().await?;
            return client.get_async_pubsub().await;
        }
        let n = self.listeners.len().max(1);
        let mut last = invalid("no Redis node");
        for i in 0..n {
            let Some(c) = self.listeners.get((attempt + i) % n) else {
                break;
            };
            match c.get_async_pubsub().await {
                Ok(p) => return Ok(p),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

fn invalid(msg: &'static str) -> RedisError {
    RedisError::from(std::io::Error::new(std::io::ErrorKind::InvalidInput, msg))
}

/// The shared connection to a Redis of any shape; cheap to clone.
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(Arc<LazyCluster>),
    Sentinel(Arc<SentinelPrimary>),
}

/// A cluster connection made on first use.
pub struct LazyCluster {
    client: redis::cluster::ClusterClient,
    conn: ArcSwapOption<ClusterConnection>,
    connecting: tokio::sync::Mutex<()>,
}

impl LazyCluster {
    async fn get(&self) -> Result<ClusterConnection, RedisError> {
        if let Some(c) = self.conn.load_full() {
            return Ok(ClusterConnection::clone(&c));
        }
        let _one = self.connecting.lock().await;
        if let Some(c) = self.conn.load_full() {
            return Ok(ClusterConnection::clone(&c));
        }
        let c = self.client.get_async_connection().await?;
        self.conn.store(Some(Arc::new(c.clone())));
        Ok(c)
    }

    /// Forget a connection that cannot reach the cluster any more.
    fn check<T>(&self, r: &Result<T, RedisError>) {
        if let Err(e) = r
            && lost(e)
        {
            self.conn.store(None);
        }
    }
}

/// The connection to the primary Sentinel names, asked again after it failed.
pub struct SentinelPrimary {
    client: tokio::sync::Mutex<redis::sentinel::SentinelClient>,
    conn: ArcSwapOption<MultiplexedConnection>,
}

impl SentinelPrimary {
    async fn get(&self) -> Result<MultiplexedConnection, RedisError> {
        if let Some(c) = self.conn.load_full() {
            return Ok(MultiplexedConnection::clone(&c));
        }
        let mut client = self.client.lock().await;
        if let Some(c) = self.conn.load_full() {
            return Ok(MultiplexedConnection::clone(&c));
        }
        let c = client.get_async_connection().await?;
        self.conn.store(Some(Arc::new(c.clone())));
        Ok(c)
    }

    fn check<T>(&self, r: &Result<T, RedisError>) {
        if let Err(e) = r
            && (lost(e) || e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly))
        {
            self.conn.store(None);
        }
    }
}

/// Whether an error means the connection is gone (not an error of the command).
fn lost(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
        || e.is_timeout()
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(l) => Box::pin(async move {
                let mut c = l.get().await?;
                let r = c.req_packed_command(cmd).await;
                l.check(&r);
                r
            }),
            Conn::Sentinel(s) => Box::pin(async move {
                let mut c = s.get().await?;
                let r = c.req_packed_command(cmd).await;
                s.check(&r);
                r
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(l) => Box::pin(async move {
                let mut c = l.get().await?;
                let r = c.req_packed_commands(pipeline, offset, count).await;
                l.check(&r);
                r
            }),
            Conn::Sentinel(s) => Box::pin(async move {
                let mut c = s.get().await?;
                let r = c.req_packed_commands(pipeline, offset, count).await;
                s.check(&r);
                r
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_hide_passwords() {
        assert_eq!(
            Target::Single("redis://u:p@h:6379/0".into()).describe(),
            "redis://***@h:6379/0"
        );
        assert_eq!(
            Target::Cluster(vec!["redis://:p@a:1".into(), "redis://b:2".into()]).describe(),
            "cluster redis://***@a:1,redis://b:2"
        );
        let s = Target::Sentinel {
            service: "mymaster".into(),
            sentinels: vec!["redis://s:26379".into()],
            primary: "redis://:secret@primary/0".into(),
        };
        assert!(!s.describe().contains("secret"));
    }
}
