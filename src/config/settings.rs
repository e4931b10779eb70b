//! `general_settings`, `router_settings`, `tianji_settings`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A duration setting: LiteLLM's text (`30s`, `10m`, `24h`, `7d`, `2w`, `1mo`) or a number of
/// days.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Period {
    Days(u64),
    Text(String),
}

impl Period {
    /// The duration, if well formed.
    pub fn duration(&self) -> Option<std::time::Duration> {
        match self {
            Period::Days(n) => n.checked_mul(86_400).map(std::time::Duration::from_secs),
            Period::Text(t) => crate::util::duration::parse(t),
        }
    }
}

/// Proxy-wide settings.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GeneralSettings {
    /// Admin key (`sk-...`). Overridden by `TIANJI_MASTER_KEY`. Without one, LLM routes are open.
    pub master_key: Option<String>,
    /// Extra routes forwarded to a fixed target (`super::passthrough::Endpoint`).
    #[serde(default)]
    pub pass_through_endpoints: Vec<super::passthrough::Endpoint>,
    /// Check every deployment every `health_check_interval` seconds in the background; `GET
    /// /health` then answers with the latest results.
    #[serde(default)]
    pub background_health_checks: bool,
    /// Serve `mcp_servers` entries with `transport: stdio` (the gateway starts their
    /// `command` as local processes). Off by default: such an entry then stops startup.
    #[serde(default)]
    pub mcp_allow_stdio_servers: bool,
    /// Seconds between background health checks (default 300).
    pub health_check_interval: Option<f64>,
    /// Listen address when `--host` is not given.
    pub host: Option<String>,
    /// Listen port when `--port` is not given (default 4000).
    pub port: Option<u16>,
    /// Largest accepted request body in MiB (default 32); larger bodies get 413.
    pub max_request_size_mb: Option<f64>,
    /// PEM certificate chain; with `ssl_keyfile` the gateway serves HTTPS.
    pub ssl_certfile: Option<String>,
    /// PEM private key matching `ssl_certfile`.
    pub ssl_keyfile: Option<String>,
    /// Seconds a client has to send the request head (default 30).
    pub header_read_timeout: Option<f64>,
    /// Seconds a client has to send a request body once its head arrived, plus one second per
    /// `request_body_min_bytes_per_second` bytes received (default 30; 0: no limit). A body
    /// cut for slowness is answered 408 and its connection closed.
    pub request_body_timeout: Option<f64>,
    /// The pace that earns a large upload more time past `request_body_timeout` (default
    /// 16384 bytes per second; 0: the timeout bounds every body whatever its size).
    pub request_body_min_bytes_per_second: Option<u64>,
    /// Open connections allowed from one client IP address; more are closed at once (default
    /// 256; 0: no limit).
    pub max_connections_per_ip: Option<u32>,
    /// Seconds in-flight requests and streams get to finish on SIGTERM/SIGINT (default 30).
    pub graceful_shutdown_timeout: Option<f64>,
    /// PostgreSQL URL (else `DATABASE_URL`). Without one, database routes answer 503.
    pub database_url: Option<String>,
    /// Amazon RDS IAM authentication (else `IAM_TOKEN_DB_AUTH=true`): each connection's
    /// password is a fresh token signed with the environment's AWS credentials; without
    /// `database_url` the URL is made from `DATABASE_HOST`, `DATABASE_PORT`, `DATABASE_USER`
    /// and `DATABASE_NAME`.
    #[serde(default)]
    pub iam_token_db_auth: bool,
    /// A read replica's URL (else `DATABASE_URL_READ`): the spend and activity reports read
    /// from it, so they never load the primary. Needs `database_url`.
    pub database_url_read: Option<String>,
    /// Reload the config file whenever its content changes (checked every second; default
    /// false: reloads on SIGHUP and `POST /config/reload`).
    #[serde(default)]
    pub watch_config_file: bool,
    /// Accept identity-provider JWTs as bearer tokens, mapped by `tianji_jwtauth` (default
    /// false). Needs `master_key`.
    #[serde(default)]
    pub enable_jwt_auth: bool,
    /// How tokens are checked and mapped onto teams, users and roles.
    #[serde(default, alias = "litellm_jwtauth")]
    pub tianji_jwtauth: super::jwt::JwtSettings,
    /// Pool size per instance (default 10).
    pub database_connection_pool_limit: Option<u32>,
    /// Seconds to wait for a connection (default 5).
    pub database_connection_timeout: Option<f64>,
    /// Seconds startup keeps retrying an unreachable database (with backoff) before giving up
    /// (default 30; 0: one attempt).
    pub database_connect_retry_seconds: Option<f64>,
    /// Seconds startup keeps retrying an unreachable Redis (with backoff) before serving without
    /// it: degraded as during an outage, reconnecting in the background (default 5).
    pub redis_connect_retry_seconds: Option<f64>,
    /// Refuse a second team with a `team_alias` another team has (default false: aliases may
    /// repeat, as in LiteLLM). A unique index enforces it, created at startup while this is on
    /// and dropped while it is off; startup fails if teams already share an alias.
    #[serde(default)]
    pub enforce_unique_team_alias: bool,
    /// The same for `organization_alias` of organisations (default false).
    #[serde(default)]
    pub enforce_unique_organization_alias: bool,
    /// Write an AuditLog row for every management change (default false).
    #[serde(default)]
    pub store_audit_logs: bool,
    /// Keys and teams that grant no agent may call none (default false: every agent).
    #[serde(default)]
    pub agent_access_default_deny: bool,
    /// Let agents point at loopback, private and link-local addresses (default false).
    #[serde(default)]
    pub agent_allow_private_urls: bool,
    /// Let MCP servers registered through `/v1/mcp/server` point at loopback, private and
    /// link-local addresses (default false; `mcp_servers` of the config are trusted).
    #[serde(default)]
    pub mcp_allow_private_urls: bool,
    /// The largest skill upload (`/v1/skills`), in MB (default 8, Anthropic's limit).
    #[serde(default)]
    pub skill_max_upload_mb: Option<f64>,
    /// `GET /claude-code/marketplace.json` only with a key (default false: public).
    #[serde(default)]
    pub claude_code_marketplace_auth_required: bool,
    /// Do not write SpendLogs rows (spend still rolls up to keys, teams, ... and daily tables).
    #[serde(default)]
    pub disable_spend_logs: bool,
    /// Write no `TianjiLLM_ErrorLogs` rows.
    #[serde(default)]
    pub disable_error_logs: bool,
    /// Store request messages and responses in SpendLogs (default false: never stored).
    #[serde(default)]
    pub store_prompts_in_spend_logs: bool,
    /// Seconds between spend writer flushes (default 1).
    pub proxy_batch_write_at: Option<f64>,
    /// Spend rows that may wait for the writer before requests wait for room (default 20000).
    pub spend_log_queue_size: Option<usize>,
    /// Seconds between budget reset runs: a random time between these two (default 10 and 12).
    pub proxy_budget_rescheduler_min_time: Option<f64>,
    pub proxy_budget_rescheduler_max_time: Option<f64>,
    /// Run no scheduled budget resets.
    #[serde(default)]
    pub disable_reset_budget: bool,
    /// Delete SpendLogs and ErrorLogs rows older than this (`"30d"`, `"12h"`, or a number of
    /// days); default: kept forever. Daily roll-ups are kept.
    pub maximum_spend_logs_retention_period: Option<Period>,
    /// How often the spend-log retention runs (default `"1d"`).
    pub maximum_spend_logs_retention_interval: Option<Period>,
    /// Delete AuditLog rows older than this (default: kept forever).
    pub maximum_audit_logs_retention_period: Option<Period>,
    /// How often the audit-log retention runs (default `"1d"`).
    pub maximum_audit_logs_retention_interval: Option<Period>,
    /// Seconds a scheduled job's lease lasts before another instance may take the job over
    /// (default and most 30).
    pub scheduler_lease_seconds: Option<f64>,
    /// Refuse requests with 503 while Redis cannot verify rate-limit counters (default false:
    /// count per instance in memory meanwhile).
    #[serde(default)]
    pub fail_closed_rate_limit_enforcement: bool,
    /// Requests the whole gateway may have in flight (across instances sharing Redis).
    pub global_max_parallel_requests: Option<u64>,
    /// Hand out Responses API ids as they come from the provider, usable by anyone (default
    /// false: ids are sealed with their owner and only the owner or an admin may use them).
    #[serde(default)]
    pub disable_responses_id_security: bool,
    /// Accept response ids the gateway did not issue (default false: 403 for non-admins).
    #[serde(default)]
    pub allow_unmanaged_response_ids: bool,
    /// Which tokens count against TPM limits: `input`, `output` or `total` (default).
    pub token_rate_limit_type: Option<super::limits::TokenCount>,
    /// Let requests carry LiteLLM's testing members (`mock_testing_fallbacks`,
    /// `mock_testing_rate_limit_error`, `mock_timeout`, ...); default false: refused with 400.
    #[serde(default)]
    pub dangerously_allow_mock_testing_request_params: bool,
    /// Refuse to start when a `model_list` entry cannot be served as configured (a provider
    /// Tianji does not serve, an invalid entry); default false: they are reported in one line.
    #[serde(default)]
    pub strict_config: bool,
    /// Accepted for compatibility: models added through the API are always stored in the
    /// database (when there is one), as LiteLLM's `store_model_in_db: true` does.
    pub store_model_in_db: Option<bool>,
    /// Alert channels: `slack`, `webhook`, `email` (empty: no alerts).
    #[serde(default)]
    pub alerting: Vec<super::alerting::Channel>,
    /// Seconds after which a request is too slow, or hanging while still open (default 300).
    pub alerting_threshold: Option<f64>,
    /// The alert types sent (default: LiteLLM's defaults, which leave out management events).
    pub alert_types: Option<Vec<super::alerting::AlertType>>,
    /// Slack/webhook URLs per alert type, instead of `SLACK_WEBHOOK_URL` / `WEBHOOK_URL`.
    #[serde(default)]
    pub alert_to_webhook_url: BTreeMap<super::alerting::AlertType, super::alerting::Urls>,
    /// LiteLLM's `alerting_args` (seconds): `daily_report_frequency`, `report_check_interval`,
    /// `budget_alert_ttl`, `outage_alert_ttl`, `minor_outage_alert_threshold`,
    /// `major_outage_alert_threshold`, `log_to_console`; Tianji's `alert_ttl`.
    #[serde(default)]
    pub alerting_args: serde_json::Map<String, serde_json::Value>,
    /// Every key, team and user created, updated or deleted is POSTed here as a `WebhookEvent`
    /// (whatever `alerting` and `alert_types` say).
    pub management_webhook_url: Option<String>,
    /// Include a key's hash (`token`) in management events (default false: never sent).
    #[serde(default)]
    pub alerting_include_key_hash: bool,
}

