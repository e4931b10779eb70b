//! Files of the gateway's own stores: `/v1/vector_stores/{id}/files` (attach a `/v1/files` id,
//! list), `.../files/{file_id}` (get, update attributes, delete), `.../content`, and file
//! batches. Attaching answers at once (`in_progress`); the file is read from the deployment
//! holding it and ingested in the background.

use std::sync::Arc;

use http::{Method, Request, Response};
use serde_json::{Value, json};

use super::ingest::{self, FileSpec, Target};
use super::shapes::{self, Page};
use super::{At, Cx, RagError, json_body, ok, source};
use crate::body::Body;
use crate::error::GatewayError;
use crate::pipeline::made::For;
use crate::rag::chunk::ChunkOptions;
use crate::request_body::RequestBody;
use crate::state::AppState;
use crate::store::Query;

/// OpenAI's limits on file attributes: at most 16, strings of at most 512 characters,
/// numbers or booleans.
pub fn check_attributes(v: Option<&Value>) -> Result<Value, RagError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(json!({}));
    };
    let ok = v.as_object().is_some_and(|m| {
        m.len() <= 16
            && m.iter().all(|(k, v)| {
                k.len() <= 64
                    && match v {
                        Value::String(s) => s.len() <= 512,
                        Value::Number(_) | Value::Bool(_) => true,
                        _ => false,
                    }
            })
    });
    if !ok {
        return Err(RagError::BadRequest(
            "attributes: at most 16 keys (64 characters), values strings of at most 512 characters, numbers or booleans".into(),
        ));
    }
    Ok(v.clone())
}

/// Attach the `/v1/files` id `file_id` to the store `target`: its row (`in_progress`), and
/// its ingestion started. A file the store holds already is answered as it is.
pub async fn attach(
    cx: &Cx<'_>,
    target: &Target,
    file_id: &str,
    attributes: Value,
    chunking: ChunkOptions,
    batch: Option<&str>,
) -> Result<Value, GatewayError> {
    let hint = crate::managed::model_hint(&cx.who.headers, None);
    // refused now (a file the caller may not read) rather than failed later
    crate::managed::held(
        cx.state,
        crate::managed::Kind::File,
        file_id,
        cx.principal(),
        hint.as_deref(),
    )?;
    let spec = FileSpec {
        file_id: file_id.to_string(),
        attributes,
        chunking,
        ocr_model: None,
    };
    let Some(row) = ingest::add_file_row(cx, target, &spec, "", batch).await? else {
        let row = cx
            .one(Query::GetVectorStoreFile, &[&target.store_id, &file_id])
            .await?
            .ok_or_else(|| RagError::FileNotFound(target.store_id.clone(), file_id.into()))?;
        return Ok(shapes::file(&row));
    };
    let (state, who, target, hint) = (cx.state.clone(), cx.who.clone(), target.clone(), hint);
    tokio::spawn(async move {
        ingest_file(state, who, target, spec, hint).await;
    });
    Ok(shapes::file(&row))
}

/// Read the file from its deployment and ingest it.
async fn ingest_file(
    state: Arc<AppState>,
    who: For,
    target: Target,
    spec: FileSpec,
    hint: Option<String>,
) {
    let cx = Cx {
        state: &state,
        store: state.store.clone(),
        who: who.clone(),
    };
    match source::file_id(&cx, &spec.file_id, hint.as_deref()).await {
        Ok(doc) => {
            if let (Some(name), Some(store)) = (&doc.filename, state.store.as_deref()) {
                let _ = store
                    .query(
                        Query::SetVectorStoreFileFilename,
                        &[&target.store_id, &spec.file_id, name],
                    )
                    .await;
            }
            ingest::run(&state, &who, &target, &spec, doc).await;
        }
        Err(e) => {
            ingest::unreadable(&state, &target, &spec, RagError::Read(e.to_string())).await;
        }
    }
}

/// `/v1/vector_stores/{id}/files`: attach (POST), list (GET, `filter` by status).
pub async fn collection(
    cx: &Cx<'_>,
    row: &Value,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let vs = super::store_id(row);
    if req.method() == Method::POST {
        cx.writable(row).await?;
        let body = json_body(cx, req).await?;
        let file_id = body
            .get("file_id")
            .and_then(Value::as_str)
            .ok_or_else(|| RagError::BadRequest("file_id is required".into()))?;
        let attributes = check_attributes(body.get("attributes"))?;
        let chunking = ingest::chunking(body.get("chunking_strategy"))?;
        let target = ingest::target_of(row)?;
        let file = attach(cx, &target, file_id, attributes, chunking, None).await?;
        return Ok(ok(&file));
    }
    let files = cx.rows(Query::ListVectorStoreFiles, &[&vs]).await?;
    Ok(ok(&page_of_files(&files, req.uri().query())?))
}

/// A list page of file rows (`limit`, `order`, `after`, `before`; `filter` by status).
fn page_of_files(files: &[Value], query: Option<&str>) -> Result<Value, RagError> {
    let page = Page::of(query).map_err(RagError::BadRequest)?;
    let status = crate::util::query::query_param(query, "filter");
    let listed = files
        .iter()
        .filter(|f| {
            status
                .as_deref()
                .is_none_or(|s| f.get("status").and_then(Value::as_str) == Some(s))
        })
        .map(shapes::file)
        .collect();
    Ok(page.list(listed))
}

