//! A document's text: UTF-8 text and Markdown as they are (a BOM dropped), HTML rendered to
//! plain text by `html2text` (scripts, styles and markup gone; lines not wrapped), PDF's text
//! layer read by `pdf-extract` on a blocking thread, its panics caught and its time bounded.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use bytes::Bytes;

use super::{DocFormat, ExtractError};

/// Limits on one extraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractLimits {
    /// The largest document read, in bytes ([`ExtractError::TooLarge`] above).
    pub max_bytes: usize,
    /// The longest a PDF (or HTML page) may take to read ([`ExtractError::TooSlow`] after).
    pub max_pdf_seconds: u64,
}

impl Default for ExtractLimits {
    /// 50 MiB, 60 s.
    fn default() -> Self {
        ExtractLimits {
            max_bytes: 50 << 20,
            max_pdf_seconds: 60,
        }
    }
}

/// HTML is rendered this wide: wider than any paragraph, so lines are not wrapped.
const HTML_WIDTH: usize = 1 << 20;
/// The deepest HTML nesting rendered.
pub const MAX_HTML_DEPTH: usize = 512;

/// The text of a document of `format`. PDF and HTML are read on a blocking thread (see
/// [`blocking`]); an empty result is [`ExtractError::Empty`].
pub async fn extract(
    format: DocFormat,
    bytes: Bytes,
    limits: &ExtractLimits,
) -> Result<String, ExtractError> {
    if bytes.len() > limits.max_bytes {
        return Err(ExtractError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let deadline = Duration::from_secs(limits.max_pdf_seconds);
    let text = match format {
        DocFormat::Text | DocFormat::Markdown => utf8(&bytes)?,
        DocFormat::Html => blocking(move || html(&bytes), deadline).await?,
        DocFormat::Pdf => blocking(move || pdf(&bytes), deadline).await?,
    };
    if text.trim().is_empty() {
        return Err(ExtractError::Empty);
    }
    Ok(text)
}

/// [`extract`] on the calling thread, for callers already on a blocking thread (and fuzz
/// targets): the same checks and caught panics, no deadline.
pub fn extract_sync(
    format: DocFormat,
    bytes: &[u8],
    limits: &ExtractLimits,
) -> Result<String, ExtractError> {
    if bytes.len() > limits.max_bytes {
        return Err(ExtractError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let text = match format {
        DocFormat::Text | DocFormat::Markdown => utf8(bytes)?,
        DocFormat::Html => caught(|| html(bytes))?,
        DocFormat::Pdf => caught(|| pdf(bytes))?,
    };
    if text.trim().is_empty() {
        return Err(ExtractError::Empty);
    }
    Ok(text)
}

/// `f`'s result, a panic as [`ExtractError::Corrupt`].
fn caught<F: FnOnce() -> Result<String, ExtractError>>(f: F) -> Result<String, ExtractError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the reader gave up".to_owned());
        Err(ExtractError::Corrupt(why.chars().take(300).collect()))
    })
}

/// UTF-8 text without its BOM.
fn utf8(bytes: &[u8]) -> Result<String, ExtractError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| ExtractError::NotText)
}

/// HTML as plain text: no link footnotes or emphasis marks, tables without borders. A page
/// nested deeper than [`MAX_HTML_DEPTH`] is refused: rendering time grows with the square of
/// the depth.
fn html(bytes: &[u8]) -> Result<String, ExtractError> {
    let config = html2text::config::plain_no_decorate()
        .no_table_borders()
        .allow_width_overflow();
    let corrupt = |e: html2text::Error| ExtractError::Corrupt(format!("HTML: {e}"));
    let dom = config.parse_html(bytes).map_err(corrupt)?;
    if depth(&dom.document) > MAX_HTML_DEPTH {
        return Err(ExtractError::Corrupt(format!(
            "HTML: elements nested more than {MAX_HTML_DEPTH} deep"
        )));
    }
    let tree = config.dom_to_render_tree(&dom).map_err(corrupt)?;
    config.render_to_string(tree, HTML_WIDTH).map_err(corrupt)
}

