//! `model_list` entries the table does not serve as configured, reported in one startup line:
//! entries of a provider LiteLLM accepts and Tianji does not serve (they load and answer 501),
//! and invalid entries (unknown provider, a missing `api_base`, ...), left out as LiteLLM's
//! proxy leaves them out (`router_settings.ignore_invalid_deployments`, default true), so
//! requests naming them find no such model. `general_settings.strict_config: true` refuses to
//! start on either instead.

use std::sync::Arc;

use super::{DeploymentError, TableError};
use crate::config::Config;

/// Why an entry is not served.
#[derive(Debug)]
pub enum Why {
    /// Its provider is one Tianji does not serve (`reason`): requests answer 501.
    NotServed { provider: String, reason: Arc<str> },
    /// It cannot be built: left out of the table.
    Invalid(DeploymentError),
}

/// One entry not served as configured.
#[derive(Debug)]
pub struct Unserved {
    pub index: usize,
    pub model_name: String,
    /// `tianji_params.model` as configured.
    pub model: String,
    pub why: Why,
}

/// Which unserved entries stop the table from being built.
#[derive(Debug, Clone, Copy, Default)]
pub struct Strictness {
    /// `general_settings.strict_config`: every unserved entry.
    pub strict: bool,
    /// `router_settings.ignore_invalid_deployments: false`: invalid entries.
    pub refuse_invalid: bool,
}

impl Strictness {
    pub fn of(config: &Config) -> Self {
        Self {
            strict: config.general_settings.strict_config,
            refuse_invalid: config.router_settings.ignore_invalid_deployments == Some(false),
        }
    }

    /// The error that stops the build for `u`, if it does.
    pub fn refuses(&self, u: Unserved) -> Result<Unserved, TableError> {
        let refuse = match &u.why {
            Why::NotServed { .. } => self.strict,
            Why::Invalid(_) => self.strict || self.refuse_invalid,
        };
        if !refuse {
            return Ok(u);
        }
        let source = match u.why {
            Why::NotServed { provider, reason } => DeploymentError::NotServed(provider, reason),
            Why::Invalid(e) => e,
        };
        Err(TableError {
            index: u.index,
            model_name: u.model_name,
            source,
        })
    }
}

/// The startup line about `list` (none when every entry is served).
pub fn line(list: &[Unserved]) -> Option<String> {
    let entry = |u: &Unserved| format!("model_list[{}] {} ({})", u.index, u.model_name, u.model);
    let not_served: Vec<String> = list
        .iter()
        .filter_map(|u| match &u.why {
            Why::NotServed { provider, reason } => {
                Some(format!("{}: provider {provider}: {reason}", entry(u)))
            }
            Why::Invalid(_) => None,
        })
        .collect();
    let invalid: Vec<String> = list
        .iter()
        .filter_map(|u| match &u.why {
            Why::Invalid(e) => Some(format!("{}: {e}", entry(u))),
            Why::NotServed { .. } => None,
        })
        .collect();
    let mut parts = Vec::new();
    if !not_served.is_empty() {
        parts.push(format!(
            "{} model_list entries use a provider Tianji does not serve; they load and requests to them answer 501: {}",
            not_served.len(),
            not_served.join("; ")
        ));
    }
    if !invalid.is_empty() {
        parts.push(format!(
            "{} invalid model_list entries are left out (requests to them answer 400 Invalid model name; router_settings.ignore_invalid_deployments: false or general_settings.strict_config: true refuses to start instead): {}",
            invalid.len(),
            invalid.join("; ")
        ));
    }
    (!parts.is_empty()).then(|| parts.join(". "))
}
