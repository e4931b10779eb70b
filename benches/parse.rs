//! Hot path: parse a chat request and build the upstream body (model replaced, stream_options
//! added), for a typical 1 KB body and a 100 KB one. Run: `cargo bench --bench parse`.
// Bench code: a failure should stop the bench loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tianji::pipeline::parse::{Expect, parse};
use tianji::pipeline::rewrite::rewrite;
use tianji::providers::Catalog;

/// An OpenAI-SDK-shaped body (`messages` first, `model` after) of about `size` bytes.
pub fn chat_body(size: usize, stream: bool) -> Bytes {
    let mut msgs = Vec::new();
    let mut len = 0;
    let mut i = 0;
    while len < size.saturating_sub(200) {
        let content = format!(
            "Message {i}: the quick brown fox jumps over the lazy dog, \"quoted\" and caf\u{e9}. "
        );
        len += content.len() + 40;
        msgs.push(serde_json::json!({"role": if i % 2 == 0 {"user"} else {"assistant"}, "content": content}));
        i += 1;
    }
    let body = serde_json::json!({"messages": msgs, "model": "gpt-4o-mini", "temperature": 0.7, "max_tokens": 256, "stream": stream});
    Bytes::from(serde_json::to_vec(&body).unwrap())
}

fn bench(c: &mut Criterion) {
    let catalog = Catalog::builtin().unwrap();
    let spec = catalog.get("openai").unwrap();
    let model = Bytes::from_static(b"\"gpt-4o-mini-2024-07-18\"");
    let mut g = c.benchmark_group("parse_and_rewrite");
    for (name, size) in [("1KB", 1024), ("100KB", 100 * 1024)] {
        for stream in [false, true] {
            let body = chat_body(size, stream);
            g.throughput(Throughput::Bytes(body.len() as u64));
            let id = format!("{name}{}", if stream { "_stream" } else { "" });
            g.bench_function(id, |b| {
                b.iter(|| {
                    let req = parse(black_box(body.clone()), Expect::Chat).unwrap();
                    black_box(rewrite(&req, &spec, &model).unwrap())
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
