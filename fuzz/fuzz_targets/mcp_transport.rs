//! Goal: what the gateway reads of its MCP transports never panics and frames consistently: a
//! stdio server's newline-delimited output gives the same lines however it is split, none
//! holding a line break or over the limit; the session id read from an SSE messages URL's query
//! is always a short alphanumeric token; a message sent as an SSE `message` event reads back as
//! one event whose data is the message's lines.
//!
//! Run: `cargo fuzz run -s none mcp_transport -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tianji::mcp::sse::Events;
use tianji::mcp::stdio::Lines;
use tianji::mcp_api::sse::{message_event, session_param};

fuzz_target!(|data: &[u8]| {
    let max = 64;
    let cut = data.first().map_or(0, |b| *b as usize) % (data.len() + 1);
    let all = Lines::new(max).feed(data);
    let mut split = Lines::new(max);
    if let (Ok(all), Ok(mut got)) = (all, split.feed(&data[..cut])) {
        for l in &all {
            assert!(l.len() <= max && !l.contains(&b'\n'));
        }
        if let Ok(rest) = split.feed(&data[cut..]) {
            got.extend(rest);
            assert_eq!(got, all);
        }
    }

    if let Ok(q) = std::str::from_utf8(data) {
        if let Some(id) = session_param(Some(q)) {
            assert!(!id.is_empty() && id.len() <= 64);
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        let mut events = Events::default();
        let got = events.feed(&message_event(data)).unwrap_or_default();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "message");
        let lines: Vec<&str> = q.split(['\n', '\r']).filter(|l| !l.is_empty()).collect();
        assert_eq!(got[0].data, lines.join("\n"));
    }
});
