//! `GET /metrics`: the Prometheus families in OpenMetrics text, with the deployments' states
//! read from the router's live counters now. 404 unless `callbacks: ["prometheus"]`; admins
//! (and admin viewers) only unless `require_auth_for_metrics_endpoint: false`.

use http::{HeaderValue, Request, Response, StatusCode, header};

use crate::body::Body;
use crate::error::GatewayError;
use crate::metrics::{DeploymentLabels, DeploymentState};
use crate::request_body::RequestBody;
use crate::router::Deployment;
use crate::state::AppState;
use crate::util::clock::now_ms;

pub async fn scrape(
    state: &AppState,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let Some(metrics) = &state.metrics else {
        return Err(GatewayError::NotFound(req.uri().path().to_string()));
    };
    if state.metrics_auth {
        let principal = state.auth.caller_of(&req).await?;
        if !principal.can_read_all() {
            return Err(crate::admin::AdminError::Forbidden(format!(
                "Only proxy admins can call /metrics. Your role={}",
                principal.role().name()
            ))
            .into());
        }
    }
    let models = state.models.load();
    let now = now_ms();
    let text = metrics
        .encode(
            models
                .deployments()
                .map(|d| (labels(d), deployment_state(d, now))),
        )
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    let mut resp = Response::new(Body::full(text));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    Ok(resp)
}

fn labels(d: &Deployment) -> DeploymentLabels {
    DeploymentLabels {
        litellm_model_name: d.upstream_model.clone(),
        model_id: d.id.clone(),
        api_base: d.api_base_shown.clone(),
        api_provider: d.provider.name().to_string(),
    }
}

/// LiteLLM's states: cooling down 2, failures this minute 1, else 0.
fn deployment_state(d: &Deployment, now: u64) -> DeploymentState {
    if d.stats.cooling(now) {
        DeploymentState::Cooldown
    } else if d.stats.fails_this_minute() > 0 {
        DeploymentState::Partial
    } else {
        DeploymentState::Healthy
    }
}
