//! Spend settings value types.

use serde::Deserialize;

/// One provider's limit as configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderBudgetConfig {
    #[serde(alias = "max_budget")]
    pub budget_limit: Option<f64>,
    #[serde(alias = "budget_duration")]
    pub time_period: Option<String>,
}
