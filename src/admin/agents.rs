//! `/v1/agents` (A2A agents: list, create, get, replace, change, delete) and the agent cards at
//! `/a2a/{agent_id}/.well-known/agent-card.json` (and `agent.json`). Reads come from the live
//! registry (`crate::agents`); writes go through a [`Tx`] (audit rows, then every instance
//! reloads its registry). Only proxy admins change agents or see their credentials
//! (`litellm_params.api_key`, `static_headers`); everyone else sees the agents their key and
//! team may use ([`crate::agents::access`]).

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::audit::{AGENTS_TABLE, Change};
use super::crud::{Tx, str_of};
use super::models::masked;
use super::routes::Live;
use super::{AdminError, Call, ok};
use crate::agents::access::{self, Allowed};
use crate::agents::card::{self, Version};
use crate::agents::{Agent, address};
use crate::auth::{Changed, Principal};
use crate::body::Body;
use crate::error::json_response;
use crate::secrets::at_rest;
use crate::store::Query;

/// What non-admins see instead of an agent's API key (LiteLLM's spelling).
const REDACTED: &str = "REDACTED_BY_LITELM";

/// A create, replace or change body (LiteLLM's `AgentConfig`; `tianji_params` is accepted for
/// `litellm_params`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentBody {
    agent_name: Option<String>,
    agent_card_params: Option<Map<String, Value>>,
    #[serde(alias = "tianji_params")]
    litellm_params: Option<Map<String, Value>>,
    object_permission: Option<Map<String, Value>>,
    /// The headers sent to the agent with every call.
    static_headers: Option<Map<String, Value>>,
    /// Names of the caller's headers passed on to the agent.
    extra_headers: Option<Vec<String>>,
    tpm_limit: Option<i64>,
    rpm_limit: Option<i64>,
    /// Limits per session (`litellm_session_id` / `metadata.session_id`).
    session_tpm_limit: Option<i64>,
    session_rpm_limit: Option<i64>,
    kill_switch: Option<Value>,
    /// The groups the agent belongs to (see [`crate::agents::access`]).
    agent_access_groups: Option<Vec<String>>,
    access_group_ids: Option<Vec<String>>,
    identity: Option<Value>,
    enabled: Option<bool>,
    /// `autonomous` (default).
    execution_mode: Option<String>,
}

/// 403 with LiteLLM's body: `{"detail": "Agent '{id}' is not allowed for your key/team. ..."}`.
pub(super) fn not_allowed(id: &str) -> Response<Body> {
    let body = json!({
        "detail": format!("Agent '{id}' is not allowed for your key/team. Contact proxy admin for access.")
    });
    json_response(
        StatusCode::FORBIDDEN,
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
    )
}

fn agent_not_found(id: &str) -> AdminError {
    AdminError::NotFound {
        param: "agent_id",
        message: format!("Agent {id} not found"),
    }
}

fn require_admin(call: &Call<'_>) -> Result<(), AdminError> {
    call.require_admin("Only proxy admins can create, change or delete agents")
}

pub(crate) fn allowed(state: &crate::state::AppState, principal: &Principal) -> Allowed {
    let default_deny = state.config().general_settings.agent_access_default_deny;
    access::allowed(principal, &state.agents.load(), default_deny)
}

/// An agent as answered (LiteLLM's `AgentResponse`): credentials shown to proxy admins only.
fn shown(agent: &Agent, admin: bool) -> Value {
    let r = &agent.row;
    let mut params = r.get("tianji_params").cloned().unwrap_or(Value::Null);
    let mut headers = r.get("static_headers").cloned().unwrap_or(Value::Null);
    if !admin {
        if let Some(p) = params.as_object_mut()
            && p.get("api_key").is_some_and(|k| !k.is_null())
        {
            p.insert("api_key".into(), json!(REDACTED));
        }
        headers = Value::Null;
    }
    let col = |name: &str| r.get(name).cloned().unwrap_or(Value::Null);
    json!({
        "agent_id": agent.id,
        "agent_name": agent.name,
        "litellm_params": params,
        "agent_card_params": col("agent_card_params"),
        "object_permission": col("object_permission"),
        "spend": col("spend"),
        "tpm_limit": col("tpm_limit"),
        "rpm_limit": col("rpm_limit"),
        "session_tpm_limit": col("session_tpm_limit"),
        "session_rpm_limit": col("session_rpm_limit"),
        "static_headers": headers,
        "extra_headers": col("extra_headers"),
        "agent_access_groups": col("agent_access_groups"),
        "access_group_ids": col("access_group_ids"),
        "kill_switch": col("kill_switch"),
        "keys": [],
        "search_score": null,
        "identity": col("identity"),
        "identity_managed": col("identity_managed"),
        "enabled": col("enabled"),
        "execution_mode": col("execution_mode"),
        "jwt_auth_configured": false,
        "created_at": col("created_at"),
        "updated_at": col("updated_at"),
        "created_by": col("created_by"),
        "updated_by": col("updated_by"),
    })
}

