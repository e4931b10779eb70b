//! Goal: the A2A JSON-RPC envelope check (`agents::rpc::parse`, the first thing done with the
//! body of `POST /a2a/{agent_id}`) never panics; what it accepts names a known method with an
//! object for params (with `params.message` for `message/*`), and sent back under the name the
//! client used it reads the same; what it refuses is a 4xx JSON-RPC error for the request's id.
//! And the agent stream's event-end reader (`agents::events`) never panics and finds the same
//! event ends however the bytes are split.
//!
//! Run: `cargo fuzz run -s none a2a_rpc -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use tianji::agents::events::EventEnds;
use tianji::agents::rpc::parse;

fn ends(chunks: &[&[u8]]) -> (Vec<usize>, u32) {
    let mut e = EventEnds::default();
    let mut at = Vec::new();
    let mut offset = 0;
    for c in chunks {
        if let Some(end) = e.feed(c) {
            assert!(end <= c.len());
            at.push(offset + end);
        }
        offset += c.len();
    }
    (at, e.count)
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    match parse(data) {
        Ok(call) => {
            assert!(call.params.is_object());
            if call.method.starts_with("message/") {
                assert!(call.params["message"].is_object());
            }
            let again = json!({"jsonrpc": "2.0", "id": call.id, "method": call.sent_method(),
                "params": call.params});
            let back = parse(again.to_string().as_bytes()).expect("a call sent on parses");
            assert_eq!(back, call);
        }
        Err(e) => {
            assert!(e.status.is_client_error(), "{e:?}");
            let body = e.body();
            assert_eq!(body["jsonrpc"], "2.0");
            assert!(body["error"]["code"].is_i64());
        }
    }

    // every split gives the last end of each chunk; the whole stream's last end and count agree
    let (whole, count) = ends(&[data]);
    let at = usize::from(data.first().copied().unwrap_or(0)) % (data.len() + 1);
    let (head, tail) = data.split_at(at);
    let (split, split_count) = ends(&[head, tail]);
    assert_eq!(count, split_count);
    assert_eq!(whole.last(), split.last());
});
