//! Hot path: the SSE usage scanner, per chunk, in pass-through mode and in the mode that drops
//! the usage chunk the gateway requested on its own. Run: `cargo bench --bench sse`.
// Bench code: a failure should stop the bench loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tianji::upstream::sse::SseScanner;

fn chunk(i: usize) -> Bytes {
    Bytes::from(format!(
        "data: {{\"id\":\"chatcmpl-AbCdEf0123456789\",\"object\":\"chat.completion.chunk\",\"created\":1730000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_0123456789\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" token{i}\"}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n"
    ))
}

fn bench(c: &mut Criterion) {
    let chunks: Vec<Bytes> = (0..100).map(chunk).collect();
    let usage = Bytes::from_static(b"data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":100,\"total_tokens\":112}}\n\ndata: [DONE]\n\n");
    let mut g = c.benchmark_group("sse_scanner");
    g.throughput(Throughput::Elements(101));
    for (name, drop) in [
        ("pass_through_101_chunks", false),
        ("dropping_usage_101_chunks", true),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut s = SseScanner::new(drop);
                for c in &chunks {
                    black_box(s.feed(c.clone()));
                }
                black_box(s.feed(usage.clone()));
                black_box(s.finish());
                s.usage
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
