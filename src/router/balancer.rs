//! Choosing a deployment for each attempt and learning from how it went: cooldowns, tag
//! routing, `rpm`/`tpm` and context-window pre-call checks in front of the strategy; the live
//! [`Policy`] (replaced at run time); cooldowns shared with other instances through Redis.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::policy::{ErrorClass, Policy};
use super::stats::{Outcome, Stats};
use super::{Deployment, RouteError, strategy};
use crate::util::clock::now_ms;

/// Redis key prefix of shared cooldowns (`{prefix}{deployment id}` = until, in ms).
pub const COOLDOWN_KEY: &str = "tianji:{cooldown}:";

/// What the request asks of the deployment it gets.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ask<'a> {
    /// Request tags (`tags` in the body, `x-tianji-tags`).
    pub tags: &'a [String],
    /// Estimated prompt tokens.
    pub prompt_tokens: u64,
}

/// The router's runtime.
pub struct Balancer {
    policy: ArcSwap<Policy>,
    /// The policy the config file sets; run-time changes are kept apart and applied over it.
    base: ArcSwap<Policy>,
    /// Fields changed at run time (`PATCH /router/settings`, `/fallback`), as stored.
    overrides: std::sync::Mutex<serde_json::Map<String, serde_json::Value>>,
    /// Serialises run-time changes (read, store, apply).
    pub changing: tokio::sync::Mutex<()>,
    redis: Option<crate::util::redis_conn::Conn>,
}

impl std::fmt::Debug for Balancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balancer")
            .field("policy", &self.policy.load())
            .finish()
    }
}

/// A request in flight on a deployment: counted until dropped (the end of the answer, streams
/// included); its tokens feed usage-based routing.
#[derive(Debug)]
pub struct InFlight(Arc<Stats>);

impl InFlight {
    pub fn new(stats: &Arc<Stats>) -> Self {
        stats.start();
        Self(stats.clone())
    }