impl GeneralSettings {
    /// `dangerously_allow_mock_testing_request_params`
    pub fn allow_mock_testing(&self) -> bool {
        self.dangerously_allow_mock_testing_request_params
    }
}

/// Alias target: `alias: model` or `alias: {model: m, hidden: true}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AliasTarget {
    Name(String),
    Detailed {
        model: String,
        #[serde(default)]
        hidden: bool,
    },
}

impl AliasTarget {
    pub fn model(&self) -> &str {
        match self {
            AliasTarget::Name(m) => m,
            AliasTarget::Detailed { model, .. } => model,
        }
    }
    pub fn hidden(&self) -> bool {
        matches!(self, AliasTarget::Detailed { hidden: true, .. })
    }
}

/// Model routing settings.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RouterSettings {
    /// Public alias -> model group.
    #[serde(default)]
    pub model_group_alias: BTreeMap<String, AliasTarget>,
    /// Default `timeout` (seconds) for deployments that set none.
    pub timeout: Option<f64>,
    /// Default `stream_timeout` (seconds) for deployments that set none.
    pub stream_timeout: Option<f64>,
    /// Default `max_retries` for deployments that set none.
    pub num_retries: Option<u32>,
    /// Redis shared by every instance (else `REDIS_URL`, or `REDIS_HOST`/`REDIS_PORT`/
    /// `REDIS_PASSWORD`).
    pub redis_url: Option<String>,
    pub redis_host: Option<String>,
    pub redis_port: Option<u16>,
    pub redis_password: Option<String>,
    /// A Redis Cluster's nodes (some of them; else `REDIS_CLUSTER_NODES`, a JSON list):
    /// `[{host: a, port: 7000}, ...]`. Wins over `redis_url`.
    #[serde(default)]
    pub redis_startup_nodes: Vec<RedisNode>,
    /// The primary's name in Sentinel (else `REDIS_SERVICE_NAME`); with `sentinel_nodes`.
    pub service_name: Option<String>,
    /// The sentinels (else `REDIS_SENTINEL_NODES`, a JSON list): `[[host, port], ...]`.
    #[serde(default)]
    pub sentinel_nodes: Vec<RedisNode>,
    /// The sentinels' password (else `REDIS_SENTINEL_PASSWORD`).
    pub sentinel_password: Option<String>,
    /// Spend limit per provider and period: `{openai: {budget_limit: 100, time_period: 1d}}`.
    #[serde(default)]
    pub provider_budget_config: BTreeMap<String, super::spend::ProviderBudgetConfig>,
    /// How a group's deployment is chosen (default `simple-shuffle`).
    pub routing_strategy: Option<super::router::Strategy>,
    /// Accepted for compatibility; the strategies take no arguments.
    pub routing_strategy_args: Option<serde_json::Value>,
    /// Retries per error class.
    pub retry_policy: Option<super::router::RetryPolicy>,
    #[serde(default)]
    pub model_group_retry_policy: BTreeMap<String, super::router::RetryPolicy>,
    /// Least seconds before a retry.
    pub retry_after: Option<f64>,
    /// Failures in a minute before a deployment cools down (default 3).
    pub allowed_fails: Option<u32>,
    /// Seconds a deployment cools down (default 5).
    pub cooldown_time: Option<f64>,
    #[serde(default)]
    pub disable_cooldowns: bool,
    pub fallbacks: Option<super::router::Fallbacks>,
    pub default_fallbacks: Option<Vec<String>>,
    pub context_window_fallbacks: Option<super::router::Fallbacks>,
    pub content_policy_fallbacks: Option<super::router::Fallbacks>,
    /// Most fallback groups tried per request (default 5).
    pub max_fallbacks: Option<usize>,
    #[serde(default)]
    pub enable_pre_call_checks: bool,
    #[serde(default)]
    pub enable_tag_filtering: bool,
    /// Leave invalid `model_list` entries out instead of refusing to start (default true, as
    /// LiteLLM's proxy).
    pub ignore_invalid_deployments: Option<bool>,
}

