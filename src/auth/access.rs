//! Authorization of an authenticated caller for one request: routes, model access and budgets of
//! the key, its team, the caller's team membership, its user, its organisation and the end user.
//! Everything comes from the governance caches, so a warm request makes no database query.

use std::sync::Arc;

use super::budget::{Account, Line};
use crate::router::wildcard;
use crate::store::StoreError;

use super::records::{EndUserRecord, Limits};
use super::{AuthError, Directory, KeyCaller, Principal};

/// Model names in a `models` list that grant every model (`all-team-models` on a key: what
/// its team may use, which the team's own list checks).
const ALL_MODELS: &[&str] = &["*", "all-proxy-models", "all-team-models"];

/// `allowed_routes` entries that name a group of routes.
const ROUTE_GROUPS: &[(&str, &[&str])] = &[
    (
        "llm_api_routes",
        &[
            "/chat/completions",
            "/v1/chat/completions",
            "/completions",
            "/v1/completions",
            "/embeddings",
            "/v1/embeddings",
            "/engines/*",
            "/v1/engines/*",
            "/openai/deployments/*",
            "/models",
            "/v1/models",
            "/v1/models/*",
            "/models/*",
        ],
    ),
    (
        "openai_routes",
        &[
            "/v1/*",
            "/chat/completions",
            "/completions",
            "/embeddings",
            "/engines/*",
            "/openai/deployments/*",
            "/models",
            "/models/*",
            "/responses",
            "/responses/*",
            "/images/*",
            "/audio/*",
            "/moderations",
            "/rerank",
            "/files",
            "/files/*",
            "/batches",
            "/batches/*",
        ],
    ),
    ("info_routes", &["/key/info", "/user/info", "/team/info"]),
    ("mcp_routes", &["/mcp", "/mcp/*"]),
    (
        "management_routes",
        &[
            "/key/*",
            "/team/*",
            "/user/*",
            "/organization/*",
            "/budget/*",
            "/model/*",
            "/customer/*",
            "/end_user/*",
        ],
    ),
    ("spend_tracking_routes", &["/spend/*"]),
    ("global_spend_tracking_routes", &["/global/*"]),
];

/// Model access groups (`model_info.access_groups`), consulted when a `models` list names one.
pub trait AccessGroups: Sync {
    fn grants(&self, group: &str, model: &str) -> bool;
}

impl AccessGroups for crate::router::ModelTable {
    fn grants(&self, group: &str, model: &str) -> bool {
        self.access_group_has(group, model)
    }
}

/// No access groups.
pub struct NoGroups;

impl AccessGroups for NoGroups {
    fn grants(&self, _: &str, _: &str) -> bool {
        false
    }
}

/// Whether `allowed` (a `models` list; empty = all) permits `model`: by name, wildcard, or
/// access group.
pub fn model_allowed(allowed: &[String], model: &str, groups: &dyn AccessGroups) -> bool {
    allowed.is_empty()
        || allowed.iter().any(|m| {
            ALL_MODELS.contains(&m.as_str())
                || m == model
                || (m.contains('*') && wildcard::captures(m, model).is_some())
                || groups.grants(m, model)
        })
}

fn pattern_matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

/// Whether a key's `allowed_routes` (empty = all) permits `path`.
pub fn route_allowed(allowed: &[String], path: &str) -> bool {
    allowed.is_empty()
        || allowed.iter().any(|a| {
            pattern_matches(a, path)
                || ROUTE_GROUPS
                    .iter()
                    .find(|(g, _)| g == a)
                    .is_some_and(|(_, ps)| ps.iter().any(|p| pattern_matches(p, path)))
        })
}

/// 403 unless the caller's key may call `path`.
pub fn check_route(principal: &Principal, path: &str) -> Result<(), AuthError> {
    let Some(k) = principal.key() else {
        return Ok(());
    };
    match &k.key.allowed_routes {
        Some(routes) if !route_allowed(routes, path) => Err(AuthError::RouteDenied {
            route: path.to_string(),
            allowed: routes.clone(),
        }),
        _ => Ok(()),
    }
}

/// 403 unless every cache control the request sets (the keys of its `cache` object, and the
/// controls given as headers) is in the key's `allowed_cache_controls` (an empty or missing
/// list allows any).
pub fn check_cache_controls<'a>(
    principal: &Principal,
    controls: impl IntoIterator<Item = &'a str>,
) -> Result<(), AuthError> {
    let Some(allowed) = principal
        .key()
        .and_then(|k| k.key.allowed_cache_controls.as_ref())
        .filter(|a| !a.is_empty())
    else {
        return Ok(());
    };
    match controls
        .into_iter()
        .find(|c| !allowed.iter().any(|a| a == c))
    {
        Some(c) => Err(AuthError::CacheControlDenied(c.to_string())),
        None => Ok(()),
    }
}

