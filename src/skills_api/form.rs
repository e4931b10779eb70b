//! A skill upload's multipart form (multer): `display_title` (or `display_name`), `files[]`
//! (or `files`, `file`): one zip or loose files named by their path in the skill), and the
//! gateway's own fields `model` and `custom_llm_provider`, which are not passed on.

use bytes::Bytes;
use http::HeaderMap;

use super::SkillError;
use crate::error::GatewayError;
use crate::request_body::RequestBody;

/// The most fields a form may hold.
const MAX_FIELDS: usize = 10_000;

/// A read form.
#[derive(Debug, Default)]
pub struct Form {
    pub title: Option<String>,
    pub model: Option<String>,
    /// `custom_llm_provider`: `tianji_proxy` (or LiteLLM's `litellm_proxy`) keeps the skill in
    /// the gateway even when a model is named.
    pub provider: Option<String>,
    /// `(file name, content)` in the order sent.
    pub files: Vec<(String, Bytes)>,
}

impl Form {
    pub fn in_gateway(&self) -> bool {
        matches!(
            self.provider.as_deref(),
            Some("tianji_proxy" | "litellm_proxy")
        )
    }
}

fn bad(e: impl std::fmt::Display) -> SkillError {
    SkillError::BadForm(format!(
        "The skill upload is not a valid multipart form: {e}"
    ))
}

/// Parse a whole form held in memory.
pub async fn parse(content_type: &str, raw: Bytes) -> Result<Form, SkillError> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        SkillError::BadForm("Skills are uploaded as multipart/form-data with a boundary".into())
    })?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(raw) });
    let mut mp = multer::Multipart::new(stream, boundary);
    let mut form = Form::default();
    let mut fields = 0usize;
    while let Some(field) = mp.next_field().await.map_err(bad)? {
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(SkillError::BadForm(format!(
                "The skill upload has more than {MAX_FIELDS} fields"
            )));
        }
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        let data = field.bytes().await.map_err(bad)?;
        let text = || String::from_utf8_lossy(&data).trim().to_string();
        match name.as_str() {
            "display_title" | "display_name" => form.title = Some(text()).filter(|t| !t.is_empty()),
            "model" => form.model = Some(text()).filter(|t| !t.is_empty()),
            "custom_llm_provider" => form.provider = Some(text()),
            "files[]" | "files" | "file" => {
                let path = file_name.unwrap_or_else(|| "SKILL.md".into());
                form.files.push((path, data));
            }
            _ => {}
        }
    }
    if form.title.as_ref().is_some_and(|t| t.chars().count() > 255) {
        return Err(SkillError::BadForm(
            "display_title must be at most 255 characters".into(),
        ));
    }
    Ok(form)
}

/// Read the form of a request, within `limit` bytes (413 past it).
pub async fn read(
    headers: &HeaderMap,
    body: RequestBody,
    limit: usize,
) -> Result<Form, GatewayError> {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let raw = crate::pipeline::parse::read_declared(headers, body, limit).await?;
    Ok(parse(&content_type, raw).await?)
}

/// A form to send on: `display_title` (when given) and the files as `files[]`; its content
/// type and body.
pub fn encode(title: Option<&str>, files: &[(String, Bytes)]) -> (String, Bytes) {
    let boundary = format!("tianji-{}", uuid::Uuid::now_v7().simple());
    let mut out = Vec::with_capacity(files.iter().map(|(_, b)| b.len() + 256).sum::<usize>() + 512);
    let quoted = |s: &str| s.replace(['"', '\r', '\n'], "_");
    if let Some(t) = title {
        out.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"display_title\"\r\n\r\n{t}\r\n"
            )
            .as_bytes(),
        );
    }
    for (name, data) in files {
        let ct = if crate::skills::archive::is_zip(data) {
            "application/zip"
        } else {
            "application/octet-stream"
        };
        out.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files[]\"; filename=\"{}\"\r\nContent-Type: {ct}\r\n\r\n",
                quoted(name)
            )
            .as_bytes(),
        );
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/form-data; boundary={boundary}"),
        Bytes::from(out),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_encoded_form_parses_back() {
        let files = vec![
            (
                "s/SKILL.md".to_string(),
                Bytes::from_static(b"---\nname: s\n---\n"),
            ),
            ("s/a.py".to_string(), Bytes::from_static(b"print(1)")),
        ];
        let (ct, body) = encode(Some("My skill"), &files);
        let f = parse(&ct, body).await.unwrap();
        assert_eq!(f.title.as_deref(), Some("My skill"));
        assert_eq!(f.files, files);
        assert!(parse("application/json", Bytes::new()).await.is_err());
    }
}
