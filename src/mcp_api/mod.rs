//! The MCP gateway's routes over [`crate::mcp`]: `/mcp` and `/mcp/{server}` (Streamable
//! HTTP). POST one JSON-RPC message, answered as JSON (`initialize`, `ping`, `tools/*`,
//! `prompts/list`, `prompts/get`, `resources/list`, `resources/templates/list`,
//! `resources/read`; a notification or a response: 202);
//! `DELETE` ends the session; `GET` (a server stream) is not offered: 405. The caller is
//! authenticated by its gateway key first. Errors of the envelope answer 400 with a JSON-RPC
//! error; an unknown session 404; everything else a JSON-RPC error in a 200, as the spec asks.

mod lists;
pub mod rest;
mod tools;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::body::Body;
use crate::error::{GatewayError, json_response};
use crate::mcp::access::Permits;
use crate::mcp::client::{Conn, Reply, SESSION_HEADER, UpstreamError, VERSION_HEADER};
use crate::mcp::jsonrpc::{self, Incoming, METHOD_NOT_FOUND, RpcError};
use crate::mcp::sessions::Session;
use crate::mcp::{Mcp, Server};
use crate::request_body::RequestBody;
use crate::state::AppState;
use lists::{PROMPTS, RESOURCES, TEMPLATES, TOOLS};

/// Protocol versions the gateway speaks, newest first.
pub const VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// The largest message a client may POST.
const MAX_MESSAGE: usize = 4 << 20;

fn rpc_response(status: StatusCode, body: &Value) -> Response<Body> {
    json_response(status, Bytes::from(body.to_string()))
}

fn error_response(status: StatusCode, e: &RpcError) -> Response<Body> {
    rpc_response(status, &e.body())
}

/// A result that is already JSON, as the answer to `id`.
fn answer_raw(id: &Value, res: &RawValue) -> Response<Body> {
    let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{}}}"#, res.get());
    json_response(StatusCode::OK, Bytes::from(body))
}

fn result(id: &Value, result: Value) -> Response<Body> {
    rpc_response(
        StatusCode::OK,
        &json!({"jsonrpc": "2.0", "id": id, "result": result}),
    )
}

/// The caller's identity a session is bound to.
fn owner(p: &Principal) -> String {
    match p.key() {
        Some(k) => k.key.token.clone(),
        None => "admin".into(),
    }
}

/// What one request may reach: the servers it sees and what it may use of them.
struct Scope {
    servers: Vec<Arc<Server>>,
    permits: Permits,
}

/// The servers a request sees: those the caller may use, narrowed to the path's server and
/// to the `x-mcp-servers` list.
fn scope(
    mcp: &Mcp,
    principal: &Principal,
    path_server: Option<&str>,
    headers: &HeaderMap,
) -> Scope {
    let all = mcp.servers();
    let permits = Permits::of(principal, &all);
    let listed: Option<Vec<&str>> = headers
        .get("x-mcp-servers")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        });
    let servers = all
        .iter()
        .filter(|s| permits.server(&s.name))
        .filter(|s| path_server.is_none_or(|p| p == s.name))
        .filter(|s| listed.as_ref().is_none_or(|l| l.contains(&s.name.as_str())))
        .cloned()
        .collect();
    Scope { servers, permits }
}

/// Serve `/mcp` (`server`: `None`) or `/mcp/{server}`.
pub async fn serve(
    state: &AppState,
    server: Option<String>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let principal = state.auth.caller_of(&req).await?;
    if let Some(name) = &server
        && state.mcp.server(name).is_none()
    {
        return Err(GatewayError::NotFound(format!("MCP server `{name}`")));
    }
    let session_id = req
        .headers()
        .get(&SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let who = owner(&principal);
    match *req.method() {
        Method::DELETE => {
            let ended = session_id
                .as_deref()
                .is_some_and(|id| state.mcp.sessions.end(id, &who));
            if !ended {
                return Ok(session_not_found());
            }
            Ok(json_response(StatusCode::OK, Bytes::from_static(b"{}")))
        }
        Method::POST => {
            if let Some(v) = req.headers().get(&VERSION_HEADER)
                && !VERSIONS.iter().any(|s| v.as_bytes() == s.as_bytes())
            {
                let e = RpcError::new(
                    &Value::Null,
                    jsonrpc::INVALID_REQUEST,
                    format!(
                        "Bad Request: unsupported protocol version (supported: {})",
                        VERSIONS.join(", ")
                    ),
                );
                return Ok(error_response(StatusCode::BAD_REQUEST, &e));
            }
            let (parts, body) = req.into_parts();
            let limit = state.max_body_bytes.min(MAX_MESSAGE);
            let raw = crate::pipeline::parse::read_declared(&parts.headers, body, limit).await?;
            let msg = match jsonrpc::parse(&raw) {
                Ok(m) => m,
                Err(e) => return Ok(error_response(StatusCode::BAD_REQUEST, &e)),
            };
            let Incoming::Request { id, method, params } = msg else {
                // notifications and responses: accepted, nothing to answer
                return Ok(accepted());
            };
            if method == "initialize" {
                return Ok(initialize(state, &principal, &id, params.as_deref()));
            }
            let session = match session_id {
                Some(sid) => match state.mcp.sessions.get(&sid, &who) {
                    Some(s) => Some(s),
                    None => return Ok(session_not_found()),
                },
                None => None,
            };
            let scope = scope(&state.mcp, &principal, server.as_deref(), &parts.headers);
            let call = Call {
                state,
                principal: &principal,
                session: session.as_deref(),
                headers: &parts.headers,
                scope: &scope,
            };
            Ok(match method.as_str() {
                "ping" => result(&id, json!({})),
                "tools/list" => call.list(&id, &TOOLS).await,
                "tools/call" => call.call_tool(&id, params.as_deref()).await,
                "prompts/list" => call.list(&id, &PROMPTS).await,
                "prompts/get" => call.get_prompt(&id, params.as_deref()).await,
                "resources/list" => call.list(&id, &RESOURCES).await,
                "resources/templates/list" => call.list(&id, &TEMPLATES).await,
                "resources/read" => call.read_resource(&id, params.as_deref()).await,
                other => error_response(
                    StatusCode::OK,
                    &RpcError::new(&id, METHOD_NOT_FOUND, format!("Method not found: {other}")),
                ),
            })
        }
        _ => {
            let mut r = json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                Bytes::from_static(
                    br#"{"error":{"message":"the gateway offers no server-initiated stream: POST messages, DELETE to end a session","type":"invalid_request_error","param":null,"code":"405"}}"#,
                ),
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
            Ok(r)
        }
    }
}

fn accepted() -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::ACCEPTED;
    r
}

