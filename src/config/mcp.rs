//! `mcp_servers`: the upstream MCP tool servers the gateway fronts at `/mcp` (LiteLLM's layout:
//! server name -> url, transport, auth, headers, tool filters, cost per call, access groups).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ConfigError;

/// How the gateway talks to an upstream MCP server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// Streamable HTTP (MCP 2025-03-26 and later): POST JSON-RPC, answers as JSON or SSE.
    #[default]
    #[serde(alias = "streamable_http", alias = "streamable-http")]
    Http,
    /// The older HTTP+SSE transport: `GET` an event stream, POST messages to its `endpoint`.
    Sse,
    /// A local process (`command`, `args`, `env`) speaking newline-delimited JSON-RPC on its
    /// stdin and stdout; served only with `general_settings.mcp_allow_stdio_servers`.
    Stdio,
}

/// How the server's credential is sent (`auth_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthType {
    /// `Authorization: Bearer {value}`
    BearerToken,
    /// `X-API-Key: {value}`
    ApiKey,
    /// `Authorization: Basic {value}`
    Basic,
    /// `Authorization: {value}`
    Authorization,
    /// No credential.
    None,
}

/// `mcp_info.mcp_server_cost_info`: USD per tool call.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CostInfo {
    pub default_cost_per_query: Option<f64>,
    pub tool_name_to_cost_per_query: BTreeMap<String, f64>,
}

impl CostInfo {
    /// The cost of one call of `tool` (its own price, else the default, else 0).
    pub fn of(&self, tool: &str) -> f64 {
        self.tool_name_to_cost_per_query
            .get(tool)
            .copied()
            .or(self.default_cost_per_query)
            .unwrap_or(0.0)
    }
}

/// `mcp_info`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct McpInfo {
    pub server_name: Option<String>,
    pub description: Option<String>,
    pub mcp_server_cost_info: CostInfo,
}

/// One entry of `mcp_servers`. Its `Debug` shows where the server is, never its credential
/// or headers.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct McpServerEntry {
    pub url: Option<String>,
    pub transport: Transport,
    /// Seconds one exchange with the server may take (default 60).
    pub timeout: Option<f64>,
    pub auth_type: Option<AuthType>,
    /// The credential (`os.environ/...` resolved); `authentication_token` is LiteLLM's older name.
    /// Without one, clients may send theirs as `x-mcp-{server}-{header}`.
    #[serde(alias = "authentication_token")]
    pub auth_value: Option<String>,
    /// Headers always sent to the server.
    pub static_headers: BTreeMap<String, String>,
    /// Names of the client's headers passed on to the server (never its gateway key).
    pub extra_headers: Vec<String>,
    /// Shown to admins (also `mcp_info.description`).
    pub description: Option<String>,
    /// Only these tools are served (empty: all).
    pub allowed_tools: Vec<String>,
    /// These tools are never served, even when `allowed_tools` names them.
    pub disallowed_tools: Vec<String>,
    /// `mcp_server_cost_info`: the price of a call.
    pub mcp_info: McpInfo,
    /// Access groups the server belongs to (granted by keys' and teams' `mcp_access_groups`).
    pub access_groups: Vec<String>,
    /// A stdio server's program (looked up on `PATH`).
    pub command: Option<String>,
    /// A stdio server's arguments.
    pub args: Vec<String>,
    /// A stdio server's environment: these variables and `PATH` and `HOME` of the gateway,
    /// nothing else of the gateway's environment.
    pub env: BTreeMap<String, String>,
}

impl std::fmt::Debug for McpServerEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = self.auth_value.as_ref().map(|_| "***");
        f.debug_struct("McpServerEntry")
            .field("url", &self.url)
            .field("transport", &self.transport)
            .field("command", &self.command)
            .field("auth_value", &auth)
            .finish_non_exhaustive()
    }
}

/// LiteLLM's separator between a server's name and its tools' names (`{server}-{tool}`).
pub const TOOL_SEPARATOR: char = '-';

/// Why `name` cannot name a server, if it cannot: letters, digits, `_` and `.` only (no
/// [`TOOL_SEPARATOR`]: it separates server and tool names).
pub fn name_refused(name: &str) -> Option<String> {
    let fine = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    (!fine).then(|| {
        format!(
            "server name '{name}' must be letters, digits, '_' or '.' (no '{TOOL_SEPARATOR}': it separates server and tool names)"
        )
    })
}

/// Why entry `s` cannot be served, if it cannot: the field at fault and the reason (stdio
/// unless `allow_stdio`, a stdio entry without its command, a missing or non-http(s) URL, a
/// bad timeout or static header).
pub fn entry_refused(s: &McpServerEntry, allow_stdio: bool) -> Option<(&'static str, String)> {
    if let Some(t) = s.timeout
        && !(t.is_finite() && t > 0.0)
    {
        return Some((
            "timeout",
            format!("must be a positive number of seconds, got {t}"),
        ));
    }
    if s.transport == Transport::Stdio || s.command.is_some() {
        if !allow_stdio {
            return Some((
                "transport",
                "stdio MCP servers (local processes) are not served unless general_settings.mcp_allow_stdio_servers is true; use an http or sse server".into(),
            ));
        }
        if s.transport != Transport::Stdio {
            return Some((
                "command",
                "a command is only run with transport: stdio".into(),
            ));
        }
        if s.command.as_deref().is_none_or(|c| c.trim().is_empty()) {
            return Some(("command", "is required with transport: stdio".into()));
        }
        return None;
    }
    let Some(url) = s.url.as_deref() else {
        return Some(("url", "is required".into()));
    };
    if !(url.starts_with("http://") || url.starts_with("https://"))
        || url.parse::<http::Uri>().is_err()
    {
        return Some(("url", format!("'{url}' is not an http(s) URL")));
    }
    for (h, v) in &s.static_headers {
        if http::HeaderName::from_bytes(h.as_bytes()).is_err()
            || http::HeaderValue::from_str(v).is_err()
        {
            return Some(("static_headers", format!("'{h}' is not a valid header")));
        }
    }
    None
}

