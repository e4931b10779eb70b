//! Goal: the Claude Code plugin checks (`admin::plugins::check_source` and `is_kebab`, run on
//! the body of `POST /claude-code/plugins`) never panic; a source they accept is one of the four
//! kinds with a non-empty URL (an archive's https), and what they refuse is a 400 naming a
//! `source.*` field.
//!
//! Run: `cargo fuzz run -s none plugin_source -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use tianji::admin::plugins::{check_source, is_kebab};

fuzz_target!(|data: &[u8]| {
    if data.len() > 16 * 1024 {
        return;
    }
    if let Ok(name) = std::str::from_utf8(data)
        && is_kebab(name)
    {
        assert!(!name.starts_with('-') && !name.ends_with('-') && !name.contains("--"));
        assert!(name.bytes().all(|b| b == b'-' || b.is_ascii_lowercase() || b.is_ascii_digit()));
    }
    let Ok(src) = serde_json::from_slice::<Map<String, Value>>(data) else {
        return;
    };
    match check_source(&src) {
        Ok(url) => {
            assert!(!url.is_empty());
            let kind = src["source"].as_str().unwrap_or_default();
            assert!(matches!(kind, "github" | "url" | "git-subdir" | "archive"));
            if kind == "archive" {
                assert!(url.starts_with("https://"));
            }
        }
        Err(e) => {
            assert_eq!(e.status().as_u16(), 400);
            assert!(e.param().is_some_and(|p| p.starts_with("source.")), "{e:?}");
        }
    }
});
