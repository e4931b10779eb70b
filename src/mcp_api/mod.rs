//! The MCP gateway's routes over [`crate::mcp`]: `/mcp` and `/mcp/{server}` (Streamable
//! HTTP). POST one JSON-RPC message, answered as JSON (`initialize`, `ping`, `tools/*`,
//! `prompts/list`, `prompts/get`, `resources/list`, `resources/templates/list`,
//! `resources/read`; a notification or a response: 202);
//! `DELETE` ends the session; `GET` (a server stream) is not offered: 405. The older SSE
//! transport is [`sse`] (`/mcp/sse`); both call `handle` for a message's method. The caller is
//! authenticated by its gateway key first. Errors of the envelope answer 400 with a JSON-RPC
//! error (413 for a message too large); an unknown session 404; a key over its session cap
//! 429; everything else a JSON-RPC error in a 200, as the spec asks.

mod lists;
pub mod rest;
pub mod sse;
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
use crate::mcp::sessions::{Session, TooManySessions};
use crate::mcp::{Mcp, Server};
use crate::request_body::{RequestBody, RequestError};
use crate::state::AppState;
use lists::{PROMPTS, RESOURCES, TEMPLATES, TOOLS};

/// Protocol versions the gateway speaks, newest first.
pub const VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// The largest message a client may POST.
const MAX_MESSAGE: usize = 4 << 20;

/// The answer to one message: its HTTP status (Streamable HTTP; the SSE transport sends the
/// body as a `message` event) and its JSON-RPC body.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Answer {
    fn into_response(self) -> Response<Body> {
        json_response(self.status, self.body)
    }
}

fn rpc_response(status: StatusCode, body: &Value) -> Answer {
    Answer {
        status,
        body: Bytes::from(body.to_string()),
    }
}

fn error_response(status: StatusCode, e: &RpcError) -> Answer {
    rpc_response(status, &e.body())
}

/// A result that is already JSON, as the answer to `id`.
fn answer_raw(id: &Value, res: &RawValue) -> Answer {
    let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{}}}"#, res.get());
    Answer {
        status: StatusCode::OK,
        body: Bytes::from(body),
    }
}

fn result(id: &Value, result: Value) -> Answer {
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
                return Ok(session_not_found().into_response());
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
                return Ok(error_response(StatusCode::BAD_REQUEST, &e).into_response());
            }
            let (parts, body) = req.into_parts();
            let (id, method, params) = match read_message(state, &parts.headers, body).await? {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(accepted()),
                Err(a) => return Ok(a.into_response()),
            };
            if method == "initialize" {
                let version = agreed_version(params.as_deref());
                let opened = state.mcp.sessions.open(who, version.clone(), None);
                let session = match opened {
                    Ok(s) => s,
                    Err(e) => return Ok(too_many(&id, &e).into_response()),
                };
                let mut r = initialize(&id, &version).into_response();
                if let Ok(v) = HeaderValue::from_str(&session.id) {
                    r.headers_mut().insert(SESSION_HEADER.clone(), v);
                }
                return Ok(r);
            }
            let session = match session_id {
                Some(sid) => match state.mcp.sessions.get(&sid, &who) {
                    Some(s) => Some(s),
                    None => return Ok(session_not_found().into_response()),
                },
                None => None,
            };
            let msg = Message {
                principal: &principal,
                session,
                server: server.as_deref(),
                headers: &parts.headers,
            };
            Ok(handle(state, msg, &id, &method, params.as_deref())
                .await
                .into_response())
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

fn session_not_found() -> Answer {
    let e = RpcError::new(&Value::Null, -32001, "Session not found");
    error_response(StatusCode::NOT_FOUND, &e)
}

fn too_many(id: &Value, e: &TooManySessions) -> Answer {
    let e = RpcError::new(id, jsonrpc::REFUSED, e.to_string());
    error_response(StatusCode::TOO_MANY_REQUESTS, &e)
}

/// A request: its id, method and params.
type Request3 = (Value, String, Option<Box<RawValue>>);

