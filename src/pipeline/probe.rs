//! Health-check calls: a one-token chat completion (or a one-word embedding, for deployments
//! whose `model_info.mode` is `embedding`) sent to one deployment through the usual attempt
//! path (translation included), with no spend row; the outcome feeds the router like any call.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::RequestCtx;
use super::call::{self, Attempt};
use super::parse::{Expect, parse};
use crate::auth::Principal;
use crate::error::GatewayError;
use crate::router::Deployment;
use crate::state::AppState;

/// What a health check found.
#[derive(Debug)]
pub struct Probe {
    pub healthy: bool,
    pub error: Option<String>,
    pub elapsed: Duration,
}

/// The modes a health check can call (`model_info.mode`; none means chat).
pub fn checkable(dep: &Deployment) -> Option<Expect> {
    match dep.model_info.get("mode").and_then(|v| v.as_str()) {
        None | Some("chat" | "completion" | "responses") => Some(Expect::Chat),
        Some("embedding") => Some(Expect::Embedding),
        Some(_) => None,
    }
}

/// Check `dep` (at most `timeout`).
pub async fn probe(state: &AppState, dep: &Arc<Deployment>, timeout: Duration) -> Probe {
    let t0 = Instant::now();
    let result = tokio::time::timeout(timeout, call(state, dep)).await;
    let elapsed = t0.elapsed();
    let error = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!(
            "health check timed out after {:.1}s",
            timeout.as_secs_f64()
        )),
    };
    Probe {
        healthy: error.is_none(),
        error,
        elapsed,
    }
}

async fn call(state: &AppState, dep: &Arc<Deployment>) -> Result<(), GatewayError> {
    let expect = checkable(dep).unwrap_or(Expect::Chat);
    let model = serde_json::Value::String(dep.model_name.clone());
    let body = match expect {
        Expect::Embedding => serde_json::json!({"model": model, "input": "ping"}),
        _ => serde_json::json!({"model": model, "max_tokens": 1,
            "messages": [{"role": "user", "content": "ping"}]}),
    };
    let parsed = parse(Bytes::from(body.to_string()), expect)?;
    let mut ctx = RequestCtx::new("health_check");
    let policy = state.router.policy();
    let t0 = Instant::now();
    let attempt = Attempt {
        parsed,
        expect,
        model: &dep.model_name,
        principal: &Principal::Master,
        headers: &http::HeaderMap::new(),
        upload: None,
    };
    let result = call::attempt(state, dep, attempt, &mut ctx).await;
    let class = result.as_ref().err().and_then(super::attempts::class_of);
    let group = state
        .models
        .load()
        .resolve(&dep.model_name)
        .map_or(1, |r| r.group.len());
    let _cooled = (state.router).report(&policy, dep, group, class, t0.elapsed());
    let resp = result?;
    // read the answer through, so a broken body counts as a failure
    use http_body_util::BodyExt;
    resp.into_body()
        .collect()
        .await
        .map_err(|e| GatewayError::Internal(format!("health check answer: {e}")))?;
    Ok(())
}
