//! Which `mcp` tools of a request the gateway runs itself, on which of its servers, and their
//! tools listed as function tools for the model.
//!
//! A tool `{"type": "mcp", "server_url": ...}` is the gateway's own when `server_url` is
//! `tianji_proxy` or `litellm_proxy` (every server the caller may use), `{that}/mcp/{server}`
//! (one server), or a URL whose path is `/mcp` or `/mcp/{server}` and which is relative or
//! names the request's own `Host`. Any other URL is the provider's business on `/v1/responses`
//! (OpenAI runs remote MCP servers itself) and refused on chat completions.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::join_all;
use http::header::HOST;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::McpToolError;
use super::turns::Format;
use crate::config::mcp::TOOL_SEPARATOR;
use crate::mcp::access::Permits;
use crate::mcp::client::{Reply, UpstreamError};
use crate::mcp::{Conn, Server, listing};
use crate::pipeline::parse::Expect;
use crate::pipeline::read::Call;
use crate::state::AppState;

/// The names `server_url` gives the gateway itself (LiteLLM's, and ours).
const OWN_NAMES: &[&str] = &["tianji_proxy", "litellm_proxy"];

/// Where an `mcp` tool's `server_url` points.
#[derive(Debug, PartialEq, Eq)]
pub enum Named {
    /// The gateway: one server, or (`None`) every server the caller may use.
    Own(Option<String>),
    /// Somewhere else.
    Foreign,
}

/// The server a gateway MCP path names: `/mcp` -> every one, `/mcp/{server}` -> that one.
fn path_server(path: &str) -> Option<Option<String>> {
    let path = path.trim_end_matches('/');
    if path == "/mcp" {
        return Some(None);
    }
    let name = path.strip_prefix("/mcp/")?;
    (!name.is_empty() && !name.contains('/')).then(|| Some(name.to_string()))
}

/// Where `url` points, for a request that came to `host`.
pub fn named(url: &str, host: Option<&str>) -> Result<Named, McpToolError> {
    let bad = || {
        McpToolError::BadTool(format!(
            "server_url `{url}` names no MCP server of the gateway: use tianji_proxy, tianji_proxy/mcp/{{server}} or /mcp/{{server}}"
        ))
    };
    for own in OWN_NAMES {
        if let Some(rest) = url.strip_prefix(own) {
            if rest.is_empty() || rest == "/" {
                return Ok(Named::Own(None));
            }
            if rest.starts_with('/') {
                return path_server(rest).map(Named::Own).ok_or_else(bad);
            }
        }
    }
    if url.starts_with('/') {
        return path_server(url).map(Named::Own).ok_or_else(bad);
    }
    let Ok(uri) = url.parse::<http::Uri>() else {
        return Ok(Named::Foreign);
    };
    let ours = match (uri.authority(), host) {
        (Some(a), Some(h)) => a.as_str().eq_ignore_ascii_case(h),
        _ => false,
    };
    if !ours {
        return Ok(Named::Foreign);
    }
    path_server(uri.path()).map(Named::Own).ok_or_else(bad)
}

/// One gateway-run `mcp` tool of the request.
struct McpTool {
    servers: Vec<Arc<Server>>,
    label: Option<String>,
    /// `allowed_tools`: the only tools offered (their own names, or `{server}-{tool}`).
    allowed: Option<Vec<String>>,
}

/// What the gateway runs for a request.
pub struct Plan {
    /// The request body, without the gateway-run `mcp` tools.
    pub body: Map<String, Value>,
    tools: Vec<McpTool>,
    permits: Permits,
}

/// `allowed_tools`: a list of names, or `{"tool_names": [...]}`.
fn allowed_tools(v: Option<&Value>) -> Result<Option<Vec<String>>, McpToolError> {
    let list = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(a)) => a,
        Some(Value::Object(o)) => match o.get("tool_names") {
            Some(Value::Array(a)) => a,
            None | Some(Value::Null) => return Ok(None),
            Some(_) => return Err(bad_allowed()),
        },
        Some(_) => return Err(bad_allowed()),
    };
    list.iter()
        .map(|t| t.as_str().map(str::to_string).ok_or_else(bad_allowed))
        .collect::<Result<_, _>>()
        .map(Some)
}

fn bad_allowed() -> McpToolError {
    McpToolError::BadTool(
        "allowed_tools must be a list of tool names (or {\"tool_names\": [...]})".into(),
    )
}

