//! `AppState`: everything a request needs, built once at startup and shared behind one `Arc`.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::auth::invalidation::{Apply, Bus};
use crate::auth::{Authenticator, Changed};
use crate::config::{Config, Env, Loaded, ModelEntry};
use crate::providers::{Catalog, CatalogError};
use crate::router::{ModelTable, TableError};
use crate::spend::{DEFAULT_EVERY_SECS, Spend, SpendOptions};
use crate::store::iam::Iam;
use crate::store::{Store, StoreError, StoreOptions, UniqueAliases};
use crate::upstream::{HttpClient, build_client};

/// Default `general_settings.max_request_size_mb`.
pub const DEFAULT_MAX_REQUEST_MB: f64 = 32.0;
/// Default `general_settings.database_connect_retry_seconds`.
pub const DEFAULT_DATABASE_CONNECT_RETRY_SECS: f64 = 30.0;
/// Default `general_settings.redis_connect_retry_seconds`.
pub const DEFAULT_REDIS_CONNECT_RETRY_SECS: f64 = 5.0;

fn seconds(v: Option<f64>, default: f64) -> Duration {
    Duration::try_from_secs_f64(v.unwrap_or(default)).unwrap_or(Duration::ZERO)
}

/// Give a Redis that does not answer at startup `within` to come up, then go on without it:
/// everything that uses Redis then runs degraded, as during an outage later (rate limits
/// counted per instance, or refused under `fail_closed_rate_limit_enforcement`; the shared
/// cache tier missing), and reconnects on its own when Redis is back.
async fn wait_for_redis(bus: &Bus, url: &str, within: Duration) {
    let started = tokio::time::Instant::now();
    let mut backoff = crate::store::Backoff::new();
    loop {
        let detail = match bus.probe(Duration::from_secs(1)).await {
            Ok(()) => return,
            Err(e) => e,
        };
        let left = within.saturating_sub(started.elapsed());
        if left.is_zero() {
            tracing::warn!(
                redis = %url,
                error = %detail,
                "Redis is unreachable: serving without it, degraded (see /health/readiness), until it answers"
            );
            return;
        }
        let wait = backoff.next_wait().min(left);
        tracing::warn!(
            redis = %url,
            error = %detail,
            retry_in_ms = wait.as_millis() as u64,
            "Redis is unreachable; retrying"
        );
        tokio::time::sleep(wait).await;
    }
}

