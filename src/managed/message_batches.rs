//! Anthropic message batches as gateway routes (`/v1/messages/batches`, the shapes of
//! Anthropic's Message Batches API):
//!
//! - `POST` creates a batch on an Anthropic deployment of the model its requests name (one model
//!   group a batch; each request's `model` becomes the deployment's), after the batch rate
//!   limiter reserved all its requests and estimated tokens at once (as `crate::managed::batches`
//!   does for OpenAI batches);
//! - `GET /{id}`, `POST /{id}/cancel`, `DELETE /{id}` go back to the deployment holding the
//!   batch; `GET /{id}/results` streams its JSONL results ([`super::batch_results`]) and books
//!   their usage once, at the batch price;
//! - `GET` lists the caller's own batches (from `"TianjiLLM_MessageBatchTable"`, newest first;
//!   every owner's for an admin; an admin naming a model with `?model=` or `x-tianji-model`
//!   lists that deployment's account instead).
//!
//! Ids are sealed to the owner and the deployment ([`super::ids`], `msgbatch_...`), so only the
//! owner or an admin reads, cancels or deletes a batch; a batch's `results_url` points back at
//! the gateway (relative, as the `anthropic` SDK resolves it against its base URL).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use serde_json::{Value, json};

use super::At;
use super::ids::{self, Kind};
use crate::auth::Principal;
use crate::body::Body;
use crate::error::GatewayError;
use crate::pipeline::parse::RequestError;
use crate::request_body::RequestBody;
use crate::responses::ids::Owned;
use crate::router::Deployment;
use crate::state::AppState;
use crate::store::{Query, StoreError};
use crate::upstream::{self, UpstreamError};

/// Anthropic's most requests in one batch.
const MAX_REQUESTS: usize = 100_000;
/// A listing's page size: default and most.
const PAGE: i64 = 20;
const MAX_PAGE: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum MessageBatchError {
    #[error(
        "`requests` must be a non-empty list (at most {MAX_REQUESTS}) of {{custom_id, params}} objects"
    )]
    NoRequests,
    #[error("requests[{0}]: {1}")]
    BadRequest(usize, &'static str),
    #[error(
        "The requests of one batch must name one model: requests[{0}] names `{1}`, requests[0] `{2}`"
    )]
    Models(usize, String, String),
    #[error("Model {0} has no Anthropic deployment; message batches are served by Anthropic")]
    NotAnthropic(String),
    #[error(
        "Listing message batches needs the database (the gateway's record of who created each one); an admin may list an account with ?model="
    )]
    NoStore,
    #[error("Message batch records are unavailable: {0}")]
    Store(#[from] StoreError),
}

crate::error::feature_error!(MessageBatchError, "message_batch");

impl MessageBatchError {
    pub fn status(&self) -> StatusCode {
        match self {
            MessageBatchError::NoStore => StatusCode::NOT_IMPLEMENTED,
            MessageBatchError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Serve a `/v1/messages/batches` path.
pub async fn handle(
    state: &AppState,
    at: At,
    id: Option<String>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    match (at, id) {
        (At::Collection, _) if req.method() == Method::POST => create(state, req).await,
        (At::Collection, _) => list(state, req).await,
        (at, Some(id)) => by_id(state, at, &id, req).await,
        (_, None) => Err(GatewayError::NotFound(req.uri().path().to_string())),
    }
}

/// The model group every request of the batch `v` names.
pub fn batch_model(v: &Value) -> Result<String, MessageBatchError> {
    let requests = v
        .get("requests")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty() && r.len() <= MAX_REQUESTS)
        .ok_or(MessageBatchError::NoRequests)?;
    let mut model: Option<&str> = None;
    for (i, r) in requests.iter().enumerate() {
        let bad = |why| MessageBatchError::BadRequest(i, why);
        r.get("custom_id")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| bad("`custom_id` must be a non-empty string"))?;
        let params = r
            .get("params")
            .filter(|p| p.is_object())
            .ok_or_else(|| bad("`params` must be a Messages request object"))?;
        let m = params
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| bad("`params.model` must be a non-empty string"))?;
        match model {
            None => model = Some(m),
            Some(first) if first != m => {
                return Err(MessageBatchError::Models(i, m.into(), first.into()));
            }
            Some(_) => {}
        }
    }
    Ok(model.unwrap_or_default().to_string())
}

