//! `/v1/mcp/server` (LiteLLM's MCP server management: list, create, get, update, delete) and
//! `GET /v1/mcp/tools`. Rows live in `TianjiLLM_MCPServerTable` with `credentials` and the
//! values of `static_headers` sealed at rest; writes go through a [`Tx`] (audit rows, then
//! every instance reloads its MCP servers, `crate::mcp::stored`). Only proxy admins change
//! servers or see their credentials; everyone else sees the servers its key and team may use
//! (`crate::mcp::access`), without credentials, header values or URL secrets. Names are
//! unique across the config's `mcp_servers` and the table, and follow the config's rules;
//! stdio servers are refused, and so are URLs on private addresses unless
//! `general_settings.mcp_allow_private_urls`.

use http::{Method, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::audit::{Change, MCP_SERVERS_TABLE};
use super::crud::{Tx, str_of};
use super::models::masked;
use super::routes::Live;
use super::{AdminError, Call, ok};
use crate::agents::address;
use crate::auth::Changed;
use crate::body::Body;
use crate::mcp::access::Permits;
use crate::mcp::{Server, stored};
use crate::secrets::at_rest;
use crate::store::Query;

/// What non-admins see instead of a header value.
const REDACTED: &str = "REDACTED";

/// A create or update body (LiteLLM's `NewMCPServerRequest` / `UpdateMCPServerRequest`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerBody {
    server_id: Option<String>,
    server_name: Option<String>,
    alias: Option<String>,
    description: Option<String>,
    instructions: Option<String>,
    url: Option<String>,
    spec_path: Option<String>,
    /// `http` (`streamable_http`) or `sse` (the default, as LiteLLM's).
    transport: Option<String>,
    /// Accepted (LiteLLM's), not stored: the protocol version is agreed per session.
    #[allow(dead_code)]
    spec_version: Option<String>,
    auth_type: Option<Value>,
    /// `{auth_value, ...}`, sealed at rest.
    credentials: Option<Map<String, Value>>,
    /// LiteLLM's older spelling of `credentials.auth_value`.
    authentication_token: Option<String>,
    mcp_info: Option<Map<String, Value>>,
    mcp_access_groups: Option<Vec<String>>,
    allowed_tools: Option<Vec<String>>,
    tool_name_to_display_name: Option<Map<String, Value>>,
    tool_name_to_description: Option<Map<String, Value>>,
    extra_headers: Option<Vec<String>>,
    static_headers: Option<Map<String, Value>>,
    /// stdio servers: refused.
    command: Option<String>,
    args: Option<Vec<String>>,
    env: Option<Map<String, Value>>,
    authorization_url: Option<String>,
    token_url: Option<String>,
    registration_url: Option<String>,
    allow_all_keys: Option<bool>,
    available_on_public_internet: Option<bool>,
}

fn not_found(id: &str) -> AdminError {
    AdminError::NotFound {
        param: "server_id",
        message: format!("MCP server {id} not found"),
    }
}

fn require_admin(call: &Call<'_>) -> Result<(), AdminError> {
    call.require_admin("Only proxy admins can create, change or delete MCP servers")
}

/// The columns a body sets, in plain text (`server_name` from `alias` when only that is given).
fn columns(b: ServerBody) -> Result<Map<String, Value>, AdminError> {
    let stdio = b.command.as_deref().is_some_and(|c| !c.is_empty())
        || b.args.as_ref().is_some_and(|a| !a.is_empty())
        || b.env.as_ref().is_some_and(|e| !e.is_empty());
    if stdio || b.transport.as_deref() == Some("stdio") {
        return Err(AdminError::invalid(
            "transport",
            "stdio MCP servers (local processes) are not served; use an http or sse server",
        ));
    }
    let mut row = Map::new();
    let mut set = |name: &str, v: Option<Value>| {
        if let Some(v) = v {
            row.insert(name.to_string(), v);
        }
    };
    let name = b
        .server_name
        .clone()
        .or_else(|| b.alias.clone())
        .map(|n| n.trim().to_string());
    set("server_name", name.map(Value::String));
    set("alias", b.alias.map(Value::String));
    set("description", b.description.map(Value::String));
    set("instructions", b.instructions.map(Value::String));
    set("url", b.url.map(|u| Value::String(u.trim().to_string())));
    set("spec_path", b.spec_path.map(Value::String));
    set("transport", b.transport.map(Value::String));
    set("auth_type", b.auth_type);
    let mut credentials = b.credentials;
    if let Some(t) = b.authentication_token {
        credentials
            .get_or_insert_with(Map::new)
            .insert("auth_value".into(), Value::String(t));
    }
    set("credentials", credentials.map(Value::Object));
    set("mcp_info", b.mcp_info.map(Value::Object));
    set("mcp_access_groups", b.mcp_access_groups.map(|v| json!(v)));
    set("allowed_tools", b.allowed_tools.map(|v| json!(v)));
    set(
        "tool_name_to_display_name",
        b.tool_name_to_display_name.map(Value::Object),
    );
    set(
        "tool_name_to_description",
        b.tool_name_to_description.map(Value::Object),
    );
    set("extra_headers", b.extra_headers.map(|v| json!(v)));
    set("static_headers", b.static_headers.map(Value::Object));
    set("authorization_url", b.authorization_url.map(Value::String));
    set("token_url", b.token_url.map(Value::String));
    set("registration_url", b.registration_url.map(Value::String));
    set("allow_all_keys", b.allow_all_keys.map(Value::Bool));
    set(
        "available_on_public_internet",
        b.available_on_public_internet.map(Value::Bool),
    );
    Ok(row)
}

