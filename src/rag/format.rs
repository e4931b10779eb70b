//! What an uploaded document is: PDF by its magic bytes, else by its content type (parameters
//! such as `; charset=` ignored), else by its file name's extension; a generic or missing
//! content type with an unknown extension is text when its first bytes are UTF-8 without NULs.

use super::ExtractError;

/// The formats text is extracted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocFormat {
    /// UTF-8 text (also CSV, TSV, JSON, JSON Lines, XML, YAML).
    Text,
    /// Markdown, kept as written.
    Markdown,
    /// HTML, rendered to plain text.
    Html,
    /// PDF, its text layer.
    Pdf,
}

/// The supported formats, as the error message lists them.
pub const SUPPORTED: &str =
    ".txt, .md, .markdown, .html, .htm, .pdf, .csv, .tsv, .json, .jsonl, .xml, .yaml, .yml";

/// The first bytes of every PDF.
const PDF_MAGIC: &[u8] = b"%PDF-";

/// The format of a document, from its file name, its content type and its first bytes (`head`:
/// any prefix of the document; 1 KiB is plenty).
pub fn detect(
    filename: Option<&str>,
    content_type: Option<&str>,
    head: &[u8],
) -> Result<DocFormat, ExtractError> {
    if head.starts_with(PDF_MAGIC) {
        return Ok(DocFormat::Pdf);
    }
    let essence = content_type.map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    if let Some(format) = essence.as_deref().and_then(by_content_type) {
        return Ok(format);
    }
    if let Some(format) = filename
        .and_then(extension)
        .as_deref()
        .and_then(by_extension)
    {
        return Ok(format);
    }
    let generic = matches!(
        essence.as_deref(),
        None | Some("" | "application/octet-stream" | "binary/octet-stream")
    );
    if generic && looks_like_text(head) {
        return Ok(DocFormat::Text);
    }
    let got = match (filename, content_type) {
        (Some(name), _) if !name.is_empty() => name,
        (_, Some(ct)) if !ct.is_empty() => ct,
        _ => "(no name, binary content)",
    };
    Err(ExtractError::Unsupported {
        got: got.chars().take(200).collect(),
    })
}

/// A content type's format (`essence`: lower case, no parameters).
fn by_content_type(essence: &str) -> Option<DocFormat> {
    Some(match essence {
        "application/pdf" | "application/x-pdf" => DocFormat::Pdf,
        "text/html" | "application/xhtml+xml" => DocFormat::Html,
        "text/markdown" | "text/x-markdown" => DocFormat::Markdown,
        "application/json"
        | "application/x-ndjson"
        | "application/jsonl"
        | "application/json-lines"
        | "application/xml"
        | "application/yaml"
        | "application/x-yaml"
        | "text/csv"
        | "application/csv" => DocFormat::Text,
        _ if essence.starts_with("text/") => DocFormat::Text,
        _ => return None,
    })
}

/// The lower-case extension of a file name (after its last `/` or `\`).
fn extension(filename: &str) -> Option<String> {
    let base = filename.rsplit(['/', '\\']).next().unwrap_or(filename);
    base.rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
}

/// An extension's format.
fn by_extension(ext: &str) -> Option<DocFormat> {
    Some(match ext {
        "txt" | "text" | "csv" | "tsv" | "json" | "jsonl" | "ndjson" | "xml" | "yaml" | "yml" => {
            DocFormat::Text
        }
        "md" | "markdown" => DocFormat::Markdown,
        "html" | "htm" | "xhtml" => DocFormat::Html,
        "pdf" => DocFormat::Pdf,
        _ => return None,
    })
}

/// Whether a prefix of a document is UTF-8 (its last sequence may be cut) without NULs.
fn looks_like_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsupported(got: &str) -> Result<DocFormat, ExtractError> {
        Err(ExtractError::Unsupported { got: got.into() })
    }

    #[test]
    fn magic_bytes_first() {
        let pdf = b"%PDF-1.4\n%\xe2\xe3";
        assert_eq!(
            detect(Some("a.txt"), Some("text/plain"), pdf),
            Ok(DocFormat::Pdf)
        );
        assert_eq!(detect(None, None, pdf), Ok(DocFormat::Pdf));
    }

    #[test]
    fn content_type_then_extension() {
        let ct = |t: &str| detect(Some("notes.bin"), Some(t), b"hi");
        assert_eq!(ct("text/html; charset=utf-8"), Ok(DocFormat::Html));
        assert_eq!(ct("Text/Markdown"), Ok(DocFormat::Markdown));
        assert_eq!(ct("application/json"), Ok(DocFormat::Text));
        assert_eq!(ct("text/csv;header=present"), Ok(DocFormat::Text));
        assert_eq!(ct("application/pdf"), Ok(DocFormat::Pdf));
        let ext = |n: &str| detect(Some(n), Some("application/octet-stream"), b"\xff\xfe");
        assert_eq!(ext("a.TXT"), Ok(DocFormat::Text));
        assert_eq!(ext("dir/a.md"), Ok(DocFormat::Markdown));
        assert_eq!(ext("a.markdown"), Ok(DocFormat::Markdown));
        assert_eq!(ext("C:\\x\\page.HTM"), Ok(DocFormat::Html));
        assert_eq!(ext("a.html"), Ok(DocFormat::Html));
        assert_eq!(ext("a.pdf"), Ok(DocFormat::Pdf));
        assert_eq!(ext("data.csv"), Ok(DocFormat::Text));
        assert_eq!(ext("data.yml"), Ok(DocFormat::Text));
        assert_eq!(ext("x.docx"), unsupported("x.docx"));
        assert_eq!(ext("README"), unsupported("README"));
    }

    #[test]
    fn generic_content_is_sniffed() {
        let octet = Some("application/octet-stream");
        assert_eq!(
            detect(Some("x.log"), octet, b"plain words"),
            Ok(DocFormat::Text)
        );
        assert_eq!(
            detect(None, None, "caf\u{e9}".as_bytes()),
            Ok(DocFormat::Text)
        );
        // A head cut inside a UTF-8 sequence is still text.
        assert_eq!(
            detect(None, octet, &"é".as_bytes()[..1]),
            Ok(DocFormat::Text)
        );
        assert_eq!(
            detect(Some("x.docx"), octet, b"PK\x03\x04\x14\0\x06\0"),
            unsupported("x.docx")
        );
        assert_eq!(
            detect(None, octet, b"\xff\xd8\xff\xe0"),
            unsupported("application/octet-stream")
        );
        assert_eq!(
            detect(None, None, b"a\0b"),
            unsupported("(no name, binary content)")
        );
        // A specific type that is not text is not sniffed.
        assert_eq!(
            detect(Some("x.png"), Some("image/png"), b"abc"),
            unsupported("x.png")
        );
    }

    #[test]
    fn message_lists_formats() {
        let Err(e) = detect(Some("x.docx"), None, b"PK\x03\x04\xff") else {
            panic!("a docx is not supported");
        };
        let msg = e.to_string();
        assert!(msg.starts_with("Unsupported file type `x.docx`: supported formats are .txt"));
        assert!(msg.contains(".pdf") && msg.contains(".html") && msg.contains(".json"));
    }
}
