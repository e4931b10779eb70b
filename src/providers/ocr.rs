//! Mistral's OCR API (`/v1/ocr`; also Mistral OCR on Vertex AI and Azure AI), the pure part:
//! what an uploaded document is (its MIME type, for the `data:` URI it is sent as), documents
//! base64-encoded as they arrive, the Mistral URL, and the pages an answer bills.

use base64::Engine as _;
use serde::Deserialize;

/// The MIME type of an uploaded document: the one declared (unless generic), else its file
/// name's extension's, else its first bytes' (`head`; 16 bytes are enough), else
/// `application/octet-stream`. A declared type that is not `type/subtype` is ignored.
pub fn mime_of(declared: Option<&str>, filename: Option<&str>, head: &[u8]) -> String {
    let declared = declared
        .map(|ct| ct.split(';').next().unwrap_or_default().trim())
        .filter(|m| valid_mime(m) && !m.eq_ignore_ascii_case("application/octet-stream"));
    if let Some(m) = declared {
        return m.to_ascii_lowercase();
    }
    filename
        .and_then(by_extension)
        .or_else(|| sniff(head))
        .unwrap_or("application/octet-stream")
        .to_string()
}

/// `type/subtype` of word characters, `.`, `+` and `-` (nothing a data URI could be broken with).
pub fn valid_mime(m: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'))
    };
    m.len() <= 127 && m.split_once('/').is_some_and(|(t, s)| ok(t) && ok(s))
}

/// The MIME type of a file name's extension (the formats OCR reads).
fn by_extension(name: &str) -> Option<&'static str> {
    let (_, ext) = name.rsplit_once('.')?;
    Some(match ext.to_ascii_lowercase().as_str() {
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "tif" | "tiff" => "image/tiff",
        "bmp" => "image/bmp",
        "avif" => "image/avif",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        _ => return None,
    })
}

/// The MIME type of a document's first bytes (PDF and the usual image formats).
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    Some(if head.starts_with(b"%PDF-") {
        "application/pdf"
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if head.starts_with(b"\xff\xd8\xff") {
        "image/jpeg"
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        "image/gif"
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        "image/webp"
    } else if head.starts_with(b"II*\x00") || head.starts_with(b"MM\x00*") {
        "image/tiff"
    } else if head.starts_with(b"BM") {
        "image/bmp"
    } else {
        return None;
    })
}

/// Bytes [`mime_of`] needs to sniff a document.
pub const SNIFF_BYTES: usize = 16;

/// Whether a document of this MIME type is sent as an `image_url` (else a `document_url`).
pub fn is_image(mime: &str) -> bool {
    mime.starts_with("image/")
}

/// Base64 (standard alphabet, padded) of a document that arrives in pieces, appended to `out`
/// as it comes: at most two bytes wait for the next piece.
#[derive(Debug, Default)]
pub struct Base64Writer {
    pending: [u8; 2],
    held: usize,
}

impl Base64Writer {
    /// Encode `chunk` (after what is pending) into `out`.
    pub fn write(&mut self, mut chunk: &[u8], out: &mut Vec<u8>) {
        let engine = &base64::engine::general_purpose::STANDARD;
        if self.held > 0 {
            let need = 3 - self.held;
            if chunk.len() < need {
                self.pending[self.held..self.held + chunk.len()].copy_from_slice(chunk);
                self.held += chunk.len();
                return;
            }
            let mut three = [0u8; 3];
            three[..self.held].copy_from_slice(&self.pending[..self.held]);
            three[self.held..].copy_from_slice(&chunk[..need]);
            push(engine, &three, out);
            chunk = &chunk[need..];
            self.held = 0;
        }
        let whole = chunk.len() / 3 * 3;
        push(engine, &chunk[..whole], out);
        let rest = &chunk[whole..];
        self.pending[..rest.len()].copy_from_slice(rest);
        self.held = rest.len();
    }

