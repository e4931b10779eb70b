//! Logging callbacks (`generic_api`, `langfuse`, `datadog`, `s3`, `otel` as OTLP logs): the
//! config's sinks, and the sinks of
//! a key's or team's metadata (`logging` entries, `callback_settings` set through
//! `/team/{team_id}/callback`). At admission a request learns which sinks want it
//! ([`Callbacks::logging`], no I/O); when it ends, its SpendLogs row becomes the one
//! [`event::Event`] every one of them gets ([`Logging::emit`]).

pub mod event;
pub mod otel;
pub mod s3;
pub mod sink;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderName, HeaderValue, Uri};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{KeyRecord, TeamRecord};
use crate::config::callbacks::sink_name;
use crate::config::{Env, TianjiSettings};
use crate::metrics::Metrics;
use crate::observability::otlp::{Settings, Signal, turned_off};
use crate::observability::traces::SpanIds;
use crate::spend::record::SpendRow;
use crate::upstream::HttpClient;
use event::{Event, Privacy};
use sink::{Sink, Target};

/// Which outcomes a sink gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Success,
    Failure,
    Both,
}

impl Mode {
    fn takes(self, ok: bool) -> bool {
        match self {
            Mode::Success => ok,
            Mode::Failure => !ok,
            Mode::Both => true,
        }
    }
    /// LiteLLM's `callback_type`.
    fn parse(s: &str) -> Self {
        match s {
            "success" => Mode::Success,
            "failure" => Mode::Failure,
            _ => Mode::Both,
        }
    }
}

/// A sink and the outcomes it gets.
#[derive(Clone)]
pub struct Route {
    pub sink: Arc<Sink>,
    pub on: Mode,
}

/// Team and key sinks: at most this many kept running.
const DYNAMIC_SINKS: u64 = 1_000;

/// How long shutdown waits for the sinks to send what is queued.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub struct Callbacks {
    global: Vec<Route>,
    privacy: Privacy,
    /// Sinks of keys and teams, by name and settings.
    dynamic: moka::sync::Cache<String, Arc<Sink>>,
    env: Env,
    client: HttpClient,
    metrics: Option<Arc<Metrics>>,
    queue: usize,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Every sink started (to sum their counters).
    all: Mutex<Vec<Arc<sink::Stats>>>,
}

impl Callbacks {
    /// The config's sinks (`callbacks`: both outcomes; `success_callback`, `failure_callback`).
    pub fn start(
        t: &TianjiSettings,
        env: &Env,
        client: HttpClient,
        metrics: Option<Arc<Metrics>>,
    ) -> Arc<Self> {
        let (stop, _) = watch::channel(false);
        let mut hub = Self {
            global: Vec::new(),
            privacy: Privacy {
                no_messages: t.turn_off_message_logging,
                redact_key_info: t.redact_user_api_key_info,
            },
            dynamic: moka::sync::Cache::new(DYNAMIC_SINKS),
            env: env.clone(),
            client,
            metrics,
            queue: t.callback_queue_size.unwrap_or(sink::QUEUE),
            stop,
            tasks: Mutex::new(Vec::new()),
            all: Mutex::new(Vec::new()),
        };
        let mut global: Vec<Route> = Vec::new();
        for (names, on) in [
            (&t.callbacks, Mode::Both),
            (&t.success_callback, Mode::Success),
            (&t.failure_callback, Mode::Failure),
        ] {
            for n in names {
                let Some(name) = sink_name(n) else { continue };
                if let Some(r) = global.iter_mut().find(|r| r.sink.name == name) {
                    if r.on != on {
                        r.on = Mode::Both;
                    }
                    continue;
                }
                // `s3_callback_params` are the global S3 sink's settings
                let vars = match (name, &t.s3_callback_params) {
                    ("s3", Some(params)) => params,
                    _ => &Value::Null,
                };
                match hub.target(name, vars) {
                    Some(target) => global.push(Route {
                        sink: hub.spawn(name, target),
                        on,
                    }),
                    None if name == "otel" && hub.otel_logs_off(vars) => tracing::info!(
                        "otel: logs not exported (OTEL_LOGS_EXPORTER=none), traces are"
                    ),
                    None => tracing::error!(
                        callback = name,
                        "logging callback left out: its settings are missing or invalid"
                    ),
                }
            }
        }
        hub.global = global;
        Arc::new(hub)
    }

