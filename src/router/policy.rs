//! The live router policy: strategy, retries, cooldowns and fallbacks, from `router_settings`
//! (and the `tianji_settings` router keys LiteLLM also reads), changed at run time by
//! `PATCH /router/settings` and the `/fallback` routes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::strategy::Strategy;
pub use crate::config::router::{Fallbacks, RetryClass, RetryPolicy};

/// LiteLLM's defaults.
pub const DEFAULT_ALLOWED_FAILS: u32 = 3;
pub const DEFAULT_COOLDOWN_SECS: f64 = 5.0;
pub const DEFAULT_MAX_FALLBACKS: usize = 5;

/// What kind of failure an attempt ended with, as the router treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    BadRequest,
    ContextWindow,
    ContentPolicy,
    Authentication,
    NotFound,
    Timeout,
    RateLimit,
    /// 5xx, connection failures, broken answers.
    Server,
}

impl ErrorClass {
    /// Classify an error by status and OpenAI error code.
    pub fn of(status: u16, code: Option<&str>, kind: &str) -> Self {
        match (status, code) {
            (_, Some("context_length_exceeded")) => ErrorClass::ContextWindow,
            (_, Some("content_policy_violation" | "content_filter")) => ErrorClass::ContentPolicy,
            (400, _) if kind.contains("content_policy") => ErrorClass::ContentPolicy,
            (401 | 403, _) => ErrorClass::Authentication,
            (404, _) => ErrorClass::NotFound,
            (408, _) => ErrorClass::Timeout,
            (429, _) => ErrorClass::RateLimit,
            (s, _) if s >= 500 => ErrorClass::Server,
            _ => ErrorClass::BadRequest,
        }
    }

    /// Retried by default (`num_retries` applies).
    fn retried_by_default(self) -> bool {
        matches!(
            self,
            ErrorClass::Timeout | ErrorClass::RateLimit | ErrorClass::Server
        )
    }

    /// Cools the deployment down at once (LiteLLM: 429, 401, 404, 408).
    pub fn cools_now(self) -> bool {
        matches!(
            self,
            ErrorClass::RateLimit
                | ErrorClass::Authentication
                | ErrorClass::NotFound
                | ErrorClass::Timeout
        )
    }

    /// Counts as the deployment's failure at all (bad requests do not).
    pub fn deployment_fault(self) -> bool {
        !matches!(
            self,
            ErrorClass::BadRequest | ErrorClass::ContextWindow | ErrorClass::ContentPolicy
        )
    }
}

/// The router's settings as `GET /router/settings` shows them and `PATCH` changes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub routing_strategy: Strategy,
    pub num_retries: u32,
    pub retry_policy: RetryPolicy,
    /// Per model group, replacing `retry_policy`.
    pub model_group_retry_policy: BTreeMap<String, RetryPolicy>,
    /// Seconds to wait at least before a retry (a provider's `Retry-After` may ask more).
    pub retry_after: f64,
    pub allowed_fails: u32,
    /// Seconds a failing deployment is left out.
    pub cooldown_time: f64,
    pub disable_cooldowns: bool,
    pub fallbacks: Fallbacks,
    pub default_fallbacks: Vec<String>,
    pub context_window_fallbacks: Fallbacks,
    pub content_policy_fallbacks: Fallbacks,
    pub max_fallbacks: usize,
    /// Leave out deployments whose `max_input_tokens` the prompt exceeds.
    pub enable_pre_call_checks: bool,
    /// Route by `tags` of the request and of the deployments.
    pub enable_tag_filtering: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            routing_strategy: Strategy::default(),
            num_retries: 0,
            retry_policy: RetryPolicy::default(),
            model_group_retry_policy: BTreeMap::new(),
            retry_after: 0.0,
            allowed_fails: DEFAULT_ALLOWED_FAILS,
            cooldown_time: DEFAULT_COOLDOWN_SECS,
            disable_cooldowns: false,
            fallbacks: Fallbacks::default(),
            default_fallbacks: Vec::new(),
            context_window_fallbacks: Fallbacks::default(),
            content_policy_fallbacks: Fallbacks::default(),
            max_fallbacks: DEFAULT_MAX_FALLBACKS,
            enable_pre_call_checks: false,
            enable_tag_filtering: false,
        }
    }
}

/// Why a router settings change is refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{0}")]
    Invalid(String),
}

