//! Live configuration reload: `SIGHUP`, the file watch (`general_settings.watch_config_file`)
//! and `POST /config/reload` read the config file again and put it in force without a
//! restart and without dropping a request.
//!
//! Everything is built from the new file first (its parse and validation, the model table with
//! the database's models, the router policy under the run-time router changes, guardrails,
//! logging callbacks); only when all of it succeeded is each piece swapped in (each an
//! `ArcSwap`: a request in flight keeps what it loaded, the next one sees the new). A file
//! that does not load is rejected whole: the config in force stays, the error is logged and
//! shown on `/health/readiness` and by the route.
//!
//! What is read only at startup (listen address, TLS, database, Redis, master key, JWT, cache,
//! alerting, spend writer, MCP servers, prompts, ...) is listed as `restart_required` when the
//! file changes it; the rest of the new file is in force.

use std::sync::Arc;

use serde_json::Value;

use crate::config::reload::Attempt;
use crate::config::{Config, Loaded};
use crate::state::AppState;
use crate::util::clock::now_secs;

/// Sections (or `section.member`s) put in force by a reload; a `*` member covers the whole
/// section but for the members [`STARTUP_ONLY`] names.
const LIVE: &[&str] = &[
    "model_list",
    "credential_list",
    "router_settings.*",
    "guardrails",
    "search_tools",
    "tianji_settings.*",
    "rag_settings.*",
    "mcp_settings.max_tool_rounds",
    "general_settings.pass_through_endpoints",
    "general_settings.dangerously_allow_mock_testing_request_params",
    "general_settings.agent_access_default_deny",
    "general_settings.agent_allow_private_urls",
    "general_settings.mcp_allow_private_urls",
    "general_settings.skill_max_upload_mb",
    "general_settings.claude_code_marketplace_auth_required",
];

/// Members of live sections read only at startup.
const STARTUP_ONLY: &[&str] = &[
    "router_settings.redis_url",
    "router_settings.redis_host",
    "router_settings.redis_port",
    "router_settings.redis_password",
    "router_settings.provider_budget_config",
    "tianji_settings.cache",
    "tianji_settings.cache_params",
    "tianji_settings.json_logs",
    "tianji_settings.budget_exceeded_status_code",
    "tianji_settings.require_auth_for_metrics_endpoint",
    "tianji_settings.priority_reservation",
    "tianji_settings.priority_reservation_settings",
    "tianji_settings.store_audit_logs",
    "tianji_settings.default_internal_user_params",
    "rag_settings.allowed_url_hosts",
    "rag_settings.url_timeout_seconds",
];

/// Read the config file again and put it in force (one reload at a time).
pub async fn reload(state: &AppState) -> Attempt {
    let _one = state.reloads.running.lock().await;
    let attempt = match &state.reloads.path {
        None => rejected("the gateway was started without a config file".into()),
        Some(path) => match Loaded::from_file(path) {
            Err(e) => rejected(e.to_string()),
            Ok(loaded) => Box::pin(apply(state, loaded)).await,
        },
    };
    match attempt.status {
        "rejected" => tracing::error!(
            error = attempt.error.as_deref().unwrap_or_default(),
            "config reload rejected; the config in force stays"
        ),
        status => tracing::info!(
            status,
            changed = ?attempt.changed,
            restart_required = ?attempt.restart_required,
            "config reloaded"
        ),
    }
    if !attempt.restart_required.is_empty() {
        tracing::warn!(sections = ?attempt.restart_required, "these config changes take effect at the next restart");
    }
    state.reloads.record(&attempt);
    attempt
}

fn rejected(error: String) -> Attempt {
    Attempt {
        at: now_secs(),
        status: "rejected",
        error: Some(error),
        changed: Vec::new(),
        restart_required: Vec::new(),
    }
}

/// Build every piece from `loaded`, then swap them in.
async fn apply(state: &AppState, loaded: Loaded) -> Attempt {
    let old_raw = state.reloads.raw();
    let changes = changed_paths(&old_raw, &loaded.raw);
    let (changed, restart_required): (Vec<String>, Vec<String>) =
        changes.into_iter().partition(|p| live(p));
    if changed.is_empty() {
        state.reloads.set_raw(loaded.raw);
        return Attempt {
            at: now_secs(),
            status: "unchanged",
            error: None,
            changed,
            restart_required,
        };
    }
    let built = match build(state, &loaded.config).await {
        Ok(b) => b,
        Err(e) => return rejected(e),
    };
    // the router first: the only piece that can still refuse (run-time router changes that
    // no longer apply over the new file's settings)
    if let Err(e) = state.router.rebase(built.policy).await {
        return rejected(format!(
            "the run-time router settings (PATCH /router/settings) do not apply over the new router_settings: {e}"
        ));
    }
    state.models.store(Arc::new(built.models));
    state.guardrails.store(Arc::new(built.guardrails));
    if changed.iter().any(|p| p.starts_with("tianji_settings")) {
        let callbacks = crate::callbacks::Callbacks::start(
            &loaded.config.tianji_settings,
            &loaded.env,
            state.client.clone(),
            state.metrics.clone(),
        );
        let old = state.callbacks.swap(callbacks);
        // the old sinks send what they hold, off the reload's path
        tokio::spawn(async move { old.shutdown().await });
    }
    state.config.store(Arc::new(loaded.config));
    state.reloads.set_raw(loaded.raw);
    Attempt {
        at: now_secs(),
        status: "reloaded",
        error: None,
        changed,
        restart_required,
    }
}

