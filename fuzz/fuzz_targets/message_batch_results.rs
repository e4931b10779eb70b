//! Goal: counting an Anthropic message batch's results (JSONL from the provider, in pieces of
//! any size) never panics, counts at most one result per line, and does not depend on where
//! the pieces were cut. Also: a batch create body's model check never panics.
//!
//! Run: `cargo fuzz run -s none message_batch_results -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tianji::managed::batch_results::Counter;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let mut whole = Counter::default();
    whole.feed(rest);
    whole.finish();
    let mut pieces = Counter::default();
    for piece in rest.chunks(usize::from(cut).max(1)) {
        pieces.feed(piece);
    }
    pieces.finish();
    let lines = rest.split(|b| *b == b'\n').count() as u64;
    assert!(whole.succeeded <= lines);
    assert_eq!(whole.succeeded, pieces.succeeded);
    assert_eq!(whole.usage, pieces.usage);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(rest) {
        let _ = tianji::managed::message_batches::batch_model(&v);
    }
});
