//! The Responses API beyond create (which runs the LLM pipeline): get, delete, cancel and
//! input items of a response by id, sent to the deployment that holds it (the sealed id says
//! which, and whose it is: [`crate::responses::IdSecurity`]).

use bytes::Bytes;
use http::{Method, Request, Response};

use crate::body::Body;
use crate::error::GatewayError;
use crate::request_body::RequestBody;
use crate::responses::ResponsesError;
use crate::state::AppState;
use crate::upstream;

/// What is asked of a response by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Get,
    Delete,
    Cancel,
    InputItems,
}

/// `GET|DELETE /v1/responses/{id}`, `POST /v1/responses/{id}/cancel`,
/// `GET /v1/responses/{id}/input_items`.
pub async fn by_id(
    state: &AppState,
    action: Action,
    id: &str,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let principal = state.auth.caller_of(&req).await?;
    let (raw, model_id) = state.response_ids.check(id, &principal)?;
    let table = state.models.load_full();
    let hint = req
        .headers()
        .get("x-tianji-model")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| crate::util::query::query_param(req.uri().query(), "model"));
    let dep = match (&model_id, hint) {
        (Some(m), _) => table.deployments().find(|d| &d.id == m).cloned(),
        (None, Some(model)) => table.resolve(&model).ok().map(|r| r.pick().clone()),
        (None, None) => None,
    }
    .ok_or_else(|| ResponsesError::NoDeployment(id.to_string()))?;
    let (method, suffix) = match action {
        Action::Get => (Method::GET, format!("/responses/{raw}")),
        Action::Delete => (Method::DELETE, format!("/responses/{raw}")),
        Action::Cancel => (Method::POST, format!("/responses/{raw}/cancel")),
        Action::InputItems => (Method::GET, format!("/responses/{raw}/input_items")),
    };
    let query = req
        .uri()
        .query()
        .map(|q| {
            q.split('&')
                .filter(|p| !p.starts_with("model="))
                .collect::<Vec<_>>()
                .join("&")
        })
        .filter(|q| !q.is_empty());
    let uri = dep
        .uri(&match query {
            Some(q) => format!("{suffix}?{q}"),
            None => suffix,
        })
        .ok_or_else(|| ResponsesError::Unsupported(dep.id.clone()))?;
    let body = if method == Method::POST {
        vec![Bytes::from_static(b"{}")]
    } else {
        Vec::new()
    };
    let resp = upstream::send_with(&state.client, &dep, method, &uri, &body, false, &[]).await?;
    let (head, bytes) = upstream::ok_body(resp).await?;
    let bytes = match action {
        Action::InputItems => bytes,
        _ => state
            .response_ids
            .seal_body(&bytes, &principal, &dep.id)
            .unwrap_or(bytes),
    };
    Ok(crate::error::json_response(head.status, bytes))
}
