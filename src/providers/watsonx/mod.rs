//! IBM watsonx.ai translation, pure (no I/O): OpenAI chat requests to `POST /ml/v1/text/chat`
//! bodies ([`chat_request`]), its answers and `chat_stream` events back to OpenAI's (shared
//! with other OpenAI-shaped providers: [`crate::providers::openai_like`]), embeddings both
//! ways ([`embed_request`], [`embed_to_openai`]), and the IAM token exchange's form and answer
//! ([`iam_form`], [`iam_token`]).
//!
//! Shapes follow IBM's API reference (cloud.ibm.com/apidocs/watsonx-ai#text-chat,
//! #text-embeddings) and LiteLLM's `litellm/llms/watsonx/` (which parameters go through,
//! `tool_choice` strings as `tool_choice_option`, `model_id` and `project_id`/`space_id` in the
//! body, none of them for `deployment/<id>` models).

use serde_json::{Map, Value, json};

use super::chunks::{ChatChunks, JsonTranslator};
use super::openai_like;

/// A translated `/text/chat_stream` (OpenAI-shaped SSE chunks).
pub type StreamTranslator = JsonTranslator<openai_like::Events>;

/// A translator for a stream of model `model`, chunks numbered `id`, `created` the Unix time.
pub fn stream_translator(
    model: &str,
    id: &str,
    created: u64,
    include_usage: bool,
) -> StreamTranslator {
    JsonTranslator::with(
        ChatChunks::new(id, model, created, include_usage),
        openai_like::Events::new("watsonx"),
    )
}

/// `?version=` when the deployment sets no `api_version` (LiteLLM's
/// `WATSONX_DEFAULT_API_VERSION`).
pub const DEFAULT_API_VERSION: &str = "2024-03-13";
/// IBM Cloud's IAM token endpoint (`WATSONX_IAM_URL` overrides it).
pub const DEFAULT_IAM_URL: &str = "https://iam.cloud.ibm.com/identity/token";

/// Why a request cannot be translated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TranslateError {
    #[error("Invalid request for a watsonx model: {0}")]
    Invalid(String),
}

fn invalid(m: impl Into<String>) -> TranslateError {
    TranslateError::Invalid(m.into())
}

/// Where a model runs: the project or space of a foundation model (`model_id` and
/// `project_id`/`space_id` go in the body), or a deployment (its id is in the URL, nothing in
/// the body).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// `None` for `deployment/<id>` models.
    pub model_id: Option<String>,
    pub project_id: Option<String>,
    pub space_id: Option<String>,
}

impl Scope {
    fn apply(&self, body: &mut Map<String, Value>) {
        let Some(model) = &self.model_id else {
            return;
        };
        body.insert("model_id".into(), json!(model));
        match (&self.project_id, &self.space_id) {
            (Some(p), _) => {
                body.insert("project_id".into(), json!(p));
            }
            (None, Some(s)) => {
                body.insert("space_id".into(), json!(s));
            }
            (None, None) => {}
        }
    }
}

/// OpenAI chat members watsonx's `/text/chat` takes as they are.
const CHAT_PARAMS: &[&str] = &[
    "messages",
    "temperature",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "seed",
    "logprobs",
    "top_logprobs",
    "n",
    "response_format",
    "reasoning_effort",
    "time_limit",
];

/// `additionalProperties` and `strict` removed from a tool's JSON schema (watsonx refuses
/// them, as LiteLLM strips them).
fn clean_schema(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.remove("additionalProperties");
            o.remove("strict");
            for x in o.values_mut() {
                clean_schema(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(clean_schema),
        _ => {}
    }
}

/// Translate an OpenAI chat request into a `/text/chat` (or `/text/chat_stream`) body.
/// Members watsonx does not take (`user`, `stream_options`, `logit_bias`, ...) are dropped.
pub fn chat_request(req: &Value, scope: &Scope) -> Result<Value, TranslateError> {
    if !req.get("messages").is_some_and(Value::is_array) {
        return Err(invalid("messages must be a list"));
    }
    let mut body = Map::new();
    for k in CHAT_PARAMS {
        if let Some(v) = req.get(*k).filter(|v| !v.is_null()) {
            body.insert((*k).to_string(), v.clone());
        }
    }
    if let Some(m) = req
        .get("max_completion_tokens")
        .or_else(|| req.get("max_tokens"))
        .filter(|v| !v.is_null())
    {
        body.insert("max_tokens".into(), m.clone());
    }
    if let Some(tools) = req.get("tools").filter(|t| t.is_array()) {
        let mut tools = tools.clone();
        clean_schema(&mut tools);
        body.insert("tools".into(), tools);
    }
    match req.get("tool_choice") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if matches!(s.as_str(), "auto" | "none" | "required") => {
            body.insert("tool_choice_option".into(), json!(s));
        }
        Some(c @ Value::Object(_)) => {
            body.insert("tool_choice".into(), c.clone());
        }
        Some(_) => {
            return Err(invalid(
                "tool_choice must be auto, none, required or an object",
            ));
        }
    }
    scope.apply(&mut body);
    Ok(Value::Object(body))
}

