//! Video generation in providers' own formats (pure, no I/O): the create requests of Veo
//! (Gemini API and Vertex AI, [`veo`]) and RunwayML ([`runway`]) built from OpenAI's
//! `/v1/videos` parameters, and OpenAI's video object built from their long-running operations
//! and tasks. OpenAI and Azure (Sora) speak OpenAI's format and need none of this.

pub mod runway;
pub mod veo;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// What the client asked for, in OpenAI's terms.
#[derive(Debug, Clone, Default)]
pub struct VideoAsk {
    pub prompt: String,
    /// `seconds` (OpenAI sends it as a string).
    pub seconds: Option<u32>,
    /// `size`, `WIDTHxHEIGHT`.
    pub size: Option<String>,
    /// `input_reference` (or LiteLLM's `image`).
    pub image: Option<ImageRef>,
    /// The other fields (provider parameters, passed on).
    pub extra: Map<String, Value>,
}

/// A reference image: uploaded bytes, or a URL (`data:` URIs included) the client gave.
#[derive(Debug, Clone)]
pub enum ImageRef {
    Inline { mime: String, data: Bytes },
    Url(String),
}

impl ImageRef {
    /// A `data:` URI as inline bytes; other URLs as they are.
    pub fn from_url(url: &str) -> ImageRef {
        match parse_data_uri(url) {
            Some((mime, data)) => ImageRef::Inline { mime, data },
            None => ImageRef::Url(url.to_string()),
        }
    }

    /// As a URL: inline bytes become a `data:` URI.
    pub fn as_url(&self) -> String {
        match self {
            ImageRef::Url(u) => u.clone(),
            ImageRef::Inline { mime, data } => format!(
                "data:{mime};base64,{}",
                base64_simd::STANDARD.encode_to_string(data)
            ),
        }
    }
}

/// `data:<mime>;base64,<data>` decoded.
fn parse_data_uri(url: &str) -> Option<(String, Bytes)> {
    let rest = url.strip_prefix("data:")?;
    let (head, data) = rest.split_once(',')?;
    let mime = head.strip_suffix(";base64")?;
    let bytes = base64_simd::STANDARD.decode_to_vec(data.trim()).ok()?;
    Some((mime.to_string(), Bytes::from(bytes)))
}

/// Why a create request cannot be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AskError {
    #[error("`prompt` is required")]
    NoPrompt,
    #[error("`seconds` must be a whole number of seconds between 1 and 600, got {0}")]
    BadSeconds(String),
    #[error("`{0}` must be a string")]
    NotText(&'static str),
}

impl VideoAsk {
    /// The parameters of a JSON body (or a multipart form's text fields as strings), `model`
    /// left out (the caller routes with it).
    pub fn from_fields(mut fields: Map<String, Value>) -> Result<VideoAsk, AskError> {
        fields.remove("model");
        let prompt = match fields.remove("prompt") {
            Some(Value::String(p)) if !p.trim().is_empty() => p,
            Some(Value::String(_)) | None | Some(Value::Null) => return Err(AskError::NoPrompt),
            Some(_) => return Err(AskError::NotText("prompt")),
        };
        let seconds = match fields.remove("seconds") {
            None | Some(Value::Null) => None,
            Some(v) => Some(seconds(&v)?),
        };
        let size = match fields.remove("size") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(AskError::NotText("size")),
        };
        let image = match fields
            .remove("input_reference")
            .or_else(|| fields.remove("image"))
        {
            Some(Value::String(u)) if !u.is_empty() => Some(ImageRef::from_url(&u)),
            Some(Value::Object(o)) => o
                .get("image_url")
                .or_else(|| o.get("url"))
                .and_then(Value::as_str)
                .map(ImageRef::from_url),
            _ => None,
        };
        Ok(VideoAsk {
            prompt,
            seconds,
            size,
            image,
            extra: fields,
        })
    }
}

/// `seconds` as a number or a numeric string.
fn seconds(v: &Value) -> Result<u32, AskError> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (1.0..=600.0).contains(&n) && n.fract() == 0.0 => Ok(n as u32),
        _ => Err(AskError::BadSeconds(v.to_string())),
    }
}

