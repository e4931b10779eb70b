//! Providers: which wire format and endpoint a `provider/model` string means.
//!
//! OpenAI-compatible providers are data: the catalogue in `providers.json` (repo root, embedded at
//! build time). Providers with their own wire format are listed in [`NATIVE`]; their translation
//! modules live next to this file.

pub mod anthropic;
pub mod bedrock;
mod catalog;
mod chunks;
pub mod cohere;
pub mod embedding_list;
pub mod errors;
pub mod gemini;
mod litellm;
pub mod mistral;
pub mod ocr;
mod openai_chat;
pub mod openai_like;
pub mod rerank;
pub mod sagemaker;
pub(crate) mod sse_lines;
pub mod supported_params;
pub mod text_completion;
pub mod token_count;
pub mod video;
pub mod watsonx;

/// A provider's stream translated, bytes in, bytes out, fed with input split anywhere.
///
/// Inward translators turn a provider's stream into OpenAI chat completion chunks
/// (`data: {...}\n\n`, ending with `data: [DONE]\n\n`); outward translators turn OpenAI
/// chunks into a client's format (Anthropic events, Gemini chunks).
pub trait StreamTranslate: Send {
    /// Translate the next bytes (any split; unfinished frames are kept for the next call).
    fn feed(&mut self, bytes: &[u8]) -> Vec<u8>;
    /// The input ended: flush what is pending and close the stream in the output format.
    fn finish(&mut self) -> Vec<u8>;
    /// How far the input got (inward translators): whether the provider's own end marker
    /// (or an error) was read. Outward translators are always [`StreamEnd::Complete`].
    fn end_state(&self) -> StreamEnd {
        StreamEnd::Complete
    }
    /// The input was cut short: flush what is pending, with the usage seen so far, but do not
    /// close the stream as finished (no finish reason, no `[DONE]`): an error follows.
    fn cut(&mut self) -> Vec<u8> {
        self.finish()
    }
}

/// An OpenAI assistant message: its text (`null` when only tool calls came), tool calls and
/// reasoning (`reasoning_content`) when there are any.
pub(crate) fn assistant_message(
    text: &str,
    reasoning: &str,
    calls: Vec<serde_json::Value>,
) -> serde_json::Value {
    use serde_json::{Value, json};
    let content = if text.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        json!(text)
    };
    let mut message = json!({"role": "assistant", "content": content});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if !reasoning.is_empty() {
        message["reasoning_content"] = json!(reasoning);
    }
    message
}

/// OpenAI usage for a provider that counts cache reads (`read`) and cache writes (`created`)
/// apart from the other input tokens: all of them are prompt tokens, as OpenAI counts them;
/// cache reads also appear as `prompt_tokens_details.cached_tokens`, and both as the
/// `cache_*_input_tokens` fields the usage reader understands.
pub(crate) fn cached_usage(input: u64, output: u64, read: u64, created: u64) -> serde_json::Value {
    let prompt = input + read + created;
    serde_json::json!({
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": {"cached_tokens": read},
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": created,
    })
}

/// The items of the list at `key` of `v` (none when it is missing or not a list).
pub(crate) fn items<'a>(
    v: &'a serde_json::Value,
    key: &str,
) -> impl Iterator<Item = &'a serde_json::Value> {
    v.get(key)
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
}

/// Text of an OpenAI `content` that is a string or a list of text parts (joined by newlines).
pub(crate) fn text_of(content: &serde_json::Value) -> String {
    use serde_json::Value;
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// How a provider's stream ended, as far as its translator has read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The provider's own end marker was read (`message_stop`, `messageStop`, a finish
    /// reason, ...).
    Complete,
    /// The provider reported an error in the stream (already translated for the client).
    Failed(String),
    /// Neither: a stream that stops here was cut short.
    Open,
}

pub use catalog::{Catalog, CatalogError, ProviderSpec};
pub use litellm::NotServed;

/// Providers that speak their own wire format (translated, not passed through).
/// `azure_text` is Azure with chat sent as text completions; `azure_ai` is OpenAI-shaped with
/// its own URLs and auth (Claude models: Anthropic's Messages API).
pub const NATIVE: &[&str] = &[
    "anthropic",
    "azure",
    "azure_ai",
    "azure_text",
    "bedrock",
    "bedrock_converse",
    "cohere",
    "cohere_chat",
    "gemini",
    "sagemaker",
    "sagemaker_chat",
    "vertex_ai",
    "vertex_ai_beta",
    "watsonx",
];