/// Translate an OpenAI embeddings request into a `/text/embeddings` body (`inputs`, strings
/// only).
pub fn embed_request(req: &Value, scope: &Scope) -> Result<Value, TranslateError> {
    let inputs: Vec<Value> = match req.get("input") {
        Some(Value::String(s)) => vec![json!(s)],
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
            items.clone()
        }
        _ => {
            return Err(invalid(
                "input must be a string or a non-empty list of strings (token arrays are not supported)",
            ));
        }
    };
    let mut body = Map::new();
    body.insert("inputs".into(), Value::Array(inputs));
    scope.apply(&mut body);
    Ok(Value::Object(body))
}

/// Translate a `/text/embeddings` answer (`results[].embedding`, `input_token_count`) into
/// OpenAI's list.
pub fn embed_to_openai(model: &str, resp: &Value) -> Value {
    let data: Vec<Value> = super::items(resp, "results")
        .enumerate()
        .map(|(i, r)| json!({"object": "embedding", "index": i, "embedding": r["embedding"]}))
        .collect();
    let tokens = resp
        .get("input_token_count")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })
}

/// The IAM token request's form body for `api_key` (URL-encoded).
pub fn iam_form(api_key: &str) -> String {
    let mut out =
        String::from("grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey=");
    for b in api_key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The access token of an IAM answer and for how many seconds from `now` (Unix seconds) it
/// is valid: `expires_in`, else `expiration` (a Unix time) minus `now`.
pub fn iam_token(body: &[u8], now: u64) -> Result<(String, u64), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let token = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or("no access_token")?;
    let secs = v
        .get("expires_in")
        .and_then(Value::as_u64)
        .or_else(|| {
            v.get("expiration")
                .and_then(Value::as_u64)
                .map(|at| at.saturating_sub(now))
        })
        .unwrap_or(3600);
    Ok((token.to_string(), secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope {
            model_id: Some("ibm/granite-3-8b-instruct".into()),
            project_id: Some("p-1".into()),
            space_id: Some("s-1".into()),
        }
    }

    #[test]
    fn chat_body() {
        let req = json!({"model": "x", "stream": true, "stream_options": {"include_usage": true},
            "user": "u", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 9,
            "temperature": 0.2, "tool_choice": "required",
            "tools": [{"type": "function", "function": {"name": "f", "strict": true,
                "parameters": {"type": "object", "additionalProperties": false, "properties": {}}}}]});
        let b = chat_request(&req, &scope()).unwrap();
        assert_eq!(
            b,
            json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 0.2,
                "max_tokens": 9, "tool_choice_option": "required",
                "tools": [{"type": "function", "function": {"name": "f",
                    "parameters": {"type": "object", "properties": {}}}}],
                "model_id": "ibm/granite-3-8b-instruct", "project_id": "p-1"})
        );
        let named =
            json!({"messages": [], "tool_choice": {"type": "function", "function": {"name": "f"}}});
        let deployment = Scope::default();
        let b = chat_request(&named, &deployment).unwrap();
        assert_eq!(b["tool_choice"]["function"]["name"], "f");
        assert!(b.get("model_id").is_none() && b.get("project_id").is_none());
        assert!(chat_request(&json!({"messages": "hi"}), &deployment).is_err());
        let space = Scope {
            project_id: None,
            ..scope()
        };
        assert_eq!(
            chat_request(&json!({"messages": []}), &space).unwrap()["space_id"],
            "s-1"
        );
    }

    #[test]
    fn embeddings_both_ways() {
        let b = embed_request(&json!({"input": "hi"}), &scope()).unwrap();
        assert_eq!(b["inputs"], json!(["hi"]));
        assert_eq!(b["model_id"], "ibm/granite-3-8b-instruct");
        assert!(embed_request(&json!({"input": [[1, 2]]}), &scope()).is_err());
        assert!(embed_request(&json!({"input": []}), &scope()).is_err());
        let out = embed_to_openai(
            "slate",
            &json!({"model_id": "x", "results": [{"embedding": [0.5]}, {"embedding": [0.25]}],
                "input_token_count": 4}),
        );
        assert_eq!(
            out["data"][1],
            json!({"object": "embedding", "index": 1, "embedding": [0.25]})
        );
        assert_eq!(out["usage"]["prompt_tokens"], 4);
    }

    #[test]
    fn iam_exchange() {
        assert_eq!(
            iam_form("a b/c"),
            "grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey=a%20b%2Fc"
        );
        let (t, s) = iam_token(br#"{"access_token":"tok","expires_in":3600}"#, 0).unwrap();
        assert_eq!((t.as_str(), s), ("tok", 3600));
        let (_, s) = iam_token(br#"{"access_token":"tok","expiration":1100}"#, 1000).unwrap();
        assert_eq!(s, 100);
        assert!(iam_token(br#"{"errorMessage":"bad key"}"#, 0).is_err());
    }
}
