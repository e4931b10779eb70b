//! `tools/call`: the tool's server runs it, within the caller's `mcp_rpm_limit`, admitted and
//! recorded like every side call (one SpendLogs row with the tool's cost).

use http::StatusCode;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::{Answer, Call, answer_raw, error_response, rpc_response};
use crate::config::mcp::TOOL_SEPARATOR;
use crate::error::GatewayError;
use crate::mcp::client::{UpstreamError, error_message};
use crate::mcp::jsonrpc::{
    INTERNAL_ERROR, INVALID_PARAMS, NOT_AN_OBJECT, REFUSED, RpcError, ToolCallParams,
};
use crate::spend::record::ToolCall;

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
        let held = match self.rate_limit(&server.name).await {
            Ok(h) => h,
            Err(e) => return fail(REFUSED, e.to_string()),
        };
        let side = crate::pipeline::Side {
            call_type: "call_mcp_tool",
            endpoint: "/mcp",
            model: full,
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
        let forwarded = params.forwarded(&tool);
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