/// The request being authorized.
pub struct Ask<'a> {
    /// The model the client asked for.
    pub model: &'a str,
    /// The end user (`user` in the body), if any.
    pub end_user: Option<&'a str>,
    /// Access groups of the model table.
    pub groups: &'a dyn AccessGroups,
}

/// The `budget_exceeded` error for a refused [`Line`] (LiteLLM's messages).
pub fn budget_error(status: u16, principal: &Principal, line: &Line, current: f64) -> AuthError {
    let who = match &line.account {
        Account::Key(_) => {
            let key = principal.key().map(|c| &c.key);
            let alias = key
                .and_then(|k| k.key_alias.clone())
                .unwrap_or_else(|| "key".to_string());
            let name = key
                .and_then(|k| k.key_name.as_ref())
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            format!("Key={alias}{name}")
        }
        Account::Team(t) => format!("Team={t}"),
        Account::Member { team_id, user_id } => format!("User={user_id} in Team={team_id}"),
        Account::User(u) => format!("User={u}"),
        Account::Org(o) => format!("Organization={o}"),
        Account::EndUser(e) => format!("End User={e}"),
    };
    AuthError::BudgetExceeded {
        message: format!(
            "Budget has been exceeded! {who} Current cost: {current}, Max budget: {}",
            line.max_budget
        ),
        status,
    }
}

fn denied(model: &str, kind: &'static str) -> AuthError {
    AuthError::ModelDenied {
        model: model.to_string(),
        kind,
    }
}

fn unavailable(e: Arc<StoreError>) -> AuthError {
    AuthError::Unavailable(e.to_string())
}

/// What an authorized request is subject to.
#[derive(Debug, Default)]
pub struct Granted {
    /// Budgets, for the spend ledger to admit against.
    pub lines: Vec<Line>,
    /// The end user's record, when the request names a known end user.
    pub end_user: Option<Arc<EndUserRecord>>,
}

/// Check the caller may send this request (blocked entities, model access) and return the
/// budgets it is subject to. `dir` is `None` without a database (then only the master key gets
/// this far). The end user's block, models and budget apply to every caller, the master key
/// included (LiteLLM's behaviour).
pub async fn authorize(
    dir: Option<&Directory>,
    principal: &Principal,
    ask: Ask<'_>,
) -> Result<Granted, AuthError> {
    let Some(dir) = dir else {
        return Ok(Granted::default());
    };
    let mut lines = Vec::new();
    if let Principal::Key(caller) = principal {
        check_caller(caller, &ask, &mut lines)?;
    }
    let end_user = match ask.end_user {
        Some(id) => dir.end_users.get(id).await.map_err(unavailable)?,
        None => None,
    };
    if let (Some(id), Some(eu)) = (ask.end_user, &end_user) {
        if eu.blocked {
            return Err(AuthError::EndUserBlocked(id.to_string()));
        }
        allow_model(&eu.models, &ask, "customer_model_access_denied")?;
        limits_line(&mut lines, Account::EndUser(id.to_string()), &eu.limits);
    }
    Ok(Granted { lines, end_user })
}

