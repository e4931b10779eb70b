//! The management API: plain async handlers over named store queries, one file per area.
//! Every route declares the least role that may call it ([`Role`]); the check runs before the
//! handler, and without a database every route answers 503.

mod audit;
mod budgets;
mod cache;
mod crud;
pub mod duration;
mod end_users;
mod fields;
mod keys;
mod models;
mod organizations;
pub mod router;
mod spend;
mod teams;
mod users;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::auth::{AuthError, Principal};
use crate::body::Body;
use crate::error::json_response;
use crate::pipeline::parse::{RequestError, read_declared};
use crate::request_body::RequestBody;
use crate::state::AppState;
use crate::store::{Store, StoreError};

/// Management routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRoute {
    KeyGenerate,
    KeyUpdate,
    KeyInfo,
    KeyDelete,
    KeyBlock,
    KeyUnblock,
    KeyList,
    KeyInfoV2,
    KeyAliases,
    KeyServiceAccount,
    KeyRegenerate,
    KeyResetSpend,
    TeamNew,
    TeamUpdate,
    TeamDelete,
    TeamInfo,
    TeamList,
    TeamAvailable,
    TeamMemberAdd,
    TeamMemberDelete,
    TeamMemberUpdate,
    TeamPermissionsList,
    TeamPermissionsUpdate,
    TeamBlock,
    TeamUnblock,
    TeamModelAdd,
    TeamModelRemove,
    UserNew,
    UserUpdate,
    UserInfo,
    UserDelete,
    UserList,
    AuditList,
    AuditGet,
    OrgNew,
    OrgUpdate,
    OrgDelete,
    OrgInfo,
    OrgList,
    OrgMemberAdd,
    OrgMemberUpdate,
    OrgMemberDelete,
    BudgetNew,
    BudgetUpdate,
    BudgetInfo,
    BudgetList,
    BudgetDelete,
    EndUserNew,
    EndUserUpdate,
    EndUserDelete,
    EndUserInfo,
    EndUserList,
    EndUserBlock,
    EndUserUnblock,
    ModelNew,
    ModelUpdate,
    ModelDelete,
    ModelInfo,
    ModelGroupInfo,
    SpendLogs,
    SpendKeys,
    SpendUsers,
    SpendTeams,
    SpendTags,
    SpendModels,
    SpendEndUsers,
    GlobalSpend,
    GlobalSpendKeys,
    GlobalSpendModels,
    GlobalSpendTeams,
    GlobalSpendTags,
    GlobalSpendProvider,
    GlobalSpendEndUsers,
    GlobalSpendReport,
    GlobalSpendReset,
    GlobalActivity,
    GlobalActivityModel,
    GlobalActivityCacheHits,
    UserDailyActivity,
    TeamDailyActivity,
    OrgDailyActivity,
    EndUserDailyActivity,
    ProviderBudgets,
    FallbackCreate,
    /// GET, and DELETE for admins.
    FallbackItem,
    /// GET, and PATCH for admins.
    RouterSettings,
    CachePing,
    CacheDelete,
    CacheFlushAll,
    CacheRedisInfo,
}

/// The least privilege a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Master key, or a key of a `proxy_admin` user.
    ProxyAdmin,
    /// Read-only routes: also `proxy_admin_viewer` users.
    AdminViewer,
    /// A key of a user; the handler checks the user administers the team in question.
    TeamAdmin,
    /// Any valid key; the handler limits it to what the key owns.
    KeyOwner,
}

