//! `multipart/form-data` uploads (audio transcriptions, image edits) read only as far as the
//! `model` field: the gateway routes on it, swaps in the deployment's model, and streams the
//! rest of the upload (the file) to the provider without holding it.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

/// Why an upload cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MultipartError {
    #[error("Content-Type must be multipart/form-data with a boundary")]
    NotMultipart,
    #[error("the multipart body is malformed: {0}")]
    Malformed(&'static str),
    #[error("the multipart body has no `{0}` field")]
    Missing(&'static str),
    #[error("the `model` field comes after more than {0} bytes of the upload; send it first")]
    TooFar(usize),
    #[error("the upload could not be read: {0}")]
    Read(String),
}

/// The length a client declared for its body.
pub fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok())
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Result<String, MultipartError> {
    let mut params = content_type.split(';');
    let mime = params.next().unwrap_or_default().trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return Err(MultipartError::NotMultipart);
    }
    for p in params {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case("boundary") {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            // RFC 2046: 1 to 70 characters
            if v.is_empty() || v.len() > 70 || v.contains(['\r', '\n']) {
                return Err(MultipartError::NotMultipart);
            }
            return Ok(v.to_string());
        }
    }
    Err(MultipartError::NotMultipart)
}

/// Bytes allowed before the first boundary.
const PREAMBLE_MAX: usize = 4096;
/// Bytes allowed for one part's headers.
const HEADERS_MAX: usize = 16 * 1024;

/// What the bytes read so far say about a field.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// The field's value is at `value`; its whole part (delimiter line to the line end before
    /// the next delimiter) at `part`, so cutting `part` leaves a valid form.
    Found {
        value: Range<usize>,
        part: Range<usize>,
    },
    /// The form ended without it.
    Absent,
    /// More bytes are needed to tell.
    NeedMore,
}

/// Find the text field `name` in the start of a form body `buf` delimited by `boundary`.
pub fn find_field(buf: &[u8], boundary: &str, name: &str) -> Result<Scan, MultipartError> {
    find_part(buf, boundary, |field, is_file| {
        !is_file && field == Some(name)
    })
    .map(|(s, _)| s)
}

/// The `Content-Type` of the first file part of a whole form (`None`: no file part, or one
/// without a type).
pub fn file_type(form: &[u8], boundary: &str) -> Result<Option<String>, MultipartError> {
    let (scan, headers) = find_part(form, boundary, |_, is_file| is_file)?;
    let (Scan::Found { .. }, Some(h)) = (scan, headers) else {
        return Ok(None);
    };
    let text =
        std::str::from_utf8(&form[h]).map_err(|_| MultipartError::Malformed("part headers"))?;
    Ok(text.split("\r\n").find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-type")
            .then(|| v.trim().to_string())
    }))
}

/// The first part `want` (its name, whether it is a file) accepts, and where its headers are.
fn find_part(
    buf: &[u8],
    boundary: &str,
    want: impl Fn(Option<&str>, bool) -> bool,
) -> Result<(Scan, Option<Range<usize>>), MultipartError> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    // the first delimiter may follow a preamble
    // (searched only so far that a prefix of the body gives the same answer as all of it)
    let window = &buf[..buf.len().min(PREAMBLE_MAX + delim.len())];
    let Some(first) = memchr::memmem::find(window, delim) else {
        if window.len() == PREAMBLE_MAX + delim.len() {
            return Err(MultipartError::Malformed("no boundary"));
        }
        return Ok((Scan::NeedMore, None));
    };
    let mut part_start = first;
    let mut at = first + delim.len();
    let next_delim = [b"\r\n".as_slice(), delim].concat();
    loop {
        let Some(after) = buf.get(at..at + 2) else {
            return Ok((Scan::NeedMore, None));
        };
        if after == b"--" {
            return Ok((Scan::Absent, None));
        }
        // transport padding then CRLF
        let Some(eol) = memchr::memmem::find(&buf[at..], b"\r\n") else {
            return Ok((Scan::NeedMore, None));
        };
        if !buf[at..at + eol].iter().all(|b| *b == b' ' || *b == b'\t') {
            return Err(MultipartError::Malformed("bad delimiter line"));
        }
        let headers_start = at + eol + 2;
        let hend = if buf[headers_start..].starts_with(b"\r\n") {
            // a part without headers
            Some(headers_start - 2)
        } else {
            let rest = &buf[headers_start..];
            let window = &rest[..rest.len().min(HEADERS_MAX + 4)];
            match memchr::memmem::find(window, b"\r\n\r\n") {
                Some(i) => Some(headers_start + i),
                None if window.len() == HEADERS_MAX + 4 => {
                    return Err(MultipartError::Malformed("part headers too long"));
                }
                None => None,
            }
        };
        let Some(hend) = hend else {
            return Ok((Scan::NeedMore, None));
        };
        let headers = &buf[headers_start..hend.max(headers_start)];
        let body_start = hend + 4;
        let (field, is_file) = disposition(headers)?;
        let Some(end) = memchr::memmem::find(buf.get(body_start..).unwrap_or(&[]), &next_delim)
            .map(|i| body_start + i)
        else {
            return Ok((Scan::NeedMore, None));
        };
        if want(field.as_deref(), is_file) {
            return Ok((
                Scan::Found {
                    value: body_start..end,
                    part: part_start..end + 2,
                },
                Some(headers_start..hend.max(headers_start)),
            ));
        }
        part_start = end + 2;
        at = end + next_delim.len();
    }
}