    /// The answer used `tokens` tokens.
    pub fn used(&self, tokens: u64) {
        if tokens > 0 {
            self.0.tokens(tokens);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.done();
    }
}

impl Balancer {
    pub fn new(policy: Policy, redis: Option<crate::util::redis_conn::Conn>) -> Self {
        Self {
            policy: ArcSwap::from_pointee(policy.clone()),
            base: ArcSwap::from_pointee(policy),
            overrides: std::sync::Mutex::default(),
            changing: tokio::sync::Mutex::new(()),
            redis,
        }
    }

    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    /// The run-time changes in force.
    pub fn overrides(&self) -> serde_json::Map<String, serde_json::Value> {
        self.overrides
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The config's policy with `overrides` applied (checked first; nothing changes if they
    /// are refused).
    pub fn with_overrides(
        &self,
        overrides: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Policy, super::policy::PolicyError> {
        self.base
            .load()
            .patched(&serde_json::Value::Object(overrides.clone()))
    }

    /// Put a reloaded config file's policy under the run-time changes in force (checked
    /// first: nothing changes if they do not apply over it).
    pub async fn rebase(&self, base: Policy) -> Result<(), super::policy::PolicyError> {
        let _one = self.changing.lock().await;
        let overrides = self.overrides();
        let policy = base.patched(&serde_json::Value::Object(overrides.clone()))?;
        self.base.store(Arc::new(base));
        self.apply(policy, overrides);
        Ok(())
    }

    /// Put `overrides` in force (they were checked by [`Self::with_overrides`]).
    pub fn apply(&self, policy: Policy, overrides: serde_json::Map<String, serde_json::Value>) {
        *self
            .overrides
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = overrides;
        self.policy.store(Arc::new(policy));
    }

    /// Pick the deployment of `group` (model `model`) for the next attempt, leaving out those
    /// cooling down, already `tried` (unless nothing else is left), not matching the request's
    /// tags, over their `rpm`/`tpm` this minute or too small for the prompt.
    pub fn choose(
        &self,
        policy: &Policy,
        model: &str,
        group: &[Arc<Deployment>],
        tried: &[Arc<Deployment>],
        ask: Ask<'_>,
    ) -> Result<Arc<Deployment>, RouteError> {
        let plain =
            tried.is_empty() && !policy.enable_tag_filtering && !policy.enable_pre_call_checks;
        if plain && group.len() == 1 {
            return Ok(group[0].clone());
        }
        let now = now_ms();
        let mut open: Vec<Arc<Deployment>> = group.to_vec();
        if policy.enable_tag_filtering {
            open = by_tags(open, ask.tags).ok_or_else(|| RouteError::NoTaggedDeployment {
                model: model.to_string(),
                tags: ask.tags.to_vec(),
            })?;
        }
        if policy.enable_pre_call_checks && ask.prompt_tokens > 0 {
            let fits: Vec<_> = open
                .iter()
                .filter(|d| d.max_input_tokens().is_none_or(|m| ask.prompt_tokens <= m))
                .cloned()
                .collect();
            if fits.is_empty() {
                return Err(RouteError::ContextWindow {
                    model: model.to_string(),
                    tokens: ask.prompt_tokens,
                });
            }
            open = fits;
        }
        // cooling down: left out unless every one is
        let warm: Vec<_> = open
            .iter()
            .filter(|d| !d.stats.cooling(now))
            .cloned()
            .collect();
        if warm.is_empty() {
            let until = open
                .iter()
                .map(|d| d.stats.cooldown_until())
                .min()
                .unwrap_or(now);
            return Err(RouteError::CoolingDown {
                model: model.to_string(),
                retry_after: until.saturating_sub(now).div_ceil(1000).max(1),
                ids: open.iter().map(|d| d.id.clone()).collect(),
            });
        }
        open = warm;
        // within rpm/tpm this minute, when any is
        let within: Vec<_> = open
            .iter()
            .filter(|d| {
                let (rq, tk) = d.stats.usage();
                d.rpm.is_none_or(|r| rq < r) && d.tpm.is_none_or(|t| tk + ask.prompt_tokens <= t)
            })
            .cloned()
            .collect();
        if !within.is_empty() {
            open = within;
        }
        // not tried yet, when any is
        let fresh: Vec<_> = open
            .iter()
            .filter(|d| !tried.iter().any(|t| Arc::ptr_eq(t, d)))
            .cloned()
            .collect();
        if !fresh.is_empty() {
            open = fresh;
        }
        let i = strategy::pick(policy.routing_strategy, &open);
        Ok(open.swap_remove(i))
    }

    /// An attempt on `dep` (one of `group_size` deployments) ended after `latency` with
    /// `failure` (none: success). Cools the deployment down when it must (never the only
    /// deployment of its group), and tells other instances. Returns whether it cooled the
    /// deployment down now.
    pub fn report(
        &self,
        policy: &Policy,
        dep: &Deployment,
        group_size: usize,
        failure: Option<ErrorClass>,
        latency: Duration,
    ) -> bool {
        let outcome = match failure {
            None => Outcome::Success,
            Some(c) if !c.deployment_fault() => Outcome::Neutral,
            Some(c) if c.cools_now() => Outcome::CooldownNow,
            Some(_) => Outcome::Failure,
        };
        let cool = dep.stats.end(outcome, latency, policy.allowed_fails);
        if !cool || policy.disable_cooldowns || group_size < 2 {
            return false;
        }
        let until = now_ms() + policy.cooldown().as_millis() as u64;
        dep.stats.cool_until(until);
        tracing::info!(deployment = %dep.id, model = %dep.model_name, seconds = policy.cooldown_time, "deployment cooling down");
        if let Some(conn) = &self.redis {
            let mut conn = conn.clone();
            let key = format!("{COOLDOWN_KEY}{}", dep.id);
            let ms = policy.cooldown().as_millis().max(1) as u64;
            tokio::spawn(async move {
                let r: redis::RedisResult<()> = redis::cmd("SET")
                    .arg(&key)
                    .arg(until)
                    .arg("PX")
                    .arg(ms)
                    .query_async(&mut conn)
                    .await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "could not share a cooldown");
                }
            });
        }
        true
    }

