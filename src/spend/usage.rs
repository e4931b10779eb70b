//! Token usage, as providers report it and the gateway books it.

use serde::Deserialize;

/// Token usage as OpenAI reports it. `prompt_tokens` includes the cached tokens, as OpenAI
/// counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "RawUsage")]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// Prompt tokens read from the provider's prompt cache.
    pub cache_read_tokens: u64,
    /// Prompt tokens written to the provider's prompt cache.
    pub cache_creation_tokens: u64,
}

/// `usage` in the shapes OpenAI-compatible providers send: OpenAI's
/// `prompt_tokens_details.cached_tokens`, or Anthropic-style `cache_read_input_tokens` and
/// `cache_creation_input_tokens` beside the totals.
#[derive(Deserialize)]
struct RawUsage {
    /// `input_tokens`/`output_tokens`: the Responses API's names.
    #[serde(default, alias = "input_tokens")]
    prompt_tokens: u64,
    #[serde(default, alias = "output_tokens")]
    completion_tokens: u64,
    #[serde(default)]
    total_tokens: u64,
    #[serde(default, alias = "input_tokens_details")]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl From<RawUsage> for Usage {
    fn from(r: RawUsage) -> Self {
        let cached = r.prompt_tokens_details.and_then(|d| d.cached_tokens);
        Self {
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            total_tokens: r.total_tokens.max(r.prompt_tokens + r.completion_tokens),
            cache_read_tokens: r.cache_read_input_tokens.or(cached).unwrap_or(0),
            cache_creation_tokens: r.cache_creation_input_tokens.unwrap_or(0),
        }
    }
}
