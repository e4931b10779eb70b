//! MCP servers registered in `TianjiLLM_MCPServerTable` (LiteLLM's `LiteLLM_MCPServerTable`
//! through `/v1/mcp/server`): a row read as a config entry, and the reload of every stored
//! server into [`Mcp`] (at startup, and on every instance when one changes). `credentials`
//! (`auth_value`, ...) and the values of `static_headers` are stored sealed
//! ([`crate::secrets::at_rest`]); rows are opened here. A row that cannot be served (stdio,
//! a bad URL, a private address without `mcp_allow_private_urls`, credentials that do not
//! open) is left out with a warning.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Mcp, McpError, Server};
use crate::config::mcp::{
    AuthType, McpInfo, McpServerEntry, Transport, entry_refused, name_refused,
};
use crate::secrets::AtRest;
use crate::secrets::at_rest;
use crate::store::{Query, Store, StoreError};

/// The member of `static_headers` sealed as a header map (see `at_rest::seal_params`).
const HEADERS: &str = "headers";

/// A stored server's name: `server_name`, else `alias`.
pub fn name_of(row: &Value) -> Option<&str> {
    let s = |k: &str| row.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    s("server_name").or_else(|| s("alias"))
}

/// `transport` as LiteLLM writes it (`http`, `streamable_http`, `sse`, `stdio`).
pub fn transport_of(v: Option<&Value>) -> Result<Transport, String> {
    match v.and_then(Value::as_str).unwrap_or("sse") {
        "http" | "streamable_http" | "streamable-http" => Ok(Transport::Http),
        "sse" => Ok(Transport::Sse),
        "stdio" => Ok(Transport::Stdio),
        other => Err(format!(
            "'{other}' is not a transport (http, streamable_http or sse)"
        )),
    }
}

/// `auth_type` (`none`, `api_key`, `bearer_token`, `basic`, `authorization`; null: none).
pub fn auth_type_of(v: Option<&Value>) -> Result<Option<AuthType>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => AuthType::deserialize(v).map(Some).map_err(|_| {
            format!("{v} is not an auth_type (none, api_key, bearer_token, basic, authorization)")
        }),
    }
}

/// `static_headers` sealed for storage (values encrypted).
pub fn seal_headers(at: Option<&AtRest>, h: &Value) -> Result<Value, String> {
    let sealed = at_rest::seal_params(at, &json!({ HEADERS: h })).map_err(|e| e.to_string())?;
    Ok(sealed[HEADERS].clone())
}

/// Stored `static_headers` opened (`lossy`: a value that does not open shows as `********`).
pub fn open_headers(at: Option<&AtRest>, h: &Value, lossy: bool) -> Result<Value, String> {
    let wrapped = json!({ HEADERS: h });
    let opened = if lossy {
        at_rest::open_params_lossy(at, &wrapped)
    } else {
        at_rest::open_params(at, &wrapped).map_err(|e| e.to_string())?
    };
    Ok(opened[HEADERS].clone())
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(|v| Vec::<String>::deserialize(v).ok())
        .unwrap_or_default()
}

/// The config entry of an opened row (credentials and headers in plain text), checked as a
/// config entry is: the field at fault and why when it cannot be served.
pub fn entry_of(row: &Value) -> Result<(String, McpServerEntry), (&'static str, String)> {
    let name = name_of(row).ok_or(("server_name", "is required".to_string()))?;
    if let Some(why) = name_refused(name) {
        return Err(("server_name", why));
    }
    let static_headers = match row.get("static_headers") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(h) => BTreeMap::<String, String>::deserialize(h).map_err(|_| {
            (
                "static_headers",
                "header values must be strings".to_string(),
            )
        })?,
    };
    let credentials = row.get("credentials").filter(|c| !c.is_null());
    let auth_value = match credentials.and_then(|c| c.get("auth_value")) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(("credentials.auth_value", "must be a string".into())),
    };
    let mcp_info = match row.get("mcp_info") {
        None | Some(Value::Null) => McpInfo::default(),
        Some(m) => McpInfo::deserialize(m).map_err(|e| ("mcp_info", e.to_string()))?,
    };
    let text = |k: &str| row.get(k).and_then(Value::as_str).map(str::to_string);
    let entry = McpServerEntry {
        url: text("url"),
        transport: transport_of(row.get("transport")).map_err(|e| ("transport", e))?,
        timeout: None,
        auth_type: auth_type_of(row.get("auth_type")).map_err(|e| ("auth_type", e))?,
        auth_value,
        static_headers,
        extra_headers: strings(row.get("extra_headers")),
        description: text("description").or_else(|| mcp_info.description.clone()),
        allowed_tools: strings(row.get("allowed_tools")),
        disallowed_tools: Vec::new(),
        mcp_info,
        access_groups: strings(row.get("mcp_access_groups")),
        command: text("command").filter(|c| !c.is_empty()),
        ..McpServerEntry::default()
    };
    if let Some(refused) = entry_refused(&entry, false) {
        return Err(refused);
    }
    Ok((name.to_string(), entry))
}