fn session_not_found() -> Response<Body> {
    let e = RpcError::new(&Value::Null, -32001, "Session not found");
    error_response(StatusCode::NOT_FOUND, &e)
}

/// `initialize`: the client's version when the gateway speaks it, else the newest; a new
/// session.
fn initialize(
    state: &AppState,
    principal: &Principal,
    id: &Value,
    params: Option<&RawValue>,
) -> Response<Body> {
    let asked = params
        .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
        .and_then(|p| p.get("protocolVersion")?.as_str().map(str::to_string));
    let version = asked
        .filter(|v| VERSIONS.contains(&v.as_str()))
        .unwrap_or_else(|| VERSIONS[0].to_string());
    let session = state.mcp.sessions.open(owner(principal), version.clone());
    let mut r = result(
        id,
        json!({
            "protocolVersion": version,
            "capabilities": {
                "tools": {"listChanged": false},
                "prompts": {"listChanged": false},
                "resources": {"subscribe": false, "listChanged": false},
            },
            "serverInfo": {"name": "tianji", "version": env!("CARGO_PKG_VERSION")},
            "instructions": "Tools of the MCP servers this key may use, named {server}-{tool}.",
        }),
    );
    if let Ok(v) = HeaderValue::from_str(&session.id) {
        r.headers_mut().insert(SESSION_HEADER.clone(), v);
    }
    r
}

/// One request's context.
struct Call<'a> {
    state: &'a AppState,
    principal: &'a Principal,
    session: Option<&'a Session>,
    headers: &'a HeaderMap,
    scope: &'a Scope,
}

/// An upstream session: the client session's (kept), or one for this request only (closed
/// after).
struct Upstream {
    conn: Arc<Conn>,
    kept: bool,
}

impl Upstream {
    async fn done(self) {
        if !self.kept {
            self.conn.close().await;
        }
    }
}

impl Call<'_> {
    async fn upstream(&self, server: &Server) -> Result<Upstream, UpstreamError> {
        let open = || {
            Conn::open(
                server.target.clone(),
                self.state.client.clone(),
                server.forwarded(self.headers),
            )
        };
        match self.session {
            Some(s) => {
                let slot = s.slot(&server.name);
                let conn = slot
                    .get_or_try_init(|| async { open().await.map(Arc::new) })
                    .await?;
                Ok(Upstream {
                    conn: conn.clone(),
                    kept: true,
                })
            }
            None => Ok(Upstream {
                conn: Arc::new(open().await?),
                kept: false,
            }),
        }
    }

    /// Send a request to `server`, on a fresh upstream session once when the server ended
    /// the one kept.
    async fn request(
        &self,
        server: &Server,
        method: &str,
        params: Option<&RawValue>,
    ) -> Result<Reply, UpstreamError> {
        let up = self.upstream(server).await?;
        let got = up.conn.request(method, params).await;
        let kept = up.kept;
        up.done().await;
        match got {
            Err(UpstreamError::SessionGone) if kept => {
                if let Some(s) = self.session {
                    s.forget(&server.name);
                }
                let up = self.upstream(server).await?;
                let got = up.conn.request(method, params).await;
                up.done().await;
                got
            }
            Err(e) => {
                if let (true, Some(s)) = (kept, self.session)
                    && matches!(e, UpstreamError::Closed | UpstreamError::Connect(_))
                {
                    // a dead connection is not reused
                    s.forget(&server.name);
                }
                Err(e)
            }
            ok => ok,
        }
    }
}
