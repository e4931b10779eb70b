//! Goal: an A2A JSON-RPC body from a client never panics the envelope check, and a checked
//! `message/send` / `message/stream` always converts: the chat request made from its message is
//! JSON asking for the agent's model with one user message carrying the message's text, and
//! every A2A answer or event built for it is a JSON-RPC result with the request's id.
//!
//! Run: `cargo fuzz run -s none a2a_message -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tianji::agents::card::Version;
use tianji::agents::convert::{self, Task};
use tianji::agents::rpc;

fuzz_target!(|data: &[u8]| {
    let Ok(call) = rpc::parse(data) else {
        return;
    };
    let _ = convert::session_of(&call.params);
    let message = &call.params["message"];
    let text = convert::text_of(message);
    let asked: Value = serde_json::from_slice(&convert::chat_request("m", Some(&call.params), message, true))
        .expect("chat request is JSON");
    assert_eq!(asked["model"], "m");
    assert_eq!(asked["messages"][0]["content"].as_str(), Some(text.as_str()));
    for version in [Version::V03, Version::V10] {
        let mut t = Task::new(version, &call.id, message);
        for result in [t.reply(&text), t.submitted(message), t.status("working", None, false)] {
            assert_eq!(t.envelope(result)["id"], call.id);
        }
        let answer: Value = serde_json::from_slice(&t.answer(&text)).expect("answer is JSON");
        assert_eq!(answer["id"], call.id);
        let chunk = t.chunk(&text);
        assert!(t.sse(chunk).ends_with(b"\n\n"));
    }
});
