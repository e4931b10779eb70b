//! Google Veo through the Gemini API (`{base}/v1beta/models/{model}:predictLongRunning`, the
//! operation read back at `{base}/v1beta/{name}`) and Vertex AI (`...:predictLongRunning`, read
//! back with `...:fetchPredictOperation {operationName}`): the create body and what an operation
//! says of the video.

use serde_json::{Map, Value, json};

use super::{AskError, ImageRef, State, Status, VideoAsk};

/// Veo's clip length when the client names none (what Veo 3 makes by default).
pub const DEFAULT_SECONDS: u32 = 8;

/// Why a Veo request cannot be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VeoError {
    #[error(transparent)]
    Ask(#[from] AskError),
    #[error(
        "Veo takes the reference image as an upload, a data: URI or a gs:// URI, not a web URL"
    )]
    ImageUrl,
}

/// OpenAI's `size` as Veo's `aspectRatio`: portrait sizes are 9:16, the rest 16:9.
pub fn aspect_ratio(size: &str) -> &'static str {
    let dims = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?)));
    match dims {
        Some((w, h)) if h > w => "9:16",
        _ => "16:9",
    }
}

/// The `predictLongRunning` body.
pub fn create_body(ask: &VideoAsk) -> Result<Value, VeoError> {
    let mut instance = Map::new();
    instance.insert("prompt".into(), Value::String(ask.prompt.clone()));
    match &ask.image {
        Some(ImageRef::Inline { mime, data }) => {
            instance.insert(
                "image".into(),
                json!({
                    "bytesBase64Encoded": base64_simd::STANDARD.encode_to_string(data),
                    "mimeType": mime,
                }),
            );
        }
        Some(ImageRef::Url(u)) if u.starts_with("gs://") => {
            instance.insert("image".into(), json!({"gcsUri": u}));
        }
        Some(ImageRef::Url(_)) => return Err(VeoError::ImageUrl),
        None => {}
    }
    let mut params = Map::new();
    if let Some(size) = &ask.size {
        params.insert("aspectRatio".into(), json!(aspect_ratio(size)));
    }
    for (k, v) in &ask.extra {
        match (k.as_str(), v) {
            ("parameters", Value::Object(p)) => {
                params.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())))
            }
            ("user" | "extra_body" | "metadata", _) => {}
            _ => {
                params.insert(k.clone(), v.clone());
            }
        }
    }
    // what is billed is what is asked: one video of the seconds the gateway prices
    for k in ["sampleCount", "numberOfVideos"] {
        params.remove(k);
    }
    params.insert(
        "durationSeconds".into(),
        json!(ask.seconds.unwrap_or(DEFAULT_SECONDS)),
    );
    Ok(json!({"instances": [instance], "parameters": params}))
}

/// The operation name of a `predictLongRunning` answer.
pub fn operation_name(answer: &Value) -> Option<&str> {
    answer
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
}