/// Point every request at `upstream_model`; the batch's requests and estimated tokens (body
/// bytes / 4 plus `max_tokens`, as for OpenAI batches).
fn rewrite_and_count(v: &mut Value, upstream_model: &str) -> (u64, u64) {
    let mut tokens = 0u64;
    let mut n = 0u64;
    let requests = v.get_mut("requests").and_then(Value::as_array_mut);
    for r in requests.into_iter().flatten() {
        if let Some(p) = r.get_mut("params").and_then(Value::as_object_mut) {
            p.insert("model".into(), Value::String(upstream_model.to_string()));
            let max = p.get("max_tokens").and_then(Value::as_u64).unwrap_or(0);
            let bytes = serde_json::to_vec(p).map_or(0, |b| b.len() as u64);
            tokens = tokens.saturating_add(bytes / 4).saturating_add(max);
            n += 1;
        }
    }
    (n, tokens)
}

/// An Anthropic deployment of `model` the caller may use (the group's first Anthropic one).
async fn anthropic_deployment(
    state: &AppState,
    principal: &Principal,
    model: &str,
) -> Result<Arc<Deployment>, GatewayError> {
    let picked = super::pick(state, principal, model).await?;
    if picked.anthropic_messages().is_some() {
        return Ok(picked);
    }
    let table = state.models.load_full();
    let group = table.resolve(model)?.group;
    group
        .iter()
        .find(|d| d.anthropic_messages().is_some())
        .cloned()
        .ok_or_else(|| MessageBatchError::NotAnthropic(model.to_string()).into())
}

/// `{messages}/batches{tail}` of an Anthropic deployment.
fn batches_uri(dep: &Deployment, tail: &str) -> Result<Uri, GatewayError> {
    let messages = dep
        .anthropic_messages()
        .ok_or_else(|| MessageBatchError::NotAnthropic(dep.model_name.clone()))?;
    let base = messages.to_string();
    let base = base.split('?').next().unwrap_or_default();
    format!("{base}/batches{tail}")
        .parse()
        .map_err(|_| GatewayError::NotFound(format!("/v1/messages/batches{tail}")))
}

/// The client's `anthropic-beta` header, passed on.
fn beta(headers: &http::HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    headers
        .get("anthropic-beta")
        .map(|v| vec![(HeaderName::from_static("anthropic-beta"), v.clone())])
        .unwrap_or_default()
}