impl AdminRoute {
    pub fn method(self) -> Method {
        use AdminRoute::*;
        match self {
            KeyInfo
            | KeyList
            | KeyAliases
            | TeamInfo
            | TeamList
            | TeamAvailable
            | TeamPermissionsList
            | UserInfo
            | UserList
            | AuditList
            | AuditGet
            | OrgInfo
            | OrgList
            | BudgetList
            | EndUserInfo
            | EndUserList
            | ModelInfo
            | ModelGroupInfo
            | SpendLogs
            | SpendKeys
            | SpendUsers
            | SpendTeams
            | SpendTags
            | SpendModels
            | SpendEndUsers
            | GlobalSpend
            | GlobalSpendKeys
            | GlobalSpendModels
            | GlobalSpendTeams
            | GlobalSpendTags
            | GlobalSpendProvider
            | GlobalSpendReport
            | GlobalActivity
            | GlobalActivityModel
            | GlobalActivityCacheHits
            | UserDailyActivity
            | TeamDailyActivity
            | OrgDailyActivity
            | EndUserDailyActivity
            | ProviderBudgets
            | FallbackItem
            | RouterSettings
            | CachePing
            | CacheRedisInfo => Method::GET,
            OrgUpdate | OrgMemberUpdate => Method::PATCH,
            OrgDelete | OrgMemberDelete => Method::DELETE,
            _ => Method::POST,
        }
    }
    pub fn min_role(self) -> Role {
        use AdminRoute::*;
        match self {
            KeyInfo | TeamInfo | TeamList | TeamAvailable | UserInfo | OrgInfo | OrgList
            | ModelInfo | ModelGroupInfo => Role::KeyOwner,
            // Self-scoped: a non-admin sees its own user's (or key's) spend.
            SpendLogs
            | SpendKeys
            | SpendUsers
            | SpendTags
            | SpendModels
            | GlobalActivity
            | GlobalActivityModel
            | GlobalActivityCacheHits
            | UserDailyActivity
            | TeamDailyActivity => Role::KeyOwner,
            SpendTeams | SpendEndUsers | GlobalSpend | GlobalSpendKeys | GlobalSpendModels
            | GlobalSpendTeams | GlobalSpendTags | GlobalSpendProvider | GlobalSpendEndUsers
            | GlobalSpendReport | OrgDailyActivity | EndUserDailyActivity | ProviderBudgets
            | FallbackItem | RouterSettings => Role::AdminViewer,
            TeamUpdate
            | TeamMemberAdd
            | TeamMemberDelete
            | TeamMemberUpdate
            | TeamPermissionsList
            | TeamPermissionsUpdate
            | KeyGenerate
            | KeyUpdate
            | KeyDelete
            | KeyBlock
            | KeyUnblock
            | KeyRegenerate => Role::TeamAdmin,
            KeyList | KeyAliases | UserList | AuditList | AuditGet | BudgetInfo | BudgetList
            | EndUserInfo | EndUserList => Role::AdminViewer,
            _ => Role::ProxyAdmin,
        }
    }
    /// A second method the route answers (changes, for admins only).
    pub fn also(self) -> Option<Method> {
        match self {
            AdminRoute::FallbackItem => Some(Method::DELETE),
            AdminRoute::RouterSettings => Some(Method::PATCH),
            _ => None,
        }
    }