/// `name` and whether it is a file, from a part's headers.
fn disposition(headers: &[u8]) -> Result<(Option<String>, bool), MultipartError> {
    let text =
        std::str::from_utf8(headers).map_err(|_| MultipartError::Malformed("part headers"))?;
    for line in text.split("\r\n") {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if !k.trim().eq_ignore_ascii_case("content-disposition") {
            continue;
        }
        let mut name = None;
        let mut file = false;
        for p in v.split(';').skip(1) {
            let Some((pk, pv)) = p.split_once('=') else {
                continue;
            };
            let pv = pv.trim();
            let pv = pv
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or(pv);
            match pk.trim().to_ascii_lowercase().as_str() {
                "name" => name = Some(pv.to_string()),
                "filename" | "filename*" => file = true,
                _ => {}
            }
        }
        return Ok((name, file));
    }
    Ok((None, false))
}

/// An upload read up to its `model` field.
pub struct Upload {
    /// The bytes read so far.
    pub head: Bytes,
    /// Where the model's value is in `head`.
    pub model_at: Range<usize>,
    /// Where the model's whole part is in `head`.
    pub model_part: Range<usize>,
    /// The model the client named.
    pub model: String,
    /// The rest of the body, not read yet.
    pub rest: Option<crate::request_body::RequestBody>,
    /// Length of the whole body, when the client declared it.
    pub content_length: Option<u64>,
}

impl Upload {
    /// The first bytes to send without the model's part (for APIs that take no `model`), and
    /// the new total length.
    pub fn without_model(&self) -> (Bytes, Option<u64>) {
        let mut out = BytesMut::with_capacity(self.head.len());
        out.extend_from_slice(&self.head[..self.model_part.start]);
        out.extend_from_slice(&self.head[self.model_part.end..]);
        let cut = (self.model_part.end - self.model_part.start) as u64;
        (
            out.freeze(),
            self.content_length.map(|l| l.saturating_sub(cut)),
        )
    }

    /// The first bytes to send with the model replaced by `model`, and the new total length.
    pub fn with_model(&self, model: &str) -> (Bytes, Option<u64>) {
        let mut out = BytesMut::with_capacity(self.head.len() + model.len());
        out.extend_from_slice(&self.head[..self.model_at.start]);
        out.extend_from_slice(model.as_bytes());
        out.extend_from_slice(&self.head[self.model_at.end..]);
        let old = (self.model_at.end - self.model_at.start) as u64;
        let len = self
            .content_length
            .map(|l| l.saturating_sub(old) + model.len() as u64);
        (out.freeze(), len)
    }
}