/// Check a whole row (plain text) as the servers are built from it; its name.
fn check(call: &Call<'_>, row: &Value) -> Result<String, AdminError> {
    let (name, entry) =
        stored::entry_of(row).map_err(|(field, why)| AdminError::invalid(field, why))?;
    if !call.state.config().general_settings.mcp_allow_private_urls
        && let Some(why) = entry
            .url
            .as_deref()
            .and_then(|u| address::refused_unless(u, "mcp_allow_private_urls"))
    {
        return Err(AdminError::invalid("url", why));
    }
    // what the checks above leave to it: a credential that is no header value
    Server::new(&name, &entry).map_err(|e| AdminError::invalid("credentials", e.to_string()))?;
    if call.state.mcp.configured(&name) {
        return Err(taken(&name));
    }
    Ok(name)
}

fn taken(name: &str) -> AdminError {
    AdminError::invalid(
        "server_name",
        format!("MCP server with name '{name}' already exists"),
    )
}

/// `row` (plain text) as stored: credentials and header values sealed.
fn sealed(call: &Call<'_>, mut row: Map<String, Value>) -> Result<Map<String, Value>, AdminError> {
    let at = call.state.at_rest.as_deref();
    if let Some(c) = row.get("credentials").filter(|c| c.is_object()) {
        let s = at_rest::seal_params(at, c)
            .map_err(|e| AdminError::invalid("credentials", e.to_string()))?;
        row.insert("credentials".into(), s);
    }
    if let Some(h) = row.get("static_headers").filter(|h| h.is_object()) {
        let s =
            stored::seal_headers(at, h).map_err(|e| AdminError::invalid("static_headers", e))?;
        row.insert("static_headers".into(), s);
    }
    Ok(row)
}

/// A stored row opened for display (a value that does not open shows as `********`).
fn opened_lossy(call: &Call<'_>, row: &Value) -> Value {
    let at = call.state.at_rest.as_deref();
    let mut v = row.clone();
    if let Some(c) = row.get("credentials").filter(|c| c.is_object()) {
        v["credentials"] = at_rest::open_params_lossy(at, c);
    }
    if let Some(h) = row.get("static_headers").filter(|h| h.is_object()) {
        v["static_headers"] = stored::open_headers(at, h, true).unwrap_or(Value::Null);
    }
    v
}

/// A row as answered: admins see it opened; others without credentials, header values,
/// stdio fields or URL secrets.
fn shown(call: &Call<'_>, row: &Value) -> Value {
    let mut v = opened_lossy(call, row);
    if !call.principal.is_admin() {
        hide_secrets(&mut v);
    }
    v
}

fn hide_secrets(v: &mut Value) {
    v["credentials"] = Value::Null;
    v["env"] = Value::Null;
    if let Some(h) = v.get_mut("static_headers").and_then(Value::as_object_mut) {
        h.values_mut().for_each(|x| *x = json!(REDACTED));
    }
    if let Some(u) = v.get("url").and_then(Value::as_str) {
        v["url"] = json!(crate::secrets::redact_url(u));
    }
}

