//! The alerts about governance objects: budgets crossed (key, team, user, end user, ...),
//! management events (keys, teams, internal users created, updated, deleted), invitations, and
//! the gateway's own troubles (cooldowns, database failures). Payloads are LiteLLM's
//! `WebhookEvent` (`spend`, `max_budget`, `token`, `user_id`, `team_id`, `team_alias`,
//! `user_email`, `key_alias`, `customer_id`, `event`, `event_group`, `event_message`), built from
//! an allow-list of columns: no raw key, no key hash unless `alerting_include_key_hash`.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::email::{Mail, html_escape};
use super::{Alert, AlertType, Alerts, Level};
use crate::auth::Principal;
use crate::auth::budget::Account;

/// Which budget event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetEvent {
    /// Spend reached the max budget (requests are refused).
    Crossed,
    /// Spend reached the soft budget.
    SoftCrossed,
    /// Spend passed 85% of the max budget.
    Threshold,
}

impl BudgetEvent {
    fn name(self) -> &'static str {
        match self {
            BudgetEvent::Crossed => "budget_crossed",
            BudgetEvent::SoftCrossed => "soft_budget_crossed",
            BudgetEvent::Threshold => "threshold_crossed",
        }
    }
}

/// A budget alert's numbers.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub event: BudgetEvent,
    pub spend: f64,
    pub limit: f64,
}

/// Which management object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Managed {
    Key,
    Team,
    User,
    /// A model added through the API (`new_model_added` only).
    Model,
}

/// Columns of each object that may go out.
const KEY_FIELDS: &[&str] = &[
    "key_alias",
    "key_name",
    "user_id",
    "team_id",
    "organization_id",
    "models",
    "max_budget",
    "spend",
    "metadata",
    "expires",
    "budget_duration",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
    "blocked",
    "created_by",
    "updated_by",
    "created_at",
    "updated_at",
];
const TEAM_FIELDS: &[&str] = &[
    "team_id",
    "team_alias",
    "organization_id",
    "models",
    "max_budget",
    "spend",
    "metadata",
    "members_with_roles",
    "tpm_limit",
    "rpm_limit",
    "blocked",
    "created_at",
    "updated_at",
];
const MODEL_FIELDS: &[&str] = &["model_name", "model_id", "model_info", "created_by"];
const USER_FIELDS: &[&str] = &[
    "user_id",
    "user_email",
    "user_alias",
    "user_role",
    "teams",
    "organization_id",
    "models",
    "max_budget",
    "spend",
    "metadata",
    "tpm_limit",
    "rpm_limit",
    "created_at",
    "updated_at",
];

/// `v` without members named like secrets (`crate::secrets::secret_name`, at any depth), its
/// strings scrubbed.
fn without_secrets(v: &Value) -> Value {
    let mut v = v.clone();
    strip(&mut v);
    v
}

fn strip(v: &mut Value) {
    if let Some(m) = v.as_object_mut() {
        m.retain(|k, _| !crate::secrets::secret_name(k));
        m.values_mut().for_each(strip);
    } else if let Some(a) = v.as_array_mut() {
        a.iter_mut().for_each(strip);
    } else if let Some(s) = v.as_str() {
        *v = Value::String(super::scrub(s));
    }
}

/// The allowed columns of `row`.
fn allowed(row: &Value, fields: &[&str]) -> Map<String, Value> {
    fields
        .iter()
        .filter_map(|f| Some(((*f).to_string(), without_secrets(row.get(*f)?))))
        .collect()
}

fn s(v: Option<&str>) -> Value {
    v.map_or(Value::Null, |s| json!(s))
}