/// Read `body` until the `model` field is complete (at most `limit` bytes held).
pub async fn read_to_model(
    mut body: crate::request_body::RequestBody,
    boundary: &str,
    content_length: Option<u64>,
    limit: usize,
) -> Result<Upload, MultipartError> {
    let mut buf = BytesMut::new();
    loop {
        match find_field(&buf, boundary, "model")? {
            Scan::Found { value: r, part } => {
                let model = std::str::from_utf8(&buf[r.clone()])
                    .map_err(|_| MultipartError::Malformed("model is not UTF-8"))?
                    .trim()
                    .to_string();
                if model.is_empty() {
                    return Err(MultipartError::Missing("model"));
                }
                return Ok(Upload {
                    head: buf.freeze(),
                    model_at: r,
                    model_part: part,
                    model,
                    rest: Some(body),
                    content_length,
                });
            }
            Scan::Absent => return Err(MultipartError::Missing("model")),
            Scan::NeedMore => {}
        }
        if buf.len() > limit {
            return Err(MultipartError::TooFar(limit));
        }
        match body.frame().await {
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    buf.extend_from_slice(&d);
                }
            }
            Some(Err(e)) => return Err(MultipartError::Read(e.to_string())),
            None => {
                return match find_field(&buf, boundary, "model")? {
                    Scan::Found { .. } => continue,
                    _ => Err(MultipartError::Missing("model")),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "XyZ123";

    fn form(parts: &[(&str, Option<&str>, &str)]) -> Vec<u8> {
        let mut v = Vec::new();
        for (name, file, value) in parts {
            v.extend_from_slice(format!("--{B}\r\n").as_bytes());
            match file {
                Some(f) => v.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: audio/wav\r\n\r\n").as_bytes(),
                ),
                None => v.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            v.extend_from_slice(value.as_bytes());
            v.extend_from_slice(b"\r\n");
        }
        v.extend_from_slice(format!("--{B}--\r\n").as_bytes());
        v
    }

    #[test]
    fn boundaries() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc").unwrap(),
            "abc"
        );
        assert_eq!(
            boundary("Multipart/Form-Data; charset=x; boundary=\"a b\"").unwrap(),
            "a b"
        );
        assert!(boundary("application/json").is_err());
        assert!(boundary("multipart/form-data").is_err());
        assert!(boundary("multipart/form-data; boundary=").is_err());
    }

    #[test]
    fn model_before_and_after_the_file() {
        let f = form(&[
            ("model", None, "whisper"),
            ("file", Some("a.wav"), "RIFF...."),
        ]);
        let Scan::Found { value: r, .. } = find_field(&f, B, "model").unwrap() else {
            panic!()
        };
        assert_eq!(&f[r], b"whisper");
        let f = form(&[
            ("file", Some("a.wav"), "RIFF....model"),
            ("model", None, "w2"),
        ]);
        let Scan::Found { value: r, .. } = find_field(&f, B, "model").unwrap() else {
            panic!()
        };
        assert_eq!(&f[r], b"w2");
        let f = form(&[("file", Some("model"), "x")]);
        assert_eq!(find_field(&f, B, "model").unwrap(), Scan::Absent);
    }

    #[test]
    fn every_prefix_needs_more_or_finds_the_same() {
        let f = form(&[
            ("language", None, "en"),
            ("model", None, "whisper-1"),
            ("file", Some("a.wav"), "data"),
        ]);
        let want = find_field(&f, B, "model").unwrap();
        assert!(matches!(want, Scan::Found { .. }));
        for n in 0..f.len() {
            match find_field(&f[..n], B, "model").unwrap() {
                Scan::NeedMore => {}
                found @ Scan::Found { .. } => assert_eq!(found, want),
                Scan::Absent => panic!("absent at {n}"),
            }
        }
    }

    #[test]
    fn model_replaced_and_length_adjusted() {
        let f = form(&[("model", None, "whisper"), ("file", Some("a.wav"), "RIFF")]);
        let Scan::Found { value: r, part } = find_field(&f, B, "model").unwrap() else {
            panic!()
        };
        let up = Upload {
            head: Bytes::from(f.clone()),
            model_at: r,
            model_part: part,
            model: "whisper".into(),
            rest: None,
            content_length: Some(f.len() as u64),
        };
        let (head, len) = up.with_model("whisper-1");
        assert_eq!(len, Some(head.len() as u64));
        let Scan::Found { value: r, .. } = find_field(&head, B, "model").unwrap() else {
            panic!()
        };
        assert_eq!(&head[r], b"whisper-1");
        let (cut, len) = up.without_model();
        assert_eq!(len, Some(cut.len() as u64));
        assert_eq!(find_field(&cut, B, "model").unwrap(), Scan::Absent);
        assert!(matches!(
            find_field(&cut, B, "file").unwrap(),
            Scan::NeedMore | Scan::Absent
        ));
    }

    #[test]
    fn a_whole_forms_file_type() {
        let f = form(&[("purpose", None, "batch"), ("file", Some("a.wav"), "RIFF")]);
        assert_eq!(file_type(&f, B).unwrap().as_deref(), Some("audio/wav"));
        let f = form(&[("purpose", None, "batch")]);
        assert_eq!(file_type(&f, B).unwrap(), None);
    }

    #[test]
    fn malformed() {
        assert!(find_field(&[b'x'; 5000], B, "model").is_err());
        let bad = format!(
            "--{B}junk\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n--{B}--"
        );
        assert!(find_field(bad.as_bytes(), B, "model").is_err());
    }
}
