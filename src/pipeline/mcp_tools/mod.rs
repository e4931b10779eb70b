//! MCP tools inside LLM requests: a `/v1/chat/completions` or `/v1/responses` request whose
//! `tools` name the gateway's own MCP servers (`{"type": "mcp", "server_url":
//! "tianji_proxy/mcp/{server}", "require_approval": "never"}`, servers.rs) is run by the
//! gateway: the servers' tools the caller may use are listed and given to the model as
//! function tools (`{server_label or server}-{tool}`); while the model answers with calls to
//! them, each call runs through the MCP tool call path (`super::mcp_call`: `mcp_rpm_limit`,
//! admission, its `call_mcp_tool` SpendLogs row), the results are appended (turns.rs) and the
//! model is asked again, each round a request of its own through the stages from `authorize`
//! on (its limits, budgets and SpendLogs row), at most `mcp_settings.max_tool_rounds` rounds
//! of tool calls. Tool failures are the model's to read, not the client's. The rounds are
//! never streamed; a streamed request gets the final answer as a stream.

mod servers;
mod turns;

pub use servers::{Named, named};
pub use turns::{Asked, Format, Ran, result_text};

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::parse::{self, Expect};
use super::read::{self, Call};
use super::{RequestCtx, mcp_call, respond, traced};
use crate::body::Body;
use crate::error::GatewayError;
use crate::mcp::client::{UpstreamError, error_message};
use crate::state::AppState;
use servers::Listed;

static COST: http::HeaderName = http::HeaderName::from_static("x-tianji-response-cost");

/// Why a request naming MCP tools is refused.
#[derive(Debug, thiserror::Error)]
pub enum McpToolError {
    #[error("{0}")]
    BadTool(String),
    #[error("MCP server `{0}` not found (server_url of an mcp tool)")]
    UnknownServer(String),
    #[error("This key may not use MCP server `{0}`")]
    Forbidden(String),
    #[error("This key may use no MCP server (server_url of an mcp tool)")]
    NoServers,
    #[error("MCP server '{server}': cannot list its tools: {error}")]
    List {
        server: String,
        error: UpstreamError,
    },
    #[error(
        "The model still asked for MCP tools after {0} rounds of tool calls (mcp_settings.max_tool_rounds)"
    )]
    TooManyRounds(u32),
}

crate::error::feature_error!(McpToolError, "mcp_tools");