/// `mcp_settings`: how the gateway runs the MCP tools an LLM request names
/// (`crate::pipeline::mcp_tools`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct McpSettings {
    /// Rounds of tool calls run for one request (each followed by a model call); a model still
    /// asking for tools after them is answered with an error.
    pub max_tool_rounds: u32,
}

/// Most tool rounds `max_tool_rounds` may allow.
pub const MAX_TOOL_ROUNDS: u32 = 100;

impl Default for McpSettings {
    fn default() -> Self {
        Self {
            max_tool_rounds: 10,
        }
    }
}

impl McpSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_TOOL_ROUNDS).contains(&self.max_tool_rounds) {
            return Err(ConfigError::Invalid {
                path: "mcp_settings.max_tool_rounds".into(),
                message: format!(
                    "must be between 1 and {MAX_TOOL_ROUNDS}, got {}",
                    self.max_tool_rounds
                ),
            });
        }
        Ok(())
    }
}

/// Check every entry: a name without the separator, an http(s) URL or (when `allow_stdio`) a
/// stdio command.
pub fn validate(
    servers: &BTreeMap<String, McpServerEntry>,
    allow_stdio: bool,
) -> Result<(), ConfigError> {
    for (name, s) in servers {
        let path = format!("mcp_servers.{name}");
        if let Some(message) = name_refused(name) {
            return Err(ConfigError::Invalid { path, message });
        }
        if let Some((field, message)) = entry_refused(s, allow_stdio) {
            return Err(ConfigError::Invalid {
                path: format!("{path}.{field}"),
                message,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Loaded;

    #[test]
    fn reads_litellm_entries() {
        let l = Loaded::from_yaml(
            "mcp_servers:\n  wiki:\n    url: http://127.0.0.1:9/mcp\n    auth_type: bearer_token\n    auth_value: t0k\n    allowed_tools: [a]\n    mcp_info:\n      mcp_server_cost_info:\n        default_cost_per_query: 0.5\n        tool_name_to_cost_per_query: {a: 2.0}\n  old:\n    url: http://127.0.0.1:9/sse\n    transport: sse\n",
        )
        .unwrap();
        let s = &l.config.mcp_servers["wiki"];
        assert_eq!(s.transport, Transport::Http);
        assert_eq!(s.auth_type, Some(AuthType::BearerToken));
        assert_eq!(s.mcp_info.mcp_server_cost_info.of("a"), 2.0);
        assert_eq!(s.mcp_info.mcp_server_cost_info.of("b"), 0.5);
        assert_eq!(l.config.mcp_servers["old"].transport, Transport::Sse);
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        let shown = format!("{s:?}");
        assert!(!shown.contains("t0k") && shown.contains("***"), "{shown}");
    }

    #[test]
    fn refuses_stdio_bad_names_and_urls() {
        let err = |y: &str| Loaded::from_yaml(y).unwrap_err().to_string();
        let e = err("mcp_servers:\n  local:\n    transport: stdio\n    command: python\n");
        assert!(
            e.contains("mcp_servers.local") && e.contains("mcp_allow_stdio_servers"),
            "{e}"
        );
        let allowed = "general_settings:\n  mcp_allow_stdio_servers: true\nmcp_servers:\n";
        let e = err(&format!("{allowed}  local:\n    command: python\n"));
        assert!(e.contains("mcp_servers.local.command"), "{e}");
        let e = err(&format!("{allowed}  local:\n    transport: stdio\n"));
        assert!(e.contains("mcp_servers.local.command"), "{e}");
        let l = Loaded::from_yaml(&format!(
            "{allowed}  local:\n    transport: stdio\n    command: python\n    args: [s.py]\n    env: {{TOKEN: t0k}}\n"
        ))
        .unwrap();
        let s = &l.config.mcp_servers["local"];
        assert_eq!((s.args.len(), s.env["TOKEN"].as_str()), (1, "t0k"));
        assert!(!format!("{s:?}").contains("t0k"));
        let e = err("mcp_servers:\n  my-server:\n    url: http://x/mcp\n");
        assert!(e.contains("mcp_servers.my-server"), "{e}");
        let e = err("mcp_servers:\n  s:\n    url: ftp://x\n");
        assert!(e.contains("mcp_servers.s.url"), "{e}");
    }

    #[test]
    fn mcp_settings_rounds_bounded() {
        let l = Loaded::from_yaml("mcp_settings:\n  max_tool_rounds: 3\n").unwrap();
        assert_eq!(l.config.mcp_settings.max_tool_rounds, 3);
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        let l = Loaded::from_yaml("").unwrap();
        assert_eq!(l.config.mcp_settings.max_tool_rounds, 10);
        for bad in ["0", "101"] {
            let e = Loaded::from_yaml(&format!("mcp_settings:\n  max_tool_rounds: {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("mcp_settings.max_tool_rounds"), "{e}");
        }
    }
}
