//! `/v1/ocr` (one attempt, from call.rs): Mistral's OCR request sent to the deployment's OCR
//! endpoint with `model` swapped for the deployment's: Mistral (or any OpenAI-compatible server
//! with `/ocr`), Mistral OCR on Vertex AI (`publishers/mistralai/...:rawPredict` with the
//! service account's token) and Azure AI (`{api_base}/providers/mistral/azure/ocr`). Vertex and
//! Azure AI cannot fetch URLs: a document given by URL is fetched here (the URL fetcher's
//! guard, size and time caps) and sent as a `data:` URI. The answer gets `object: "ocr"` and
//! the model group as its `model` (unless `x-req-format: native`); its pages are billed.
//!
//! A multipart upload (`file` and the other fields) becomes the JSON request first (form.rs).

mod answer;
pub mod form;

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, Uri};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::time::Instant;

use super::RequestCtx;
use super::parse::ParsedRequest;
use crate::body::Body;
use crate::error::GatewayError;
use crate::providers::ocr as wire;
use crate::router::Deployment;
use crate::router::wire::Wire;
use crate::state::AppState;
use crate::upstream::fetch::FetchError;
use crate::upstream::{self, Errors, sse};

/// Why an OCR request cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    #[error(
        "Model {model} cannot do OCR: its provider '{provider}' has no OCR API here. /v1/ocr serves Mistral OCR models (mistral/..., vertex_ai/mistral-ocr-..., azure_ai/...) and OpenAI-compatible servers with /ocr"
    )]
    NotOcr { model: String, provider: String },
    #[error("Invalid parameter document: {0}")]
    Document(Cow<'static, str>),
    #[error("{0}")]
    Form(Cow<'static, str>),
    #[error("Invalid `req_format`: {0:?}. Expected one of litellm, native.")]
    Format(String),
    #[error("The document could not be fetched to send it inline: {0}")]
    Fetch(#[from] FetchError),
}

impl OcrError {
    pub fn status(&self) -> StatusCode {
        match self {
            OcrError::Fetch(e) => e.status(),
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

crate::error::feature_error!(
    OcrError,
    "ocr",
    fn param(&self) -> Option<&str> {
        match self {
            OcrError::Document(_) => Some("document"),
            OcrError::Format(_) => Some("req_format"),
            _ => None,
        }
    }
);

/// The document of a request, as far as the gateway reads it.
#[derive(Deserialize)]
struct Asked<'a> {
    #[serde(borrow, default)]
    document: Option<&'a RawValue>,
    #[serde(borrow, default)]
    req_format: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Doc<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    document_url: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    image_url: Option<&'a RawValue>,
}

/// `image_url` as a string or `{"url": ...}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum ImageUrl<'a> {
    Plain(#[serde(borrow)] Cow<'a, str>),
    Object {
        #[serde(borrow)]
        url: Cow<'a, str>,
    },
}

/// What the gateway needs of a request's document.
#[derive(Debug, PartialEq, Eq)]
pub struct Document {
    /// `document_url` or `image_url`.
    pub kind: &'static str,
    /// The URL when it is not a `data:` URI (a provider that cannot fetch gets it inline).
    pub remote: Option<String>,
}

/// Check an OCR request's `document` (LiteLLM's rules: `document_url` or `image_url` with a
/// URL; `file` only as a multipart upload; no provider file ids such as `reducto://`).
pub fn document(raw: &[u8]) -> Result<Document, OcrError> {
    let bad = |m: &'static str| OcrError::Document(Cow::Borrowed(m));
    let asked: Asked<'_> =
        serde_json::from_slice(raw).map_err(|e| OcrError::Document(e.to_string().into()))?;
    let doc = asked.document.ok_or(bad("is required"))?;
    let doc: Doc<'_> = serde_json::from_str(doc.get())
        .map_err(|_| bad("must be an object with `type` and its URL"))?;
    let (kind, url) = match doc.kind.as_deref() {
        Some("document_url") => ("document_url", doc.document_url),
        Some("image_url") => {
            let url = match doc.image_url {
                Some(v) => match serde_json::from_str::<ImageUrl<'_>>(v.get()) {
                    Ok(ImageUrl::Plain(u) | ImageUrl::Object { url: u }) => Some(u),
                    Err(_) => return Err(bad("image_url must be a URL or {\"url\": ...}")),
                },
                None => None,
            };
            ("image_url", url)
        }
        Some("file") => {
            return Err(bad(
                "type 'file' is not supported through the JSON API: upload the file as multipart/form-data with a `file` field, or use a document_url or image_url",
            ));
        }
        _ => return Err(bad("`type` must be document_url or image_url")),
    };
    let url = url
        .filter(|u| !u.trim().is_empty())
        .ok_or(OcrError::Document(
            format!("a {kind} document needs its `{kind}`").into(),
        ))?;
    if url.starts_with("reducto://") {
        return Err(bad(
            "provider file ids (reducto://) are not accepted: upload the file in the request, or send a data URI",
        ));
    }
    Ok(Document {
        kind,
        remote: (!url.starts_with("data:")).then(|| url.into_owned()),
    })
}

/// Whether the answer is the provider's own (`x-req-format: native`, or `req_format` in the
/// body, which wins), and whether the body has `req_format` (not sent on).
fn format(headers: &HeaderMap, raw: &[u8]) -> Result<(bool, bool), OcrError> {
    let in_body = crate::literal!(b"\"req_format\"")
        .find(raw)
        .and_then(|_| serde_json::from_slice::<Asked<'_>>(raw).ok())
        .and_then(|a| a.req_format.map(|v| v.get().to_string()));
    let asked = match &in_body {
        Some(v) => serde_json::from_str::<String>(v).map_err(|_| OcrError::Format(v.clone()))?,
        None => match headers.get("x-req-format") {
            Some(h) => (h.to_str().unwrap_or("?").trim().to_ascii_lowercase()).to_string(),
            None => return Ok((false, false)),
        },
    };
    match asked.as_str() {
        "native" => Ok((true, in_body.is_some())),
        "litellm" | "tianji" => Ok((false, in_body.is_some())),
        _ => Err(OcrError::Format(asked)),
    }
}

/// Where a deployment's OCR calls go.
struct Target {
    uri: Uri,
    /// It cannot fetch URLs: documents go inline.
    inline: bool,
    /// Its errors are a native provider's (Vertex AI).
    native: Option<&'static str>,
}

/// The OCR endpoint of `dep`, or the 400 of a deployment that has none.
fn target(dep: &Deployment, model: &str) -> Result<Target, GatewayError> {
    let provider = dep.provider.name();
    let not_ocr = || OcrError::NotOcr {
        model: model.to_string(),
        provider: provider.to_string(),
    };
    let parse = |s: String| {
        s.parse::<Uri>()
            .map_err(|e| GatewayError::Internal(format!("bad OCR URL: {e}")))
    };
    match (&dep.wire, &dep.endpoints) {
        (Wire::Gemini(g), _) => match &g.mistral_ocr {
            Some(uri) => Ok(Target {
                uri: uri.clone(),
                inline: true,
                native: Some("vertex_ai"),
            }),
            None => Err(not_ocr().into()),
        },
        // a provider this build does not serve: its usual 501
        _ if dep.provider.not_served().is_some() => Err(super::compatible::not_served(dep, model)),
        // Azure AI Foundry's Mistral OCR (the deployment's api_base and credential headers)
        _ if provider == "azure_ai" && !dep.api_base.is_empty() => Ok(Target {
            uri: parse(wire::azure_ai_url(&dep.api_base))?,
            inline: true,
            native: None,
        }),
        (Wire::OpenAi, Some(ep)) if provider != "azure" && provider != "azure_text" => {
            let url = match provider {
                "mistral" => wire::mistral_url(&ep.base),
                _ => format!("{}/ocr", ep.base),
            };
            Ok(Target {
                uri: parse(url)?,
                inline: false,
                native: None,
            })
        }
        _ => Err(not_ocr().into()),
    }
}

/// One OCR attempt on `dep` for the model group `model`.
pub async fn call(
    state: &AppState,
    dep: &Arc<Deployment>,
    parsed: &ParsedRequest,
    model: &str,
    headers: &HeaderMap,
    ctx: &mut RequestCtx,
) -> Result<Response<Body>, GatewayError> {
    let target = target(dep, model)?;
    let (native, strip) = format(headers, &parsed.raw)?;
    let doc = document(&parsed.raw)?;
    let inline = match (target.inline, &doc.remote) {
        (true, Some(url)) => Some(inline(state, url).await?),
        _ => None,
    };
    let body = body(parsed, dep, &doc, inline, strip)?;
    let extra = match target.native {
        Some(_) => super::translated::auth_headers(state, dep, &target.uri, &[]).await?,
        None => Vec::new(),
    };
    let errors = target.native.map_or(Errors::AsSent, Errors::Native);
    let t0 = Instant::now();
    let (head, bytes) =
        upstream::call_whole(&state.client, dep, &target.uri, &body, &extra, errors).await?;
    ctx.upstream_elapsed = t0.elapsed();
    let (out, pages) = answer::shaped(bytes, model, native).map_err(|e| {
        upstream::UpstreamError::Body(format!(
            "the provider answered {} with a body that is not an OCR answer ({e})",
            head.status.as_u16()
        ))
    })?;
    ctx.completion.usage = Some(sse::Usage::default());
    ctx.completion.extra.pages = Some(pages);
    if let Some((_, resp)) = ctx.completion.bodies.as_mut() {
        *resp = Some(out.clone());
    }
    let mut resp = Response::new(Body::full(out));
    *resp.status_mut() = head.status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// The upstream body: the request as received with the deployment's `model` spliced in (the
/// common case: no parse, no copy), or rebuilt when more changes (a document sent inline,
/// `req_format` or the gateway's own controls left out, a `model` written with escapes).
fn body(
    parsed: &ParsedRequest,
    dep: &Deployment,
    doc: &Document,
    inline: Option<String>,
    strip_format: bool,
) -> Result<Vec<Bytes>, GatewayError> {
    let raw = &parsed.raw;
    if let (Some(span), None, false, false) = (
        parsed.model_span.clone(),
        &inline,
        strip_format,
        parsed.controls.any(),
    ) {
        return Ok(vec![
            raw.slice(..span.start),
            dep.upstream_model_json.clone(),
            raw.slice(span.end..),
        ]);
    }
    let mut v: serde_json::Map<String, Value> = parsed.json()?;
    v.insert("model".into(), Value::String(dep.upstream_model.clone()));
    v.remove("req_format");
    for name in super::controls::NAMES {
        v.remove(name);
    }
    if let (Some(uri), Some(Value::Object(d))) = (inline, v.get_mut("document")) {
        d.insert(doc.kind.into(), Value::String(uri));
    }
    let bytes = serde_json::to_vec(&v).map_err(|e| GatewayError::Internal(e.to_string()))?;
    Ok(vec![Bytes::from(bytes)])
}

/// `url` fetched (under the URL fetcher's policy) and written as a `data:` URI.
async fn inline(state: &AppState, url: &str) -> Result<String, OcrError> {
    use futures_util::StreamExt as _;
    let fetched = state.url_fetcher.get(url).await?;
    let mut w =
        wire::DataUriWriter::new(fetched.content_type.as_deref(), fetched.filename.as_deref());
    let mut out = Vec::with_capacity(fetched.content_length.unwrap_or(0) as usize * 4 / 3 + 64);
    let mut body = fetched.body;
    while let Some(chunk) = body.next().await {
        w.write(&chunk?, &mut out, prefix);
    }
    w.finish(&mut out, prefix);
    // base64 and a checked MIME type: ASCII
    String::from_utf8(out).map_err(|_| OcrError::Form("the document could not be encoded".into()))
}

/// `data:<mime>;base64,`
fn prefix(mime: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"data:");
    out.extend_from_slice(mime.as_bytes());
    out.extend_from_slice(b";base64,");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents() {
        let d = |s: &str| document(s.as_bytes());
        assert_eq!(
            d(r#"{"model":"m","document":{"type":"document_url","document_url":"https://x/a.pdf"}}"#)
                .unwrap(),
            Document {
                kind: "document_url",
                remote: Some("https://x/a.pdf".into())
            }
        );
        assert_eq!(
            d(r#"{"document":{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}}"#)
                .unwrap(),
            Document {
                kind: "image_url",
                remote: None
            }
        );
        assert!(d(r#"{"document":{"type":"image_url","image_url":"https://x/i.png"}}"#).is_ok());
        for bad in [
            r#"{"model":"m"}"#,
            r#"{"document":"https://x"}"#,
            r#"{"document":{"type":"file","file":"/etc/passwd"}}"#,
            r#"{"document":{"type":"document_url"}}"#,
            r#"{"document":{"type":"document_url","document_url":" "}}"#,
            r#"{"document":{"type":"image_url","image_url":5}}"#,
            r#"{"document":{"type":"document_url","document_url":"reducto://abc"}}"#,
            r#"{"document":{"type":"video_url","video_url":"x"}}"#,
        ] {
            let e = d(bad).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{bad}");
            assert!(matches!(e, OcrError::Document(_)), "{bad}");
        }
    }

    #[test]
    fn formats() {
        let mut h = HeaderMap::new();
        assert_eq!(format(&h, b"{}").unwrap(), (false, false));
        h.insert("x-req-format", http::HeaderValue::from_static(" Native "));
        assert_eq!(format(&h, b"{}").unwrap(), (true, false));
        assert_eq!(
            format(&h, br#"{"req_format":"litellm"}"#).unwrap(),
            (false, true)
        );
        assert!(format(&h, br#"{"req_format":5}"#).is_err());
        h.insert("x-req-format", http::HeaderValue::from_static("other"));
        assert!(format(&h, b"{}").is_err());
    }
}
