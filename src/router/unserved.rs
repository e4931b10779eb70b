//! `model_list` entries the table does not serve as configured, reported in one startup line:
//! invalid entries (unknown provider, a missing `api_base`, ...), left out as LiteLLM's proxy
//! leaves them out (`router_settings.ignore_invalid_deployments`, default true), so requests
//! naming them find no such model. `general_settings.strict_config: true` (or
//! `ignore_invalid_deployments: false`) refuses to start on them instead.
//!
//! An entry naming a provider LiteLLM accepts and Tianji does not serve is not one of these:
//! it always stops the config from loading ([`super::ModelTable::build`]).

use super::{DeploymentError, TableError};
use crate::config::Config;

/// One entry left out of the table.
#[derive(Debug)]
pub struct Unserved {
    pub index: usize,
    pub model_name: String,
    /// `tianji_params.model` as configured.
    pub model: String,
    /// Why it cannot be built.
    pub error: DeploymentError,
}

/// Whether invalid entries stop the table from being built.
#[derive(Debug, Clone, Copy, Default)]
pub struct Strictness {
    /// `general_settings.strict_config` or `router_settings.ignore_invalid_deployments: false`.
    pub refuse_invalid: bool,
}

impl Strictness {
    pub fn of(config: &Config) -> Self {
        Self {
            refuse_invalid: config.general_settings.strict_config
                || config.router_settings.ignore_invalid_deployments == Some(false),
        }
    }

    /// The error that stops the build for `u`, if it does.
    pub fn refuses(&self, u: Unserved) -> Result<Unserved, TableError> {
        if !self.refuse_invalid {
            return Ok(u);
        }
        Err(TableError {
            index: u.index,
            model_name: u.model_name,
            model: u.model,
            source: u.error,
        })
    }
}

/// The startup line about `list` (none when every entry is served).
pub fn line(list: &[Unserved]) -> Option<String> {
    if list.is_empty() {
        return None;
    }
    let invalid: Vec<String> = list
        .iter()
        .map(|u| {
            format!(
                "model_list[{}] {} ({}): {}",
                u.index, u.model_name, u.model, u.error
            )
        })
        .collect();
    Some(format!(
        "{} invalid model_list entries are left out (requests to them answer 400 Invalid model name; router_settings.ignore_invalid_deployments: false or general_settings.strict_config: true refuses to start instead): {}",
        invalid.len(),
        invalid.join("; ")
    ))
}
