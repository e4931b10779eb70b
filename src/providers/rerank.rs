//! `/v1/rerank` in Cohere's shape (what LiteLLM's proxy takes and answers), to and from the
//! rerank APIs of Cohere (v2), Jina and Voyage. Pure: no I/O.
//!
//! Request: `{model, query, documents: [str | {text, ...}], top_n?, rank_fields?,
//! return_documents?, max_chunks_per_doc?, max_tokens_per_doc?}`. Answer: `{id, results:
//! [{index, relevance_score, document?: {text}}], meta: {billed_units, tokens}}`.

use serde_json::{Map, Value, json};

/// Why a rerank request cannot be sent.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RerankError {
    #[error("rerank needs `query`, a string")]
    Query,
    #[error("rerank needs `documents`, a non-empty list of strings or objects")]
    Documents,
    #[error("the request body must be a JSON object")]
    NotObject,
}

/// Whose rerank API a deployment speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Cohere's own (and the many servers that copy it: Infinity, vLLM, ...).
    Cohere,
    /// Jina: Cohere's request; `usage.total_tokens` in the answer, documents as `{text}` or text.
    Jina,
    /// Voyage: `top_k` for `top_n`, results in `data`, documents as plain strings.
    Voyage,
}

impl Shape {
    pub fn of(provider: &str) -> Shape {
        match provider {
            "jina_ai" => Shape::Jina,
            "voyage" => Shape::Voyage,
            _ => Shape::Cohere,
        }
    }
}

/// The body to send for `req`, the model replaced by `model`.
pub fn to_request(shape: Shape, req: &Value, model: &str) -> Result<Value, RerankError> {
    let obj = req.as_object().ok_or(RerankError::NotObject)?;
    if !obj.get("query").is_some_and(Value::is_string) {
        return Err(RerankError::Query);
    }
    let docs = obj
        .get("documents")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .ok_or(RerankError::Documents)?;
    if !docs.iter().all(|d| d.is_string() || d.is_object()) {
        return Err(RerankError::Documents);
    }
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert("query".into(), obj["query"].clone());
    match shape {
        Shape::Cohere | Shape::Jina => {
            out.insert("documents".into(), Value::Array(docs.clone()));
            let keep: &[&str] = match shape {
                Shape::Cohere => &[
                    "top_n",
                    "rank_fields",
                    "return_documents",
                    "max_chunks_per_doc",
                    "max_tokens_per_doc",
                ],
                _ => &["top_n", "return_documents"],
            };
            for k in keep {
                if let Some(v) = obj.get(*k).filter(|v| !v.is_null()) {
                    out.insert((*k).into(), v.clone());
                }
            }
        }
        Shape::Voyage => {
            let texts: Vec<Value> = docs.iter().map(|d| json!(doc_text(d))).collect();
            out.insert("documents".into(), Value::Array(texts));
            if let Some(n) = obj.get("top_n").filter(|v| !v.is_null()) {
                out.insert("top_k".into(), n.clone());
            }
            if let Some(v) = obj.get("return_documents").filter(|v| !v.is_null()) {
                out.insert("return_documents".into(), v.clone());
            }
        }
    }
    Ok(Value::Object(out))
}

/// The text of a document given as a string or an object (`text`, else the object as JSON).
fn doc_text(d: &Value) -> String {
    match d {
        Value::String(s) => s.clone(),
        Value::Object(o) => match o.get("text").and_then(Value::as_str) {
            Some(t) => t.to_string(),
            None => d.to_string(),
        },
        other => other.to_string(),
    }
}

