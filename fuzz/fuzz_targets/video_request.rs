//! Goal: a video request from a client never panics: its fields read into a `VideoAsk` (prompt,
//! seconds, size, a `data:` URI image decoded) and the Veo and RunwayML bodies built from it; a
//! provider's operation or task answer read back into OpenAI's video object.
//!
//! Run: `cargo fuzz run -s none video_request -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tianji::providers::video::{self, Kept, VideoAsk};

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    // what a provider says (any JSON) never panics and a status is always one of OpenAI's
    let veo = video::veo::state(&v);
    let task = video::runway::state(&v);
    let kept = Kept::decode(&v.to_string()).unwrap_or(Kept {
        op: "op".into(),
        seconds: 4,
        size: None,
        created_at: 0,
    });
    for s in [&veo, &task] {
        let o = video::object("video_x", "m", &kept, s);
        assert!(o["status"].is_string());
        assert!(s.progress <= 100);
    }
    let Some(fields) = v.as_object().cloned() else {
        return;
    };
    if let Ok(ask) = VideoAsk::from_fields(fields) {
        assert!(!ask.prompt.trim().is_empty());
        assert!(ask.seconds.is_none_or(|s| (1..=600).contains(&s)));
        if let Ok(body) = video::veo::create_body(&ask) {
            assert_eq!(body["instances"][0]["prompt"], ask.prompt.as_str());
        }
        let (path, body) = video::runway::create("gen4_turbo", &ask);
        assert!(path.starts_with('/'));
        assert!(body["duration"].is_u64());
    }
});
