//! Rate-limit descriptors of one request (LiteLLM's v3 limiter names): one per entity that has
//! a limit set, and none at all when nothing is limited, so such a request never touches Redis.

use serde_json::Value;

use crate::auth::records::EndUserRecord;
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
    /// The common prefix of this descriptor's Redis keys (one hash tag for all, so one script
    /// call can touch every descriptor of a request on Redis Cluster too).
    pub fn redis_base(&self) -> String {
        format!("tianji:{{rl}}:{}:{}", self.kind, self.value)
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

    fn limited(&self) -> bool {
        self.rpm.is_some() || self.tpm.is_some() || self.parallel.is_some()
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

fn push(out: &mut Vec<Descriptor>, d: Descriptor) {
    if d.limited() {
        out.push(d);
    }
}

/// What a request is checked against.
pub struct Subject<'a> {
    pub principal: &'a Principal,
    /// The model group asked for.
    pub model: &'a str,
    pub end_user: Option<(&'a str, Option<&'a EndUserRecord>)>,
    pub deployment: &'a Deployment,
    /// `general_settings.global_max_parallel_requests`
    pub global_parallel: Option<u64>,
}

/// Every descriptor with a limit for this request.
pub fn descriptors(s: &Subject<'_>) -> Vec<Descriptor> {
    let mut out = Vec::new();
    if let Principal::Key(caller) = s.principal {
        key_descriptors(caller, s.model, &mut out);
    }
    if let Some((id, rec)) = s.end_user
        && let Some(e) = rec
    {
        push(
            &mut out,
            Descriptor::plain(
                "end_user",
                id.to_string(),
                limit(e.rpm_limit),
                limit(e.tpm_limit),
                limit(e.max_parallel_requests),
            ),
        );
    }
    let dep = s.deployment;
    push(
        &mut out,
        Descriptor::plain(
            "deployment",
            dep.id.clone(),
            dep.rpm,
            dep.tpm,
            dep.max_parallel_requests,
        ),
    );
    push(
        &mut out,
        Descriptor::plain(
            "global",
            "max_parallel_requests".into(),
            None,
            None,
            s.global_parallel,
        ),
    );
    out
}

fn key_descriptors(c: &KeyCaller, model: &str, out: &mut Vec<Descriptor>) {
    let key = &c.key;
    push(
        out,
        Descriptor::plain(
            "api_key",
            key.token.clone(),
            limit(key.rpm_limit),
            limit(key.tpm_limit),
            limit(key.max_parallel_requests),
        ),
    );
    push(
        out,
        Descriptor::plain(
            "model_per_key",
            format!("{}:{model}", key.token),
            per_model(&key.metadata, "model_rpm_limit", model),
            per_model(&key.metadata, "model_tpm_limit", model),
            None,
        ),
    );
    if let Some(u) = &c.user {
        push(
            out,
            Descriptor::plain(
                "user",
                u.user_id.clone(),
                limit(u.rpm_limit),
                limit(u.tpm_limit),
                limit(u.max_parallel_requests),
            ),
        );
    }
    if let Some(t) = &c.team {
        push(
            out,
            Descriptor::plain(
                "team",
                t.team_id.clone(),
                limit(t.rpm_limit),
                limit(t.tpm_limit),
                limit(t.max_parallel_requests),
            ),
        );
        push(
            out,
            Descriptor::plain(
                "model_per_team",
                format!("{}:{model}", t.team_id),
                per_model(&t.metadata, "model_rpm_limit", model),
                per_model(&t.metadata, "model_tpm_limit", model),
                None,
            ),
        );
        if let Some(user_id) = key.user_id.as_deref() {
            let m = c.member.as_deref();
            let meta = |f: &str| t.metadata.get(f).and_then(Value::as_u64);
            push(
                out,
                Descriptor::plain(
                    "team_member",
                    format!("{}:{user_id}", t.team_id),
                    m.and_then(|m| limit(m.rpm_limit))
                        .or_else(|| meta("team_member_rpm_limit")),
                    m.and_then(|m| limit(m.tpm_limit))
                        .or_else(|| meta("team_member_tpm_limit")),
                    None,
                ),
            );
        }
    }
    if let Some(o) = &c.org {
        push(
            out,
            Descriptor::plain(
                "organization",
                o.organization_id.clone(),
                limit(o.rpm_limit),
                limit(o.tpm_limit),
                None,
            ),
        );
    }
}
