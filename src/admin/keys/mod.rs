//! `/key/*`: virtual keys. Raw keys are returned once, at generation; only their sha256 hex is
//! stored. Every write invalidates the key cache.
//!
//! `mod.rs`: the request type, validation, `/key/generate`; `admit.rs`: who may create which
//! key; `update.rs`: `/key/update`; `lifecycle.rs`: info, delete, block/unblock.

mod admit;
mod lifecycle;
mod listing;
mod update;

pub use lifecycle::{delete, info, regenerate, reset_spend, set_blocked};
pub use listing::{aliases, info_many, list};
pub use update::update;

use std::time::Duration;

use http::Response;
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::audit::{self, Change, KEYS_TABLE};
use super::crud::{Params, Tx};
use super::{AdminError, Call, ok};
use crate::auth::{Changed, token_hex};
use crate::body::Body;
use crate::store::{Query, StoreError};
use crate::util::clock::now_secs;
use crate::util::duration;

/// `/key/generate` body: every field of LiteLLM's `GenerateKeyRequest`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateKey {
    key: Option<String>,
    key_alias: Option<String>,
    duration: Option<String>,
    models: Option<Vec<String>>,
    spend: Option<f64>,
    max_budget: Option<f64>,
    soft_budget: Option<f64>,
    user_id: Option<String>,
    team_id: Option<String>,
    agent_id: Option<String>,
    organization_id: Option<String>,
    project_id: Option<String>,
    max_parallel_requests: Option<i32>,
    metadata: Option<Map<String, Value>>,
    tpm_limit: Option<i64>,
    rpm_limit: Option<i64>,
    tpd_limit: Option<i64>,
    budget_duration: Option<String>,
    budget_limits: Option<Value>,
    allowed_cache_controls: Option<Vec<String>>,
    config: Option<Map<String, Value>>,
    permissions: Option<Map<String, Value>>,
    model_max_budget: Option<Map<String, Value>>,
    budget_fallbacks: Option<Map<String, Value>>,
    model_rpm_limit: Option<Map<String, Value>>,
    model_tpm_limit: Option<Map<String, Value>>,
    mcp_rpm_limit: Option<Map<String, Value>>,
    tag_rpm_limit: Option<Map<String, Value>>,
    guardrails: Option<Vec<String>>,
    policies: Option<Vec<String>>,
    prompts: Option<Vec<String>>,
    blocked: Option<bool>,
    aliases: Option<Map<String, Value>>,
    object_permission: Option<Map<String, Value>>,
    default_estimated_output_tokens: Option<i64>,
    default_estimated_output_tokens_per_model: Option<Map<String, Value>>,
    budget_id: Option<String>,
    end_user_budget_id: Option<String>,
    tags: Option<Vec<String>>,
    disable_global_guardrails: Option<bool>,
    enable_prompt_caching: Option<bool>,
    throttle_on_budget_exceeded: Option<bool>,
    enforced_params: Option<Vec<String>>,
    allowed_routes: Option<Vec<String>>,
    allowed_passthrough_routes: Option<Vec<String>>,
    denied_passthrough_routes: Option<Vec<String>>,
    allowed_vector_store_indexes: Option<Value>,
    rpm_limit_type: Option<String>,
    tpm_limit_type: Option<String>,
    router_settings: Option<Map<String, Value>>,
    access_group_ids: Option<Vec<String>>,
    #[serde(skip_serializing)]
    send_invite_email: Option<bool>,
    key_type: Option<String>,
    auto_rotate: Option<bool>,
    rotation_interval: Option<String>,
}

const LIMIT_TYPES: &[&str] = &["guaranteed_throughput", "best_effort_throughput", "dynamic"];

