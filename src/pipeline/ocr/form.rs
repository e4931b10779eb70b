//! A multipart OCR upload (LiteLLM's form: `file`, `model` and any other OCR parameter as a
//! field) made into the JSON request: the file becomes `document` (`image_url` for images, else
//! `document_url`) as a `data:<mime>;base64,` URI, encoded as it arrives; other fields are
//! JSON when they parse as JSON (`pages=[0,1]`), else strings (`model` always a string).
//! At most the body limit is read (413 past it); what is held is the JSON being written.

use std::collections::HashSet;

use bytes::Bytes;
use futures_util::Stream;
use http::{Request, header};

use super::{OcrError, prefix, wire};
use crate::error::GatewayError;
use crate::request_body::{RequestBody, RequestError, read_error};
use crate::state::AppState;

/// The most fields a form may hold.
const MAX_FIELDS: usize = 1000;
/// The largest text field.
const MAX_TEXT: usize = 1 << 20;

/// Whether the request is a multipart form.
pub fn is_form(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .get(..19)
                .is_some_and(|m| m.eq_ignore_ascii_case("multipart/form-data"))
        })
}

/// Authenticate, then read the form into the JSON request (within `max_request_size_mb`).
pub async fn read(
    state: &AppState,
    req: Request<RequestBody>,
) -> Result<(crate::auth::Principal, http::request::Parts, Bytes), GatewayError> {
    use http_body_util::BodyExt as _;
    let principal = state.auth.caller_of(&req).await?;
    let (parts, body) = req.into_parts();
    let limit = state.max_body_bytes;
    if crate::pipeline::multipart::declared_length(&parts.headers).is_some_and(|n| n > limit as u64)
    {
        return Err(too_large(limit).into());
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        OcrError::Form("Content-Type must be multipart/form-data with a boundary".into())
    })?;
    let json = to_json(body.into_data_stream(), boundary, limit).await?;
    Ok((principal, parts, json))
}

fn too_large(limit: usize) -> RequestError {
    RequestError::TooLarge {
        limit_mb: limit as f64 / (1024.0 * 1024.0),
    }
}

