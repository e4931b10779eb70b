//! AWS Bedrock translation, pure (no I/O): OpenAI chat requests to Converse requests
//! ([`request`]), Converse responses back to chat completions ([`response`]), ConverseStream
//! event streams to chat completion chunks ([`stream`], over the AWS event-stream framing in
//! [`eventstream`]), InvokeModel embeddings ([`embed`]) and SigV4 request signing ([`sigv4`]).
//!
//! The model is not in the request body: it is in the path, see [`model_path`].

pub mod embed;
pub mod eventstream;
pub mod request;
pub mod response;
pub mod sigv4;
pub mod stream;

/// Why a request cannot be translated for Bedrock.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TranslateError {
    #[error("Invalid request for a Bedrock model: {0}")]
    Invalid(String),
}

/// OpenAI `finish_reason` for a Converse `stopReason`.
pub fn finish_reason(stop: &str) -> &'static str {
    match stop {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        _ => "stop",
    }
}

/// The request path for `model` and an operation (`converse`, `converse-stream`, `invoke`),
/// e.g. `/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse`.
///
/// The model id (or inference profile ARN) is percent-encoded once, as the AWS SDKs send it;
/// [`sigv4::sign`] encodes the path again for the canonical request, as Bedrock expects.
pub fn model_path(model: &str, operation: &str) -> String {
    let mut out = String::from("/model/");
    for b in model.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push('/');
    out.push_str(operation);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_are_encoded_in_the_path() {
        assert_eq!(
            model_path("anthropic.claude-3-5-sonnet-20240620-v1:0", "converse"),
            "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
        );
        assert_eq!(
            model_path("arn:aws:bedrock:us-east-1:1:inference-profile/x", "invoke"),
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/invoke"
        );
    }

    #[test]
    fn stop_reasons() {
        assert_eq!(finish_reason("end_turn"), "stop");
        assert_eq!(finish_reason("stop_sequence"), "stop");
        assert_eq!(finish_reason("max_tokens"), "length");
        assert_eq!(finish_reason("tool_use"), "tool_calls");
        assert_eq!(finish_reason("guardrail_intervened"), "content_filter");
        assert_eq!(finish_reason("content_filtered"), "content_filter");
    }
}
