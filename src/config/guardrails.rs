//! `guardrails` entries (LiteLLM's layout: `guardrail_name`, then `tianji_params` (or
//! `litellm_params`) with `guardrail`, `mode`, `default_on` and each kind's own keys) and the
//! settings of the built-in ones (`banned_keywords_list`, `blocked_user_list`).
//! `crate::guardrails` builds the live guardrails from these.

use serde::Deserialize;
use serde_json::{Map, Value};

/// The guardrail kinds implemented (the `guardrail:` values `crate::guardrails` builds).
pub const KINDS: &[&str] = &[
    "banned_keywords",
    "blocked_user_list",
    "litellm_content_filter",
    "content_filter",
    "presidio",
    "openai_moderation",
    "generic_guardrail_api",
    "lakera_v2",
    "lakera",
    "bedrock",
];

/// Whether `kind` is implemented.
pub fn implemented(kind: &str) -> bool {
    KINDS.contains(&kind)
}

/// A guardrail's `tianji_params`: the keys every kind has, then the kind's own (kept as JSON
/// and read by the kind).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GuardrailParams {
    /// The kind: `litellm_content_filter`, `presidio`, `lakera_v2`, `bedrock`, ...
    pub guardrail: String,
    /// `pre_call`, `during_call`, `post_call`, `logging_only`, or a list of them.
    pub mode: Option<OneOrMany>,
    /// Runs on every request (unless the key or team turns global guardrails off).
    pub default_on: bool,
    /// Let the request through when the guardrail fails or times out (default: fail closed).
    pub fail_open: bool,
    /// `false`: a key's or team's `disable_global_guardrails` does not turn this one off.
    pub can_disable: Option<bool>,
    /// Seconds a call to the guardrail may take (default 10).
    pub timeout: Option<f64>,
    /// The kind's own keys (`api_base`, `api_key`, `patterns`, ...).
    #[serde(flatten)]
    pub params: Map<String, Value>,
}

/// One entry of `guardrails`.
#[derive(Debug, Clone, Deserialize)]
pub struct GuardrailEntry {
    pub guardrail_name: String,
    /// Free-form description, listed by `/guardrails/list`.
    #[serde(default)]
    pub guardrail_info: Option<Value>,
    #[serde(alias = "litellm_params")]
    pub tianji_params: GuardrailParams,
}

/// A string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// `banned_keywords_list` / `blocked_user_list`: a list, or the path of a text file with one
/// entry a line.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ListOrFile {
    List(Vec<String>),
    File(String),
}
