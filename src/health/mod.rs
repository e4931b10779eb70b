//! `/health/liveliness` (`/health/liveness`) and `/health/readiness`: public, no auth.
//! `/health` and `/health/history`: deployment health checks, for admins (checks.rs).
//! `/metrics`: the Prometheus scrape (metrics.rs).

pub mod checks;
pub mod metrics;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::json;

use crate::body::Body;
use crate::error::json_response;
use crate::state::AppState;

pub fn liveliness() -> Response<Body> {
    json_response(StatusCode::OK, Bytes::from_static(b"\"I'm alive!\""))
}

/// `GET /health` (`now`) and `GET /health/history`, for callers who may read everything.
pub async fn deployments(
    state: &AppState,
    now: bool,
    req: http::Request<crate::request_body::RequestBody>,
) -> Result<Response<Body>, crate::error::GatewayError> {
    let principal = state.auth.caller_of(&req).await?;
    if !principal.can_read_all() {
        return Err(crate::admin::AdminError::Forbidden(format!(
            "Only proxy admins can call {}. Your role={}",
            req.uri().path(),
            principal.role().name()
        ))
        .into());
    }
    let query = req.uri().query();
    let body = if now {
        let model = crate::util::query::query_param(query, "model");
        match (model, state.health.load_full().as_ref()) {
            (None, Some(latest)) => (**latest).clone(),
            (model, _) => checks::check(state, model.as_deref(), "health_endpoint").await,
        }
    } else {
        checks::history(state, query)
            .await
            .map_err(crate::admin::AdminError::from)?
    };
    Ok(json_response(StatusCode::OK, Bytes::from(body.to_string())))
}

/// `db`: "connected", "Not connected" (none configured) or "unreachable" (then 503).
pub async fn readiness(state: &AppState) -> Response<Body> {
    // read before the checks below, which may take a moment
    let rate_limits = json!({
        "mode": state.limits.mode(),
        "redis_fallbacks": state.limits.redis_fallbacks.load(std::sync::atomic::Ordering::Relaxed),
    });
    let (db, ok) = match &state.store {
        None => ("Not connected", true),
        Some(s) if s.ping().await => ("connected", true),
        Some(_) => ("unreachable", false),
    };
    let redis = match &state.bus {
        None => "Not connected",
        Some(bus) if bus.ping(std::time::Duration::from_millis(500)).await => "connected",
        Some(_) => "unreachable",
    };
    let body = json!({
        "status": if ok { "healthy" } else { "unhealthy" },
        "db": db,
        "redis": redis,
        "cache": state.cache.as_ref().map(|c| c.kind.name()),
        "rate_limits": rate_limits,
        "config": {
            "reloads_applied": state.reloads.applied(),
            "last_reload": state.reloads.last(),
        },
        "tianji_version": env!("CARGO_PKG_VERSION"),
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, Bytes::from(body.to_string()))
}