    /// Encode what is pending, with its padding.
    pub fn finish(self, out: &mut Vec<u8>) {
        let engine = &base64::engine::general_purpose::STANDARD;
        push(engine, &self.pending[..self.held], out);
    }
}

fn push(engine: &base64::engine::GeneralPurpose, bytes: &[u8], out: &mut Vec<u8>) {
    if bytes.is_empty() {
        return;
    }
    let at = out.len();
    out.resize(at + base64::encoded_len(bytes.len(), true).unwrap_or(0), 0);
    let n = engine.encode_slice(bytes, &mut out[at..]).unwrap_or(0);
    out.truncate(at + n);
}

/// A document arriving in pieces, written base64-encoded after a start its MIME type decides
/// (`data:<mime>;base64,` and whatever surrounds it): the type comes from the declared one or the
/// file name when they tell, else from the first [`SNIFF_BYTES`] bytes, held until then.
#[derive(Debug, Default)]
pub struct DataUriWriter {
    declared: Option<String>,
    filename: Option<String>,
    /// The first bytes, while the type waits for them.
    head: Vec<u8>,
    started: bool,
    b64: Base64Writer,
    /// Bytes of the document so far.
    pub len: u64,
}

impl DataUriWriter {
    pub fn new(declared: Option<&str>, filename: Option<&str>) -> Self {
        let declared = declared.map(str::to_string);
        let filename = filename.map(str::to_string);
        // a type that needs no sniffing starts at once
        let known =
            mime_of(declared.as_deref(), filename.as_deref(), b"x") != "application/octet-stream";
        Self {
            declared,
            filename,
            started: false,
            head: Vec::with_capacity(if known { 0 } else { SNIFF_BYTES }),
            b64: Base64Writer::default(),
            len: 0,
        }
    }

    /// Add `chunk`; `start` writes what comes before the data (given the MIME type) once.
    pub fn write(
        &mut self,
        chunk: &[u8],
        out: &mut Vec<u8>,
        start: impl FnOnce(&str, &mut Vec<u8>),
    ) {
        self.len += chunk.len() as u64;
        if self.started {
            self.b64.write(chunk, out);
            return;
        }
        let known = self.head.capacity() == 0;
        if !known && self.head.len() + chunk.len() < SNIFF_BYTES {
            self.head.extend_from_slice(chunk);
            return;
        }
        self.head.extend_from_slice(chunk);
        self.start(out, start);
    }

    fn start(&mut self, out: &mut Vec<u8>, start: impl FnOnce(&str, &mut Vec<u8>)) {
        let mime = mime_of(
            self.declared.as_deref(),
            self.filename.as_deref(),
            &self.head,
        );
        start(&mime, out);
        self.started = true;
        let head = std::mem::take(&mut self.head);
        self.b64.write(&head, out);
    }

    /// End the data (starting it now if it never did: a document shorter than the sniff).
    pub fn finish(mut self, out: &mut Vec<u8>, start: impl FnOnce(&str, &mut Vec<u8>)) {
        if !self.started {
            self.start(out, start);
        }
        self.b64.finish(out);
    }
}

/// Mistral's OCR URL under `base` (LiteLLM's rule: `{base}/ocr` when `base` ends in `/v1`,
/// else `{base}/v1/ocr`).
pub fn mistral_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1") {
        format!("{base}/ocr")
    } else {
        format!("{base}/v1/ocr")
    }
}

/// Azure AI's Mistral OCR URL under a deployment's `api_base` (LiteLLM's
/// `{api_base}/providers/mistral/azure/ocr`).
pub fn azure_ai_url(base: &str) -> String {
    format!("{}/providers/mistral/azure/ocr", base.trim_end_matches('/'))
}

/// The pages an OCR answer bills (`usage_info`), when it says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct UsageInfo {
    #[serde(default, deserialize_with = "count")]
    pub pages_processed: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    pub pages_processed_annotation: Option<u64>,
}

