//! Goal: reading a client's MCP message (the JSON-RPC envelope of `/mcp`) and an upstream
//! server's event stream never panics; what the envelope accepts (and JSON reads) is an object with
//! `jsonrpc: "2.0"` and an id (when present) that is a string or a number; events come out the
//! same however the stream is split.
//!
//! Run: `cargo fuzz run -s none mcp_message -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tianji::mcp::jsonrpc::{Incoming, parse, reply_to};
use tianji::mcp::sse::Events;

fuzz_target!(|data: &[u8]| {
    // `params` stay raw: their strings' escapes are checked when they are read
    if let (Ok(m), Ok(v)) = (parse(data), serde_json::from_slice::<serde_json::Value>(data)) {
        assert_eq!(v["jsonrpc"], "2.0");
        if let Incoming::Request { id, method, .. } = m {
            assert!(id.is_string() || id.is_number());
            assert_eq!(v["method"], method.as_str());
        }
    }
    let _ = reply_to(data, 1);
    let cut = data.first().map_or(0, |b| *b as usize) % (data.len() + 1);
    let mut whole = Events::default();
    let all = whole.feed(data);
    let mut split = Events::default();
    let first = split.feed(&data[..cut]);
    if let (Ok(all), Ok(mut got)) = (all, first) {
        if let Ok(rest) = split.feed(&data[cut..]) {
            got.extend(rest);
            assert_eq!(got, all);
        }
    }
});
