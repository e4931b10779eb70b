//! Issue 27: vector stores and RAG served by the gateway. Spec US9 scenarios 1–4 through plain
//! HTTP and the `openai` SDK (tests/python/vector_stores_sdk.py) against a mock provider we own:
//! its embeddings are "topic vectors" (how often each of eight words occurs), so the chunk that
//! talks about what the question asks wins; its chat model answers with the messages it was
//! sent, so a test reads the context the gateway injected.

mod access;
mod ingest;
mod stores;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::Method;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};
use crate::common::{MASTER_KEY, Resp, TestGateway, send};

/// The words whose counts are the mock's embedding dimensions.
pub const TOPICS: [&str; 8] = [
    "vacation", "expense", "security", "password", "holiday", "office", "salary", "laptop",
];

/// The mock's embedding of `text`.
pub fn topic_vector(text: &str, dims: usize) -> Vec<f32> {
    let lower = text.to_lowercase();
    let mut v: Vec<f32> = TOPICS
        .iter()
        .map(|t| lower.matches(t).count() as f32)
        .collect();
    v.resize(dims, 0.0);
    for x in &mut v {
        *x += 0.01;
    }
    v
}

/// What the mock provider holds.
#[derive(Default)]
pub struct Held {
    /// Uploaded files: id -> (filename, bytes).
    files: HashMap<String, (String, Bytes)>,
    /// Hosted vector stores: id -> file ids.
    stores: HashMap<String, Vec<String>>,
    /// Embedding calls so far.
    embeddings: usize,
    /// Embedding calls that asked for base64 vectors (answered so), and those refused for it.
    pub base64_asked: usize,
    pub base64_refused: usize,
}

/// The `filename` and content of the first file part of a multipart body.
fn multipart_file(r: &Recorded) -> Option<(String, Bytes)> {
    let ct = r.headers.get("content-type")?.to_str().ok()?;
    let boundary = ct.split("boundary=").nth(1)?.trim_matches('"');
    let body = &r.body[..];
    let marker = b"filename=\"";
    let at = body.windows(marker.len()).position(|w| w == marker)? + marker.len();
    let end = at + body[at..].iter().position(|b| *b == b'"')?;
    let name = String::from_utf8_lossy(&body[at..end]).into_owned();
    let start = end + body[end..].windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let close = format!("\r\n--{boundary}");
    let stop = start
        + body[start..]
            .windows(close.len())
            .position(|w| w == close.as_bytes())?;
    Some((name, Bytes::copy_from_slice(&body[start..stop])))
}

