//! `router_settings.provider_budget_config`: a spend limit per provider and period. Spend is
//! counted per period window (windows are aligned to multiples of the period since the Unix
//! epoch, so every instance agrees on them); deployments of a provider at or over its limit are
//! left out of routing until the window ends. With Redis the instances add their spend to one
//! total per provider and window every second (no Redis call on the request path).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;
use serde::Deserialize;
use serde_json::{Value, json};

/// One provider's limit as configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderBudgetConfig {
    #[serde(alias = "max_budget")]
    pub budget_limit: Option<f64>,
    #[serde(alias = "budget_duration")]
    pub time_period: Option<String>,
}

#[derive(Debug, Clone)]
struct Limit {
    max: f64,
    period: String,
    secs: u64,
}

#[derive(Debug, Default)]
struct Window {
    id: u64,
    /// Spend in the window as last known (all instances).
    spend: f64,
    /// Booked here, not yet added to the shared total.
    unsynced: f64,
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
    windows: Mutex<HashMap<String, Window>>,
    redis: OnceLock<ConnectionManager>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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
            let secs = crate::admin::duration::parse(&period)
                .map(|d| d.as_secs())
                .filter(|s| *s > 0)
                .ok_or_else(|| {
                    err("time_period must be a duration such as 30s, 10m, 24h, 7d, 1mo")
                })?;
            limits.insert(provider.clone(), Limit { max, period, secs });
        }
        Ok(Some(Self {
            limits,
            windows: Mutex::new(HashMap::new()),
            redis: OnceLock::new(),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The window of `provider` now, reset when a new one started.
    fn current<'a>(
        map: &'a mut HashMap<String, Window>,
        provider: &str,
        l: &Limit,
    ) -> &'a mut Window {
        let id = now() / l.secs;
        let w = map.entry(provider.to_string()).or_default();
        if w.id != id {
            *w = Window {
                id,
                ..Window::default()
            };
        }
        w
    }

    /// `(spend, limit)` when `provider` has reached its limit.
    pub fn over(&self, provider: &str) -> Option<(f64, f64)> {
        let l = self.limits.get(provider)?;
        let mut map = self.lock();
        let w = Self::current(&mut map, provider, l);
        (w.spend >= l.max).then_some((w.spend, l.max))
    }

    /// Book `cost` against `provider` (when it has a limit).
    pub fn add(&self, provider: &str, cost: f64) {
        let Some(l) = self.limits.get(provider) else {
            return;
        };
        if cost <= 0.0 {
            return;
        }
        let mut map = self.lock();
        let w = Self::current(&mut map, provider, l);
        w.spend += cost;
        w.unsynced += cost;
    }

    /// `GET /provider/budgets`.
    pub fn report(&self) -> Value {
        let mut map = self.lock();
        let mut out = serde_json::Map::new();
        let mut names: Vec<&String> = self.limits.keys().collect();
        names.sort();
        for p in names {
            let l = &self.limits[p];
            let w = Self::current(&mut map, p, l);
            let reset = crate::auth::fmt_utc(((w.id + 1) * l.secs) as f64).replace(' ', "T");
            out.insert(
                p.clone(),
                json!({"budget_limit": l.max, "time_period": l.period, "spend": w.spend,
                       "budget_reset_at": format!("{reset}Z")}),
            );
        }
        json!({ "providers": out })
    }

    /// Share the totals through Redis every `every`.
    pub fn share(self: &Arc<Self>, conn: ConnectionManager, every: Duration) {
        if self.redis.set(conn.clone()).is_err() {
            return;
        }
        let me: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut conn = conn;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(pb) = me.upgrade() else {
                    return;
                };
                if let Err(e) = pb.sync_once(&mut conn).await {
                    tracing::warn!(error = %e, "provider budget sync failed");
                }
            }
        });
    }

    async fn sync_once(&self, conn: &mut ConnectionManager) -> Result<(), redis::RedisError> {
        let items: Vec<(String, u64, u64, f64)> = {
            let mut map = self.lock();
            self.limits
                .iter()
                .map(|(p, l)| {
                    let w = Self::current(&mut map, p, l);
                    (p.clone(), w.id, l.secs, w.unsynced)
                })
                .collect()
        };
        let mut pipe = redis::pipe();
        for (p, id, secs, delta) in &items {
            let key = format!("tianji:{{provider_spend}}:{p}:{id}");
            pipe.cmd("INCRBYFLOAT").arg(&key).arg(delta.to_string());
            pipe.cmd("EXPIRE").arg(&key).arg(*secs + 60).ignore();
        }
        let totals: Vec<String> = pipe.query_async(conn).await?;
        let mut map = self.lock();
        for ((p, id, _, sent), total) in items.into_iter().zip(totals) {
            if let Some(w) = map.get_mut(&p).filter(|w| w.id == id) {
                w.unsynced = (w.unsynced - sent).max(0.0);
                w.spend = total.parse::<f64>().unwrap_or(w.spend - w.unsynced) + w.unsynced;
            }
        }
        Ok(())
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
