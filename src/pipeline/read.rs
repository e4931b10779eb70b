//! Stage `read`: authenticate the caller (and its `allowed_routes`) before reading anything,
//! then read the body within `max_request_size_mb` and parse it for its route. A multipart
//! upload is read only as far as its `model` field; the file streams on to the provider later.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, Request};

use super::RequestCtx;
use super::multipart::Upload;
use super::parse::{self, Expect, ParsedRequest};
use super::upload;
use crate::auth::Principal;
use crate::error::GatewayError;
use crate::request_body::RequestBody;
use crate::router::ModelTable;
use crate::state::AppState;

/// An LLM request as read: who sent it, what it asks, and the model table it is served from.
pub struct Call {
    pub principal: Principal,
    pub headers: HeaderMap,
    pub parsed: ParsedRequest,
    /// A multipart upload's form (its file not read yet); boxed: JSON requests do not carry it.
    pub upload: Option<Box<Upload>>,
    /// The route's format.
    pub expect: Expect,
    pub peer: SocketAddr,
    /// The model table as the request found it (one for all its stages).
    pub models: Arc<ModelTable>,
}

/// Read and parse the request.
pub async fn read(
    state: &AppState,
    req: Request<RequestBody>,
    expect: Expect,
    peer: SocketAddr,
    ctx: &mut RequestCtx,
) -> Result<Call, GatewayError> {
    let (principal, parts, parsed, upload) = if expect.is_multipart() {
        // boxed (here and for OCR forms): JSON requests do not carry (or copy) the form's state
        let (principal, parts, up) = Box::pin(upload::read(state, req)).await?;
        let parsed = ParsedRequest::upload(up.model.clone());
        (principal, parts, parsed, Some(Box::new(up)))
    } else if expect == Expect::Ocr {
        let (principal, parts, raw) = match super::ocr::form::is_form(req.headers()) {
            true => Box::pin(super::ocr::form::read(state, req)).await?,
            false => authenticated_body(state, req).await?,
        };
        // not cached: no canonical key of a document
        let parsed = parse::parse_with(raw, expect, false)?;
        super::ocr::document(&parsed.raw)?;
        (principal, parts, parsed, None)
    } else {
        let (principal, parts, raw) = authenticated_body(state, req).await?;
        let parsed = parse::parse_with(raw, expect, state.cache.is_some())?;
        (principal, parts, parsed, None)
    };
    ctx.admin = principal.is_admin();
    if let Some((_, labels)) = ctx.completion.metrics.as_deref_mut() {
        *labels = metric_labels(&principal);
    }
    Ok(Call {
        principal,
        headers: parts.headers,
        parsed,
        upload,
        expect,
        peer,
        models: state.models.load_full(),
    })
}

/// Authenticate the caller (and its `allowed_routes`), then read the body within
/// `max_request_size_mb`.
pub async fn authenticated_body(
    state: &AppState,
    req: Request<RequestBody>,
) -> Result<(Principal, http::request::Parts, bytes::Bytes), GatewayError> {
    let principal = state.auth.caller_of(&req).await?;
    let (parts, body) = req.into_parts();
    let raw = parse::read_declared(&parts.headers, body, state.max_body_bytes).await?;
    Ok((principal, parts, raw))
}

/// The caller's part of the request's metric labels (key hash and alias, team, user).
pub(super) fn metric_labels(p: &Principal) -> crate::metrics::RequestLabels {
    let Principal::Key(k) = p else {
        return Default::default();
    };
    let team = k.team.as_deref();
    crate::metrics::RequestLabels {
        hashed_api_key: k.key.token.clone(),
        api_key_alias: k.key.key_alias.clone().unwrap_or_default(),
        team: k.key.team_id.clone().unwrap_or_default(),
        team_alias: team.and_then(|t| t.team_alias.clone()).unwrap_or_default(),
        user: k.key.user_id.clone().unwrap_or_default(),
        ..Default::default()
    }
}