/// A stored row with its `credentials` and `static_headers` opened.
pub fn opened(at: Option<&AtRest>, row: &Value) -> Result<Value, String> {
    let mut v = row.clone();
    if let Some(c) = row.get("credentials").filter(|c| c.is_object()) {
        v["credentials"] = at_rest::open_params(at, c).map_err(|e| e.to_string())?;
    }
    if let Some(h) = row.get("static_headers").filter(|h| h.is_object()) {
        v["static_headers"] = open_headers(at, h, false)?;
    }
    Ok(v)
}

/// The server of a stored row (opened), unless it cannot be served.
fn server_of(row: &Value, allow_private: bool) -> Result<Server, String> {
    let (name, entry) = entry_of(row).map_err(|(field, why)| format!("{field}: {why}"))?;
    if !allow_private
        && let Some(why) = entry
            .url
            .as_deref()
            .and_then(|u| crate::agents::address::refused_unless(u, "mcp_allow_private_urls"))
    {
        return Err(why);
    }
    let mut server = Server::new(&name, &entry).map_err(|e| e.to_string())?;
    server.id = row
        .get("server_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    server.version = row.get("updated_at").map(Value::to_string);
    Ok(server)
}

impl Mcp {
    /// Read every stored server and serve them beside the config's.
    pub async fn reload(
        &self,
        store: &Store,
        at: Option<&AtRest>,
        allow_private: bool,
    ) -> Result<(), McpError> {
        let rows = store.query(Query::ListMcpServers, &[]).await?;
        let mut servers = Vec::with_capacity(rows.len());
        for row in &rows {
            let v: Value = row.try_get(0).map_err(StoreError::from)?;
            let id = v.get("server_id").cloned().unwrap_or_default();
            match opened(at, &v).and_then(|v| server_of(&v, allow_private)) {
                Ok(s) => servers.push(s),
                Err(e) => {
                    tracing::warn!(server_id = %id, error = %e, "an MCP server in the database is not served")
                }
            }
        }
        self.set_stored(servers);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_entries_and_bad_rows_are_refused() {
        let row = json!({
            "server_id": "id1", "server_name": "wiki", "url": "https://mcp.example.com/mcp",
            "transport": "http", "auth_type": "bearer_token",
            "credentials": {"auth_value": "t0k"}, "static_headers": {"x-a": "b"},
            "mcp_access_groups": ["g"], "allowed_tools": ["echo"],
            "mcp_info": {"mcp_server_cost_info": {"default_cost_per_query": 0.5}},
        });
        let (name, e) = entry_of(&row).unwrap();
        assert_eq!(name, "wiki");
        assert_eq!(e.transport, Transport::Http);
        assert_eq!(e.auth_value.as_deref(), Some("t0k"));
        assert_eq!(e.access_groups, ["g"]);
        assert_eq!(e.mcp_info.mcp_server_cost_info.of("x"), 0.5);
        let s = server_of(&row, false).unwrap();
        assert_eq!(s.id.as_deref(), Some("id1"));
        let bad = |patch: Value| {
            let mut r = row.clone();
            r.as_object_mut()
                .unwrap()
                .extend(patch.as_object().unwrap().clone());
            entry_of(&r).err().map(|(f, _)| f)
        };
        assert_eq!(bad(json!({"server_name": "my-wiki"})), Some("server_name"));
        assert_eq!(bad(json!({"transport": "stdio"})), Some("transport"));
        assert_eq!(
            bad(json!({"transport": "carrier-pigeon"})),
            Some("transport")
        );
        assert_eq!(bad(json!({"url": "ftp://x"})), Some("url"));
        assert_eq!(bad(json!({"auth_type": "oauth9"})), Some("auth_type"));
        assert_eq!(bad(json!({"command": "python"})), Some("transport"));
        let private = json!({"server_name": "p", "url": "http://169.254.169.254/mcp"});
        assert!(server_of(&private, false).is_err());
        assert!(server_of(&private, true).is_ok());
    }

    #[test]
    fn headers_and_credentials_are_sealed_and_opened() {
        let at = AtRest::new("salt-key-for-tests").unwrap();
        let h = json!({"x-secret": "v1"});
        let sealed = seal_headers(Some(&at), &h).unwrap();
        assert_ne!(sealed["x-secret"], "v1");
        let row = json!({
            "static_headers": sealed,
            "credentials": at_rest::seal_params(Some(&at), &json!({"auth_value": "t"})).unwrap(),
        });
        let open = opened(Some(&at), &row).unwrap();
        assert_eq!(open["static_headers"]["x-secret"], "v1");
        assert_eq!(open["credentials"]["auth_value"], "t");
        assert!(opened(None, &row).is_err());
    }
}
