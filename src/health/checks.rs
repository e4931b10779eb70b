//! Deployment health checks: `GET /health` checks every deployment (or those of `?model=`)
//! at once, concurrently; with `background_health_checks` the scheduler (`crate::jobs`) has one
//! instance do it every `health_check_interval` seconds and `GET /health` on every instance
//! answers with the latest results. Every
//! result is a `TianjiLLM_HealthCheckTable` row (with a database), read by `GET
//! /health/history`. Provider keys never appear in the results, nor credentials of an
//! `api_base` (userinfo, secret query values): URLs are redacted before they are shown or stored,
//! and again when stored rows are read (rows written by older versions).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::pipeline::probe::{checkable, probe};
use crate::router::Deployment;
use crate::state::AppState;
use crate::store::Query;

/// Longest a health check call may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Default seconds between background checks.
pub const DEFAULT_INTERVAL_SECS: f64 = 300.0;

/// The deployments to check: all of them, or those of `model`.
fn targets(state: &AppState, model: Option<&str>) -> Vec<Arc<Deployment>> {
    let table = state.models.load_full();
    let mut deps: Vec<Arc<Deployment>> = match model {
        Some(m) => table
            .resolve(m)
            .map(|r| r.group.to_vec())
            .unwrap_or_default(),
        None => table.deployments().cloned().collect(),
    };
    deps.retain(|d| checkable(d).is_some());
    deps.sort_by(|a, b| (&a.model_name, &a.id).cmp(&(&b.model_name, &b.id)));
    deps
}

/// What the results show of a deployment (never its credentials).
fn describe(d: &Deployment) -> Value {
    json!({
        "model_name": d.model_name,
        "model": format!("{}/{}", d.provider.name(), d.upstream_model),
        "model_id": d.id,
        "api_base": d.api_base_shown,
    })
}

/// Check the deployments (all, or those of `model`) now; store and return the results.
pub async fn check(state: &AppState, model: Option<&str>, checked_by: &str) -> Value {
    let deps = targets(state, model);
    let probes = futures_util::future::join_all(deps.iter().map(|d| async move {
        let timeout = d.timeout.min(PROBE_TIMEOUT);
        (d, probe(state, d, timeout).await)
    }))
    .await;
    let mut healthy = Vec::new();
    let mut unhealthy = Vec::new();
    for (d, p) in &probes {
        let mut v = describe(d);
        let ms = p.elapsed.as_secs_f64() * 1000.0;
        v["response_time_ms"] = json!((ms * 1000.0).round() / 1000.0);
        let error = p
            .error
            .as_deref()
            .map(|e| crate::secrets::redact_text(e).into_owned());
        if let Some(e) = &error {
            v["error"] = json!(e);
            unhealthy.push(v);
        } else {
            healthy.push(v);
        }
        if let Some(store) = &state.store {
            let status = if p.healthy { "healthy" } else { "unhealthy" };
            let details = describe(d);
            let r = store
                .query(
                    Query::InsertHealthCheck,
                    &[
                        &d.model_name,
                        &d.id,
                        &status,
                        &error,
                        &ms,
                        &details,
                        &checked_by,
                    ],
                )
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "could not store a health check");
            }
        }
    }
    json!({
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
        "healthy_count": healthy.len(),
        "unhealthy_count": unhealthy.len(),
    })
}

/// `GET /health/history`: stored checks, newest first (`model`, `status`, `limit` (100, at
/// most 1000), `offset`).
pub async fn history(
    state: &AppState,
    query: Option<&str>,
) -> Result<Value, crate::store::StoreError> {
    let Some(store) = &state.store else {
        return Ok(json!({"health_checks": [], "total": 0}));
    };
    let q = |k: &str| crate::util::query::query_param(query, k);
    let model = q("model");
    let status = q("status").or_else(|| q("status_filter"));
    let limit: i64 = q("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let offset: i64 = q("offset").and_then(|v| v.parse().ok()).unwrap_or(0).max(0);
    let rows = store
        .query(Query::ListHealthChecks, &[&model, &status, &limit, &offset])
        .await?;
    let total: i64 = rows.first().map_or(0, |r| r.get(1));
    let checks: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut v: Value = r.get(0);
            crate::secrets::redact_json(&mut v);
            v
        })
        .collect();
    Ok(json!({"health_checks": checks, "total": total, "limit": limit, "offset": offset}))
}