/// A stored row as the audit log keeps it: credentials masked.
fn audited(call: &Call<'_>, row: &Value) -> Value {
    let mut r = row.clone();
    if let Some(p) = row.get("tianji_params").filter(|p| !p.is_null()) {
        r["tianji_params"] = masked(&at_rest::open_params_lossy(
            call.state.at_rest.as_deref(),
            p,
        ));
    }
    if let Some(h) = row.get("static_headers").filter(|h| h.is_object()) {
        r["static_headers"] = masked(&json!({ "headers": h }))["headers"].take();
    }
    r
}

/// `GET /v1/agents` and `POST /v1/agents`.
pub async fn collection(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    if call.method == Method::POST {
        return create(call).await;
    }
    let can = allowed(call.state, &call.principal);
    let admin = call.principal.is_admin();
    let query = call.given("query").map(|q| q.to_lowercase());
    let top_k = match call.given("top_k") {
        None => None,
        Some(_) => Some(call.positive("top_k", 1)? as usize),
    };
    let agents = call.state.agents.load();
    let matches = |a: &Agent| {
        query.as_deref().is_none_or(|q| {
            a.name.to_lowercase().contains(q)
                || a.card()
                    .and_then(|c| c.get("description"))
                    .and_then(Value::as_str)
                    .is_some_and(|d| d.to_lowercase().contains(q))
        })
    };
    let list: Vec<Value> = agents
        .iter()
        .filter(|a| can.permits(&a.id) && matches(a))
        .take(top_k.unwrap_or(usize::MAX))
        .map(|a| shown(a, admin))
        .collect();
    Ok(ok(&Value::Array(list)))
}

/// `GET|PUT|PATCH|DELETE /v1/agents/{agent_id}`.
pub async fn item(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let id = call.path_key.clone().unwrap_or_default();
    match call.method {
        Method::PUT => update(call, &id, true).await,
        Method::PATCH => update(call, &id, false).await,
        Method::DELETE => delete(call, &id).await,
        _ => {
            let agents = call.state.agents.load();
            let agent = agents.get(&id).ok_or_else(|| agent_not_found(&id))?;
            if !allowed(call.state, &call.principal).permits(&id) {
                return Ok(not_allowed(&id));
            }
            Ok(ok(&shown(agent, call.principal.is_admin())))
        }
    }
}

/// Check a body's values; `full`: the name and card are required (create, replace).
fn check(call: &Call<'_>, b: &AgentBody, full: bool) -> Result<(), AdminError> {
    if full || b.agent_name.is_some() {
        match b.agent_name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => {}
            _ => {
                return Err(AdminError::invalid(
                    "agent_name",
                    "`agent_name` is required",
                ));
            }
        }
    }
    if full && b.agent_card_params.is_none() {
        return Err(AdminError::invalid(
            "agent_card_params",
            "`agent_card_params` (the agent card) is required",
        ));
    }
    for (name, v) in [
        ("tpm_limit", b.tpm_limit),
        ("rpm_limit", b.rpm_limit),
        ("session_tpm_limit", b.session_tpm_limit),
        ("session_rpm_limit", b.session_rpm_limit),
    ] {
        if v.is_some_and(|n| n < 0) {
            return Err(AdminError::invalid(name, "must not be negative"));
        }
    }
    if let Some(h) = &b.static_headers
        && let Some((k, _)) = h.iter().find(|(_, v)| !v.is_string())
    {
        return Err(AdminError::invalid(
            &format!("static_headers.{k}"),
            "header values must be strings",
        ));
    }
    let urls = [
        (
            "agent_card_params.url",
            b.agent_card_params.as_ref().and_then(|c| c.get("url")),
        ),
        (
            "litellm_params.api_base",
            b.litellm_params.as_ref().and_then(|p| p.get("api_base")),
        ),
    ];
    for (field, url) in urls {
        let Some(url) = url.filter(|u| !u.is_null()) else {
            continue;
        };
        let Some(url) = url.as_str() else {
            return Err(AdminError::invalid(field, "must be a URL"));
        };
        if !call
            .state
            .config()
            .general_settings
            .agent_allow_private_urls
            && let Some(why) = address::refused(url)
        {
            return Err(AdminError::invalid(field, why));
        }
    }
    Ok(())
}

