//! Text of a scanned PDF (a document with no text layer) through an OCR model, for ingestion
//! (`ingest_options.ocr.model`): the document sent as a base64 data URL to `/v1/ocr` as the
//! caller (`crate::pipeline::made`: Mistral, OpenAI-compatible `/ocr`, Vertex AI's Mistral OCR;
//! model access, rate limits, budgets, its `aocr` SpendLogs row priced per page), the pages'
//! Markdown joined.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Value, json};

use super::{Cx, RagError};
use crate::error::GatewayError;
use crate::pipeline::made;
use crate::pipeline::parse::Expect;

/// The text of `pdf` read by the OCR model group `model`.
pub async fn pdf_text(cx: &Cx<'_>, model: &str, pdf: &[u8]) -> Result<String, GatewayError> {
    let data = base64::engine::general_purpose::STANDARD.encode(pdf);
    let body = json!({
        "model": model,
        "document": {"type": "document_url", "document_url": format!("data:application/pdf;base64,{data}")},
        "include_image_base64": false,
    });
    let (status, out) = made::whole(
        cx.state,
        &cx.who,
        Expect::Ocr,
        Bytes::from(body.to_string()),
    )
    .await?;
    let v: Value = serde_json::from_slice(&out).unwrap_or(Value::Null);
    if !status.is_success() {
        let message = (v.pointer("/error/message").and_then(Value::as_str))
            .map_or_else(|| format!("status {status}"), str::to_string);
        return Err(RagError::Read(format!("the OCR model {model} failed: {message}")).into());
    }
    let pages = v
        .get("pages")
        .and_then(Value::as_array)
        .ok_or_else(|| RagError::Read(format!("the OCR model {model} answered without pages")))?;
    let text: Vec<&str> = pages
        .iter()
        .filter_map(|p| p.get("markdown").and_then(Value::as_str))
        .collect();
    Ok(text.join("\n\n"))
}
