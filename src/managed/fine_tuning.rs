//! `POST /v1/fine_tuning/jobs`: `training_file` (and `validation_file`) may be ids the gateway
//! handed out, which pin the deployment (a unified file's: its copy on the deployment of the
//! request's `model`); `model` naming a model group picks it otherwise (and is replaced by the
//! deployment's model). The job is recorded for the caller's listings.

use bytes::Bytes;
use http::{Method, Request, Response};
use serde_json::Value;

use super::{At, Kind, files, held, ids, model_hint, pick, record, upstream_uri};
use crate::body::Body;
use crate::error::GatewayError;
use crate::pipeline::parse::RequestError;
use crate::request_body::RequestBody;
use crate::state::AppState;
use crate::upstream;

/// `POST /v1/fine_tuning/jobs`.
pub async fn create(
    state: &AppState,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let (principal, parts, raw) = crate::pipeline::authenticated_body(state, req).await?;
    let mut v: Value =
        serde_json::from_slice(&raw).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    if !v.is_object() {
        return Err(RequestError::NotObject.into());
    }
    let training = v
        .get("training_file")
        .and_then(Value::as_str)
        .ok_or(RequestError::Missing("training_file"))?
        .to_string();
    let hint = model_hint(&parts.headers, parts.uri.query());
    let table = state.models.load_full();
    let body_model = v.get("model").and_then(Value::as_str).map(str::to_string);
    // a model group named in the body (or the hint) picks the deployment
    let group = body_model
        .clone()
        .filter(|m| table.resolve(m).is_ok())
        .or(hint.clone());
    let sealed = ids::open(state.response_ids.sealer(), Kind::File, &training).is_some();
    let mut inputs: Vec<(&str, String)> = Vec::new();
    let dep = if sealed || group.is_none() {
        let h = files::on_deployment(state, &principal, &training, group.as_deref()).await?;
        v["training_file"] = Value::String(h.raw);
        if h.unified {
            inputs.push(("training_file", training.clone()));
        }
        h.dep
    } else {
        let dep = pick(state, &principal, group.as_deref().unwrap_or_default()).await?;
        let (raw, _) = held(state, Kind::File, &training, &principal, group.as_deref())?;
        v["training_file"] = Value::String(raw);
        dep
    };
    if let Some(val) = v
        .get("validation_file")
        .and_then(Value::as_str)
        .map(str::to_string)
    {
        let unified = ids::open(state.response_ids.sealer(), Kind::File, &val)
            .is_some_and(|o| o.model_id == ids::UNIFIED);
        let raw = if unified {
            inputs.push(("validation_file", val.clone()));
            files::raw_on(state, &principal, &val, &dep).await?
        } else {
            held(state, Kind::File, &val, &principal, group.as_deref())?.0
        };
        v["validation_file"] = Value::String(raw);
    }
    if body_model.as_deref().is_some_and(|m| m == dep.model_name) {
        v["model"] = Value::String(dep.upstream_model.clone());
    }
    let uri = upstream_uri(&dep, "/fine_tuning/jobs")?;
    let bytes =
        Bytes::from(serde_json::to_vec(&v).map_err(|e| RequestError::BadValue(e.to_string()))?);
    let mut rec = record(
        state,
        &principal,
        Kind::FineTune,
        At::Collection,
        &Method::POST,
        &dep,
    )
    .await?;
    let resp = upstream::post(&state.client, &dep, &uri, &[bytes], false).await?;
    rec.status = resp.status().as_u16();
    let (head, out) = upstream::ok_body(resp).await?;
    let inputs: Vec<(&str, &str)> = inputs.iter().map(|(f, id)| (*f, id.as_str())).collect();
    let out = super::created(state, Kind::FineTune, &dep, &principal, &out, &inputs).await;
    Ok(crate::error::json_response(head.status, out))
}