impl Policy {
    /// The policy the config sets (router keys set under `tianji_settings` were moved to
    /// `router_settings` when the config was loaded).
    pub fn from_settings(r: &crate::config::RouterSettings) -> Result<Self, PolicyError> {
        let d = Policy::default();
        let p = Policy {
            routing_strategy: r.routing_strategy.unwrap_or_default(),
            num_retries: r.num_retries.unwrap_or(d.num_retries),
            retry_policy: r.retry_policy.clone().unwrap_or_default(),
            model_group_retry_policy: r.model_group_retry_policy.clone(),
            retry_after: r.retry_after.unwrap_or(d.retry_after),
            allowed_fails: r.allowed_fails.unwrap_or(d.allowed_fails),
            cooldown_time: r.cooldown_time.unwrap_or(d.cooldown_time),
            disable_cooldowns: r.disable_cooldowns,
            fallbacks: r.fallbacks.clone().unwrap_or_default(),
            default_fallbacks: r.default_fallbacks.clone().unwrap_or_default(),
            context_window_fallbacks: r.context_window_fallbacks.clone().unwrap_or_default(),
            content_policy_fallbacks: r.content_policy_fallbacks.clone().unwrap_or_default(),
            max_fallbacks: r.max_fallbacks.unwrap_or(d.max_fallbacks),
            enable_pre_call_checks: r.enable_pre_call_checks,
            enable_tag_filtering: r.enable_tag_filtering,
        };
        p.validate()?;
        Ok(p)
    }

    /// Retries allowed for an error of `class` in `group`.
    pub fn retries(&self, group: &str, class: ErrorClass) -> u32 {
        self.retries_with(group, class, None)
    }

    /// [`Policy::retries`] for a request that sets its own `num_retries`: it replaces
    /// `num_retries`, and 0 also turns the retry policy off (as in LiteLLM).
    pub fn retries_with(&self, group: &str, class: ErrorClass, requested: Option<u32>) -> u32 {
        if requested == Some(0) {
            return 0;
        }
        let p = self
            .model_group_retry_policy
            .get(group)
            .unwrap_or(&self.retry_policy);
        let set = match class {
            ErrorClass::BadRequest => p.get(RetryClass::BadRequestErrorRetries),
            ErrorClass::ContextWindow => None,
            ErrorClass::ContentPolicy => p.get(RetryClass::ContentPolicyViolationErrorRetries),
            ErrorClass::Authentication | ErrorClass::NotFound => {
                p.get(RetryClass::AuthenticationErrorRetries)
            }
            ErrorClass::Timeout => p.get(RetryClass::TimeoutErrorRetries),
            ErrorClass::RateLimit => p.get(RetryClass::RateLimitErrorRetries),
            ErrorClass::Server => p.get(RetryClass::InternalServerErrorRetries),
        };
        match set {
            Some(n) => n,
            None if class.retried_by_default() => requested.unwrap_or(self.num_retries),
            None => 0,
        }
    }

    /// Whether a failed attempt can ever be followed by another (retries or fallbacks set).
    pub fn may_try_again(&self) -> bool {
        self.num_retries > 0
            || self.retry_policy != RetryPolicy::default()
            || !self.model_group_retry_policy.is_empty()
            || !self.fallbacks.0.is_empty()
            || !self.default_fallbacks.is_empty()
            || !self.context_window_fallbacks.0.is_empty()
            || !self.content_policy_fallbacks.0.is_empty()
    }

    pub fn cooldown(&self) -> Duration {
        Duration::try_from_secs_f64(self.cooldown_time).unwrap_or(Duration::ZERO)
    }

    pub fn min_retry_wait(&self) -> Duration {
        Duration::try_from_secs_f64(self.retry_after).unwrap_or(Duration::ZERO)
    }

    /// The model groups to try after `group` failed with `class`, in order: the specific
    /// fallbacks of that class, else the general ones, else `default_fallbacks`.
    pub fn fallbacks_for(&self, group: &str, class: ErrorClass) -> Vec<String> {
        let specific = match class {
            ErrorClass::ContextWindow => self.context_window_fallbacks.0.get(group),
            ErrorClass::ContentPolicy => self.content_policy_fallbacks.0.get(group),
            _ => None,
        };
        let list = specific
            .or_else(|| self.fallbacks.0.get(group))
            .or_else(|| self.fallbacks.0.get("*"))
            .cloned()
            .unwrap_or_else(|| self.default_fallbacks.clone());
        list.into_iter()
            .filter(|m| m != group)
            .take(self.max_fallbacks)
            .collect()
    }

