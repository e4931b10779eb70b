//! The OpenAI-compatible provider catalogue (`providers.json`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Deserialize;

const BUILTIN: &str = include_str!("../../providers.json");

/// One OpenAI-compatible provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// Filled from the catalogue key.
    #[serde(skip)]
    pub name: String,
    /// Base URL that `/chat/completions`, `/completions`, `/embeddings` are appended to.
    pub base_url: String,
    /// Environment variable holding the provider key (used when the deployment sets no api_key).
    pub api_key_env: Option<String>,
    /// Environment variable overriding `base_url`.
    pub api_base_env: Option<String>,
    #[serde(default = "yes")]
    pub api_key_required: bool,
    #[serde(default)]
    pub api_base_required: bool,
    #[serde(default = "default_auth_header")]
    pub auth_header: String,
    #[serde(default = "default_auth_prefix")]
    pub auth_prefix: String,
    /// Static headers; `{api_key}` in a value is replaced by the key.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Top-level request fields renamed before forwarding.
    #[serde(default)]
    pub param_mappings: BTreeMap<String, String>,
    /// Message `content` given as a list of text parts is sent as one string.
    #[serde(default)]
    pub content_list_to_string: bool,
    /// Whether the provider accepts `stream_options.include_usage`.
    #[serde(default = "yes")]
    pub stream_options: bool,
    /// Chat requests are sent as text completions (`/completions`) and answered back as chat
    /// completions (LiteLLM's `text-completion-openai`).
    #[serde(default)]
    pub chat_via_completions: bool,
    /// The provider serves `/v1/videos` only (RunwayML): LLM requests to it are refused.
    #[serde(default)]
    pub videos_only: bool,
    #[serde(default)]
    pub aliases: Vec<String>,
}

fn yes() -> bool {
    true
}
fn default_auth_header() -> String {
    "Authorization".into()
}
fn default_auth_prefix() -> String {
    "Bearer ".into()
}

#[derive(Deserialize)]
struct File {
    providers: BTreeMap<String, ProviderSpec>,
}

/// The catalogue is malformed (a build-time file; checked by unit tests).
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("providers.json: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("providers.json: name or alias `{0}` is defined twice")]
    Duplicate(String),
    #[error("data/litellm_providers.json: {0}")]
    LiteLlm(String),
}

/// Provider name (or alias) -> spec.
#[derive(Debug, Clone)]
pub struct Catalog {
    by_name: HashMap<String, Arc<ProviderSpec>>,
    names: Vec<String>,
    /// LiteLLM's providers that Tianji does not serve, with why.
    pub(super) not_served: super::litellm::NotServed,
}

impl Catalog {
    /// The catalogue compiled into the binary.
    pub fn builtin() -> Result<Self, CatalogError> {
        let mut c = Self::from_json(BUILTIN)?;
        c.not_served = super::litellm::NotServed::builtin()?;
        Ok(c)
    }

    pub fn from_json(text: &str) -> Result<Self, CatalogError> {
        let file: File = serde_json::from_str(text)?;
        let mut by_name = HashMap::new();
        let mut names = Vec::new();
        for (name, mut spec) in file.providers {
            spec.name = name.clone();
            spec.base_url = spec.base_url.trim_end_matches('/').to_string();
            let spec = Arc::new(spec);
            names.push(name.clone());
            for key in std::iter::once(&name).chain(spec.aliases.iter()) {
                if by_name.insert(key.clone(), spec.clone()).is_some() {
                    return Err(CatalogError::Duplicate(key.clone()));
                }
            }
        }
        Ok(Self {
            by_name,
            names,
            not_served: Default::default(),
        })
    }

    pub fn get(&self, name: &str) -> Option<Arc<ProviderSpec>> {
        self.by_name.get(name).cloned()
    }

    /// Canonical provider names (aliases excluded), sorted.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_loads_and_has_required_entries() {
        let c = Catalog::builtin().unwrap();
        for n in [
            "openai",
            "groq",
            "deepseek",
            "together_ai",
            "fireworks_ai",
            "openrouter",
            "mistral",
            "perplexity",
            "xai",
            "cerebras",
            "deepinfra",
            "nvidia_nim",
            "sambanova",
            "hosted_vllm",
            "vllm",
            "ollama",
            "lm_studio",
            "llamafile",
            "xinference",
            "triton",
            "oobabooga",
            "lemonade",
            "docker_model_runner",
            "heroku",
            "datarobot",
            "novita",
            "hyperbolic",
            "featherless_ai",
        ] {
            let s = c.get(n).unwrap_or_else(|| panic!("missing provider {n}"));
            assert!(
                s.base_url.starts_with("http://") || s.base_url.starts_with("https://"),
                "{n}: {}",
                s.base_url
            );
        }
    }

    #[test]
    fn includes_every_openai_like_provider_of_the_catalogue_source() {
        // Names in the OpenAI-compatible provider catalogue providers.json was made from.
        let c = Catalog::builtin().unwrap();
        for n in [
            "publicai",
            "helicone",
            "veniceai",
            "xiaomi_mimo",
            "scaleway",
            "synthetic",
            "apertis",
            "nano-gpt",
            "poe",
            "chutes",
            "abliteration",
            "llamagate",
            "gmi",
            "sarvam",
            "assemblyai",
            "charity_engine",
            "aihubmix",
            "crusoe",
            "darkbloom",
            "neosantara",
            "tensormesh",
            "parasail",
            "libertai",
            "empiriolabs",
            "meta",
            "cognition",
            "pinstripes",
            "scx-ai",
        ] {
            assert!(c.get(n).is_some(), "missing provider {n}");
        }
    }

    #[test]
    fn rejects_unknown_fields_and_duplicates() {
        assert!(
            Catalog::from_json(r#"{"providers":{"a":{"base_url":"http://x","zzz":1}}}"#).is_err()
        );
        let dup = r#"{"providers":{"a":{"base_url":"http://x"},"b":{"base_url":"http://y","aliases":["a"]}}}"#;
        assert!(matches!(
            Catalog::from_json(dup),
            Err(CatalogError::Duplicate(_))
        ));
    }
}
