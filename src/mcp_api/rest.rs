//! `GET /v1/mcp/tools` (LiteLLM's REST listing): the tools the caller may use across the
//! servers it may use (or one server, `?server_id=`: its id or name), each named
//! `{server}-{tool}` as `tools/list` names it, with its server under `mcp_info`. Each server is
//! asked on an upstream session of this request only; a server that fails is left out and
//! named in `error`.

use futures_util::future::join_all;
use http::HeaderMap;
use serde_json::{Value, json};

use super::lists::TOOLS;
use super::{Call, Scope};
use crate::auth::Principal;
use crate::mcp::access::Permits;
use crate::state::AppState;

/// The answer: `{"tools": [...], "error": ..., "message": ...}`; `None` when `server` names
/// no server the caller may use.
pub async fn tools(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    server: Option<&str>,
) -> Option<Value> {
    let all = state.mcp.servers();
    let permits = Permits::of(principal, &all);
    let servers: Vec<_> = all
        .iter()
        .filter(|s| permits.server(&s.name))
        .filter(|s| server.is_none_or(|w| s.name == w || s.id.as_deref() == Some(w)))
        .cloned()
        .collect();
    if server.is_some() && servers.is_empty() {
        return None;
    }
    let scope = Scope { servers, permits };
    // the upstream sessions of this request only, ended after it
    let session = crate::mcp::sessions::Session::transient(super::owner(principal));
    let call = Call {
        state,
        principal,
        session: &session,
        headers,
        scope: &scope,
    };
    let got = join_all(scope.servers.iter().map(|s| call.server_items(s, &TOOLS))).await;
    let mut tools = Vec::new();
    let mut failed = Vec::new();
    for (s, got) in scope.servers.iter().zip(got) {
        match got {
            Ok(items) => tools.extend(items.into_iter().map(|mut t| {
                t["mcp_info"] = json!({
                    "server_name": s.name,
                    "server_id": s.id.as_deref().unwrap_or(&s.name),
                    "description": s.entry.description,
                });
                t
            })),
            Err(e) => {
                tracing::warn!(server = %s.name, error = %e, "MCP server left out of /v1/mcp/tools");
                failed.push(s.name.clone());
            }
        }
    }
    session.close().await;
    let error =
        (!failed.is_empty()).then(|| format!("could not list the tools of: {}", failed.join(", ")));
    let message = format!(
        "{} tools from {} servers",
        tools.len(),
        scope.servers.len() - failed.len()
    );
    Some(json!({"tools": tools, "error": error, "message": message}))
}
