//! The MCP gateway's routes over [`crate::mcp`]: `/mcp` and `/mcp/{server}` (Streamable
//! HTTP). POST one JSON-RPC message, answered as JSON (`initialize`, `ping`, `tools/*`,
//! `prompts/list`, `prompts/get`, `resources/list`, `resources/templates/list`,
//! `resources/read`; a notification or a response: 202);
//! `DELETE` ends the session; `GET` (a server stream) is not offered: 405. The caller is
//! authenticated by its gateway key first. Errors of the envelope answer 400 with a JSON-RPC
//! error; an unknown session 404; everything else a JSON-RPC error in a 200, as the spec asks.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::join_all;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::auth::Principal;
use crate::body::Body;
use crate::config::mcp::TOOL_SEPARATOR;
use crate::error::{GatewayError, json_response};
use crate::mcp::access::Permits;
use crate::mcp::client::{
    Conn, Reply, SESSION_HEADER, UpstreamError, VERSION_HEADER, error_message,
};
use crate::mcp::jsonrpc::{
    self, INTERNAL_ERROR, INVALID_PARAMS, Incoming, METHOD_NOT_FOUND, REFUSED, RpcError,
};
use crate::mcp::sessions::Session;
use crate::mcp::{Mcp, Server};
use crate::request_body::RequestBody;
use crate::spend::record::ToolCall;
use crate::state::AppState;

/// Protocol versions the gateway speaks, newest first.
pub const VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// Pages of `tools/list` read from one server.
const MAX_PAGES: usize = 20;
/// The largest message a client may POST.
const MAX_MESSAGE: usize = 4 << 20;

fn rpc_response(status: StatusCode, body: &Value) -> Response<Body> {
    json_response(status, Bytes::from(body.to_string()))
}

fn error_response(status: StatusCode, e: &RpcError) -> Response<Body> {
    rpc_response(status, &e.body())
}

/// A list the gateway gathers from every server.
struct Listing {
    method: &'static str,
    /// The member of the answer holding the items.
    member: &'static str,
    /// Tools: filtered by the caller's tool permissions.
    tools: bool,
}

const fn listing(method: &'static str, member: &'static str, tools: bool) -> Listing {
    Listing {
        method,
        member,
        tools,
    }
}

