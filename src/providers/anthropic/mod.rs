//! Anthropic Messages API translation, pure (no I/O): OpenAI chat requests to Messages requests
//! ([`request`]), Messages responses back to chat completions ([`response`]), and Messages
//! event streams to chat completion chunks ([`stream`]); and for clients speaking Messages to
//! other deployments, Messages requests to chat ([`ingress`]) and chat answers back to Messages
//! ([`egress`]).

pub mod egress;
pub mod ingress;
pub mod request;
pub mod response;
pub mod stream;

/// Why a request cannot be translated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TranslateError {
    #[error("Invalid request for an Anthropic model: {0}")]
    Invalid(String),
}

/// OpenAI `finish_reason` for an Anthropic `stop_reason`.
pub fn finish_reason(stop: &str) -> &'static str {
    match stop {
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}
