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
    /// The deployment's region.
    pub region: Option<&'a str>,
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

/// Recent failures per deployment (and per region: with the deployment that failed), and which
/// outage alerts went out since the failures started (LiteLLM's `OutageModel`).
#[derive(Default)]
pub struct Outages {
    failures: Mutex<HashMap<String, Outage>>,
}

#[derive(Default)]
struct Outage {
    recent: Vec<(Instant, String)>,
    /// Minor and major alerts sent for these failures.
    sent: [bool; 2],
}

impl Outages {
    /// Count a failure of `deployment` under `key` within `window`; the level newly reached
    /// (0 minor, 1 major) when the failures come from `min_deployments` deployments or more.
    fn count(
        &self,
        key: String,
        deployment: &str,
        window: Duration,
        thresholds: [u32; 2],
        min_deployments: usize,
    ) -> Option<(usize, u32)> {
        let mut map = lock(&self.failures);
        let now = Instant::now();
        let o = map.entry(key).or_default();
        o.recent.retain(|(t, _)| now.duration_since(*t) < window);
        if o.recent.is_empty() {
            o.sent = [false; 2];
        }
        o.recent.push((now, deployment.to_string()));
        let mut deps: Vec<&str> = o.recent.iter().map(|(_, d)| d.as_str()).collect();
        deps.sort_unstable();
        deps.dedup();
        let n = o.recent.len() as u32;
        let reached = (deps.len() >= min_deployments)
            .then(|| (0..2).rev().find(|i| n >= thresholds[*i] && !o.sent[*i]))
            .flatten();
        if let Some(i) = reached {
            o.sent[i] = true;
            if i == 1 {
                o.sent[0] = true;
            }
        }
        if map.len() > 10_000 {
            map.retain(|_, o| {
                o.recent
                    .last()
                    .is_some_and(|(t, _)| now.duration_since(*t) < window)
            });
        }
        reached.map(|i| (i, n))
    }
}

impl Alerts {
    /// A watch for a request on `model` by a key called `key_alias`; `None` when no request alert
    /// is on.
    pub fn watch(self: &Arc<Self>, model: &str, key_alias: Option<&str>) -> Option<Watch> {
        use AlertType::*;
        let wanted = [
            LlmExceptions,
            LlmTooSlow,
            LlmRequestsHanging,
            OutageAlerts,
            RegionOutageAlerts,
        ];
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

    /// `deployment` failed: an outage alert when its failures (or, with `region`, its region's
    /// failures from two or more deployments) reach the minor or major threshold.
    fn outage(&self, deployment: &str, model: &str, api_base: &str, region: Option<&str>) {
        let w = &self.windows;
        let thresholds = [w.minor_outage, w.major_outage];
        let mut reached = Vec::with_capacity(2);
        if self.wants(AlertType::OutageAlerts) {
            let key = deployment.to_string();
            if let Some(r) = self.outages.count(key, deployment, w.outage, thresholds, 1) {
                reached.push((
                    AlertType::OutageAlerts,
                    r,
                    w.outage,
                    format!("deployment `{deployment}`"),
                ));
            }
        }
        if let (Some(region), true) = (region, self.wants(AlertType::RegionOutageAlerts)) {
            let key = format!("region:{region}");
            let window = w.region_outage;
            if let Some(r) = self.outages.count(key, deployment, window, thresholds, 2) {
                reached.push((
                    AlertType::RegionOutageAlerts,
                    r,
                    window,
                    format!("region `{region}`"),
                ));
            }
        }
        for (kind, (level, count), window, subject) in reached {
            let (level, what) = if level == 1 {
                (Level::High, "Major")
            } else {
                (Level::Medium, "Minor")
            };
            let message = format!(
                "{what} Service Outage: {count} errors within {}s in {subject}. Model group `{model}`, last deployment `{deployment}`, api base `{}`",
                window.as_secs(),
                scrub(api_base)
            );
            self.send(Alert::new(
                kind,
                level,
                format!("{what}:{subject}"),
                window,
                message.clone(),
                proxy_event(kind.name(), &message),
            ));
        }
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
        {
            hub.outage(dep, model, base, o.region);
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