/// A Redis node: `{host, port}` (LiteLLM's startup nodes), `[host, port]` (its sentinel
/// nodes) or `"host:port"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisNode {
    pub host: String,
    pub port: u16,
}

impl<'de> Deserialize<'de> for RedisNode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Map { host: String, port: u16 },
            Pair(String, u16),
            Text(String),
        }
        match Form::deserialize(d)? {
            Form::Map { host, port } | Form::Pair(host, port) => Ok(RedisNode { host, port }),
            Form::Text(t) => t
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h, p.parse().ok()?)))
                .map(|(h, port)| RedisNode {
                    host: h.to_string(),
                    port,
                })
                .ok_or_else(|| serde::de::Error::custom(format!("'{t}' is not host:port"))),
        }
    }
}

impl RouterSettings {
    /// The Redis URL from these settings, else from the environment (`get`).
    pub fn redis_url(&self, get: impl Fn(&str) -> Option<String>) -> Option<String> {
        if let Some(u) = self.redis_url.clone().or_else(|| get("REDIS_URL")) {
            return Some(u).filter(|u| !u.is_empty());
        }
        let host = self.redis_host.clone().or_else(|| get("REDIS_HOST"))?;
        let port = self
            .redis_port
            .map(|p| p.to_string())
            .or_else(|| get("REDIS_PORT"))
            .unwrap_or_else(|| "6379".into());
        Some(format!("{}{host}:{port}", self.redis_prefix(&get)))
    }

