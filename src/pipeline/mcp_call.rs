//! One MCP tool call made for a caller, whoever asked for it (an MCP client's `tools/call` in
//! `crate::mcp_api`, or a model's function call run by `mcp_tools`): the key's and team's
//! `mcp_rpm_limit` for the server, the call admitted like every side call (blocks, budgets),
//! and its SpendLogs row (`call_mcp_tool`, model `MCP: {server}-{tool}`, the tool's cost per
//! call, nothing when the call failed).

use std::future::Future;

use serde_json::Value;

use super::side::{Side, side_call};
use crate::auth::Principal;
use crate::config::mcp::TOOL_SEPARATOR;
use crate::error::GatewayError;
use crate::limits::{Descriptor, Held, LimitError};
use crate::mcp::Server;
use crate::mcp::client::{Reply, UpstreamError, error_message};
use crate::spend::record::ToolCall;
use crate::state::AppState;

/// SpendLogs `call_type` and `endpoint` of a tool call.
pub const CALL_TYPE: (&str, &str) = ("call_mcp_tool", "/mcp");

/// Call `tool` (its own name) of `server` for `principal`: `send` is the upstream exchange,
/// run once the call is admitted. `Err`: the call was refused (rate limit, budget, blocked
/// key), with the message the caller reads; `Ok`: what the server answered (or why it did not).
pub async fn call_tool<F>(
    state: &AppState,
    principal: &Principal,
    server: &Server,
    tool: &str,
    send: F,
) -> Result<Result<Reply, UpstreamError>, GatewayError>
where
    F: Future<Output = Result<Reply, UpstreamError>>,
{
    let full = format!("{}{TOOL_SEPARATOR}{tool}", server.name);
    let held = rate_limit(state, principal, &server.name).await?;
    let side = Side {
        call_type: CALL_TYPE.0,
        endpoint: CALL_TYPE.1,
        model: &full,
        dep: None,
        model_access: false,
        rate_limited: false,
    };
    let mut rec = side_call(state, principal, side).await?;
    rec.fixed_cost = Some(server.entry.mcp_info.mcp_server_cost_info.of(tool));
    rec.limits = held;
    if let Some((_, Some(row))) = &mut rec.spend {
        row.provider_model = Some(format!("MCP: {full}"));
        row.tool = Some(Box::new(ToolCall {
            name: tool.to_string(),
            mcp_server_name: server.name.clone(),
            namespaced_tool_name: format!("{}/{tool}", server.name),
        }));
    }
    let got = send.await;
    match &got {
        Ok(Ok(_)) => rec.status = 200,
        Ok(Err(err)) => {
            rec.status = 400;
            rec.fixed_cost = Some(0.0);
            rec.error = Some(format!(
                "MCP server '{}': {}",
                server.name,
                error_message(err)
            ));
        }
        Err(e) => {
            rec.status = match e {
                UpstreamError::Timeout(_) => 504,
                _ => 502,
            };
            rec.fixed_cost = Some(0.0);
            rec.error = Some(format!("MCP server '{}': {e}", server.name));
        }
    }
    Ok(got)
}

/// The key's and team's `mcp_rpm_limit` for `server` (LiteLLM keeps it in metadata).
async fn rate_limit(
    state: &AppState,
    principal: &Principal,
    server: &str,
) -> Result<Option<Held>, LimitError> {
    let Some(k) = principal.key() else {
        return Ok(None);
    };
    let rpm = |meta: &Value| meta.get("mcp_rpm_limit")?.get(server)?.as_u64();
    let mut ds = Vec::new();
    if let Some(r) = rpm(&k.key.metadata) {
        ds.push(Descriptor::plain(
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
        ds.push(Descriptor::plain(
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
    state.limits.acquire(ds, 0).await
}
