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

pub fn readiness(_state: &AppState) -> Response<Body> {
    let body = json!({
        "status": "healthy",
        "db": "Not connected",
        "cache": null,
        "tianji_version": env!("CARGO_PKG_VERSION"),
    });
    json_response(StatusCode::OK, Bytes::from(body.to_string()))
}
