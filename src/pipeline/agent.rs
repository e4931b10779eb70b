//! LLM calls made for A2A agents. A model-backed agent's chat completion ([`chat`]) runs the
//! LLM stages from `authorize` on over a request the agent made for its caller (the caller's
//! blocks, budgets and rate limits apply; model access is the agent's grant, checked before);
//! a call to a remote agent is admitted like a side call ([`admit`]). Either way the
//! SpendLogs row is the agent's (model `a2a_agent/{name}`, its `agent_id`, call type
//! `asend_message`, `cost_per_query` added to the cost), and the agent's own rate limits (the
//! agent's and its session's, [`AgentCall::limits`]) are counted with the caller's, in the same
//! limiter call.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Response};

use super::parse::{self, Expect};
use super::post::Completion;
use super::side::{self, Side};
use super::{RequestCtx, read, respond, traced};
use crate::auth::Principal;
use crate::body::Body;
use crate::error::GatewayError;
use crate::limits::Descriptor;
use crate::spend::record::SpendRow;
use crate::state::AppState;

/// SpendLogs `call_type` and `endpoint` of an agent call (LiteLLM's route type).
pub const CALL_TYPE: (&str, &str) = ("asend_message", "/a2a");

/// The agent a call is for.
#[derive(Debug, Clone, Default)]
pub struct AgentCall {
    pub agent_id: Arc<str>,
    /// `a2a_agent/{agent_name}`: the SpendLogs `model`.
    pub model: String,
    /// The agent's rate limits (`agent`, `agent_session` descriptors), counted with the
    /// caller's.
    pub limits: Vec<Descriptor>,
    /// `cost_per_query` (USD), added to the call's cost.
    pub flat_cost: f64,
}

impl AgentCall {
    /// Make `row` the agent's.
    pub(super) fn mark(&self, row: &mut SpendRow) {
        row.agent_id = Some(self.agent_id.clone());
        row.provider_model = Some(self.model.clone());
        (row.call_type, row.endpoint) = CALL_TYPE;
    }
}

/// Serve the chat completion `body` (made by the agent: `model` its model) for `principal`:
/// the answer as `/v1/chat/completions` gives it (whole, or a stream whose record ends with
/// it), or its error.
pub async fn chat(
    state: &AppState,
    principal: Principal,
    headers: HeaderMap,
    peer: SocketAddr,
    body: Bytes,
    agent: AgentCall,
) -> Response<Body> {
    let mut ctx = RequestCtx::new(CALL_TYPE.0);
    traced::start(state, &headers, &mut ctx);
    if let Some(m) = &state.metrics {
        ctx.completion.metrics = Some(Box::new((m.start(), read::metric_labels(&principal))));
    }
    ctx.admin = principal.is_admin();
    let result = match parse::parse_with(body, Expect::Chat, state.cache.is_some()) {
        Ok(parsed) => {
            ctx.model = parsed.model.clone().unwrap_or_default();
            ctx.completion.stream = parsed.stream;
            ctx.completion.prompt_estimate = parsed.raw.len() as u64 / 4;
            ctx.completion.flat_cost = agent.flat_cost;
            ctx.agent = Some(agent);
            let call = read::Call {
                principal,
                headers,
                parsed,
                upload: None,
                expect: Expect::Chat,
                peer,
                models: state.models.load_full(),
            };
            super::llm(state, call, &mut ctx).await
        }
        Err(e) => Err(e.into()),
    };
    ctx.stage = None;
    respond::respond(result, &mut ctx).await
}

/// Admit a call to a remote agent (the caller's blocks, budgets and rate limits, and the
/// agent's) and start its record: set its `status` when the agent answered.
pub async fn admit(
    state: &AppState,
    principal: &Principal,
    agent: AgentCall,
) -> Result<Completion, GatewayError> {
    let side = Side {
        call_type: CALL_TYPE.0,
        endpoint: CALL_TYPE.1,
        model: &agent.model.clone(),
        dep: None,
        model_access: false,
        rate_limited: true,
    };
    side::admit(state, principal, side, Some(agent), 0.0).await
}