/// What a reload swaps in.
struct Built {
    models: crate::router::ModelTable,
    policy: crate::router::policy::Policy,
    guardrails: crate::guardrails::Guardrails,
}

async fn build(state: &AppState, config: &Config) -> Result<Built, String> {
    let guardrails = crate::guardrails::Guardrails::build(config).map_err(|e| e.to_string())?;
    let policy = crate::router::policy::Policy::from_settings(&config.router_settings)
        .map_err(|e| format!("router_settings: {e}"))?;
    let models = state.models_for(config).await.map_err(|e| e.to_string())?;
    Ok(Built {
        models,
        policy,
        guardrails,
    })
}

/// Whether a change at `path` is put in force by a reload.
fn live(path: &str) -> bool {
    if STARTUP_ONLY.contains(&path) {
        return false;
    }
    LIVE.iter().any(|l| match l.strip_suffix(".*") {
        Some(section) => {
            path == section
                || path
                    .strip_prefix(section)
                    .is_some_and(|r| r.starts_with('.'))
        }
        None => *l == path,
    })
}

/// The sections that differ between two documents: top-level keys, and for the settings
/// sections their members (`general_settings.port`).
fn changed_paths(old: &Value, new: &Value) -> Vec<String> {
    const BY_MEMBER: &[&str] = &[
        "general_settings",
        "router_settings",
        "tianji_settings",
        "rag_settings",
        "mcp_settings",
    ];
    let empty = serde_json::Map::new();
    let obj = |v: &Value| v.as_object().cloned().unwrap_or_default();
    let (old, new) = (obj(old), obj(new));
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for k in keys {
        let (a, b) = (old.get(k), new.get(k));
        if a == b {
            continue;
        }
        if BY_MEMBER.contains(&k.as_str()) {
            let a = a.and_then(Value::as_object).unwrap_or(&empty);
            let b = b.and_then(Value::as_object).unwrap_or(&empty);
            let mut members: Vec<&String> = a.keys().chain(b.keys()).collect();
            members.sort();
            members.dedup();
            for m in members {
                if a.get(m) != b.get(m) {
                    out.push(format!("{k}.{m}"));
                }
            }
        } else {
            out.push(k.clone());
        }
    }
    out
}

/// Reload on `SIGHUP` for as long as the process lives.
#[cfg(unix)]
pub fn on_sighup(state: std::sync::Weak<AppState>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP: config reloads only through POST /config/reload");
            return;
        }
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let Some(state) = state.upgrade() else {
                return;
            };
            tracing::info!("SIGHUP: reloading the config file");
            reload(&state).await;
        }
    });
}

/// How often the file watch looks at the config file.
pub const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Reload whenever the config file's content changes (`general_settings.watch_config_file`):
/// its bytes are compared every [`WATCH_EVERY`], so an editor's rename-over and a
/// ConfigMap's symlink swap are seen as well as a write in place; a file caught half written
/// is rejected and read again at the next change.
pub fn watch(state: std::sync::Weak<AppState>) {
    use sha2::{Digest, Sha256};
    let Some(path) = state.upgrade().and_then(|s| s.reloads.path.clone()) else {
        return;
    };
    let digest = |p: &std::path::Path| std::fs::read(p).ok().map(|b| Sha256::digest(&b));
    tokio::spawn(async move {
        let mut seen = digest(&path);
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(state) = state.upgrade() else {
                return;
            };
            let now = digest(&path);
            if now.is_some() && now != seen {
                seen = now;
                tracing::info!(path = %path.display(), "the config file changed: reloading");
                reload(&state).await;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_are_live_or_need_a_restart() {
        let old = json!({"model_list": [1], "general_settings": {"port": 1, "pass_through_endpoints": []},
            "router_settings": {"num_retries": 1, "redis_url": "a"}, "mcp_servers": {}});
        let new = json!({"model_list": [2], "general_settings": {"port": 2, "pass_through_endpoints": [1]},
            "router_settings": {"num_retries": 2, "redis_url": "b"}, "guardrails": []});
        let paths = changed_paths(&old, &new);
        assert_eq!(
            paths,
            vec![
                "general_settings.pass_through_endpoints",
                "general_settings.port",
                "guardrails",
                "mcp_servers",
                "model_list",
                "router_settings.num_retries",
                "router_settings.redis_url",
            ]
        );
        let (l, r): (Vec<_>, Vec<_>) = paths.iter().partition(|p| live(p));
        assert_eq!(
            l,
            vec![
                "general_settings.pass_through_endpoints",
                "guardrails",
                "model_list",
                "router_settings.num_retries"
            ]
        );
        assert_eq!(
            r,
            vec![
                "general_settings.port",
                "mcp_servers",
                "router_settings.redis_url"
            ]
        );
        assert!(changed_paths(&old, &old).is_empty());
    }
}
