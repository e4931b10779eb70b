//! LiteLLM's RAG endpoints.
//!
//! `POST /v1/rag/ingest`: a document (multipart `file` with `ingest_options` as a JSON string,
//! or JSON `{file_url | file_id, ingest_options}`) chunked, embedded and stored in a vector
//! store of the gateway (`ingest_options.vector_store.vector_store_id`, else a new one named
//! `ingest_options.name` or the file's name). An upload is read as it arrives; a URL or file id
//! is ingested before answering unless `vector_store.wait_for_ingestion` is false. A failure
//! leaves nothing half-written: the file is marked failed with its chunks deleted, and a store
//! made for this ingest is deleted.
//!
//! `POST /v1/rag/query`: the last user message searched in the stores of `retrieval_config`
//! (`vector_store_id` or a list, `top_k`, `filters`), the results optionally reranked
//! (`rerank: {enabled, model, top_n}`), then given to the model as numbered sources in a
//! system message; the completion is the caller's chat call (routed, limited, charged), its
//! answer carrying the sources as `search_results` (a streamed answer is passed on as it is).

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, Response, header};
use serde_json::{Map, Value, json};

use super::ingest::{self, FileSpec, Target};
use super::search::{self, Ask, Found};
use super::source::{self, Document};
use super::{Cx, RagError, embed, hosted, json_body, ok, stores};
use crate::body::Body;
use crate::error::GatewayError;
use crate::pipeline::made;
use crate::pipeline::parse::Expect;
use crate::request_body::RequestBody;
use crate::store::Query;

/// Results retrieved when `top_k` is not given.
const TOP_K: usize = 5;

/// What an ingest request asks for.
struct IngestAsk {
    options: Value,
    file_url: Option<String>,
    file_id: Option<String>,
}

/// `POST /v1/rag/ingest`
pub async fn ingest(
    cx: &Cx<'_>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    cx.db()?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if content_type.starts_with("multipart/") {
        return ingest_upload(cx, &content_type, req).await;
    }
    let body = json_body(cx, req).await?;
    let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let ask = IngestAsk {
        options: options_of(body.get("ingest_options"))?,
        file_url: s("file_url"),
        file_id: s("file_id"),
    };
    let provider = hosted_provider(&ask.options)?;
    if let Some(p) = provider {
        let hint = crate::managed::model_hint(&cx.who.headers, None);
        let upload = match (&ask.file_url, &ask.file_id) {
            (Some(url), None) => hosted::Upload::Document(source::url(cx, url).await?),
            (None, Some(id)) => hosted::Upload::FileId(id.clone()),
            _ => {
                return Err(RagError::BadRequest(
                    "give one of file (a multipart upload), file_url or file_id".into(),
                )
                .into());
            }
        };
        return hosted::ingest(cx, p, &ask.options, upload, hint.as_deref()).await;
    }
    let (file_id, filename) = match (&ask.file_url, &ask.file_id) {
        (Some(url), None) => (
            format!("file-rag-{}", uuid::Uuid::now_v7().simple()),
            url_name(url),
        ),
        (None, Some(id)) => (id.clone(), String::new()),
        _ => {
            return Err(RagError::BadRequest(
                "give one of file (a multipart upload), file_url or file_id".into(),
            )
            .into());
        }
    };
    let plan = plan(cx, &ask.options, &filename, &file_id).await?;
    let wait = ask
        .options
        .pointer("/vector_store/wait_for_ingestion")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let url = ask.file_url.clone();
    if !wait {
        let (state, who) = (cx.state.clone(), cx.who.clone());
        let (target, spec) = (plan.target.clone(), plan.spec.clone());
        tokio::spawn(async move {
            let cx = Cx {
                state: &state,
                store: state.store.clone(),
                who: who.clone(),
            };
            match fetch(&cx, url.as_deref(), &spec.file_id).await {
                Ok(doc) => drop(ingest::run(&state, &who, &target, &spec, doc).await),
                Err(e) => drop(ingest::unreadable(&state, &target, &spec, e).await),
            }
        });
        return Ok(ok(&answer(&plan, "in_progress", None)));
    }
    let doc = match fetch(cx, url.as_deref(), &file_id).await {
        Ok(d) => d,
        Err(e) => {
            let done = ingest::unreadable(cx.state, &plan.target, &plan.spec, e).await;
            return finish(cx, &plan, done).await;
        }
    };
    let done = ingest::run(cx.state, &cx.who, &plan.target, &plan.spec, doc).await;
    finish(cx, &plan, done).await
}

