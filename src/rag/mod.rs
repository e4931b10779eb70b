//! RAG ingestion, the pure part: what an uploaded document is ([`format`]), its text
//! ([`extract`]: plain text, Markdown, HTML, PDF) and the text cut into overlapping chunks
//! ([`chunk`]: LiteLLM's recursive character splitter, whole or streamed). No I/O: the caller
//! reads the upload, embeds the chunks and stores them.

pub mod chunk;
pub mod extract;
pub mod format;

pub use chunk::{ChunkOptions, StreamSplitter, split, split_ranges};
pub use extract::{ExtractLimits, extract, extract_sync};
pub use format::{DocFormat, SUPPORTED, detect};

use http::StatusCode;

/// Why a document gives no chunks. Every case is the caller's (a 4xx).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ExtractError {
    /// Neither the bytes, the content type nor the file name name a supported format.
    #[error("Unsupported file type `{got}`: supported formats are {SUPPORTED}")]
    Unsupported { got: String },
    /// A text document (or a text stream) that is not UTF-8.
    #[error("The document is not valid UTF-8 text")]
    NotText,
    /// A PDF that could not be read (malformed, encrypted, or the reader gave up).
    #[error("The document could not be read: {0}")]
    Corrupt(String),
    /// Nothing but whitespace was extracted.
    #[error(
        "No text could be extracted from the document; a scanned PDF (images only) needs an OCR \
         model (`ingest_options.ocr.model`)"
    )]
    Empty,
    /// The document is larger than [`ExtractLimits::max_bytes`].
    #[error("The document is {size} bytes; the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// Extraction took longer than [`ExtractLimits::max_pdf_seconds`].
    #[error("Extracting the document's text took longer than {seconds} s")]
    TooSlow { seconds: u64 },
    /// A chunking option out of range (the message names the field).
    #[error("{0}")]
    InvalidOptions(String),
}

impl ExtractError {
    /// The HTTP status of the error: 413 for a document too large, 422 for a document of a
    /// supported format whose text cannot be had (corrupt, empty, too slow to read), 400 for
    /// the rest (wrong format, not UTF-8, bad options).
    pub fn status(&self) -> StatusCode {
        match self {
            ExtractError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ExtractError::Corrupt(_) | ExtractError::Empty | ExtractError::TooSlow { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ExtractError::Unsupported { .. }
            | ExtractError::NotText
            | ExtractError::InvalidOptions(_) => StatusCode::BAD_REQUEST,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(ExtractError::TooLarge { size: 2, limit: 1 }.status(), 413);
        assert_eq!(ExtractError::Corrupt("x".into()).status(), 422);
        assert_eq!(ExtractError::Empty.status(), 422);
        assert_eq!(ExtractError::TooSlow { seconds: 1 }.status(), 422);
        assert_eq!(ExtractError::NotText.status(), 400);
        let e = ExtractError::Unsupported {
            got: "x.docx".into(),
        };
        assert_eq!(e.status(), 400);
        assert_eq!(
            e.to_string(),
            format!("Unsupported file type `x.docx`: supported formats are {SUPPORTED}")
        );
        assert!(
            ExtractError::Empty
                .to_string()
                .contains("ingest_options.ocr.model")
        );
    }
}
