//! PostgreSQL: the pool, migrations and named queries. Nothing on the LLM hot path calls this;
//! request-time data comes from caches filled from here.

pub mod migrate;
mod pool;
pub mod queries;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bb8::{Pool, PooledConnection};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

pub use pool::{Manager, PgConn};
pub use queries::{Query, Registry};

/// Why the database could not serve a call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database_url: {0}")]
    Config(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("schema migration {version} failed: {source}")]
    Migration {
        version: String,
        source: tokio_postgres::Error,
    },
    #[error("database error: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("sql/queries: {0}")]
    Queries(String),
}

/// Pool settings (`general_settings.database_connection_pool_limit`, `database_connection_timeout`).
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            timeout: Duration::from_secs(5),
        }
    }
}

/// The database behind the management API.
pub struct Store {
    pool: Pool<Manager>,
    registry: &'static Registry,
    queries: Arc<AtomicU64>,
}

impl Store {
    /// Run migrations on a dedicated connection, then open the pool (lazily: a database that goes
    /// away later makes calls fail with `Unavailable`, never the gateway).
    pub async fn connect(url: &str, opts: StoreOptions) -> Result<Self, StoreError> {
        let registry = Registry::get().map_err(|e| StoreError::Queries(e.to_string()))?;
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| StoreError::Config(e.to_string()))?;
        config.connect_timeout(opts.timeout);
        config.application_name("tianji");
        let (mut client, connection) = tokio::time::timeout(opts.timeout, config.connect(NoTls))
            .await
            .map_err(|_| StoreError::Unavailable("connection timed out".into()))?
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let driver = tokio::spawn(connection);
        let applied = migrate::run(&mut client, registry).await;
        drop(client);
        let _ = driver.await;
        applied?;
        let pool = Pool::builder()
            .max_size(opts.max_connections.max(1))
            .connection_timeout(opts.timeout)
            .build_unchecked(Manager::new(config, registry));
        Ok(Self {
            pool,
            registry,
            queries: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Whether `url` is a usable PostgreSQL URL (no connection is made).
    pub fn check_url(url: &str) -> Result<(), StoreError> {
        url.parse::<tokio_postgres::Config>()
            .map(|_| ())
            .map_err(|e| StoreError::Config(e.to_string()))
    }

    /// A pooled connection, or `Unavailable`.
    pub async fn conn(&self) -> Result<PooledConnection<'_, Manager>, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(format!("{e:?}")))
    }

    /// Run a named query (counted; see [`Store::query_count`]).
    pub async fn query(
        &self,
        q: Query,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let conn = self.conn().await?;
        match conn.stmt(q) {
            Some(stmt) => Ok(conn.client.query(stmt, params).await?),
            None => Ok(conn.client.query(self.registry.sql(q), params).await?),
        }
    }

    /// Whether the database answers right now.
    pub async fn ping(&self) -> bool {
        self.query(Query::Ping, &[]).await.is_ok()
    }

    /// Queries run so far (tests assert the hot path makes none).
    pub fn query_count(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }
}
