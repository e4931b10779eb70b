//! Goal: reading an MCP server row (`mcp::stored::entry_of`, run on every `/v1/mcp/server`
//! body and every stored row at reload) never panics; a row it accepts has a name of letters,
//! digits, `_` and `.`, an http(s) URL, no stdio, and becomes a server unless its credential is
//! not a valid header value.
//!
//! Run: `cargo fuzz run -s none mcp_server_row -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tianji::config::mcp::Transport;
use tianji::mcp::Server;
use tianji::mcp::stored::entry_of;

fuzz_target!(|data: &[u8]| {
    if data.len() > 16 * 1024 {
        return;
    }
    let Ok(row) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok((name, entry)) = entry_of(&row) else {
        return;
    };
    assert!(!name.is_empty());
    assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.'));
    assert_ne!(entry.transport, Transport::Stdio);
    let url = entry.url.as_deref().unwrap_or_default();
    assert!(url.starts_with("http://") || url.starts_with("https://"));
    if Server::new(&name, &entry).is_err() {
        // only a credential with a control character is not a header value
        let v = entry.auth_value.as_deref().unwrap_or_default();
        assert!(v.chars().any(|c| (c < ' ' && c != '\t') || c == '\x7f'), "{row}");
    }
});