/// Why the gateway could not be assembled from a config.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Models(#[from] TableError),
    #[error("TLS client setup: {0}")]
    Tls(#[from] rustls::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("at-rest encryption: {0}")]
    Secret(#[from] crate::secrets::SecretError),
    #[error(transparent)]
    ProviderBudget(#[from] crate::spend::provider_budget::ProviderBudgetError),
    #[error(transparent)]
    Router(#[from] crate::router::policy::PolicyError),
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    #[error(transparent)]
    Traces(#[from] crate::observability::otlp::OtlpError),
    #[error(transparent)]
    Guardrails(#[from] crate::guardrails::GuardrailsConfigError),
    #[error(transparent)]
    Mcp(#[from] crate::mcp::McpError),
    #[error("prompts: {0}")]
    Prompts(String),
    #[error("rag_settings: {0}")]
    UrlFetch(#[from] crate::upstream::fetch::FetchError),
    #[error("redis ({url}): {source}")]
    Redis {
        url: String,
        source: redis::RedisError,
    },
}

impl StateError {
    /// Whether the config is at fault (not an unreachable or refusing service, nor the gateway).
    pub fn is_config(&self) -> bool {
        match self {
            StateError::Models(_)
            | StateError::ProviderBudget(_)
            | StateError::Router(_)
            | StateError::Cache(_)
            | StateError::Traces(_)
            | StateError::Guardrails(_)
            | StateError::Mcp(_)
            | StateError::Prompts(_)
            | StateError::UrlFetch(_)
            | StateError::Redis { .. } => true,
            StateError::Store(e) => {
                matches!(e, StoreError::Config(_) | StoreError::UniqueAlias { .. })
            }
            StateError::Catalog(_) | StateError::Tls(_) | StateError::Secret(_) => false,
        }
    }
}

pub struct AppState {
    /// Config models plus database models; replaced whole when a database model changes.
    pub models: Arc<ArcSwap<ModelTable>>,
    /// Deployment choice, retries, cooldowns and fallbacks (the live router policy).
    pub router: Arc<crate::router::balancer::Balancer>,
    /// The latest background health check results (`background_health_checks`).
    pub health: ArcSwap<Option<Arc<serde_json::Value>>>,
    /// The config in force (replaced whole by a live reload; see [`AppState::config`]).
    pub config: ArcSwap<Config>,
    /// The file the config was read from, and the state of its live reloads.
    pub reloads: crate::config::reload::Reloads,
    pub env: Env,
    /// Cross-instance cache invalidation, when Redis is configured.
    pub bus: Option<Arc<Bus>>,
    pub auth: Authenticator,
    pub client: HttpClient,
    pub max_body_bytes: usize,
    pub catalog: Arc<Catalog>,
    /// PostgreSQL, when `database_url` (or `DATABASE_URL`) is set.
    pub store: Option<Arc<Store>>,
    /// The read replica the reports read from (`database_url_read`), when one is set.
    pub reports: Option<Arc<Store>>,
    /// `tianji_settings.store_audit_logs` (LiteLLM's place) or
    /// `general_settings.store_audit_logs`
    pub store_audit_logs: bool,
    /// `tianji_settings.default_internal_user_params.available_teams`
    pub available_teams: Vec<String>,
    /// Spend ledger and writer.
    pub spend: Arc<Spend>,
    pub limits: Arc<crate::limits::Limits>,
    pub model_budgets: Arc<crate::limits::model_budget::ModelBudgets>,
    /// Response-ID security of the Responses API.
    pub response_ids: crate::responses::IdSecurity,
    /// Prometheus metrics (`callbacks: ["prometheus"]`).
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// `GET /metrics` needs an admin (`require_auth_for_metrics_endpoint`, default true).
    pub metrics_auth: bool,
    /// The dynamic rate limiter, when enabled.
    pub priorities: Option<crate::limits::priority::Priorities>,
    /// `general_settings.global_max_parallel_requests`
    pub global_max_parallel: Option<u64>,
    /// The response cache (`tianji_settings.cache`).
    pub cache: Option<Arc<crate::cache::Cache>>,
    /// Encrypts database models' credentials at rest: keyed by the salt key (`TIANJI_SALT_KEY`,
    /// else the master key); `None` without either (they are then stored in plain text).
    pub at_rest: Option<Arc<crate::secrets::AtRest>>,
    /// Ends the streams still running at the graceful-shutdown deadline.
    pub streams: crate::upstream::relay::StreamCut,
    /// OpenTelemetry traces (`callbacks: [otel]`); `None`: no span is ever made.
    pub traces: Option<crate::observability::traces::Traces>,
    /// Logging callbacks (`generic_api`, `langfuse`, `datadog`, team and key sinks).
    pub callbacks: ArcSwap<crate::callbacks::Callbacks>,
    /// A2A agents (`TianjiLLM_AgentsTable`), reloaded when one changes.
    pub agents: crate::agents::Registry,
    /// Which provider account holds each skill (`TianjiLLM_SkillsTable`), reloaded when one
    /// changes.
    pub skill_homes: crate::skills::Homes,
    /// Prompt templates (`prompts:` and `TianjiLLM_PromptTable`, reloaded when one changes).
    pub prompts: crate::prompts::Registry,
    /// The gateway's own vector stores: each store's search index, loaded on first use (all of
    /// them in the background at startup) and kept in step through `Changed::VectorStore`.
    pub vector_stores: Arc<crate::vector_stores::VectorStores>,
    /// Fetches the URLs callers give (`file_url` ingestion) behind the private-address guard
    /// (`rag_settings`: allowed hosts, size and time caps).
    pub url_fetcher: crate::upstream::fetch::UrlFetcher,
    /// Alerts (`general_settings.alerting`) and management events.
    pub alerts: Arc<crate::alerting::Alerts>,
    /// Guardrails (`guardrails:`, `banned_keywords_list`, `blocked_user_list`).
    pub guardrails: ArcSwap<crate::guardrails::Guardrails>,
    /// MCP servers (`mcp_servers` and `TianjiLLM_MCPServerTable`, reloaded when one changes)
    /// and the client sessions of `/mcp`.
    pub mcp: crate::mcp::Mcp,
}

/// The tracer, when `otel` is among the callbacks (settings from the environment) and
/// `OTEL_TRACES_EXPORTER` is not `none`.
fn traces(
    callbacks: &[String],
    env: &Env,
    client: &HttpClient,
) -> Result<Option<crate::observability::traces::Traces>, StateError> {
    use crate::observability::otlp::{Settings, Signal, turned_off};
    use crate::observability::traces::{CALLBACK, Traces};
    if !callbacks.iter().any(|c| c == CALLBACK) || turned_off(env.get("OTEL_TRACES_EXPORTER")) {
        return Ok(None);
    }
    let settings = Settings::from_env(Signal::Traces, |k| env.get(k))?;
    let client = crate::upstream::OtlpClient {
        client: client.clone(),
        timeout: settings.timeout,
    };
    Ok(Some(Traces::start(&settings, client)?))
}

/// Rate-limit settings: config, and the window and slot life from the environment
/// (`TIANJI_RATE_LIMIT_WINDOW_SIZE`, `TIANJI_PARALLEL_REQUEST_SLOT_TTL_SECONDS`, in seconds).
fn limit_options(g: &crate::config::GeneralSettings, env: &Env) -> crate::limits::Options {
    let secs = |name: &str, default: u64| {
        env.get(name)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| *s > 0.0)
            .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
            .unwrap_or(std::time::Duration::from_secs(default))
    };
    crate::limits::Options {
        window: secs(
            "TIANJI_RATE_LIMIT_WINDOW_SIZE",
            crate::limits::DEFAULT_WINDOW_SECS,
        ),
        slot_ttl: secs(
            "TIANJI_PARALLEL_REQUEST_SLOT_TTL_SECONDS",
            crate::limits::DEFAULT_SLOT_TTL_SECS,
        ),
        fail_closed: g.fail_closed_rate_limit_enforcement,
        token_count: g.token_rate_limit_type.unwrap_or_default(),
    }
}

impl AppState {
    /// The config in force.
    pub fn config(&self) -> arc_swap::Guard<Arc<Config>> {
        self.config.load()
    }

    /// Drop changed governance records from the caches (and, with Redis, on every instance).
    pub async fn invalidate(&self, changed: &[Changed]) {
        self.apply_local(changed).await;
        if let Some(bus) = &self.bus {
            bus.publish(changed).await;
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
        let guardrails = Arc::new(crate::guardrails::Guardrails::build(&loaded.config)?);
        let mcp = crate::mcp::Mcp::from_config(&loaded.config.mcp_servers)?;
        let (prompts, prompt_warnings) =
            crate::prompts::Registry::from_config(&loaded.config).map_err(StateError::Prompts)?;
        for w in prompt_warnings {
            tracing::warn!("{w}");
        }
        let models = ModelTable::build(&loaded.config, catalog.clone(), loaded.env.clone())?;
        if let Some(line) = models.unserved_line() {
            tracing::warn!("{line}");
        }
        let redis_target = (loaded.config.router_settings)
            .redis_target(|k| loaded.env.get(k))
            .map_err(|e| StateError::Redis {
                url: "router_settings".into(),
                source: redis::RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    e,
                )),
            })?;
        let redis_tls = crate::util::redis_tls::RedisTls::from_env(|n| loaded.env.get(n));
        let cache = match &loaded.config.tianji_settings {
            t if !t.cache => None,
            t => {
                let params = t.cache_params.clone().unwrap_or_default();
                if connect_database {
                    let c =
                        crate::cache::Cache::connect(&params, redis_target.as_ref(), &redis_tls)
                            .await?;
                    Some(Arc::new(c))
                } else {
                    params.settings().map_err(crate::cache::CacheError::from)?;
                    None
                }
            }
        };
        let bus = match &redis_target {
            Some(target) if connect_database => Some(Arc::new(
                Bus::open(target, &redis_tls).map_err(|source| StateError::Redis {
                    url: target.describe(),
                    source,
                })?,
            )),
            _ => None,
        };
        let g = &loaded.config.general_settings;
        let mb = g.max_request_size_mb.unwrap_or(DEFAULT_MAX_REQUEST_MB);
        let store = async {
            match &g.database_url {
                Some(url) if !connect_database => {
                    Store::check_url(url)?;
                    if let Some(read) = &g.database_url_read {
                        Store::check_url(read)?;
                    }
                    Ok(None)
                }
                Some(url) => {
                    let mut opts = StoreOptions {
                        connect_retry: seconds(
                            g.database_connect_retry_seconds,
                            DEFAULT_DATABASE_CONNECT_RETRY_SECS,
                        ),
                        unique_aliases: UniqueAliases {
                            team: g.enforce_unique_team_alias,
                            organization: g.enforce_unique_organization_alias,
                        },
                        ..StoreOptions::default()
                    };
                    if let Some(n) = g.database_connection_pool_limit {
                        opts.max_connections = n;
                    }
                    if let Some(t) = g
                        .database_connection_timeout
                        .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    {
                        opts.timeout = t;
                    }
                    if g.iam_token_db_auth {
                        let iam =
                            Iam::from_env(|n| loaded.env.get(n)).map_err(StoreError::Config)?;
                        opts.iam = Some(iam);
                    }
                    let primary = Arc::new(Store::connect(url, opts.clone()).await?);
                    let reports = match &g.database_url_read {
                        Some(read) => Some(Arc::new(Store::connect_replica(read, opts).await?)),
                        None => None,
                    };
                    Ok(Some((primary, reports)))
                }
                None => Ok(None),
            }
        };
        let redis_up = async {
            if let (Some(bus), Some(target)) = (&bus, &redis_target) {
                let within = seconds(
                    g.redis_connect_retry_seconds,
                    DEFAULT_REDIS_CONNECT_RETRY_SECS,
                );
                wait_for_redis(bus, &target.describe(), within).await;
            }
        };
        let (store, ()) = tokio::join!(store, redis_up);
        let (store, reports) = match store.map_err(StateError::Store)? {
            Some((primary, reports)) => (Some(primary), reports),
            None => (None, None),
        };
        let t = &loaded.config.tianji_settings;
        let mut auth = Authenticator::with_store(g.master_key.as_deref(), store.clone());
        if let Some(code) = t.budget_exceeded_status_code {
            auth.budget_status = code;
        }
        if g.enable_jwt_auth {
            auth = auth.with_jwt(crate::auth::jwt::JwtAuth::new(
                &g.tianji_jwtauth,
                jwks_fetch(&g.tianji_jwtauth.key_urls())?,
                store.clone(),
            ));
        }
        let mut spend = SpendOptions {
            store_prompts: g.store_prompts_in_spend_logs,
            ..SpendOptions::default()
        };
        spend.writer.disable_spend_logs = g.disable_spend_logs;
        spend.writer.disable_error_logs = g.disable_error_logs;
        spend.writer.every = std::time::Duration::try_from_secs_f64(
            g.proxy_batch_write_at
                .unwrap_or(DEFAULT_EVERY_SECS)
                .max(0.01),
        )
        .unwrap_or(spend.writer.every);
        if let Some(q) = g.spend_log_queue_size {
            spend.queue = q;
        }
        let mut spend = Spend::start(store.clone(), spend);
        spend.providers = crate::spend::provider_budget::ProviderBudgets::new(
            &loaded.config.router_settings.provider_budget_config,
        )?
        .map(Arc::new);
        if let (Some(pb), Some(bus)) = (&spend.providers, &bus) {
            pb.share(bus.conn(), std::time::Duration::from_secs(1));
        }
        let spend = Arc::new(spend);
        if let (Some(bus), Some(_)) = (&bus, &store) {
            spend.share(bus.conn(), std::time::Duration::from_secs(1));
        }
        let limits = Arc::new(crate::limits::Limits::new(
            bus.as_ref().map(|b| b.conn()),
            limit_options(g, &loaded.env),
        ));
        let model_budgets = Arc::new(crate::limits::model_budget::ModelBudgets::new(
            auth.budget_status,
        ));
        if let Some(bus) = &bus {
            model_budgets.share(bus.conn(), std::time::Duration::from_secs(1));
        }
        let models = Arc::new(ArcSwap::from_pointee(models));
        let router = Arc::new(crate::router::balancer::Balancer::new(
            crate::router::policy::Policy::from_settings(&loaded.config.router_settings)?,
            bus.as_ref().map(|b| b.conn()),
        ));
        {
            let models = models.clone();
            router.share(std::time::Duration::from_millis(500), move || {
                models
                    .load()
                    .deployments()
                    .map(|d| (d.id.clone(), d.stats.clone()))
                    .collect()
            });
        }
        // the salt key: `TIANJI_SALT_KEY`, else the master key (LiteLLM: `LITELLM_SALT_KEY`)
        let salt_key = loaded
            .env
            .get("TIANJI_SALT_KEY")
            .filter(|s| !s.is_empty())
            .or_else(|| g.master_key.clone());
        let at_rest = match &salt_key {
            Some(k) => Some(Arc::new(crate::secrets::AtRest::new(k)?)),
            None => None,
        };
        let client = build_client()?;
        let rag = &loaded.config.rag_settings;
        let url_fetcher =
            crate::upstream::fetch::UrlFetcher::new(crate::upstream::fetch::FetchPolicy {
                allowed_hosts: rag.allowed_url_hosts.clone(),
                max_bytes: rag.max_file_bytes(),
                timeout: std::time::Duration::from_secs_f64(rag.url_timeout_seconds),
                max_redirects: 5,
            })?;
        let traces = traces(&t.callbacks, &loaded.env, &client)?;
        let metrics = t
            .prometheus()
            .then(|| Arc::new(crate::metrics::Metrics::new()));
        let alerts = if connect_database {
            crate::alerting::Alerts::start(
                g,
                &loaded.env,
                Some(client.clone()),
                bus.as_ref().map(|b| b.conn()),
            )
        } else {
            crate::alerting::Alerts::off()
        };
        {
            let alerts = alerts.clone();
            spend.on_failure(move |what, error| alerts.db_exception(what, error));
        }
        let state = Self {
            agents: Default::default(),
            skill_homes: Default::default(),
            prompts,
            vector_stores: Default::default(),
            url_fetcher,
            mcp,
            alerts,
            traces,
            at_rest,
            spend,
            limits,
            model_budgets,
            response_ids: crate::responses::IdSecurity::new(
                salt_key.as_deref(),
                g.disable_responses_id_security,
                g.allow_unmanaged_response_ids,
            ),
            metrics: metrics.clone(),
            metrics_auth: t.require_auth_for_metrics_endpoint.unwrap_or(true),
            priorities: crate::limits::priority::Priorities::from_settings(
                &t.callbacks,
                &t.priority_reservation,
                &t.priority_reservation_settings,
            ),
            global_max_parallel: g.global_max_parallel_requests,
            cache,
            streams: Default::default(),
            models,
            router,
            health: ArcSwap::from_pointee(None),
            config: ArcSwap::from_pointee(loaded.config.clone()),
            reloads: crate::config::reload::Reloads::new(loaded.path.clone(), loaded.raw.clone()),
            env: loaded.env.clone(),
            bus,
            auth,
            callbacks: ArcSwap::new(crate::callbacks::Callbacks::start(
                t,
                &loaded.env,
                client.clone(),
                metrics,
            )),
            client,
            max_body_bytes: (mb * 1024.0 * 1024.0) as usize,
            catalog,
            store,
            reports,
            store_audit_logs: g.store_audit_logs || t.store_audit_logs,
            available_teams: t.default_internal_user_params.available_teams.clone(),
            guardrails: ArcSwap::new(guardrails),
        };
        if let Some(store) = &state.store {
            match &state.at_rest {
                Some(cipher) => {
                    let n = crate::secrets::at_rest::encrypt_stored(store, cipher).await?;
                    if n > 0 {
                        tracing::info!(
                            models = n,
                            "encrypted the stored credentials of database models"
                        );
                    }
                }
                None => tracing::warn!(
                    "no TIANJI_SALT_KEY and no master key: credentials of database models are stored in plain text"
                ),
            }
            state.reload_models().await?;
            crate::router::stored::reload(&state.router, state.store.as_deref()).await?;
            state.reload_agents().await?;
            state.reload_mcp().await?;
            state.reload_skills().await?;
            state.reload_prompts().await?;
            if let Some(store) = state.store.clone() {
                let stores = state.vector_stores.clone();
                tokio::spawn(async move { stores.load_all(&store).await });
            }
        }
        Ok(state)
    }

    /// Rebuild the model table from the config and the database's models.
    pub async fn reload_models(&self) -> Result<(), StateError> {
        if self.store.is_none() {
            return Ok(());
        }
        let table = self.models_for(&self.config()).await?;
        self.models.store(Arc::new(table));
        Ok(())
    }

    /// The model table of `config`'s models and the database's (the current table's routing
    /// statistics kept).
    pub async fn models_for(&self, config: &Config) -> Result<ModelTable, StateError> {
        let mut config = config.clone();
        let Some(store) = &self.store else {
            let mut table = ModelTable::build(&config, self.catalog.clone(), self.env.clone())?;
            table.keep_stats(&self.models.load());
            return Ok(table);
        };
        let rows = store
            .query(crate::store::Query::ListProxyModels, &[])
            .await?;
        for row in &rows {
            let mut v: serde_json::Value = row.try_get(0).map_err(StoreError::from)?;
            let params = v.get("tianji_params").cloned().unwrap_or_default();
            match crate::secrets::at_rest::open_params(self.at_rest.as_deref(), &params) {
                Ok(p) => {
                    if let Some(obj) = v.as_object_mut() {
                        obj.insert("tianji_params".into(), p);
                    }
                }
                Err(e) => {
                    tracing::warn!(model = %v["model_id"], error = %e, "skipping a database model whose credentials cannot be read");
                    continue;
                }
            }
            match db_entry(&v) {
                // stored before such providers stopped a table: skipped, not the reload
                Some(e)
                    if self
                        .catalog
                        .parse_model(&e.tianji_params.model.replace('*', "x"))
                        .is_ok_and(|pm| pm.kind.not_served().is_some()) =>
                {
                    tracing::warn!(model = %v["model_id"], provider = %e.tianji_params.model, "skipping a database model of a provider Tianji does not serve");
                }
                Some(e) => config.model_list.push(e),
                None => {
                    tracing::warn!(model = %v["model_id"], "skipping an unreadable database model")
                }
            }
        }
        let mut table = ModelTable::build(&config, self.catalog.clone(), self.env.clone())?;
        table.keep_stats(&self.models.load());
        Ok(table)
    }

    /// Reload the agent registry from the database.
    pub async fn reload_agents(&self) -> Result<(), StateError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let reloaded = self.agents.reload(store, self.at_rest.as_deref()).await;
        reloaded.map_err(|crate::agents::AgentError::Store(e)| StateError::Store(e))
    }

    /// Reload the MCP servers registered in the database.
    pub async fn reload_mcp(&self) -> Result<(), StateError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let allow_private = self.config().general_settings.mcp_allow_private_urls;
        (self.mcp)
            .reload(store, self.at_rest.as_deref(), allow_private)
            .await?;
        Ok(())
    }

    /// Reload where skills live from the database.
    pub async fn reload_skills(&self) -> Result<(), StateError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        Ok(self.skill_homes.reload(store).await?)
    }

    /// Reload the stored prompts from the database.
    pub async fn reload_prompts(&self) -> Result<(), StateError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        Ok(self.prompts.reload(store).await?)
    }

    /// Apply changes made elsewhere (or here) to this instance's caches.
    async fn apply_local(&self, changed: &[Changed]) {
        if let Some(dir) = self.auth.directory() {
            for c in changed {
                dir.invalidate(c).await;
            }
        }
        self.spend.ledger.forget(changed);
        if let Some(cache) = &self.cache {
            for c in changed {
                match c {
                    Changed::CacheEntries(keys) => cache.forget_local(Some(keys)),
                    Changed::CacheAll => cache.forget_local(None),
                    _ => {}
                }
            }
        }
        if changed
            .iter()
            .any(|c| matches!(c, Changed::Models | Changed::All))
            && let Err(e) = self.reload_models().await
        {
            tracing::error!(error = %e, "could not reload database models");
        }
        if changed
            .iter()
            .any(|c| matches!(c, Changed::Agents | Changed::All))
            && let Err(e) = self.reload_agents().await
        {
            tracing::error!(error = %e, "could not reload agents");
        }
        if changed
            .iter()
            .any(|c| matches!(c, Changed::McpServers | Changed::All))
            && let Err(e) = self.reload_mcp().await
        {
            tracing::error!(error = %e, "could not reload MCP servers");
        }
        if changed
            .iter()
            .any(|c| matches!(c, Changed::Skills | Changed::All))
            && let Err(e) = self.reload_skills().await
        {
            tracing::error!(error = %e, "could not reload skills");
        }
        if changed
            .iter()
            .any(|c| matches!(c, Changed::Prompts | Changed::All))
            && let Err(e) = self.reload_prompts().await
        {
            tracing::error!(error = %e, "could not reload prompts");
        }
        if let Some(store) = &self.store {
            for c in changed {
                if let Changed::VectorStore(id) = c
                    && let Err(e) = self.vector_stores.sync(store, id).await
                {
                    tracing::error!(store = %id, error = %e, "could not bring a vector store in step");
                }
            }
        }
        if changed
            .iter()
            .any(|c| matches!(c, Changed::RouterSettings | Changed::All))
            && let Err(e) = crate::router::stored::reload(&self.router, self.store.as_deref()).await
        {
            tracing::error!(error = %e, "could not reload router settings");
        }
    }
}

impl Apply for AppState {
    async fn apply(&self, changed: Vec<Changed>) {
        self.apply_local(&changed).await;
    }
}

/// A model-table entry from a `TianjiLLM_ProxyModelTable` row (`model_info.id` = `model_id`,
/// `model_info.db_model` = true).
pub fn db_entry(row: &serde_json::Value) -> Option<ModelEntry> {
    let mut info = row
        .get("model_info")
        .and_then(serde_json::Value::as_object)
        .cloned()
        .unwrap_or_default();
    info.insert("id".into(), row.get("model_id")?.clone());
    info.insert("db_model".into(), serde_json::Value::Bool(true));
    serde_json::from_value(serde_json::json!({
        "model_name": row.get("model_name")?,
        "tianji_params": row.get("tianji_params")?,
        "model_info": info,
    }))
    .ok()
}

/// Fetches the identity provider's JWKS documents: the configured URLs' hosts are trusted
/// (an admin set them), bodies up to 1 MiB, 10 seconds a fetch.
fn jwks_fetch(urls: &[String]) -> Result<crate::auth::jwt::Fetch, StateError> {
    use crate::upstream::fetch::{FetchPolicy, UrlFetcher};
    use futures_util::StreamExt;
    const MAX_BYTES: u64 = 1 << 20;
    let hosts = urls
        .iter()
        .filter_map(|u| url::Url::parse(u).ok()?.host_str().map(str::to_string))
        .collect();
    let fetcher = UrlFetcher::new(FetchPolicy {
        allowed_hosts: hosts,
        max_bytes: MAX_BYTES,
        timeout: std::time::Duration::from_secs(10),
        max_redirects: 3,
    })?;
    Ok(Arc::new(move |url: String| {
        let fetcher = fetcher.clone();
        Box::pin(async move {
            let got = fetcher.get(&url).await.map_err(|e| e.to_string())?;
            let mut body = got.body;
            let mut out = Vec::new();
            while let Some(chunk) = body.next().await {
                out.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
            }
            Ok(bytes::Bytes::from(out))
        })
    }))
}
