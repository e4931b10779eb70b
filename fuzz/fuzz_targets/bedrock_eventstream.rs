//! Goal: the Bedrock event-stream decoder and ConverseStream translator never panic and give
//! the same output however the upstream bytes are split.
//!
//! Run: `cargo fuzz run -s none bedrock_eventstream -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tianji::providers::bedrock::eventstream::Decoder;
use tianji::providers::bedrock::stream::StreamTranslator;
use tianji::providers::StreamTranslate;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 || data.len() > 64 * 1024 {
        return;
    }
    let split = (data[0] as usize % 64) + 1;
    let body = &data[1..];

    let mut whole = StreamTranslator::new("m", "id", 1, true);
    let mut a = whole.feed(body);
    a.extend(whole.finish());
    let mut parts = StreamTranslator::new("m", "id", 1, true);
    let mut b = Vec::new();
    for c in body.chunks(split) {
        b.extend(parts.feed(c));
    }
    b.extend(parts.finish());
    assert_eq!(a, b);

    // the decoder alone: same messages and errors however split
    let mut d = Decoder::new();
    d.push(body);
    let one: Vec<_> = std::iter::from_fn(|| d.next_message()).collect();
    let mut d = Decoder::new();
    let mut many = Vec::new();
    for c in body.chunks(split) {
        d.push(c);
        many.extend(std::iter::from_fn(|| d.next_message()));
    }
    assert_eq!(one, many);
});
