//! The gateway's own JSON work on one MCP `tools/call`: the client's message read, the tool's
//! params rewritten for its server (`name` without the server prefix), the upstream message
//! written, the server's answer matched by id and the client's answer written. "forward" is
//! the gateway's code; "tree (before)" is the same step as it was first written (params parsed
//! into a `serde_json::Map`, re-serialized, parsed back for the message), kept here to show the
//! difference. The whole call's cost: `cargo bench --bench load -- --mcp`.
//! Run: `cargo bench --bench mcp`.
// Bench code: a failure should stop the bench loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
#[global_allocator]
static GLOBAL: tianji::util::alloc::Mimalloc = tianji::util::alloc::Mimalloc;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tianji::mcp::client::message;
use tianji::mcp::jsonrpc::{Incoming, ToolCallParams, parse, reply_to};

/// A client's `tools/call` with a few arguments (about 400 bytes).
const CALL: &str = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"wiki-search","arguments":{"query":"how do I rotate the signing keys of the staging cluster?","limit":10,"filters":{"space":["ENG","OPS"],"updated_after":"2026-01-01","labels":["runbook","security"]},"highlight":true},"_meta":{"progressToken":"p-42"}}}"#;
/// The server's answer (about 600 bytes).
const ANSWER: &str = r#"{"jsonrpc":"2.0","id":0,"result":{"content":[{"type":"text","text":"Found 3 pages: 1. Rotating signing keys (runbook, updated 2026-03-02): run the rotate job from the ops console, then restart the verifiers. 2. Staging cluster security notes. 3. Key management FAQ."}],"structuredContent":{"hits":[{"id":"ENG-1204","score":0.93},{"id":"OPS-88","score":0.71},{"id":"ENG-977","score":0.64}]},"isError":false}}"#;

fn answer(id: &Value, res: &RawValue) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{}}}"#, res.get())
}

fn forward() -> usize {
    let Incoming::Request { id, params, .. } = parse(black_box(CALL.as_bytes())).unwrap() else {
        panic!("a request")
    };
    let p = ToolCallParams::read(params.as_deref().unwrap()).unwrap();
    let (_, tool) = p.name.split_once('-').unwrap();
    let fwd = p.forwarded(tool).unwrap();
    let out = message(Some(0), "tools/call", Some(&fwd));
    let res = reply_to(black_box(ANSWER.as_bytes()), 0).unwrap().unwrap();
    out.len() + answer(&id, &res).len()
}

/// The first version's message writer: a tree built, the params parsed into it.
fn message_tree(id: Option<u64>, method: &str, params: Option<&RawValue>) -> Vec<u8> {
    let mut m = json!({"jsonrpc": "2.0", "method": method});
    if let Some(id) = id {
        m["id"] = json!(id);
    }
    if let Some(p) = params.and_then(|p| serde_json::from_str::<Value>(p.get()).ok()) {
        m["params"] = p;
    }
    serde_json::to_vec(&m).unwrap_or_default()
}

fn tree() -> usize {
    let Incoming::Request { id, params, .. } = parse(black_box(CALL.as_bytes())).unwrap() else {
        panic!("a request")
    };
    let mut p: Map<String, Value> = serde_json::from_str(params.unwrap().get()).unwrap();
    let full = p.get("name").and_then(Value::as_str).unwrap().to_string();
    let (_, tool) = full.split_once('-').unwrap();
    p.insert("name".into(), json!(tool));
    let fwd = RawValue::from_string(Value::Object(p).to_string()).unwrap();
    let out = message_tree(Some(0), "tools/call", Some(&fwd));
    let res = reply_to(black_box(ANSWER.as_bytes()), 0).unwrap().unwrap();
    out.len() + answer(&id, &res).len()
}

fn bench(c: &mut Criterion) {
    assert_eq!(
        serde_json::from_slice::<Value>(&{
            let p = RawValue::from_string(r#"{"name":"search","arguments":{"a":1}}"#.into());
            message(Some(0), "tools/call", Some(&p.unwrap()))
        })
        .unwrap(),
        json!({"jsonrpc": "2.0", "id": 0, "method": "tools/call", "params": {"name": "search", "arguments": {"a": 1}}})
    );
    c.bench_function("mcp tools/call JSON work, forward", |b| {
        b.iter(|| black_box(forward()))
    });
    c.bench_function("mcp tools/call JSON work, tree (before)", |b| {
        b.iter(|| black_box(tree()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