/// The document of a URL or a file id.
async fn fetch(cx: &Cx<'_>, url: Option<&str>, file_id: &str) -> Result<Document, RagError> {
    match url {
        Some(u) => source::url(cx, u).await,
        None => {
            let hint = crate::managed::model_hint(&cx.who.headers, None);
            source::file_id(cx, file_id, hint.as_deref())
                .await
                .map_err(|e| RagError::Read(e.to_string()))
        }
    }
}

/// A multipart upload: `ingest_options` (before the file, or the file is held until it comes)
/// and `file`.
async fn ingest_upload(
    cx: &Cx<'_>,
    content_type: &str,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        RagError::BadRequest("a multipart upload needs a boundary in its Content-Type".into())
    })?;
    let stream = http_body_util::BodyExt::into_data_stream(req.into_body());
    let mut mp = multer::Multipart::new(stream, boundary);
    let bad = |e: multer::Error| {
        RagError::BadRequest(format!("the upload is not a valid multipart form: {e}"))
    };
    let max = cx.state.config().rag_settings.max_file_bytes();
    let mut options: Option<Value> = None;
    let mut held: Option<(Option<String>, Option<String>, Bytes)> = None;
    let mut streamed: Option<multer::Field<'static>> = None;
    while let Some(field) = mp.next_field().await.map_err(bad)? {
        match field.name().unwrap_or_default() {
            "ingest_options" => {
                let text = field.text().await.map_err(bad)?;
                let v: Value = serde_json::from_str(&text).map_err(|e| {
                    RagError::BadRequest(format!("ingest_options is not JSON: {e}"))
                })?;
                options = Some(options_of(Some(&v))?);
            }
            "file" if options.is_some() => {
                streamed = Some(field);
                break;
            }
            "file" => {
                let name = field.file_name().map(str::to_string);
                let ct = field.content_type().map(|m| m.to_string());
                let mut buf = Vec::new();
                let mut field = field;
                while let Some(piece) = field.chunk().await.map_err(bad)? {
                    buf.extend_from_slice(&piece);
                    if buf.len() as u64 > max {
                        return Err(
                            RagError::TooLarge(cx.state.config().rag_settings.max_file_mb).into(),
                        );
                    }
                }
                held = Some((name, ct, Bytes::from(buf)));
            }
            _ => {}
        }
    }
    let options = options.unwrap_or_else(|| json!({}));
    let doc = match (streamed, held) {
        (Some(field), _) => {
            let filename = field.file_name().map(str::to_string);
            let content_type = field.content_type().map(|m| m.to_string());
            Document {
                filename,
                content_type,
                body: field
                    .map(move |r| r.map_err(|e| RagError::Read(e.to_string())))
                    .boxed(),
            }
        }
        (None, Some((name, ct, bytes))) => Document::bytes(name, ct, bytes),
        (None, None) => {
            return Err(RagError::BadRequest("the upload has no `file` field".into()).into());
        }
    };
    if let Some(p) = hosted_provider(&options)? {
        let hint = crate::managed::model_hint(&cx.who.headers, None);
        let answer = hosted::ingest(
            cx,
            p,
            &options,
            hosted::Upload::Document(doc),
            hint.as_deref(),
        )
        .await;
        drop(mp);
        return answer;
    }
    let filename = doc.filename.clone().unwrap_or_default();
    let file_id = format!("file-rag-{}", uuid::Uuid::now_v7().simple());
    let plan = plan(cx, &options, &filename, &file_id).await?;
    let done = ingest::run(cx.state, &cx.who, &plan.target, &plan.spec, doc).await;
    drop(mp);
    finish(cx, &plan, done).await
}

/// The store and file an ingest writes.
struct Plan {
    id: String,
    target: Target,
    spec: FileSpec,
    /// The store was made for this ingest (deleted if it fails).
    made: bool,
}

/// `ingest_options` as an object.
fn options_of(v: Option<&Value>) -> Result<Value, RagError> {
    match v {
        None | Some(Value::Null) => Ok(json!({})),
        Some(Value::String(s)) => serde_json::from_str::<Value>(s)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| RagError::BadRequest("ingest_options must be a JSON object".into())),
        Some(o @ Value::Object(_)) => Ok(o.clone()),
        Some(_) => Err(RagError::BadRequest(
            "ingest_options must be a JSON object".into(),
        )),
    }
}

fn url_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    path.rsplit('/').next().unwrap_or_default().to_string()
}

/// The provider of a hosted store the ingest names (`None`: the gateway's own).
fn hosted_provider(options: &Value) -> Result<Option<&'static str>, RagError> {
    let vs = options.get("vector_store").cloned().unwrap_or(json!({}));
    Ok(match stores::provider(&vs)? {
        "openai" => Some("openai"),
        "azure" => Some("azure"),
        _ => None,
    })
}

