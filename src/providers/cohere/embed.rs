//! OpenAI embeddings <-> Cohere `POST /v2/embed`.
//!
//! Request: `input` -> `texts`, `dimensions` -> `output_dimension`, `input_type` (a Cohere field
//! the client may send; `search_document` when absent), `embedding_types: ["float"]`.
//! Response: `embeddings.float` -> `data[].embedding`, `meta.billed_units.input_tokens` ->
//! `usage`. Cohere is always asked for floats; when the client asked for
//! `encoding_format: "base64"`, `providers::embedding_list::encode_base64` turns the translated
//! answer into OpenAI's base64 form.

use serde_json::{Map, Value, json};

use super::{TranslateError, count, invalid};

/// `input_type` when the request names none: embeddings stored for retrieval.
pub const DEFAULT_INPUT_TYPE: &str = "search_document";

/// Translate an OpenAI embeddings request for Cohere model `model`.
pub fn to_request(model: &str, req: &Value) -> Result<Value, TranslateError> {
    let texts: Vec<Value> = match req.get("input") {
        Some(Value::String(s)) => vec![json!(s)],
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(invalid("input must not be empty"));
        }
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items.clone(),
        Some(Value::Array(_)) => {
            return Err(invalid(
                "input must be a string or a list of strings (token arrays are not supported)",
            ));
        }
        _ => return Err(invalid("input must be a string or a list of strings")),
    };
    let input_type = match req.get("input_type") {
        None | Some(Value::Null) => DEFAULT_INPUT_TYPE,
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(invalid("input_type must be a string")),
    };
    match req.get("encoding_format") {
        None | Some(Value::Null) => {}
        Some(Value::String(f)) if f == "float" || f == "base64" => {}
        Some(_) => return Err(invalid("encoding_format must be `float` or `base64`")),
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("texts".into(), Value::Array(texts));
    body.insert("input_type".into(), json!(input_type));
    body.insert("embedding_types".into(), json!(["float"]));
    match req.get("dimensions") {
        None | Some(Value::Null) => {}
        Some(d) if d.is_u64() => {
            body.insert("output_dimension".into(), d.clone());
        }
        Some(_) => return Err(invalid("dimensions must be a positive integer")),
    }
    if let Some(t) = req.get("truncate").filter(|t| t.is_string()) {
        body.insert("truncate".into(), t.clone());
    }
    Ok(Value::Object(body))
}

/// Translate a `/v2/embed` response (`embeddings.float`, or the older bare list) into an
/// OpenAI embeddings list for `model`.
pub fn to_openai(model: &str, resp: &Value) -> Value {
    let vectors = match resp.get("embeddings") {
        Some(Value::Object(by_type)) => by_type.get("float"),
        other => other,
    }
    .and_then(Value::as_array);
    let data: Vec<Value> = vectors
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
        .collect();
    let meta = resp.get("meta").unwrap_or(&Value::Null);
    let tokens = count(meta.get("billed_units").and_then(|b| b.get("input_tokens")))
        .or_else(|| count(meta.get("tokens").and_then(|t| t.get("input_tokens"))))
        .unwrap_or(0);
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })
}
