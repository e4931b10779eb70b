//! Stores hosted by a provider (`custom_llm_provider: openai | azure`): created on a deployment
//! of that provider (`model` / `x-tianji-model` / `?model=` names it, else the first one the
//! caller may use), recorded in `"TianjiLLM_ManagedVectorStoreTable"` under an id of the
//! gateway's (`vs_...`) that maps to the provider's id and the deployment, so only the owner
//! (or a grantee) reaches it and every later call goes to that deployment with its credentials.
//! File ids in requests are the gateway's `/v1/files` ids (opened to the provider's); ids in
//! answers are the gateway's again.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response};
use serde_json::{Value, json};

use super::search::Found;
use super::{Cx, RagError, json_body, ok};
use crate::auth::Owner;
use crate::body::Body;
use crate::error::GatewayError;
use crate::managed::{self, Kind};
use crate::request_body::RequestBody;
use crate::router::Deployment;
use crate::store::Query;
use crate::upstream;
use crate::vector_stores::access::Perm;

pub fn is_hosted(row: &Value) -> bool {
    matches!(
        row.pointer("/model_mappings/provider")
            .and_then(Value::as_str),
        Some("openai" | "azure")
    )
}

/// A hosted store as listed: the object its provider gave at creation, with the gateway's id.
pub fn listed(row: &Value) -> Value {
    let mut o = row.get("resource_object").cloned().unwrap_or(json!({}));
    o["id"] = row
        .get("unified_resource_id")
        .cloned()
        .unwrap_or(Value::Null);
    o
}

fn provider_of(dep: &Deployment) -> &str {
    if dep.provider.name() == "azure" {
        "azure"
    } else {
        "openai"
    }
}

/// A deployment of `provider` the caller may use: the model `hint` names, else the first one.
async fn deployment(
    cx: &Cx<'_>,
    provider: &str,
    hint: Option<&str>,
) -> Result<Arc<Deployment>, GatewayError> {
    if let Some(model) = hint {
        let dep = managed::pick(cx.state, cx.principal(), model).await?;
        if provider_of(&dep) != provider || dep.endpoints.is_none() {
            return Err(RagError::BadRequest(format!(
                "model {model} is not an {provider} deployment"
            ))
            .into());
        }
        return Ok(dep);
    }
    let table = cx.state.models.load_full();
    let names: Vec<String> = table
        .deployments()
        .filter(|d| d.endpoints.is_some() && d.provider.name() == provider)
        .map(|d| d.model_name.clone())
        .collect();
    for name in names {
        if let Ok(dep) = managed::pick(cx.state, cx.principal(), &name).await
            && provider_of(&dep) == provider
        {
            return Ok(dep);
        }
    }
    Err(RagError::BadRequest(format!(
        "no {provider} deployment this key may use holds vector stores; name one with `model` or x-tianji-model"
    ))
    .into())
}

/// Replace the gateway's file ids in a request body with the provider's (they must be held by
/// `dep`).
fn open_files(cx: &Cx<'_>, body: &mut Value, dep: &Deployment) -> Result<(), GatewayError> {
    let open = |id: &str| -> Result<String, GatewayError> {
        let (raw, held) = managed::held(cx.state, Kind::File, id, cx.principal(), None)?;
        if held.id != dep.id {
            return Err(RagError::BadRequest(format!(
                "file {id} is held by another deployment than this vector store"
            ))
            .into());
        }
        Ok(raw)
    };
    if let Some(id) = body
        .get("file_id")
        .and_then(Value::as_str)
        .map(str::to_string)
    {
        body["file_id"] = Value::String(open(&id)?);
    }
    if let Some(ids) = body.get_mut("file_ids").and_then(Value::as_array_mut) {
        for v in ids.iter_mut() {
            if let Some(id) = v.as_str().map(str::to_string) {
                *v = Value::String(open(&id)?);
            }
        }
    }
    if let Some(files) = body.get_mut("files").and_then(Value::as_array_mut) {
        for f in files.iter_mut() {
            if let Some(id) = f.get("file_id").and_then(Value::as_str).map(str::to_string) {
                f["file_id"] = Value::String(open(&id)?);
            }
        }
    }
    Ok(())
}

