//! Where a document's bytes come from: a `/v1/files` id (read back from the deployment holding
//! the file), a URL (fetched behind the private-address guard, `crate::upstream::fetch`), or
//! bytes in hand (an upload). Each is a stream, read as ingestion goes.

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::Method;
use http_body_util::BodyExt;
use serde_json::Value;

use super::{Cx, RagError};
use crate::error::GatewayError;
use crate::managed;
use crate::upstream::{self, UpstreamError};

/// A document as it arrives.
pub struct Document {
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub body: BoxStream<'static, Result<Bytes, RagError>>,
}

impl Document {
    /// Bytes in hand.
    pub fn bytes(filename: Option<String>, content_type: Option<String>, b: Bytes) -> Self {
        Document {
            filename,
            content_type,
            body: futures_util::stream::once(async move { Ok(b) }).boxed(),
        }
    }
}

/// The file `id` (an id this gateway handed out, or for admins any id with the model named by
/// `hint`) read from the deployment holding it.
pub async fn file_id(cx: &Cx<'_>, id: &str, hint: Option<&str>) -> Result<Document, GatewayError> {
    let state = cx.state;
    let managed::files::Held { raw, dep, .. } =
        managed::files::on_deployment(state, cx.principal(), id, hint).await?;
    let meta_uri = dep
        .uri(&format!("/files/{raw}"))
        .ok_or_else(|| managed::ManagedError::Unsupported(dep.model_name.clone()))?;
    let meta =
        upstream::send_with(&state.client, &dep, Method::GET, &meta_uri, &[], false, &[]).await?;
    let (_, meta) = upstream::ok_body(meta).await?;
    let filename = serde_json::from_slice::<Value>(&meta).ok().and_then(|v| {
        v.get("filename")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let uri = dep
        .uri(&format!("/files/{raw}/content"))
        .ok_or_else(|| managed::ManagedError::Unsupported(dep.model_name.clone()))?;
    let resp = upstream::send_with(&state.client, &dep, Method::GET, &uri, &[], false, &[]).await?;
    if !resp.status().is_success() {
        return Err(UpstreamError::from_response(resp).await.into());
    }
    let content_type = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp
        .into_body()
        .into_data_stream()
        .map(|r| r.map_err(|e| RagError::Read(e.to_string())))
        .boxed();
    Ok(Document {
        filename,
        content_type,
        body,
    })
}

/// `url`, fetched under `rag_settings` (allowed hosts, size and time caps).
pub async fn url(cx: &Cx<'_>, url: &str) -> Result<Document, RagError> {
    let fetched = cx.state.url_fetcher.get(url).await?;
    Ok(Document {
        filename: fetched.filename,
        content_type: fetched.content_type,
        body: fetched.body.map(|r| r.map_err(RagError::from)).boxed(),
    })
}
