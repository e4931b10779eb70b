//! Embeddings and reranks for the gateway's stores, made through the router for the caller
//! (`crate::pipeline::made`): its model access, limits and budgets apply, each call has its
//! SpendLogs row.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::RagError;
use crate::pipeline::made::{self, For};
use crate::pipeline::parse::Expect;
use crate::providers::embedding_list;
use crate::state::AppState;

#[derive(Deserialize)]
struct Answer {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(deserialize_with = "embedding_list::vector")]
    embedding: Vec<f32>,
    #[serde(default)]
    index: Option<usize>,
}

/// The message of an error answer.
fn message(bytes: &[u8]) -> String {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("error"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned())
}

/// The vectors of `texts` (in order) from the model group `model`, in one call.
///
/// The vectors are asked for in base64 (OpenAI's `encoding_format`; every native translation
/// honours it): less than half the bytes of decimal floats, read without parsing a float. A
/// provider that ignores the parameter answers floats, read as well; one that refuses it (400
/// or 422) is asked again for floats, and so is that model group from then on.
pub async fn embed(
    state: &AppState,
    who: &For,
    model: &str,
    texts: &[String],
) -> Result<Vec<Vec<f32>>, RagError> {
    let fail = |status: u16, message: String| RagError::Embedding {
        model: model.to_string(),
        status,
        message,
    };
    let call = |base64: bool| {
        let body = if base64 {
            json!({"model": model, "input": texts, "encoding_format": "base64"})
        } else {
            json!({"model": model, "input": texts})
        };
        made::whole(state, who, Expect::Embedding, Bytes::from(body.to_string()))
    };
    let base64 = !state.vector_stores.floats_only(model);
    let (mut status, mut bytes) = call(base64).await.map_err(|e| fail(502, e.to_string()))?;
    if base64 && matches!(status.as_u16(), 400 | 422) {
        let (s, b) = call(false).await.map_err(|e| fail(502, e.to_string()))?;
        if s.is_success() {
            state.vector_stores.set_floats_only(model);
        }
        (status, bytes) = (s, b);
    }
    if !status.is_success() {
        return Err(fail(status.as_u16(), message(&bytes)));
    }
    let answer: Answer = serde_json::from_slice(&bytes)
        .map_err(|e| fail(502, format!("its answer is not an embedding list: {e}")))?;
    if answer.data.len() != texts.len() {
        return Err(fail(
            502,
            format!(
                "it answered {} embeddings for {} inputs",
                answer.data.len(),
                texts.len()
            ),
        ));
    }
    let mut items = answer.data;
    if items.iter().all(|i| i.index.is_some()) {
        items.sort_by_key(|i| i.index);
    }
    let vectors: Vec<Vec<f32>> = items.into_iter().map(|i| i.embedding).collect();
    let dims = vectors.first().map_or(0, Vec::len);
    if dims == 0 || vectors.iter().any(|v| v.len() != dims) {
        return Err(fail(
            502,
            "its embeddings are empty or of different lengths".into(),
        ));
    }
    // no early exit: the whole vector's check vectorises
    if vectors
        .iter()
        .any(|v| !v.iter().fold(true, |ok, x| ok & x.is_finite()))
    {
        return Err(fail(
            502,
            "its embeddings hold NaN or infinite values".into(),
        ));
    }
    Ok(vectors)
}

#[derive(Deserialize)]
struct Ranked {
    results: Vec<RankedItem>,
}

#[derive(Deserialize)]
struct RankedItem {
    index: usize,
    #[serde(default)]
    relevance_score: f64,
}

/// `documents` reordered by the rerank model group `model` for `query`: (index, score), best
/// first, at most `top_n`.
pub async fn rerank(
    state: &AppState,
    who: &For,
    model: &str,
    query: &str,
    documents: &[String],
    top_n: usize,
) -> Result<Vec<(usize, f64)>, RagError> {
    let body = json!({"model": model, "query": query, "documents": documents, "top_n": top_n});
    let fail = |status: u16, message: String| RagError::Rerank {
        model: model.to_string(),
        status,
        message,
    };
    let (status, bytes) = made::whole(state, who, Expect::Rerank, Bytes::from(body.to_string()))
        .await
        .map_err(|e| fail(502, e.to_string()))?;
    if !status.is_success() {
        return Err(fail(status.as_u16(), message(&bytes)));
    }
    let ranked: Ranked = serde_json::from_slice(&bytes)
        .map_err(|e| fail(502, format!("its answer is not a rerank result: {e}")))?;
    Ok(ranked
        .results
        .into_iter()
        .filter(|r| r.index < documents.len())
        .take(top_n)
        .map(|r| (r.index, r.relevance_score))
        .collect())
}