/// Read and parse one POSTed message: a request; `None` for a notification or a response
/// (202, nothing to answer); the error answer of a message too large (413) or not JSON-RPC
/// (400).
async fn read_message(
    state: &AppState,
    headers: &HeaderMap,
    body: RequestBody,
) -> Result<Result<Option<Request3>, Answer>, GatewayError> {
    let limit = state.max_body_bytes.min(MAX_MESSAGE);
    let raw = match crate::pipeline::parse::read_declared(headers, body, limit).await {
        Ok(raw) => raw,
        Err(RequestError::TooLarge { .. }) => {
            let e = RpcError::new(
                &Value::Null,
                jsonrpc::INVALID_REQUEST,
                format!("Invalid Request: a message may be at most {limit} bytes"),
            );
            return Ok(Err(error_response(StatusCode::PAYLOAD_TOO_LARGE, &e)));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(match jsonrpc::parse(&raw) {
        Ok(Incoming::Request { id, method, params }) => Ok(Some((id, method, params))),
        // notifications and responses: accepted, nothing to answer
        Ok(_) => Ok(None),
        Err(e) => Err(error_response(StatusCode::BAD_REQUEST, &e)),
    })
}

/// The version `initialize` agrees: the client's when the gateway speaks it, else the newest.
fn agreed_version(params: Option<&RawValue>) -> String {
    let asked = params
        .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
        .and_then(|p| p.get("protocolVersion")?.as_str().map(str::to_string));
    asked
        .filter(|v| VERSIONS.contains(&v.as_str()))
        .unwrap_or_else(|| VERSIONS[0].to_string())
}

/// `initialize`'s result.
fn initialize(id: &Value, version: &str) -> Answer {
    result(
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
    )
}

/// One client message's context, whichever transport carried it.
struct Message<'a> {
    principal: &'a Principal,
    /// The client session (`None`: a sessionless Streamable HTTP request).
    session: Option<Arc<Session>>,
    /// The path's server (`/mcp/{server}`, `/mcp/{server}/sse`).
    server: Option<&'a str>,
    headers: &'a HeaderMap,
}

/// Answer one request (every method but Streamable HTTP's `initialize`, which opens a
/// session): both transports call this. A sessionless request's upstream sessions last for
/// this message only (one per server, however many pages it reads).
async fn handle(
    state: &AppState,
    msg: Message<'_>,
    id: &Value,
    method: &str,
    params: Option<&RawValue>,
) -> Answer {
    if method == "initialize" {
        return initialize(id, &agreed_version(params));
    }
    if method == "ping" {
        return result(id, json!({}));
    }
    let scope = scope(&state.mcp, msg.principal, msg.server, msg.headers);
    let transient = match &msg.session {
        Some(_) => None,
        None => Some(Session::transient(owner(msg.principal))),
    };
    let session = match (&msg.session, &transient) {
        (Some(s), _) => s.as_ref(),
        (None, Some(t)) => t,
        (None, None) => return session_not_found(),
    };
    let call = Call {
        state,
        principal: msg.principal,
        session,
        headers: msg.headers,
        scope: &scope,
    };
    let answer = match method {
        "tools/list" => call.list(id, &TOOLS).await,
        "tools/call" => call.call_tool(id, params).await,
        "prompts/list" => call.list(id, &PROMPTS).await,
        "prompts/get" => call.get_prompt(id, params).await,
        "resources/list" => call.list(id, &RESOURCES).await,
        "resources/templates/list" => call.list(id, &TEMPLATES).await,
        "resources/read" => call.read_resource(id, params).await,
        other => error_response(
            StatusCode::OK,
            &RpcError::new(id, METHOD_NOT_FOUND, format!("Method not found: {other}")),
        ),
    };
    if let Some(t) = transient {
        t.close().await;
    }
    answer
}

/// One request's context.
struct Call<'a> {
    state: &'a AppState,
    principal: &'a Principal,
    /// The client's session, or a transient one for a sessionless request.
    session: &'a Session,
    headers: &'a HeaderMap,
    scope: &'a Scope,
}

impl Call<'_> {
    /// The session's upstream session with `server` (opened on first use).
    async fn upstream(&self, server: &Server) -> Result<Arc<Conn>, UpstreamError> {
        let slot = self.session.slot(&server.name);
        let conn = slot
            .get_or_try_init(|| async {
                Conn::open(
                    server.target.clone(),
                    self.state.client.clone(),
                    server.forwarded(self.headers),
                )
                .await
                .map(Arc::new)
            })
            .await?
            .clone();
        if self.session.is_ended() {
            // the session ended while this one was opening: nothing would close it later
            self.session.forget(&server.name);
            conn.close().await;
            return Err(UpstreamError::Closed);
        }
        Ok(conn)
    }

    /// Send a request to `server`, on a fresh upstream session once when the server ended
    /// the one kept.
    async fn request(
        &self,
        server: &Server,
        method: &str,
        params: Option<&RawValue>,
    ) -> Result<Reply, UpstreamError> {
        let conn = self.upstream(server).await?;
        match conn.request(method, params).await {
            Err(UpstreamError::SessionGone) => {
                self.session.forget(&server.name);
                let conn = self.upstream(server).await?;
                conn.request(method, params).await
            }
            Err(e) => {
                if matches!(e, UpstreamError::Closed | UpstreamError::Connect(_)) {
                    // a dead connection is not reused
                    self.session.forget(&server.name);
                    conn.close().await;
                }
                Err(e)
            }
            ok => ok,
        }
    }
}