/// The provider's answer in Cohere's shape, with `id` when the provider gave none.
pub fn to_unified(shape: Shape, resp: &Value, id: &str) -> Value {
    let results_key = if shape == Shape::Voyage {
        "data"
    } else {
        "results"
    };
    let results: Vec<Value> = resp
        .get(results_key)
        .or_else(|| resp.get("results"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| {
            let mut o = Map::new();
            o.insert("index".into(), r.get("index").cloned().unwrap_or(json!(0)));
            o.insert(
                "relevance_score".into(),
                r.get("relevance_score").cloned().unwrap_or(json!(0.0)),
            );
            if let Some(d) = r.get("document").filter(|d| !d.is_null()) {
                let doc = match d {
                    Value::String(s) => json!({"text": s}),
                    other => other.clone(),
                };
                o.insert("document".into(), doc);
            }
            Value::Object(o)
        })
        .collect();
    let id = resp
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(id);
    let meta = match shape {
        Shape::Cohere => resp.get("meta").cloned().unwrap_or_else(|| json!({})),
        Shape::Jina | Shape::Voyage => {
            let total = resp
                .pointer("/usage/total_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            json!({"billed_units": {"total_tokens": total}, "tokens": {"input_tokens": total, "output_tokens": 0}})
        }
    };
    json!({"id": id, "results": results, "meta": meta})
}

/// Tokens (or search units, which Cohere bills instead) read from a unified answer, as prompt
/// tokens for spend.
pub fn billed_tokens(unified: &Value) -> u64 {
    let m = &unified["meta"];
    m.pointer("/tokens/input_tokens")
        .and_then(Value::as_u64)
        .or_else(|| {
            m.pointer("/billed_units/total_tokens")
                .and_then(Value::as_u64)
        })
        .or_else(|| {
            m.pointer("/billed_units/input_tokens")
                .and_then(Value::as_u64)
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> Value {
        json!({"model": "r", "query": "capital of France", "documents": ["Paris", {"text": "Berlin"}],
            "top_n": 1, "return_documents": true, "rank_fields": ["text"]})
    }

    #[test]
    fn requests_per_shape() {
        let c = to_request(Shape::Cohere, &req(), "rerank-v3.5").unwrap();
        assert_eq!(c["model"], "rerank-v3.5");
        assert_eq!(c["rank_fields"], json!(["text"]));
        assert_eq!(c["documents"][1]["text"], "Berlin");
        let j = to_request(Shape::Jina, &req(), "jina-reranker-v2").unwrap();
        assert!(j.get("rank_fields").is_none());
        assert_eq!(j["top_n"], 1);
        let v = to_request(Shape::Voyage, &req(), "rerank-2").unwrap();
        assert_eq!(v["documents"], json!(["Paris", "Berlin"]));
        assert_eq!(v["top_k"], 1);
        assert!(v.get("top_n").is_none());
    }

    #[test]
    fn bad_requests() {
        assert_eq!(
            to_request(Shape::Cohere, &json!({"documents": ["a"]}), "m"),
            Err(RerankError::Query)
        );
        assert_eq!(
            to_request(Shape::Cohere, &json!({"query": "q", "documents": []}), "m"),
            Err(RerankError::Documents)
        );
        assert_eq!(
            to_request(Shape::Cohere, &json!({"query": "q", "documents": [1]}), "m"),
            Err(RerankError::Documents)
        );
        assert_eq!(
            to_request(Shape::Cohere, &json!([1]), "m"),
            Err(RerankError::NotObject)
        );
    }

    #[test]
    fn answers_per_shape() {
        let voyage = json!({"object": "list", "data": [{"relevance_score": 0.9, "index": 0, "document": "Paris"}],
            "model": "rerank-2", "usage": {"total_tokens": 12}});
        let u = to_unified(Shape::Voyage, &voyage, "x");
        assert_eq!(u["id"], "x");
        assert_eq!(u["results"][0]["document"]["text"], "Paris");
        assert_eq!(billed_tokens(&u), 12);
        let jina = json!({"model": "j", "results": [{"index": 1, "relevance_score": 0.2, "document": {"text": "Berlin"}}],
            "usage": {"total_tokens": 7}});
        let u = to_unified(Shape::Jina, &jina, "y");
        assert_eq!(u["results"][0]["index"], 1);
        assert_eq!(billed_tokens(&u), 7);
        let cohere = json!({"id": "c1", "results": [{"index": 0, "relevance_score": 0.5}],
            "meta": {"billed_units": {"search_units": 1}}});
        let u = to_unified(Shape::Cohere, &cohere, "z");
        assert_eq!(u["id"], "c1");
        assert_eq!(u["meta"]["billed_units"]["search_units"], 1);
        assert_eq!(billed_tokens(&u), 0);
    }
}
