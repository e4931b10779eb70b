//! `POST /a2a/{agent_id}` (also `/a2a/{agent_id}/message/send`, `/a2a/{agent_id}/message/stream`
//! and their `/v1/a2a/...` forms): A2A JSON-RPC. A thin dispatcher: the envelope is checked
//! first ([`crate::agents::rpc`]; an oversized body is a `-32600` error), then the agent is found
//! and the caller's permission checked; the call goes to the remote agent through
//! [`super::agent_remote::forward`] (event streams relayed as they come, other answers whole).
//! A model-backed agent is answered by [`super::agent_model`]; every call is counted, limited
//! and logged by [`super::agent_usage`] (a remote call's row is written when its answer or
//! stream ends).

use http::{Response, StatusCode};

use super::AdminError;
use super::agent_remote;
use super::routes::Live;
use crate::agents::rpc::{self, RpcError};
use crate::body::Body;
use crate::pipeline::parse::{RequestError, read_declared};

/// Serve one JSON-RPC call.
pub async fn call(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let id = live.path_key.clone().unwrap_or_default();
    let state = live.state;
    let (parts, body) = live.req.into_parts();
    let body = match read_declared(&parts.headers, body, state.max_body_bytes).await {
        Ok(b) => b,
        Err(e @ RequestError::TooLarge { .. }) => {
            let e = RpcError::new(
                &serde_json::Value::Null,
                -32600,
                format!("Invalid Request: {e}"),
            );
            return Ok(agent_remote::answer(
                e.with_status(StatusCode::PAYLOAD_TOO_LARGE),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let call = match rpc::parse(&body) {
        Ok(c) => c,
        Err(e) => return Ok(agent_remote::answer(e)),
    };
    let agents = state.agents.load();
    let Some(agent) = agents.get(&id) else {
        let e = RpcError::new(&call.id, -32000, format!("Agent '{id}' not found"));
        return Ok(agent_remote::answer(e.with_status(StatusCode::NOT_FOUND)));
    };
    if !super::agents::allowed(state, &live.principal).permits(&id) {
        return Ok(super::agents::not_allowed(&id));
    }
    if let Some(model) = super::agent_model::model_of(agent) {
        let principal = &live.principal;
        return Ok(super::agent_model::serve(state, principal, parts, agent, model, call).await);
    }
    let record = match super::agent_usage::admit(
        state,
        &live.principal,
        agent,
        &call.id,
        &call.params,
    )
    .await
    {
        Ok(r) => r,
        Err(refused) => return Ok(refused),
    };
    let done = super::agent_usage::on_end(record);
    Ok(agent_remote::forward(state, agent, &call, &parts.headers, done).await)
}
