//! The management API: plain async handlers over named store queries, one file per area.
//! [`routes::ROUTES`] declares every route once (paths, methods, least [`Role`], description,
//! handler); [`handle`] checks the role before the handler, and without a database every route
//! but the live ones (router, cache, provider budgets) answers 503.

mod agent_model;
mod agent_remote;
mod agent_rpc;
mod agent_usage;
pub mod agents;
mod alerting;
mod audit;
mod budgets;
mod cache;
mod config_file;
mod cron_jobs;
mod crud;
mod end_users;
mod fields;
mod invitations;
mod keys;
mod listings;
mod llm_utils;
mod mcp_servers;
mod model_metrics;
mod models;
mod organizations;
pub mod plugins;
mod prompts;
pub mod router;
pub mod routes;
mod spend;
mod teams;
mod users;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::auth::{AuthError, Principal};
use crate::body::Body;
use crate::error::json_response;
use crate::pipeline::parse::{RequestError, read_declared};
use crate::request_body::RequestBody;
use crate::state::AppState;
use crate::store::{Store, StoreError};
pub use routes::{AdminRoute, Role};
use routes::{Handler, Live};

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

crate::error::feature_error!(
    AdminError,
    "admin",
    fn error_type(&self) -> &'static str {
        AdminError::error_type(self)
    },
    fn param(&self) -> Option<&str> {
        AdminError::param(self)
    }
);

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
    pub method: http::Method,
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
        param_of(self.query.as_deref(), name)
    }
}

impl Live<'_> {
    /// A query-string parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        param_of(self.req.uri().query(), name)
    }
}

/// `name`'s value in the query string `q`, percent-decoded.
fn param_of(q: Option<&str>, name: &str) -> Option<String> {
    q?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| percent_decode(v))
    })
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

/// Authenticate, check the route's role, then run its handler (for database routes: 503
/// without a database, else the body read into a [`Call`]).
pub async fn handle(
    state: &AppState,
    route: &'static AdminRoute,
    path_key: Option<String>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, AdminError> {
    let principal = state.auth.authenticate(req.headers()).await?;
    if !route.role.admits(&principal) {
        return Err(AdminError::Forbidden(format!(
            "Only proxy admins can call {}. Your role={}",
            req.uri().path(),
            principal.role().name()
        )));
    }
    crate::auth::access::check_route(&principal, req.uri().path())?;
    let (serve, report) = match route.handler {
        Handler::Live(serve) => {
            let live = Live {
                state,
                principal,
                path_key,
                req,
            };
            return serve(live).await;
        }
        Handler::Store(serve) => (serve, false),
        Handler::Report(serve) => (serve, true),
    };
    let live = Live {
        state,
        principal,
        path_key,
        req,
    };
    let mut call = live.into_call().await?;
    if report && let Some(replica) = &state.reports {
        call.store = replica;
    }
    serve(&call).await
}

impl<'a> Live<'a> {
    /// The database call this request becomes (503 without a database), its body read: for
    /// live routes whose writes need the database.
    pub async fn into_call(self) -> Result<Call<'a>, AdminError> {
        let Live {
            state,
            principal,
            path_key,
            req,
        } = self;
        let store = state.store.as_ref().ok_or(AdminError::NoDatabase)?;
        let caller_hash = match (&principal, crate::auth::presented_key(req.headers())) {
            (Principal::Key(k), _) => k.key.token.clone(),
            (_, Ok(Some(raw))) => crate::auth::token_hex(raw),
            _ => String::new(),
        };
        let (parts, body) = req.into_parts();
        let body = read_declared(&parts.headers, body, state.max_body_bytes).await?;
        Ok(Call {
            state,
            store,
            principal,
            caller_hash,
            headers: parts.headers,
            query: parts.uri.query().map(str::to_string),
            path_key,
            method: parts.method,
            body,
        })
    }
}

/// `GET /provider/budgets`: in-memory (and Redis) state, no database needed.
async fn provider_budgets(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    match &live.state.spend.providers {
        Some(pb) => Ok(ok(&pb.report())),
        None => Err(AdminError::invalid(
            "provider_budget_config",
            "No provider budget config found. Set router_settings.provider_budget_config.",
        )),
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