/// The columns a body sets (`object_permission` aside), credentials sealed.
fn columns(call: &Call<'_>, b: AgentBody) -> Result<Map<String, Value>, AdminError> {
    let mut row = Map::new();
    let mut set = |name: &str, v: Option<Value>| {
        if let Some(v) = v {
            row.insert(name.to_string(), v);
        }
    };
    set("agent_name", b.agent_name.map(|n| json!(n.trim())));
    set("agent_card_params", b.agent_card_params.map(Value::Object));
    set("static_headers", b.static_headers.map(Value::Object));
    set("extra_headers", b.extra_headers.map(|v| json!(v)));
    set(
        "agent_access_groups",
        b.agent_access_groups.map(|v| json!(v)),
    );
    set("access_group_ids", b.access_group_ids.map(|v| json!(v)));
    set("kill_switch", b.kill_switch);
    set("identity", b.identity);
    set("enabled", b.enabled.map(Value::Bool));
    set("execution_mode", b.execution_mode.map(Value::String));
    set("tpm_limit", b.tpm_limit.map(|n| json!(n)));
    set("rpm_limit", b.rpm_limit.map(|n| json!(n)));
    set("session_tpm_limit", b.session_tpm_limit.map(|n| json!(n)));
    set("session_rpm_limit", b.session_rpm_limit.map(|n| json!(n)));
    if let Some(p) = b.litellm_params {
        let sealed = at_rest::seal_params(call.state.at_rest.as_deref(), &Value::Object(p))
            .map_err(|e| AdminError::invalid("litellm_params", e.to_string()))?;
        row.insert("tianji_params".into(), sealed);
    }
    Ok(row)
}

/// The registry's view of a row just written (credentials opened), for the answer.
fn fresh(call: &Call<'_>, row: &Value) -> Option<Agent> {
    let id = str_of(row, "agent_id")?;
    call.state.agents.load().get(id).map(|a| (**a).clone())
}

/// `POST /v1/agents`
async fn create(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    require_admin(call)?;
    let mut body: AgentBody = call.json()?;
    check(call, &body, true)?;
    let permission = body.object_permission.take().map(Value::Object);
    let name = body
        .agent_name
        .clone()
        .unwrap_or_default()
        .trim()
        .to_string();
    let mut row = columns(call, body)?;
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    if tx.any(Query::GetAgentByName, &[&name]).await? {
        return Err(AdminError::invalid(
            "agent_name",
            format!("Agent with name '{name}' already exists"),
        ));
    }
    tx.object_permission(permission.as_ref(), &mut row).await?;
    let by = call.changed_by();
    row.insert("created_by".into(), json!(by));
    row.insert("updated_by".into(), json!(by));
    let stored = tx.one(Query::InsertAgent, &[&Value::Object(row)]).await?;
    let id = str_of(&stored, "agent_id").unwrap_or_default().to_string();
    let audit = audited(call, &stored);
    tx.commit(
        vec![Change::created(AGENTS_TABLE, &id, &audit)],
        &[Changed::Agents],
    )
    .await?;
    answer(call, &stored)
}

fn answer(call: &Call<'_>, stored: &Value) -> Result<Response<Body>, AdminError> {
    let id = str_of(stored, "agent_id").unwrap_or_default();
    let agent = fresh(call, stored).ok_or_else(|| agent_not_found(id))?;
    Ok(ok(&shown(&agent, true)))
}

/// `PUT` (`replace`: what the body leaves out is reset) and `PATCH` (merge).
async fn update(call: &Call<'_>, id: &str, replace: bool) -> Result<Response<Body>, AdminError> {
    require_admin(call)?;
    let mut body: AgentBody = call.json()?;
    check(call, &body, replace)?;
    let permission = body.object_permission.take().map(Value::Object);
    let changes = columns(call, body)?;
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let before = tx
        .get(Query::GetAgentForUpdate, id, agent_not_found)
        .await?;
    if let Some(name) = changes.get("agent_name").and_then(Value::as_str)
        && str_of(&before, "agent_name") != Some(name)
        && tx.any(Query::GetAgentByName, &[&name]).await?
    {
        return Err(AdminError::invalid(
            "agent_name",
            format!("Agent with name '{name}' already exists"),
        ));
    }
    let mut row = before.as_object().cloned().unwrap_or_default();
    if replace {
        for (col, default) in replaced_defaults() {
            row.insert(col.to_string(), default);
        }
    }
    row.extend(changes);
    tx.object_permission(permission.as_ref(), &mut row).await?;
    row.insert("updated_by".into(), json!(call.changed_by()));
    let after = tx
        .one(Query::UpdateAgent, &[&id, &Value::Object(row)])
        .await?;
    let (b, a) = (audited(call, &before), audited(call, &after));
    tx.commit(
        vec![Change::updated(AGENTS_TABLE, id, &b, &a)],
        &[Changed::Agents],
    )
    .await?;
    answer(call, &after)
}