/// Find or make the store, and write the file's row.
async fn plan(
    cx: &Cx<'_>,
    options: &Value,
    filename: &str,
    file_id: &str,
) -> Result<Plan, GatewayError> {
    let vs = options.get("vector_store").cloned().unwrap_or(json!({}));
    let chunking = ingest::chunking(options.get("chunking_strategy"))?;
    let model = options
        .pointer("/embedding/model")
        .and_then(Value::as_str)
        .map(str::to_string);
    let (row, made) = match vs.get("vector_store_id").and_then(Value::as_str) {
        Some(id) => {
            let row = cx.row(id).await?;
            if hosted::is_hosted(&row) {
                return Err(RagError::BadRequest(format!(
                    "vector store {id} is hosted by a provider: ingest into it through /v1/files and /v1/vector_stores/{id}/files"
                ))
                .into());
            }
            cx.writable(&row).await?;
            cx.usable(&row)?;
            if let (Some(m), Some(has)) = (&model, ingest::store_model(&row))
                && *m != has
            {
                return Err(RagError::BadRequest(format!(
                    "vector store {id} embeds with {has}; ingest_options.embedding.model asks for {m}"
                ))
                .into());
            }
            (row, false)
        }
        None => {
            let name = options
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .unwrap_or(if filename.is_empty() {
                    "rag-ingest"
                } else {
                    filename
                });
            let mut body = json!({"name": name});
            if let Some(m) = &model {
                body["embedding_model"] = json!(m);
            }
            if let Some(days) = vs.get("ttl_days").and_then(Value::as_i64) {
                body["expires_after"] = json!({"anchor": "last_active_at", "days": days});
            }
            (stores::create(cx, &body).await?, true)
        }
    };
    let target = ingest::target_of(&row)?;
    let spec = FileSpec {
        file_id: file_id.to_string(),
        attributes: json!({}),
        chunking,
        ocr_model: options
            .pointer("/ocr/model")
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    if ingest::add_file_row(cx, &target, &spec, filename, None)
        .await?
        .is_none()
    {
        return Err(RagError::BadRequest(format!(
            "vector store {} already holds file {file_id}",
            target.store_id
        ))
        .into());
    }
    Ok(Plan {
        id: format!("ingest_{}", uuid::Uuid::now_v7().simple()),
        target,
        spec,
        made,
    })
}

fn answer(plan: &Plan, status: &str, error: Option<&RagError>) -> Value {
    json!({
        "id": plan.id,
        "object": "rag.ingest",
        "status": status,
        "vector_store_id": plan.target.store_id,
        "file_id": plan.spec.file_id,
        "error": error.map(ToString::to_string),
        "error_status_code": error.map(|e| e.status().as_u16()),
    })
}

/// The answer of a finished ingest; a failure's store (when made for it) deleted.
async fn finish(
    cx: &Cx<'_>,
    plan: &Plan,
    done: ingest::Done,
) -> Result<Response<Body>, GatewayError> {
    match done.error {
        None => Ok(ok(&answer(plan, "completed", None))),
        Some(e) => {
            if plan.made {
                let id = plan.target.store_id.as_str();
                let _ = cx.one(Query::DeleteVectorStore, &[&id]).await;
                cx.state.vector_stores.forget(id);
                cx.changed(id).await;
            }
            Err(e.into())
        }
    }
}

/// The text of the last user message (string content or its text parts).
fn last_user_text(messages: &[Value]) -> Option<String> {
    let m = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
    match m.get("content")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let t: Vec<&str> = parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            (!t.is_empty()).then(|| t.join("\n"))
        }
        _ => None,
    }
    .filter(|t| !t.trim().is_empty())
}

