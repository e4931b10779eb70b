//! `router_settings.provider_budget_config`: a spend limit per provider and period. Spend is
//! counted per period window (windows are aligned to multiples of the period since the Unix
//! epoch, so every instance agrees on them); deployments of a provider at or over its limit are
//! left out of routing until the window ends. With Redis the instances add their spend to one
//! total per provider and window every second (no Redis call on the request path).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::util::redis_conn::Conn;
use serde_json::{Value, json};

use super::windowed::Windowed;
pub use crate::config::spend::ProviderBudgetConfig;

#[derive(Debug, Clone)]
struct Limit {
    max: f64,
    period: String,
    secs: u64,
}

/// Why a provider budget config is unusable.
#[derive(Debug, thiserror::Error)]
#[error("router_settings.provider_budget_config.{provider}: {message}")]
pub struct ProviderBudgetError {
    provider: String,
    message: String,
}

pub struct ProviderBudgets {
    limits: HashMap<String, Limit>,
    spend: Arc<Windowed>,
}

impl ProviderBudgets {
    /// `None` when nothing is configured.
    pub fn new(
        cfg: &BTreeMap<String, ProviderBudgetConfig>,
    ) -> Result<Option<Self>, ProviderBudgetError> {
        if cfg.is_empty() {
            return Ok(None);
        }
        let mut limits = HashMap::new();
        for (provider, c) in cfg {
            let err = |message: &str| ProviderBudgetError {
                provider: provider.clone(),
                message: message.to_string(),
            };
            let max = c
                .budget_limit
                .filter(|m| m.is_finite() && *m >= 0.0)
                .ok_or_else(|| err("budget_limit must be a non-negative number"))?;
            let period = c
                .time_period
                .clone()
                .ok_or_else(|| err("time_period is required (e.g. 1d, 30d, 1mo)"))?;
            let secs = crate::util::duration::parse(&period)
                .map(|d| d.as_secs())
                .filter(|s| *s > 0)
                .ok_or_else(|| {
                    err("time_period must be a duration such as 30s, 10m, 24h, 7d, 1mo")
                })?;
            limits.insert(provider.clone(), Limit { max, period, secs });
        }
        Ok(Some(Self {
            limits,
            spend: Arc::new(Windowed::new("provider_spend")),
        }))
    }

    /// `(spend, limit)` when `provider` has reached its limit.
    pub fn over(&self, provider: &str) -> Option<(f64, f64)> {
        let l = self.limits.get(provider)?;
        let (spend, _) = self.spend.spend(provider, l.secs);
        (spend >= l.max).then_some((spend, l.max))
    }

    /// Book `cost` against `provider` (when it has a limit).
    pub fn add(&self, provider: &str, cost: f64) {
        let Some(l) = self.limits.get(provider) else {
            return;
        };
        self.spend.add(provider, l.secs, cost);
    }

    /// `GET /provider/budgets`.
    pub fn report(&self) -> Value {
        let mut out = serde_json::Map::new();
        let mut names: Vec<&String> = self.limits.keys().collect();
        names.sort();
        for p in names {
            let l = &self.limits[p];
            let (spend, ends) = self.spend.spend(p, l.secs);
            let reset = crate::util::clock::fmt_utc(ends as f64).replace(' ', "T");
            out.insert(
                p.clone(),
                json!({"budget_limit": l.max, "time_period": l.period, "spend": spend,
                       "budget_reset_at": format!("{reset}Z")}),
            );
        }
        json!({ "providers": out })
    }

    /// Share the totals through Redis every `every`.
    pub fn share(&self, conn: Conn, every: Duration) {
        self.spend.share(conn, every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_windows() {
        let mut cfg = BTreeMap::new();
        cfg.insert(
            "openai".to_string(),
            ProviderBudgetConfig {
                budget_limit: Some(1.0),
                time_period: Some("1d".into()),
            },
        );
        let pb = ProviderBudgets::new(&cfg).unwrap().unwrap();
        assert!(pb.over("openai").is_none());
        pb.add("openai", 0.6);
        pb.add("anthropic", 5.0);
        assert!(pb.over("openai").is_none());
        pb.add("openai", 0.4);
        assert_eq!(pb.over("openai"), Some((1.0, 1.0)));
        assert!(pb.over("anthropic").is_none());
        let r = pb.report();
        assert_eq!(r["providers"]["openai"]["spend"], 1.0);
        assert_eq!(r["providers"]["openai"]["time_period"], "1d");
        cfg.insert(
            "x".into(),
            ProviderBudgetConfig {
                budget_limit: None,
                time_period: Some("1d".into()),
            },
        );
        assert!(ProviderBudgets::new(&cfg).is_err());
    }
}
