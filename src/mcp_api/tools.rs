//! `tools/call`: the tool's server runs it, within the caller's `mcp_rpm_limit`, admitted and
//! recorded like every side call (one SpendLogs row with the tool's cost): all of that is
//! `crate::pipeline::mcp_call`, which model-run tool calls share.

use http::StatusCode;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::{Answer, Call, answer_raw, error_response, rpc_response};
use crate::config::mcp::TOOL_SEPARATOR;
use crate::error::GatewayError;
use crate::mcp::jsonrpc::{
    INTERNAL_ERROR, INVALID_PARAMS, NOT_AN_OBJECT, REFUSED, RpcError, ToolCallParams,
};

impl Call<'_> {
    /// `tools/call`: the owning server runs the tool; one SpendLogs row.
    pub(super) async fn call_tool(&self, id: &Value, params: Option<&RawValue>) -> Answer {
        let fail = |code: i64, message: String| {
            error_response(StatusCode::OK, &RpcError::new(id, code, message))
        };
        let params = match params.map(ToolCallParams::read) {
            Some(Ok(p)) => p,
            Some(Err(message)) => return fail(INVALID_PARAMS, message.into()),
            None => return fail(INVALID_PARAMS, NOT_AN_OBJECT.into()),
        };
        let full = params.name.as_str();
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
        let forwarded = params.forwarded(&tool);
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
