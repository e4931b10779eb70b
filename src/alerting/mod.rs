//! Alerts (`general_settings.alerting: [slack, webhook, email]`, `alert_types`): budget and
//! soft-budget crossings, failed, slow and hanging requests, deployment cooldowns and outages,
//! database failures, the daily report, and management events (keys, teams, internal users
//! created, updated, deleted; also to `management_webhook_url`), plus invitation e-mails.
//!
//! The hooks in the rest of the gateway are one call each and never wait: an [`Alert`] is
//! `try_send` to a bounded queue (a full queue drops it and counts it); one background task
//! deduplicates it (at most once per window per subject: Redis `SET NX PX` when Redis is
//! configured, so across instances; an in-process map otherwise) and delivers it
//! ([`deliver`]). Nothing secret goes out: no raw key, no key hash unless
//! `alerting_include_key_hash`, no provider key; error texts are scrubbed ([`scrub`]).

mod dedup;
mod deliver;
pub mod email;
mod events;
mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, watch as signal};

pub use crate::config::alerting::{AlertType, Channel};
use crate::config::{Env, GeneralSettings};
use crate::upstream::HttpClient;
pub use email::Mail;
pub use events::{Budget, BudgetEvent, Managed};
pub use watch::{Outcome, Watch};

/// Alerts a queue holds before new ones are dropped.
const QUEUE: usize = 1_000;
/// Default `alerting_threshold` (seconds).
const THRESHOLD_SECS: f64 = 300.0;
/// Default `alerting_args.budget_alert_ttl`.
const BUDGET_TTL_SECS: f64 = 24.0 * 3600.0;
/// Default `alerting_args.outage_alert_ttl`.
const OUTAGE_TTL_SECS: f64 = 60.0;
/// Default window of any other alert (`alerting_args.alert_ttl`).
const ALERT_TTL_SECS: f64 = 60.0;
/// Default `alerting_args.daily_report_frequency`.
const REPORT_EVERY_SECS: f64 = 12.0 * 3600.0;
/// Default `alerting_args.report_check_interval`.
const REPORT_CHECK_SECS: f64 = 300.0;
/// How long shutdown waits for queued alerts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How serious an alert is (LiteLLM's levels, shown in Slack).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Low,
    Medium,
    High,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Low => "Low",
            Level::Medium => "Medium",
            Level::High => "High",
        }
    }
}

/// One alert on its way out.
#[derive(Debug, Clone)]
pub struct Alert {
    pub kind: AlertType,
    pub level: Level,
    /// What the alert is about (a key, a deployment, ...): with `kind`, the deduplication key.
    pub subject: String,
    /// Sent at most once per this window per subject; zero: every time.
    pub window: Duration,
    /// The human text (Slack, logs).
    pub message: String,
    /// LiteLLM's `WebhookEvent` JSON (webhook channel, management webhook).
    pub event: Value,
    /// An e-mail to send too (with the `email` channel).
    pub mail: Option<Mail>,
    /// Goes to the alert channels (its type is among `alert_types`).
    channels: bool,
    /// Goes to `management_webhook_url`.
    management: bool,
    /// Only its e-mail goes out (invitations).
    mail_only: bool,
    /// Goes to the alert channels whatever `alert_types` says (test alerts).
    forced: bool,
}

/// Durations of `alerting_args`.
#[derive(Debug, Clone, Copy)]
struct Windows {
    budget: Duration,
    outage: Duration,
    region_outage: Duration,
    other: Duration,
    report_every: Duration,
    report_check: Duration,
    minor_outage: u32,
    major_outage: u32,
}

/// Counters (tests, shutdown).
#[derive(Debug, Default)]
pub struct Stats {
    /// Deliveries that succeeded (one per channel).
    pub sent: AtomicU64,
    /// Alerts dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Deliveries that failed.
    pub failed: AtomicU64,
    /// Alerts not sent again within their window.
    pub deduplicated: AtomicU64,
}

pub struct Alerts {
    /// `alert_types` as a bit set, when any channel is on.
    types: u32,
    /// Where management events go whatever `alerting` says.
    management: bool,
    email: bool,
    include_hash: bool,
    threshold: Duration,
    windows: Windows,
    /// `PROXY_BASE_URL` (invitation links).
    base_url: String,
    log_to_console: bool,
    tx: Option<mpsc::Sender<Alert>>,
    pub stats: Arc<Stats>,
    hanging: Option<Arc<watch::Hanging>>,
    outages: watch::Outages,
    stop: signal::Sender<bool>,
}