/// `.../files/{file_id}`: get, update attributes (POST), delete; `.../content`.
pub async fn item(
    cx: &Cx<'_>,
    row: &Value,
    file_id: &str,
    at: At,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let vs = super::store_id(row);
    let missing = || RagError::FileNotFound(vs.to_string(), file_id.to_string());
    let file = cx
        .one(Query::GetVectorStoreFile, &[&vs, &file_id])
        .await?
        .ok_or_else(missing)?;
    if at == At::FileContent {
        let texts: Vec<Value> = cx
            .db()?
            .query(Query::VectorStoreFileText, &[&vs, &file_id])
            .await
            .map_err(RagError::from)?
            .iter()
            .filter_map(|r| r.try_get::<_, String>(0).ok())
            .map(|t| json!({"type": "text", "text": t}))
            .collect();
        return Ok(ok(&json!({
            "object": "vector_store.file_content.page",
            "file_id": file_id,
            "filename": file.get("filename"),
            "attributes": file.get("attributes"),
            "data": texts,
            "has_more": false,
            "next_page": null,
        })));
    }
    match *req.method() {
        Method::POST => {
            cx.writable(row).await?;
            let body = json_body(cx, req).await?;
            let attributes = check_attributes(body.get("attributes"))?;
            let updated = cx
                .one(
                    Query::SetVectorStoreFileAttributes,
                    &[&vs, &file_id, &attributes],
                )
                .await?
                .ok_or_else(missing)?;
            cx.changed(vs).await;
            Ok(ok(&shapes::file(&updated)))
        }
        Method::DELETE => {
            cx.writable(row).await?;
            cx.one(Query::DeleteVectorStoreFile, &[&vs, &file_id])
                .await?
                .ok_or_else(missing)?;
            cx.changed(vs).await;
            Ok(ok(&json!({
                "id": file_id,
                "object": "vector_store.file.deleted",
                "deleted": true,
            })))
        }
        _ => Ok(ok(&shapes::file(&file))),
    }
}

/// `POST /v1/vector_stores/{id}/file_batches`: `file_ids` (or `files: [{file_id, attributes,
/// chunking_strategy}]`), each attached as by `.../files`.
pub async fn create_batch(
    cx: &Cx<'_>,
    row: &Value,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    cx.writable(row).await?;
    let body = json_body(cx, req).await?;
    let attributes = check_attributes(body.get("attributes"))?;
    let chunking = ingest::chunking(body.get("chunking_strategy"))?;
    let mut wanted: Vec<(String, Value, ChunkOptions)> = Vec::new();
    if let Some(ids) = body.get("file_ids").and_then(Value::as_array) {
        for id in ids {
            let id = id
                .as_str()
                .ok_or_else(|| RagError::BadRequest("file_ids must be strings".into()))?;
            wanted.push((id.to_string(), attributes.clone(), chunking.clone()));
        }
    }
    if let Some(files) = body.get("files").and_then(Value::as_array) {
        for f in files {
            let id = f
                .get("file_id")
                .and_then(Value::as_str)
                .ok_or_else(|| RagError::BadRequest("files[].file_id is required".into()))?;
            let attrs = match f.get("attributes") {
                Some(a) => check_attributes(Some(a))?,
                None => attributes.clone(),
            };
            let ch = match f.get("chunking_strategy") {
                Some(c) => ingest::chunking(Some(c))?,
                None => chunking.clone(),
            };
            wanted.push((id.to_string(), attrs, ch));
        }
    }
    if wanted.is_empty() || wanted.len() > 500 {
        return Err(RagError::BadRequest(
            "a batch names 1 to 500 files (file_ids or files)".into(),
        )
        .into());
    }
    let target = ingest::target_of(row)?;
    let batch_id = format!("vsfb_{}", uuid::Uuid::now_v7().simple());
    let ids: Vec<String> = wanted.iter().map(|(id, ..)| id.clone()).collect();
    let batch = cx
        .one(
            Query::InsertVectorStoreFileBatch,
            &[&batch_id, &target.store_id, &ids],
        )
        .await?
        .ok_or_else(|| RagError::BatchNotFound(batch_id.clone()))?;
    let mut made = Vec::new();
    for (id, attrs, ch) in wanted {
        made.push(attach(cx, &target, id.as_str(), attrs, ch, Some(batch_id.as_str())).await?);
    }
    let files: Vec<Value> = made;
    Ok(ok(&shapes::batch(&batch, &files)))
}

/// A file batch: get, cancel (POST), its files.
pub async fn batch(
    cx: &Cx<'_>,
    row: &Value,
    batch_id: &str,
    at: At,
    method: &Method,
    query: Option<&str>,
) -> Result<Response<Body>, GatewayError> {
    let vs = super::store_id(row);
    let mut b = cx
        .one(Query::GetVectorStoreFileBatch, &[&vs, &batch_id])
        .await?
        .ok_or_else(|| RagError::BatchNotFound(batch_id.to_string()))?;
    if at == At::BatchCancel && method == Method::POST {
        cx.writable(row).await?;
        cx.db()?
            .query(Query::CancelVectorStoreBatchFiles, &[&vs, &batch_id])
            .await
            .map_err(RagError::from)?;
        if let Some(c) = cx
            .one(
                Query::SetVectorStoreFileBatchStatus,
                &[&batch_id, &"cancelled"],
            )
            .await?
        {
            b = c;
        }
        cx.changed(vs).await;
    }
    let files: Vec<Value> = cx
        .rows(Query::ListVectorStoreFiles, &[&vs])
        .await?
        .into_iter()
        .filter(|f| f.get("batch_id").and_then(Value::as_str) == Some(batch_id))
        .collect();
    if at == At::BatchFiles {
        return Ok(ok(&page_of_files(&files, query)?));
    }
    Ok(ok(&shapes::batch(&b, &files)))
}