    /// `redis[s]://[user[:password]@]` from the settings and the environment: how every node
    /// URL begins (`REDIS_SSL=true`: TLS, as redis-py's `ssl=True`).
    fn redis_prefix(&self, get: &impl Fn(&str) -> Option<String>) -> String {
        let password = (self.redis_password.clone())
            .or_else(|| get("REDIS_PASSWORD"))
            .filter(|p| !p.is_empty());
        let user = get("REDIS_USERNAME").filter(|u| !u.is_empty());
        let tls = get("REDIS_SSL").is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
            || self
                .redis_url
                .as_deref()
                .is_some_and(|u| u.starts_with("rediss://"));
        let scheme = if tls { "rediss" } else { "redis" };
        format!(
            "{scheme}://{}",
            userinfo(user.as_deref(), password.as_deref())
        )
    }

    /// Where Redis is: a cluster (`redis_startup_nodes`), a Sentinel-watched primary
    /// (`service_name` + `sentinel_nodes`), else one server ([`Self::redis_url`]).
    pub fn redis_target(
        &self,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<crate::util::redis_conn::Target>, String> {
        use crate::util::redis_conn::Target;
        let from_env = |name: &str| -> Result<Vec<RedisNode>, String> {
            match get(name).filter(|v| !v.trim().is_empty()) {
                Some(v) => serde_json::from_str(&v).map_err(|e| {
                    format!("{name} must be a JSON list of nodes ([{{\"host\": ..., \"port\": ...}}] or [[host, port]]): {e}")
                }),
                None => Ok(Vec::new()),
            }
        };
        let prefix = self.redis_prefix(&get);
        let mut nodes = self.redis_startup_nodes.clone();
        if nodes.is_empty() {
            nodes = from_env("REDIS_CLUSTER_NODES")?;
        }
        if !nodes.is_empty() {
            return Ok(Some(Target::Cluster(
                nodes
                    .iter()
                    .map(|n| format!("{prefix}{}:{}", n.host, n.port))
                    .collect(),
            )));
        }
        let mut sentinels = self.sentinel_nodes.clone();
        if sentinels.is_empty() {
            sentinels = from_env("REDIS_SENTINEL_NODES")?;
        }
        let service = self
            .service_name
            .clone()
            .or_else(|| get("REDIS_SERVICE_NAME"));
        match (service, sentinels.is_empty()) {
            (Some(service), false) => {
                let password = (self.sentinel_password.clone())
                    .or_else(|| get("REDIS_SENTINEL_PASSWORD"))
                    .filter(|p| !p.is_empty());
                let auth = userinfo(None, password.as_deref());
                Ok(Some(Target::Sentinel {
                    service,
                    sentinels: sentinels
                        .iter()
                        .map(|n| format!("redis://{auth}{}:{}", n.host, n.port))
                        .collect(),
                    primary: format!("{prefix}primary"),
                }))
            }
            (None, false) => Err("sentinel_nodes need service_name (or REDIS_SERVICE_NAME)".into()),
            _ => Ok(self.redis_url(get).map(Target::Single)),
        }
    }
}

/// `user:password@` (percent-encoded), `:password@`, `user@` or nothing.
fn userinfo(user: Option<&str>, password: Option<&str>) -> String {
    let enc = |v: &str| {
        percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    match (user, password) {
        (Some(u), Some(p)) => format!("{}:{}@", enc(u), enc(p)),
        (Some(u), None) => format!("{}@", enc(u)),
        (None, Some(p)) => format!(":{}@", enc(p)),
        (None, None) => String::new(),
    }
}

/// Library-level settings (LiteLLM's `litellm_settings`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TianjiSettings {
    /// Default `timeout` (seconds) for every deployment (router_settings.timeout wins).
    pub request_timeout: Option<f64>,
    /// Log as JSON lines instead of text.
    #[serde(default)]
    pub json_logs: bool,
    /// HTTP status of `budget_exceeded` errors (default 429).
    pub budget_exceeded_status_code: Option<u16>,
    /// Defaults for internal users (`available_teams`: teams any user may join).
    #[serde(default)]
    pub default_internal_user_params: DefaultInternalUserParams,
    /// Callbacks by name; `dynamic_rate_limiter_v3` turns on priority reservation, `otel`
    /// OpenTelemetry traces, `prometheus` the metrics of `GET /metrics`.
    #[serde(default)]
    pub callbacks: Vec<String>,
    /// `GET /metrics` needs an admin (default); `false` opens it to anyone who can reach it.
    pub require_auth_for_metrics_endpoint: Option<bool>,
    /// Callbacks that get successful requests only.
    #[serde(default)]
    pub success_callback: Vec<String>,
    /// Callbacks that get failed requests only.
    #[serde(default)]
    pub failure_callback: Vec<String>,
    /// Start even when a callback is not implemented (it is then left out).
    #[serde(default)]
    pub ignore_unknown_callbacks: bool,
    /// Start even when a guardrail's kind is not implemented (it is then left out, with a
    /// warning).
    #[serde(default)]
    pub ignore_unknown_guardrails: bool,
    /// Where `dotprompt` prompts that name no file, directory or content find
    /// `{prompt_id}.prompt` (LiteLLM's `global_prompt_directory`).
    pub global_prompt_directory: Option<String>,
    /// Events each logging callback queues before it drops new ones (default 10,000).
    #[serde(default)]
    pub callback_queue_size: Option<usize>,
    /// The `s3` logging callback's settings (`s3_bucket_name`, `s3_region_name`,
    /// `s3_endpoint_url`, `s3_aws_access_key_id`, `s3_aws_secret_access_key`,
    /// `s3_aws_session_token`, `s3_path`; values may be `os.environ/X`).
    pub s3_callback_params: Option<serde_json::Value>,
    /// Keep request and response bodies out of every logging callback.
    #[serde(default)]
    pub turn_off_message_logging: bool,
    /// Keep the `user_api_key_*` fields out of every logging callback.
    #[serde(default)]
    pub redact_user_api_key_info: bool,
    /// Share of each model's capacity per priority: `{prod: 0.9, dev: {type: rpm, value: 10}}`.
    #[serde(default)]
    pub priority_reservation: BTreeMap<String, super::limits::Reservation>,
    #[serde(default)]
    pub priority_reservation_settings: super::limits::ReservationSettings,
    /// Write an AuditLog row for every management change (LiteLLM's place for it;
    /// `general_settings.store_audit_logs` also turns it on). Router keys set here move to
    /// `router_settings` while loading (see `compat.rs`).
    #[serde(default)]
    pub store_audit_logs: bool,
    /// Turn the response cache on (see `cache_params`).
    #[serde(default)]
    pub cache: bool,
    /// The response cache: tiers, TTL, namespace, scope, mode, semantic cache.
    pub cache_params: Option<super::cache::CacheParams>,
    /// Who may create which keys with `/key/generate`, and what they must set (LiteLLM's
    /// `key_generation_settings`).
    pub key_generation_settings: Option<KeyGenerationSettings>,
    /// The `banned_keywords` guardrail's keywords (a list or a file, one a line).
    pub banned_keywords_list: Option<super::guardrails::ListOrFile>,
    /// The `blocked_user_list` guardrail's end users (a list or a file, one a line).
    pub blocked_user_list: Option<super::guardrails::ListOrFile>,
}

impl TianjiSettings {
    /// `callbacks` names `prometheus`.
    pub fn prometheus(&self) -> bool {
        self.callbacks.iter().any(|c| c == "prometheus")
    }
}

/// User roles, lowest last (`TianjiLLM_UserTable.user_role`).
pub const USER_ROLES: &[&str] = &[
    "proxy_admin",
    "proxy_admin_viewer",
    "internal_user",
    "internal_user_viewer",
];

/// Roles of a team member (`members_with_roles[].role`).
pub const TEAM_MEMBER_ROLES: &[&str] = &["admin", "user"];

/// `tianji_settings.key_generation_settings`
#[derive(Debug, Clone, Default, Deserialize)]
pub struct KeyGenerationSettings {
    /// Keys with a `team_id` (proxy admins are not restricted).
    pub team_key_generation: Option<TeamKeyGeneration>,
    /// Keys without a `team_id` (every caller, proxy admins included, as in LiteLLM).
    pub personal_key_generation: Option<PersonalKeyGeneration>,
}

/// `key_generation_settings.team_key_generation`
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TeamKeyGeneration {
    /// Team member roles (`admin`, `user`) that may create the team's keys (default both).
    pub allowed_team_member_roles: Option<Vec<String>>,
    /// Fields a request must give (e.g. `tags`, `key_alias`).
    #[serde(default)]
    pub required_params: Vec<String>,
}

/// `key_generation_settings.personal_key_generation`
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PersonalKeyGeneration {
    /// User roles that may create personal keys (default every role that may create keys).
    pub allowed_user_roles: Option<Vec<String>>,
    /// Fields a request must give.
    #[serde(default)]
    pub required_params: Vec<String>,
}

impl KeyGenerationSettings {
    /// The first role named that is not a role, with its path.
    pub fn unknown_role(&self) -> Option<(String, String)> {
        let team = self.team_key_generation.as_ref().map(|t| {
            let roles = t.allowed_team_member_roles.as_deref().unwrap_or_default();
            (
                "team_key_generation.allowed_team_member_roles",
                roles,
                TEAM_MEMBER_ROLES,
            )
        });
        let personal = self.personal_key_generation.as_ref().map(|p| {
            let roles = p.allowed_user_roles.as_deref().unwrap_or_default();
            (
                "personal_key_generation.allowed_user_roles",
                roles,
                USER_ROLES,
            )
        });
        team.into_iter()
            .chain(personal)
            .find_map(|(path, roles, known)| {
                roles
                    .iter()
                    .find(|r| !known.contains(&r.as_str()))
                    .map(|r| (path.to_string(), r.clone()))
            })
    }
}

/// `tianji_settings.default_internal_user_params`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultInternalUserParams {
    /// Teams listed by `/team/available`.
    #[serde(default)]
    pub available_teams: Vec<String>,
    /// Role of users created without one.
    pub user_role: Option<String>,
    /// Models of users created without any.
    pub models: Option<Vec<String>>,
    pub max_budget: Option<f64>,
    pub budget_duration: Option<String>,
}
