//! The delivery task: each queued alert deduplicated, then sent to Slack (`{"text": ..}`), the
//! webhook (LiteLLM's `WebhookEvent` JSON), the management webhook and SMTP, each send bounded
//! by a timeout.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Uri};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::dedup::Dedup;
use super::email::Smtp;
use super::{Alert, AlertType, Channel, Stats};
use crate::body::Body;
use crate::config::{Env, GeneralSettings};
use crate::upstream::HttpClient;

/// Longest one delivery may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Where alerts go.
pub struct Targets {
    client: HttpClient,
    /// `SLACK_WEBHOOK_URL` (else `ALERTING_WEBHOOK_URL`), with the `slack` channel.
    slack: Vec<Uri>,
    /// `alert_to_webhook_url`: Slack URLs per alert type.
    per_type: HashMap<AlertType, Vec<Uri>>,
    /// `WEBHOOK_URL`, with the `webhook` channel.
    webhook: Option<Uri>,
    /// `management_webhook_url`
    pub management: Option<Uri>,
    /// SMTP, with the `email` channel and `SMTP_HOST`.
    pub smtp: Option<Smtp>,
    dedup: Dedup,
}

fn uri(what: &str, s: &str) -> Option<Uri> {
    match s.trim().parse::<Uri>() {
        Ok(u) if u.scheme().is_some() && u.host().is_some() => Some(u),
        _ => {
            tracing::error!(
                url = %crate::secrets::redact_url(s),
                "alerting: {what} is not an absolute URL; left out"
            );
            None
        }
    }
}

impl Targets {
    pub fn new(
        g: &GeneralSettings,
        env: &Env,
        client: HttpClient,
        redis: Option<crate::util::redis_conn::Conn>,
    ) -> Result<Self, String> {
        let on = |c: Channel| g.alerting.contains(&c);
        let var = |n: &str| env.get(n).filter(|v| !v.trim().is_empty());
        let mut slack = Vec::new();
        let mut per_type = HashMap::new();
        if on(Channel::Slack) {
            if let Some(u) = var("SLACK_WEBHOOK_URL").or_else(|| var("ALERTING_WEBHOOK_URL")) {
                slack.extend(uri("SLACK_WEBHOOK_URL", &u));
            }
            for (t, urls) in &g.alert_to_webhook_url {
                let list: Vec<Uri> = urls
                    .list()
                    .iter()
                    .filter_map(|u| uri("alert_to_webhook_url", &resolve(env, u)))
                    .collect();
                per_type.insert(*t, list);
            }
            if slack.is_empty() && per_type.is_empty() {
                tracing::warn!("alerting: `slack` is on but SLACK_WEBHOOK_URL is not set");
            }
        }
        let webhook = if on(Channel::Webhook) {
            let u = var("WEBHOOK_URL").and_then(|u| uri("WEBHOOK_URL", &u));
            if u.is_none() {
                tracing::warn!("alerting: `webhook` is on but WEBHOOK_URL is not set");
            }
            u
        } else {
            None
        };
        let smtp = if on(Channel::Email) {
            match Smtp::from_env(env) {
                Some(Ok(s)) => Some(s),
                Some(Err(e)) => return Err(format!("SMTP settings: {e}")),
                None => {
                    tracing::warn!("alerting: `email` is on but SMTP_HOST is not set");
                    None
                }
            }
        } else {
            None
        };
        let management = g
            .management_webhook_url
            .as_deref()
            .and_then(|u| uri("management_webhook_url", &resolve(env, u)));
        Ok(Self {
            client,
            slack,
            per_type,
            webhook,
            management,
            smtp,
            dedup: Dedup::new(redis),
        })
    }

    fn slack_for(&self, t: AlertType) -> &[Uri] {
        self.per_type.get(&t).map_or(&self.slack, Vec::as_slice)
    }
}

/// An `os.environ/NAME` reference resolved.
fn resolve(env: &Env, v: &str) -> String {
    match v.strip_prefix("os.environ/") {
        Some(name) => env.get(name).unwrap_or_default(),
        None => v.to_string(),
    }
}

pub async fn run(
    mut rx: mpsc::Receiver<Alert>,
    mut t: Targets,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let alert = tokio::select! {
            a = rx.recv() => a,
            _ = stop.wait_for(|s| *s) => None,
        };
        let Some(alert) = alert else { break };
        one(&mut t, &stats, alert).await;
    }
    // shutting down: send what is queued; dropping `rx` then tells `Alerts::shutdown`
    while let Ok(alert) = rx.try_recv() {
        one(&mut t, &stats, alert).await;
    }
}

async fn one(t: &mut Targets, stats: &Stats, alert: Alert) {
    let kind = alert.kind.name();
    if !t.dedup.first(kind, &alert.subject, alert.window).await {
        stats.deduplicated.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let mut posts: Vec<(Uri, Value)> = Vec::new();
    if alert.channels {
        let text = slack_text(&alert);
        for u in t.slack_for(alert.kind) {
            posts.push((u.clone(), json!({"text": text})));
        }
        if let Some(u) = &t.webhook {
            posts.push((u.clone(), alert.event.clone()));
        }
    }
    if alert.management
        && let Some(u) = &t.management
    {
        posts.push((u.clone(), alert.event.clone()));
    }
    for (u, body) in posts {
        let ok = post(&t.client, u, &body).await;
        count(stats, ok, kind, "webhook");
    }
    if let (Some(mail), Some(smtp)) = (&alert.mail, &t.smtp) {
        let ok = match tokio::time::timeout(SEND_TIMEOUT, smtp.send(mail)).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "alerting: an e-mail could not be sent");
                false
            }
            Err(_) => false,
        };
        count(stats, ok, kind, "email");
    }
}

fn count(stats: &Stats, ok: bool, kind: &str, channel: &str) {
    if ok {
        stats.sent.fetch_add(1, Ordering::Relaxed);
    } else {
        stats.failed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            alert = kind,
            channel,
            "alerting: an alert could not be delivered"
        );
    }
}

/// LiteLLM's Slack layout: level, time, message.
fn slack_text(a: &Alert) -> String {
    let now = crate::util::clock::fmt_utc(crate::util::clock::now_secs());
    format!(
        "Level: `{}`\nTimestamp: `{now}`\n\nMessage: {}",
        a.level.name(),
        a.message
    )
}

async fn post(client: &HttpClient, url: Uri, body: &Value) -> bool {
    let Ok(bytes) = serde_json::to_vec(body) else {
        return false;
    };
    let req = Request::builder()
        .method(Method::POST)
        .uri(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::full(Bytes::from(bytes)));
    let Ok(req) = req else { return false };
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, client.request(req)).await,
        Ok(Ok(resp)) if resp.status().is_success()
    )
}
