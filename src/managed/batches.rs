//! `POST /v1/batches` (create) with the batch rate limiter: the gateway reads the batch's JSONL
//! input file from the deployment, counts its requests and estimates its tokens (body bytes / 4
//! plus `max_tokens` per line), and reserves them all at once on the caller's RPM/TPM limits and
//! tokens-per-day limits (`tpd_limit` of the key, team and end user), all or nothing, before the
//! batch is created upstream. A missing input file is a 400 and reserves nothing. The batch's
//! ids are sealed like every managed object (`crate::managed`): get and cancel go back to the
//! deployment that created it. An input file sent to several deployments (a unified id) runs on
//! the deployment of the request's `model` holding a copy, with that copy's id. The batch is
//! recorded for the caller's listings (`"TianjiLLM_ManagedObjectTable"`).

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;

use crate::auth::Principal;
use crate::body::Body;
use crate::error::GatewayError;
use crate::limits::Descriptor;
use crate::pipeline::parse::RequestError;
use crate::request_body::RequestBody;
use crate::state::AppState;
use crate::upstream::{self, UpstreamError};

/// A day, for tokens-per-day limits.
const DAY_MS: u64 = 86_400_000;
/// Largest input file read for counting.
const MAX_INPUT_FILE: usize = 512 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("input_file_id {0} was not found")]
    NoInputFile(String),
    #[error("Line {line} of the batch input file is not a JSON object: {error}")]
    BadLine { line: usize, error: String },
    #[error(
        "Cannot tell which deployment serves this batch: pass `model` in the body, as ?model= or in the x-tianji-model header"
    )]
    NoModel,
    #[error("The deployment of model {0} does not serve the batches API")]
    Unsupported(String),
}

crate::error::feature_error!(BatchError, "batch");