/// What a replace resets the columns a body leaves out to.
fn replaced_defaults() -> Vec<(&'static str, Value)> {
    vec![
        ("tianji_params", Value::Null),
        ("static_headers", Value::Null),
        ("extra_headers", json!([])),
        ("agent_access_groups", json!([])),
        ("access_group_ids", json!([])),
        ("kill_switch", Value::Null),
        ("identity", Value::Null),
        ("enabled", json!(true)),
        ("execution_mode", json!("autonomous")),
        ("tpm_limit", Value::Null),
        ("rpm_limit", Value::Null),
        ("session_tpm_limit", Value::Null),
        ("session_rpm_limit", Value::Null),
    ]
}

/// `DELETE /v1/agents/{agent_id}`
async fn delete(call: &Call<'_>, id: &str) -> Result<Response<Body>, AdminError> {
    require_admin(call)?;
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let gone = tx.get(Query::DeleteAgent, id, agent_not_found).await?;
    let audit = audited(call, &gone);
    let change = Change::of("deleted", AGENTS_TABLE, id, Some(&audit), None);
    tx.commit(vec![change], &[Changed::Agents]).await?;
    Ok(ok(
        &json!({"message": format!("Agent {id} deleted successfully")}),
    ))
}

/// `GET /a2a/{agent_id}/.well-known/agent-card.json` (and `agent.json`): the stored card, its
/// URL the gateway's, in the version the `a2a-version` header asks for.
pub async fn card(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let id = live.path_key.clone().unwrap_or_default();
    let agents = live.state.agents.load();
    let agent = agents.get(&id).ok_or_else(|| agent_not_found(&id))?;
    if !allowed(live.state, &live.principal).permits(&id) {
        return Ok(not_allowed(&id));
    }
    let stored = agent.card().ok_or_else(|| AdminError::NotFound {
        param: "agent_id",
        message: format!("Agent {id} has no agent card"),
    })?;
    let headers = live.req.headers();
    let version = Version::of(headers.get("a2a-version").and_then(|v| v.to_str().ok()));
    let url = format!("{}/a2a/{id}", base_url(live.state, headers));
    Ok(ok(&card::served(stored, &url, version)))
}

/// The gateway's base URL: `PROXY_BASE_URL`, else the request's `Host` over http.
pub fn base_url(state: &crate::state::AppState, headers: &http::HeaderMap) -> String {
    if let Some(b) = state.env.get("PROXY_BASE_URL").filter(|b| !b.is_empty()) {
        return b.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost:4000");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| matches!(*p, "http" | "https"))
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

/// `TianjiLLM_Config` row of the public agents.
const PUBLIC_AGENTS: &str = "public_agent_groups";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicAgents {
    agent_ids: Vec<String>,
}

/// `POST /v1/agents/{agent_id}/make_public` (adds one) and `POST /v1/agents/make_public`
/// `{"agent_ids": [..]}` (sets the list): the agents listed in `public_agent_groups`.
pub async fn make_public(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    require_admin(call)?;
    let given = match &call.path_key {
        Some(id) => vec![id.clone()],
        None => call.json::<PublicAgents>()?.agent_ids,
    };
    let agents = call.state.agents.load();
    if let Some(unknown) = given.iter().find(|id| agents.get(id).is_none()) {
        return Err(agent_not_found(unknown));
    }
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let mut ids = match &call.path_key {
        Some(_) => super::crud::str_list(
            tx.row(Query::GetConfigParam, &[&PUBLIC_AGENTS])
                .await?
                .as_ref(),
        ),
        None => Vec::new(),
    };
    for id in given {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    tx.exec(Query::PutConfigParam, &[&PUBLIC_AGENTS, &json!(ids)])
        .await?;
    tx.commit(Vec::new(), &[]).await?;
    Ok(ok(&json!({
        "message": "Successfully updated public agent groups",
        "public_agent_groups": ids,
        "updated_by": call.changed_by(),
    })))
}
