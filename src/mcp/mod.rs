//! The MCP gateway: upstream MCP tool servers (the config's `mcp_servers`, and those registered
//! in `TianjiLLM_MCPServerTable`: [`stored`]) served to clients through
//! one MCP endpoint (`/mcp`, Streamable HTTP) with the gateway's keys. `tools/list` gathers the
//! tools of every server the caller may use, named `{server}-{tool}`; `tools/call` goes to the
//! owning server. A client session (`Mcp-Session-Id`) opens an upstream session per server on
//! first use and ends them when it ends or idles out.
//!
//! [`jsonrpc`]: the client's messages; [`client`] (Streamable HTTP), [`legacy`] (HTTP+SSE) and
//! [`stdio`] (local processes): the gateway as an upstream client; [`sse`]: event streams; [`access`]: who may use which
//! server and tool; [`sessions`]: client sessions. The HTTP routes are `crate::mcp_api`.
//!
//! The JSON-RPC envelope is our own rather than the `rmcp` crate's model types: the gateway
//! reads a handful of members (`id`, `method`, a tool's `name`, `tools`, `nextCursor`) and
//! forwards the rest as raw JSON, so typed MCP messages would only add parsing (and build
//! time) on the path of every call.

pub mod access;
pub mod client;
pub mod jsonrpc;
pub mod legacy;
pub mod listing;
pub mod sessions;
pub mod sse;
pub mod stdio;
pub mod stored;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue, Uri, header};

use crate::config::mcp::{AuthType, McpServerEntry, Transport};
pub use client::{Conn, Target, UpstreamError};

/// How long one upstream call may take without `timeout` (seconds).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the MCP servers could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("mcp_servers.{server}: {message}")]
    Invalid { server: String, message: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// One upstream server as the gateway serves it.
#[derive(Debug)]
pub struct Server {
    pub name: String,
    /// `server_id` of a server registered in the database (`None`: from the config).
    pub id: Option<String>,
    /// A database server's `updated_at`: an unchanged row keeps its server (and sessions).
    pub version: Option<String>,
    /// Its config entry: tool lists, access groups, cost per call.
    pub entry: McpServerEntry,
    pub target: Arc<Target>,
    /// Client headers passed on to the server.
    pub extra_headers: Vec<HeaderName>,
}

/// Headers of a client never passed on, whatever `extra_headers` says: its credentials
/// ([`crate::secrets::CREDENTIAL_HEADERS`]) and its session with the gateway.
fn never_forwarded(h: &HeaderName) -> bool {
    crate::secrets::CREDENTIAL_HEADERS.contains(&h.as_str())
        || h == client::SESSION_HEADER
        || h == client::VERSION_HEADER
}

fn sensitive(v: &str) -> Result<HeaderValue, String> {
    let mut v = HeaderValue::from_str(v).map_err(|_| "a header value is not valid".to_string())?;
    v.set_sensitive(true);
    Ok(v)
}

impl Server {
    /// A server from its config entry.
    pub fn new(name: &str, e: &McpServerEntry) -> Result<Self, McpError> {
        let bad = |message: String| McpError::Invalid {
            server: name.to_string(),
            message,
        };
        let url: Uri = match e.transport {
            Transport::Stdio => Uri::default(),
            _ => (e.url.as_deref().unwrap_or_default().parse())
                .map_err(|_| bad("url is not a URL".into()))?,
        };
        let process = (e.transport == Transport::Stdio).then(|| stdio::Process {
            command: e.command.clone().unwrap_or_default(),
            args: e.args.clone(),
            env: e.env.clone().into_iter().collect(),
        });
        let mut headers = HeaderMap::new();
        for (k, v) in &e.static_headers {
            let k = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| bad(format!("bad header name {k}")))?;
            headers.insert(k, sensitive(v).map_err(bad)?);
        }
        let value = e.auth_value.as_deref().unwrap_or_default();
        let auth = match e.auth_type {
            Some(AuthType::BearerToken) => Some((header::AUTHORIZATION, format!("Bearer {value}"))),
            Some(AuthType::Basic) => {
                // `user:password` is encoded; an already encoded value is sent as it is
                let v = if value.contains(':') {
                    base64::engine::general_purpose::STANDARD.encode(value)
                } else {
                    value.to_string()
                };
                Some((header::AUTHORIZATION, format!("Basic {v}")))
            }
            Some(AuthType::Authorization) => Some((header::AUTHORIZATION, value.to_string())),
            Some(AuthType::ApiKey) => {
                Some((HeaderName::from_static("x-api-key"), value.to_string()))
            }
            Some(AuthType::None) | None => None,
        };
        if let Some((k, v)) = auth {
            headers.insert(k, sensitive(&v).map_err(bad)?);
        }
        let extra_headers = e
            .extra_headers
            .iter()
            .filter_map(|h| HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()).ok())
            .filter(|h| !never_forwarded(h))
            .collect();
        let timeout = e
            .timeout
            .and_then(|t| Duration::try_from_secs_f64(t).ok())
            .unwrap_or(DEFAULT_TIMEOUT);
        Ok(Self {
            name: name.to_string(),
            id: None,
            version: None,
            entry: e.clone(),
            target: Arc::new(Target {
                name: name.to_string(),
                url,
                transport: e.transport,
                headers,
                timeout,
                process,
            }),
            extra_headers,
        })
    }

    /// The client's headers this server gets: those `extra_headers` names, and LiteLLM's
    /// per-server headers `x-mcp-{server}-{header}` as `{header}` (how a client sends its own
    /// credential for a server: `x-mcp-github-authorization: Bearer ...`).
    pub fn forwarded(&self, client: &HeaderMap) -> HeaderMap {
        let mut out = HeaderMap::new();
        for h in &self.extra_headers {
            if let Some(v) = client.get(h) {
                out.insert(h.clone(), v.clone());
            }
        }
        let prefix = format!("x-mcp-{}-", self.name.to_ascii_lowercase());
        for (k, v) in client {
            let Some(name) = k.as_str().strip_prefix(&prefix) else {
                continue;
            };
            if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                let mut v = v.clone();
                v.set_sensitive(true);
                out.insert(name, v);
            }
        }
        out
    }

    #[cfg(test)]
    pub fn for_tests(name: &str, groups: &[&str], allowed: &[&str]) -> Self {
        let e = McpServerEntry {
            url: Some("http://127.0.0.1:9/mcp".into()),
            access_groups: groups.iter().map(|s| s.to_string()).collect(),
            allowed_tools: allowed.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        match Self::new(name, &e) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }
}