    /// Every `every`, read the cooldowns other instances set for the deployments `ids` gives
    /// (while `alive` holds) and apply them here.
    pub fn share(
        self: &Arc<Self>,
        every: Duration,
        ids: impl Fn() -> Vec<(String, Arc<Stats>)> + Send + 'static,
    ) {
        let Some(conn) = self.redis.clone() else {
            return;
        };
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if weak.strong_count() == 0 {
                    return;
                }
                let deps = ids();
                if deps.is_empty() {
                    continue;
                }
                let usage_based = weak.upgrade().is_some_and(|b| {
                    b.policy().routing_strategy == super::strategy::Strategy::UsageBased
                });
                if usage_based {
                    share_usage(&mut conn.clone(), &deps).await;
                }
                let keys: Vec<String> = deps
                    .iter()
                    .map(|(id, _)| format!("{COOLDOWN_KEY}{id}"))
                    .collect();
                let mut c = conn.clone();
                let got: redis::RedisResult<Vec<Option<u64>>> =
                    redis::cmd("MGET").arg(&keys).query_async(&mut c).await;
                match got {
                    Ok(until) => {
                        for ((_, stats), u) in deps.iter().zip(until) {
                            if let Some(u) = u {
                                stats.cool_until(u);
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "could not read shared cooldowns"),
                }
            }
        });
    }
}

/// Redis key of a deployment's requests and tokens in one minute (all instances).
fn usage_key(id: &str, minute: u64) -> String {
    format!("tianji:{{usage}}:{id}:{minute}")
}

/// Add this instance's new requests and tokens of the minute to Redis and read every
/// instance's totals back (usage-based routing), in one round trip.
async fn share_usage(conn: &mut crate::util::redis_conn::Conn, deps: &[(String, Arc<Stats>)]) {
    let mut pipe = redis::pipe();
    let mut minutes = Vec::with_capacity(deps.len());
    for (id, stats) in deps {
        let (minute, rq, tk) = stats.take_unpushed();
        let key = usage_key(id, minute);
        if rq > 0 || tk > 0 {
            pipe.cmd("HINCRBY").arg(&key).arg("r").arg(rq).ignore();
            pipe.cmd("HINCRBY").arg(&key).arg("t").arg(tk).ignore();
            pipe.cmd("EXPIRE").arg(&key).arg(120).ignore();
        }
        pipe.cmd("HMGET").arg(&key).arg("r").arg("t");
        minutes.push(minute);
    }
    let got: redis::RedisResult<Vec<(Option<u64>, Option<u64>)>> = pipe.query_async(conn).await;
    match got {
        Ok(totals) => {
            for (((_, stats), minute), (rq, tk)) in deps.iter().zip(minutes).zip(totals) {
                stats.set_shared(minute, rq.unwrap_or(0), tk.unwrap_or(0));
            }
        }
        Err(e) => tracing::debug!(error = %e, "could not share deployment usage"),
    }
}

/// Deployments with one of `tags`; else those tagged `default`; untagged requests go to the
/// `default` ones if any, else anywhere.
fn by_tags(group: Vec<Arc<Deployment>>, tags: &[String]) -> Option<Vec<Arc<Deployment>>> {
    let default = || -> Vec<Arc<Deployment>> {
        group
            .iter()
            .filter(|d| d.tags.iter().any(|t| t == "default"))
            .cloned()
            .collect()
    };
    if tags.is_empty() {
        let d = default();
        return Some(if d.is_empty() { group } else { d });
    }
    let matching: Vec<_> = group
        .iter()
        .filter(|d| d.tags.iter().any(|t| tags.contains(t)))
        .cloned()
        .collect();
    if !matching.is_empty() {
        return Some(matching);
    }
    let d = default();
    (!d.is_empty()).then_some(d)
}
