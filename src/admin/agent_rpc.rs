//! `POST /a2a/{agent_id}` (also `/a2a/{agent_id}/message/send` and
//! `/v1/a2a/{agent_id}/message/send`): A2A JSON-RPC to a remote agent. The envelope is checked
//! first ([`crate::agents::rpc`]), then the caller's permission; the call goes to the agent's URL
//! (`litellm_params.api_base`, else the card's `url`) with the agent's own credentials
//! (`litellm_params.api_key` as a bearer token, `static_headers`) and never the caller's key; the
//! agent's answer is relayed as it is. Streaming (`message/stream`) is not served yet. A
//! model-backed agent is answered by [`super::agent_model`]; every call is counted and logged
//! by [`super::agent_usage`].

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use serde_json::{Value, json};

use super::AdminError;
use super::routes::Live;
use crate::agents::rpc::{self, RpcError};
use crate::agents::{Agent, address};
use crate::body::Body;
use crate::error::json_response;
use crate::pipeline::parse::read_declared;

/// How long an agent may take without `litellm_params.timeout` (seconds).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// The largest answer relayed.
const MAX_ANSWER: usize = 16 << 20;
/// Headers of the caller never passed on, even when `extra_headers` names them.
const NEVER_FORWARDED: &[&str] = &[
    "authorization",
    "x-api-key",
    "api-key",
    "x-litellm-api-key",
    "cookie",
];

fn answer(e: RpcError) -> Response<Body> {
    json_response(
        e.status,
        Bytes::from(serde_json::to_vec(&e.body()).unwrap_or_default()),
    )
}

/// The agent's URL, if it has one.
fn url_of(agent: &Agent) -> Option<&str> {
    let row = &agent.row;
    row.get("tianji_params")
        .and_then(|p| p.get("api_base"))
        .and_then(Value::as_str)
        .or_else(|| agent.card()?.get("url")?.as_str())
        .filter(|u| !u.is_empty())
}

/// Serve one JSON-RPC call.
pub async fn call(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let id = live.path_key.clone().unwrap_or_default();
    let state = live.state;
    let (parts, body) = live.req.into_parts();
    let body = read_declared(&parts.headers, body, state.max_body_bytes).await?;
    let call = match rpc::parse(&body) {
        Ok(c) => c,
        Err(e) => return Ok(answer(e)),
    };
    let agents = state.agents.load();
    let Some(agent) = agents.get(&id) else {
        let e = RpcError::new(&call.id, -32000, format!("Agent '{id}' not found"));
        return Ok(answer(e.with_status(StatusCode::NOT_FOUND)));
    };
    if !super::agents::allowed(state, &live.principal).permits(&id) {
        return Ok(super::agents::not_allowed(&id));
    }
    if let Some(model) = super::agent_model::model_of(agent) {
        let principal = &live.principal;
        return Ok(super::agent_model::serve(state, principal, parts, agent, model, call).await);
    }
    if call.method == "message/stream" || call.method == "tasks/resubscribe" {
        let e = RpcError::new(
            &call.id,
            -32004,
            "Streaming is not supported by the gateway yet",
        );
        return Ok(answer(e.with_status(StatusCode::BAD_REQUEST)));
    }
    let Some(url) = url_of(agent) else {
        let e = RpcError::new(
            &call.id,
            -32000,
            format!("Agent '{id}' has no URL configured"),
        );
        return Ok(answer(e));
    };
    if !state.config.general_settings.agent_allow_private_urls
        && let Some(why) = address::refused(url)
    {
        return Ok(answer(RpcError::new(&call.id, -32603, why)));
    }
    let mut record = match super::agent_usage::admit(
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
    let params = agent.row.get("tianji_params");
    let out =
        json!({"jsonrpc": "2.0", "id": call.id, "method": call.method, "params": call.params});
    let mut req = Request::post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json");
    if let Some(key) = params
        .and_then(|p| p.get("api_key"))
        .and_then(Value::as_str)
    {
        req = req.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    for (name, v) in agent
        .row
        .get("static_headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(v) = v.as_str() {
            req = req.header(name.as_str(), v);
        }
    }
    let extra = agent.row.get("extra_headers").and_then(Value::as_array);
    for name in extra.into_iter().flatten().filter_map(Value::as_str) {
        let lower = name.to_ascii_lowercase();
        if NEVER_FORWARDED.contains(&lower.as_str()) {
            continue;
        }
        if let Some(v) = parts.headers.get(lower.as_str()) {
            req = req.header(lower.as_str(), v.clone());
        }
    }
    let req = match req.body(Body::full(serde_json::to_vec(&out).unwrap_or_default())) {
        Ok(r) => r,
        Err(e) => {
            return Ok(answer(RpcError::new(
                &call.id,
                -32603,
                format!("Agent '{id}': {e}"),
            )));
        }
    };
    let timeout = params
        .and_then(|p| p.get("timeout"))
        .and_then(Value::as_f64)
        .filter(|t| *t > 0.0)
        .and_then(|t| Duration::try_from_secs_f64(t).ok())
        .unwrap_or(DEFAULT_TIMEOUT);
    let sent = async {
        let resp = state.client.request(req).await.map_err(|e| e.to_string())?;
        let (head, body) = resp.into_parts();
        let bytes = Limited::new(body, MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((head.status, bytes.to_bytes()))
    };
    let (resp, error) = match tokio::time::timeout(timeout, sent).await {
        Ok(Ok((status, bytes))) => (json_response(status, bytes), None),
        Ok(Err(e)) => {
            let e = RpcError::new(&call.id, -32603, format!("Agent '{id}' failed: {e}"));
            (answer(e.clone()), Some(e.message))
        }
        Err(_) => {
            let e = RpcError::new(
                &call.id,
                -32603,
                format!("Agent '{id}' did not answer within {timeout:?}"),
            );
            (answer(e.clone()), Some(e.message))
        }
    };
    super::agent_usage::finish(&mut record, &resp, error);
    Ok(resp)
}