/// The MCP gateway's state: the servers and the client sessions.
#[derive(Debug, Default)]
pub struct Mcp {
    /// The config's servers (always served; their names win over database ones).
    config: Vec<Arc<Server>>,
    /// Every server served (the config's, then the database's), replaced whole when the set
    /// changes.
    servers: ArcSwap<Vec<Arc<Server>>>,
    pub sessions: Arc<sessions::Sessions>,
}

impl Mcp {
    /// The servers of the config; the session sweeper runs from here on (servers may be
    /// registered in the database later).
    pub fn from_config(
        servers: &std::collections::BTreeMap<String, McpServerEntry>,
    ) -> Result<Self, McpError> {
        let servers: Vec<Arc<Server>> = servers
            .iter()
            .map(|(n, e)| Server::new(n, e).map(Arc::new))
            .collect::<Result<_, _>>()?;
        let sessions = Arc::new(sessions::Sessions::default());
        sessions::Sessions::sweep_in_background(&sessions);
        Ok(Self {
            servers: ArcSwap::from_pointee(servers.clone()),
            config: servers,
            sessions,
        })
    }

    /// The servers served now.
    pub fn servers(&self) -> Arc<Vec<Arc<Server>>> {
        self.servers.load_full()
    }

    /// The server named `name`.
    pub fn server(&self, name: &str) -> Option<Arc<Server>> {
        self.servers.load().iter().find(|s| s.name == name).cloned()
    }

    /// Whether the config has a server named `name`.
    pub fn configured(&self, name: &str) -> bool {
        self.config.iter().any(|s| s.name == name)
    }

