//! `tools/call`: the tool's server runs it, within the caller's `mcp_rpm_limit`, admitted and
//! recorded like every side call (one SpendLogs row with the tool's cost): all of that is
//! `crate::pipeline::mcp_call`, which model-run tool calls share.

use http::{Response, StatusCode};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::{Call, answer_raw, error_response, rpc_response};
use crate::body::Body;
use crate::config::mcp::TOOL_SEPARATOR;
use crate::error::GatewayError;
use crate::mcp::jsonrpc::{INTERNAL_ERROR, INVALID_PARAMS, REFUSED, RpcError};

impl Call<'_> {
    /// `tools/call`: the owning server runs the tool; one SpendLogs row.
    pub(super) async fn call_tool(&self, id: &Value, params: Option<&RawValue>) -> Response<Body> {
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
        params.insert("name".into(), json!(tool));
        let forwarded = RawValue::from_string(Value::Object(params).to_string()).ok();
        let send = self.request(&server, "tools/call", forwarded.as_deref());
        let got =
            crate::pipeline::mcp_call::call_tool(self.state, self.principal, &server, &tool, send)
                .await;
        match got {
            Err(e) => fail(REFUSED, refusal_text(&e)),
            Ok(Ok(Ok(res))) => answer_raw(id, &res),
            Ok(Ok(Err(err))) => rpc_response(
                StatusCode::OK,
                &json!({"jsonrpc": "2.0", "id": id, "error": err}),
            ),
            Ok(Err(e)) => fail(INTERNAL_ERROR, format!("MCP server '{}': {e}", server.name)),
        }
    }
}

/// A refusal's message (budget, blocked key, ...), as the client would read it.
fn refusal_text(e: &GatewayError) -> String {
    e.to_string()
}