    fn spawn(&self, name: &'static str, target: Target) -> Arc<Sink> {
        let (s, task) = Sink::start(
            name,
            target,
            self.client.clone(),
            self.metrics.clone(),
            self.queue,
            self.stop.subscribe(),
        );
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        lock(&self.all).push(s.stats.clone());
        Arc::new(s)
    }

    /// The sinks that want a request of this key and team; `None` when none does.
    pub fn logging(
        self: &Arc<Self>,
        key: Option<&KeyRecord>,
        team: Option<&TeamRecord>,
    ) -> Option<Logging> {
        if team.is_some_and(|t| disabled(&t.metadata)) {
            return None;
        }
        let mut extra = Vec::new();
        if let Some(k) = key {
            self.entries(&k.metadata, &mut extra);
        }
        if let Some(t) = team {
            self.entries(&t.metadata, &mut extra);
        }
        if self.global.is_empty() && extra.is_empty() {
            return None;
        }
        Some(Logging {
            hub: self.clone(),
            extra,
        })
    }

    /// The sinks of a key's or team's metadata: `logging: [{callback_name, callback_type,
    /// callback_vars}]` and `callback_settings: {success_callback, failure_callback,
    /// callback_vars}`.
    fn entries(&self, metadata: &Value, out: &mut Vec<Route>) {
        if let Some(list) = metadata.get("logging").and_then(Value::as_array) {
            for e in list {
                let Some(name) = e.get("callback_name").and_then(Value::as_str) else {
                    continue;
                };
                let on = Mode::parse(e.get("callback_type").and_then(Value::as_str).unwrap_or(""));
                self.add(
                    name,
                    on,
                    e.get("callback_vars").unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        if let Some(cs) = metadata.get("callback_settings") {
            let vars = cs.get("callback_vars").unwrap_or(&Value::Null);
            for (field, on) in [
                ("success_callback", Mode::Success),
                ("failure_callback", Mode::Failure),
            ] {
                for n in cs
                    .get(field)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(n) = n.as_str() {
                        self.add(n, on, vars, out);
                    }
                }
            }
        }
    }

    fn add(&self, name: &str, on: Mode, vars: &Value, out: &mut Vec<Route>) {
        let Some(name) = sink_name(name) else { return };
        let id = format!("{name}|{vars}");
        let sink = match self.dynamic.get(&id) {
            Some(s) => s,
            None => {
                let Some(target) = self.target(name, vars) else {
                    return;
                };
                let s = self.spawn(name, target);
                self.dynamic.insert(id, s.clone());
                s
            }
        };
        match out.iter_mut().find(|r| Arc::ptr_eq(&r.sink, &sink)) {
            Some(r) if r.on != on => r.on = Mode::Both,
            Some(_) => {}
            None => out.push(Route { sink, on }),
        }
    }

    /// A setting from `vars` (lower-case name, `os.environ/X` resolved), else the environment
    /// (upper-case name).
    fn var(&self, vars: &Value, name: &str) -> Option<String> {
        let v = match vars.get(name).and_then(Value::as_str) {
            Some(v) => match v.strip_prefix("os.environ/") {
                Some(env) => self.env.get(env),
                None => Some(v.to_string()),
            },
            None => self.env.get(&name.to_ascii_uppercase()),
        };
        v.filter(|v| !v.is_empty())
    }

    fn target(&self, name: &str, vars: &Value) -> Option<Target> {
        let var = |n: &str| self.var(vars, n);
        match name {
            "generic_api" => Some(Target::Generic {
                url: var("generic_logger_endpoint")?.parse().ok()?,
                headers: headers(&var("generic_logger_headers").unwrap_or_default()),
            }),
            "langfuse" => {
                use base64::Engine;
                let public = var("langfuse_public_key")?;
                let secret = var("langfuse_secret_key")?;
                let host =
                    var("langfuse_host").unwrap_or_else(|| "https://cloud.langfuse.com".into());
                let basic =
                    base64::engine::general_purpose::STANDARD.encode(format!("{public}:{secret}"));
                let mut auth = HeaderValue::from_str(&format!("Basic {basic}")).ok()?;
                auth.set_sensitive(true);
                Some(Target::Langfuse {
                    url: format!("{}/api/public/ingestion", host.trim_end_matches('/'))
                        .parse()
                        .ok()?,
                    auth,
                })
            }
            "datadog" => {
                let base = match var("dd_base_url") {
                    Some(b) => b.trim_end_matches('/').to_string(),
                    None => format!("https://http-intake.logs.{}", var("dd_site")?),
                };
                let mut api_key = HeaderValue::from_str(&var("dd_api_key")?).ok()?;
                api_key.set_sensitive(true);
                let env = var("dd_env").unwrap_or_else(|| "unknown".into());
                let service = var("dd_service").unwrap_or_else(|| "tianji-server".into());
                Some(Target::Datadog {
                    url: format!("{base}/api/v2/logs").parse::<Uri>().ok()?,
                    api_key,
                    source: var("dd_source").unwrap_or_else(|| "tianji".into()),
                    tags: format!("env:{env},service:{service}"),
                    service,
                })
            }
            "s3" => s3::Bucket::from_vars(var).map(|b| Target::S3(Arc::new(b))),
            "otel" => {
                if self.otel_logs_off(vars) {
                    return None;
                }
                let settings =
                    Settings::from_env(Signal::Logs, |k| self.var(vars, &k.to_ascii_lowercase()))
                        .map_err(|e| tracing::error!(error = %e, "otel logs"))
                        .ok()?;
                let client = crate::upstream::OtlpClient {
                    client: self.client.clone(),
                    timeout: settings.timeout,
                };
                crate::observability::logs::OtlpLogs::start(&settings, client)
                    .map_err(|e| tracing::error!(error = %e, "otel logs"))
                    .ok()
                    .map(|l| Target::Otel(Arc::new(l)))
            }
            _ => None,
        }
    }

    /// `OTEL_LOGS_EXPORTER=none`: `otel` exports traces only.
    fn otel_logs_off(&self, vars: &Value) -> bool {
        turned_off(self.var(vars, "otel_logs_exporter"))
    }

    /// Totals over every sink: (sent, dropped, failed).
    pub fn totals(&self) -> (u64, u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        lock(&self.all).iter().fold((0, 0, 0), |(s, d, f), st| {
            (
                s + st.sent.load(Relaxed),
                d + st.dropped.load(Relaxed),
                f + st.failed.load(Relaxed),
            )
        })
    }

    /// Send what is queued and stop the sinks (after the server has drained).
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *lock(&self.tasks));
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
            tracing::warn!("logging callbacks: events still queued at shutdown were not sent");
        }
    }
}