/// Request fields LiteLLM keeps inside the key's `metadata`.
pub(crate) const METADATA_FIELDS: &[&str] = &[
    "tags",
    "model_rpm_limit",
    "model_tpm_limit",
    "mcp_rpm_limit",
    "tag_rpm_limit",
    "guardrails",
    "prompts",
    "default_estimated_output_tokens",
    "default_estimated_output_tokens_per_model",
    "rpm_limit_type",
    "tpm_limit_type",
    "enforced_params",
    "disable_global_guardrails",
    "enable_prompt_caching",
    "throttle_on_budget_exceeded",
    "allowed_passthrough_routes",
    "denied_passthrough_routes",
    "allowed_vector_store_indexes",
    "end_user_budget_id",
    "temp_budget_increase",
    "temp_budget_expiry",
];

/// Request fields stored as the key column of the same name.
const COLUMNS: &[&str] = &[
    "key_alias",
    "spend",
    "max_budget",
    "user_id",
    "team_id",
    "agent_id",
    "organization_id",
    "project_id",
    "max_parallel_requests",
    "tpm_limit",
    "rpm_limit",
    "tpd_limit",
    "budget_duration",
    "budget_limits",
    "allowed_cache_controls",
    "allowed_routes",
    "config",
    "permissions",
    "model_max_budget",
    "budget_fallbacks",
    "blocked",
    "aliases",
    "policies",
    "router_settings",
    "access_group_ids",
    "budget_id",
    "auto_rotate",
    "rotation_interval",
];

/// `YYYY-MM-DD HH:MM:SS` UTC, which Postgres reads as a TIMESTAMP.
fn ts(after: Duration) -> String {
    crate::util::clock::fmt_utc(now_secs() + after.as_secs_f64())
}

pub(crate) fn non_negative(field: &str, v: Option<f64>) -> Result<(), AdminError> {
    match v {
        Some(x) if !(x.is_finite() && x >= 0.0) => Err(AdminError::invalid(
            field,
            format!("must be a non-negative number, got {x}"),
        )),
        _ => Ok(()),
    }
}

fn non_negative_int(field: &str, v: Option<i64>) -> Result<(), AdminError> {
    match v {
        Some(x) if x < 0 => Err(AdminError::invalid(field, format!("must be >= 0, got {x}"))),
        _ => Ok(()),
    }
}

fn parse_duration(field: &str, v: &Option<String>) -> Result<Option<Duration>, AdminError> {
    match v {
        None => Ok(None),
        Some(s) => duration::parse(s).map(Some).ok_or_else(|| {
            AdminError::invalid(
                field,
                format!("invalid duration '{s}': use e.g. 30s, 10m, 24h, 7d, 2w, 1mo"),
            )
        }),
    }
}

/// A new raw key: `sk-` and 22 URL-safe characters from the OS CSPRNG.
pub(crate) fn new_raw_key() -> Result<String, AdminError> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut buf = [0u8; 22];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| {
            AdminError::Store(StoreError::Unavailable("no randomness available".into()))
        })?;
    Ok(format!(
        "sk-{}",
        buf.iter()
            .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
            .collect::<String>()
    ))
}

/// `sk-...abcd`
pub(crate) fn masked(raw: &str) -> String {
    let tail: String = raw
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("sk-...{tail}")
}

/// 404 for a key that is not in the database.
pub(crate) fn key_not_found() -> AdminError {
    AdminError::NotFound {
        param: "key",
        message: "Key not found in database".into(),
    }
}

/// The key's row inside a transaction, or 404.
pub(crate) async fn row_in_tx(tx: &Tx<'_>, token: &str) -> Result<Value, AdminError> {
    tx.query(Query::GetKeyRowsByTokens, &[&vec![token.to_string()]])
        .await?
        .first()
        .and_then(|r| r.try_get(0).ok())
        .ok_or_else(key_not_found)
}

/// 400 when another key already has `alias`.
pub(crate) async fn ensure_alias_free(tx: &Tx<'_>, alias: &str) -> Result<(), AdminError> {
    if !tx.any(Query::KeyAliasTaken, &[&alias]).await? {
        return Ok(());
    }
    Err(AdminError::invalid(
        "key_alias",
        format!("Unique key aliases across all keys are required, got duplicate alias={alias}"),
    ))
}

