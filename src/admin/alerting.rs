//! `GET /health/services?service=slack|webhook|email`: a test alert through the configured
//! alert channels (LiteLLM's service health check).

use http::Response;
use serde_json::json;

use super::routes::Live;
use super::{AdminError, ok};
use crate::body::Body;

pub async fn test_alert(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let service = live.param("service").unwrap_or_default();
    if !matches!(service.as_str(), "slack" | "webhook" | "email") {
        return Err(AdminError::invalid(
            "service",
            "must be one of: slack, webhook, email",
        ));
    }
    if !live.state.alerts.test() {
        return Err(AdminError::invalid(
            "service",
            format!("alerting is off: add \"{service}\" to general_settings.alerting"),
        ));
    }
    Ok(ok(&json!({
        "status": "success",
        "message": format!("Mock {service} alert sent, verify it was received"),
    })))
}