impl Alerts {
    /// A budget of `account` (one of `principal`'s) crossed.
    pub fn budget(&self, principal: &Principal, account: &Account, b: Budget) {
        if !self.wants(AlertType::BudgetAlerts) {
            return;
        }
        let key = principal.key();
        let (group, id, label) = match account {
            Account::Key(hash) => {
                let alias = key.and_then(|k| k.key.key_alias.clone());
                let name = key.and_then(|k| k.key.key_name.clone());
                let label = alias.or(name).unwrap_or_else(|| "key".into());
                ("key", hash.clone(), format!("Key {label}"))
            }
            Account::Team(t) => ("team", t.clone(), format!("Team {t}")),
            Account::User(u) => ("internal_user", u.clone(), format!("User {u}")),
            Account::Member { team_id, user_id } => (
                "internal_user",
                format!("{team_id}/{user_id}"),
                format!("User {user_id} in team {team_id}"),
            ),
            Account::Org(o) => ("organization", o.clone(), format!("Organization {o}")),
            Account::EndUser(e) => ("customer", e.clone(), format!("End user {e}")),
        };
        let what = match b.event {
            BudgetEvent::Crossed => "Budget Crossed",
            BudgetEvent::SoftCrossed => "Soft Budget Crossed",
            BudgetEvent::Threshold => "Budget Threshold Crossed (85%)",
        };
        let limit_name = if b.event == BudgetEvent::SoftCrossed {
            "Soft budget"
        } else {
            "Max budget"
        };
        let message = format!(
            "{what}: {label}. Spend: ${:.6}, {limit_name}: ${}",
            b.spend, b.limit
        );
        let user_email = key
            .and_then(|k| k.user.as_ref())
            .and_then(|u| u.user_email.clone());
        let team = key.and_then(|k| k.team.as_ref());
        let mut event = json!({
            "spend": b.spend,
            "max_budget": if b.event == BudgetEvent::SoftCrossed { Value::Null } else { json!(b.limit) },
            "soft_budget": if b.event == BudgetEvent::SoftCrossed { json!(b.limit) } else { Value::Null },
            "token": Value::Null,
            "customer_id": if let Account::EndUser(e) = account { json!(e) } else { Value::Null },
            "user_id": s(key.and_then(|k| k.key.user_id.as_deref())),
            "team_id": s(key.and_then(|k| k.key.team_id.as_deref())),
            "team_alias": s(team.and_then(|t| t.team_alias.as_deref())),
            "user_email": s(user_email.as_deref()),
            "key_alias": s(key.and_then(|k| k.key.key_alias.as_deref())),
            "projected_exceeded_date": Value::Null,
            "projected_spend": Value::Null,
            "event": b.event.name(),
            "event_group": group,
            "event_message": message,
        });
        match account {
            Account::Team(t) => event["team_id"] = json!(t),
            Account::User(u) | Account::Member { user_id: u, .. } => event["user_id"] = json!(u),
            Account::Key(hash) if self.include_hash => event["token"] = json!(hash),
            _ => {}
        }
        let mut alert = Alert::new(
            AlertType::BudgetAlerts,
            if b.event == BudgetEvent::Crossed {
                Level::High
            } else {
                Level::Medium
            },
            format!("{}:{group}:{id}", b.event.name()),
            self.windows.budget,
            message.clone(),
            event,
        );
        if let (Some(to), "key" | "internal_user") = (user_email, group) {
            alert.mail = Some(Mail {
                to,
                subject: format!("Tianji: {what}"),
                html: format!("<html><body><p>{}</p></body></html>", html_escape(&message)),
            });
        }
        self.send(alert);
    }

