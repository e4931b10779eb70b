//! The canonical event of one request, in LiteLLM's `StandardLoggingPayload` shape. The request
//! path only moves its finished SpendLogs row into an [`Event`]; a sink's background task
//! serializes the [`Payload`], which borrows everything from the row (request and response
//! bodies stay the raw JSON they were: nothing is parsed into a tree or copied again).

use serde::Serialize;
use serde_json::value::RawValue;

use crate::observability::traces::SpanIds;
use crate::spend::record::{ErrorInformation, SpendRow, Who, error_class};

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
}

impl Event {
    pub fn new(row: SpendRow, stream: bool, privacy: Privacy, trace: Option<SpanIds>) -> Self {
        Self {
            row,
            stream,
            trace,
            privacy,
        }
    }

    pub fn ok(&self) -> bool {
        self.row.status == "success"
    }

    /// The `StandardLoggingPayload` (serialize it; its fields borrow from the row).
    pub fn payload(&self) -> Payload<'_> {
        let r = &self.row;
        let no_messages = self.privacy.no_messages;
        let id = r.call_id.hyphenated().to_string();
        Payload {
            trace_id: id.clone(),
            id,
            call_type: r.call_type,
            stream: self.stream,
            response_cost: r.spend,
            status: r.status,
            custom_llm_provider: r.provider(),
            total_tokens: r.total_tokens,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            start_time: r.start_time,
            end_time: r.end_time,
            completion_start_time: r.completion_start_time.unwrap_or(r.end_time),
            response_time: (r.end_time - r.start_time).max(0.0),
            model: r.model(),
            model_id: r.model_id(),
            model_group: &r.model_group,
            api_base: r.api_base(),
            metadata: metadata(r, self.privacy.redact_key_info),
            cache_hit: r.cache_hit,
            cache_key: &r.cache_key,
            saved_cache_cost: 0.0,
            request_tags: &r.request_tags,
            end_user: r.end_user().unwrap_or(""),
            requester_ip_address: r.requester_ip_address,
            messages: if no_messages {
                Body::Redacted(REDACTED)
            } else {
                Body::of(&r.messages)
            },
            response: if no_messages {
                Body::RedactedText { text: REDACTED }
            } else {
                Body::of(&r.response)
            },
            error_str: r.error.as_ref().map(|e| e.error_message.as_str()),
            error_information: r.error.as_ref().map(|err| ErrorInfo::of(r, err)),
            model_parameters: Empty {},
            hidden_params: Hidden {
                model_id: r.model_id(),
                api_base: r.api_base(),
                response_cost: r.spend,
            },
        }
    }
}

/// LiteLLM's `StandardLoggingPayload`.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    pub id: String,
    pub trace_id: String,
    pub call_type: &'a str,
    pub stream: bool,
    pub response_cost: f64,
    pub status: &'a str,
    pub custom_llm_provider: &'a str,
    pub total_tokens: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    #[serde(rename = "startTime")]
    pub start_time: f64,
    #[serde(rename = "endTime")]
    pub end_time: f64,
    #[serde(rename = "completionStartTime")]
    pub completion_start_time: f64,
    pub response_time: f64,
    pub model: &'a str,
    pub model_id: &'a str,
    pub model_group: &'a str,
    pub api_base: &'a str,
    pub metadata: Metadata<'a>,
    pub cache_hit: bool,
    pub cache_key: &'a str,
    pub saved_cache_cost: f64,
    pub request_tags: &'a [String],
    pub end_user: &'a str,
    pub requester_ip_address: Option<std::net::IpAddr>,
    pub messages: Body<'a>,
    pub response: Body<'a>,
    pub error_str: Option<&'a str>,
    pub error_information: Option<ErrorInfo<'a>>,
    pub model_parameters: Empty,
    pub hidden_params: Hidden<'a>,
}

/// A request or response body: the raw JSON, `null`, or LiteLLM's redaction placeholders.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Body<'a> {
    Raw(&'a RawValue),
    Null(()),
    Redacted(&'static str),
    RedactedText { text: &'static str },
}

impl<'a> Body<'a> {
    fn of(v: &'a Option<Box<RawValue>>) -> Self {
        v.as_deref().map_or(Body::Null(()), Body::Raw)
    }
}

/// `{}`.
#[derive(Debug, Serialize)]
pub struct Empty {}

#[derive(Debug, Serialize)]
pub struct Hidden<'a> {
    pub model_id: &'a str,
    pub api_base: &'a str,
    pub response_cost: f64,
}

/// `StandardLoggingPayloadErrorInformation`.
#[derive(Debug, Serialize)]
pub struct ErrorInfo<'a> {
    pub error_code: String,
    pub error_class: &'static str,
    pub llm_provider: &'a str,
    pub traceback: &'static str,
    pub error_message: &'a str,
}

impl<'a> ErrorInfo<'a> {
    fn of(r: &'a SpendRow, err: &'a ErrorInformation) -> Self {
        Self {
            error_code: err.error_code.to_string(),
            error_class: error_class(err.error_code),
            llm_provider: r.provider(),
            traceback: "",
            error_message: &err.error_message,
        }
    }
}

/// `StandardLoggingMetadata`: the caller's `user_api_key_*` fields (left out with `redact`).
#[derive(Debug, Serialize)]
pub struct Metadata<'a> {
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyInfo<'a>>,
    pub requester_ip_address: Option<std::net::IpAddr>,
    pub endpoint: &'a str,
}

/// The caller's key, team, user, org and end user.
#[derive(Debug, Serialize)]
pub struct KeyInfo<'a> {
    pub user_api_key_hash: &'a str,
    #[serde(flatten)]
    pub who: Who<'a>,
}

fn metadata(r: &SpendRow, redact: bool) -> Metadata<'_> {
    let key = (!redact).then(|| KeyInfo {
        user_api_key_hash: r.api_key(),
        who: r.who(),
    });
    Metadata {
        key,
        requester_ip_address: r.requester_ip_address,
        endpoint: r.endpoint,
    }
}