/// A mock OpenAI-compatible provider: embeddings (`emb`: 8 dimensions; `emb-wide`: 16;
/// `emb-broken`: fails from its second call; `emb-drift`: 16 dimensions from its second call;
/// `emb-floats`: refuses `encoding_format` with a 400, as a strict server might; the others
/// answer base64 vectors when asked),
/// chat (answers with the messages it got), rerank (Cohere's shape: documents about `salary`
/// first), files, and hosted vector stores.
pub async fn provider() -> (MockUpstream, Arc<Mutex<Held>>) {
    let held: Arc<Mutex<Held>> = Arc::default();
    let h = held.clone();
    let n = Arc::new(AtomicUsize::new(0));
    let up = MockUpstream::with(Arc::new(move |r: &Recorded| {
        let next = n.fetch_add(1, Ordering::SeqCst);
        let path = r.path.trim_start_matches("/v1");
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let json_reply = |v: Value| Reply::status(200, v);
        let mut held = h.lock();
        match (r.method.as_str(), parts.as_slice()) {
            ("POST", ["embeddings"]) => {
                held.embeddings += 1;
                let body = r.json();
                let model = body["model"].as_str().unwrap_or_default().to_string();
                let inputs: Vec<String> = match &body["input"] {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(a) => a.iter().map(|x| x.as_str().unwrap_or("").to_string()).collect(),
                    _ => vec![],
                };
                let calls = held.embeddings;
                let dims = match model.as_str() {
                    "emb-wide" => 16,
                    "emb-drift" if calls > 1 => 16,
                    _ => 8,
                };
                if model == "emb-broken" && calls > 1 {
                    return Reply::status(500, json!({"error": {"message": "embedding backend down", "type": "server_error"}}));
                }
                let base64 = body["encoding_format"] == "base64";
                if base64 && model == "emb-floats" {
                    held.base64_refused += 1;
                    return Reply::status(400, json!({"error": {"message": "Unrecognized request argument supplied: encoding_format", "type": "invalid_request_error"}}));
                }
                held.base64_asked += usize::from(base64);
                let data: Vec<Value> = inputs
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        let v = topic_vector(t, dims);
                        let embedding = if base64 {
                            json!(tianji::providers::embedding_list::encode(&v))
                        } else {
                            json!(v)
                        };
                        json!({"object": "embedding", "index": i, "embedding": embedding})
                    })
                    .collect();
                json_reply(json!({"object": "list", "model": model, "data": data,
                    "usage": {"prompt_tokens": inputs.len() * 10, "total_tokens": inputs.len() * 10}}))
            }
            ("POST", ["chat", "completions"]) => {
                let body = r.json();
                let said: Vec<String> = body["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| format!("{}: {}", m["role"].as_str().unwrap_or(""), m["content"].as_str().unwrap_or("")))
                    .collect();
                let content = said.join("\n---\n");
                if body["stream"].as_bool() == Some(true) {
                    let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                        "choices": [{"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": "stop"}]});
                    return Reply::Sse {
                        events: vec![format!("data: {chunk}\n\n"), "data: [DONE]\n\n".into()],
                        gap: std::time::Duration::ZERO,
                    };
                }
                json_reply(json!({"id": "c1", "object": "chat.completion", "created": 1, "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}}))
            }
            ("POST", ["rerank"] | ["v2", "rerank"]) => {
                let body = r.json();
                let docs = body["documents"].as_array().cloned().unwrap_or_default();
                let mut scored: Vec<(usize, f64)> = docs
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (i, if d.as_str().unwrap_or("").to_lowercase().contains("salary") { 0.9 } else { 0.1 }))
                    .collect();
                scored.sort_by(|a, b| b.1.total_cmp(&a.1));
                let results: Vec<Value> = scored.iter().map(|(i, s)| json!({"index": i, "relevance_score": s})).collect();
                json_reply(json!({"id": "rr1", "results": results, "meta": {"billed_units": {"search_units": 1}}}))
            }
            ("POST", ["ocr"]) => {
                let doc = r.json()["document"]["document_url"].as_str().unwrap_or_default().to_string();
                assert!(doc.starts_with("data:application/pdf;base64,"), "{doc}");
                json_reply(json!({"pages": [{"index": 0, "markdown": "Scanned page: the vacation policy grants 30 days.",
                    "images": [], "dimensions": {"dpi": 200, "height": 2200, "width": 1700}}],
                    "model": "mistral-ocr-latest", "usage_info": {"pages_processed": 1, "doc_size_bytes": 470}}))
            }
            ("POST", ["files"]) => {
                let (name, content) = multipart_file(r).unwrap_or_default();
                let id = format!("file-up{next}");
                let bytes = content.len();
                held.files.insert(id.clone(), (name.clone(), content));
                json_reply(json!({"id": id, "object": "file", "bytes": bytes, "created_at": 1,
                    "filename": name, "purpose": "assistants"}))
            }
            ("GET", ["files", id]) => match held.files.get(*id) {
                Some((name, c)) => json_reply(json!({"id": id, "object": "file", "bytes": c.len(),
                    "created_at": 1, "filename": name, "purpose": "assistants"})),
                None => Reply::status(404, json!({"error": {"message": "no such file"}})),
            },
            ("GET", ["files", id, "content"]) => match held.files.get(*id) {
                Some((_, c)) => Reply::Raw {
                    status: 200,
                    content_type: "application/octet-stream",
                    chunks: c.chunks(1000).map(Bytes::copy_from_slice).collect(),
                },
                None => Reply::status(404, json!({"error": {"message": "no such file"}})),
            },
            ("POST", ["vector_stores"]) => {
                let id = format!("vs_up{next}");
                let files: Vec<String> = r.json()["file_ids"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                held.stores.insert(id.clone(), files);
                json_reply(hosted_store(&id, r.json()["name"].as_str().unwrap_or("")))
            }
            ("GET", ["vector_stores", id]) if held.stores.contains_key(*id) => {
                json_reply(hosted_store(id, "hosted"))
            }
            ("DELETE", ["vector_stores", id]) => {
                held.stores.remove(*id);
                json_reply(json!({"id": id, "object": "vector_store.deleted", "deleted": true}))
            }
            ("POST", ["vector_stores", id, "files"]) => {
                let file = r.json()["file_id"].as_str().unwrap_or_default().to_string();
                held.stores.entry(id.to_string()).or_default().push(file.clone());
                json_reply(json!({"id": file, "object": "vector_store.file", "vector_store_id": id,
                    "status": "completed", "usage_bytes": 10, "created_at": 1, "last_error": null}))
            }
            ("POST", ["vector_stores", id, "search"]) => {
                let files = held.stores.get(*id).cloned().unwrap_or_default();
                let data: Vec<Value> = files
                    .iter()
                    .map(|f| json!({"file_id": f, "filename": "hosted.txt", "score": 0.8, "attributes": {},
                        "content": [{"type": "text", "text": "Hosted stores keep laptop policies."}]}))
                    .collect();
                json_reply(json!({"object": "vector_store.search_results.page", "search_query": [r.json()["query"]],
                    "data": data, "has_more": false, "next_page": null}))
            }
            _ => Reply::status(404, json!({"error": {"message": format!("mock: no {} {}", r.method, r.path)}})),
        }
    }))
    .await;
    (up, held)
}

