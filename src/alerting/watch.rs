//! Alerts about LLM requests: failed (`llm_exceptions`), slower than `alerting_threshold`
//! (`llm_too_slow`), still open after it (`llm_requests_hanging`), and deployments failing
//! often (`outage_alerts`). A request gets a [`Watch`] only when one of these is on; the
//! hanging check is one background sweep a second over the open requests (no timer per
//! request).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch as signal;
use tokio::time::Instant;

use super::events::proxy_event;
use super::{Alert, AlertType, Alerts, Level, scrub};

/// How a watched request ended.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    pub status: u16,
    pub ok: bool,
    pub error: Option<&'a str>,
    /// The model group.
    pub model: Option<&'a str>,
    /// The deployment's id and (redacted) api base.
    pub deployment: Option<(&'a str, &'a str)>,
}

/// An open request, watched for alerts.
pub struct Watch {
    hub: Arc<Alerts>,
    id: u64,
    started: Instant,
    key_alias: Option<String>,
}

struct Open {
    started: Instant,
    model: String,
    key_alias: Option<String>,
    alerted: bool,
}

/// Shards of the open requests (requests on many threads rarely share a lock).
const SHARDS: usize = 16;

/// The open requests, swept once a second.
pub struct Hanging {
    threshold: Duration,
    next: AtomicU64,
    open: [Mutex<HashMap<u64, Open>>; SHARDS],
    stop: signal::Receiver<bool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Hanging {
    pub fn start(threshold: Duration, stop: signal::Receiver<bool>) -> Arc<Self> {
        Arc::new(Self {
            threshold,
            next: AtomicU64::new(1),
            open: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            stop,
        })
    }

    /// Sweep while `hub` lives.
    pub fn serve(self: &Arc<Self>, hub: Weak<Alerts>) {
        let me = self.clone();
        let mut stop = self.stop.clone();
        let every = (self.threshold / 2).clamp(Duration::from_millis(100), Duration::from_secs(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                let Some(hub) = hub.upgrade() else { return };
                for (model, alias, open_for) in me.overdue() {
                    hub.hanging(&model, alias.as_deref(), open_for);
                }
            }
        });
    }

    /// Requests open past the threshold and not reported yet (now marked reported).
    fn overdue(&self) -> Vec<(String, Option<String>, Duration)> {
        let mut out = Vec::new();
        for shard in &self.open {
            let mut open = lock(shard);
            for o in open.values_mut() {
                if !o.alerted && o.started.elapsed() > self.threshold {
                    o.alerted = true;
                    out.push((o.model.clone(), o.key_alias.clone(), o.started.elapsed()));
                }
            }
        }
        out
    }

    fn shard(&self, id: u64) -> &Mutex<HashMap<u64, Open>> {
        &self.open[id as usize % SHARDS]
    }
}

/// Failures per deployment within `outage_alert_ttl`.
#[derive(Default)]
pub struct Outages {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl Alerts {
    /// A watch for a request on `model` by a key called `key_alias`; `None` when no request alert
    /// is on.
    pub fn watch(self: &Arc<Self>, model: &str, key_alias: Option<&str>) -> Option<Watch> {
        use AlertType::*;
        let wanted = [LlmExceptions, LlmTooSlow, LlmRequestsHanging, OutageAlerts];
        if !wanted.iter().any(|t| self.wants(*t)) {
            return None;
        }
        let started = Instant::now();
        let id = match &self.hanging {
            Some(h) => {
                let id = h.next.fetch_add(1, Ordering::Relaxed);
                lock(h.shard(id)).insert(
                    id,
                    Open {
                        started,
                        model: model.to_string(),
                        key_alias: key_alias.map(str::to_string),
                        alerted: false,
                    },
                );
                id
            }
            None => 0,
        };
        Some(Watch {
            hub: self.clone(),
            id,
            started,
            key_alias: key_alias.map(str::to_string),
        })
    }

    fn hanging(&self, model: &str, key_alias: Option<&str>, open_for: Duration) {
        let message = format!(
            "Requests are hanging - {:.0}s+ request time. Model: `{model}`, key: `{}`",
            open_for.as_secs_f64(),
            key_alias.unwrap_or("-")
        );
        self.send(Alert::new(
            AlertType::LlmRequestsHanging,
            Level::Medium,
            model,
            self.windows.other,
            message.clone(),
            proxy_event("llm_requests_hanging", &message),
        ));
    }

    fn outage(&self, deployment: &str, model: &str, api_base: &str) {
        let window = self.windows.outage;
        let count = {
            let mut map = lock(&self.outages.failures);
            let now = Instant::now();
            let list = map.entry(deployment.to_string()).or_default();
            list.retain(|t| now.duration_since(*t) < window);
            list.push(now);
            let n = list.len() as u32;
            if map.len() > 10_000 {
                map.retain(|_, l| l.last().is_some_and(|t| now.duration_since(*t) < window));
            }
            n
        };
        let (level, what) = if count == self.windows.major_outage {
            (Level::High, "Major")
        } else if count == self.windows.minor_outage {
            (Level::Medium, "Minor")
        } else {
            return;
        };
        let message = format!(
            "{what} Service Outage: {count} errors within {}s. Model group `{model}`, deployment `{deployment}`, api base `{}`",
            window.as_secs(),
            scrub(api_base)
        );
        self.send(Alert::new(
            AlertType::OutageAlerts,
            level,
            format!("{what}:{deployment}"),
            window,
            message.clone(),
            proxy_event("outage_alerts", &message),
        ));
    }
}

impl Watch {
    /// The request ended: alert on failure, slowness, repeated deployment failures.
    pub fn finish(self, o: &Outcome<'_>) {
        let hub = &self.hub;
        let elapsed = self.started.elapsed();
        let model = o.model.unwrap_or("-");
        let (dep, base) = o.deployment.unwrap_or(("-", "-"));
        let key = self.key_alias.as_deref().unwrap_or("-");
        if !o.ok && hub.wants(AlertType::LlmExceptions) {
            let message = format!(
                "LLM API call failed: `{}`\nModel: `{model}`\nAPI base: `{}`\nStatus: {}\nKey: `{key}`",
                scrub(o.error.unwrap_or("error")),
                scrub(base),
                o.status
            );
            hub.send(Alert::new(
                AlertType::LlmExceptions,
                Level::High,
                model,
                hub.windows.other,
                message.clone(),
                proxy_event("llm_exceptions", &message),
            ));
        }
        if !o.ok
            && (o.status >= 500 || o.status == 429 || o.status == 408 || o.status == 0)
            && o.deployment.is_some()
            && hub.wants(AlertType::OutageAlerts)
        {
            hub.outage(dep, model, base);
        }
        if o.ok && elapsed > hub.threshold && hub.wants(AlertType::LlmTooSlow) {
            let message = format!(
                "Responses are slow - {:.1}s response time > alerting threshold {:.1}s\nModel: `{model}`\nDeployment: `{dep}`\nAPI base: `{}`",
                elapsed.as_secs_f64(),
                hub.threshold.as_secs_f64(),
                scrub(base)
            );
            hub.send(Alert::new(
                AlertType::LlmTooSlow,
                Level::Low,
                format!("{model}:{dep}"),
                hub.windows.other,
                message.clone(),
                proxy_event("llm_too_slow", &message),
            ));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(h) = &self.hub.hanging {
            lock(h.shard(self.id)).remove(&self.id);
        }
    }
}