impl McpToolError {
    pub fn status(&self) -> StatusCode {
        match self {
            McpToolError::Forbidden(_) | McpToolError::NoServers => StatusCode::FORBIDDEN,
            McpToolError::List { .. } => StatusCode::BAD_GATEWAY,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Whether the request may name MCP tools (a cheap look at the bytes; [`serve`] reads them).
pub fn wanted(call: &Call) -> bool {
    matches!(call.expect, Expect::Chat | Expect::Responses)
        && crate::holds!(&call.parsed.raw, b"\"mcp\"")
}

/// Serve the request (its stages up to `model` done, noted in `outer`): the loop when it names
/// gateway MCP tools, else as any request.
pub async fn serve(state: &AppState, call: Call, mut outer: RequestCtx) -> Response<Body> {
    let plan = match servers::plan(state, &call) {
        Ok(Some(p)) => p,
        Ok(None) => {
            let result = super::llm(state, call, &mut outer).await;
            outer.stage = None;
            return respond::respond(result, &mut outer).await;
        }
        Err(e) => return respond::respond(Err(e), &mut outer).await,
    };
    let format = if call.expect == Expect::Responses {
        Format::Responses
    } else {
        Format::Chat
    };
    let mut listed = match servers::list(state, &call, &plan, format).await {
        Ok(l) => l,
        Err(e) => return respond::respond(Err(e.into()), &mut outer).await,
    };
    let mut body = plan.body;
    if let Some(Value::Array(tools)) = body.get_mut("tools") {
        tools.extend(listed.functions.iter().cloned());
    }
    let stream = call.parsed.stream;
    body.remove("stream");
    body.remove("stream_options");
    let like = Like::of(&outer);
    let got = rounds(state, &call, body, &listed, format, &like).await;
    let listings = std::mem::take(&mut listed.listings);
    listed.close().await;
    outer.stage = None;
    let resp = match got {
        Ok(Done::Answer(mut answer, ran, cost)) => {
            format.finish(&mut answer, &listings, &ran);
            let include_usage = call.parsed.include_usage == Some(true);
            let events = stream
                .then(|| format.events(&answer, include_usage))
                .flatten();
            let (content_type, body) = match events {
                Some(ev) => ("text/event-stream", Body::chunks(ev)),
                None => (
                    "application/json",
                    Body::full(serde_json::to_vec(&answer).unwrap_or_default()),
                ),
            };
            let mut r = Response::new(body);
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            if let Ok(v) = HeaderValue::from_str(&cost.to_string()) {
                r.headers_mut().insert(COST.clone(), v);
            }
            r
        }
        Ok(Done::AsIs(r)) => r,
        Err(e) => return respond::respond(Err(e), &mut outer).await,
    };
    outer.completion.status = resp.status().as_u16();
    resp
}

/// What the request that named the tools passes on to each round.
struct Like {
    route: &'static str,
    admin: bool,
    model: String,
    team_alias: Option<String>,
    pinned: Option<String>,
}

impl Like {
    fn of(ctx: &RequestCtx) -> Self {
        Self {
            route: ctx.completion.route,
            admin: ctx.admin,
            model: ctx.model.clone(),
            team_alias: ctx.team_alias.clone(),
            pinned: ctx.pinned.clone(),
        }
    }
}

/// How the rounds ended.
enum Done {
    /// The model's final answer, the tool calls run, and the rounds' cost (USD).
    Answer(Value, Vec<Ran>, f64),
    /// A round's answer to pass on as it is (an error, or not JSON).
    AsIs(Response<Body>),
}

/// Ask the model, run the tools it calls, and again, until it answers.
async fn rounds(
    state: &AppState,
    call: &Call,
    mut body: Map<String, Value>,
    listed: &Listed,
    format: Format,
    like: &Like,
) -> Result<Done, GatewayError> {
    let max = state.config().mcp_settings.max_tool_rounds;
    let mut ran_all: Vec<Ran> = Vec::new();
    let mut cost = 0.0;
    for round in 0..=max {
        let resp = model_round(state, call, &body, like).await?;
        cost += resp
            .headers()
            .get(&COST)
            .and_then(|v| v.to_str().ok()?.parse::<f64>().ok())
            .unwrap_or(0.0);
        if !resp.status().is_success() {
            return Ok(Done::AsIs(resp));
        }
        let (parts, raw) = resp.into_parts();
        let bytes = raw
            .collect()
            .await
            .map_err(|e| GatewayError::Internal(format!("reading a model answer: {e}")))?
            .to_bytes();
        let Ok(answer) = serde_json::from_slice::<Value>(&bytes) else {
            return Ok(Done::AsIs(Response::from_parts(parts, Body::full(bytes))));
        };
        let Some(asked) = format.calls(&answer, |n| listed.offered.contains_key(n)) else {
            return Ok(Done::Answer(answer, ran_all, cost));
        };
        if round == max {
            return Err(McpToolError::TooManyRounds(max).into());
        }
        let mut ran = Vec::with_capacity(asked.len());
        for a in asked {
            ran.push(run_tool(state, call, listed, a).await);
        }
        format.append(&mut body, &answer, &ran);
        ran_all.extend(ran);
    }
    Err(McpToolError::TooManyRounds(max).into())
}

/// One model call: `body` through the stages from `authorize` on, as a request of its own
/// (its record, and SpendLogs row, end here).
async fn model_round(
    state: &AppState,
    call: &Call,
    body: &Map<String, Value>,
    like: &Like,
) -> Result<Response<Body>, GatewayError> {
    let raw = serde_json::to_vec(body).map_err(|e| GatewayError::Internal(e.to_string()))?;
    let size = raw.len() as u64;
    let mut parsed = parse::parse_with(Bytes::from(raw), call.expect, state.cache.is_some())?;
    if call.expect == Expect::Responses {
        parsed.include_usage = Some(true);
    }
    let mut ctx = RequestCtx::new(like.route);
    traced::start(state, &call.headers, &mut ctx);
    if let Some(m) = &state.metrics {
        ctx.completion.metrics = Some(Box::new((m.start(), read::metric_labels(&call.principal))));
    }
    ctx.admin = like.admin;
    ctx.model = like.model.clone();
    ctx.team_alias = like.team_alias.clone();
    ctx.pinned = like.pinned.clone();
    ctx.completion.prompt_estimate = size / 4;
    let one = Call {
        principal: call.principal.clone(),
        headers: call.headers.clone(),
        parsed,
        upload: None,
        expect: call.expect,
        peer: call.peer,
        models: call.models.clone(),
    };
    let result = super::llm(state, one, &mut ctx).await;
    ctx.stage = None;
    let resp = respond::respond(result, &mut ctx).await;
    // a whole answer: read it before the record drops
    let (parts, raw) = resp.into_parts();
    let bytes = raw
        .collect()
        .await
        .map_err(|e| GatewayError::Internal(format!("reading a model answer: {e}")))?
        .to_bytes();
    drop(ctx);
    Ok(Response::from_parts(parts, Body::full(bytes)))
}

/// Run the tool `asked` names; what went wrong is its output for the model to read.
async fn run_tool(state: &AppState, call: &Call, listed: &Listed, asked: Asked) -> Ran {
    let Some(offered) = listed.offered.get(&asked.name) else {
        return ran(asked, "", "", Err("unknown tool".into()));
    };
    let server = offered.server.clone();
    let (label, tool) = (offered.label.clone(), offered.tool.clone());
    let arguments = match asked.arguments.trim() {
        "" => Ok(json!({})),
        a => serde_json::from_str::<Value>(a)
            .ok()
            .filter(Value::is_object)
            .ok_or("the arguments are not a JSON object"),
    };
    let arguments = match arguments {
        Ok(a) => a,
        Err(e) => return ran(asked, &label, &tool, Err(e.to_string())),
    };
    let Some(conn) = listed.conn(&server.name).cloned() else {
        return ran(
            asked,
            &label,
            &tool,
            Err("no session with its server".into()),
        );
    };
    let params =
        RawValue::from_string(json!({"name": tool, "arguments": arguments}).to_string()).ok();
    let send = async {
        let conn: Arc<_> = conn;
        conn.request("tools/call", params.as_deref()).await
    };
    let output = match mcp_call::call_tool(state, &call.principal, &server, &tool, send).await {
        Err(refused) => Err(refused.to_string()),
        Ok(Ok(Ok(result))) => {
            let v: Value = serde_json::from_str(result.get()).unwrap_or(Value::Null);
            turns::result_text(&v)
        }
        Ok(Ok(Err(err))) => Err(error_message(&err)),
        Ok(Err(e)) => Err(format!("MCP server '{}': {e}", server.name)),
    };
    ran(asked, &label, &tool, output)
}

fn ran(asked: Asked, label: &str, tool: &str, output: Result<String, String>) -> Ran {
    Ran {
        asked,
        label: label.to_string(),
        tool: tool.to_string(),
        output,
    }
}
