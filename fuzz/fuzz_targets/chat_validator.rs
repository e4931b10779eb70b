//! Goal: the chat request validator (the parse stage's checks of every JSON LLM route) never
//! panics; every body it accepts is a JSON object no deeper than `MAX_DEPTH` that serde_json
//! reads (no lone surrogate), with its checked parameters in range; and it answers the same over
//! simd-json's tape and serde_json's raw members. The properties are in
//! `chat_validator_properties.rs` (also run over the corpus by the integration tests).
//!
//! Run: `cargo fuzz run -s none chat_validator -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("chat_validator_properties.rs");

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    let _ = check(data);
});
