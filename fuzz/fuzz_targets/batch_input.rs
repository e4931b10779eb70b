//! Goal: counting a batch input file (JSONL read from a provider) never panics, and counts
//! at most one request per line.
//!
//! Run: `cargo fuzz run -s none batch_input -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((requests, _tokens)) = tianji::managed::batches::count(data) {
        let lines = data.split(|b| *b == b'\n').count() as u64;
        assert!(requests <= lines);
    }
});