/// A config server, shown like a row (its credential never: it comes from the config).
fn config_shown(s: &Server, admin: bool) -> Value {
    let e = &s.entry;
    let headers: Map<String, Value> = e
        .static_headers
        .keys()
        .map(|k| (k.clone(), json!(if admin { "********" } else { REDACTED })))
        .collect();
    let url = e.url.as_deref().unwrap_or_default();
    json!({
        "server_id": s.name,
        "server_name": s.name,
        "alias": null,
        "description": e.description,
        "url": crate::secrets::redact_url(url),
        "transport": match e.transport {
            crate::config::mcp::Transport::Sse => "sse",
            _ => "http",
        },
        "auth_type": e.auth_type.map(|_| "configured"),
        "credentials": null,
        "mcp_info": {"server_name": s.name, "description": e.description, "mcp_server_cost_info": {
            "default_cost_per_query": e.mcp_info.mcp_server_cost_info.default_cost_per_query,
            "tool_name_to_cost_per_query": e.mcp_info.mcp_server_cost_info.tool_name_to_cost_per_query,
        }},
        "mcp_access_groups": e.access_groups,
        "allowed_tools": e.allowed_tools,
        "extra_headers": e.extra_headers,
        "static_headers": headers,
        "status": "unknown",
        "source": "config",
    })
}

/// A stored row as the audit log keeps it: credentials and header values masked.
fn audited(call: &Call<'_>, row: &Value) -> Value {
    let mut r = opened_lossy(call, row);
    if let Some(c) = r.get("credentials").filter(|c| c.is_object()) {
        r["credentials"] = masked(&json!({ "credentials": c }))["credentials"].take();
        if let Some(o) = r["credentials"].as_object_mut() {
            o.values_mut()
                .filter(|v| v.is_string())
                .for_each(|v| *v = json!("********"));
        }
    }
    if let Some(h) = r.get_mut("static_headers").and_then(Value::as_object_mut) {
        h.values_mut().for_each(|v| *v = json!("********"));
    }
    r
}

/// What the caller may use now (admins: everything).
fn permits(call: &Call<'_>) -> (std::sync::Arc<Vec<std::sync::Arc<Server>>>, Permits) {
    let servers = call.state.mcp.servers();
    let p = Permits::of(&call.principal, &servers);
    (servers, p)
}

/// Whether the caller may see the stored server `row`: admins all; others a server that is
/// served and that `p` permits.
fn visible(call: &Call<'_>, servers: &[std::sync::Arc<Server>], p: &Permits, row: &Value) -> bool {
    if call.principal.is_admin() {
        return true;
    }
    let id = str_of(row, "server_id");
    servers
        .iter()
        .any(|s| s.id.is_some() && s.id.as_deref() == id && p.server(&s.name))
}

/// `GET /v1/mcp/server`, `POST /v1/mcp/server`, `PUT /v1/mcp/server` (`server_id` in the body).
pub async fn collection(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    match call.method {
        Method::POST => return create(call).await,
        Method::PUT => return update(call, None).await,
        _ => {}
    }
    let admin = call.principal.is_admin();
    let (servers, p) = permits(call);
    let mut list: Vec<Value> = servers
        .iter()
        .filter(|s| s.id.is_none() && p.server(&s.name))
        .map(|s| config_shown(s, admin))
        .collect();
    for row in call.rows(Query::ListMcpServers, &[]).await? {
        if visible(call, &servers, &p, &row) {
            list.push(shown(call, &row));
        }
    }
    Ok(ok(&Value::Array(list)))
}

/// `GET|PUT|DELETE /v1/mcp/server/{server_id}`.
pub async fn item(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let id = call.path_key.clone().unwrap_or_default();
    match call.method {
        Method::PUT => update(call, Some(id)).await,
        Method::DELETE => delete(call, &id).await,
        _ => {
            let ids = vec![id.clone()];
            let row = call.first(Query::GetMcpServerById, &[&ids]).await?;
            let (servers, p) = permits(call);
            if let Some(row) = row.filter(|r| visible(call, &servers, &p, r)) {
                return Ok(ok(&shown(call, &row)));
            }
            let configured = servers
                .iter()
                .find(|s| s.id.is_none() && s.name == id && p.server(&s.name));
            match configured {
                Some(s) => Ok(ok(&config_shown(s, call.principal.is_admin()))),
                None => Err(not_found(&id)),
            }
        }
    }
}

