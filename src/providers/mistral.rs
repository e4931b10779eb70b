//! Mistral (`api.mistral.ai/v1`): OpenAI-shaped, but strict. Mistral validates bodies with
//! `extra="forbid"`, so any field it does not know is a 422 `extra_forbidden` ("Extra inputs are
//! not permitted"), and it checks tool call ids. [`fix_request`] and [`fix_embedding_request`]
//! rewrite an OpenAI body in place into one Mistral accepts.
//!
//! Sources (what was confirmed, and where):
//! - Request fields: `ChatCompletionRequest` / `EmbeddingRequest` and the message models of the
//!   official SDK, mistralai/client-python `src/mistralai/client/models/` (chatcompletionrequest,
//!   systemmessage, usermessage, assistantmessage, toolmessage, embeddingrequest,
//!   encodingformat, toolchoiceenum, reasoningeffort). There is no `seed` (it is
//!   `random_seed`), no `max_completion_tokens`, `stream_options`, `user`, `logprobs`,
//!   `logit_bias`, `service_tier`, `store`, `modalities`; `parallel_tool_calls`,
//!   `reasoning_effort`, `prediction`, `metadata`, `prompt_cache_key`, `n` are accepted;
//!   `tool_choice` takes `auto`/`none`/`any`/`required` or `{type: function, function: {name}}`.
//! - Extra fields rejected: mistralai/platform-docs-public#7 (`frequency_penalty`, 2024, now
//!   accepted), dnakov/anon-kode#53 (`stream_options.include_usage`), editor-code-assistant/eca#231
//!   (`max_completion_tokens`), OpenHands/OpenHands-CLI#83 (`metadata`, since added), Gage-
//!   Technologies/mistral-go#2 (`messages[].user.name`), charmbracelet/crush#1590
//!   (`messages[].assistant.reasoning_content`).
//! - Tool call ids: "Tool call id was ... but must be a-z, A-Z, 0-9, with a length of 9."
//!   (jackmpcollins/magentic#276, langchain-ai/langchain#24668, openclaw/openclaw#57672).
//! - `reasoning_effort` values differ by model (`none`/`high` on Small 4 and Medium 3.5,
//!   `low`/`medium`/`high` on Large 4: docs.mistral.ai/capabilities/reasoning), so it passes
//!   through unchanged for Mistral to judge.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Top-level chat fields Mistral accepts; everything else is dropped.
const CHAT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "temperature",
    "top_p",
    "max_tokens",
    "stream",
    "stop",
    "random_seed",
    "metadata",
    "response_format",
    "tools",
    "tool_choice",
    "presence_penalty",
    "frequency_penalty",
    "n",
    "prediction",
    "parallel_tool_calls",
    "reasoning_effort",
    "prompt_mode",
    "guardrails",
    "prompt_cache_key",
    "safe_prompt",
];

/// Embeddings fields Mistral accepts.
const EMBEDDING_FIELDS: &[&str] = &[
    "model",
    "input",
    "metadata",
    "output_dimension",
    "output_dtype",
    "encoding_format",
];

/// Fields each message role may carry.
fn message_fields(role: &str) -> &'static [&'static str] {
    match role {
        "assistant" => &["role", "content", "tool_calls", "prefix"],
        "tool" => &["role", "content", "tool_call_id", "name"],
        _ => &["role", "content"],
    }
}

