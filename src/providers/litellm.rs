//! LiteLLM's provider prefixes (`data/litellm_providers.json`, embedded): every name LiteLLM
//! accepts before the `/` of a model, and the ones Tianji does not serve, with why. A
//! `model_list` entry naming one of those stops the config from loading; a name LiteLLM does
//! not know either is an unknown provider.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Deserialize;

use super::CatalogError;

const DATA: &str = include_str!("../../data/litellm_providers.json");

#[derive(Deserialize)]
struct File {
    litellm_providers: Vec<String>,
    /// Reason -> the providers not served for it.
    not_served: BTreeMap<String, Vec<String>>,
}

/// LiteLLM's providers that Tianji does not serve: name -> why.
#[derive(Debug, Clone, Default)]
pub struct NotServed {
    by_name: HashMap<String, Arc<str>>,
    /// Every LiteLLM provider name, in LiteLLM's order.
    all: Vec<String>,
}

impl NotServed {
    /// The list compiled into the binary.
    pub fn builtin() -> Result<Self, CatalogError> {
        let file: File =
            serde_json::from_str(DATA).map_err(|e| CatalogError::LiteLlm(e.to_string()))?;
        let mut by_name = HashMap::new();
        for (reason, names) in file.not_served {
            let reason: Arc<str> = reason.into();
            for n in names {
                if !file.litellm_providers.contains(&n) {
                    return Err(CatalogError::LiteLlm(format!(
                        "`{n}` is not one of LiteLLM's providers"
                    )));
                }
                if by_name.insert(n.clone(), reason.clone()).is_some() {
                    return Err(CatalogError::LiteLlm(format!("`{n}` is listed twice")));
                }
            }
        }
        Ok(Self {
            by_name,
            all: file.litellm_providers,
        })
    }

    /// Why `name` is not served, when it is a LiteLLM provider Tianji does not serve.
    pub fn reason(&self, name: &str) -> Option<&Arc<str>> {
        self.by_name.get(name)
    }

    /// Every provider name LiteLLM accepts.
    pub fn litellm_names(&self) -> &[String] {
        &self.all
    }
}

#[cfg(test)]
mod tests {
    use crate::providers::{Catalog, NATIVE, ProviderKind};

    #[test]
    fn every_litellm_provider_is_served_or_listed_as_not_served() {
        let c = Catalog::builtin().unwrap();
        let names = c.not_served.litellm_names();
        assert!(names.len() > 140, "{}", names.len());
        for n in names {
            let served = c.get(n).is_some() || NATIVE.contains(&n.as_str());
            let listed = c.not_served.reason(n).is_some();
            assert!(served != listed, "{n}: served {served}, listed {listed}");
            let kind = c.parse_model(&format!("{n}/m")).unwrap().kind;
            assert_eq!(
                matches!(kind, ProviderKind::NotServed { .. }),
                listed,
                "{n}"
            );
            let want = c.get(n).map_or_else(|| n.clone(), |s| s.name.clone());
            assert_eq!(kind.name(), want);
        }
    }

    #[test]
    fn text_completion_openai_is_openai_with_chat_via_completions() {
        let c = Catalog::builtin().unwrap();
        let spec = c.get("text-completion-openai").unwrap();
        assert!(spec.chat_via_completions);
        assert_eq!(spec.base_url, c.get("openai").unwrap().base_url);
        for alias in ["custom_openai", "openai_like", "aiohttp_openai"] {
            assert_eq!(c.get(alias).unwrap().name, "openai");
        }
    }
}