fn bit(t: AlertType) -> u32 {
    1 << (t as u32)
}

fn secs(v: Option<f64>, default: f64) -> Duration {
    Duration::try_from_secs_f64(v.unwrap_or(default).max(0.0)).unwrap_or(Duration::ZERO)
}

impl Alerts {
    /// Nothing on: every hook returns at once.
    pub fn off() -> Arc<Self> {
        Self::start(
            &GeneralSettings::default(),
            &Env::new(Default::default()),
            None,
            None,
        )
    }

    /// The alerts `g` asks for, with their delivery task (when any is on). `client` sends Slack
    /// and webhook alerts; `redis` deduplicates across instances.
    pub fn start(
        g: &GeneralSettings,
        env: &Env,
        client: Option<HttpClient>,
        redis: Option<crate::util::redis_conn::Conn>,
    ) -> Arc<Self> {
        let a = &g.alerting_args;
        let arg = |name: &str| a.get(name).and_then(Value::as_f64);
        let windows = Windows {
            budget: secs(arg("budget_alert_ttl"), BUDGET_TTL_SECS),
            outage: secs(arg("outage_alert_ttl"), OUTAGE_TTL_SECS),
            region_outage: secs(arg("region_outage_alert_ttl"), OUTAGE_TTL_SECS),
            other: secs(arg("alert_ttl"), ALERT_TTL_SECS),
            report_every: secs(
                arg("daily_report_frequency").or_else(|| {
                    env.get("SLACK_DAILY_REPORT_FREQUENCY")
                        .and_then(|v| v.trim().parse().ok())
                }),
                REPORT_EVERY_SECS,
            ),
            report_check: secs(arg("report_check_interval"), REPORT_CHECK_SECS),
            minor_outage: arg("minor_outage_alert_threshold").map_or(5, |n| n.max(1.0) as u32),
            major_outage: arg("major_outage_alert_threshold").map_or(10, |n| n.max(1.0) as u32),
        };
        let channels = &g.alerting;
        let types = if channels.is_empty() {
            0
        } else {
            g.alert_types
                .as_deref()
                .unwrap_or(AlertType::DEFAULTS)
                .iter()
                .fold(0, |m, t| m | bit(*t))
        };
        let targets = client.and_then(|client| {
            deliver::Targets::new(g, env, client, redis)
                .map_err(|e| tracing::error!(error = %e, "alerting left off"))
                .ok()
        });
        let management = targets.as_ref().is_some_and(|t| t.management.is_some());
        let email = targets.as_ref().is_some_and(|t| t.smtp.is_some());
        let (stop, stop_rx) = signal::channel(false);
        let stats = Arc::new(Stats::default());
        let tx = match targets {
            Some(t) if types != 0 || management || email => {
                let (tx, rx) = mpsc::channel(QUEUE);
                tokio::spawn(deliver::run(rx, t, stats.clone(), stop_rx));
                Some(tx)
            }
            _ => None,
        };
        let threshold = secs(g.alerting_threshold, THRESHOLD_SECS);
        let hanging = (tx.is_some() && types & bit(AlertType::LlmRequestsHanging) != 0)
            .then(|| watch::Hanging::start(threshold, stop.subscribe()));
        let hub = Arc::new(Self {
            types: if tx.is_some() { types } else { 0 },
            management,
            email,
            include_hash: g.alerting_include_key_hash,
            threshold,
            windows,
            base_url: env
                .get("PROXY_BASE_URL")
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "http://0.0.0.0:4000".into())
                .trim_end_matches('/')
                .to_string(),
            log_to_console: a.get("log_to_console").and_then(Value::as_bool) == Some(true),
            tx,
            stats,
            hanging: hanging.clone(),
            outages: watch::Outages::default(),
            stop,
        });
        if let Some(h) = hanging {
            h.serve(Arc::downgrade(&hub));
        }
        hub
    }

    /// `alerting_threshold`: slower requests are too slow (also `/model/metrics/slow_responses`).
    pub fn threshold(&self) -> Duration {
        self.threshold
    }

    /// Whether alerts of type `t` are sent.
    pub fn wants(&self, t: AlertType) -> bool {
        self.types & bit(t) != 0
    }

    /// Whether invitation e-mails can be sent (`email` channel with SMTP settings).
    pub fn emails(&self) -> bool {
        self.email
    }

    /// `{PROXY_BASE_URL}/ui?invitation_id={id}`
    pub fn invitation_link(&self, invitation_id: &str) -> String {
        format!("{}/ui?invitation_id={invitation_id}", self.base_url)
    }

    /// The daily report's period and how often to check whether a report is due (with daily
    /// or spend reports on).
    pub fn report_schedule(&self) -> Option<(Duration, Duration)> {
        (self.wants(AlertType::DailyReports) || self.wants(AlertType::SpendReports))
            .then_some((self.windows.report_every, self.windows.report_check))
    }

    /// Queue `alert` without waiting (a full queue drops it).
    pub fn send(&self, mut alert: Alert) {
        alert.channels = alert.forced || (self.wants(alert.kind) && !alert.mail_only);
        if !(alert.channels || alert.management || alert.mail.is_some()) {
            return;
        }
        if self.log_to_console {
            tracing::info!(alert = alert.kind.name(), "{}", alert.message);
        }
        let Some(tx) = &self.tx else { return };
        if tx.try_send(alert).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `GET /health/services?service=slack|webhook`: a test alert to the channels; `false` when
    /// alerting is off.
    pub fn test(&self) -> bool {
        if self.types == 0 {
            return false;
        }
        let message = "This is a test alert from Tianji";
        let mut a = Alert::new(
            AlertType::BudgetAlerts,
            Level::Low,
            "",
            Duration::ZERO,
            message,
            events::proxy_event("test_alert", message),
        );
        a.forced = true;
        self.send(a);
        true
    }

    /// Send what is queued and stop (after the server has drained): the delivery task drops
    /// its queue once it has sent what was in it.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        if let Some(tx) = &self.tx
            && tokio::time::timeout(SHUTDOWN_GRACE, tx.closed())
                .await
                .is_err()
        {
            tracing::warn!("alerting: alerts still queued at shutdown were not sent");
        }
    }
}