/// The request's gateway-run `mcp` tools (`None`: it has none), checked against what the
/// caller may use.
pub fn plan(state: &AppState, call: &Call) -> Result<Option<Plan>, crate::error::GatewayError> {
    let mut body: Map<String, Value> = call.parsed.json()?;
    let Some(Value::Array(listed)) = body.get_mut("tools") else {
        return Ok(None);
    };
    if !listed.iter().any(|t| t.get("type") == Some(&json!("mcp"))) {
        return Ok(None);
    }
    let host = call.headers.get(HOST).and_then(|h| h.to_str().ok());
    let all = state.mcp.servers();
    let permits = Permits::of(&call.principal, &all);
    let mut kept = Vec::with_capacity(listed.len());
    let mut tools = Vec::new();
    for t in std::mem::take(listed) {
        if t.get("type") != Some(&json!("mcp")) {
            kept.push(t);
            continue;
        }
        let url = t.get("server_url").and_then(Value::as_str);
        let where_ = match url {
            Some(u) => named(u, host)?,
            None => Named::Foreign,
        };
        let Named::Own(server) = where_ else {
            if call.expect == Expect::Responses {
                // the provider's to run (OpenAI's remote MCP)
                kept.push(t);
                continue;
            }
            return Err(McpToolError::BadTool(format!(
                "an mcp tool on /v1/chat/completions must name one of the gateway's MCP servers (server_url tianji_proxy/mcp/{{server}}); `{}` is not one",
                url.unwrap_or_default()
            ))
            .into());
        };
        match t.get("require_approval") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s == "never" => {}
            Some(_) => {
                return Err(McpToolError::BadTool(
                    "the gateway runs MCP tools without asking: require_approval must be \"never\""
                        .into(),
                )
                .into());
            }
        }
        let servers = match server {
            Some(name) => {
                let s = state
                    .mcp
                    .server(&name)
                    .ok_or_else(|| McpToolError::UnknownServer(name.clone()))?;
                if !permits.server(&name) {
                    return Err(McpToolError::Forbidden(name).into());
                }
                vec![s]
            }
            None => {
                let mine: Vec<_> = all
                    .iter()
                    .filter(|s| permits.server(&s.name))
                    .cloned()
                    .collect();
                if mine.is_empty() {
                    return Err(McpToolError::NoServers.into());
                }
                mine
            }
        };
        let label = t
            .get("server_label")
            .and_then(Value::as_str)
            .filter(|l| !l.is_empty())
            .map(str::to_string);
        tools.push(McpTool {
            servers,
            label,
            allowed: allowed_tools(t.get("allowed_tools"))?,
        });
    }
    if tools.is_empty() {
        body.insert("tools".into(), Value::Array(kept));
        return Ok(None);
    }
    body.insert("tools".into(), Value::Array(kept));
    Ok(Some(Plan {
        body,
        tools,
        permits,
    }))
}

/// A tool the model may call.
pub struct Offered {
    pub server: Arc<Server>,
    /// Its own name on its server.
    pub tool: String,
    /// `server_label`, else the server's name.
    pub label: String,
}

/// The tools offered, their function definitions and the upstream sessions (one per server).
pub struct Listed {
    /// By function name.
    pub offered: HashMap<String, Offered>,
    /// Function tools for the model's request.
    pub functions: Vec<Value>,
    /// One `mcp_list_tools` item per server (Responses answers).
    pub listings: Vec<Value>,
    conns: HashMap<String, Arc<Conn>>,
}

impl Listed {
    /// The session with `server`.
    pub fn conn(&self, server: &str) -> Option<&Arc<Conn>> {
        self.conns.get(server)
    }

    /// End every upstream session.
    pub async fn close(self) {
        join_all(self.conns.values().map(|c| c.close())).await;
    }
}

