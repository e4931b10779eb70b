//! RunwayML's task API (`POST {base}/text_to_video` or `/image_to_video`, read back at
//! `GET {base}/tasks/{id}`, `DELETE` cancels or deletes): the create body and what a task says
//! of the video.

use serde_json::{Map, Value, json};

use super::{State, Status, VideoAsk};

/// The clip length sent when the client names none (RunwayML's models all take 5).
pub const DEFAULT_SECONDS: u32 = 5;

/// `X-Runway-Version` sent with every call.
pub const API_VERSION: &str = "2024-11-06";

/// The path (relative to the API base) and body of a create call.
pub fn create(model: &str, ask: &VideoAsk) -> (&'static str, Value) {
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("promptText".into(), json!(ask.prompt));
    let path = match &ask.image {
        Some(img) => {
            body.insert("promptImage".into(), json!(img.as_url()));
            "/image_to_video"
        }
        None => "/text_to_video",
    };
    if let Some(size) = &ask.size {
        body.insert("ratio".into(), json!(size.replace('x', ":")));
    }
    for (k, v) in &ask.extra {
        if !matches!(
            k.as_str(),
            "user" | "extra_body" | "metadata" | "model" | "promptText" | "promptImage"
        ) {
            body.insert(k.clone(), v.clone());
        }
    }
    // what is billed is what is asked
    body.insert(
        "duration".into(),
        json!(ask.seconds.unwrap_or(DEFAULT_SECONDS)),
    );
    (path, Value::Object(body))
}

/// The task id of a create answer.
pub fn task_id(answer: &Value) -> Option<&str> {
    answer
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// What a task says of the video.
pub fn state(task: &Value) -> State {
    let raw = task
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("PENDING")
        .to_ascii_uppercase();
    let status = match raw.as_str() {
        "RUNNING" => Status::InProgress,
        "SUCCEEDED" => Status::Completed,
        "FAILED" | "CANCELLED" => Status::Failed,
        _ => Status::Queued,
    };
    let error = (status == Status::Failed).then(|| {
        json!({
            "code": task.get("failureCode").and_then(Value::as_str).unwrap_or(if raw == "CANCELLED" { "cancelled" } else { "unknown" }),
            "message": task.get("failure").and_then(Value::as_str).unwrap_or("video generation failed"),
        })
    });
    let progress = match status {
        Status::Completed | Status::Failed => 100,
        Status::Queued => 0,
        Status::InProgress => task
            .get("progress")
            .and_then(Value::as_f64)
            .map_or(0, |p| (p * 100.0).clamp(0.0, 99.0) as u32),
    };
    let source = task
        .get("output")
        .and_then(|o| match o {
            Value::Array(a) => a.first().and_then(Value::as_str),
            Value::String(s) => Some(s.as_str()),
            _ => None,
        })
        .filter(|_| status == Status::Completed)
        .map(|u| super::Source::Url(u.to_string()));
    State {
        status,
        progress,
        completed_at: None,
        error,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ImageRef, Source};
    use super::*;

    #[test]
    fn create_picks_the_path_and_maps_fields() {
        let mut ask = VideoAsk {
            prompt: "waves".into(),
            size: Some("1280x720".into()),
            ..Default::default()
        };
        let (path, body) = create("gen4.5", &ask);
        assert_eq!(path, "/text_to_video");
        assert_eq!(
            body,
            json!({"model": "gen4.5", "promptText": "waves", "ratio": "1280:720", "duration": 5})
        );
        ask.image = Some(ImageRef::Url("https://img/x.png".into()));
        ask.seconds = Some(10);
        ask.extra = json!({"duration": 60, "seed": 7})
            .as_object()
            .cloned()
            .unwrap();
        let (path, body) = create("gen4_turbo", &ask);
        assert_eq!(path, "/image_to_video");
        assert_eq!(body["promptImage"], "https://img/x.png");
        assert_eq!(body["duration"], 10);
        assert_eq!(body["seed"], 7);
    }

    #[test]
    fn tasks_map_to_openai_statuses() {
        let s = state(&json!({"id": "t", "status": "RUNNING", "progress": 0.42}));
        assert_eq!((s.status, s.progress), (Status::InProgress, 42));
        let s = state(&json!({"id": "t", "status": "SUCCEEDED", "output": ["https://cdn/v.mp4"]}));
        assert_eq!(s.source, Some(Source::Url("https://cdn/v.mp4".into())));
        let s = state(
            &json!({"id": "t", "status": "FAILED", "failure": "nope", "failureCode": "SAFETY"}),
        );
        assert_eq!(s.status, Status::Failed);
        assert_eq!(s.error.unwrap()["code"], "SAFETY");
        assert_eq!(
            state(&json!({"status": "THROTTLED"})).status,
            Status::Queued
        );
    }
}