/// `POST /v1/messages/batches`
async fn create(
    state: &AppState,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let (principal, parts, raw) = crate::pipeline::authenticated_body(state, req).await?;
    let mut v: Value =
        serde_json::from_slice(&raw).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    if !v.is_object() {
        return Err(RequestError::NotObject.into());
    }
    let model = batch_model(&v)?;
    let dep = anthropic_deployment(state, &principal, &model).await?;
    let (requests, tokens) = rewrite_and_count(&mut v, &dep.upstream_model);

    // reserve the whole batch on the caller's request, token and tokens-per-day limits
    let ds = crate::limits::descriptors(&crate::limits::Subject {
        principal: &principal,
        model: &dep.model_name,
        end_user: None,
        deployment: Some(&dep),
        global_parallel: None,
    });
    state
        .limits
        .reserve_batch(
            super::batches::batch_descriptors(ds, &principal),
            tokens,
            requests,
        )
        .await?;

    let body =
        Bytes::from(serde_json::to_vec(&v).map_err(|e| RequestError::BadValue(e.to_string()))?);
    drop(v);
    let uri = batches_uri(&dep, "")?;
    let side = crate::pipeline::Side {
        call_type: "acreate_batch",
        endpoint: super::MESSAGE_BATCHES,
        model: &dep.model_name,
        dep: Some(dep.clone()),
        model_access: true,
        rate_limited: false,
    };
    let mut rec = crate::pipeline::side_call(state, &principal, side).await?;
    let extra = beta(&parts.headers);
    let resp = upstream::send_with(
        &state.client,
        &dep,
        Method::POST,
        &uri,
        &[body],
        false,
        &extra,
    )
    .await?;
    rec.status = resp.status().as_u16();
    let (head, out) = upstream::ok_body(resp).await?;
    let Ok(mut batch) = serde_json::from_slice::<Value>(&out) else {
        return Err(UpstreamError::Body("the provider's batch is not JSON".into()).into());
    };
    if let (Some(store), Some(raw)) = (&state.store, batch.get("id").and_then(Value::as_str)) {
        let user = crate::responses::caller_user(&principal);
        let team = crate::responses::caller_team(&principal);
        let recorded = store
            .query(
                Query::InsertMessageBatch,
                &[&dep.id, &raw, &dep.model_name, &user, &team],
            )
            .await;
        if let Err(e) = recorded {
            // the sealed id still works; only listings miss it
            tracing::warn!(deployment = %dep.id, error = %e, "message batch not recorded for listings");
        }
    }
    let owner = crate::responses::owner("", &principal, &dep.id);
    shown(state, &mut batch, &owner);
    Ok(json_out(head.status, &batch))
}

/// `GET|DELETE /v1/messages/batches/{id}`, `.../cancel`, `.../results`.
async fn by_id(
    state: &AppState,
    at: At,
    id: &str,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let principal = state.auth.caller_of(&req).await?;
    let hint = super::model_hint(req.headers(), req.uri().query());
    let (raw, dep) = super::held(state, Kind::MessageBatch, id, &principal, hint.as_deref())?;
    let method = req.method().clone();
    let (tail, upstream_method) = match at {
        At::Cancel => ("/cancel", Method::POST),
        At::Results => ("/results", Method::GET),
        _ if method == Method::DELETE => ("", Method::DELETE),
        _ => ("", Method::GET),
    };
    let uri = batches_uri(&dep, &format!("/{raw}{tail}"))?;
    let mut extra = beta(req.headers());
    if at == At::Results {
        extra.push((
            header::ACCEPT,
            HeaderValue::from_static("application/binary"),
        ));
    }
    let mut rec = super::record(state, &principal, Kind::MessageBatch, at, &method, &dep).await?;
    let resp = upstream::send_with(
        &state.client,
        &dep,
        upstream_method,
        &uri,
        &[],
        false,
        &extra,
    )
    .await?;
    rec.status = resp.status().as_u16();
    if !resp.status().is_success() {
        return Err(UpstreamError::from_response(resp).await.into());
    }
    if at == At::Results {
        return Ok(results(state, resp, rec, &dep, raw));
    }
    let (head, out) = upstream::ok_body(resp).await?;
    let Ok(mut batch) = serde_json::from_slice::<Value>(&out) else {
        return Err(UpstreamError::Body("the provider's batch is not JSON".into()).into());
    };
    if method == Method::DELETE
        && let Some(store) = &state.store
        && let Err(e) = store
            .query(Query::DeleteMessageBatch, &[&dep.id, &raw])
            .await
    {
        tracing::warn!(deployment = %dep.id, error = %e, "deleted message batch still recorded");
    }
    // the batch keeps the owner its id names (an admin reading it does not take it over)
    let owner = ids::open(state.response_ids.sealer(), Kind::MessageBatch, id)
        .unwrap_or_else(|| crate::responses::owner("", &principal, &dep.id));
    shown(state, &mut batch, &owner);
    Ok(json_out(head.status, &batch))
}