    /// (path, route) pairs for the route table.
    pub const ALL: &'static [(&'static str, AdminRoute)] = &[
        ("/key/generate", AdminRoute::KeyGenerate),
        ("/key/update", AdminRoute::KeyUpdate),
        ("/key/info", AdminRoute::KeyInfo),
        ("/key/delete", AdminRoute::KeyDelete),
        ("/key/block", AdminRoute::KeyBlock),
        ("/key/unblock", AdminRoute::KeyUnblock),
        ("/key/list", AdminRoute::KeyList),
        ("/v2/key/info", AdminRoute::KeyInfoV2),
        ("/key/aliases", AdminRoute::KeyAliases),
        (
            "/key/service-account/generate",
            AdminRoute::KeyServiceAccount,
        ),
        ("/key/regenerate", AdminRoute::KeyRegenerate),
        ("/key/{key}/regenerate", AdminRoute::KeyRegenerate),
        ("/key/{key}/reset_spend", AdminRoute::KeyResetSpend),
        ("/team/new", AdminRoute::TeamNew),
        ("/team/update", AdminRoute::TeamUpdate),
        ("/team/delete", AdminRoute::TeamDelete),
        ("/team/info", AdminRoute::TeamInfo),
        ("/team/list", AdminRoute::TeamList),
        ("/team/available", AdminRoute::TeamAvailable),
        ("/team/member_add", AdminRoute::TeamMemberAdd),
        ("/team/member_delete", AdminRoute::TeamMemberDelete),
        ("/team/member_update", AdminRoute::TeamMemberUpdate),
        ("/team/permissions_list", AdminRoute::TeamPermissionsList),
        (
            "/team/permissions_update",
            AdminRoute::TeamPermissionsUpdate,
        ),
        ("/team/block", AdminRoute::TeamBlock),
        ("/team/unblock", AdminRoute::TeamUnblock),
        ("/team/model/add", AdminRoute::TeamModelAdd),
        ("/team/model/remove", AdminRoute::TeamModelRemove),
        ("/user/new", AdminRoute::UserNew),
        ("/user/update", AdminRoute::UserUpdate),
        ("/user/info", AdminRoute::UserInfo),
        ("/user/delete", AdminRoute::UserDelete),
        ("/user/list", AdminRoute::UserList),
        ("/audit", AdminRoute::AuditList),
        ("/audit/{key}", AdminRoute::AuditGet),
        ("/organization/new", AdminRoute::OrgNew),
        ("/organization/update", AdminRoute::OrgUpdate),
        ("/organization/delete", AdminRoute::OrgDelete),
        ("/organization/info", AdminRoute::OrgInfo),
        ("/organization/list", AdminRoute::OrgList),
        ("/organization/member_add", AdminRoute::OrgMemberAdd),
        ("/organization/member_update", AdminRoute::OrgMemberUpdate),
        ("/organization/member_delete", AdminRoute::OrgMemberDelete),
        ("/model/new", AdminRoute::ModelNew),
        ("/fallback", AdminRoute::FallbackCreate),
        ("/fallback/{key}", AdminRoute::FallbackItem),
        ("/router/settings", AdminRoute::RouterSettings),
        ("/model/update", AdminRoute::ModelUpdate),
        ("/model/delete", AdminRoute::ModelDelete),
        ("/model/info", AdminRoute::ModelInfo),
        ("/v1/model/info", AdminRoute::ModelInfo),
        ("/model_group/info", AdminRoute::ModelGroupInfo),
        ("/budget/new", AdminRoute::BudgetNew),
        ("/budget/update", AdminRoute::BudgetUpdate),
        ("/budget/info", AdminRoute::BudgetInfo),
        ("/budget/list", AdminRoute::BudgetList),
        ("/budget/delete", AdminRoute::BudgetDelete),
        ("/end_user/new", AdminRoute::EndUserNew),
        ("/end_user/update", AdminRoute::EndUserUpdate),
        ("/end_user/delete", AdminRoute::EndUserDelete),
        ("/end_user/info", AdminRoute::EndUserInfo),
        ("/end_user/list", AdminRoute::EndUserList),
        ("/end_user/block", AdminRoute::EndUserBlock),
        ("/end_user/unblock", AdminRoute::EndUserUnblock),
        ("/customer/new", AdminRoute::EndUserNew),
        ("/customer/update", AdminRoute::EndUserUpdate),
        ("/customer/delete", AdminRoute::EndUserDelete),
        ("/customer/info", AdminRoute::EndUserInfo),
        ("/customer/list", AdminRoute::EndUserList),
        ("/customer/block", AdminRoute::EndUserBlock),
        ("/customer/unblock", AdminRoute::EndUserUnblock),
        ("/spend/logs", AdminRoute::SpendLogs),
        ("/spend/keys", AdminRoute::SpendKeys),
        ("/spend/users", AdminRoute::SpendUsers),
        ("/spend/teams", AdminRoute::SpendTeams),
        ("/spend/tags", AdminRoute::SpendTags),
        ("/spend/models", AdminRoute::SpendModels),
        ("/spend/end_users", AdminRoute::SpendEndUsers),
        ("/global/spend", AdminRoute::GlobalSpend),
        ("/global/spend/keys", AdminRoute::GlobalSpendKeys),
        ("/global/spend/models", AdminRoute::GlobalSpendModels),
        ("/global/spend/teams", AdminRoute::GlobalSpendTeams),
        ("/global/spend/tags", AdminRoute::GlobalSpendTags),
        ("/global/spend/provider", AdminRoute::GlobalSpendProvider),
        ("/global/spend/end_users", AdminRoute::GlobalSpendEndUsers),
        ("/global/spend/report", AdminRoute::GlobalSpendReport),
        ("/global/spend/reset", AdminRoute::GlobalSpendReset),
        ("/global/activity", AdminRoute::GlobalActivity),
        ("/global/activity/model", AdminRoute::GlobalActivityModel),
        (
            "/global/activity/cache_hits",
            AdminRoute::GlobalActivityCacheHits,
        ),
        ("/user/daily/activity", AdminRoute::UserDailyActivity),
        ("/team/daily/activity", AdminRoute::TeamDailyActivity),
        ("/organization/daily/activity", AdminRoute::OrgDailyActivity),
        ("/end_user/daily/activity", AdminRoute::EndUserDailyActivity),
        ("/customer/daily/activity", AdminRoute::EndUserDailyActivity),
        ("/provider/budgets", AdminRoute::ProviderBudgets),
        ("/cache/ping", AdminRoute::CachePing),
        ("/cache/delete", AdminRoute::CacheDelete),
        ("/cache/flushall", AdminRoute::CacheFlushAll),
        ("/cache/redis/info", AdminRoute::CacheRedisInfo),
    ];
}

