//! Which MCP servers and tools a caller may use. Servers: a key's object permission names
//! them (`mcp_servers`: names, or a database server's `server_id`) or grants their access groups (`mcp_access_groups`); likewise its
//! team's; key and team are intersected, and a holder granting nothing is unrestricted (as
//! for agents). Tools: the server's own `allowed_tools` / `disallowed_tools`, then the key's
//! and the team's `mcp_tool_permissions` (`{server: [tools]}`: a server listed there serves
//! only those tools) and `blocked_tools` (a tool's own name or `{server}-{tool}`). Proxy
//! admins are restricted by the servers' own lists only.

use std::collections::HashSet;

use serde_json::Value;

use super::Server;
use crate::auth::Principal;
use crate::auth::records::ObjectPermission;
use crate::config::mcp::TOOL_SEPARATOR;

/// What a caller may use.
#[derive(Debug, Clone, Default)]
pub struct Permits {
    /// `None`: every server.
    servers: Option<HashSet<String>>,
    /// Each holder's `mcp_tool_permissions` (all must allow a tool).
    tool_lists: Vec<Value>,
    blocked: HashSet<String>,
}

/// The server names one object permission grants; `None`: unrestricted.
fn granted(
    op: Option<&ObjectPermission>,
    servers: &[std::sync::Arc<Server>],
) -> Option<HashSet<String>> {
    let op = op?;
    let names = op.mcp_servers.as_deref().unwrap_or_default();
    let groups = op.mcp_access_groups.as_deref().unwrap_or_default();
    if names.is_empty() && groups.is_empty() {
        return None;
    }
    Some(
        servers
            .iter()
            .filter(|s| {
                names.contains(&s.name)
                    || s.id.as_ref().is_some_and(|id| names.contains(id))
                    || s.entry.access_groups.iter().any(|g| groups.contains(g))
            })
            .map(|s| s.name.clone())
            .collect(),
    )
}

impl Permits {
    /// Everything (the servers' own tool lists still apply).
    pub fn all() -> Self {
        Self::default()
    }

    /// What `principal` may use among `servers`.
    pub fn of(principal: &Principal, servers: &[std::sync::Arc<Server>]) -> Self {
        let Some(k) = principal.key().filter(|_| !principal.is_admin()) else {
            return Self::all();
        };
        let key_op = k.key.object_permission.as_ref();
        let team_op = k.team.as_deref().and_then(|t| t.object_permission.as_ref());
        let servers = match (granted(key_op, servers), granted(team_op, servers)) {
            (None, t) => t,
            (k, None) => k,
            (Some(k), Some(t)) => Some(k.intersection(&t).cloned().collect()),
        };
        let mut p = Self {
            servers,
            ..Self::default()
        };
        for op in [key_op, team_op].into_iter().flatten() {
            if op.mcp_tool_permissions.is_object() {
                p.tool_lists.push(op.mcp_tool_permissions.clone());
            }
            p.blocked.extend(op.blocked_tools.iter().flatten().cloned());
        }
        p
    }

    pub fn server(&self, name: &str) -> bool {
        self.servers.as_ref().is_none_or(|s| s.contains(name))
    }

    /// Whether tool `tool` (its own name) of `server` may be listed and called.
    pub fn tool(&self, server: &Server, tool: &str) -> bool {
        if !self.server(&server.name) {
            return false;
        }
        let e = &server.entry;
        if !e.allowed_tools.is_empty() && !e.allowed_tools.iter().any(|t| t == tool) {
            return false;
        }
        if e.disallowed_tools.iter().any(|t| t == tool) {
            return false;
        }
        let namespaced = format!("{}{TOOL_SEPARATOR}{tool}", server.name);
        if self.blocked.contains(tool) || self.blocked.contains(&namespaced) {
            return false;
        }
        self.tool_lists.iter().all(|m| match m.get(&server.name) {
            Some(Value::Array(list)) => list
                .iter()
                .any(|t| t.as_str() == Some(tool) || t.as_str() == Some(namespaced.as_str())),
            _ => true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn server(name: &str, groups: &[&str], allowed: &[&str]) -> Arc<Server> {
        Arc::new(Server::for_tests(name, groups, allowed))
    }

    fn op(v: Value) -> ObjectPermission {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn servers_by_name_and_group_key_and_team_intersected() {
        let all = [
            server("a", &["g"], &[]),
            server("b", &["g"], &[]),
            server("c", &[], &[]),
        ];
        assert_eq!(granted(None, &all), None);
        assert_eq!(granted(Some(&op(serde_json::json!({}))), &all), None);
        let by_name = op(serde_json::json!({"mcp_servers": ["a", "c"]}));
        let by_group = op(serde_json::json!({"mcp_access_groups": ["g"]}));
        let names = |o: &ObjectPermission| {
            let mut v: Vec<_> = granted(Some(o), &all).unwrap().into_iter().collect();
            v.sort();
            v
        };
        assert_eq!(names(&by_name), ["a", "c"]);
        assert_eq!(names(&by_group), ["a", "b"]);
    }

    #[test]
    fn tools_filtered_by_server_lists_permissions_and_blocks() {
        let s = server("wiki", &[], &["read", "search", "write"]);
        let mut p = Permits::all();
        assert!(p.tool(&s, "read"));
        assert!(!p.tool(&s, "delete"), "not in the server's allowed_tools");
        p.tool_lists
            .push(serde_json::json!({"wiki": ["read", "wiki-search"], "other": ["x"]}));
        assert!(p.tool(&s, "read") && p.tool(&s, "search"));
        assert!(!p.tool(&s, "write"));
        p.blocked.insert("wiki-read".into());
        assert!(!p.tool(&s, "read"));
        p.servers = Some(HashSet::new());
        assert!(!p.tool(&s, "search"));
    }
}
