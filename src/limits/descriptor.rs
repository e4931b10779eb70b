//! Rate-limit descriptors of one request (LiteLLM's v3 limiter names): one per entity that has
//! a limit set, and none at all when nothing is limited, so such a request never touches Redis.

use serde_json::Value;

use crate::auth::records::EndUserRecord;
use crate::auth::{KeyCaller, Principal};
use crate::router::Deployment;

/// One limited entity: requests and tokens per window, requests in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// `api_key`, `user`, `team`, `team_member`, `end_user`, `organization`,
    /// `model_per_key`, `model_per_team`, `deployment`, `global`.
    pub kind: &'static str,
    pub value: String,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub parallel: Option<u64>,
}

impl Descriptor {
    /// The common prefix of this descriptor's Redis keys (one hash tag for all, so one script
    /// call can touch every descriptor of a request on Redis Cluster too).
    pub fn redis_base(&self) -> String {
        format!("tianji:{{rl}}:{}:{}", self.kind, self.value)
    }

    fn limited(&self) -> bool {
        self.rpm.is_some() || self.tpm.is_some() || self.parallel.is_some()
    }
}

/// A stored limit: negative or missing means none.
fn limit(v: Option<i64>) -> Option<u64> {
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
            Descriptor {
                kind: "end_user",
                value: id.to_string(),
                rpm: limit(e.rpm_limit),
                tpm: limit(e.tpm_limit),
                parallel: limit(e.max_parallel_requests),
            },
        );
    }
    let dep = s.deployment;
    push(
        &mut out,
        Descriptor {
            kind: "deployment",
            value: dep.id.clone(),
            rpm: dep.rpm,
            tpm: dep.tpm,
            parallel: dep.max_parallel_requests,
        },
    );
    push(
        &mut out,
        Descriptor {
            kind: "global",
            value: "max_parallel_requests".into(),
            rpm: None,
            tpm: None,
            parallel: s.global_parallel,
        },
    );
    out
}

fn key_descriptors(c: &KeyCaller, model: &str, out: &mut Vec<Descriptor>) {
    let key = &c.key;
    push(
        out,
        Descriptor {
            kind: "api_key",
            value: key.token.clone(),
            rpm: limit(key.rpm_limit),
            tpm: limit(key.tpm_limit),
            parallel: limit(key.max_parallel_requests),
        },
    );
    push(
        out,
        Descriptor {
            kind: "model_per_key",
            value: format!("{}:{model}", key.token),
            rpm: per_model(&key.metadata, "model_rpm_limit", model),
            tpm: per_model(&key.metadata, "model_tpm_limit", model),
            parallel: None,
        },
    );
    if let Some(u) = &c.user {
        push(
            out,
            Descriptor {
                kind: "user",
                value: u.user_id.clone(),
                rpm: limit(u.rpm_limit),
                tpm: limit(u.tpm_limit),
                parallel: limit(u.max_parallel_requests),
            },
        );
    }
    if let Some(t) = &c.team {
        push(
            out,
            Descriptor {
                kind: "team",
                value: t.team_id.clone(),
                rpm: limit(t.rpm_limit),
                tpm: limit(t.tpm_limit),
                parallel: limit(t.max_parallel_requests),
            },
        );
        push(
            out,
            Descriptor {
                kind: "model_per_team",
                value: format!("{}:{model}", t.team_id),
                rpm: per_model(&t.metadata, "model_rpm_limit", model),
                tpm: per_model(&t.metadata, "model_tpm_limit", model),
                parallel: None,
            },
        );
        if let Some(user_id) = key.user_id.as_deref() {
            let m = c.member.as_deref();
            let meta = |f: &str| t.metadata.get(f).and_then(Value::as_u64);
            push(
                out,
                Descriptor {
                    kind: "team_member",
                    value: format!("{}:{user_id}", t.team_id),
                    rpm: m
                        .and_then(|m| limit(m.rpm_limit))
                        .or_else(|| meta("team_member_rpm_limit")),
                    tpm: m
                        .and_then(|m| limit(m.tpm_limit))
                        .or_else(|| meta("team_member_tpm_limit")),
                    parallel: None,
                },
            );
        }
    }
    if let Some(o) = &c.org {
        push(
            out,
            Descriptor {
                kind: "organization",
                value: o.organization_id.clone(),
                rpm: limit(o.rpm_limit),
                tpm: limit(o.tpm_limit),
                parallel: None,
            },
        );
    }
}
