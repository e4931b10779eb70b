//! Searching the gateway's own stores: the query embedded with the store's model (the caller's
//! call), the instance's index searched among completed files passing the filters, the chunks'
//! text read back by id. `POST /v1/vector_stores/{id}/search` answers OpenAI's search page;
//! `/v1/rag/query` retrieves through [`retrieve`].

use std::collections::HashMap;

use http::{Request, Response};
use serde_json::{Value, json};

use super::{Cx, RagError, embed, ingest, json_body, ok};
use crate::body::Body;
use crate::error::GatewayError;
use crate::request_body::RequestBody;
use crate::store::Query;
use crate::vector_stores::filters::Filter;

/// Most results one search returns (OpenAI's limit).
pub const MAX_RESULTS: usize = 50;

/// A retrieved chunk.
#[derive(Debug, Clone)]
pub struct Found {
    pub store_id: String,
    pub file_id: String,
    pub filename: String,
    pub attributes: Value,
    pub score: f32,
    pub text: String,
}

impl Found {
    /// As one result of OpenAI's search page.
    pub fn result(&self) -> Value {
        json!({
            "file_id": self.file_id,
            "filename": self.filename,
            "score": self.score,
            "attributes": self.attributes,
            "content": [{"type": "text", "text": self.text}],
        })
    }
}

/// What to search for.
pub struct Ask<'a> {
    pub queries: &'a [String],
    pub k: usize,
    pub filter: Option<&'a Filter>,
    pub threshold: Option<f32>,
}

/// The best `ask.k` chunks of the store `row` for the queries (a chunk found by several queries
/// keeps its best score).
pub async fn retrieve(cx: &Cx<'_>, row: &Value, ask: &Ask<'_>) -> Result<Vec<Found>, RagError> {
    let target = ingest::target_of(row)?;
    let store = cx.db()?;
    let loaded = cx.state.vector_stores.get(store, &target.store_id).await?;
    if loaded.dims().is_none() || ask.queries.is_empty() {
        return Ok(Vec::new());
    }
    let vectors = embed::embed(cx.state, &cx.who, &target.embedding_model, ask.queries).await?;
    let mut best: HashMap<u64, crate::vector_stores::Hit> = HashMap::new();
    for v in vectors {
        let (l, filter, k) = (loaded.clone(), ask.filter.cloned(), ask.k);
        let hits = tokio::task::spawn_blocking(move || l.search(&v, k, filter.as_ref(), None))
            .await
            .map_err(|e| RagError::Read(format!("search task: {e}")))??;
        for h in hits {
            if ask.threshold.is_some_and(|t| h.score < t) {
                continue;
            }
            match best.get(&h.chunk_id) {
                Some(b) if b.score >= h.score => {}
                _ => {
                    best.insert(h.chunk_id, h);
                }
            }
        }
    }
    let mut hits: Vec<_> = best.into_values().collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    hits.truncate(ask.k);
    let ids: Vec<i64> = hits.iter().map(|h| h.chunk_id as i64).collect();
    let mut texts: HashMap<i64, String> = HashMap::new();
    for r in store.query(Query::GetVectorStoreChunks, &[&ids]).await? {
        if let (Ok(id), Ok(text)) = (r.try_get::<_, i64>(0), r.try_get::<_, String>(2)) {
            texts.insert(id, text);
        }
    }
    Ok(hits
        .into_iter()
        .filter_map(|h| {
            Some(Found {
                store_id: target.store_id.clone(),
                text: texts.remove(&(h.chunk_id as i64))?,
                file_id: h.file_id.to_string(),
                filename: h.filename,
                attributes: h.attributes,
                score: h.score,
            })
        })
        .collect())
}

/// `query`: a string or a list of strings.
pub fn queries(v: Option<&Value>) -> Result<Vec<String>, RagError> {
    let bad = || RagError::BadRequest("query must be a non-empty string or list of strings".into());
    let list = match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|q| q.as_str().map(str::to_string).ok_or_else(bad))
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(bad()),
    };
    if list.is_empty() || list.iter().any(|q| q.trim().is_empty()) || list.len() > 10 {
        return Err(bad());
    }
    Ok(list)
}

/// `filters`, when given.
pub fn filter(v: Option<&Value>) -> Result<Option<Filter>, RagError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(f) => Ok(Some(Filter::parse(f)?)),
    }
}

/// `POST /v1/vector_stores/{id}/search`
pub async fn serve(
    cx: &Cx<'_>,
    row: &Value,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let body = json_body(cx, req).await?;
    let qs = queries(body.get("query"))?;
    let k = match body.get("max_num_results") {
        None | Some(Value::Null) => 10,
        Some(v) => v
            .as_u64()
            .map(|n| n as usize)
            .filter(|n| (1..=MAX_RESULTS).contains(n))
            .ok_or_else(|| {
                RagError::BadRequest(format!(
                    "max_num_results must be between 1 and {MAX_RESULTS}"
                ))
            })?,
    };
    let flt = filter(body.get("filters"))?;
    let threshold = body
        .pointer("/ranking_options/score_threshold")
        .and_then(Value::as_f64)
        .map(|t| t as f32);
    let ask = Ask {
        queries: &qs,
        k,
        filter: flt.as_ref(),
        threshold,
    };
    let found = retrieve(cx, row, &ask).await?;
    Ok(ok(&json!({
        "object": "vector_store.search_results.page",
        "search_query": qs,
        "data": found.iter().map(Found::result).collect::<Vec<_>>(),
        "has_more": false,
        "next_page": null,
    })))
}
