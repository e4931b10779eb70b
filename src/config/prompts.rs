//! `prompts` entries (LiteLLM's layout: `prompt_id`, then `tianji_params` (or `litellm_params`)
//! with `prompt_integration` and where the template is: `prompt_file`, `prompt_directory`,
//! `dotprompt_content` or `prompt_data`; `prompt_info` optional). `crate::prompts` reads the
//! templates and serves them.

use serde::Deserialize;
use serde_json::{Map, Value};

/// The prompt integration Tianji serves: `.prompt` files (Google's dotprompt, rendered with
/// Jinja syntax as LiteLLM does).
pub const DOTPROMPT: &str = "dotprompt";

/// A prompt's `tianji_params`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PromptParams {
    /// The id the template is registered under (defaults to the entry's `prompt_id`).
    pub prompt_id: Option<String>,
    /// `dotprompt` (LiteLLM's others, such as `langfuse` or `gitlab`, are not served).
    pub prompt_integration: String,
    /// A `.prompt` file (front matter, then the template).
    pub prompt_file: Option<String>,
    /// A directory holding `{prompt_id}.prompt`.
    pub prompt_directory: Option<String>,
    /// The `.prompt` text itself.
    pub dotprompt_content: Option<String>,
    /// `{content, metadata}`, or `{prompt_id: {content, metadata}}`.
    pub prompt_data: Option<Value>,
    /// Anything else, kept as given.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One entry of `prompts`.
#[derive(Debug, Clone, Deserialize)]
pub struct PromptEntry {
    pub prompt_id: String,
    #[serde(alias = "litellm_params")]
    pub tianji_params: PromptParams,
    /// Free-form (`prompt_type` is `config` for these).
    #[serde(default)]
    pub prompt_info: Option<Value>,
}