/// Why a management call failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Forbidden(String),
    #[error(
        "Database not connected. Set general_settings.database_url or DATABASE_URL to use this route."
    )]
    NoDatabase,
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{message}")]
    NotFound {
        param: &'static str,
        message: String,
    },
    #[error(transparent)]
    Body(#[from] RequestError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The response cache is off or its Redis does not answer.
    #[error("{0}")]
    CacheUnavailable(String),
}

impl AdminError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        AdminError::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }
    pub fn status(&self) -> StatusCode {
        match self {
            AdminError::Auth(e) => e.status(),
            AdminError::Forbidden(_) => StatusCode::FORBIDDEN,
            AdminError::NoDatabase => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Invalid { .. } => StatusCode::BAD_REQUEST,
            AdminError::NotFound { .. } => StatusCode::NOT_FOUND,
            AdminError::Body(e) => e.status(),
            AdminError::Store(StoreError::Db(e)) if e.as_db_error().is_some() => {
                StatusCode::BAD_REQUEST
            }
            AdminError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::CacheUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
    pub fn error_type(&self) -> &'static str {
        match self {
            AdminError::Auth(e) => e.error_type(),
            AdminError::Forbidden(_) => "permission_error",
            AdminError::NoDatabase => "no_db_connection",
            AdminError::NotFound { .. } => "not_found_error",
            AdminError::CacheUnavailable(_) => "cache_ping_error",
            AdminError::Store(_) if self.status() == StatusCode::SERVICE_UNAVAILABLE => {
                "no_db_connection"
            }
            _ => "bad_request_error",
        }
    }
    pub fn param(&self) -> Option<&str> {
        match self {
            AdminError::Auth(e) => e.param(),
            AdminError::Invalid { field, .. } => Some(field),
            AdminError::NotFound { param, .. } => Some(param),
            _ => None,
        }
    }
}

/// What a handler gets.
pub struct Call<'a> {
    pub state: &'a AppState,
    pub store: &'a Arc<Store>,
    pub principal: Principal,
    /// sha256 hex of the caller's key ("" for the master key).
    pub caller_hash: String,
    pub headers: HeaderMap,
    pub query: Option<String>,
    /// The `{key}` path segment, where the route has one.
    pub path_key: Option<String>,
    pub body: Bytes,
}