/// The provider family a deployment belongs to.
#[derive(Debug, Clone)]
pub enum ProviderKind {
    /// OpenAI wire format; body forwarded as received with `model` replaced.
    OpenAiCompatible(std::sync::Arc<ProviderSpec>),
    /// Its own wire format, translated ([`NATIVE`]).
    Native(&'static str),
    /// A provider LiteLLM accepts that Tianji does not serve (`reason`): a `model_list` entry
    /// naming it stops the config from loading.
    NotServed {
        name: std::sync::Arc<str>,
        reason: std::sync::Arc<str>,
    },
}

impl ProviderKind {
    pub fn name(&self) -> &str {
        match self {
            ProviderKind::OpenAiCompatible(s) => &s.name,
            ProviderKind::Native(n) => n,
            ProviderKind::NotServed { name, .. } => name,
        }
    }

    /// Why this provider is not served, when it is not.
    pub fn not_served(&self) -> Option<&str> {
        match self {
            ProviderKind::NotServed { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// `provider/model` split into its provider and the provider's model name.
#[derive(Debug, Clone)]
pub struct ProviderModel {
    pub kind: ProviderKind,
    pub model: String,
}

/// Why a `provider/model` string cannot be served.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProviderError {
    #[error(
        "Unknown provider '{0}' (neither LiteLLM nor Tianji knows it). Use provider/model with a provider from providers.json (e.g. openai/gpt-4o, groq/llama-3.1-8b-instant)"
    )]
    Unknown(String),
    #[error("Empty model name")]
    Empty,
}

impl Catalog {
    /// Split `provider/model`. A name without `/` is an OpenAI model.
    pub fn parse_model(&self, full: &str) -> Result<ProviderModel, ProviderError> {
        let full = full.trim();
        if full.is_empty() {
            return Err(ProviderError::Empty);
        }
        let (prefix, rest) = match full.split_once('/') {
            Some((p, r)) => (p, r),
            None => {
                return match self.get("openai") {
                    Some(spec) => Ok(ProviderModel {
                        kind: ProviderKind::OpenAiCompatible(spec),
                        model: full.to_string(),
                    }),
                    None => Err(ProviderError::Unknown("openai".into())),
                };
            }
        };
        if rest.is_empty() {
            return Err(ProviderError::Empty);
        }
        if let Some(spec) = self.get(prefix) {
            return Ok(ProviderModel {
                kind: ProviderKind::OpenAiCompatible(spec),
                model: rest.to_string(),
            });
        }
        if let Some(n) = NATIVE.iter().find(|n| **n == prefix) {
            return Ok(ProviderModel {
                kind: ProviderKind::Native(n),
                model: rest.to_string(),
            });
        }
        if let Some(reason) = self.not_served.reason(prefix) {
            return Ok(ProviderModel {
                kind: ProviderKind::NotServed {
                    name: prefix.into(),
                    reason: reason.clone(),
                },
                model: rest.to_string(),
            });
        }
        Err(ProviderError::Unknown(prefix.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_provider_prefix() {
        let c = Catalog::builtin().unwrap();
        let pm = c.parse_model("groq/llama-3.1-8b").unwrap();
        assert_eq!(pm.kind.name(), "groq");
        assert_eq!(pm.model, "llama-3.1-8b");
        let pm = c.parse_model("gpt-4o").unwrap();
        assert_eq!(pm.kind.name(), "openai");
        let pm = c.parse_model("openrouter/meta-llama/llama-3").unwrap();
        assert_eq!(pm.model, "meta-llama/llama-3");
        assert!(matches!(
            c.parse_model("anthropic/claude").unwrap().kind,
            ProviderKind::Native("anthropic")
        ));
        assert_eq!(
            c.parse_model("nosuch/x").unwrap_err(),
            ProviderError::Unknown("nosuch".into())
        );
        assert_eq!(c.parse_model("groq/").unwrap_err(), ProviderError::Empty);
    }

    #[test]
    fn vllm_is_an_alias() {
        let c = Catalog::builtin().unwrap();
        assert_eq!(c.parse_model("vllm/x").unwrap().kind.name(), "hosted_vllm");
    }
}