/// The results, streamed and counted, booked at the deployment's batch price.
fn results(
    state: &AppState,
    resp: Response<hyper::body::Incoming>,
    mut rec: crate::pipeline::post::Completion,
    dep: &Deployment,
    raw: String,
) -> Response<Body> {
    rec.price = dep.price.as_ref().map(|p| Arc::new(p.for_batches()));
    let claim = state
        .store
        .as_ref()
        .map(|store| super::batch_results::Claim {
            store: store.clone(),
            model_id: dep.id.clone(),
            batch_id: raw,
        });
    let (head, incoming) = resp.into_parts();
    let tap = super::batch_results::ResultsTap::new(incoming, rec, claim);
    let mut out = Response::new(Body::Tap(Box::new(tap)));
    *out.status_mut() = head.status;
    for h in [header::CONTENT_TYPE, header::CONTENT_LENGTH] {
        if let Some(v) = head.headers.get(&h) {
            out.headers_mut().insert(h, v.clone());
        }
    }
    out
}

/// `GET /v1/messages/batches`: the caller's own batches (an admin: everyone's), newest first,
/// `limit` (1-1000, default 20), `after_id` (older than) and `before_id` (newer than); an admin
/// naming a model lists that deployment's account.
async fn list(state: &AppState, req: Request<RequestBody>) -> Result<Response<Body>, GatewayError> {
    let principal = state.auth.caller_of(&req).await?;
    let query = req.uri().query();
    let hint = super::model_hint(req.headers(), query);
    if let Some(model) = hint.filter(|_| principal.is_admin()) {
        return list_account(state, &principal, &model, &req).await;
    }
    let store = state.store.as_ref().ok_or(MessageBatchError::NoStore)?;
    let param = |k| crate::util::query::decoded_param(query, k);
    let limit = param("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .unwrap_or(PAGE)
        .clamp(1, MAX_PAGE);
    let sealer = state.response_ids.sealer();
    let bound = |k| {
        param(k).map(|id| {
            ids::open(sealer, Kind::MessageBatch, &id)
                .map(|o| (o.raw, o.model_id))
                .unwrap_or_default()
        })
    };
    let (after, after_dep) = bound("after_id").unzip();
    let (before, before_dep) = bound("before_id").unzip();
    let mine = !principal.is_admin();
    let user = crate::responses::caller_user(&principal);
    let team = crate::responses::caller_team(&principal);
    let rows = store
        .query(
            Query::ListMessageBatches,
            &[
                &mine,
                &user,
                &team,
                &(limit + 1),
                &after,
                &after_dep,
                &before,
                &before_dep,
            ],
        )
        .await
        .map_err(MessageBatchError::from)?;
    let has_more = rows.len() as i64 > limit;
    let table = state.models.load_full();
    let mut data = Vec::new();
    for row in rows.iter().take(limit as usize) {
        let get = |i: usize| -> Result<String, MessageBatchError> {
            row.try_get::<_, String>(i)
                .map_err(|e| StoreError::from(e).into())
        };
        let owned = Owned {
            model_id: get(0)?,
            raw: get(1)?,
            user_id: get(3)?,
            team_id: get(4)?,
        };
        let Some(dep) = table
            .deployments()
            .find(|d| d.id == owned.model_id)
            .cloned()
        else {
            continue;
        };
        let uri = batches_uri(&dep, &format!("/{}", owned.raw))?;
        let resp =
            upstream::send_with(&state.client, &dep, Method::GET, &uri, &[], false, &[]).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            continue;
        }
        let (_, out) = upstream::ok_body(resp).await?;
        if let Ok(mut batch) = serde_json::from_slice::<Value>(&out) {
            shown(state, &mut batch, &owned);
            data.push(batch);
        }
    }
    Ok(json_out(StatusCode::OK, &page(data, has_more)))
}