/// Rewrite an OpenAI chat body for Mistral: `max_completion_tokens` -> `max_tokens` (the
/// smaller when both are set), `seed` -> `random_seed`, `tool_choice: "required"` -> `"any"`
/// (the spelling every Mistral API version takes), `developer` messages -> `system`, tool call
/// ids -> Mistral's 9-character form ([`tool_call_id`]), and fields Mistral would refuse
/// dropped, at the top level and per message.
pub fn fix_request(body: &mut Map<String, Value>) {
    if let Some(max) = body
        .remove("max_completion_tokens")
        .filter(|v| !v.is_null())
    {
        let keep = match (body.get("max_tokens").and_then(Value::as_u64), max.as_u64()) {
            (Some(a), Some(b)) => Value::from(a.min(b)),
            _ => max,
        };
        body.insert("max_tokens".into(), keep);
    }
    if let Some(seed) = body.remove("seed")
        && !body.contains_key("random_seed")
    {
        body.insert("random_seed".into(), seed);
    }
    if body.get("tool_choice").and_then(Value::as_str) == Some("required") {
        body.insert("tool_choice".into(), Value::from("any"));
    }
    body.retain(|k, v| CHAT_FIELDS.contains(&k.as_str()) && !v.is_null());
    if let Some(msgs) = body.get_mut("messages").and_then(Value::as_array_mut) {
        for m in msgs.iter_mut().filter_map(Value::as_object_mut) {
            fix_message(m);
        }
    }
}

fn fix_message(m: &mut Map<String, Value>) {
    if m.get("role").and_then(Value::as_str) == Some("developer") {
        m.insert("role".into(), Value::from("system"));
    }
    let role = m
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or("user")
        .to_string();
    let allowed = message_fields(&role);
    m.retain(|k, _| allowed.contains(&k.as_str()));
    if let Some(Value::String(id)) = m.get_mut("tool_call_id") {
        *id = tool_call_id(id);
    }
    if let Some(calls) = m.get_mut("tool_calls").and_then(Value::as_array_mut) {
        for call in calls {
            if let Some(Value::String(id)) = call.get_mut("id") {
                *id = tool_call_id(id);
            }
        }
    }
}

/// A tool call id as Mistral requires it (`[a-zA-Z0-9]{9}`): kept when it already is, else
/// derived from a hash of the id, so an assistant's call and its tool result still match.
pub fn tool_call_id(id: &str) -> String {
    if id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return id.to_string();
    }
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    Sha256::digest(id.as_bytes())
        .iter()
        .take(9)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// Rewrite an OpenAI embeddings body for Mistral: `dimensions` -> `output_dimension`, and
/// fields Mistral would refuse (`user`, ...) dropped. `encoding_format` (`float`/`base64`) is
/// Mistral's own field and stays.
pub fn fix_embedding_request(body: &mut Map<String, Value>) {
    if let Some(d) = body.remove("dimensions")
        && !body.contains_key("output_dimension")
    {
        body.insert("output_dimension".into(), d);
    }
    body.retain(|k, v| EMBEDDING_FIELDS.contains(&k.as_str()) && !v.is_null());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixed(v: Value) -> Value {
        let Value::Object(mut m) = v else {
            panic!("not an object")
        };
        fix_request(&mut m);
        Value::Object(m)
    }

    #[test]
    fn renames_and_drops() {
        let out = fixed(
            json!({"model": "m", "messages": [], "max_completion_tokens": 50,
            "max_tokens": 80, "seed": 7, "user": "u", "stream_options": {"include_usage": true},
            "logprobs": true, "parallel_tool_calls": false, "tool_choice": "required"}),
        );
        assert_eq!(
            out,
            json!({"model": "m", "messages": [], "max_tokens": 50, "random_seed": 7,
                "parallel_tool_calls": false, "tool_choice": "any"})
        );
    }

    #[test]
    fn tool_call_ids_are_nine_alphanumerics_and_stay_paired() {
        let id = tool_call_id("call_abc123XYZ");
        assert_eq!(id.len(), 9);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(id, tool_call_id("call_abc123XYZ"));
        assert_eq!(tool_call_id("Ab3dE6gH9"), "Ab3dE6gH9");
        assert_ne!(tool_call_id("toolu_1"), tool_call_id("toolu_2"));
    }

    #[test]
    fn embedding_dimensions() {
        let Value::Object(mut m) =
            json!({"model": "mistral-embed", "input": "hi", "dimensions": 256, "user": "u"})
        else {
            panic!()
        };
        fix_embedding_request(&mut m);
        assert_eq!(
            Value::Object(m),
            json!({"model": "mistral-embed", "input": "hi", "output_dimension": 256})
        );
    }
}
