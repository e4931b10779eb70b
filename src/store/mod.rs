//! PostgreSQL: the pool, migrations and named queries. Nothing on the LLM hot path calls this;
//! request-time data comes from caches filled from here.

pub mod iam;
pub mod migrate;
mod pool;
pub mod queries;
pub mod tls;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bb8::{Pool, PooledConnection};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

pub use pool::{Backoff, Manager, PgConn, Prepared};
pub use queries::{Query, Registry};

/// Why the database could not serve a call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database_url: {0}")]
    Config(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Startup could not reach the database (`target` is `host:port`).
    #[error(
        "PostgreSQL at {target} is unreachable: {detail} (tried for {tried_s:.0} s, general_settings.database_connect_retry_seconds)"
    )]
    Unreachable {
        target: String,
        tried_s: f64,
        detail: String,
    },
    /// The database answered but refused the connection (credentials, database name, ...).
    #[error("PostgreSQL at {target} refused the connection: {detail}")]
    Refused { target: String, detail: String },
    /// A `general_settings.enforce_unique_*_alias` flag is on but its unique index cannot be
    /// built: rows already share an alias.
    #[error(
        "general_settings.{flag} is on, but {detail}; give those rows distinct aliases or turn the flag off"
    )]
    UniqueAlias { flag: &'static str, detail: String },
    #[error("schema migration {version} failed: {source}")]
    Migration {
        version: String,
        source: tokio_postgres::Error,
    },
    #[error("database error: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("sql/queries: {0}")]
    Queries(String),
    /// A value the gateway made could not be encoded for the database.
    #[error("could not encode for the database: {0}")]
    Encode(String),
}

/// Pool settings (`general_settings.database_connection_pool_limit`, `database_connection_timeout`,
/// `database_connect_retry_seconds`, `iam_token_db_auth`).
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub timeout: Duration,
    /// How long [`Store::connect`] keeps retrying a database it cannot reach (default: no retry).
    pub connect_retry: Duration,
    /// Which aliases a unique index keeps distinct (`general_settings.enforce_unique_*_alias`).
    pub unique_aliases: UniqueAliases,
    /// RDS IAM authentication: every connection's password a fresh token for the URL's host,
    /// port and user (`general_settings.iam_token_db_auth`).
    pub iam: Option<iam::Iam>,
}

/// Where RDS IAM tokens are made for: the URL's first host, its port and user.
#[derive(Debug, Clone)]
pub struct IamTarget {
    iam: iam::Iam,
    host: String,
    port: u16,
    user: String,
}

impl IamTarget {
    fn new(iam: iam::Iam, config: &tokio_postgres::Config) -> Result<Self, StoreError> {
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => {
                return Err(StoreError::Config(
                    "iam_token_db_auth needs the database's host name in the URL".into(),
                ));
            }
        };
        let user = config.get_user().ok_or_else(|| {
            StoreError::Config("iam_token_db_auth needs the database user in the URL".into())
        })?;
        Ok(Self {
            iam,
            host,
            port: config.get_ports().first().copied().unwrap_or(5432),
            user: user.to_string(),
        })
    }

    /// A token for a connection opened now.
    fn token(&self) -> Result<String, String> {
        (self.iam).token(
            &self.host,
            self.port,
            &self.user,
            std::time::SystemTime::now(),
        )
    }
}

/// Aliases kept unique by an index, each only when asked (LiteLLM lets them repeat).
#[derive(Debug, Clone, Copy, Default)]
pub struct UniqueAliases {
    /// `general_settings.enforce_unique_team_alias`
    pub team: bool,
    /// `general_settings.enforce_unique_organization_alias`
    pub organization: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            timeout: Duration::from_secs(5),
            connect_retry: Duration::ZERO,
            unique_aliases: UniqueAliases::default(),
            iam: None,
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
    /// Run migrations (and create or drop the unique alias indexes `opts` asks for) on a
    /// dedicated connection, then open the pool (lazily: a database that goes
    /// away later makes calls fail with `Unavailable`, never the gateway). A database that
    /// cannot be reached is tried again with [`Backoff`] for `opts.connect_retry`, each failure
    /// logged with its `host:port`.
    pub async fn connect(url: &str, opts: StoreOptions) -> Result<Self, StoreError> {
        Self::open(url, opts, true).await
    }

    /// A read replica's store (`general_settings.database_url_read`): reached at startup as
    /// [`Store::connect`] reaches the primary, but no migration is run there (the replica
    /// follows the primary's schema).
    pub async fn connect_replica(url: &str, opts: StoreOptions) -> Result<Self, StoreError> {
        Self::open(url, opts, false).await
    }

    async fn open(url: &str, opts: StoreOptions, migrate: bool) -> Result<Self, StoreError> {
        let registry = Registry::get().map_err(|e| StoreError::Queries(e.to_string()))?;
        let tls::Target { mut config, tls } = tls::parse(url).map_err(StoreError::Config)?;
        config.connect_timeout(opts.timeout);
        config.application_name("tianji");
        let iam = match opts.iam.clone() {
            Some(iam) => Some(IamTarget::new(iam, &config)?),
            None => None,
        };
        let target = pool::target(&config);
        let started = tokio::time::Instant::now();
        let mut backoff = Backoff::new();
        let (mut client, connection) = loop {
            if let Some(iam) = &iam {
                config.password(iam.token().map_err(StoreError::Config)?);
            }
            let detail = match tokio::time::timeout(opts.timeout, config.connect(tls.clone())).await
            {
                Ok(Ok(c)) => break c,
                Ok(Err(e)) if !pool::transient(&e) || tls::refused_by_tls(&e) => {
                    return Err(StoreError::Refused {
                        target,
                        detail: pool::describe(&e),
                    });
                }
                Ok(Err(e)) => pool::describe(&e),
                Err(_) => format!("no connection within {:?}", opts.timeout),
            };
            let left = opts.connect_retry.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(StoreError::Unreachable {
                    target,
                    tried_s: started.elapsed().as_secs_f64(),
                    detail,
                });
            }
            let wait = backoff.next_wait().min(left);
            tracing::warn!(
                database = %target,
                error = %detail,
                retry_in_ms = wait.as_millis() as u64,
                "PostgreSQL is unreachable; retrying"
            );
            tokio::time::sleep(wait).await;
        };
        let driver = tokio::spawn(connection);
        let applied = match migrate {
            true => migrate::run(&mut client, registry, opts.unique_aliases).await,
            false => Ok(Vec::new()),
        };
        drop(client);
        let _ = driver.await;
        applied?;
        let pool = Pool::builder()
            .max_size(opts.max_connections.max(1))
            .connection_timeout(opts.timeout)
            .build_unchecked(Manager::new(config, tls, iam, registry));
        Ok(Self {
            pool,
            registry,
            queries: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Whether `url` is a usable PostgreSQL URL (no connection is made).
    pub fn check_url(url: &str) -> Result<(), StoreError> {
        tls::parse(url).map(|_| ()).map_err(StoreError::Config)
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

    /// Run a named query of background work (the scheduler's polls): not counted in
    /// [`Store::query_count`], which tells what requests cost.
    pub async fn background(
        &self,
        q: Query,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
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
