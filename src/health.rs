//! `/health/liveliness` (`/health/liveness`) and `/health/readiness`: public, no auth.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::json;

use crate::body::Body;
use crate::error::json_response;
use crate::state::AppState;

pub fn liveliness() -> Response<Body> {
    json_response(StatusCode::OK, Bytes::from_static(b"\"I'm alive!\""))
}

/// `db`: "connected", "Not connected" (none configured) or "unreachable" (then 503).
pub async fn readiness(state: &AppState) -> Response<Body> {
    let (db, ok) = match &state.store {
        None => ("Not connected", true),
        Some(s) if s.ping().await => ("connected", true),
        Some(_) => ("unreachable", false),
    };
    let body = json!({
        "status": if ok { "healthy" } else { "unhealthy" },
        "db": db,
        "cache": null,
        "rate_limits": {
            "mode": state.limits.mode(),
            "redis_fallbacks": state.limits.redis_fallbacks.load(std::sync::atomic::Ordering::Relaxed),
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
