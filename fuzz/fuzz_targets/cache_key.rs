//! Goal: a cache key is computed from any request body without panicking, the same body always
//! gets the same key, and the same value with its object members in another order
//! (re-serialized) gets the same key.
//!
//! Run: `cargo fuzz run -s none cache_key -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tianji::cache::key::{Caller, Scope, key};

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    let caller = Caller {
        key: "k",
        team: Some("t"),
    };
    let Ok(a) = key("g", data, Scope::Team, caller, None) else {
        return;
    };
    assert_eq!(key("g", data, Scope::Team, caller, None).unwrap(), a);
    // the same value written again by serde_json (members sorted, whitespace dropped) has the
    // same key, unless re-reading changed a float in its last bit (then the value differs)
    let v: serde_json::Value = serde_json::from_slice(data).unwrap();
    let again = serde_json::to_vec(&v).unwrap();
    let v2: serde_json::Value = serde_json::from_slice(&again).unwrap();
    if v2 == v {
        assert_eq!(key("g", &again, Scope::Team, caller, None).unwrap(), a);
    }
});
