//! Goal: assembling a streamed answer for the response cache never panics, however the stream
//! is split; replaying a stored answer never panics, and the events of any replay assemble again
//! into an answer.
//!
//! Run: `cargo fuzz run -s none cache_stream -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tianji::cache::stream::{Assembler, replay};

fuzz_target!(|data: &[u8]| {
    if data.is_empty() || data.len() > 64 * 1024 {
        return;
    }
    let body = &data[1..];
    let split = (data[0] as usize * body.len()) / 255;
    let mut a = Assembler::new();
    a.feed(&body[..split]);
    a.feed(&body[split..]);
    let _ = a.finish();

    if let Some(events) = replay(data, true) {
        let mut a = Assembler::new();
        for e in &events {
            a.feed(e);
        }
        assert!(a.finish().is_some(), "a replay that does not assemble");
    }
});