impl Call<'_> {
    /// Who made the change, for audit rows: the `tianji-changed-by` (or LiteLLM's
    /// `litellm-changed-by`) header, else the caller.
    pub fn changed_by(&self) -> String {
        if let Some(v) = self.changed_by_header() {
            return v;
        }
        match &self.principal {
            Principal::Key(k) => k.key.user_id.clone().unwrap_or_else(|| k.key.token.clone()),
            _ => "default_user_id".to_string(),
        }
    }

    /// 403 unless the caller is a proxy admin or an admin of `team` (a team row).
    pub fn require_team_admin(&self, team: &Value) -> Result<(), AdminError> {
        if self.principal.is_admin() {
            return Ok(());
        }
        let rec: crate::auth::TeamRecord = serde_json::from_value(team.clone()).unwrap_or_default();
        match self.principal.user_id() {
            Some(u) if rec.is_admin(u) => Ok(()),
            _ => Err(AdminError::Forbidden(format!(
                "Only proxy admins or admins of team {} can do this. Your role={}",
                rec.team_id,
                self.principal.role().name()
            ))),
        }
    }

    /// 403 unless the caller may read `team`: admins and viewers, its members, its keys.
    pub fn require_team_reader(&self, team: &Value) -> Result<(), AdminError> {
        if self.principal.can_read_all() {
            return Ok(());
        }
        let rec: crate::auth::TeamRecord = serde_json::from_value(team.clone()).unwrap_or_default();
        let own_key = self
            .principal
            .key()
            .is_some_and(|k| k.key.team_id.as_deref() == Some(rec.team_id.as_str()));
        let member = self.principal.user_id().is_some_and(|u| rec.has_member(u));
        if own_key || member {
            return Ok(());
        }
        Err(AdminError::Forbidden(format!(
            "You are not a member of team {}. Your role={}",
            rec.team_id,
            self.principal.role().name()
        )))
    }

    /// The raw `tianji-changed-by` (or `litellm-changed-by`) header, for archive rows.
    pub fn changed_by_header(&self) -> Option<String> {
        ["tianji-changed-by", "litellm-changed-by"]
            .iter()
            .find_map(|h| self.headers.get(*h).and_then(|v| v.to_str().ok()))
            .map(str::to_string)
    }

    /// A named query's rows, each one JSON column.
    pub async fn rows(
        &self,
        q: crate::store::Query,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Value>, AdminError> {
        Ok(self
            .store
            .query(q, params)
            .await?
            .iter()
            .filter_map(|r| r.try_get::<_, Value>(0).ok())
            .collect())
    }

    /// A positive integer query parameter, `default` when absent.
    pub fn positive(&self, name: &str, default: i64) -> Result<i64, AdminError> {
        match self.param(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| AdminError::invalid(name, "must be a positive integer")),
        }
    }

    /// The body as a JSON object (`{}` when empty).
    pub fn object(&self) -> Result<Map<String, Value>, AdminError> {
        self.json()
    }

    /// The JSON body as `T`: unknown fields and wrong types are errors naming the field.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, AdminError> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &self.body
        };
        let mut de = serde_json::Deserializer::from_slice(body);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let field = if path == "." {
                first_unknown_field(&inner.to_string()).unwrap_or_default()
            } else {
                path
            };
            AdminError::invalid(&field, inner.to_string())
        })
    }

    /// A query-string parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then(|| percent_decode(v))
        })
    }
}