/// The form in `stream` (delimited by `boundary`, at most `limit` bytes) as the JSON request.
pub async fn to_json<S, E>(stream: S, boundary: String, limit: usize) -> Result<Bytes, GatewayError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let limits =
        multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(limit as u64));
    let mut form = multer::Multipart::with_constraints(stream, boundary, limits);
    let failed = |e: multer::Error| -> GatewayError {
        match e {
            multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
                too_large(limit).into()
            }
            multer::Error::StreamReadFailed(e) => read_error(e).into(),
            e => {
                OcrError::Form(format!("The OCR upload is not a valid multipart form: {e}").into())
                    .into()
            }
        }
    };
    let mut out = Vec::with_capacity(256);
    out.push(b'{');
    let mut names = HashSet::new();
    let mut file = false;
    while let Some(mut field) = form.next_field().await.map_err(failed)? {
        if names.len() >= MAX_FIELDS {
            return Err(OcrError::Form(
                format!("The OCR upload has more than {MAX_FIELDS} fields").into(),
            )
            .into());
        }
        let Some(name) = field.name().map(str::to_string) else {
            continue;
        };
        if name == "document" {
            continue;
        }
        if !names.insert(name.clone()) {
            return Err(OcrError::Form(
                format!("The OCR upload has `{name}` more than once").into(),
            )
            .into());
        }
        if out.len() > 1 {
            out.push(b',');
        }
        if name == "file" {
            file = true;
            let declared = field.content_type().map(|m| m.essence_str().to_string());
            let mut w = wire::DataUriWriter::new(declared.as_deref(), field.file_name());
            let start = |mime: &str, out: &mut Vec<u8>| {
                let kind = if wire::is_image(mime) {
                    "image_url"
                } else {
                    "document_url"
                };
                out.extend_from_slice(
                    format!(r#""document":{{"type":"{kind}","{kind}":""#).as_bytes(),
                );
                prefix(mime, out);
            };
            while let Some(chunk) = field.chunk().await.map_err(failed)? {
                w.write(&chunk, &mut out, start);
            }
            if w.len == 0 {
                return Err(OcrError::Form("The uploaded file is empty".into()).into());
            }
            w.finish(&mut out, start);
            out.extend_from_slice(b"\"}");
            continue;
        }
        let mut text = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(failed)? {
            if text.len() + chunk.len() > MAX_TEXT {
                return Err(OcrError::Form(
                    format!("The form field `{name}` is longer than {MAX_TEXT} bytes").into(),
                )
                .into());
            }
            text.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(text).map_err(|_| {
            OcrError::Form(format!("The form field `{name}` is not UTF-8 text").into())
        })?;
        json_string(&name, &mut out);
        out.push(b':');
        match serde_json::from_str::<Box<serde_json::value::RawValue>>(&text) {
            Ok(v) if name != "model" => out.extend_from_slice(v.get().as_bytes()),
            _ => json_string(&text, &mut out),
        }
    }
    if !file {
        return Err(OcrError::Form(
            "A multipart OCR request must include a `file` field with the document to process"
                .into(),
        )
        .into());
    }
    out.push(b'}');
    Ok(Bytes::from(out))
}

fn json_string(s: &str, out: &mut Vec<u8>) {
    // writing a string to a Vec cannot fail
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use futures_util::FutureExt as _;
    use serde_json::{Value, json};

    /// A form part: its name, `(file name, content type)` for a file, its value.
    type Part<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a [u8]);

    fn form(parts: &[Part<'_>]) -> Vec<u8> {
        let mut v = Vec::new();
        for (name, file, value) in parts {
            v.extend_from_slice(b"--B\r\n");
            match file {
                Some((f, ct)) => v.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: {ct}\r\n\r\n").as_bytes(),
                ),
                None => v.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            v.extend_from_slice(value);
            v.extend_from_slice(b"\r\n");
        }
        v.extend_from_slice(b"--B--\r\n");
        v
    }

    fn run(body: Vec<u8>, limit: usize) -> Result<Value, GatewayError> {
        // in small pieces, as a body arrives
        let pieces: Vec<Result<Bytes, std::io::Error>> = body
            .chunks(7)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let json = to_json(futures_util::stream::iter(pieces), "B".into(), limit)
            .now_or_never()
            .expect("no waiting")?;
        Ok(serde_json::from_slice(&json).expect("JSON"))
    }

    #[test]
    fn file_becomes_a_data_uri_fields_stay() {
        let pdf = b"%PDF-1.4 a small pdf body";
        let v = run(
            form(&[
                ("model", None, b"123"),
                ("file", Some(("doc.bin", "application/octet-stream")), pdf),
                ("pages", None, b"[0,1]"),
                ("include_image_base64", None, b"true"),
                ("note", None, b"plain text"),
            ]),
            1 << 20,
        )
        .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(pdf);
        assert_eq!(
            v,
            json!({
                "model": "123",
                "document": {"type": "document_url", "document_url": format!("data:application/pdf;base64,{b64}")},
                "pages": [0, 1], "include_image_base64": true, "note": "plain text",
            })
        );
        let v = run(
            form(&[
                ("file", Some(("scan.png", "image/png")), b"\x89PNG...."),
                ("model", None, b"ocr"),
            ]),
            1 << 20,
        )
        .unwrap();
        assert_eq!(v["document"]["type"], "image_url");
        assert!(
            v["document"]["image_url"]
                .as_str()
                .unwrap()
                .starts_with("data:image/png;base64,iVBORy4uLi4")
        );
    }

    #[test]
    fn refusals() {
        let status = |r: Result<Value, GatewayError>| r.unwrap_err().status().as_u16();
        assert_eq!(status(run(form(&[("model", None, b"m")]), 1 << 20)), 400);
        assert_eq!(
            status(run(
                form(&[
                    ("model", None, b"m"),
                    ("file", Some(("a.pdf", "application/pdf")), b"")
                ]),
                1 << 20
            )),
            400
        );
        assert_eq!(
            status(run(
                form(&[("model", None, b"m"), ("model", None, b"n")]),
                1 << 20
            )),
            400
        );
        let big = vec![b'x'; 5000];
        assert_eq!(
            status(run(
                form(&[
                    ("model", None, b"m"),
                    ("file", Some(("a.pdf", "application/pdf")), &big)
                ]),
                1000
            )),
            413
        );
        assert_eq!(status(run(b"garbage".to_vec(), 1 << 20)), 400);
    }

    #[test]
    fn content_types() {
        let mut h = http::HeaderMap::new();
        assert!(!is_form(&h));
        h.insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("Multipart/Form-Data; boundary=x"),
        );
        assert!(is_form(&h));
        h.insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        assert!(!is_form(&h));
    }
}