/// `POST /v1/rag/query`
pub async fn query(cx: &Cx<'_>, req: Request<RequestBody>) -> Result<Response<Body>, GatewayError> {
    let mut body = json_body(cx, req).await?;
    let config = body
        .get("retrieval_config")
        .cloned()
        .ok_or_else(|| RagError::BadRequest("retrieval_config is required".into()))?;
    let ids: Vec<String> = match config
        .get("vector_store_id")
        .or_else(|| config.get("vector_store_ids"))
    {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    if ids.is_empty() || ids.len() > 10 {
        return Err(RagError::BadRequest(
            "retrieval_config.vector_store_id must name 1 to 10 vector stores".into(),
        )
        .into());
    }
    let top_k = match config.get("top_k") {
        None | Some(Value::Null) => TOP_K,
        Some(v) => v
            .as_u64()
            .map(|n| n as usize)
            .filter(|n| (1..=search::MAX_RESULTS).contains(n))
            .ok_or_else(|| {
                RagError::BadRequest(format!(
                    "retrieval_config.top_k must be between 1 and {}",
                    search::MAX_RESULTS
                ))
            })?,
    };
    let filter = search::filter(config.get("filters"))?;
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| RagError::BadRequest("messages is required".into()))?;
    let question = last_user_text(&messages)
        .ok_or_else(|| RagError::BadRequest("messages must end with a user question".into()))?;
    let queries = vec![question.clone()];
    let mut found: Vec<Found> = Vec::new();
    for id in &ids {
        let row = cx.row(id).await?;
        if hosted::is_hosted(&row) {
            found.extend(hosted::search(cx, &row, &queries, top_k, config.get("filters")).await?);
        } else {
            cx.usable(&row)?;
            let ask = Ask {
                queries: &queries,
                k: top_k,
                filter: filter.as_ref(),
                threshold: None,
            };
            found.extend(search::retrieve(cx, &row, &ask).await?);
        }
    }
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    found.truncate(top_k);
    let rerank = body.get("rerank").cloned().unwrap_or(Value::Null);
    let mut scores: Vec<Option<f64>> = vec![None; found.len()];
    if rerank.get("enabled").and_then(Value::as_bool) == Some(true) && !found.is_empty() {
        let model = rerank.get("model").and_then(Value::as_str).ok_or_else(|| {
            RagError::BadRequest("rerank.model is required when rerank is enabled".into())
        })?;
        let top_n = rerank
            .get("top_n")
            .and_then(Value::as_u64)
            .map_or(found.len(), |n| n as usize)
            .clamp(1, found.len());
        let docs: Vec<String> = found.iter().map(|f| f.text.clone()).collect();
        let order = embed::rerank(cx.state, &cx.who, model, &question, &docs, top_n).await?;
        let mut reordered = Vec::with_capacity(order.len());
        scores = Vec::with_capacity(order.len());
        for (i, s) in order {
            reordered.push(found[i].clone());
            scores.push(Some(s));
        }
        found = reordered;
    }
    let sources: Vec<Value> = found
        .iter()
        .zip(&scores)
        .enumerate()
        .map(|(i, (f, rs))| {
            let mut r = f.result();
            r["index"] = json!(i + 1);
            r["vector_store_id"] = json!(f.store_id);
            if let Some(s) = rs {
                r["rerank_score"] = json!(s);
            }
            r
        })
        .collect();
    let o = body
        .as_object_mut()
        .ok_or_else(|| RagError::BadRequest("the body must be an object".into()))?;
    o.remove("retrieval_config");
    o.remove("rerank");
    o.insert(
        "messages".into(),
        Value::Array(with_context(messages, &found)),
    );
    let stream = o.get("stream").and_then(Value::as_bool) == Some(true);
    let raw = Bytes::from(body.to_string());
    if stream {
        return Ok(made::call(cx.state, &cx.who, Expect::Chat, raw).await);
    }
    let (status, bytes) = made::whole(cx.state, &cx.who, Expect::Chat, raw).await?;
    let mut resp = match serde_json::from_slice::<Map<String, Value>>(&bytes) {
        Ok(mut answer) if status.is_success() => {
            answer.insert(
                "search_results".into(),
                json!({
                    "object": "vector_store.search_results.page",
                    "search_query": queries,
                    "data": sources,
                }),
            );
            crate::error::json_response(status, Bytes::from(Value::Object(answer).to_string()))
        }
        _ => crate::error::json_response(status, bytes),
    };
    let _ = &mut resp;
    Ok(resp)
}

/// `messages` with the sources given first, numbered for citing, in a system message after
/// the caller's own leading system messages.
fn with_context(messages: Vec<Value>, found: &[Found]) -> Vec<Value> {
    let mut text = String::from(
        "Answer using the context below. Cite the sources you use by their number, like [1].\n\nContext:\n",
    );
    if found.is_empty() {
        text.push_str("\n(no relevant documents were found)\n");
    }
    for (i, f) in found.iter().enumerate() {
        let name = if f.filename.is_empty() {
            &f.file_id
        } else {
            &f.filename
        };
        text.push_str(&format!("\n[{}] {}\n{}\n", i + 1, name, f.text.trim()));
    }
    let at = messages
        .iter()
        .take_while(|m| {
            matches!(
                m.get("role").and_then(Value::as_str),
                Some("system" | "developer")
            )
        })
        .count();
    let mut out = messages;
    out.insert(at, json!({"role": "system", "content": text}));
    out
}