/// Non-admins may manage the keys of a team they administer, and — when the team's
/// `team_member_permissions` lists `route` — their own keys in a team they belong to; never a
/// key that acts with a role above the caller's (regenerating it would hand that role over).
/// `key` is the key row (or the request, for `/key/generate`). Returns the key's team for
/// non-admins (for the limit ceilings), `None` for proxy admins.
pub(crate) async fn team_key_access(
    call: &Call<'_>,
    key: &Value,
    route: &str,
) -> Result<Option<crate::auth::TeamRecord>, AdminError> {
    if call.principal.is_admin() {
        return Ok(None);
    }
    let forbidden = || {
        AdminError::Forbidden(format!(
            "Only proxy admins, admins of the key's team, or team members allowed {route} can do this. Your role={}",
            call.principal.role().name()
        ))
    };
    let (Some(team_id), Some(user)) = (
        key.get("team_id").and_then(Value::as_str),
        call.principal.user_id(),
    ) else {
        return Err(forbidden());
    };
    let team = call
        .first(Query::TeamsByIds, &[&vec![team_id.to_string()]])
        .await?;
    let rec: crate::auth::TeamRecord = team
        .map(serde_json::from_value)
        .and_then(Result::ok)
        .ok_or_else(forbidden)?;
    let owner = key.get("user_id").and_then(Value::as_str);
    let own = owner == Some(user);
    let permitted = rec
        .team_member_permissions
        .as_ref()
        .is_some_and(|p| p.iter().any(|r| r == route));
    if !(rec.is_admin(user) || (rec.has_member(user) && permitted && own)) {
        return Err(forbidden());
    }
    if let Some(owner) = owner.filter(|o| *o != user) {
        if !rec.has_member(owner) {
            return Err(AdminError::Forbidden(format!(
                "User {owner} is not a member of team {team_id}; a team admin manages keys of its team's members only"
            )));
        }
        let role = key_role(call, owner, key.get("metadata").unwrap_or(&Value::Null)).await?;
        let mine = call.principal.role();
        if role.above(mine) {
            return Err(AdminError::Forbidden(format!(
                "A key of user {owner} acts as {}, above your role={}",
                role.name(),
                mine.name()
            )));
        }
    }
    Ok(Some(rec))
}

/// The role a key of `user_id` acts with (its user's role under the key's recorded cap).
async fn key_role(
    call: &Call<'_>,
    user_id: &str,
    metadata: &Value,
) -> Result<crate::auth::UserRole, AdminError> {
    let user = call.first(Query::GetUserRecord, &[&user_id]).await?;
    let role = user
        .as_ref()
        .and_then(|u| u.get("user_role"))
        .and_then(Value::as_str);
    Ok(crate::auth::UserRole::of_key(role, metadata))
}

/// A limit a non-admin sets on a key or a membership, against the team's (`team`) and the
/// current value (`now`): never above the team's; where the team sets none, never above the
/// current value (raising it needs a proxy admin). `None` is unlimited.
pub(crate) fn within_ceiling(
    field: &str,
    asked: Option<f64>,
    team: Option<f64>,
    now: Option<f64>,
    raising_own: bool,
) -> Result<(), AdminError> {
    let refused = match (team, now) {
        // Unset is bounded by the team's own limit at request time.
        (Some(t), _) => asked.is_some_and(|a| a > t),
        (None, Some(n)) if raising_own => asked.is_none_or(|a| a > n),
        (None, _) => false,
    };
    if refused {
        let limit = team.or(now).map(|v| v.to_string()).unwrap_or_default();
        return Err(AdminError::Forbidden(format!(
            "{field} may not exceed {limit} (the team's limit, or the current one when the team sets none); ask a proxy admin for more"
        )));
    }
    Ok(())
}