/// What an operation says of the video.
pub fn state(op: &Value) -> State {
    let done = op.get("done").and_then(Value::as_bool).unwrap_or(false);
    let mut error = op.get("error").filter(|e| !e.is_null()).map(|e| {
        json!({
            "code": e.get("code").map(|c| match c {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }).unwrap_or_else(|| "provider_error".into()),
            "message": e.get("message").and_then(Value::as_str).unwrap_or("video generation failed"),
        })
    });
    let response = op.get("response");
    let source = response.and_then(source);
    if done && error.is_none() && source.is_none() {
        let filtered = response
            .and_then(|r| r.get("raiMediaFilteredCount"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let reasons = response
            .and_then(|r| r.get("raiMediaFilteredReasons"))
            .map(Value::to_string)
            .unwrap_or_default();
        error = Some(json!({
            "code": if filtered > 0 { "content_filtered" } else { "no_video" },
            "message": if filtered > 0 {
                format!("the provider filtered the video out {reasons}").trim_end().to_string()
            } else {
                "the operation finished without a video".to_string()
            },
        }));
    }
    let status = match (&error, done) {
        (Some(_), _) => Status::Failed,
        (None, true) => Status::Completed,
        (None, false) => Status::InProgress,
    };
    let progress = match status {
        Status::Completed | Status::Failed => 100,
        _ => op
            .pointer("/metadata/progressPercent")
            .and_then(Value::as_f64)
            .map_or(0, |p| p.clamp(0.0, 99.0) as u32),
    };
    State {
        status,
        progress,
        completed_at: None,
        error,
        source: if status == Status::Completed {
            source
        } else {
            None
        },
    }
}

/// The first video of a finished operation's `response`.
fn source(response: &Value) -> Option<super::Source> {
    // the Gemini API
    if let Some(uri) = response
        .pointer("/generateVideoResponse/generatedSamples/0/video/uri")
        .and_then(Value::as_str)
    {
        return Some(super::Source::Url(uri.to_string()));
    }
    // Vertex AI
    let v = response.pointer("/videos/0")?;
    if let Some(b) = v.get("bytesBase64Encoded").and_then(Value::as_str) {
        let mime = v
            .get("mimeType")
            .and_then(Value::as_str)
            .unwrap_or("video/mp4");
        return Some(super::Source::Inline {
            mime: mime.to_string(),
            base64: b.to_string(),
        });
    }
    v.get("gcsUri")
        .and_then(Value::as_str)
        .map(|u| super::Source::Gcs(u.to_string()))
}

/// `gs://bucket/object` as Cloud Storage's JSON API media URL.
pub fn gcs_media_url(gs: &str) -> Option<String> {
    let (bucket, object) = gs.strip_prefix("gs://")?.split_once('/')?;
    if bucket.is_empty() || object.is_empty() {
        return None;
    }
    let enc: String = url::form_urlencoded::byte_serialize(object.as_bytes()).collect();
    Some(format!(
        "https://storage.googleapis.com/storage/v1/b/{bucket}/o/{}?alt=media",
        enc.replace('+', "%20")
    ))
}

#[cfg(test)]
mod tests {
    use super::super::Source;
    use super::*;

    #[test]
    fn body_maps_openai_fields() {
        let ask = VideoAsk {
            prompt: "a cat".into(),
            seconds: Some(4),
            size: Some("720x1280".into()),
            image: Some(ImageRef::Inline {
                mime: "image/png".into(),
                data: bytes::Bytes::from_static(b"hi"),
            }),
            extra: json!({"parameters": {"resolution": "1080p"}, "negativePrompt": "dogs", "user": "u"})
                .as_object()
                .cloned()
                .unwrap(),
        };
        let b = create_body(&ask).unwrap();
        let mut sneaky = ask.clone();
        sneaky.extra = json!({"durationSeconds": 60, "parameters": {"sampleCount": 4}})
            .as_object()
            .cloned()
            .unwrap();
        let s = create_body(&sneaky).unwrap();
        assert_eq!(
            s["parameters"],
            json!({"durationSeconds": 4, "aspectRatio": "9:16"})
        );
        assert_eq!(
            b,
            json!({"instances": [{"prompt": "a cat", "image": {"bytesBase64Encoded": "aGk=", "mimeType": "image/png"}}],
                   "parameters": {"durationSeconds": 4, "aspectRatio": "9:16", "resolution": "1080p", "negativePrompt": "dogs"}})
        );
        let web = VideoAsk {
            prompt: "p".into(),
            image: Some(ImageRef::Url("https://x/y.png".into())),
            ..Default::default()
        };
        assert_eq!(create_body(&web).unwrap_err(), VeoError::ImageUrl);
        assert_eq!(aspect_ratio("1792x1024"), "16:9");
        assert_eq!(aspect_ratio("bogus"), "16:9");
    }

    #[test]
    fn operations_say_how_far_the_video_is() {
        let running = state(&json!({"name": "op", "metadata": {"progressPercent": 40}}));
        assert_eq!((running.status, running.progress), (Status::InProgress, 40));
        let gemini = state(
            &json!({"name": "op", "done": true, "response": {"generateVideoResponse":
            {"generatedSamples": [{"video": {"uri": "https://g/files/a:download?alt=media"}}]}}}),
        );
        assert_eq!(gemini.status, Status::Completed);
        assert_eq!(
            gemini.source,
            Some(Source::Url("https://g/files/a:download?alt=media".into()))
        );
        let vertex = state(
            &json!({"done": true, "response": {"videos": [{"bytesBase64Encoded": "AAA=", "mimeType": "video/mp4"}]}}),
        );
        assert!(matches!(vertex.source, Some(Source::Inline { .. })));
        let failed = state(&json!({"done": true, "error": {"code": 3, "message": "bad prompt"}}));
        assert_eq!(failed.status, Status::Failed);
        assert_eq!(failed.error.unwrap()["message"], "bad prompt");
        let filtered =
            state(&json!({"done": true, "response": {"raiMediaFilteredCount": 1, "videos": []}}));
        assert_eq!(filtered.status, Status::Failed);
        assert_eq!(
            gcs_media_url("gs://b/dir/v 1.mp4").unwrap(),
            "https://storage.googleapis.com/storage/v1/b/b/o/dir%2Fv%201.mp4?alt=media"
        );
    }
}
