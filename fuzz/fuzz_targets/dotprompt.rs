//! Goal: a `.prompt` text (as `/prompts/test` or a stored prompt gives it) and variables never
//! panic the front matter parser, the template engine or the role-marker split, and a render
//! stays within its bounds: the output is at most `MAX_OUTPUT_BYTES`, and every message is a
//! system, user or assistant message with non-empty text.
//!
//! The input: the `.prompt` text, then (after the first NUL byte, if any) the variables as JSON.
//!
//! Run: `cargo fuzz run -s none dotprompt -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use tianji::prompts::{Dotprompt, messages, render};

fuzz_target!(|data: &[u8]| {
    let (text, vars) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let vars: Map<String, Value> = serde_json::from_slice(vars).unwrap_or_default();
    let Ok(p) = Dotprompt::parse(text) else {
        return;
    };
    let _ = p.model();
    let _ = p.params();
    if let Some(schema) = p.schema() {
        let _ = render::check_schema(schema, &vars);
    }
    let Ok(out) = render::render(&p.content, &vars) else {
        return;
    };
    assert!(out.len() <= render::MAX_OUTPUT_BYTES);
    for m in messages::messages(&out) {
        assert!(matches!(m["role"].as_str(), Some("system" | "user" | "assistant")));
        assert!(!m["content"].as_str().unwrap_or_default().is_empty());
    }
});