/// Whether a team turned every callback off (`/team/{team_id}/disable_logging`: both callback
/// lists present and empty).
fn disabled(metadata: &Value) -> bool {
    let Some(cs) = metadata.get("callback_settings") else {
        return false;
    };
    let empty = |k: &str| {
        cs.get(k)
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
    };
    empty("success_callback") && empty("failure_callback")
}

/// `GENERIC_LOGGER_HEADERS`: `Name=value,Other=value`.
fn headers(s: &str) -> Vec<(HeaderName, HeaderValue)> {
    s.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            let name = HeaderName::from_bytes(k.trim().as_bytes()).ok()?;
            let mut value = HeaderValue::from_str(v.trim()).ok()?;
            value.set_sensitive(true);
            Some((name, value))
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The sinks one request goes to.
pub struct Logging {
    hub: Arc<Callbacks>,
    extra: Vec<Route>,
}

impl Logging {
    /// Whether the sinks log request and response bodies.
    pub fn wants_bodies(&self) -> bool {
        !self.hub.privacy.no_messages
    }

    /// Hand the finished request's row (and its span's ids, when traced) to every sink that
    /// takes its outcome.
    pub fn emit(self, row: &SpendRow, stream: bool, trace: Option<SpanIds>) {
        let ok = row.status == "success";
        let mut routes = self
            .hub
            .global
            .iter()
            .chain(self.extra.iter())
            .filter(|r| r.on.takes(ok))
            .peekable();
        if routes.peek().is_none() {
            return;
        }
        let event = Arc::new(Event::new(row.clone(), stream, self.hub.privacy, trace));
        for r in routes {
            r.sink.offer(&event);
        }
    }
}