/// A count: a non-negative integer, else nothing (`null`, a string, a negative number).
fn count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)))
}

/// `usage_info` read from its raw JSON (anything but an object bills nothing).
pub fn usage_info(raw: &[u8]) -> UsageInfo {
    if raw.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return UsageInfo::default();
    }
    serde_json::from_slice(raw).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_from_the_declared_type_then_the_name_then_the_bytes() {
        assert_eq!(
            mime_of(Some("application/pdf; name=x"), None, b""),
            "application/pdf"
        );
        assert_eq!(
            mime_of(Some("application/octet-stream"), Some("a.PNG"), b"%PDF-"),
            "image/png"
        );
        assert_eq!(mime_of(None, Some("scan"), b"%PDF-1.7"), "application/pdf");
        assert_eq!(mime_of(None, None, b"\xff\xd8\xff\xe0"), "image/jpeg");
        assert_eq!(
            mime_of(Some("bad type"), None, b"?"),
            "application/octet-stream"
        );
        assert_eq!(mime_of(Some("text/x\"y"), None, b"BM"), "image/bmp");
        assert!(is_image("image/webp") && !is_image("application/pdf"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
    }

    #[test]
    fn base64_in_pieces_is_base64_of_the_whole() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let whole = base64::engine::general_purpose::STANDARD.encode(&data);
        for split in [1usize, 2, 3, 4, 7, 64, 999, 1000] {
            let mut w = Base64Writer::default();
            let mut out = Vec::new();
            for piece in data.chunks(split) {
                w.write(piece, &mut out);
            }
            w.write(&[], &mut out);
            w.finish(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), whole, "{split}");
        }
        let mut out = Vec::new();
        Base64Writer::default().finish(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn data_uri_waits_for_the_bytes_it_sniffs() {
        let start = |m: &str, out: &mut Vec<u8>| {
            out.extend_from_slice(format!("data:{m};base64,").as_bytes())
        };
        let pdf = b"%PDF-1.7 then the rest of it";
        for split in [1usize, 3, 16, 100] {
            let mut w = DataUriWriter::new(None, None);
            let mut out = Vec::new();
            for piece in pdf.chunks(split) {
                w.write(piece, &mut out, start);
            }
            assert_eq!(w.len, pdf.len() as u64);
            w.finish(&mut out, start);
            let want = format!(
                "data:application/pdf;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(pdf)
            );
            assert_eq!(String::from_utf8(out).unwrap(), want, "{split}");
        }
        let mut w = DataUriWriter::new(Some("image/png"), None);
        let mut out = Vec::new();
        w.write(b"ab", &mut out, start);
        assert_eq!(out, b"data:image/png;base64,");
        w.finish(&mut out, start);
        assert_eq!(out, b"data:image/png;base64,YWI=");
        let mut out = Vec::new();
        DataUriWriter::new(None, None).finish(&mut out, start);
        assert_eq!(out, b"data:application/octet-stream;base64,");
    }

    #[test]
    fn urls() {
        assert_eq!(
            mistral_url("https://api.mistral.ai/v1/"),
            "https://api.mistral.ai/v1/ocr"
        );
        assert_eq!(mistral_url("http://h:1"), "http://h:1/v1/ocr");
        assert_eq!(
            azure_ai_url("https://r.services.ai.azure.com/"),
            "https://r.services.ai.azure.com/providers/mistral/azure/ocr"
        );
    }

    #[test]
    fn usage_counts() {
        let u = usage_info(
            br#"{"pages_processed":3,"pages_processed_annotation":2,"doc_size_bytes":9}"#,
        );
        assert_eq!(
            (u.pages_processed, u.pages_processed_annotation),
            (Some(3), Some(2))
        );
        let u = usage_info(br#"{"pages_processed":null,"pages_processed_annotation":-1}"#);
        assert_eq!(u, UsageInfo::default());
        assert_eq!(usage_info(b"[1]"), UsageInfo::default());
    }
}
