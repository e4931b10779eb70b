//! Issue 25 (MCP gateway), first part: upstream tool servers built with the official `mcp`
//! Python SDK (FastMCP, `tests/python/mcp_tool_server.py`, Streamable HTTP and SSE) behind
//! `/mcp`, and the SDK's own client (`tests/python/mcp_client.py`) with gateway keys: what
//! each key lists and may call, both transports, limits per server, SpendLogs rows, servers
//! that hang or die, and bad input; servers registered in the database (`/v1/mcp/server`),
//! also across two instances.

mod calls;
mod errors;
mod llm;
mod servers;
mod transports;
mod wire;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use crate::common::{MASTER_KEY, Resp, TestGateway, eventually, send};

/// An upstream MCP server (`mcp_tool_server.py`) on a free loopback port; killed when dropped.
pub struct ToolServer {
    pub port: u16,
    transport: &'static str,
    child: Child,
}

impl ToolServer {
    /// Start one speaking `transport` (`http` or `sse`) and wait until it accepts connections.
    pub async fn start(transport: &'static str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/mcp_tool_server.py"
        );
        let child = Command::new(crate::it::sdk::python())
            .arg(script)
            .arg(transport)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python with the mcp SDK (run scripts/test to create .venv)");
        let s = Self {
            port,
            transport,
            child,
        };
        let up = eventually(Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
        assert!(up, "mcp_tool_server.py ({transport}) did not start");
        s
    }

    /// The URL the gateway is configured with.
    pub fn url(&self) -> String {
        let path = if self.transport == "sse" {
            "sse"
        } else {
            "mcp"
        };
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for ToolServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run the SDK client against `url` with `key` and `ops`; its JSON line (the `initialize`
/// answer first, then one entry per op).
pub async fn client(url: &str, key: &str, ops: Value) -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/mcp_client.py");
    let args = [url.to_string(), key.to_string(), ops.to_string()];
    let mut cmd = Command::new(crate::it::sdk::python());
    cmd.arg(script).args(args);
    let out = crate::it::sdk::output_within(cmd, Duration::from_secs(120)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "mcp_client.py failed:\n{stdout}\n{stderr}"
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str::<Value>(line)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
        .as_array()
        .cloned()
        .unwrap()
}

/// A new key with `body` (`/key/generate`).
pub async fn key(gw: &TestGateway, body: Value) -> String {
    let r = crate::it::admin_keys::call(gw, Method::POST, "/key/generate", MASTER_KEY, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["key"].as_str().unwrap().to_string()
}

/// POST one JSON-RPC message to `path` with `key` and extra headers.
pub async fn rpc(
    gw: &TestGateway,
    path: &str,
    key: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let auth = format!("Bearer {key}");
    let mut h = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];
    h.extend_from_slice(headers);
    send(
        Method::POST,
        &gw.url(path),
        &h,
        bytes::Bytes::from(body.to_string()),
    )
    .await
}

/// A JSON-RPC request body.
pub fn request(id: u64, method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}
