//! What an A2A agent call counts and costs. Its rate limits are LiteLLM's `agent` descriptor
//! (the agent's `rpm_limit` / `tpm_limit`, value the agent id) and `agent_session` (the
//! agent's `session_rpm_limit` / `session_tpm_limit`, value `{agent_id}:{session}`, the session
//! from `litellm_session_id`, `metadata.session_id` or the message's `contextId`), counted
//! with the caller's own limits in one limiter call; the caller's budgets apply. Its
//! SpendLogs row has model `a2a_agent/{name}` (the card's name, else the agent's), the agent
//! id, and the agent's `cost_per_query` added to what its model used; the spend writer adds it
//! to `TianjiLLM_DailyAgentSpend` and to the agent's `spend`. Refusals (limits, budgets,
//! blocks) answer as JSON-RPC errors with the gateway's status and headers, the gateway's
//! error object as the error's `data`.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::agents::Agent;
use crate::agents::convert::session_of;
use crate::auth::Principal;
use crate::body::Body;
use crate::error::GatewayError;
use crate::limits::Descriptor;
use crate::limits::descriptor::limit;
use crate::pipeline::agent::AgentCall;
use crate::pipeline::post::Completion;
use crate::state::AppState;

/// The largest gateway error body read back to wrap.
const MAX_ERROR: usize = 1 << 20;

/// A stored limit column of the agent (`None`: not set).
fn cap(agent: &Agent, column: &str) -> Option<u64> {
    limit(agent.row.get(column).and_then(Value::as_i64))
}

/// The agent's name in SpendLogs: `a2a_agent/{card name, else agent name}`.
pub fn spend_model(agent: &Agent) -> String {
    let name = agent
        .card()
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or(&agent.name);
    format!("a2a_agent/{name}")
}

/// The agent's rate limits for a call with JSON-RPC `params` (none when it has none).
pub fn limits(agent: &Agent, params: &Value) -> Vec<Descriptor> {
    let mut out = Vec::new();
    let (rpm, tpm) = (cap(agent, "rpm_limit"), cap(agent, "tpm_limit"));
    if rpm.is_some() || tpm.is_some() {
        out.push(Descriptor::plain("agent", agent.id.clone(), rpm, tpm, None));
    }
    let (rpm, tpm) = (
        cap(agent, "session_rpm_limit"),
        cap(agent, "session_tpm_limit"),
    );
    if let (true, Some(session)) = (rpm.is_some() || tpm.is_some(), session_of(params)) {
        let value = format!("{}:{session}", agent.id);
        out.push(Descriptor::plain("agent_session", value, rpm, tpm, None));
    }
    out
}

/// What a call to `agent` with `params` counts and costs.
pub fn agent_call(agent: &Agent, params: &Value) -> AgentCall {
    let flat_cost = (agent.row.get("tianji_params"))
        .and_then(|p| p.get("cost_per_query"))
        .and_then(Value::as_f64)
        .filter(|c| c.is_finite() && *c > 0.0)
        .unwrap_or(0.0);
    AgentCall {
        agent_id: Arc::from(agent.id.as_str()),
        model: spend_model(agent),
        limits: limits(agent, params),
        flat_cost,
    }
}

/// Admit a call to a remote agent: its record (finish it with [`finish`]), or the refusal
/// as the client gets it.
pub async fn admit(
    state: &AppState,
    principal: &Principal,
    agent: &Agent,
    rpc_id: &Value,
    params: &Value,
) -> Result<Completion, Response<Body>> {
    match crate::pipeline::agent::admit(state, principal, agent_call(agent, params)).await {
        Ok(c) => Ok(c),
        Err(e) => Err(refused(rpc_id, e, principal.is_admin()).await),
    }
}

/// What writes a remote call's record when [`super::agent_remote::forward`] tells how it
/// ended (the row goes when the record drops): the agent's status (500 when it never
/// answered), and the failure, as a stream error when it broke off a relayed stream.
pub fn on_end(mut record: Completion) -> super::agent_remote::OnEnd {
    Box::new(move |s: super::agent_remote::Summary| {
        record.status = s.status.map_or(500, |st| st.as_u16());
        record.chunks = s.events;
        if s.streamed && s.status.is_some() {
            record.stream_error = s.error;
        } else {
            record.error = s.error;
        }
        drop(record);
    })
}

