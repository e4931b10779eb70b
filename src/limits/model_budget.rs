//! `model_max_budget`: a spend limit per model and period on keys, users, teams, team members
//! and end users (`{"gpt-4o": {"budget_limit": 0.5, "time_period": "1d"}}`, entries may name a
//! model group, a `*` pattern or an access group). A request for a model whose budget is spent
//! is refused with `budget_exceeded`, unless the key's `budget_fallbacks` name another model
//! still within budget. Spend is counted per window on this instance and shared through Redis
//! every second ([`crate::spend::windowed`]); nothing waits for Redis on the request path.

use std::sync::Arc;

use serde_json::Value;

use crate::auth::access::AccessGroups;
use crate::auth::records::EndUserRecord;
use crate::auth::{AuthError, Principal};
use crate::router::wildcard;
use crate::spend::windowed::Windowed;

/// A period-less budget lasts for ever (in practice: a century).
const FOREVER_SECS: u64 = 100 * 365 * 86_400;

/// One budget a request is subject to.
#[derive(Debug, Clone)]
pub struct ModelBudget {
    /// Counter name: `{entity}:{id}:{budget_model}:{period}`.
    pub name: String,
    pub max: f64,
    pub secs: u64,
    /// Who, for the message: `TianjiLLM Virtual Key: ..., key_alias: ...`.
    who: String,
    /// The entry that matched, when it is not the model's own name.
    via: Option<String>,
}

/// The budgets of one admitted request, booked when it ends.
pub struct Booking {
    counters: Arc<Windowed>,
    budgets: Vec<ModelBudget>,
}

impl Booking {
    pub fn book(self, cost: f64) {
        for b in &self.budgets {
            self.counters.add(&b.name, b.secs, cost);
        }
    }
}

pub struct ModelBudgets {
    counters: Arc<Windowed>,
    /// `budget_exceeded_status_code`
    pub status: u16,
}

fn field<'a>(entry: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|n| entry.get(*n).filter(|v| !v.is_null()))
}

/// The entry of `map` that applies to `model`: by name, then `*` pattern, then access group.
fn entry_for<'a>(
    map: &'a Value,
    model: &str,
    groups: &dyn AccessGroups,
) -> Option<(&'a str, &'a Value)> {
    let m = map.as_object()?;
    if let Some((k, v)) = m.get_key_value(model) {
        return Some((k.as_str(), v));
    }
    m.iter()
        .find(|(k, _)| k.contains('*') && wildcard::captures(k, model).is_some())
        .or_else(|| m.iter().find(|(k, _)| groups.grants(k, model)))
        .map(|(k, v)| (k.as_str(), v))
}

fn budget(
    map: &Value,
    model: &str,
    groups: &dyn AccessGroups,
    entity: &str,
    id: &str,
    who: impl FnOnce() -> String,
    out: &mut Vec<ModelBudget>,
) {
    let Some((budget_model, e)) = entry_for(map, model, groups) else {
        return;
    };
    let Some(max) = field(e, &["budget_limit", "max_budget"])
        .and_then(Value::as_f64)
        .filter(|m| *m >= 0.0)
    else {
        return;
    };
    let period = field(e, &["time_period", "budget_duration"]).and_then(Value::as_str);
    let secs = period
        .and_then(crate::util::duration::parse)
        .map_or(FOREVER_SECS, |d| d.as_secs().max(1));
    out.push(ModelBudget {
        name: format!("{entity}:{id}:{budget_model}:{}", period.unwrap_or("all")),
        max,
        secs,
        who: who(),
        via: (budget_model != model).then(|| budget_model.to_string()),
    });
}

impl ModelBudgets {
    pub fn new(status: u16) -> Self {
        Self {
            counters: Arc::new(Windowed::new("model_spend")),
            status,
        }
    }

    pub fn share(&self, conn: crate::util::redis_conn::Conn, every: std::time::Duration) {
        self.counters.share(conn, every);
    }