fn first_unknown_field(msg: &str) -> Option<String> {
    let start = msg.find("unknown field `")? + "unknown field `".len();
    let end = msg[start..].find('`')?;
    Some(msg[start..start + end].to_string())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// 200 with a JSON value.
pub fn ok(v: &Value) -> Response<Body> {
    json_response(
        StatusCode::OK,
        Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
    )
}

/// Authenticate, check the route's role, read the body, run the handler.
pub async fn handle(
    state: &AppState,
    route: AdminRoute,
    path_key: Option<String>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, AdminError> {
    let principal = state.auth.authenticate(req.headers()).await?;
    let allowed = match route.min_role() {
        Role::ProxyAdmin => principal.is_admin(),
        Role::AdminViewer => principal.can_read_all(),
        Role::TeamAdmin => principal.is_admin() || principal.user_id().is_some(),
        Role::KeyOwner => true,
    };
    if !allowed {
        return Err(AdminError::Forbidden(format!(
            "Only proxy admins can call {}. Your role={}",
            req.uri().path(),
            principal.role().name()
        )));
    }
    crate::auth::access::check_route(&principal, req.uri().path())?;
    if matches!(
        route,
        AdminRoute::FallbackCreate | AdminRoute::FallbackItem | AdminRoute::RouterSettings
    ) {
        // live router state, persisted when a database is configured
        return router::handle(state, route, &principal, path_key, req).await;
    }
    if matches!(
        route,
        AdminRoute::CachePing
            | AdminRoute::CacheDelete
            | AdminRoute::CacheFlushAll
            | AdminRoute::CacheRedisInfo
    ) {
        return cache::handle(state, route, req).await;
    }
    if route == AdminRoute::ProviderBudgets {
        // In-memory (and Redis) state: no database needed.
        return match &state.spend.providers {
            Some(pb) => Ok(ok(&pb.report())),
            None => Err(AdminError::invalid(
                "provider_budget_config",
                "No provider budget config found. Set router_settings.provider_budget_config.",
            )),
        };
    }
    let store = state.store.as_ref().ok_or(AdminError::NoDatabase)?;
    let caller_hash = match (&principal, crate::auth::presented_key(req.headers())) {
        (Principal::Key(k), _) => k.key.token.clone(),
        (_, Ok(Some(raw))) => crate::auth::token_hex(raw),
        _ => String::new(),
    };
    let (parts, body) = req.into_parts();
    let body = read_declared(&parts.headers, body, state.max_body_bytes).await?;
    let call = Call {
        state,
        store,
        principal,
        caller_hash,
        headers: parts.headers,
        query: parts.uri.query().map(str::to_string),
        path_key,
        body,
    };
    match route {
        AdminRoute::KeyGenerate => keys::generate(&call).await,
        AdminRoute::KeyUpdate => keys::update(&call).await,
        AdminRoute::KeyInfo => keys::info(&call).await,
        AdminRoute::KeyDelete => keys::delete(&call).await,
        AdminRoute::KeyBlock => keys::set_blocked(&call, true).await,
        AdminRoute::KeyUnblock => keys::set_blocked(&call, false).await,
        AdminRoute::KeyList => keys::list(&call).await,
        AdminRoute::KeyInfoV2 => keys::info_many(&call).await,
        AdminRoute::KeyAliases => keys::aliases(&call).await,
        AdminRoute::KeyServiceAccount => keys::generate_service_account(&call).await,
        AdminRoute::KeyRegenerate => keys::regenerate(&call).await,
        AdminRoute::KeyResetSpend => keys::reset_spend(&call).await,
        AdminRoute::TeamNew => teams::new(&call).await,
        AdminRoute::TeamUpdate => teams::update(&call).await,
        AdminRoute::TeamDelete => teams::delete(&call).await,
        AdminRoute::TeamInfo => teams::info(&call).await,
        AdminRoute::TeamList => teams::list(&call).await,
        AdminRoute::TeamAvailable => teams::available(&call).await,
        AdminRoute::TeamMemberAdd => teams::member_add(&call).await,
        AdminRoute::TeamMemberDelete => teams::member_delete(&call).await,
        AdminRoute::TeamMemberUpdate => teams::member_update(&call).await,
        AdminRoute::TeamPermissionsList => teams::permissions_list(&call).await,
        AdminRoute::TeamPermissionsUpdate => teams::permissions_update(&call).await,
        AdminRoute::TeamBlock => teams::set_blocked(&call, true).await,
        AdminRoute::TeamUnblock => teams::set_blocked(&call, false).await,
        AdminRoute::TeamModelAdd => teams::models(&call, true).await,
        AdminRoute::TeamModelRemove => teams::models(&call, false).await,
        AdminRoute::UserNew => users::new(&call).await,
        AdminRoute::UserUpdate => users::update(&call).await,
        AdminRoute::UserInfo => users::info(&call).await,
        AdminRoute::UserDelete => users::delete(&call).await,
        AdminRoute::UserList => users::list(&call).await,
        AdminRoute::AuditList => audit::list(&call).await,
        AdminRoute::AuditGet => audit::get(&call).await,
        AdminRoute::OrgNew => organizations::new(&call).await,
        AdminRoute::OrgUpdate => organizations::update(&call).await,
        AdminRoute::OrgDelete => organizations::delete(&call).await,
        AdminRoute::OrgInfo => organizations::info(&call).await,
        AdminRoute::OrgList => organizations::list(&call).await,
        AdminRoute::OrgMemberAdd => {
            organizations::members_change(&call, organizations::MemberOp::Add).await
        }
        AdminRoute::OrgMemberUpdate => {
            organizations::members_change(&call, organizations::MemberOp::Update).await
        }
        AdminRoute::OrgMemberDelete => {
            organizations::members_change(&call, organizations::MemberOp::Delete).await
        }
        AdminRoute::ModelNew => models::new(&call).await,
        AdminRoute::ModelUpdate => models::update(&call).await,
        AdminRoute::ModelDelete => models::delete(&call).await,
        AdminRoute::ModelInfo => models::info(&call).await,
        AdminRoute::ModelGroupInfo => models::group_info(&call).await,
        AdminRoute::BudgetNew => budgets::new(&call).await,
        AdminRoute::BudgetUpdate => budgets::update(&call).await,
        AdminRoute::BudgetInfo => budgets::info(&call).await,
        AdminRoute::BudgetList => budgets::list(&call).await,
        AdminRoute::BudgetDelete => budgets::delete(&call).await,
        AdminRoute::EndUserNew => end_users::new(&call).await,
        AdminRoute::EndUserUpdate => end_users::update(&call).await,
        AdminRoute::EndUserDelete => end_users::delete(&call).await,
        AdminRoute::EndUserInfo => end_users::info(&call).await,
        AdminRoute::EndUserList => end_users::list(&call).await,
        AdminRoute::EndUserBlock => end_users::set_blocked(&call, true).await,
        AdminRoute::EndUserUnblock => end_users::set_blocked(&call, false).await,
        AdminRoute::SpendLogs => spend::spend_logs(&call).await,
        AdminRoute::SpendKeys => spend::keys(&call).await,
        AdminRoute::SpendUsers => spend::users(&call).await,
        AdminRoute::SpendTeams => spend::teams(&call).await,
        AdminRoute::SpendTags => spend::tags(&call).await,
        AdminRoute::SpendModels => spend::models(&call).await,
        AdminRoute::SpendEndUsers => spend::end_users(&call).await,
        AdminRoute::GlobalSpend => spend::global_spend(&call).await,
        AdminRoute::GlobalSpendKeys => spend::global_keys(&call).await,
        AdminRoute::GlobalSpendModels => spend::global_models(&call).await,
        AdminRoute::GlobalSpendTeams => spend::global_teams(&call).await,
        AdminRoute::GlobalSpendTags => spend::global_tags(&call).await,
        AdminRoute::GlobalSpendProvider => spend::provider(&call).await,
        AdminRoute::GlobalSpendEndUsers => spend::global_end_users(&call).await,
        AdminRoute::GlobalSpendReport => spend::report(&call).await,
        AdminRoute::GlobalSpendReset => spend::reset(&call).await,
        AdminRoute::GlobalActivity => spend::activity(&call).await,
        AdminRoute::GlobalActivityModel => spend::activity_model(&call).await,
        AdminRoute::GlobalActivityCacheHits => spend::activity_cache_hits(&call).await,
        AdminRoute::UserDailyActivity => spend::daily_activity(&call, spend::Entity::User).await,
        AdminRoute::TeamDailyActivity => spend::daily_activity(&call, spend::Entity::Team).await,
        AdminRoute::OrgDailyActivity => {
            spend::daily_activity(&call, spend::Entity::Organization).await
        }
        AdminRoute::EndUserDailyActivity => {
            spend::daily_activity(&call, spend::Entity::EndUser).await
        }
        // Answered above, before the database is needed.
        AdminRoute::ProviderBudgets
        | AdminRoute::FallbackCreate
        | AdminRoute::FallbackItem
        | AdminRoute::RouterSettings
        | AdminRoute::CachePing
        | AdminRoute::CacheDelete
        | AdminRoute::CacheFlushAll
        | AdminRoute::CacheRedisInfo => Err(AdminError::NoDatabase),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_values() {
        assert_eq!(percent_decode("sk-a%2Bb+c"), "sk-a+b c");
        assert_eq!(percent_decode("%zz%"), "%zz%");
    }
}
