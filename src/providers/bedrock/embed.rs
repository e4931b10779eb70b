//! OpenAI embeddings on Bedrock, through InvokeModel (`/model/{model}/invoke`).
//!
//! - Titan (`amazon.titan-embed-*`) embeds one text per call: one body
//!   `{"inputText", "dimensions"?}` per input, answered with `{"embedding",
//!   "inputTextTokenCount"}`.
//! - Cohere (`cohere.embed-*`) embeds a batch: `{"texts", "input_type"}` with at most
//!   [`COHERE_BATCH`] texts per call, answered with `{"embeddings": [[...]]}` (or
//!   `{"embeddings": {"float": [[...]]}}` when embedding types were asked for). `input_type`
//!   is the request's own `input_type` when given, else `search_document`.
//!
//! Cohere on Bedrock reports no token count in the body (only in a response header): when the
//! body has no `meta.billed_units.input_tokens`, usage is estimated from the `texts` it echoes,
//! one token per 4 bytes, rounded up per text.

use serde_json::{Value, json};

use super::TranslateError;

/// The most texts Cohere embeds in one call.
pub const COHERE_BATCH: usize = 96;

fn invalid(m: impl Into<String>) -> TranslateError {
    TranslateError::Invalid(m.into())
}

/// The family of an embedding model id (a cross-region prefix like `us.` is allowed).
enum Family {
    Titan,
    Cohere,
}

fn family(model: &str) -> Result<Family, TranslateError> {
    if model.contains("amazon.titan-embed") {
        Ok(Family::Titan)
    } else if model.contains("cohere.embed") {
        Ok(Family::Cohere)
    } else {
        Err(invalid(format!(
            "`{model}` is not a Bedrock embedding model this gateway supports (amazon.titan-embed-*, cohere.embed-*)"
        )))
    }
}

/// The texts of `input` (a string or a list of strings).
fn inputs(req: &Value) -> Result<Vec<&str>, TranslateError> {
    match req.get("input") {
        Some(Value::String(s)) => Ok(vec![s.as_str()]),
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|v| {
                v.as_str().ok_or_else(|| {
                    invalid(
                        "input must be a string or a list of strings (token ids are not supported)",
                    )
                })
            })
            .collect(),
        Some(Value::Array(_)) => Err(invalid("input must not be empty")),
        _ => Err(invalid("input must be a string or a list of strings")),
    }
}

/// The InvokeModel bodies for an OpenAI embeddings request `req` to `model`, one per upstream
/// call, in input order.
pub fn requests(model: &str, req: &Value) -> Result<Vec<Value>, TranslateError> {
    let texts = inputs(req)?;
    match family(model)? {
        Family::Titan => {
            let dimensions = match req.get("dimensions") {
                None | Some(Value::Null) => None,
                Some(d) => Some(
                    d.as_u64()
                        .ok_or_else(|| invalid("dimensions must be a positive integer"))?,
                ),
            };
            Ok(texts
                .into_iter()
                .map(|t| {
                    let mut body = json!({"inputText": t});
                    if let Some(d) = dimensions {
                        body["dimensions"] = json!(d);
                    }
                    body
                })
                .collect())
        }
        Family::Cohere => {
            let input_type = req
                .get("input_type")
                .and_then(Value::as_str)
                .unwrap_or("search_document");
            Ok(texts
                .chunks(COHERE_BATCH)
                .map(|batch| json!({"texts": batch, "input_type": input_type}))
                .collect())
        }
    }
}

/// Estimated tokens of the texts a Cohere response echoes (4 bytes a token, rounded up).
fn estimate_tokens(resp: &Value) -> u64 {
    resp.get("texts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|t| (t.len() as u64).div_ceil(4))
        .sum()
}

/// The OpenAI embeddings response for the InvokeModel `responses` (in the order of
/// [`requests`]); the family is read from each response's shape.
pub fn to_openai(model: &str, responses: &[Value]) -> Value {
    let mut data = Vec::new();
    let mut tokens = 0u64;
    let mut push = |embedding: &Value| {
        data.push(json!({"object": "embedding", "index": data.len(), "embedding": embedding}));
    };
    for r in responses {
        if let Some(e) = r.get("embedding") {
            push(e);
            tokens += r
                .get("inputTextTokenCount")
                .and_then(Value::as_u64)
                .unwrap_or(0);
        } else if let Some(e) = r.get("embeddings") {
            let list = e.get("float").unwrap_or(e);
            for v in list.as_array().into_iter().flatten() {
                push(v);
            }
            tokens += r
                .pointer("/meta/billed_units/input_tokens")
                .and_then(Value::as_u64)
                .unwrap_or_else(|| estimate_tokens(r));
        }
    }
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cohere_batches_of_96() {
        let input: Vec<String> = (0..200).map(|i| format!("t{i}")).collect();
        let bodies = requests("cohere.embed-english-v3", &json!({"input": input})).unwrap();
        let sizes: Vec<usize> = bodies
            .iter()
            .map(|b| b["texts"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, [96, 96, 8]);
        assert_eq!(bodies[2]["texts"][7], "t199");
    }

    #[test]
    fn cohere_input_type_and_embedding_types() {
        let bodies = requests(
            "us.cohere.embed-v4:0",
            &json!({"input": "q", "input_type": "search_query"}),
        )
        .unwrap();
        assert_eq!(
            bodies,
            [json!({"texts": ["q"], "input_type": "search_query"})]
        );
        let out = to_openai(
            "m",
            &[json!({"embeddings": {"float": [[0.5], [0.25]]}, "texts": ["abcde", "x"]})],
        );
        assert_eq!(out["data"][1]["embedding"], json!([0.25]));
        assert_eq!(out["data"][1]["index"], 1);
        assert_eq!(out["usage"]["prompt_tokens"], 3);
    }

    #[test]
    fn refusals() {
        for (model, req) in [
            ("amazon.titan-embed-text-v2:0", json!({"input": [1, 2, 3]})),
            ("amazon.titan-embed-text-v2:0", json!({"input": [[1, 2]]})),
            ("amazon.titan-embed-text-v2:0", json!({"input": []})),
            ("amazon.titan-embed-text-v2:0", json!({})),
            (
                "amazon.titan-embed-text-v2:0",
                json!({"input": "x", "dimensions": "big"}),
            ),
            ("meta.llama3", json!({"input": "x"})),
        ] {
            assert!(requests(model, &req).is_err(), "{model} {req}");
        }
    }
}
