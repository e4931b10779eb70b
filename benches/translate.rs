//! Cost of translation: a typical 1 KB chat request and its answer, sent to an
//! OpenAI-compatible deployment (pass-through: parse, rewrite, read usage from the answer) and to
//! an Anthropic deployment (parse, translate to the Messages API, serialize; translate the
//! Messages answer back to a chat completion, serialize, read usage), and a 40-event stream
//! translated event by event. The issue's target: translation adds at most 15 us per request.
//! Run: `cargo bench --bench translate`.
// Bench code: a failure should stop the bench loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The gateway's allocator (src/main.rs): translation allocates, so it matters here.
#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
#[global_allocator]
static GLOBAL: tianji::util::alloc::Mimalloc = tianji::util::alloc::Mimalloc;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::hint::black_box;
use tianji::pipeline::parse::{Expect, parse};
use tianji::pipeline::rewrite::rewrite;
use tianji::providers::anthropic::{request, response, stream::StreamTranslator};
use tianji::providers::{Catalog, StreamTranslate};
use tianji::upstream::sse::usage_of_body;

/// A chat request of about 1 KB: a system prompt, a few turns, one tool.
fn chat_request() -> Bytes {
    let mut msgs = vec![
        json!({"role": "system", "content": "You are a helpful assistant. Answer briefly and cite sources when you can."}),
    ];
    for i in 0..6 {
        msgs.push(json!({"role": if i % 2 == 0 {"user"} else {"assistant"},
            "content": format!("Turn {i}: the quick brown fox jumps over the lazy dog, twice over.")}));
    }
    let body = json!({"model": "claude", "messages": msgs, "max_tokens": 256, "temperature": 0.7,
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]});
    Bytes::from(serde_json::to_vec(&body).unwrap())
}

fn openai_answer() -> Bytes {
    Bytes::from(json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "The weather in Paris is 18C and sunny, with a light breeze from the west."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 230, "completion_tokens": 20, "total_tokens": 250}}).to_string())
}

fn anthropic_answer() -> Bytes {
    Bytes::from(json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "The weather in Paris is 18C and sunny, with a light breeze from the west."}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 230, "output_tokens": 20}}).to_string())
}

fn anthropic_stream() -> Vec<Bytes> {
    let mut ev = vec![
        r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"usage":{"input_tokens":230,"output_tokens":1}}}

"#.to_string(),
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_string(),
    ];
    for i in 0..36 {
        ev.push(format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"word{i} \"}}}}\n\n"));
    }
    ev.push(
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n".into(),
    );
    ev.push("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":36}}\n\n".into());
    ev.push("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".into());
    ev.into_iter().map(Bytes::from).collect()
}

fn bench(c: &mut Criterion) {
    let catalog = Catalog::builtin().unwrap();
    let spec = catalog.get("openai").unwrap();
    let model = Bytes::from_static(b"\"gpt-4o\"");
    let body = chat_request();
    let (oa, an) = (openai_answer(), anthropic_answer());
    let mut g = c.benchmark_group("translate");
    g.bench_function("pass_through_request_and_answer", |b| {
        b.iter(|| {
            let req = parse(black_box(body.clone()), Expect::Chat).unwrap();
            let out = rewrite(&req, &spec, &model).unwrap();
            black_box(out);
            black_box(usage_of_body(black_box(&oa)))
        })
    });
    g.bench_function("anthropic_request_and_answer", |b| {
        b.iter(|| {
            let req = parse(black_box(body.clone()), Expect::Chat).unwrap();
            let v: Value = serde_json::from_slice(&req.raw).unwrap();
            let m = request::to_messages(&v, "claude-sonnet-4-5").unwrap();
            black_box(Bytes::from(serde_json::to_vec(&m).unwrap()));
            let msg: Value = serde_json::from_slice(black_box(&an)).unwrap();
            let chat = Bytes::from(response::to_chat(&msg, 1).to_string());
            black_box(usage_of_body(&chat))
        })
    });
    let events = anthropic_stream();
    g.bench_function("anthropic_stream_40_events", |b| {
        b.iter(|| {
            let mut t = StreamTranslator::new(1, true);
            let mut n = 0;
            for e in &events {
                n += t.feed(black_box(e)).len();
            }
            n += StreamTranslate::finish(&mut t).len();
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
