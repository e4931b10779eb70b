//! `AppState`: everything a request needs, built once at startup and shared behind one `Arc`.

use std::sync::Arc;

use crate::auth::Authenticator;
use crate::config::Loaded;
use crate::providers::{Catalog, CatalogError};
use crate::router::{ModelTable, TableError};
use crate::routes::{RouteTable, RouteTableError};
use crate::store::{Store, StoreError, StoreOptions};
use crate::upstream::{HttpClient, build_client};

/// Default `general_settings.max_request_size_mb`.
pub const DEFAULT_MAX_REQUEST_MB: f64 = 32.0;

/// Why the gateway could not be assembled from a config.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Models(#[from] TableError),
    #[error(transparent)]
    Routes(#[from] RouteTableError),
    #[error("TLS client setup: {0}")]
    Tls(#[from] rustls::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct AppState {
    pub models: ModelTable,
    pub auth: Authenticator,
    pub client: HttpClient,
    pub routes: RouteTable,
    pub max_body_bytes: usize,
    pub catalog: Arc<Catalog>,
    /// PostgreSQL, when `database_url` (or `DATABASE_URL`) is set.
    pub store: Option<Arc<Store>>,
    /// `general_settings.store_audit_logs`
    pub store_audit_logs: bool,
    /// `tianji_settings.default_internal_user_params.available_teams`
    pub available_teams: Vec<String>,
}

impl AppState {
    /// Drop changed governance records from the caches (and, with Redis, on every instance).
    pub async fn invalidate(&self, changed: &[crate::auth::Changed]) {
        if let Some(dir) = self.auth.directory() {
            for c in changed {
                dir.invalidate(c).await;
            }
        }
    }

    /// Build everything; connects to the database (and migrates it) when one is configured.
    pub async fn build(loaded: &Loaded) -> Result<Self, StateError> {
        Self::build_with(loaded, true).await
    }

    /// `connect_database: false` only checks `database_url` (used by `--check-config`, which must
    /// not touch the database).
    pub async fn build_with(loaded: &Loaded, connect_database: bool) -> Result<Self, StateError> {
        let catalog = Arc::new(Catalog::builtin()?);
        let models = ModelTable::build(&loaded.config, catalog.clone(), loaded.env.clone())?;
        let g = &loaded.config.general_settings;
        let mb = g.max_request_size_mb.unwrap_or(DEFAULT_MAX_REQUEST_MB);
        let store = match &g.database_url {
            Some(url) if !connect_database => {
                Store::check_url(url)?;
                None
            }
            Some(url) => {
                let mut opts = StoreOptions::default();
                if let Some(n) = g.database_connection_pool_limit {
                    opts.max_connections = n;
                }
                if let Some(t) = g
                    .database_connection_timeout
                    .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
                {
                    opts.timeout = t;
                }
                Some(Arc::new(Store::connect(url, opts).await?))
            }
            None => None,
        };
        let t = &loaded.config.tianji_settings;
        let mut auth = Authenticator::with_store(g.master_key.as_deref(), store.clone());
        if let Some(code) = t.budget_exceeded_status_code {
            auth.budget_status = code;
        }
        Ok(Self {
            models,
            auth,
            client: build_client()?,
            routes: RouteTable::new()?,
            max_body_bytes: (mb * 1024.0 * 1024.0) as usize,
            catalog,
            store,
            store_audit_logs: g.store_audit_logs,
            available_teams: t.default_internal_user_params.available_teams.clone(),
        })
    }
}
