//! Goal: the Anthropic event-stream translator never panics and gives the same output however
//! the upstream bytes are split.
//!
//! Run: `cargo fuzz run -s none anthropic_sse -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tianji::providers::anthropic::stream::StreamTranslator;
use tianji::providers::StreamTranslate;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 || data.len() > 64 * 1024 {
        return;
    }
    let split = (data[0] as usize % 64) + 1;
    let body = &data[1..];
    let mut whole = StreamTranslator::new(1, true);
    let mut a = whole.feed(body);
    a.extend(whole.finish());
    let mut parts = StreamTranslator::new(1, true);
    let mut b = Vec::new();
    for c in body.chunks(split) {
        b.extend(parts.feed(c));
    }
    b.extend(parts.finish());
    assert_eq!(a, b);
});