impl Alert {
    /// An alert of `kind` about `subject`, sent at most once per `window`.
    pub fn new(
        kind: AlertType,
        level: Level,
        subject: impl Into<String>,
        window: Duration,
        message: impl Into<String>,
        event: Value,
    ) -> Self {
        Self {
            kind,
            level,
            subject: subject.into(),
            window,
            message: message.into(),
            event,
            mail: None,
            channels: false,
            management: false,
            mail_only: false,
            forced: false,
        }
    }
}

/// `text` safe to send: URLs redacted (credentials, query strings), anything that looks like a
/// key (`sk-...`, `Bearer ...`) masked, at most 1000 characters.
pub fn scrub(text: &str) -> String {
    let text = crate::secrets::redact_text(text);
    let mut out = String::with_capacity(text.len().min(1000));
    let mut bearer = false;
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let trimmed = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-');
        let secret = bearer
            || (trimmed.len() > 8
                && ["sk-", "sk_", "key-", "AKIA", "AIza", "xox"]
                    .iter()
                    .any(|p| trimmed.starts_with(p)));
        bearer = word.eq_ignore_ascii_case("bearer");
        if secret && !trimmed.is_empty() {
            out.push_str(&word.replace(trimmed, &mask(trimmed)));
        } else {
            out.push_str(word);
        }
        if out.len() >= 1000 {
            let mut end = 1000;
            while !out.is_char_boundary(end) {
                end -= 1;
            }
            out.truncate(end);
            out.push('…');
            break;
        }
    }
    out
}

/// `sk-...abcd`: the first three characters and the last four.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 8 {
        return "***".into();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}...{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_masks_keys_and_urls() {
        let s =
            scrub("bad key sk-abcdefghijklmnop for https://u:p@host/x?key=zzz, Bearer abcdefghijk");
        assert!(!s.contains("abcdefghijklmnop"), "{s}");
        assert!(s.contains("sk-...mnop"), "{s}");
        assert!(!s.contains("u:p@"), "{s}");
        assert!(!s.contains("zzz"), "{s}");
        assert!(!s.contains("abcdefghijk"), "{s}");
        assert_eq!(scrub("plain words"), "plain words");
    }

    #[test]
    fn masks() {
        assert_eq!(mask("sk-1234567890"), "sk-...7890");
        assert_eq!(mask("short"), "***");
    }
}
