//! Rate-limit descriptors of one request (LiteLLM's v3 limiter names): one per entity that has
//! a limit set, and none at all when nothing is limited, so such a request never touches Redis.

use serde_json::Value;

use crate::auth::records::{EndUserRecord, Limits};
use crate::auth::{KeyCaller, Principal};
use crate::router::Deployment;

/// One limited entity: requests and tokens per window, requests in flight.
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor {
    /// `api_key`, `user`, `team`, `team_member`, `end_user`, `organization`,
    /// `model_per_key`, `model_per_team`, `deployment`, `global`, and the dynamic limiter's
    /// `model_saturation_check` and `priority_model`.
    pub kind: &'static str,
    pub value: String,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub parallel: Option<u64>,
    /// Enforced only while descriptor `.1` (an earlier one of the same request) is at least
    /// `.0` saturated; counted either way. `None`: always enforced.
    pub gate: Option<(f64, usize)>,
    /// The dynamic limiter's model and priority, for its messages.
    pub dynamic: Option<std::sync::Arc<super::priority::Pool>>,
    /// Its own window (ms), e.g. a day for tokens-per-day limits; `None`: the limiter's.
    pub window: Option<u64>,
}

impl Descriptor {
    /// This descriptor's Redis key (one hash tag for all, so one script call can touch every
    /// descriptor of a request on Redis Cluster too). `v2`: a packed string value (earlier
    /// versions kept a hash at the key without it).
    pub fn redis_base(&self) -> String {
        // (three per governed request: without the formatting machinery)
        const PREFIX: &str = "tianji:{rl}:v2:";
        let mut s = String::with_capacity(PREFIX.len() + self.kind.len() + 1 + self.value.len());
        s.push_str(PREFIX);
        s.push_str(self.kind);
        s.push(':');
        s.push_str(&self.value);
        s
    }

    /// A descriptor without gate or dynamic context.
    pub fn plain(
        kind: &'static str,
        value: String,
        rpm: Option<u64>,
        tpm: Option<u64>,
        parallel: Option<u64>,
    ) -> Self {
        Self {
            kind,
            value,
            rpm,
            tpm,
            parallel,
            gate: None,
            dynamic: None,
            window: None,
        }
    }
}

/// A stored limit: negative or missing means none.
pub fn limit(v: Option<i64>) -> Option<u64> {
    v.and_then(|n| u64::try_from(n).ok())
}

/// `metadata.{field}.{model}` (LiteLLM's `model_rpm_limit` / `model_tpm_limit` maps).
fn per_model(metadata: &Value, field: &str, model: &str) -> Option<u64> {
    metadata.get(field)?.get(model)?.as_u64()
}

/// Limits of one descriptor: requests and tokens per window, requests in flight.
type Caps = (Option<u64>, Option<u64>, Option<u64>);

/// The rpm and tpm limits `metadata` sets for `model`.
fn per_model_caps(metadata: &Value, model: &str) -> Caps {
    (
        per_model(metadata, "model_rpm_limit", model),
        per_model(metadata, "model_tpm_limit", model),
        None,
    )
}

/// A record's rpm, tpm and parallel-request limits.
fn caps_of(l: &Limits) -> Caps {
    (
        limit(l.rpm_limit),
        limit(l.tpm_limit),
        limit(l.max_parallel_requests),
    )
}

/// Add a descriptor when it has a limit; its value is built only then, so a request without
/// limits allocates nothing here.
fn push(out: &mut Vec<Descriptor>, kind: &'static str, caps: Caps, value: impl FnOnce() -> String) {
    let (rpm, tpm, parallel) = caps;
    if rpm.is_some() || tpm.is_some() || parallel.is_some() {
        out.push(Descriptor::plain(kind, value(), rpm, tpm, parallel));
    }
}

/// What a request is checked against.
pub struct Subject<'a> {
    pub principal: &'a Principal,
    /// The model group asked for.
    pub model: &'a str,
    pub end_user: Option<(&'a str, Option<&'a EndUserRecord>)>,
    /// The deployment serving the request (none for calls without one, e.g. search tools).
    pub deployment: Option<&'a Deployment>,
    /// `general_settings.global_max_parallel_requests`
    pub global_parallel: Option<u64>,
}

/// Every descriptor with a limit for this request.
pub fn descriptors(s: &Subject<'_>) -> Vec<Descriptor> {
    let mut out = Vec::new();
    if let Principal::Key(caller) = s.principal {
        key_descriptors(caller, s.model, &mut out);
    }
    if let Some((id, Some(e))) = s.end_user {
        push(&mut out, "end_user", caps_of(&e.limits), || id.to_string());
    }
    if let Some(dep) = s.deployment {
        let caps = (dep.rpm, dep.tpm, dep.max_parallel_requests);
        push(&mut out, "deployment", caps, || dep.id.clone());
    }
    let caps = (None, None, s.global_parallel);
    push(&mut out, "global", caps, || "max_parallel_requests".into());
    out
}

fn key_descriptors(c: &KeyCaller, model: &str, out: &mut Vec<Descriptor>) {
    let key = &c.key;
    push(out, "api_key", caps_of(&key.limits), || key.token.clone());
    let caps = per_model_caps(&key.metadata, model);
    push(out, "model_per_key", caps, || {
        format!("{}:{model}", key.token)
    });
    if let Some(u) = &c.user {
        push(out, "user", caps_of(&u.limits), || u.user_id.clone());
    }
    if let Some(t) = &c.team {
        push(out, "team", caps_of(&t.limits), || t.team_id.clone());
        let caps = per_model_caps(&t.metadata, model);
        push(out, "model_per_team", caps, || {
            format!("{}:{model}", t.team_id)
        });
        if let Some(user_id) = key.user_id.as_deref() {
            let m = c.member.as_deref();
            let meta = |f: &str| t.metadata.get(f).and_then(Value::as_u64);
            let caps = (
                m.and_then(|m| limit(m.limits.rpm_limit))
                    .or_else(|| meta("team_member_rpm_limit")),
                m.and_then(|m| limit(m.limits.tpm_limit))
                    .or_else(|| meta("team_member_tpm_limit")),
                None,
            );
            push(out, "team_member", caps, || {
                format!("{}:{user_id}", t.team_id)
            });
        }
    }
    if let Some(o) = &c.org {
        let caps = (limit(o.limits.rpm_limit), limit(o.limits.tpm_limit), None);
        push(out, "organization", caps, || o.organization_id.clone());
    }
}
