//! Skills held by an Anthropic account: the Skills API of the deployment's account (its base
//! URL and key), with the skills beta header.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use serde_json::Value;

use super::SkillError;
use super::form::{self, Form};
use crate::error::GatewayError;
use crate::router::Deployment;
use crate::router::wire::Wire;
use crate::skills::archive::Skill;
use crate::state::AppState;
use crate::upstream::{self, UpstreamError};

/// The beta the Skills API sits behind.
const BETA: &str = "skills-2025-10-02";

/// `{account}/v1{path}` for an Anthropic deployment.
fn url(dep: &Deployment, path: &str) -> Result<Uri, SkillError> {
    let Wire::Anthropic { messages } = &dep.wire else {
        return Err(SkillError::NotAnthropic(dep.model_name.clone()));
    };
    let m = messages.to_string();
    let base = m.strip_suffix("/messages").unwrap_or(&m);
    format!("{base}{path}")
        .parse()
        .map_err(|_| SkillError::NotAnthropic(dep.model_name.clone()))
}

fn beta() -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_static("anthropic-beta"),
        HeaderValue::from_static(BETA),
    )
}

/// Send `body` (a form) or nothing to `path`; the answer as JSON (`Value::Null` when the
/// account answers 404 to a DELETE: already gone).
async fn call(
    state: &AppState,
    dep: &Deployment,
    method: Method,
    path: &str,
    form: Option<(String, Bytes)>,
) -> Result<Value, GatewayError> {
    let uri = url(dep, path)?;
    let mut extra = vec![beta()];
    let mut body = Vec::new();
    if let Some((ct, b)) = form {
        let ct = HeaderValue::from_str(&ct)
            .map_err(|_| SkillError::BadForm("bad content type".into()))?;
        extra.push((header::CONTENT_TYPE, ct));
        body.push(b);
    }
    let delete = method == Method::DELETE;
    let resp = upstream::send_with(&state.client, dep, method, &uri, &body, false, &extra).await?;
    if delete && resp.status() == StatusCode::NOT_FOUND {
        return Ok(Value::Null);
    }
    let (_, bytes) = upstream::ok_body(resp).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| GatewayError::Upstream(UpstreamError::Body(e.to_string())))
}

/// Create the skill on the account; its answer (the account's skill object).
pub async fn create(
    state: &AppState,
    dep: &Deployment,
    f: &Form,
    skill: &Skill,
) -> Result<Value, GatewayError> {
    let title = f.title.as_deref().unwrap_or(&skill.name);
    let body = form::encode(Some(title), &f.files);
    call(state, dep, Method::POST, "/skills?beta=true", Some(body)).await
}

/// A new version on the account; its answer.
pub async fn create_version(
    state: &AppState,
    dep: &Deployment,
    id: &str,
    f: &Form,
    _skill: &Skill,
) -> Result<Value, GatewayError> {
    let body = form::encode(None, &f.files);
    let path = format!("/skills/{id}/versions?beta=true");
    call(state, dep, Method::POST, &path, Some(body)).await
}

pub async fn delete(state: &AppState, dep: &Deployment, id: &str) -> Result<(), GatewayError> {
    let path = format!("/skills/{id}?beta=true");
    call(state, dep, Method::DELETE, &path, None)
        .await
        .map(drop)
}

pub async fn delete_version(
    state: &AppState,
    dep: &Deployment,
    id: &str,
    version: &str,
) -> Result<(), GatewayError> {
    let path = format!("/skills/{id}/versions/{version}?beta=true");
    call(state, dep, Method::DELETE, &path, None)
        .await
        .map(drop)
}
