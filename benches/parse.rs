//! Hot path: parse a chat request and build the upstream body (model replaced, stream_options
//! added), for a typical 1 KB body and a 100 KB one; the request validator alone (over the
//! parse's tape, as the parse stage runs it; and the slow path's scan of the raw bytes); and the
//! response cache's part of a hit: the parse with the canonical body, the key, the local-tier
//! lookup. Run: `cargo bench --bench parse`.
// Bench code: a failure should stop the bench loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tianji::pipeline::parse::{Expect, parse, parse_with, with_tape};
use tianji::pipeline::rewrite::rewrite;
use tianji::pipeline::validate::{scan, validate_tape};
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

    // the validator alone, on the tape the parse stage already has (its cost in the parse above)
    let mut g = c.benchmark_group("validate");
    let all_params = {
        let mut v: serde_json::Value = serde_json::from_slice(&chat_body(1024, true)).unwrap();
        for (k, x) in [
            ("top_p", serde_json::json!(0.9)),
            ("n", serde_json::json!(1)),
            ("presence_penalty", serde_json::json!(0.5)),
            ("frequency_penalty", serde_json::json!(-0.5)),
            ("max_completion_tokens", serde_json::json!(512)),
            ("seed", serde_json::json!(42)),
            ("logprobs", serde_json::json!(true)),
            ("top_logprobs", serde_json::json!(5)),
            ("user", serde_json::json!("user-1")),
            ("stream_options", serde_json::json!({"include_usage": true})),
        ] {
            v[k] = x;
        }
        Bytes::from(serde_json::to_vec(&v).unwrap())
    };
    for (name, body) in [
        ("1KB", chat_body(1024, false)),
        ("1KB_all_params", all_params),
        ("100KB", chat_body(100 * 1024, false)),
    ] {
        g.throughput(Throughput::Bytes(body.len() as u64));
        with_tape(&body, |root| {
            g.bench_function(name, |b| {
                b.iter(|| validate_tape(Expect::Chat, black_box(root)).unwrap())
            });
        })
        .unwrap();
    }
    // the slow path's whole-body scan (nesting, lone surrogates), for bodies simd-json refuses
    for (name, size) in [("scan_1KB", 1024), ("scan_100KB", 100 * 1024)] {
        let body = chat_body(size, false);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| b.iter(|| scan(black_box(&body)).unwrap()));
    }
    g.finish();

    // the response cache: parse with the canonical body, key, local lookup (a hit)
    let params: tianji::cache::CacheParams = serde_json::from_str("{}").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cache = std::sync::Arc::new(
        rt.block_on(tianji::cache::Cache::connect(
            &params,
            None,
            &Default::default(),
        ))
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
