//! Hot path: parse a chat request and build the upstream body (model replaced, stream_options
//! added), for a typical 1 KB body and a 100 KB one; and the response cache's part of a hit:
//! the parse with the canonical body, the key, the local-tier lookup. Run:
//! `cargo bench --bench parse`.
// Bench code: a failure should stop the bench loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tianji::pipeline::parse::{Expect, parse, parse_with};
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

    // the response cache: parse with the canonical body, key, local lookup (a hit)
    let params: tianji::cache::CacheParams = serde_json::from_str("{}").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cache = std::sync::Arc::new(
        rt.block_on(tianji::cache::Cache::connect(&params, None))
            .unwrap(),
    );
    let caller = tianji::cache::key::Caller {
        key: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        team: Some("team-1"),
    };
    let mut g = c.benchmark_group("cache_hit");
    for (name, size) in [("1KB", 1024), ("100KB", 100 * 1024)] {
        let body = chat_body(size, false);
        let plan = |req: &tianji::pipeline::parse::ParsedRequest| {
            cache
                .plan(
                    "acompletion",
                    "gpt-4o-mini",
                    &req.raw,
                    req.canonical.as_deref(),
                    tianji::cache::Controls::default(),
                    caller,
                )
                .unwrap()
        };
        let req = parse_with(body.clone(), Expect::Chat, true).unwrap();
        let stored = cache.pending(&plan(&req), None).unwrap();
        rt.block_on(async {
            stored.store(Bytes::from_static(b"{\"id\":\"x\"}"), Default::default())
        });
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let req = parse_with(black_box(body.clone()), Expect::Chat, true).unwrap();
                let p = plan(&req);
                black_box(rt.block_on(cache.exact(&p)).unwrap())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
