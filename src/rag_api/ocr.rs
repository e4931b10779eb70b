//! Text of a scanned PDF (a document with no text layer) through an OCR model, for ingestion
//! (`ingest_options.ocr.model`): the document sent as a base64 data URL to the model's
//! deployment in Mistral's OCR shape (`POST {api_base}/ocr`, also Azure AI and Vertex hosting
//! Mistral OCR), the pages' Markdown joined. The call is the caller's (model access, rate limits,
//! its `aocr` SpendLogs row).

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Value, json};

use super::{Cx, RagError};
use crate::error::GatewayError;
use crate::upstream;

/// The text of `pdf` read by the OCR model group `model`.
pub async fn pdf_text(cx: &Cx<'_>, model: &str, pdf: &[u8]) -> Result<String, GatewayError> {
    let dep = crate::managed::pick(cx.state, cx.principal(), model).await?;
    let uri = super::endpoint(&dep, "/ocr")?;
    let data = base64::engine::general_purpose::STANDARD.encode(pdf);
    let body = json!({
        "model": dep.upstream_model,
        "document": {"type": "document_url", "document_url": format!("data:application/pdf;base64,{data}")},
        "include_image_base64": false,
    });
    let mut rec = super::admit(cx, &dep, "aocr", "/v1/ocr").await?;
    let resp = upstream::post(
        &cx.state.client,
        &dep,
        &uri,
        &[Bytes::from(body.to_string())],
        false,
    )
    .await?;
    rec.status = resp.status().as_u16();
    let (_, out) = upstream::ok_body(resp).await?;
    let v: Value = serde_json::from_slice(&out)
        .map_err(|e| GatewayError::Upstream(upstream::UpstreamError::Body(e.to_string())))?;
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