    /// Serve the config's servers and `stored` (the database's; one named like a config
    /// server is left out). A stored server whose row did not change stays as it was; the
    /// upstream sessions of servers gone or changed are ended.
    pub fn set_stored(&self, stored: Vec<Server>) {
        let old = self.servers.load_full();
        let mut all = self.config.clone();
        for s in stored {
            if self.configured(&s.name) {
                tracing::warn!(server = %s.name, "an MCP server in the database is named like one of the config; serving the config's");
                continue;
            }
            let same = old.iter().find(|o| {
                o.id.is_some() && o.id == s.id && o.version == s.version && o.name == s.name
            });
            all.push(match same {
                Some(o) => o.clone(),
                None => Arc::new(s),
            });
        }
        self.servers.store(Arc::new(all));
        let now = self.servers.load();
        for o in old.iter() {
            if !now.iter().any(|n| Arc::ptr_eq(n, o)) {
                self.sessions.forget_server(&o.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(name: &str, id: &str, version: &str) -> Server {
        let mut s = Server::for_tests(name, &[], &[]);
        s.id = Some(id.into());
        s.version = Some(version.into());
        s
    }

    #[tokio::test]
    async fn stored_servers_kept_when_unchanged_and_their_sessions_forgotten_when_not() {
        let config = [(
            "wiki".to_string(),
            McpServerEntry {
                url: Some("http://127.0.0.1:9/mcp".into()),
                ..Default::default()
            },
        )];
        let mcp = Mcp::from_config(&config.into()).unwrap();
        mcp.set_stored(vec![
            stored("a", "1", "v1"),
            stored("b", "2", "v1"),
            stored("wiki", "3", "v1"),
        ]);
        let names = |m: &Mcp| {
            m.servers()
                .iter()
                .map(|s| s.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&mcp), ["wiki", "a", "b"], "the config's name wins");
        assert!(mcp.server("wiki").unwrap().id.is_none());
        let (a, b) = (mcp.server("a").unwrap(), mcp.server("b").unwrap());
        let session = mcp
            .sessions
            .open("k".into(), "2025-06-18".into(), None)
            .unwrap();
        let (slot_a, slot_b) = (session.slot("a"), session.slot("b"));
        // a unchanged, b changed, a new one: a's server and session slot stay, b's go
        mcp.set_stored(vec![
            stored("a", "1", "v1"),
            stored("b", "2", "v2"),
            stored("c", "4", "v1"),
        ]);
        assert!(Arc::ptr_eq(&a, &mcp.server("a").unwrap()));
        assert!(!Arc::ptr_eq(&b, &mcp.server("b").unwrap()));
        assert!(Arc::ptr_eq(&slot_a, &session.slot("a")));
        assert!(!Arc::ptr_eq(&slot_b, &session.slot("b")));
        // deleted: gone
        mcp.set_stored(vec![]);
        assert_eq!(names(&mcp), ["wiki"]);
        assert!(!Arc::ptr_eq(&slot_a, &session.slot("a")));
    }

    #[test]
    fn credentials_become_sensitive_headers() {
        let e = McpServerEntry {
            url: Some("http://127.0.0.1:9/mcp".into()),
            auth_type: Some(AuthType::Basic),
            auth_value: Some("u:p".into()),
            static_headers: [("x-team".to_string(), "t1".to_string())].into(),
            extra_headers: vec!["X-Trace".into(), "Authorization".into()],
            ..Default::default()
        };
        let s = Server::new("s", &e).unwrap();
        let auth = &s.target.headers[header::AUTHORIZATION];
        assert_eq!(auth, "Basic dTpw");
        assert!(auth.is_sensitive());
        assert_eq!(s.target.headers["x-team"], "t1");
        let mut client = HeaderMap::new();
        client.insert("x-trace", HeaderValue::from_static("abc"));
        client.insert(
            "authorization",
            HeaderValue::from_static("Bearer sk-gateway"),
        );
        client.insert(
            "x-mcp-s-authorization",
            HeaderValue::from_static("Bearer mine"),
        );
        client.insert(
            "x-mcp-other-authorization",
            HeaderValue::from_static("Bearer no"),
        );
        let f = s.forwarded(&client);
        assert_eq!(f.len(), 2);
        assert_eq!(f["x-trace"], "abc");
        assert_eq!(f["authorization"], "Bearer mine");
    }
}
