//! Goal: a `/utils/token_counter` body from a client never panics the counter: any JSON as
//! messages, tools and tool choice either counts or is refused, a count covers at least the
//! reply's priming, and the tool rendering always closes its namespace.
//!
//! Run: `cargo fuzz run -s none token_count -- -max_total_time=60` (from the repo root).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tianji::providers::token_count::{Counter, Encoding, function_definitions};

static COUNTER: LazyLock<Counter> =
    LazyLock::new(|| Counter::new(Encoding::Cl100k).expect("cl100k_base loads"));

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let messages = v["messages"].as_array().cloned().unwrap_or_default();
    let tools = v["tools"].as_array().cloned();
    if let Some(tools) = &tools {
        assert!(function_definitions(tools).ends_with("} // namespace functions"));
    }
    let choice = v.get("tool_choice");
    if let Ok(n) = COUNTER.messages(&messages, tools.as_deref(), choice) {
        assert!(n >= 3);
    }
    if let Some(s) = v["prompt"].as_str() {
        let _ = COUNTER.text(s);
    }
});