    /// A request of `principal` was admitted on the budgets of `lines`: alert the soft budgets
    /// (key, team) and the max budgets past 85% that spend `ledger` knows has reached.
    pub fn admitted(
        &self,
        principal: &Principal,
        lines: &[crate::spend::ledger::Line],
        ledger: &crate::spend::ledger::Ledger,
    ) {
        if !self.wants(AlertType::BudgetAlerts) {
            return;
        }
        let spent =
            |a: &Account, recorded: f64| ledger.get(a).map_or(recorded, |(s, _)| s.max(recorded));
        for l in lines {
            let spend = spent(&l.account, l.recorded);
            if l.max_budget > 0.0 && spend >= 0.85 * l.max_budget {
                let event = if spend >= l.max_budget {
                    BudgetEvent::Crossed
                } else {
                    BudgetEvent::Threshold
                };
                let b = Budget {
                    event,
                    spend,
                    limit: l.max_budget,
                };
                self.budget(principal, &l.account, b);
            }
        }
        let Some(k) = principal.key() else { return };
        let soft = [
            (Account::Key(k.key.token.clone()), &k.key.limits),
            (
                Account::Team(
                    k.team
                        .as_ref()
                        .map(|t| t.team_id.clone())
                        .unwrap_or_default(),
                ),
                k.team.as_ref().map_or(&k.key.limits, |t| &t.limits),
            ),
        ];
        for (i, (account, limits)) in soft.iter().enumerate() {
            if i == 1 && k.team.is_none() {
                continue;
            }
            if let Some(limit) = limits.soft_budget.filter(|s| *s >= 0.0) {
                let spend = spent(account, limits.spend);
                if spend >= limit {
                    let b = Budget {
                        event: BudgetEvent::SoftCrossed,
                        spend,
                        limit,
                    };
                    self.budget(principal, account, b);
                }
            }
        }
    }

    /// A management event about `row` (after its transaction committed), or `None` when nobody
    /// wants it. `action`: `created`, `updated`, `rotated`, `deleted`.
    pub fn management(
        &self,
        what: Managed,
        action: &str,
        row: &Value,
        changed_by: &str,
    ) -> Option<Alert> {
        use AlertType::*;
        let (kind, event, group, fields) = match (what, action) {
            (Managed::Key, "created") => (NewVirtualKeyCreated, "key_created", "key", KEY_FIELDS),
            (Managed::Key, "rotated") => (VirtualKeyUpdated, "key_regenerated", "key", KEY_FIELDS),
            (Managed::Key, "deleted") => (VirtualKeyDeleted, "key_deleted", "key", KEY_FIELDS),
            (Managed::Key, _) => (VirtualKeyUpdated, "key_updated", "key", KEY_FIELDS),
            (Managed::Team, "created") => (NewTeamCreated, "team_created", "team", TEAM_FIELDS),
            (Managed::Team, "deleted") => (TeamDeleted, "team_deleted", "team", TEAM_FIELDS),
            (Managed::Team, _) => (TeamUpdated, "team_updated", "team", TEAM_FIELDS),
            (Managed::User, "created") => (
                NewInternalUserCreated,
                "internal_user_created",
                "internal_user",
                USER_FIELDS,
            ),
            (Managed::User, "deleted") => (
                InternalUserDeleted,
                "internal_user_deleted",
                "internal_user",
                USER_FIELDS,
            ),
            (Managed::User, _) => (
                InternalUserUpdated,
                "internal_user_updated",
                "internal_user",
                USER_FIELDS,
            ),
            (Managed::Model, "created") => {
                (NewModelAdded, "new_model_added", "proxy", MODEL_FIELDS)
            }
            (Managed::Model, _) => return None,
        };
        let management = self.management && what != Managed::Model;
        if !(self.wants(kind) || management) {
            return None;
        }
        let object = allowed(row, fields);
        let get = |k: &str| object.get(k).cloned().unwrap_or(Value::Null);
        let name = match what {
            Managed::Key => get("key_alias")
                .as_str()
                .or(get("key_name").as_str())
                .map(str::to_string),
            Managed::Team => get("team_alias")
                .as_str()
                .or(get("team_id").as_str())
                .map(str::to_string),
            Managed::User => get("user_id").as_str().map(str::to_string),
            Managed::Model => get("model_name").as_str().map(str::to_string),
        }
        .unwrap_or_default();
        let message = format!(
            "`{}` {name} ({event}) by {}\n{}",
            kind.name(),
            super::scrub(changed_by),
            serde_json::to_string(&Value::Object(object.clone())).unwrap_or_default()
        );
        let mut ev = json!({
            "spend": get("spend").as_f64().unwrap_or(0.0),
            "max_budget": get("max_budget"),
            "token": Value::Null,
            "customer_id": Value::Null,
            "user_id": get("user_id"),
            "team_id": get("team_id"),
            "team_alias": get("team_alias"),
            "user_email": get("user_email"),
            "key_alias": get("key_alias"),
            "key_name": get("key_name"),
            "models": get("models"),
            "metadata": get("metadata"),
            "event": event,
            "event_group": group,
            "event_type": kind.name(),
            "event_message": format!("{event}: {name}"),
            "changed_by": super::scrub(changed_by),
            "object": Value::Object(object),
        });
        if what == Managed::Key && self.include_hash {
            ev["token"] = row.get("token").cloned().unwrap_or(Value::Null);
        }
        let mut alert = Alert::new(kind, Level::Low, "", std::time::Duration::ZERO, message, ev);
        alert.management = management;
        Some(alert)
    }