/// Model lists: `asked` must stay within the team's models, else (for one's own key or
/// membership) within the current list. Empty or missing lists grant every model.
pub(crate) fn models_within(
    field: &str,
    asked: Option<&[String]>,
    team: Option<&[String]>,
    now: Option<&[String]>,
    raising_own: bool,
) -> Result<(), AdminError> {
    fn restricted(l: Option<&[String]>) -> Option<&[String]> {
        l.filter(|l| !l.is_empty())
    }
    let (cap, unset_ok) = match restricted(team) {
        // An empty list on a team key means the team's models.
        Some(t) => (t, true),
        None => match restricted(now) {
            Some(n) if raising_own => (n, false),
            _ => return Ok(()),
        },
    };
    let all = |l: &[String]| {
        l.iter()
            .any(|m| m == "*" || m == "all-proxy-models" || m == "all-team-models")
    };
    if all(cap) {
        return Ok(());
    }
    match restricted(asked) {
        None if unset_ok => Ok(()),
        None => Err(AdminError::Forbidden(format!(
            "{field}: every model is more than {cap:?}; ask a proxy admin for more"
        ))),
        Some(a) => match a
            .iter()
            .find(|m| m.as_str() != "all-team-models" && !cap.contains(m))
        {
            Some(m) => Err(AdminError::Forbidden(format!(
                "{field}: model '{m}' is not within {cap:?}; ask a proxy admin for more"
            ))),
            None => Ok(()),
        },
    }
}

/// The number a JSON limit holds (`None` for null or missing).
pub(crate) fn num(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

/// Copy `tokens` into `TianjiLLM_DeletedVerificationToken` (who, when, with which key), then
/// delete them.
async fn archive(tx: &Tx<'_>, tokens: &[String]) -> Result<(), AdminError> {
    let call = tx.call();
    let by = (call.changed_by(), call.changed_by_header());
    tx.exec(
        Query::ArchiveKeys,
        &[&tokens, &by.0, &call.caller_hash, &by.1],
    )
    .await?;
    tx.exec(Query::DeleteKeys, &[&tokens]).await?;
    Ok(())
}

/// Keys archived and deleted along with what owned them (a team, a user, a membership).
pub(crate) struct Archived {
    tokens: Vec<String>,
    /// The rows as they were.
    rows: Vec<Value>,
}

impl Archived {
    /// Archive and delete the keys `q` lists (by token) inside `tx`.
    pub async fn listed(tx: &Tx<'_>, q: Query, params: &Params<'_>) -> Result<Self, AdminError> {
        let tokens = tx.strings(q, params).await?;
        let rows = tx.rows(Query::GetKeyRowsByTokens, &[&tokens]).await?;
        archive(tx, &tokens).await?;
        Ok(Self { tokens, rows })
    }

    /// Add a `deleted` audit row for each key to `changes`, and the keys to what the caches
    /// drop (`changed`).
    pub fn record<'a>(&'a self, changes: &mut Vec<Change<'a>>, changed: &mut Vec<Changed>) {
        changes.extend(audit::deleted(KEYS_TABLE, "token", &self.rows));
        changed.extend(audit::keys_changed(&self.tokens));
    }
}

/// A key given as raw `sk-...` or as its sha256 hex.
pub(crate) fn to_token(key: &str) -> String {
    let is_hash = key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hash {
        key.to_ascii_lowercase()
    } else {
        token_hex(key)
    }
}