/// The deepest nesting of a DOM (walked without recursion).
fn depth(root: &html2text::Handle) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(root.clone(), 0usize)];
    while let Some((node, d)) = stack.pop() {
        deepest = deepest.max(d);
        stack.extend(node.children.borrow().iter().map(|c| (c.clone(), d + 1)));
    }
    deepest
}

/// The text layer of a PDF.
fn pdf(bytes: &[u8]) -> Result<String, ExtractError> {
    pdf_extract::extract_text_from_mem(bytes)
        .map_err(|e| ExtractError::Corrupt(format!("PDF: {e}")))
}

/// Run `f` on tokio's blocking pool: a panic (pdf-extract panics on malformed PDFs by design)
/// is [`ExtractError::Corrupt`], and a run longer than `deadline` is [`ExtractError::TooSlow`].
///
/// A run past its deadline cannot be stopped: the blocking thread keeps running until `f`
/// returns (its result is dropped), holding one of the blocking pool's threads meanwhile.
async fn blocking<F>(f: F, deadline: Duration) -> Result<String, ExtractError>
where
    F: FnOnce() -> Result<String, ExtractError> + Send + 'static,
{
    let handle = tokio::task::spawn_blocking(move || caught(f));
    match tokio::time::timeout(deadline, handle).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(ExtractError::Corrupt(format!("the reader failed: {join}"))),
        Err(_) => Err(ExtractError::TooSlow {
            seconds: deadline.as_secs(),
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A PDF with one page showing each of `lines` (Helvetica, WinAnsi), its xref offsets
    /// computed.
    pub(crate) fn pdf_with_lines(lines: &[&str]) -> Vec<u8> {
        let mut content = String::from("BT\n/F1 12 Tf\n14 TL\n72 720 Td\n");
        for line in lines {
            let escaped = line
                .replace('\\', "\\\\")
                .replace('(', "\\(")
                .replace(')', "\\)");
            content.push_str(&format!("({escaped}) Tj T*\n"));
        }
        content.push_str("ET\n");
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
             /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>"
                .to_owned(),
            format!(
                "<< /Length {} >>\nstream\n{content}endstream",
                content.len()
            ),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
                .to_owned(),
        ];
        let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
        let mut offsets = Vec::new();
        for (i, body) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        out.extend_from_slice(
            format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
        );
        for off in offsets {
            out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        out
    }

    fn limits() -> ExtractLimits {
        ExtractLimits::default()
    }

    async fn run(format: DocFormat, bytes: impl Into<Bytes>) -> Result<String, ExtractError> {
        extract(format, bytes.into(), &limits()).await
    }

    #[tokio::test]
    async fn text_and_markdown() {
        assert_eq!(
            run(DocFormat::Text, &b"\xef\xbb\xbfhello"[..])
                .await
                .unwrap(),
            "hello"
        );
        assert_eq!(
            run(DocFormat::Markdown, "# Title\n\nbody").await.unwrap(),
            "# Title\n\nbody"
        );
        assert_eq!(
            run(DocFormat::Text, &b"ab\xffcd"[..]).await,
            Err(ExtractError::NotText)
        );
        assert_eq!(
            run(DocFormat::Text, " \n\t ").await,
            Err(ExtractError::Empty)
        );
        assert_eq!(run(DocFormat::Text, "").await, Err(ExtractError::Empty));
    }

    #[tokio::test]
    async fn too_large() {
        let l = ExtractLimits {
            max_bytes: 4,
            ..limits()
        };
        let e = extract(DocFormat::Text, Bytes::from_static(b"hello"), &l).await;
        assert_eq!(e, Err(ExtractError::TooLarge { size: 5, limit: 4 }));
    }

    #[tokio::test]
    async fn html_drops_scripts_and_styles() {
        let page = "<html><head><title>T</title><style>p { color: red }</style>\
                    <script>var secret = 1;</script></head><body><nav><a href=\"/\">Home</a></nav>\
                    <h1>Policies</h1><p>Expense reports are due on <b>Fridays</b>, and a very long \
                    paragraph that goes on and on well past eighty columns without being wrapped \
                    in the middle.</p><table><tr><td>a</td><td>b</td></tr></table></body></html>";
        let text = run(DocFormat::Html, page).await.unwrap();
        assert!(
            text.contains("Expense reports are due on Fridays"),
            "{text}"
        );
        assert!(
            text.contains("without being wrapped in the middle."),
            "{text}"
        );
        assert!(
            !text.contains("secret") && !text.contains("color"),
            "{text}"
        );
        assert_eq!(
            run(DocFormat::Html, "<p> </p><script>x</script>").await,
            Err(ExtractError::Empty)
        );
    }

    #[tokio::test]
    async fn pdf_text() {
        let text = run(DocFormat::Pdf, pdf_with_lines(&["Hello PDF world"]))
            .await
            .unwrap();
        assert!(text.contains("Hello PDF world"), "{text:?}");
    }

    #[tokio::test]
    async fn pdf_without_text_is_empty() {
        let e = run(DocFormat::Pdf, pdf_with_lines(&[])).await.unwrap_err();
        assert_eq!(e, ExtractError::Empty);
        assert!(e.to_string().contains("OCR"));
    }

    #[tokio::test]
    async fn malformed_pdfs_are_corrupt() {
        let good = pdf_with_lines(&["Hello PDF world"]);
        let cases: Vec<Vec<u8>> = vec![
            b"%PDF-1.4\n".to_vec(),
            b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF"
                .to_vec(),
            good[..good.len() / 2].to_vec(),
            b"not a pdf at all".to_vec(),
        ];
        for case in cases {
            match run(DocFormat::Pdf, case).await {
                Err(ExtractError::Corrupt(_) | ExtractError::Empty) => {}
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn panics_are_corrupt() {
        let r = blocking(|| panic!("bad xref"), Duration::from_secs(60)).await;
        assert_eq!(r, Err(ExtractError::Corrupt("bad xref".into())));
    }

    #[tokio::test]
    async fn slow_runs_time_out() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        // The closure waits until the test is done: the deadline passes first.
        let r = blocking(
            move || {
                let _ = rx.recv();
                Ok(String::new())
            },
            Duration::from_millis(1),
        )
        .await;
        assert_eq!(r, Err(ExtractError::TooSlow { seconds: 0 }));
        drop(tx);
    }

    #[test]
    fn sync_extraction() {
        let pdf = pdf_with_lines(&["Hello PDF world"]);
        let text = extract_sync(DocFormat::Pdf, &pdf, &limits()).unwrap();
        assert!(text.contains("Hello PDF world"));
        let e = extract_sync(DocFormat::Pdf, b"%PDF-1.4", &limits());
        assert!(matches!(e, Err(ExtractError::Corrupt(_))), "{e:?}");
        let html = extract_sync(DocFormat::Html, b"<p>hi</p>", &limits());
        assert_eq!(html.map(|t| t.trim().to_owned()), Ok("hi".to_owned()));
    }

    #[tokio::test]
    async fn handbook_fixtures() {
        let pdf = include_bytes!("../../tests/fixtures/rag/handbook.pdf");
        assert_eq!(
            super::super::detect(Some("handbook.pdf"), None, pdf),
            Ok(DocFormat::Pdf)
        );
        let text = run(DocFormat::Pdf, &pdf[..]).await.unwrap();
        assert!(
            text.contains("The vacation policy grants 30 days"),
            "{text:?}"
        );
        let html = include_bytes!("../../tests/fixtures/rag/handbook.html");
        let text = run(DocFormat::Html, &html[..]).await.unwrap();
        assert!(
            text.contains("Expense reports are due on Fridays"),
            "{text}"
        );
        assert!(
            !text.contains("tracking-code") && !text.contains("font-family"),
            "{text}"
        );
    }
}