impl BatchError {
    pub fn status(&self) -> StatusCode {
        match self {
            BatchError::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Requests and estimated tokens of a JSONL batch input.
pub fn count(input: &[u8]) -> Result<(u64, u64), BatchError> {
    let mut requests = 0u64;
    let mut tokens = 0u64;
    for (i, line) in input.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let v: Value = serde_json::from_slice(line).map_err(|e| BatchError::BadLine {
            line: i + 1,
            error: e.to_string(),
        })?;
        let body = v.get("body").ok_or_else(|| BatchError::BadLine {
            line: i + 1,
            error: "no `body`".into(),
        })?;
        let max = ["max_tokens", "max_completion_tokens"]
            .iter()
            .filter_map(|k| body.get(*k).and_then(Value::as_u64))
            .min()
            .unwrap_or(0);
        requests += 1;
        tokens = tokens.saturating_add(body.to_string().len() as u64 / 4 + max);
    }
    Ok((requests, tokens))
}

/// The caller's request and token limits (no parallel limits: a batch holds no slot), and
/// its tokens-per-day limits.
pub(super) fn batch_descriptors(mut ds: Vec<Descriptor>, principal: &Principal) -> Vec<Descriptor> {
    ds.retain_mut(|d| {
        d.parallel = None;
        d.rpm.is_some() || d.tpm.is_some()
    });
    if let Principal::Key(c) = principal {
        let mut tpd = |kind: &'static str, value: &str, n: Option<i64>| {
            if let Some(n) = crate::limits::descriptor::limit(n) {
                ds.push(Descriptor {
                    window: Some(DAY_MS),
                    ..Descriptor::plain(kind, value.to_string(), None, Some(n), None)
                });
            }
        };
        tpd("api_key_tpd", &c.key.token, c.key.tpd_limit);
        if let Some(t) = &c.team {
            tpd("team_tpd", &t.team_id, t.tpd_limit);
        }
    }
    ds
}

/// `POST /v1/batches`
pub async fn create(
    state: &AppState,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let (principal, parts, raw) = crate::pipeline::authenticated_body(state, req).await?;
    let v: Value =
        serde_json::from_slice(&raw).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    if !v.is_object() {
        return Err(RequestError::NotObject.into());
    }
    let file_id = v
        .get("input_file_id")
        .and_then(Value::as_str)
        .ok_or(RequestError::Missing("input_file_id"))?
        .to_string();
    let hint = v
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            parts
                .headers
                .get("x-tianji-model")
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .or_else(|| crate::util::query::query_param(parts.uri.query(), "model"));
    let table = state.models.load_full();
    // an input file the gateway handed out names its deployment (a unified file: its copy on a
    // deployment of `model`); else `model` picks one
    use super::{Kind, files, ids};
    let client_file = file_id.clone();
    let (file_id, dep, unified) =
        if ids::open(state.response_ids.sealer(), Kind::File, &file_id).is_some() {
            let h = files::on_deployment(state, &principal, &file_id, hint.as_deref()).await?;
            (h.raw, h.dep, h.unified)
        } else {
            let model = hint.clone().ok_or(BatchError::NoModel)?;
            (file_id, table.resolve(&model)?.pick().clone(), false)
        };
    let model = dep.model_name.clone();
    let granted = crate::auth::access::authorize(
        state.auth.directory(),
        &principal,
        crate::auth::access::Ask {
            model: &model,
            end_user: None,
            groups: &*table,
        },
    )
    .await?;
    let unsupported = || BatchError::Unsupported(model.clone());

    // read and count the input file
    let file_uri = dep
        .uri(&format!("/files/{file_id}/content"))
        .ok_or_else(unsupported)?;
    let resp =
        upstream::send_with(&state.client, &dep, Method::GET, &file_uri, &[], false, &[]).await?;
    if resp.status() == StatusCode::NOT_FOUND {
        return Err(BatchError::NoInputFile(file_id).into());
    }
    if !resp.status().is_success() {
        return Err(UpstreamError::from_response(resp).await.into());
    }
    let input = http_body_util::Limited::new(resp.into_body(), MAX_INPUT_FILE)
        .collect()
        .await
        .map_err(|e| UpstreamError::Body(e.to_string()))?
        .to_bytes();
    let (requests, tokens) = count(&input)?;

    // reserve the whole batch
    let ds = crate::limits::descriptors(&crate::limits::Subject {
        principal: &principal,
        model: &model,
        end_user: None,
        deployment: Some(&dep),
        global_parallel: None,
    });
    drop(granted);
    state
        .limits
        .reserve_batch(batch_descriptors(ds, &principal), tokens, requests)
        .await?;

    // create it upstream (without the gateway's routing field)
    let mut body = v;
    if let Some(o) = body.as_object_mut() {
        o.remove("model");
        o.insert("input_file_id".into(), Value::String(file_id.clone()));
    }
    let bytes = Bytes::from(
        serde_json::to_vec(&body).map_err(|e| RequestError::InvalidJson(e.to_string()))?,
    );
    let uri = dep.uri("/batches").ok_or_else(unsupported)?;
    let side = crate::pipeline::Side {
        call_type: "acreate_batch",
        endpoint: "/v1/batches",
        model: &model,
        dep: Some(dep.clone()),
        model_access: true,
        rate_limited: false,
    };
    let mut rec = crate::pipeline::side_call(state, &principal, side).await?;
    let resp = upstream::post(&state.client, &dep, &uri, &[bytes], false).await?;
    rec.status = resp.status().as_u16();
    let (head, out) = upstream::ok_body(resp).await?;
    let inputs: &[(&str, &str)] = if unified {
        &[("input_file_id", client_file.as_str())]
    } else {
        &[]
    };
    let out = super::created(state, Kind::Batch, &dep, &principal, &out, inputs).await;
    Ok(crate::error::json_response(head.status, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines_and_tokens() {
        let input = b"{\"custom_id\":\"a\",\"body\":{\"model\":\"m\",\"max_tokens\":10}}\n\n{\"custom_id\":\"b\",\"body\":{\"model\":\"m\"}}\n";
        let (n, t) = count(input).unwrap();
        assert_eq!(n, 2);
        let b1 = r#"{"max_tokens":10,"model":"m"}"#.len() as u64 / 4 + 10;
        let b2 = r#"{"model":"m"}"#.len() as u64 / 4;
        assert_eq!(t, b1 + b2);
        assert!(matches!(
            count(b"{\"body\":1}\nnope\n"),
            Err(BatchError::BadLine { line: 2, .. })
        ));
    }
}
