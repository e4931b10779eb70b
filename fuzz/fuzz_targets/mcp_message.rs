//! Goal: reading a client's MCP message (the JSON-RPC envelope of `/mcp`) and an upstream
//! server's event stream never panics; what the envelope accepts (and JSON reads) is an object with
//! `jsonrpc: "2.0"` and an id (when present) that is a string or a number; events come out the
//! same however the stream is split; a `tools/call`'s params forwarded with another tool name
//! are JSON that says the same but for the name.
//!
//! Run: `cargo fuzz run -s none mcp_message -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tianji::mcp::jsonrpc::{Incoming, ToolCallParams, parse, reply_to};
use tianji::mcp::sse::Events;

fuzz_target!(|data: &[u8]| {
    // `params` stay raw: their strings' escapes are checked when they are read
    if let (Ok(m), Ok(v)) = (parse(data), serde_json::from_slice::<serde_json::Value>(data)) {
        assert_eq!(v["jsonrpc"], "2.0");
        if let Incoming::Request { id, method, params } = m {
            assert!(id.is_string() || id.is_number());
            assert_eq!(v["method"], method.as_str());
            if let Some(Ok(p)) = params.as_deref().map(ToolCallParams::read) {
                let out = p.forwarded("t").expect("forwarded params");
                let mut got: serde_json::Value = serde_json::from_str(out.get()).unwrap();
                assert_eq!(got["name"], "t");
                let mut want = v["params"].clone();
                assert_eq!(want["name"], p.name.as_str());
                got["name"] = serde_json::Value::Null;
                want["name"] = serde_json::Value::Null;
                assert_eq!(got, want);
            }
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
