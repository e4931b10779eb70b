//! The canonical event of one request, in LiteLLM's `StandardLoggingPayload` shape. The request
//! path only moves its finished SpendLogs row into an [`Event`]; the payload is rendered once,
//! in a sink's background task, and shared by every sink that gets the event.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use crate::observability::traces::SpanIds;
use crate::spend::record::{SpendRow, error_class};

/// What the payload leaves out (`turn_off_message_logging`, `redact_user_api_key_info`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Privacy {
    pub no_messages: bool,
    pub redact_key_info: bool,
}

/// LiteLLM's placeholder for redacted messages and responses.
pub const REDACTED: &str = "redacted-by-litellm";

/// One finished request.
pub struct Event {
    pub row: SpendRow,
    pub stream: bool,
    /// The request's span, when traces run.
    pub trace: Option<SpanIds>,
    privacy: Privacy,
    payload: OnceLock<Value>,
}

impl Event {
    pub fn new(row: SpendRow, stream: bool, privacy: Privacy, trace: Option<SpanIds>) -> Self {
        Self {
            row,
            stream,
            trace,
            privacy,
            payload: OnceLock::new(),
        }
    }

    pub fn ok(&self) -> bool {
        self.row.status == "success"
    }

    /// The `StandardLoggingPayload`, rendered on first use.
    pub fn payload(&self) -> &Value {
        self.payload.get_or_init(|| render(self))
    }
}

fn render(e: &Event) -> Value {
    let r = &e.row;
    let (messages, response) = if e.privacy.no_messages {
        (json!(REDACTED), json!({"text": REDACTED}))
    } else {
        (
            r.messages.clone().unwrap_or(Value::Null),
            r.response.clone().unwrap_or(Value::Null),
        )
    };
    let error = r.error.as_ref().map(|err| {
        json!({
            "error_code": err.error_code.to_string(),
            "error_class": error_class(err.error_code),
            "llm_provider": r.provider(),
            "traceback": "",
            "error_message": err.error_message,
        })
    });
    json!({
        "id": r.call_id.hyphenated().to_string(),
        "trace_id": r.call_id.hyphenated().to_string(),
        "call_type": r.call_type,
        "stream": e.stream,
        "response_cost": r.spend,
        "status": r.status,
        "custom_llm_provider": r.provider(),
        "total_tokens": r.total_tokens,
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "startTime": r.start_time,
        "endTime": r.end_time,
        "completionStartTime": r.completion_start_time.unwrap_or(r.end_time),
        "response_time": (r.end_time - r.start_time).max(0.0),
        "model": r.model(),
        "model_id": r.model_id(),
        "model_group": r.model_group,
        "api_base": r.api_base(),
        "metadata": metadata(r, e.privacy.redact_key_info),
        "cache_hit": r.cache_hit,
        "cache_key": r.cache_key,
        "saved_cache_cost": 0.0,
        "request_tags": r.request_tags,
        "end_user": r.end_user().unwrap_or(""),
        "requester_ip_address": r.requester_ip_address.map(|a| a.to_string()),
        "messages": messages,
        "response": response,
        "error_str": r.error.as_ref().map(|e| e.error_message.as_str()),
        "error_information": error,
        "model_parameters": {},
        "hidden_params": {
            "model_id": r.model_id(),
            "api_base": r.api_base(),
            "response_cost": r.spend,
        },
    })
}

/// `StandardLoggingMetadata`: the caller's `user_api_key_*` fields (left out with `redact`).
fn metadata(r: &SpendRow, redact: bool) -> Value {
    let mut m = Map::new();
    if !redact {
        let md = r.metadata();
        let s = |v: Option<&str>| v.map_or(Value::Null, |v| Value::String(v.to_string()));
        m.insert("user_api_key_hash".into(), s(Some(md.user_api_key)));
        m.insert("user_api_key_alias".into(), s(md.user_api_key_alias));
        m.insert("user_api_key_team_id".into(), s(md.user_api_key_team_id));
        m.insert(
            "user_api_key_team_alias".into(),
            s(md.user_api_key_team_alias),
        );
        m.insert("user_api_key_user_id".into(), s(md.user_api_key_user_id));
        m.insert("user_api_key_org_id".into(), s(md.user_api_key_org_id));
        m.insert(
            "user_api_key_end_user_id".into(),
            s(md.user_api_key_end_user_id),
        );
    }
    m.insert(
        "requester_ip_address".into(),
        r.requester_ip_address
            .map_or(Value::Null, |a| Value::String(a.to_string())),
    );
    m.insert("endpoint".into(), Value::String(r.endpoint.to_string()));
    Value::Object(m)
}
