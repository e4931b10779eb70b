//! Cohere v2 API translation, pure (no I/O): OpenAI chat requests to `POST /v2/chat` bodies
//! ([`request`]), chat responses back to chat completions ([`response`]), v2 chat event streams
//! to chat completion chunks ([`stream`]), and embeddings both ways ([`embed`]).
//!
//! Field names follow the v2 reference (docs.cohere.com/reference/chat, /reference/embed) and
//! the types of the official `cohere-python` SDK (`src/cohere/v2/raw_client.py`,
//! `src/cohere/types/`).

pub mod embed;
pub mod request;
pub mod response;
pub mod stream;

/// Why a request cannot be translated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TranslateError {
    #[error("Invalid request for a Cohere model: {0}")]
    Invalid(String),
}

fn invalid(m: impl Into<String>) -> TranslateError {
    TranslateError::Invalid(m.into())
}

/// OpenAI `finish_reason` for a Cohere v2 `finish_reason` (`COMPLETE`, `STOP_SEQUENCE`,
/// `MAX_TOKENS`, `TOOL_CALL`, `ERROR`, `TIMEOUT`; matched without regard to case). OpenAI has
/// no error reason, so `ERROR` and `TIMEOUT` end as `stop`, as LiteLLM maps them.
pub fn finish_reason(reason: &str) -> &'static str {
    match reason.to_ascii_uppercase().as_str() {
        "MAX_TOKENS" => "length",
        "TOOL_CALL" => "tool_calls",
        "ERROR_TOXIC" => "content_filter",
        _ => "stop",
    }
}

/// A token count that Cohere may send as an integer or a float (the SDK types it `float`).
fn count(v: Option<&serde_json::Value>) -> Option<u64> {
    let v = v?;
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f.round() as u64))
}