    /// E-mail an invitation link to `to` (with the `email` channel and SMTP settings).
    pub fn invite(&self, to: &str, user_id: &str, invitation_id: &str, what: &str) {
        if !self.email {
            return;
        }
        let link = self.invitation_link(invitation_id);
        let mut alert = Alert::new(
            AlertType::NewInternalUserCreated,
            Level::Low,
            "",
            std::time::Duration::ZERO,
            format!("invitation e-mail for user {user_id}"),
            Value::Null,
        );
        alert.mail = Some(super::email::invitation(to, user_id, &link, what));
        alert.mail_only = true;
        self.send(alert);
    }

    /// A deployment was cooled down after failures.
    pub fn cooldown(&self, deployment: &str, model: &str, api_base: &str, seconds: f64) {
        if !self.wants(AlertType::CooldownDeployment) {
            return;
        }
        let message = format!(
            "Deployment cooled down: model group `{model}`, deployment `{deployment}`, api base `{}`, for {seconds}s",
            super::scrub(api_base)
        );
        self.send(Alert::new(
            AlertType::CooldownDeployment,
            Level::Medium,
            deployment,
            self.windows.outage,
            message.clone(),
            proxy_event("cooldown_deployment", &message),
        ));
    }

    /// The database refused or failed a write (`what`: which one); a failed spend write is
    /// also `failed_tracking_spend`.
    pub fn db_exception(&self, what: &str, error: &str) {
        let error = super::scrub(error);
        let spend = what.contains("spend");
        for (kind, text) in [
            (AlertType::DbExceptions, "DB read/write call failed"),
            (AlertType::FailedTrackingSpend, "Failed to track spend"),
        ] {
            if !self.wants(kind) || (kind == AlertType::FailedTrackingSpend && !spend) {
                continue;
            }
            let message = format!("{text}: {what}: {error}");
            self.send(Alert::new(
                kind,
                Level::High,
                what,
                self.windows.other,
                message.clone(),
                proxy_event(kind.name(), &message),
            ));
        }
    }

    /// A request fell back from model group `from` to `to` after an error of class `why`.
    pub fn fallback(&self, from: &str, to: &str, why: crate::router::policy::ErrorClass) {
        if !self.wants(AlertType::FallbackReports) {
            return;
        }
        let message =
            format!("Fallback used: model group `{from}` -> `{to}` after a {why:?} error");
        self.send(Alert::new(
            AlertType::FallbackReports,
            Level::Low,
            format!("{from}->{to}"),
            self.windows.other,
            message.clone(),
            proxy_event("fallback_reports", &message),
        ));
    }

    /// A report of `kind` (`daily_reports`, `spend_reports`) named `subject`, sent at most
    /// once per `window`.
    pub fn report(&self, kind: AlertType, subject: &str, message: String, window: Duration) {
        self.send(Alert::new(
            kind,
            Level::Low,
            subject,
            window,
            message.clone(),
            proxy_event(kind.name(), &message),
        ));
    }
}

/// A `WebhookEvent` about the proxy itself.
pub(super) fn proxy_event(event: &str, message: &str) -> Value {
    json!({
        "spend": 0.0,
        "max_budget": Value::Null,
        "token": Value::Null,
        "customer_id": Value::Null,
        "user_id": Value::Null,
        "team_id": Value::Null,
        "team_alias": Value::Null,
        "user_email": Value::Null,
        "key_alias": Value::Null,
        "event": event,
        "event_group": "proxy",
        "event_message": message,
    })
}