/// A name the OpenAI function-calling API accepts (letters, digits, `_`, `-`; 64 at most).
fn function_name(prefix: &str, tool: &str) -> String {
    let mut n: String = format!("{prefix}{TOOL_SEPARATOR}{tool}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    n.truncate(64);
    n
}

async fn list_one(
    conn: &Conn,
    server: &Server,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<Value>, UpstreamError> {
    let send = |params: Option<Box<RawValue>>| async move {
        let r: Result<Reply, UpstreamError> = conn.request("tools/list", params.as_deref()).await;
        r
    };
    listing::items(&server.name, "tools", keep, send).await
}

/// Open a session with each server of the plan and list its tools (those the caller and the
/// tool's `allowed_tools` allow), as function tools of `format`.
pub async fn list(
    state: &AppState,
    call: &Call,
    plan: &Plan,
    format: Format,
) -> Result<Listed, McpToolError> {
    let mut servers: Vec<Arc<Server>> = Vec::new();
    for t in &plan.tools {
        for s in &t.servers {
            if !servers.iter().any(|x| x.name == s.name) {
                servers.push(s.clone());
            }
        }
    }
    let opened = join_all(servers.iter().map(|s| {
        Conn::open(
            s.target.clone(),
            state.client.clone(),
            s.forwarded(&call.headers),
        )
    }))
    .await;
    let mut listed = Listed {
        offered: HashMap::new(),
        functions: Vec::new(),
        listings: Vec::new(),
        conns: HashMap::new(),
    };
    let mut failed = None;
    for (s, c) in servers.iter().zip(opened) {
        match c {
            Ok(c) => {
                listed.conns.insert(s.name.clone(), Arc::new(c));
            }
            Err(e) => failed = failed.or(Some((s.name.clone(), e))),
        }
    }
    if let Some((server, e)) = failed {
        listed.close().await;
        return Err(McpToolError::List { server, error: e });
    }
    for t in &plan.tools {
        for s in &t.servers {
            let Some(conn) = listed.conns.get(&s.name).cloned() else {
                continue;
            };
            let keep = |name: &str| {
                plan.permits.tool(s, name)
                    && t.allowed.as_ref().is_none_or(|a| {
                        a.iter().any(|x| {
                            x == name
                                || x.strip_prefix(&s.name)
                                    .and_then(|r| r.strip_prefix(TOOL_SEPARATOR))
                                    == Some(name)
                        })
                    })
            };
            let items = match list_one(&conn, s, keep).await {
                Ok(items) => items,
                Err(e) => {
                    listed.close().await;
                    return Err(McpToolError::List {
                        server: s.name.clone(),
                        error: e,
                    });
                }
            };
            // a label names the server only when the tool stands for one server
            let label = match (&t.label, t.servers.len()) {
                (Some(l), 1) => l.clone(),
                _ => s.name.clone(),
            };
            let mut shown = Vec::with_capacity(items.len());
            for item in items {
                let full = item.get("name").and_then(Value::as_str).unwrap_or_default();
                let own = full
                    .strip_prefix(s.name.as_str())
                    .and_then(|r| r.strip_prefix(TOOL_SEPARATOR))
                    .unwrap_or(full)
                    .to_string();
                let name = function_name(&label, &own);
                if listed.offered.contains_key(&name) {
                    continue;
                }
                let description = item.get("description").cloned().unwrap_or(Value::Null);
                let schema = item
                    .get("inputSchema")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
                listed
                    .functions
                    .push(format.function(&name, &description, &schema));
                shown.push(json!({
                    "name": own,
                    "description": description,
                    "input_schema": schema,
                    "annotations": item.get("annotations").cloned().unwrap_or(Value::Null),
                }));
                listed.offered.insert(
                    name,
                    Offered {
                        server: s.clone(),
                        tool: own,
                        label: label.clone(),
                    },
                );
            }
            listed.listings.push(json!({
                "type": "mcp_list_tools",
                "id": format!("mcpl_{}", uuid::Uuid::now_v7().simple()),
                "server_label": label,
                "tools": shown,
            }));
        }
    }
    Ok(listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(s: Option<&str>) -> Named {
        Named::Own(s.map(str::to_string))
    }

    #[test]
    fn server_urls_of_the_gateway_and_elsewhere() {
        let host = Some("gw.local:4000");
        let n = |u: &str| named(u, host).unwrap();
        assert_eq!(n("tianji_proxy"), own(None));
        assert_eq!(n("litellm_proxy"), own(None));
        assert_eq!(n("litellm_proxy/mcp/wiki"), own(Some("wiki")));
        assert_eq!(n("tianji_proxy/mcp/wiki/"), own(Some("wiki")));
        assert_eq!(n("tianji_proxy/mcp"), own(None));
        assert_eq!(n("/mcp/wiki"), own(Some("wiki")));
        assert_eq!(n("/mcp"), own(None));
        assert_eq!(n("http://gw.local:4000/mcp/wiki"), own(Some("wiki")));
        assert_eq!(n("http://GW.local:4000/mcp"), own(None));
        assert_eq!(n("http://gw.local:4001/mcp/wiki"), Named::Foreign);
        assert_eq!(n("https://mcp.deepwiki.com/mcp"), Named::Foreign);
        assert_eq!(
            named("http://gw.local:4000/mcp/wiki", None).unwrap(),
            Named::Foreign
        );
        for bad in [
            "tianji_proxy/x",
            "/v1/chat",
            "/mcp/a/b",
            "http://gw.local:4000/other",
        ] {
            assert!(named(bad, host).is_err(), "{bad}");
        }
        assert_eq!(n("tianji_proxyish"), Named::Foreign);
    }

    #[test]
    fn allowed_tools_forms() {
        assert_eq!(allowed_tools(None).unwrap(), None);
        assert_eq!(
            allowed_tools(Some(&json!(["a", "s-b"]))).unwrap(),
            Some(vec!["a".to_string(), "s-b".to_string()])
        );
        assert_eq!(
            allowed_tools(Some(&json!({"tool_names": ["a"]}))).unwrap(),
            Some(vec!["a".to_string()])
        );
        assert!(allowed_tools(Some(&json!([1]))).is_err());
        assert!(allowed_tools(Some(&json!("a"))).is_err());
    }

    #[test]
    fn function_names_are_valid() {
        assert_eq!(function_name("wiki", "add"), "wiki-add");
        assert_eq!(function_name("my wiki", "a.b"), "my_wiki-a_b");
        assert_eq!(function_name(&"x".repeat(80), "t").len(), 64);
    }
}