/// OpenAI's video statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Queued,
    InProgress,
    Completed,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Failed => "failed",
        }
    }

    /// Whether the video will not change any more.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Completed | Status::Failed)
    }

    /// An OpenAI status string (unknown ones are still running).
    pub fn parse(s: &str) -> Status {
        match s {
            "queued" => Status::Queued,
            "completed" => Status::Completed,
            "failed" => Status::Failed,
            _ => Status::InProgress,
        }
    }
}

/// What the gateway keeps of a video whose provider does not say it again (Veo, RunwayML):
/// sealed into the id it hands out, so no database is needed to show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Kept {
    /// The provider's id (a Veo operation name, a RunwayML task id).
    #[serde(rename = "o")]
    pub op: String,
    #[serde(rename = "s")]
    pub seconds: u32,
    #[serde(rename = "z", default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Unix seconds.
    #[serde(rename = "t")]
    pub created_at: u64,
}

impl Kept {
    /// As the provider id sealed into the gateway's id.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn decode(raw: &str) -> Option<Kept> {
        serde_json::from_str(raw).ok()
    }
}

/// Where a finished video's bytes are.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A URL to GET (the Gemini API's file URI, a RunwayML output).
    Url(String),
    /// Vertex AI's inline answer.
    Inline { mime: String, base64: String },
    /// Vertex AI's Cloud Storage object (`gs://bucket/object`).
    Gcs(String),
}

/// What a provider says of a video now.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub status: Status,
    /// 0-100.
    pub progress: u32,
    pub completed_at: Option<u64>,
    pub error: Option<Value>,
    pub source: Option<Source>,
}

/// OpenAI's video object.
pub fn object(id: &str, model: &str, kept: &Kept, state: &State) -> Value {
    json!({
        "id": id,
        "object": "video",
        "model": model,
        "status": state.status.as_str(),
        "progress": state.progress,
        "created_at": kept.created_at,
        "completed_at": state.completed_at,
        "expires_at": null,
        "error": state.error,
        "remixed_from_video_id": null,
        "seconds": kept.seconds.to_string(),
        "size": kept.size.clone().unwrap_or_default(),
        "usage": {"duration_seconds": kept.seconds},
    })
}

/// The status of an OpenAI video object.
pub fn status_of(video: &Value) -> Status {
    Status::parse(video.get("status").and_then(Value::as_str).unwrap_or(""))
}

/// The seconds of an OpenAI video object (`seconds`, a string or a number), else `default`.
pub fn seconds_of(video: &Value, default: u32) -> u32 {
    video
        .get("seconds")
        .and_then(|v| seconds(v).ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_read_openai_fields() {
        let f = json!({"model": "m", "prompt": "a cat", "seconds": "8", "size": "1280x720",
            "input_reference": "data:image/png;base64,aGk=", "parameters": {"x": 1}});
        let a = VideoAsk::from_fields(f.as_object().cloned().unwrap()).unwrap();
        assert_eq!(a.prompt, "a cat");
        assert_eq!(a.seconds, Some(8));
        assert_eq!(a.size.as_deref(), Some("1280x720"));
        match a.image {
            Some(ImageRef::Inline { mime, data }) => {
                assert_eq!(mime, "image/png");
                assert_eq!(&data[..], b"hi");
            }
            other => panic!("{other:?}"),
        }
        assert!(a.extra.contains_key("parameters") && !a.extra.contains_key("model"));
        let bad = |v: Value| VideoAsk::from_fields(v.as_object().cloned().unwrap()).unwrap_err();
        assert_eq!(bad(json!({"prompt": " "})), AskError::NoPrompt);
        assert!(matches!(
            bad(json!({"prompt": "p", "seconds": "4.5"})),
            AskError::BadSeconds(_)
        ));
        assert!(matches!(
            bad(json!({"prompt": "p", "seconds": 0})),
            AskError::BadSeconds(_)
        ));
    }

    #[test]
    fn kept_round_trips() {
        let k = Kept {
            op: "models/veo/operations/1".into(),
            seconds: 8,
            size: None,
            created_at: 5,
        };
        assert_eq!(Kept::decode(&k.encode()), Some(k));
        assert_eq!(Kept::decode("video_123"), None);
    }
}