impl GenerateKey {
    pub(crate) fn validate(&self) -> Result<(), AdminError> {
        non_negative("max_budget", self.max_budget)?;
        non_negative("soft_budget", self.soft_budget)?;
        non_negative("spend", self.spend)?;
        non_negative_int("tpm_limit", self.tpm_limit)?;
        non_negative_int("rpm_limit", self.rpm_limit)?;
        non_negative_int("tpd_limit", self.tpd_limit)?;
        non_negative_int(
            "max_parallel_requests",
            self.max_parallel_requests.map(i64::from),
        )?;
        if let Some(n) = self.default_estimated_output_tokens
            && n <= 0
        {
            return Err(AdminError::invalid(
                "default_estimated_output_tokens",
                "must be > 0",
            ));
        }
        for (field, v) in [
            ("rpm_limit_type", &self.rpm_limit_type),
            ("tpm_limit_type", &self.tpm_limit_type),
        ] {
            if let Some(t) = v
                && !LIMIT_TYPES.contains(&t.as_str())
            {
                return Err(AdminError::invalid(
                    field,
                    format!("must be one of {LIMIT_TYPES:?}, got '{t}'"),
                ));
            }
        }
        if let Some(k) = &self.key
            && (!k.starts_with("sk-") || k.len() < 16)
        {
            return Err(AdminError::invalid(
                "key",
                "a custom key must start with 'sk-' and be at least 16 characters",
            ));
        }
        if let Some(a) = &self.key_alias
            && a.trim().is_empty()
        {
            return Err(AdminError::invalid("key_alias", "must not be empty"));
        }
        Ok(())
    }

    /// The row to insert (column name -> value).
    fn row(
        &self,
        token: &str,
        raw: &str,
        changed_by: &str,
    ) -> Result<Map<String, Value>, AdminError> {
        let expires = parse_duration("duration", &self.duration)?;
        let budget_every = parse_duration("budget_duration", &self.budget_duration)?;
        let rotate_every = parse_duration("rotation_interval", &self.rotation_interval)?;
        // Every field as JSON (absent ones null), to copy by name.
        let given = serde_json::to_value(self).unwrap_or_default();
        let field = |name: &str| given.get(name).filter(|v| !v.is_null()).cloned();
        let mut metadata = self.metadata.clone().unwrap_or_default();
        for name in METADATA_FIELDS {
            if let Some(v) = field(name) {
                metadata.insert((*name).to_string(), v);
            }
        }
        let mut row = Map::new();
        for name in COLUMNS {
            if let Some(v) = field(name) {
                row.insert((*name).to_string(), v);
            }
        }
        let mut put = |k: &str, v: Value| {
            if !v.is_null() {
                row.insert(k.to_string(), v);
            }
        };
        put("token", json!(token));
        put("key_name", json!(masked(raw)));
        put("expires", json!(expires.map(ts)));
        put("models", json!(self.models.clone().unwrap_or_default()));
        put("metadata", Value::Object(metadata));
        put("budget_reset_at", json!(budget_every.map(ts)));
        put(
            "key_type",
            json!(self.key_type.clone().unwrap_or_else(|| "default".into())),
        );
        put(
            "key_rotation_at",
            json!(
                rotate_every
                    .filter(|_| self.auto_rotate == Some(true))
                    .map(ts)
            ),
        );
        put("created_by", json!(changed_by));
        put("updated_by", json!(changed_by));
        Ok(row)
    }
}

/// Unique indexes a write may run into, each as the request field it guards and what it names
/// (the alias indexes exist only while `general_settings.enforce_unique_*_alias` is on).
const UNIQUE_FIELDS: &[(&str, &str, &str)] = &[
    (
        "TianjiLLM_TeamTable_team_alias_key",
        "team_alias",
        "Team alias",
    ),
    (
        "TianjiLLM_OrganizationTable_organization_alias_key",
        "organization_alias",
        "Organization alias",
    ),
];

/// A write the database refused, as a 400 naming the column or constraint (a duplicate of a
/// unique alias names its field).
pub(crate) fn map_db(e: tokio_postgres::Error) -> AdminError {
    if let Some(db) = e.as_db_error() {
        if let Some((_, field, what)) = UNIQUE_FIELDS
            .iter()
            .find(|(index, ..)| db.constraint() == Some(*index))
        {
            let detail = db.detail().unwrap_or_default();
            return AdminError::invalid(
                field,
                format!(
                    "{what} already exists and general_settings.enforce_unique_{field} is on: {detail}"
                ),
            );
        }
        let field = db.column().or(db.constraint()).unwrap_or("request");
        return AdminError::invalid(field, db.message().to_string());
    }
    AdminError::Store(StoreError::from(e))
}