fn hosted_store(id: &str, name: &str) -> Value {
    json!({"id": id, "object": "vector_store", "created_at": 1, "name": name, "usage_bytes": 0,
        "file_counts": {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0},
        "status": "completed", "expires_after": null, "expires_at": null, "last_active_at": 1, "metadata": {}})
}

/// The model list of the gateway under test, on the mock at `base`.
pub fn models(base: &str) -> String {
    let entry = |name: &str, model: &str| {
        format!(
            "  - model_name: {name}\n    tianji_params: {{model: \"{model}\", api_base: \"{base}\", api_key: sk-up}}\n"
        )
    };
    let mut s = String::from("model_list:\n");
    for (n, m) in [
        ("emb", "openai/emb"),
        ("emb-wide", "openai/emb-wide"),
        ("emb-broken", "openai/emb-broken"),
        ("emb-drift", "openai/emb-drift"),
        ("emb-floats", "openai/emb-floats"),
        ("chat", "openai/chat-model"),
        ("oai", "openai/gpt-4o"),
        ("ocr", "mistral/mistral-ocr-latest"),
    ] {
        s.push_str(&entry(n, m));
    }
    s.push_str(&format!(
        "  - model_name: rerank\n    tianji_params: {{model: cohere/rerank-v3.5, api_base: \"{}\", api_key: co-up}}\n",
        base.trim_end_matches("/v1")
    ));
    s
}

pub struct Setup {
    pub db: TestDb,
    pub up: MockUpstream,
    pub held: Arc<Mutex<Held>>,
    pub gw: TestGateway,
}

/// A gateway with a database on the mock provider; `extra` is appended to the config.
pub async fn setup(extra: &str) -> Setup {
    let db = TestDb::create().await;
    let (up, held) = provider().await;
    let yaml = format!(
        "{}general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{}\"\n{extra}",
        models(&up.base()),
        db.url
    );
    let gw = TestGateway::start(&yaml).await;
    Setup { db, up, held, gw }
}

pub fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// A JSON call with `key`.
pub async fn call(gw: &TestGateway, method: Method, path: &str, key: &str, body: Value) -> Resp {
    let b = if body.is_null() {
        Bytes::new()
    } else {
        Bytes::from(body.to_string())
    };
    send(
        method,
        &gw.url(path),
        &[
            ("authorization", &bearer(key)),
            ("content-type", "application/json"),
        ],
        b,
    )
    .await
}

/// A new virtual key.
pub async fn key(gw: &TestGateway, body: Value) -> String {
    let r = call(gw, Method::POST, "/key/generate", MASTER_KEY, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["key"].as_str().unwrap().to_string()
}

/// A multipart body of `fields` and one file.
pub fn form(fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> (String, Bytes) {
    let boundary = "tianjiragboundary";
    let mut b: Vec<u8> = Vec::new();
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    if let Some((name, ct, data)) = file {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {ct}\r\n\r\n")
                .as_bytes(),
        );
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/form-data; boundary={boundary}"),
        Bytes::from(b),
    )
}

/// `POST /v1/rag/ingest` of an upload.
pub async fn ingest_upload(
    gw: &TestGateway,
    key: &str,
    options: Value,
    file: (&str, &str, &[u8]),
) -> Resp {
    let opts = options.to_string();
    let (ct, body) = form(&[("ingest_options", &opts)], Some(file));
    send(
        Method::POST,
        &gw.url("/v1/rag/ingest"),
        &[("authorization", &bearer(key)), ("content-type", &ct)],
        body,
    )
    .await
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/rag/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// The handbook as plain text, one topic a paragraph.
pub const HANDBOOK: &str = "Office hours are from nine to five.\n\n\
The vacation policy grants 30 days of paid vacation per year.\n\n\
Expense reports are due on Fridays, with receipts for every expense.\n\n\
Security: rotate your password every ninety days; never share a password.\n\n\
Salary reviews happen every spring.\n";

/// Rows of a table (count).
pub async fn count(db: &TestDb, sql: &str) -> i64 {
    db.client().await.query_one(sql, &[]).await.unwrap().get(0)
}

/// `r` is an error of `status` whose message says `says`.
pub fn refused(r: &Resp, status: u16, says: &str) {
    let e = r.assert_error(status);
    let msg = e["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains(says), "{msg}");
}

/// `POST /v1/vector_stores/{vs}/search` of `query` with `key`.
pub async fn search(gw: &TestGateway, key: &str, vs: &str, query: &str) -> Resp {
    call(
        gw,
        Method::POST,
        &format!("/v1/vector_stores/{vs}/search"),
        key,
        json!({"query": query}),
    )
    .await
}
