//! An OCR answer as the client gets it: the provider's JSON with `model` set to the model group
//! and `object: "ocr"` added when missing (the rest, pages and their images, as sent: only the
//! top-level members are located, nothing is re-serialized), and the pages it bills
//! (`usage_info.pages_processed`, else the pages returned; `pages_processed_annotation`).

use bytes::Bytes;
use serde::de::IgnoredAny;

use super::wire;
use crate::pipeline::members;
use crate::spend::cost::Pages;

/// The answer to send and its pages; `native`: the provider's answer unchanged.
pub fn shaped(body: Bytes, model: &str, native: bool) -> Result<(Bytes, Pages), &'static str> {
    let top = members::scan(&body).ok_or("not a JSON object")?;
    let value = |k: &str| top.get(&body, k).map(|m| &body[m.value.clone()]);
    let usage = value("usage_info")
        .map(wire::usage_info)
        .unwrap_or_default();
    let returned = || {
        value("pages")
            .and_then(|p| serde_json::from_slice::<Vec<IgnoredAny>>(p).ok())
            .map(|p| p.len() as u64)
    };
    let pages = Pages {
        processed: usage.pages_processed.or_else(returned).unwrap_or(0),
        annotated: usage.pages_processed_annotation.unwrap_or(0),
    };
    if native {
        return Ok((body, pages));
    }
    let model_json = serde_json::to_string(model).map_err(|_| "model")?;
    let mut out = Vec::with_capacity(body.len() + model_json.len() + 32);
    let mut added = Vec::new();
    if top.get(&body, "object").is_none() {
        added.extend_from_slice(br#""object":"ocr","#);
    }
    let model_at = top.get(&body, "model").map(|m| m.value.clone());
    if model_at.is_none() {
        added.extend_from_slice(b"\"model\":");
        added.extend_from_slice(model_json.as_bytes());
        added.push(b',');
    }
    if top.members.is_empty() {
        added.pop();
    }
    out.extend_from_slice(&body[..=top.open]);
    out.extend_from_slice(&added);
    match model_at {
        Some(at) => {
            out.extend_from_slice(&body[top.open + 1..at.start]);
            out.extend_from_slice(model_json.as_bytes());
            out.extend_from_slice(&body[at.end..]);
        }
        None => out.extend_from_slice(&body[top.open + 1..]),
    }
    Ok((Bytes::from(out), pages))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn shape(v: &str, native: bool) -> (Value, Pages) {
        let (b, p) = shaped(Bytes::from(v.to_string()), "ocr-group", native).unwrap();
        (serde_json::from_slice(&b).unwrap(), p)
    }

    #[test]
    fn model_and_object_set_pages_read() {
        let (v, p) = shape(
            r#"{"pages":[{"index":0,"markdown":"a"},{"index":1,"markdown":"b"}],"model":"mistral-ocr-2505-completion","document_annotation":null,"usage_info":{"pages_processed":2,"pages_processed_annotation":1,"doc_size_bytes":10}}"#,
            false,
        );
        assert_eq!(v["model"], "ocr-group");
        assert_eq!(v["object"], "ocr");
        assert_eq!(v["pages"][1]["markdown"], "b");
        assert_eq!(v["usage_info"]["doc_size_bytes"], 10);
        assert_eq!(
            p,
            Pages {
                processed: 2,
                annotated: 1
            }
        );
        // an `object` the provider set is kept; no usage: the pages returned
        let (v, p) = shape(r#"{ "object" : "x", "pages" : [ {}, {}, {} ] }"#, false);
        assert_eq!(
            v,
            json!({"model": "ocr-group", "object": "x", "pages": [{}, {}, {}]})
        );
        assert_eq!(p.processed, 3);
        let (v, _) = shape("{}", false);
        assert_eq!(v, json!({"object": "ocr", "model": "ocr-group"}));
    }

    #[test]
    fn native_is_unchanged() {
        let body = r#"{"pages":[],"model":"m","usage_info":{"pages_processed":4}}"#;
        let (b, p) = shaped(Bytes::from(body), "g", true).unwrap();
        assert_eq!(b, body);
        assert_eq!(p.processed, 4);
        assert!(shaped(Bytes::from("[1]"), "g", false).is_err());
    }
}
