//! OpenAI embeddings <-> Gemini `batchEmbedContents` (AI Studio) and Vertex AI `predict`.

use serde_json::{Value, json};

use super::TranslateError;

fn invalid(m: impl Into<String>) -> TranslateError {
    TranslateError::Invalid(m.into())
}

/// The texts of an OpenAI embeddings `input` (a string or a list of strings; token arrays are
/// refused: Gemini takes text only).
fn texts(req: &Value) -> Result<Vec<&str>, TranslateError> {
    let texts = match req.get("input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str().ok_or_else(|| {
                    invalid("embedding input must be text (token arrays are not supported)")
                })
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(invalid("input must be a string or a list of strings")),
    };
    if texts.is_empty() {
        return Err(invalid("input must not be empty"));
    }
    Ok(texts)
}

/// A `batchEmbedContents` body for `model` from an OpenAI embeddings request (`dimensions`
/// becomes `outputDimensionality`).
pub fn to_batch_embed(model: &str, req: &Value) -> Result<Value, TranslateError> {
    let name = if model.starts_with("models/") {
        model.to_string()
    } else {
        format!("models/{model}")
    };
    let dims = req.get("dimensions").and_then(Value::as_u64);
    let requests: Vec<Value> = texts(req)?
        .into_iter()
        .map(|t| {
            let mut r = json!({"model": name, "content": {"parts": [{"text": t}]}});
            if let Some(d) = dims {
                r["outputDimensionality"] = json!(d);
            }
            r
        })
        .collect();
    Ok(json!({"requests": requests}))
}

/// OpenAI list response from a `batchEmbedContents` answer (`{"embeddings":[{"values":[...]}]}`).
/// Gemini reports no token counts: `prompt_tokens` is the caller's estimate.
pub fn to_openai(model: &str, resp: &Value, prompt_tokens: u64) -> Value {
    let data: Vec<Value> = resp
        .get("embeddings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, e)| {
            json!({"object": "embedding", "index": i,
                "embedding": e.get("values").cloned().unwrap_or(json!([]))})
        })
        .collect();
    list(model, data, prompt_tokens)
}

fn list(model: &str, data: Vec<Value>, tokens: u64) -> Value {
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })
}

/// A Vertex AI `predict` body (text embedding models) from an OpenAI embeddings request.
pub fn to_vertex_predict(req: &Value) -> Result<Value, TranslateError> {
    let instances: Vec<Value> = texts(req)?
        .into_iter()
        .map(|t| json!({"content": t}))
        .collect();
    let mut body = json!({"instances": instances});
    if let Some(d) = req.get("dimensions").and_then(Value::as_u64) {
        body["parameters"] = json!({"outputDimensionality": d});
    }
    Ok(body)
}

/// OpenAI list response from a Vertex AI `predict` answer; Vertex counts the tokens
/// (`statistics.token_count`).
pub fn from_vertex_predict(model: &str, resp: &Value) -> Value {
    let mut tokens = 0u64;
    let data: Vec<Value> = resp
        .get("predictions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, p)| {
            let e = p.get("embeddings").unwrap_or(&Value::Null);
            tokens += e
                .pointer("/statistics/token_count")
                .and_then(|n| n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)))
                .unwrap_or(0);
            json!({"object": "embedding", "index": i,
                "embedding": e.get("values").cloned().unwrap_or(json!([]))})
        })
        .collect();
    list(model, data, tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_arrays_are_refused() {
        assert!(to_batch_embed("m", &json!({"input": [[1, 2]]})).is_err());
        assert!(to_batch_embed("m", &json!({"input": []})).is_err());
        let b = to_batch_embed("models/m", &json!({"input": "hi"})).unwrap();
        assert_eq!(b["requests"][0]["model"], "models/m");
    }

    #[test]
    fn vertex_predict_counts_tokens() {
        let r = json!({"predictions": [{"embeddings": {"values": [0.1], "statistics": {"token_count": 3.0}}},
            {"embeddings": {"values": [0.2], "statistics": {"token_count": 4}}}]});
        let o = from_vertex_predict("text-embedding-005", &r);
        assert_eq!(o["usage"]["prompt_tokens"], 7);
        assert_eq!(o["data"][1]["embedding"], json!([0.2]));
        let b = to_vertex_predict(&json!({"input": ["a", "b"], "dimensions": 8})).unwrap();
        assert_eq!(
            b,
            json!({"instances": [{"content": "a"}, {"content": "b"}], "parameters": {"outputDimensionality": 8}})
        );
    }
}