/// An admin's listing of the account behind `model` (the provider's own list, every tenant's).
async fn list_account(
    state: &AppState,
    principal: &Principal,
    model: &str,
    req: &Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let dep = anthropic_deployment(state, principal, model).await?;
    let tail = match super::forwarded_query(req.uri().query()) {
        Some(q) => format!("?{q}"),
        None => String::new(),
    };
    let uri = batches_uri(&dep, &tail)?;
    let method = Method::GET;
    let mut rec = super::record(
        state,
        principal,
        Kind::MessageBatch,
        At::Collection,
        &method,
        &dep,
    )
    .await?;
    let extra = beta(req.headers());
    let resp = upstream::send_with(&state.client, &dep, method, &uri, &[], false, &extra).await?;
    rec.status = resp.status().as_u16();
    let (head, out) = upstream::ok_body(resp).await?;
    let Ok(mut v) = serde_json::from_slice::<Value>(&out) else {
        return Ok(crate::error::json_response(head.status, out));
    };
    let owner = crate::responses::owner("", principal, &dep.id);
    let mut data = Vec::new();
    if let Some(items) = v.get_mut("data").and_then(Value::as_array_mut) {
        for b in items.iter_mut() {
            shown(state, b, &owner);
        }
        data = std::mem::take(items);
    }
    let has_more = v.get("has_more").and_then(Value::as_bool).unwrap_or(false);
    Ok(json_out(head.status, &page(data, has_more)))
}

/// A page of batches as Anthropic lists them.
fn page(data: Vec<Value>, has_more: bool) -> Value {
    let id = |b: Option<&Value>| b.and_then(|b| b.get("id")).cloned().unwrap_or(Value::Null);
    json!({
        "data": &data,
        "has_more": has_more,
        "first_id": id(data.first()),
        "last_id": id(data.last()),
    })
}

/// `batch` as the caller sees it: its id sealed (to `owner`'s user and team and deployment) and
/// its `results_url` on the gateway.
fn shown(state: &AppState, batch: &mut Value, owner: &Owned) {
    let Some(o) = batch.as_object_mut() else {
        return;
    };
    let Some(raw) = o.get("id").and_then(Value::as_str) else {
        return;
    };
    let owned = Owned {
        raw: raw.to_string(),
        ..owner.clone()
    };
    let sealed = ids::seal_owned(state.response_ids.sealer(), Kind::MessageBatch, &owned);
    if o.get("results_url").is_some_and(|u| !u.is_null()) {
        o.insert(
            "results_url".into(),
            Value::String(format!("/v1/messages/batches/{sealed}/results")),
        );
    }
    o.insert("id".into(), Value::String(sealed));
}

fn json_out(status: StatusCode, v: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    crate::error::json_response(status, Bytes::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(id: &str, model: &str) -> Value {
        json!({"custom_id": id, "params": {"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}})
    }

    #[test]
    fn one_model_per_batch_and_every_request_checked() {
        let ok = json!({"requests": [req("a", "claude"), req("b", "claude")]});
        assert_eq!(batch_model(&ok).unwrap(), "claude");
        assert!(matches!(
            batch_model(&json!({"requests": []})),
            Err(MessageBatchError::NoRequests)
        ));
        assert!(matches!(
            batch_model(&json!({"requests": [req("a", "claude"), req("b", "gpt")]})),
            Err(MessageBatchError::Models(1, _, _))
        ));
        let mut no_id = req("", "claude");
        assert!(matches!(
            batch_model(&json!({"requests": [req("a", "claude"), no_id.take()]})),
            Err(MessageBatchError::BadRequest(1, _))
        ));
        assert!(matches!(
            batch_model(&json!({"requests": [{"custom_id": "a", "params": "x"}]})),
            Err(MessageBatchError::BadRequest(0, _))
        ));
    }

    #[test]
    fn requests_point_at_the_deployment_and_are_counted() {
        let mut v = json!({"requests": [req("a", "claude"), req("b", "claude")]});
        let (n, tokens) = rewrite_and_count(&mut v, "claude-haiku-4-5");
        assert_eq!(n, 2);
        assert!(tokens >= 16, "{tokens}");
        assert_eq!(v["requests"][1]["params"]["model"], "claude-haiku-4-5");
    }
}
