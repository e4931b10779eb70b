//! Goal: reading a pass-through answer for usage never panics, whatever the provider sent,
//! and finds the same usage however the bytes are split; model names in provider paths are
//! read without panicking.
//!
//! Run: `cargo fuzz run -s none pass_through_answer -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tianji::passthrough::usage::{AnswerReader, path_model};

const KINDS: &[(&str, &str)] = &[
    ("application/json", "anthropic"),
    ("application/json", ""),
    ("text/event-stream", "anthropic"),
    ("text/event-stream", "openai"),
    ("text/event-stream", "gemini"),
    ("text/event-stream", "cohere"),
    ("application/vnd.amazon.eventstream", "bedrock"),
    ("application/octet-stream", "openai"),
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 || data.len() > 64 * 1024 {
        return;
    }
    let (ct, provider) = KINDS[data[0] as usize % KINDS.len()];
    let split = (data[1] as usize % 64) + 1;
    let body = &data[2..];
    let _ = path_model(&String::from_utf8_lossy(body));
    let mut whole = AnswerReader::new(ct, provider, None);
    whole.feed(body);
    let (a, _) = whole.finish();
    let mut parts = AnswerReader::new(ct, provider, Some("m".into()));
    for c in body.chunks(split) {
        parts.feed(c);
    }
    let (b, _) = parts.finish();
    assert_eq!(a, b);
});