/// A gateway error as a JSON-RPC error.
pub async fn refused(rpc_id: &Value, e: GatewayError, admin: bool) -> Response<Body> {
    as_rpc_error(rpc_id, e.into_response_for(admin)).await
}

/// A gateway error response (`{"error": {...}}`) as a JSON-RPC error with the same status and
/// headers: code `-32603` for server errors, else `-32000`; the gateway's error object as
/// `data`.
pub async fn as_rpc_error(rpc_id: &Value, resp: Response<Body>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    let bytes = http_body_util::Limited::new(body, MAX_ERROR)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let data = v.get("error").cloned().unwrap_or(v);
    let message = match data.get("message").and_then(Value::as_str) {
        Some(m) => m.to_string(),
        None => String::from_utf8_lossy(&bytes).into_owned(),
    };
    let code = if parts.status.is_server_error() {
        -32603
    } else {
        -32000
    };
    let out = json!({"jsonrpc": "2.0", "id": rpc_id,
        "error": {"code": code, "message": message, "data": data}});
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let bytes = Bytes::from(serde_json::to_vec(&out).unwrap_or_default());
    Response::from_parts(parts, Body::full(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(extra: Value) -> Agent {
        let mut row = json!({"agent_id": "a1", "agent_name": "n",
            "agent_card_params": {"name": "Card Name"}});
        if let (Some(r), Some(e)) = (row.as_object_mut(), extra.as_object()) {
            r.extend(e.clone());
        }
        Agent::from_row(row).unwrap()
    }

    #[test]
    fn limits_only_when_set() {
        let params = json!({"message": {"contextId": "c1"}});
        assert!(limits(&agent(json!({})), &params).is_empty());
        let a = agent(json!({"rpm_limit": 2, "session_tpm_limit": 100, "tpm_limit": -1}));
        let ds = limits(&a, &params);
        assert_eq!(ds.len(), 2);
        assert_eq!((ds[0].kind, ds[0].value.as_str()), ("agent", "a1"));
        assert_eq!((ds[0].rpm, ds[0].tpm), (Some(2), None));
        assert_eq!(
            (ds[1].kind, ds[1].value.as_str()),
            ("agent_session", "a1:c1")
        );
        assert_eq!((ds[1].rpm, ds[1].tpm), (None, Some(100)));
        // no session: no session limit
        assert_eq!(limits(&a, &json!({"message": {}})).len(), 1);
    }

    #[test]
    fn spend_names_and_costs() {
        let a = agent(json!({"tianji_params": {"cost_per_query": 0.25}}));
        let c = agent_call(&a, &json!({}));
        assert_eq!(c.model, "a2a_agent/Card Name");
        assert_eq!(c.flat_cost, 0.25);
        assert_eq!(&*c.agent_id, "a1");
        let b = Agent::from_row(json!({"agent_id": "b", "agent_name": "plain"})).unwrap();
        assert_eq!(spend_model(&b), "a2a_agent/plain");
        assert_eq!(agent_call(&b, &json!({})).flat_cost, 0.0);
    }

    #[tokio::test]
    async fn gateway_errors_become_json_rpc_errors() {
        let body = json!({"error": {"message": "Rate limit exceeded", "type": "throttling_error",
            "param": null, "code": "429"}});
        let mut resp = crate::error::json_response(
            http::StatusCode::TOO_MANY_REQUESTS,
            Bytes::from(body.to_string()),
        );
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from_static("60"));
        let r = as_rpc_error(&json!("r1"), resp).await;
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "60");
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["id"], "r1");
        assert_eq!(v["error"]["code"], -32000);
        assert_eq!(v["error"]["message"], "Rate limit exceeded");
        assert_eq!(v["error"]["data"]["type"], "throttling_error");
    }
}