/// `POST /v1/mcp/server`
async fn create(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    require_admin(call)?;
    let body: ServerBody = call.json()?;
    let given_id = body.server_id.clone().filter(|s| !s.trim().is_empty());
    let mut row = columns(body)?;
    if let Some(id) = &given_id {
        row.insert("server_id".into(), json!(id));
    }
    let plain = Value::Object(row.clone());
    let mut with_defaults = plain.clone();
    if with_defaults.get("transport").is_none() {
        with_defaults["transport"] = json!("sse");
    }
    let name = check(call, &with_defaults)?;
    let mut row = sealed(call, row)?;
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    if tx.any(Query::GetMcpServerByName, &[&name]).await? {
        return Err(taken(&name));
    }
    if let Some(id) = &given_id
        && tx.find(Query::GetMcpServerForUpdate, id).await?.is_some()
    {
        return Err(AdminError::invalid(
            "server_id",
            format!("MCP server {id} already exists"),
        ));
    }
    let by = call.changed_by();
    row.insert("created_by".into(), json!(by));
    row.insert("updated_by".into(), json!(by));
    let stored = tx
        .one(Query::InsertMcpServer, &[&Value::Object(row)])
        .await?;
    let id = str_of(&stored, "server_id").unwrap_or_default().to_string();
    let audit = audited(call, &stored);
    tx.commit(
        vec![Change::created(MCP_SERVERS_TABLE, &id, &audit)],
        &[Changed::McpServers],
    )
    .await?;
    Ok(ok(&shown(call, &stored)))
}

/// `PUT /v1/mcp/server[/{server_id}]`: the fields given replace the stored ones.
async fn update(call: &Call<'_>, path_id: Option<String>) -> Result<Response<Body>, AdminError> {
    require_admin(call)?;
    let body: ServerBody = call.json()?;
    let id = match (path_id, body.server_id.clone()) {
        (Some(p), Some(b)) if p != b => {
            return Err(AdminError::invalid(
                "server_id",
                "the body's server_id differs from the path's",
            ));
        }
        (Some(id), _) | (None, Some(id)) => id,
        (None, None) => return Err(AdminError::invalid("server_id", "`server_id` is required")),
    };
    let changes = columns(body)?;
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let before = tx.get(Query::GetMcpServerForUpdate, &id, not_found).await?;
    let at = call.state.at_rest.as_deref();
    let mut row = match stored::opened(at, &before) {
        Ok(v) => v.as_object().cloned().unwrap_or_default(),
        // both secrets given again: the stored ones are not needed
        Err(_) if changes.contains_key("credentials") && changes.contains_key("static_headers") => {
            before.as_object().cloned().unwrap_or_default()
        }
        Err(e) => {
            return Err(AdminError::invalid(
                "credentials",
                format!(
                    "the stored credentials cannot be read ({e}); give credentials and static_headers again"
                ),
            ));
        }
    };
    row.extend(changes);
    let name = check(call, &Value::Object(row.clone()))?;
    if str_of(&before, "server_name") != Some(name.as_str())
        && tx.any(Query::GetMcpServerByName, &[&name]).await?
    {
        return Err(taken(&name));
    }
    row.insert("server_name".into(), json!(name));
    let mut row = sealed(call, row)?;
    row.insert("updated_by".into(), json!(call.changed_by()));
    let after = tx
        .one(Query::UpdateMcpServer, &[&id, &Value::Object(row)])
        .await?;
    let (b, a) = (audited(call, &before), audited(call, &after));
    tx.commit(
        vec![Change::updated(MCP_SERVERS_TABLE, &id, &b, &a)],
        &[Changed::McpServers],
    )
    .await?;
    Ok(ok(&shown(call, &after)))
}

/// `DELETE /v1/mcp/server/{server_id}`: gone on every instance, its upstream sessions ended.
async fn delete(call: &Call<'_>, id: &str) -> Result<Response<Body>, AdminError> {
    require_admin(call)?;
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let gone = tx.get(Query::DeleteMcpServer, id, not_found).await?;
    let audit = audited(call, &gone);
    let change = Change::of("deleted", MCP_SERVERS_TABLE, id, Some(&audit), None);
    tx.commit(vec![change], &[Changed::McpServers]).await?;
    Ok(ok(
        &json!({"message": format!("MCP server {id} deleted successfully")}),
    ))
}

/// `GET /v1/mcp/tools[?server_id=]`: the tools the caller may use (see
/// [`crate::mcp_api::rest`]).
pub async fn tools(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let server = live.param("server_id").filter(|s| !s.is_empty());
    let got = crate::mcp_api::rest::tools(
        live.state,
        &live.principal,
        live.req.headers(),
        server.as_deref(),
    )
    .await;
    match got {
        Some(v) => Ok(ok(&v)),
        None => Err(not_found(server.as_deref().unwrap_or_default())),
    }
}
