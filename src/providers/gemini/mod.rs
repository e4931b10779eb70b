//! Google Gemini translation, pure (no I/O), for both the Gemini API (AI Studio) and Vertex AI,
//! which share the `generateContent` wire format.
//!
//! Outbound (a client speaking OpenAI, a Gemini deployment): chat requests to `generateContent`
//! bodies ([`request`]), responses back to chat completions ([`response`]), and
//! `streamGenerateContent?alt=sse` streams to chat completion chunks ([`stream`]).
//!
//! Inbound (a client speaking Gemini on our `/v1beta/models/{model}:…` routes, any deployment):
//! Gemini requests to chat requests and chat answers back to Gemini ([`native`]).
//!
//! Also embeddings ([`embed`]) and Vertex AI service-account auth and URLs ([`vertex`]).
//!
//! Thought signatures: Gemini 3 rejects a history whose function calls lost the
//! `thoughtSignature` the model returned with them. OpenAI tool calls have no such field, so the
//! signature rides in the tool call id, `<id>__thought__<signature>` (the convention LiteLLM
//! uses; clients echo ids verbatim), and goes back on the `functionCall` part on the next turn.

pub mod embed;
pub mod native;
pub mod request;
pub mod response;
pub mod stream;
pub mod vertex;

use super::sse_lines::data_lines;

/// Why a request cannot be translated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TranslateError {
    /// An OpenAI request a Gemini model cannot be sent.
    #[error("Invalid request for a Gemini model: {0}")]
    Invalid(String),
    /// A Gemini-format request (our native routes) that cannot be read.
    #[error("Invalid Gemini request: {0}")]
    InvalidGemini(String),
}

/// Separates a tool call id from the thought signature carried in it.
pub const THOUGHT_SEPARATOR: &str = "__thought__";

/// A tool call id and the thought signature carried in it, if any.
pub fn split_tool_call_id(id: &str) -> (&str, Option<&str>) {
    match id.split_once(THOUGHT_SEPARATOR) {
        Some((base, sig)) if !sig.is_empty() => (base, Some(sig)),
        _ => (id, None),
    }
}

/// The OpenAI tool call id for a Gemini `functionCall` part: the call's own `id` when Gemini
/// sent one, else `call_<response>_<n>` (unique across the turns of a conversation, so clients
/// that key tool results by id do not mix turns up), plus the part's thought signature.
pub(crate) fn tool_call_id(response_id: &str, n: usize, part: &serde_json::Value) -> String {
    let own = part
        .get("functionCall")
        .and_then(|f| f.get("id"))
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty());
    let mut id = match own {
        Some(s) => s.to_string(),
        None => {
            let tail: Vec<char> = response_id
                .strip_prefix("chatcmpl-")
                .unwrap_or(response_id)
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect();
            let tail: String = tail[tail.len().saturating_sub(12)..].iter().collect();
            if tail.is_empty() {
                format!("call_{n}")
            } else {
                format!("call_{tail}_{n}")
            }
        }
    };
    if let Some(sig) = part
        .get("thoughtSignature")
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty())
    {
        id.push_str(THOUGHT_SEPARATOR);
        id.push_str(sig);
    }
    id
}

/// OpenAI `finish_reason` for a Gemini `finishReason` (`tool_calls` is decided by the caller,
/// Gemini says `STOP` for function calls).
pub fn finish_reason(reason: &str) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => "content_filter",
        _ => "stop",
    }
}

/// Gemini `finishReason` for an OpenAI `finish_reason`.
pub fn gemini_finish_reason(reason: &str) -> &'static str {
    match reason {
        "length" => "MAX_TOKENS",
        "content_filter" => "SAFETY",
        _ => "STOP",
    }
}

/// The Google RPC status name Gemini reports beside an HTTP status code in its errors.
pub fn rpc_status(http: u16) -> &'static str {
    match http {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// `data: <json>` + `terminator`, one SSE event.
fn sse(v: &serde_json::Value, terminator: &[u8]) -> Vec<u8> {
    let mut out = b"data: ".to_vec();
    out.extend_from_slice(v.to_string().as_bytes());
    out.extend_from_slice(terminator);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_call_ids_carry_signatures() {
        let part = json!({"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "c2ln"});
        let id = tool_call_id("chatcmpl-0193abcdef0123456789", 2, &part);
        assert_eq!(id, "call_ef0123456789_2__thought__c2ln");
        assert_eq!(
            split_tool_call_id(&id),
            ("call_ef0123456789_2", Some("c2ln"))
        );
        assert_eq!(split_tool_call_id("call_1"), ("call_1", None));
        let own = json!({"functionCall": {"id": "abc", "name": "f"}});
        assert_eq!(tool_call_id("x", 0, &own), "abc");
        assert_eq!(tool_call_id("", 3, &json!({})), "call_3");
    }
}