const TOOLS: Listing = listing("tools/list", "tools", true);
const PROMPTS: Listing = listing("prompts/list", "prompts", false);
const RESOURCES: Listing = listing("resources/list", "resources", false);
const TEMPLATES: Listing = listing("resources/templates/list", "resourceTemplates", false);

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
    let permits = Permits::of(principal, &mcp.servers);
    let listed: Option<Vec<&str>> = headers
        .get("x-mcp-servers")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        });
    let servers = mcp
        .servers
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

    /// One server's items of a list (`tools/list`, `prompts/list`, `resources/list`,
    /// `resources/templates/list`; every page) that the caller may use, their names
    /// `{server}-{name}`.
    async fn server_items(
        &self,
        server: &Server,
        list: &Listing,
    ) -> Result<Vec<Value>, UpstreamError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let params = cursor
                .as_ref()
                .and_then(|c| RawValue::from_string(json!({"cursor": c}).to_string()).ok());
            let reply = self.request(server, list.method, params.as_deref()).await?;
            let page: Value = match reply {
                Ok(r) => serde_json::from_str(r.get()).unwrap_or(Value::Null),
                Err(e) => return Err(UpstreamError::Protocol(error_message(&e))),
            };
            for mut item in page[list.member].as_array().cloned().unwrap_or_default() {
                let Some(name) = item.get("name").and_then(Value::as_str).map(str::to_string)
                else {
                    continue;
                };
                if list.tools && !self.scope.permits.tool(server, &name) {
                    continue;
                }
                item["name"] = json!(format!("{}{TOOL_SEPARATOR}{name}", server.name));
                out.push(item);
            }
            cursor = page
                .get("nextCursor")
                .and_then(Value::as_str)
                .map(str::to_string);
            if cursor.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// A list of every server's items; a server that fails is left out (logged).
    async fn list(&self, id: &Value, list: &Listing) -> Response<Body> {
        let all = join_all(
            self.scope
                .servers
                .iter()
                .map(|s| self.server_items(s, list)),
        )
        .await;
        let mut items = Vec::new();
        for (server, got) in self.scope.servers.iter().zip(all) {
            match got {
                Ok(t) => items.extend(t),
                Err(e) => {
                    tracing::warn!(server = %server.name, error = %e, method = list.method, "MCP server left out of a list")
                }
            }
        }
        result(id, json!({ list.member: items }))
    }

    /// `prompts/get`: the owning server's prompt (named `{server}-{prompt}`).
    async fn get_prompt(&self, id: &Value, params: Option<&RawValue>) -> Response<Body> {
        let fail = |message: String| {
            error_response(StatusCode::OK, &RpcError::new(id, INVALID_PARAMS, message))
        };
        let mut params: Map<String, Value> = match params.map(|p| serde_json::from_str(p.get())) {
            Some(Ok(p)) => p,
            _ => return fail("Invalid params: expected an object".into()),
        };
        let full = (params.get("name").and_then(Value::as_str))
            .unwrap_or_default()
            .to_string();
        let found = full.split_once(TOOL_SEPARATOR).and_then(|(server, name)| {
            let s = self.scope.servers.iter().find(|s| s.name == server)?;
            Some((s.clone(), name.to_string()))
        });
        let Some((server, name)) = found else {
            return fail(format!("Unknown prompt: {full}"));
        };
        params.insert("name".into(), json!(name));
        let forwarded = RawValue::from_string(Value::Object(params).to_string()).ok();
        self.relay(id, &server, "prompts/get", forwarded.as_deref())
            .await
    }

    /// `resources/read`: the server listing the resource (the only server in scope when none
    /// lists it: a templated URI).
    async fn read_resource(&self, id: &Value, params: Option<&RawValue>) -> Response<Body> {
        let fail = |message: String| {
            error_response(StatusCode::OK, &RpcError::new(id, INVALID_PARAMS, message))
        };
        let uri = params
            .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
            .and_then(|p| p.get("uri")?.as_str().map(str::to_string));
        let Some(uri) = uri else {
            return fail("Invalid params: uri is required".into());
        };
        let all = join_all(
            self.scope
                .servers
                .iter()
                .map(|s| self.server_items(s, &RESOURCES)),
        )
        .await;
        let listed = |got: &Result<Vec<Value>, UpstreamError>| {
            got.as_ref()
                .is_ok_and(|items| items.iter().any(|r| r["uri"] == uri.as_str()))
        };
        let owner = (self.scope.servers.iter().zip(all))
            .find(|(_, got)| listed(got))
            .map(|(s, _)| s.clone())
            .or_else(|| match self.scope.servers.as_slice() {
                [only] => Some(only.clone()),
                _ => None,
            });
        let Some(server) = owner else {
            return fail(format!("Unknown resource: {uri}"));
        };
        self.relay(id, &server, "resources/read", params).await
    }

    /// Send one request to `server` and answer with its result or error.
    async fn relay(
        &self,
        id: &Value,
        server: &Server,
        method: &str,
        params: Option<&RawValue>,
    ) -> Response<Body> {
        match self.request(server, method, params).await {
            Ok(Ok(res)) => answer_raw(id, &res),
            Ok(Err(err)) => rpc_response(
                StatusCode::OK,
                &json!({"jsonrpc": "2.0", "id": id, "error": err}),
            ),
            Err(e) => error_response(
                StatusCode::OK,
                &RpcError::new(
                    id,
                    INTERNAL_ERROR,
                    format!("MCP server '{}': {e}", server.name),
                ),
            ),
        }
    }

    /// `tools/call`: the owning server runs the tool; one SpendLogs row.
    async fn call_tool(&self, id: &Value, params: Option<&RawValue>) -> Response<Body> {
        let fail = |code: i64, message: String| {
            error_response(StatusCode::OK, &RpcError::new(id, code, message))
        };
        let mut params: Map<String, Value> = match params.map(|p| serde_json::from_str(p.get())) {
            Some(Ok(p)) => p,
            _ => {
                return fail(
                    INVALID_PARAMS,
                    "Invalid params: expected an object with a name".into(),
                );
            }
        };
        let Some(full) = params
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return fail(INVALID_PARAMS, "Invalid params: name is required".into());
        };
        let found = full.split_once(TOOL_SEPARATOR).and_then(|(server, tool)| {
            let s = self.scope.servers.iter().find(|s| s.name == server)?;
            self.scope
                .permits
                .tool(s, tool)
                .then(|| (s.clone(), tool.to_string()))
        });
        let Some((server, tool)) = found else {
            // unknown and forbidden tools alike: the caller cannot tell them apart
            return fail(INVALID_PARAMS, format!("Unknown tool: {full}"));
        };
        let held = match self.rate_limit(&server.name).await {
            Ok(h) => h,
            Err(e) => return fail(REFUSED, e.to_string()),
        };
        let side = crate::pipeline::Side {
            call_type: "call_mcp_tool",
            endpoint: "/mcp",
            model: &full,
            dep: None,
            model_access: false,
            rate_limited: false,
        };
        let mut rec = match crate::pipeline::side_call(self.state, self.principal, side).await {
            Ok(r) => r,
            Err(e) => return fail(REFUSED, refusal_text(&e)),
        };
        rec.fixed_cost = Some(server.entry.mcp_info.mcp_server_cost_info.of(&tool));
        rec.limits = held;
        if let Some((_, Some(row))) = &mut rec.spend {
            row.provider_model = Some(format!("MCP: {full}"));
            row.tool = Some(Box::new(ToolCall {
                name: tool.clone(),
                mcp_server_name: server.name.clone(),
                namespaced_tool_name: format!("{}/{tool}", server.name),
            }));
        }
        params.insert("name".into(), json!(tool));
        let forwarded = RawValue::from_string(Value::Object(params).to_string()).ok();
        let got = self
            .request(&server, "tools/call", forwarded.as_deref())
            .await;
        match got {
            Ok(Ok(res)) => {
                rec.status = 200;
                answer_raw(id, &res)
            }
            Ok(Err(err)) => {
                rec.status = 400;
                rec.fixed_cost = Some(0.0);
                rec.error = Some(format!(
                    "MCP server '{}': {}",
                    server.name,
                    error_message(&err)
                ));
                rpc_response(
                    StatusCode::OK,
                    &json!({"jsonrpc": "2.0", "id": id, "error": err}),
                )
            }
            Err(e) => {
                let message = format!("MCP server '{}': {e}", server.name);
                rec.status = match e {
                    UpstreamError::Timeout(_) => 504,
                    _ => 502,
                };
                rec.fixed_cost = Some(0.0);
                rec.error = Some(message.clone());
                fail(INTERNAL_ERROR, message)
            }
        }
    }

    /// The key's and team's `mcp_rpm_limit` for `server` (LiteLLM keeps it in metadata).
    async fn rate_limit(
        &self,
        server: &str,
    ) -> Result<Option<crate::limits::Held>, crate::limits::LimitError> {
        let Some(k) = self.principal.key() else {
            return Ok(None);
        };
        let rpm = |meta: &Value| meta.get("mcp_rpm_limit")?.get(server)?.as_u64();
        let mut ds = Vec::new();
        if let Some(r) = rpm(&k.key.metadata) {
            ds.push(crate::limits::Descriptor::plain(
                "mcp_server_per_key",
                format!("{}:{server}", k.key.token),
                Some(r),
                None,
                None,
            ));
        }
        if let Some(t) = &k.team
            && let Some(r) = rpm(&t.metadata)
        {
            ds.push(crate::limits::Descriptor::plain(
                "mcp_server_per_team",
                format!("{}:{server}", t.team_id),
                Some(r),
                None,
                None,
            ));
        }
        if ds.is_empty() {
            return Ok(None);
        }
        self.state.limits.acquire(ds, 0).await
    }
}

/// A refusal's message (budget, blocked key, ...), as the client would read it.
fn refusal_text(e: &GatewayError) -> String {
    e.to_string()
}