    /// Check values a PATCH or the config may set.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let bad = |what: &str| Err(PolicyError::Invalid(what.to_string()));
        if !self.cooldown_time.is_finite() || self.cooldown_time < 0.0 {
            return bad("cooldown_time must be a number of seconds >= 0");
        }
        if !self.retry_after.is_finite() || self.retry_after < 0.0 {
            return bad("retry_after must be a number of seconds >= 0");
        }
        Ok(())
    }

    /// This policy with `patch` (an object of policy fields) applied.
    pub fn patched(&self, patch: &serde_json::Value) -> Result<Policy, PolicyError> {
        let serde_json::Value::Object(p) = patch else {
            return Err(PolicyError::Invalid(
                "the body must be a JSON object".into(),
            ));
        };
        let mut v = serde_json::to_value(self).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        if let serde_json::Value::Object(o) = &mut v {
            for (k, val) in p {
                if !o.contains_key(k) {
                    return Err(PolicyError::Invalid(format!("unknown field `{k}`")));
                }
                o.insert(k.clone(), val.clone());
            }
        }
        let new: Policy =
            serde_json::from_value(v).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        new.validate()?;
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn retries_by_class_and_group() {
        let mut p = Policy {
            num_retries: 2,
            ..Default::default()
        };
        assert_eq!(p.retries("g", ErrorClass::Server), 2);
        assert_eq!(p.retries("g", ErrorClass::BadRequest), 0);
        (p.retry_policy.0).insert(RetryClass::RateLimitErrorRetries, 5);
        assert_eq!(p.retries("g", ErrorClass::RateLimit), 5);
        p.model_group_retry_policy
            .insert("g".into(), RetryPolicy::default());
        assert_eq!(p.retries("g", ErrorClass::RateLimit), 2);
        // a request's own num_retries
        assert_eq!(p.retries_with("g", ErrorClass::Server, Some(7)), 7);
        assert_eq!(p.retries_with("h", ErrorClass::RateLimit, Some(7)), 5);
        assert_eq!(p.retries_with("h", ErrorClass::RateLimit, Some(0)), 0);
        assert_eq!(p.retries_with("g", ErrorClass::BadRequest, Some(7)), 0);
    }

    #[test]
    fn fallbacks_in_both_shapes_and_by_class() {
        let f: Fallbacks =
            serde_json::from_value(json!([{"a": ["b", "c"]}, {"x": ["y"]}])).unwrap();
        assert_eq!(f.0["a"], vec!["b", "c"]);
        let p = Policy {
            fallbacks: f,
            context_window_fallbacks: serde_json::from_value(json!({"a": ["big"]})).unwrap(),
            default_fallbacks: vec!["d".into()],
            max_fallbacks: 1,
            ..Default::default()
        };
        assert_eq!(p.fallbacks_for("a", ErrorClass::Server), vec!["b"]);
        assert_eq!(p.fallbacks_for("a", ErrorClass::ContextWindow), vec!["big"]);
        assert_eq!(p.fallbacks_for("q", ErrorClass::Server), vec!["d"]);
        assert!(p.fallbacks_for("d", ErrorClass::Server).is_empty());
        assert_eq!(
            serde_json::to_value(&p.fallbacks).unwrap(),
            json!([{"a": ["b", "c"]}, {"x": ["y"]}])
        );
    }

    #[test]
    fn patches_are_checked() {
        let p = Policy::default();
        let q = p
            .patched(&json!({"routing_strategy": "least-busy", "num_retries": 3}))
            .unwrap();
        assert_eq!(q.routing_strategy, Strategy::LeastBusy);
        assert_eq!(q.num_retries, 3);
        assert!(p.patched(&json!({"nope": 1})).is_err());
        assert!(p.patched(&json!({"cooldown_time": -1})).is_err());
        assert!(p.patched(&json!({"routing_strategy": "dice"})).is_err());
        assert!(p.patched(&json!([1])).is_err());
    }

    #[test]
    fn classes() {
        assert_eq!(
            ErrorClass::of(400, Some("context_length_exceeded"), ""),
            ErrorClass::ContextWindow
        );
        assert_eq!(ErrorClass::of(429, None, ""), ErrorClass::RateLimit);
        assert_eq!(ErrorClass::of(503, None, ""), ErrorClass::Server);
        assert!(ErrorClass::RateLimit.cools_now());
        assert!(!ErrorClass::BadRequest.deployment_fault());
    }
}