/// Put the gateway's ids in an answer (one object or a list page).
fn reseal(cx: &Cx<'_>, v: &mut Value, ours: &str, raw_store: &str, dep: &Deployment) {
    let seal = |raw: &str| {
        crate::managed::ids::seal(
            cx.state.response_ids.sealer(),
            Kind::File,
            raw,
            cx.principal(),
            &dep.id,
        )
    };
    let one = |o: &mut Value| {
        if o.get("vector_store_id").and_then(Value::as_str) == Some(raw_store) {
            o["vector_store_id"] = Value::String(ours.to_string());
        }
        let object = o.get("object").and_then(Value::as_str).unwrap_or_default();
        let id = o.get("id").and_then(Value::as_str).map(str::to_string);
        match (object, id) {
            ("vector_store" | "vector_store.deleted", Some(_)) => {
                o["id"] = Value::String(ours.to_string());
            }
            ("vector_store.file" | "vector_store.file.deleted", Some(id)) => {
                o["id"] = Value::String(seal(&id));
            }
            _ => {}
        }
        if let Some(id) = o.get("file_id").and_then(Value::as_str).map(str::to_string) {
            o["file_id"] = Value::String(seal(&id));
        }
    };
    match v.get_mut("data").and_then(Value::as_array_mut) {
        Some(items) => items.iter_mut().for_each(one),
        None => one(v),
    }
}

async fn send(
    cx: &Cx<'_>,
    dep: &Arc<Deployment>,
    method: Method,
    path: &str,
    body: Option<&Value>,
    call_type: &'static str,
) -> Result<Value, GatewayError> {
    let uri = super::endpoint(dep, path)?;
    let mut rec = super::admit(cx, dep, call_type, "/v1/vector_stores").await?;
    let bytes: Vec<Bytes> = body
        .map(|b| vec![Bytes::from(b.to_string())])
        .unwrap_or_default();
    let beta = [(
        http::HeaderName::from_static("openai-beta"),
        http::HeaderValue::from_static("assistants=v2"),
    )];
    let resp =
        upstream::send_with(&cx.state.client, dep, method, &uri, &bytes, false, &beta).await?;
    rec.status = resp.status().as_u16();
    let (_, out) = upstream::ok_body(resp).await?;
    serde_json::from_slice(&out)
        .map_err(|e| GatewayError::Upstream(upstream::UpstreamError::Body(e.to_string())))
}

/// Create a store on a `provider` deployment.
pub async fn create(
    cx: &Cx<'_>,
    provider: &str,
    mut body: Value,
    hint: Option<&str>,
) -> Result<Response<Body>, GatewayError> {
    cx.db()?;
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_string);
    let dep = deployment(cx, provider, model.as_deref().or(hint)).await?;
    if let Some(o) = body.as_object_mut() {
        for f in ["custom_llm_provider", "model", "embedding_model"] {
            o.remove(f);
        }
    }
    open_files(cx, &mut body, &dep)?;
    let (ours, _) = record(cx, provider, &dep, body).await?;
    let row = cx
        .one(Query::GetVectorStore, &[&ours])
        .await?
        .ok_or_else(|| RagError::NotFound(ours.clone()))?;
    Ok(ok(&listed(&row)))
}