/// The `models` lists a key's calls are checked against, each with its refusal's type: the
/// key's, its team's (a personal key: its user's), its organisation's.
fn model_lists(c: &KeyCaller) -> [(Option<&[String]>, &'static str); 3] {
    let (owner, kind) = match (&c.team, &c.user) {
        (Some(t), _) => (t.models.as_deref(), "team_model_access_denied"),
        (None, Some(u)) => (u.models.as_deref(), "user_model_access_denied"),
        (None, None) => (None, "user_model_access_denied"),
    };
    [
        (c.key.models.as_deref(), "key_model_access_denied"),
        (owner, kind),
        (
            c.org.as_ref().and_then(|o| o.models.as_deref()),
            "org_model_access_denied",
        ),
    ]
}

/// Whether the caller may call `model` (by the `models` lists of its key, team or user and
/// organisation; end users aside): what the listings show.
pub fn may_call(principal: &Principal, model: &str, groups: &dyn AccessGroups) -> bool {
    principal.key().is_none_or(|c| {
        model_lists(c)
            .iter()
            .all(|(m, _)| m.is_none_or(|m| model_allowed(m, model, groups)))
    })
}

/// The `*` patterns (`anthropic/*`) in the caller's `models` lists.
pub fn wildcard_grants(principal: &Principal) -> Vec<&str> {
    let Some(c) = principal.key() else {
        return Vec::new();
    };
    let mut v: Vec<&str> = (model_lists(c).into_iter())
        .flat_map(|(m, _)| m.unwrap_or_default())
        .map(String::as_str)
        .filter(|m| m.contains('*') && !ALL_MODELS.contains(m))
        .collect();
    v.dedup();
    v
}

/// The key's, team's (or personal key's user's) and organisation's blocks, models and budgets.
fn check_caller(caller: &KeyCaller, ask: &Ask<'_>, lines: &mut Vec<Line>) -> Result<(), AuthError> {
    let key = &caller.key;
    if let Some(team) = caller.team.as_ref().filter(|t| t.blocked) {
        return Err(AuthError::TeamBlocked(team.team_id.clone()));
    }
    for (models, kind) in model_lists(caller) {
        match models {
            Some(m) if !model_allowed(m, ask.model, ask.groups) => {
                return Err(denied(ask.model, kind));
            }
            _ => {}
        }
    }
    limits_line(lines, Account::Key(key.token.clone()), &key.limits);
    if let Some(team) = &caller.team {
        limits_line(lines, Account::Team(team.team_id.clone()), &team.limits);
        if let (Some(user_id), Some(m)) = (key.user_id.as_deref(), &caller.member) {
            let account = Account::Member {
                team_id: team.team_id.clone(),
                user_id: user_id.to_string(),
            };
            limits_line(lines, account, &m.limits);
        }
    } else if let Some(user) = &caller.user {
        limits_line(lines, Account::User(user.user_id.clone()), &user.limits);
    }
    if let Some(org) = &caller.org {
        limits_line(
            lines,
            Account::Org(org.organization_id.clone()),
            &org.limits,
        );
    }
    Ok(())
}

/// The regions a request's deployment must be in (LiteLLM's `allowed_model_region`): its end
/// user's, and its key's (`metadata.allowed_model_region`); empty: anywhere.
pub fn allowed_regions(principal: &Principal, end_user: Option<&EndUserRecord>) -> Vec<String> {
    let key = principal
        .key()
        .and_then(|c| c.key.metadata.get("allowed_model_region"))
        .and_then(serde_json::Value::as_str);
    let end_user = end_user.and_then(|e| e.allowed_model_region.as_deref());
    [key, end_user]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// 403 (`kind`) when `models` is set and does not cover the asked model.
fn allow_model(
    models: &Option<Vec<String>>,
    ask: &Ask<'_>,
    kind: &'static str,
) -> Result<(), AuthError> {
    match models {
        Some(m) if !model_allowed(m, ask.model, ask.groups) => Err(denied(ask.model, kind)),
        _ => Ok(()),
    }
}

/// The budget line of a record's [`Limits`] (none without a budget).
fn limits_line(lines: &mut Vec<Line>, account: Account, limits: &Limits) {
    if let Some(max) = limits.max_budget.filter(|m| *m >= 0.0) {
        lines.push(Line {
            account,
            max_budget: max,
            recorded: limits.spend,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    struct Beta;
    impl AccessGroups for Beta {
        fn grants(&self, g: &str, m: &str) -> bool {
            g == "beta" && m == "b"
        }
    }

    #[test]
    fn model_lists() {
        let n = &NoGroups;
        assert!(model_allowed(&[], "x", n));
        assert!(model_allowed(&l(&["a", "b"]), "b", n));
        assert!(!model_allowed(&l(&["a"]), "b", n));
        assert!(model_allowed(&l(&["openai/*"]), "openai/gpt-4o", n));
        assert!(!model_allowed(&l(&["openai/*"]), "groq/x", n));
        assert!(model_allowed(&l(&["all-proxy-models"]), "anything", n));
        assert!(model_allowed(&l(&["all-team-models"]), "anything", n));
        assert!(model_allowed(&l(&["beta"]), "b", &Beta));
        assert!(!model_allowed(&l(&["beta"]), "c", &Beta));
    }

    #[test]
    fn route_lists() {
        assert!(route_allowed(&[], "/key/generate"));
        assert!(route_allowed(
            &l(&["/chat/completions"]),
            "/chat/completions"
        ));
        assert!(!route_allowed(&l(&["/chat/completions"]), "/v1/embeddings"));
        assert!(route_allowed(&l(&["llm_api_routes"]), "/v1/embeddings"));
        assert!(!route_allowed(&l(&["llm_api_routes"]), "/key/generate"));
        assert!(route_allowed(&l(&["/key/*"]), "/key/info"));
        assert!(route_allowed(&l(&["info_routes"]), "/key/info"));
        assert!(route_allowed(&l(&["mcp_routes"]), "/mcp"));
        assert!(route_allowed(&l(&["mcp_routes"]), "/mcp/wiki"));
        assert!(!route_allowed(&l(&["mcp_routes"]), "/v1/chat/completions"));
    }
}