    /// The model budgets that apply to this request.
    pub fn applicable(
        &self,
        principal: &Principal,
        model: &str,
        end_user: Option<&EndUserRecord>,
        groups: &dyn AccessGroups,
    ) -> Vec<ModelBudget> {
        let mut out = Vec::new();
        // the texts are made only for a budget that applies (most requests have none)
        if let Principal::Key(c) = principal {
            let k = &c.key;
            let who = || {
                let alias = k.key_alias.as_deref().unwrap_or("None");
                format!("TianjiLLM Virtual Key: {}, key_alias: {alias}", k.token)
            };
            let limits = &k.limits.model_max_budget;
            budget(
                limits,
                model,
                groups,
                "virtual_key",
                &k.token,
                who,
                &mut out,
            );
            if let Some(u) = &c.user {
                let who = || format!("TianjiLLM User: {}", u.user_id);
                let limits = &u.limits.model_max_budget;
                budget(limits, model, groups, "user", &u.user_id, who, &mut out);
            }
            if let Some(t) = &c.team {
                let who = || format!("TianjiLLM Team: {}", t.team_id);
                let limits = &t.limits.model_max_budget;
                budget(limits, model, groups, "team", &t.team_id, who, &mut out);
                if let (Some(user_id), Some(m)) = (k.user_id.as_deref(), &c.member)
                    && entry_for(&m.limits.model_max_budget, model, groups).is_some()
                {
                    let id = format!("{}:{user_id}:{}", user_id.len(), t.team_id);
                    let who = || format!("TianjiLLM Team Member: {user_id} in Team: {}", t.team_id);
                    let limits = &m.limits.model_max_budget;
                    budget(limits, model, groups, "team_member", &id, who, &mut out);
                }
            }
        }
        // the end user's apply to every caller, the master key included
        if let Some(e) = end_user {
            let who = || format!("TianjiLLM End User: {}", e.user_id);
            let limits = &e.limits.model_max_budget;
            budget(limits, model, groups, "end_user", &e.user_id, who, &mut out);
        }
        out
    }

    /// Refuse when one of `budgets` is spent; else the booking for the request's end.
    pub fn admit(
        &self,
        budgets: Vec<ModelBudget>,
        model: &str,
    ) -> Result<Option<Booking>, AuthError> {
        if budgets.is_empty() {
            return Ok(None);
        }
        for b in &budgets {
            let (spend, _) = self.counters.spend(&b.name, b.secs);
            if spend >= b.max {
                let via = b
                    .via
                    .as_ref()
                    .map(|v| format!(", budget_model={v}"))
                    .unwrap_or_default();
                return Err(AuthError::BudgetExceeded {
                    message: format!(
                        "{}, exceeded budget for model={model}{via}. Current cost: {spend}, Max budget: {}",
                        b.who, b.max
                    ),
                    status: self.status,
                });
            }
        }
        Ok(Some(Booking {
            counters: self.counters.clone(),
            budgets,
        }))
    }
}

/// The key's `budget_fallbacks` for `model`, in order.
pub fn fallbacks(principal: &Principal, model: &str) -> Vec<String> {
    principal
        .key()
        .and_then(|c| c.key.budget_fallbacks.get(model))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::access::NoGroups;
    use serde_json::json;

    #[test]
    fn entries_by_name_pattern_and_period() {
        let map = json!({"gpt-4o": {"budget_limit": 1.0, "time_period": "1d"}, "claude-*": {"max_budget": 2.0}});
        let mut out = Vec::new();
        for model in ["gpt-4o", "claude-3", "other"] {
            let who = || "who".to_string();
            budget(&map, model, &NoGroups, "virtual_key", "h", who, &mut out);
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].name, "virtual_key:h:gpt-4o:1d");
        assert_eq!(out[0].secs, 86_400);
        assert!(out[0].via.is_none());
        assert_eq!(out[1].via.as_deref(), Some("claude-*"));
        assert_eq!(out[1].secs, FOREVER_SECS);
    }

    #[test]
    fn spent_budget_refuses() {
        let mb = ModelBudgets::new(429);
        let b = ModelBudget {
            name: "virtual_key:h:m:1d".into(),
            max: 1.0,
            secs: 86_400,
            who: "TianjiLLM Virtual Key: h, key_alias: None".into(),
            via: None,
        };
        mb.admit(vec![b.clone()], "m").unwrap().unwrap().book(0.6);
        mb.admit(vec![b.clone()], "m").unwrap().unwrap().book(0.6);
        let e = mb.admit(vec![b], "m").err().unwrap();
        assert!(
            e.to_string().starts_with(
                "TianjiLLM Virtual Key: h, key_alias: None, exceeded budget for model=m."
            ),
            "{e}"
        );
    }
}