/// The deployment and provider id behind a hosted store row.
fn home(cx: &Cx<'_>, row: &Value) -> Result<(Arc<Deployment>, String), RagError> {
    let m = |f: &str| {
        row.pointer(&format!("/model_mappings/{f}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (dep_id, raw) = (m("deployment_id"), m("vector_store_id"));
    let dep = cx
        .state
        .models
        .load()
        .deployments()
        .find(|d| d.id == dep_id)
        .cloned()
        .ok_or_else(|| {
            RagError::BadRequest(format!(
                "the deployment holding vector store {} is no longer configured",
                m("model")
            ))
        })?;
    Ok((dep, raw))
}

/// Any call on a hosted store: forwarded to its deployment.
pub async fn forward(
    cx: &Cx<'_>,
    row: &Value,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let ours = super::store_id(row).to_string();
    let (dep, raw) = home(cx, row)?;
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let searching = path.ends_with("/search");
    if method != Method::GET && !searching {
        cx.writable(row).await?;
    }
    // the path from `/vector_stores` on, the provider's id in place of ours
    let tail = path
        .find("/vector_stores")
        .map(|i| &path[i..])
        .unwrap_or(path.as_str())
        .replacen(&ours, &raw, 1);
    let tail = open_path_file(cx, &tail, &dep)?;
    let tail = match query {
        Some(q) => format!("{tail}?{q}"),
        None => tail,
    };
    let body = if method == Method::POST {
        let mut b = json_body(cx, req).await?;
        open_files(cx, &mut b, &dep)?;
        Some(b)
    } else {
        None
    };
    let call_type = match (&method, searching) {
        (_, true) => "avector_store_search",
        (&Method::DELETE, _) => "avector_store_delete",
        (&Method::POST, _) => "avector_store_update",
        _ => "avector_store_retrieve",
    };
    let deleting_store = method == Method::DELETE && tail.trim_end_matches('/').ends_with(&raw);
    let mut answer = send(cx, &dep, method, &tail, body.as_ref(), call_type).await?;
    reseal(cx, &mut answer, &ours, &raw, &dep);
    if deleting_store {
        cx.one(Query::DeleteVectorStore, &[&ours]).await?;
    }
    Ok(ok(&answer))
}

/// A `/files/{file_id}` segment of the path opened to the provider's file id.
fn open_path_file(cx: &Cx<'_>, tail: &str, dep: &Deployment) -> Result<String, GatewayError> {
    let parts: Vec<&str> = tail.split('/').collect();
    let mut out = Vec::with_capacity(parts.len());
    let mut after_files = false;
    for p in parts {
        if after_files && !p.is_empty() {
            let (raw, held) = managed::held(cx.state, Kind::File, p, cx.principal(), None)?;
            if held.id != dep.id {
                return Err(RagError::FileNotFound(String::new(), p.to_string()).into());
            }
            out.push(raw);
        } else {
            out.push(p.to_string());
        }
        after_files = p == "files";
    }
    Ok(out.join("/"))
}

/// Search a hosted store for `/v1/rag/query`: its results as the gateway's.
pub async fn search(
    cx: &Cx<'_>,
    row: &Value,
    queries: &[String],
    k: usize,
    filters: Option<&Value>,
) -> Result<Vec<Found>, GatewayError> {
    if !cx.may(row, Perm::Read).await? {
        return Err(RagError::NotFound(String::new()).into());
    }
    let ours = super::store_id(row).to_string();
    let (dep, raw) = home(cx, row)?;
    let mut body = json!({"query": queries, "max_num_results": k});
    if let Some(f) = filters {
        body["filters"] = f.clone();
    }
    let mut answer = send(
        cx,
        &dep,
        Method::POST,
        &format!("/vector_stores/{raw}/search"),
        Some(&body),
        "avector_store_search",
    )
    .await?;
    reseal(cx, &mut answer, &ours, &raw, &dep);
    let results = answer
        .get("data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok(results
        .iter()
        .map(|r| Found {
            store_id: ours.clone(),
            file_id: r
                .get("file_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .into(),
            filename: r
                .get("filename")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .into(),
            attributes: r.get("attributes").cloned().unwrap_or(json!({})),
            score: r.get("score").and_then(Value::as_f64).unwrap_or(0.0) as f32,
            text: r
                .get("content")
                .and_then(Value::as_array)
                .map(|c| {
                    c.iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default(),
        })
        .collect())
}

/// What `/v1/rag/ingest` sends to a hosted store: a document to upload, or a `/v1/files` id the
/// deployment holds.
pub enum Upload {
    Document(super::source::Document),
    FileId(String),
}

/// `/v1/rag/ingest` into a store hosted by a `provider` deployment: the document uploaded to
/// its files (`purpose: assistants`), the store made there unless `vector_store_id` names one of
/// the caller's, the file attached, and (with `wait`) its processing awaited; answered in the
/// ingest shape, ids the gateway's.
pub async fn ingest(
    cx: &Cx<'_>,
    provider: &str,
    options: &Value,
    upload: Upload,
    hint: Option<&str>,
) -> Result<Response<Body>, GatewayError> {
    cx.db()?;
    let vs = options.get("vector_store").cloned().unwrap_or(json!({}));
    let wait = vs
        .get("wait_for_ingestion")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let existing = match vs.get("vector_store_id").and_then(Value::as_str) {
        Some(id) => {
            let row = cx.row(id).await?;
            if !is_hosted(&row) {
                return Err(RagError::BadRequest(format!(
                    "vector store {id} is the gateway's own: omit vector_store.custom_llm_provider"
                ))
                .into());
            }
            cx.writable(&row).await?;
            Some(row)
        }
        None => None,
    };
    let dep = match &existing {
        Some(row) => home(cx, row)?.0,
        None => deployment(cx, provider, hint).await?,
    };
    let raw_file = match upload {
        Upload::FileId(id) => {
            let (raw, held) = managed::held(cx.state, Kind::File, &id, cx.principal(), hint)?;
            if held.id != dep.id {
                return Err(RagError::BadRequest(format!(
                    "file {id} is held by another deployment than the vector store's"
                ))
                .into());
            }
            raw
        }
        Upload::Document(doc) => upload_file(cx, &dep, doc).await?,
    };
    let (ours, raw_store) = match existing {
        Some(row) => {
            let ours = super::store_id(&row).to_string();
            (ours, home(cx, &row)?.1)
        }
        None => {
            let name = options
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("rag-ingest");
            let mut body = json!({"name": name});
            if let Some(days) = vs.get("ttl_days").and_then(Value::as_i64) {
                body["expires_after"] = json!({"anchor": "last_active_at", "days": days});
            }
            record(cx, provider, &dep, body).await?
        }
    };
    let attach = json!({"file_id": raw_file});
    let path = format!("/vector_stores/{raw_store}/files");
    let mut file = send(
        cx,
        &dep,
        Method::POST,
        &path,
        Some(&attach),
        "avector_store_file_create",
    )
    .await?;
    if wait {
        let end = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
        let mut pause = std::time::Duration::from_millis(50);
        while file.get("status").and_then(Value::as_str) == Some("in_progress")
            && tokio::time::Instant::now() < end
        {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_secs(2));
            let p = format!("/vector_stores/{raw_store}/files/{raw_file}");
            file = send(
                cx,
                &dep,
                Method::GET,
                &p,
                None,
                "avector_store_file_retrieve",
            )
            .await?;
        }
    }
    let status = file
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("in_progress")
        .to_string();
    let error = file
        .pointer("/last_error/message")
        .and_then(Value::as_str)
        .map(str::to_string);
    let sealed = crate::managed::ids::seal(
        cx.state.response_ids.sealer(),
        Kind::File,
        &raw_file,
        cx.principal(),
        &dep.id,
    );
    Ok(ok(&json!({
        "id": format!("ingest_{}", uuid::Uuid::now_v7().simple()),
        "object": "rag.ingest",
        "status": status,
        "vector_store_id": ours,
        "file_id": sealed,
        "error": error,
        "error_status_code": error.as_ref().map(|_| 400),
    })))
}

/// A store made on `dep` and recorded: (the gateway's id, the provider's).
async fn record(
    cx: &Cx<'_>,
    provider: &str,
    dep: &Arc<Deployment>,
    body: Value,
) -> Result<(String, String), GatewayError> {
    let made = send(
        cx,
        dep,
        Method::POST,
        "/vector_stores",
        Some(&body),
        "avector_store_create",
    )
    .await?;
    let raw = made
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            RagError::BadRequest("the provider answered without a vector store id".into())
        })?
        .to_string();
    let ours = format!("vs_{}", uuid::Uuid::now_v7().simple());
    let owner = Owner::of(cx.principal());
    let mappings = json!({
        "provider": provider,
        "deployment_id": dep.id,
        "model": dep.model_name,
        "vector_store_id": raw,
        "owner": owner.to_json(),
    });
    let mut shown = made.clone();
    reseal(cx, &mut shown, &ours, &raw, dep);
    cx.one(
        Query::InsertVectorStore,
        &[
            &ours,
            &shown,
            &mappings,
            &vec![raw.clone()],
            &owner.by(),
            &owner.team_id,
        ],
    )
    .await?;
    Ok((ours, raw))
}

/// Upload `doc` (within `rag_settings.max_file_mb`) to the deployment's files: its id there.
async fn upload_file(
    cx: &Cx<'_>,
    dep: &Arc<Deployment>,
    doc: super::source::Document,
) -> Result<String, GatewayError> {
    use futures_util::StreamExt;
    let max = cx.state.config().rag_settings.max_file_bytes();
    let mut data = Vec::new();
    let mut body = doc.body;
    while let Some(piece) = body.next().await {
        data.extend_from_slice(&piece?);
        if data.len() as u64 > max {
            return Err(RagError::TooLarge(cx.state.config().rag_settings.max_file_mb).into());
        }
    }
    let name: String = doc
        .filename
        .unwrap_or_else(|| "document.txt".into())
        .chars()
        .filter(|c| !matches!(c, '"' | '\r' | '\n' | '\\'))
        .collect();
    let ct = doc
        .content_type
        .filter(|c| !c.contains(['\r', '\n']))
        .unwrap_or_else(|| "application/octet-stream".into());
    let boundary = format!("tianji{}", uuid::Uuid::now_v7().simple());
    let mut form = Vec::with_capacity(data.len() + 512);
    form.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {ct}\r\n\r\n")
            .as_bytes(),
    );
    form.extend_from_slice(&data);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let uri = super::endpoint(dep, "/files")?;
    let ct = http::HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))
        .map_err(|e| RagError::BadRequest(e.to_string()))?;
    let mut rec = super::admit(cx, dep, "acreate_file", "/v1/files").await?;
    let len = form.len() as u64;
    let resp = upstream::send_once(
        &cx.state.client,
        dep,
        &uri,
        Body::full(Bytes::from(form)),
        ct,
        Some(len),
    )
    .await?;
    rec.status = resp.status().as_u16();
    let (_, out) = upstream::ok_body(resp).await?;
    let v: Value = serde_json::from_slice(&out)
        .map_err(|e| GatewayError::Upstream(upstream::UpstreamError::Body(e.to_string())))?;
    Ok(v.get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            RagError::BadRequest("the provider answered the upload without a file id".into())
        })?
        .to_string())
}
