//! Goal: the SSE scanner never panics, and in pass-through mode forwards every byte unchanged
//! however the stream is split into chunks.
//!
//! Run: `cargo fuzz run -s none sse_scanner -- -max_total_time=60` (from the repo root).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tianji::upstream::sse::SseScanner;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 || data.len() > 64 * 1024 {
        return;
    }
    let split = (data[0] as usize % 64) + 1;
    let body = &data[1..];
    for drop in [false, true] {
        let mut s = SseScanner::new(drop);
        let mut out = Vec::new();
        for c in body.chunks(split) {
            out.extend_from_slice(&s.feed(Bytes::copy_from_slice(c)));
        }
        out.extend_from_slice(&s.finish());
        if !drop {
            assert_eq!(out, body);
        } else {
            assert!(out.len() <= body.len());
        }
    }
});