/// `POST /key/service-account/generate`: a key owned by a team, not a user.
pub async fn generate_service_account(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let mut req: GenerateKey = call.json()?;
    if req.team_id.as_deref().is_none_or(str::is_empty) {
        return Err(AdminError::invalid(
            "team_id",
            "is required for a service account key",
        ));
    }
    req.user_id = None;
    create(call, req).await
}

/// `POST /key/generate`
pub async fn generate(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let req: GenerateKey = call.json()?;
    create(call, req).await
}

/// Insert the key `req` describes inside `tx`: its soft budget becomes a budget row and its
/// object permissions an object-permission row, as LiteLLM stores them. Returns the raw key,
/// its token and the stored row.
pub(crate) async fn insert_in_tx(
    tx: &Tx<'_>,
    req: &GenerateKey,
) -> Result<(String, String, Value), AdminError> {
    req.validate()?;
    let raw = match &req.key {
        Some(k) => k.clone(),
        None => new_raw_key()?,
    };
    let token = token_hex(&raw);
    let mut row = req.row(&token, &raw, &tx.call().changed_by())?;
    if let Some(alias) = &req.key_alias {
        ensure_alias_free(tx, alias).await?;
    }
    if let Some(soft) = req.soft_budget
        && req.budget_id.is_none()
    {
        let cols = Map::from_iter([("soft_budget".to_string(), json!(soft))]);
        let b = tx.budget(None, cols).await?.unwrap_or_default();
        row.insert("budget_id".into(), b["budget_id"].clone());
    }
    let permission = req.object_permission.clone().map(Value::Object);
    tx.object_permission(permission.as_ref(), &mut row).await?;
    let stored = tx.one(Query::InsertKey, &[&Value::Object(row)]).await?;
    Ok((raw, token, stored))
}

async fn create(call: &Call<'_>, mut req: GenerateKey) -> Result<Response<Body>, AdminError> {
    admit::admit_new_key(call, &mut req).await?;
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let (raw, token, stored) = insert_in_tx(&tx, &req).await?;
    let invite = match (req.send_invite_email, &req.user_id) {
        (Some(true), Some(user_id)) => {
            let user = tx.find(Query::GetUserRows, user_id).await?;
            super::invitations::pending(&tx, true, &user.unwrap_or_default()).await?
        }
        _ => None,
    };
    let changes = vec![Change::created(KEYS_TABLE, &token, &stored)];
    tx.commit(changes, &audit::keys_changed(&[&token])).await?;
    super::invitations::send(call, invite, "A virtual key was created for you");

    // Response: the request as sent, overlaid with the stored row, plus the raw key (once).
    let mut out: Map<String, Value> = serde_json::from_slice(&call.body).unwrap_or_default();
    if let Value::Object(m) = stored {
        out.extend(m);
    }
    out.insert("key".into(), json!(raw));
    out.insert("token_id".into(), json!(token));
    Ok(ok(&Value::Object(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_keys_and_masks() {
        let k = new_raw_key().unwrap();
        assert!(k.starts_with("sk-") && k.len() == 25, "{k}");
        assert_ne!(k, new_raw_key().unwrap());
        assert_eq!(masked("sk-abcdefgh1234"), "sk-...1234");
        assert_eq!(to_token("sk-1234"), token_hex("sk-1234"));
        assert_eq!(to_token(&token_hex("sk-1234")), token_hex("sk-1234"));
    }

    #[test]
    fn validation_names_the_field() {
        let negative = GenerateKey {
            max_budget: Some(-1.0),
            ..Default::default()
        };
        let short = GenerateKey {
            key: Some("nope".into()),
            ..Default::default()
        };
        for (req, field) in [(negative, "max_budget"), (short, "key")] {
            assert_eq!(req.validate().unwrap_err().param(), Some(field));
        }
        let e = GenerateKey {
            duration: Some("5x".into()),
            ..Default::default()
        }
        .row("t", "sk-xxxxxxxxxxxxxxxx", "a")
        .unwrap_err();
        assert_eq!(e.param(), Some("duration"));
    }
}
