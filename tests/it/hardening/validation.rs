//! Issue 19 item 9: chat requests were forwarded without checks (100,000-deep nesting, lone
//! surrogates, `temperature: 1e999999`, `max_tokens: "lots"` or `-5`). Now one validator on every
//! LLM route answers 400 naming the parameter, and the provider receives nothing; values that are
//! unusual but valid still pass byte for byte.

use serde_json::Value;

use crate::common::mock_upstream::MockUpstream;
use crate::common::{TestGateway, one_model};

/// A gateway with one OpenAI-compatible deployment `m` whose upstream model is also `m` (so a
/// forwarded body is the client's byte for byte).
async fn gateway() -> (MockUpstream, TestGateway) {
    let up = MockUpstream::start().await;
    let gw = TestGateway::start(&one_model("m", "openai/m", &up.base(), "")).await;
    (up, gw)
}

/// `body` to `path` is a 400 `invalid_request_error` naming `param` (and its message names it
/// too), and the upstream saw nothing.
async fn refused(
    gw: &TestGateway,
    up: &MockUpstream,
    path: &str,
    body: &str,
    param: &str,
) -> Value {
    let r = gw.post(path, body).await;
    let short = &body[..body.len().min(200)];
    assert_eq!(r.status.as_u16(), 400, "{path} {short}: {}", r.text());
    let v = r.assert_error(400);
    assert_eq!(v["error"]["type"], "invalid_request_error", "{short}: {v}");
    assert_eq!(v["error"]["param"], param, "{short}: {v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!("Invalid parameter {param}: ")),
        "{short}: {v}"
    );
    assert!(
        up.requests().is_empty(),
        "{path} {short}: the upstream received it"
    );
    v
}

const CHAT: &str = "/v1/chat/completions";

fn chat_with(extra: &str) -> String {
    format!(r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],{extra}}}"#)
}

fn nested(levels: usize) -> String {
    format!("{}\"x\"{}", "[".repeat(levels), "]".repeat(levels))
}

#[tokio::test]
async fn deep_nesting_is_a_400_naming_the_member() {
    let (up, gw) = gateway().await;
    // 100,000 deep inside `messages` (simd-json refuses it; the slow path used to accept it)
    let body = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":{}}}]}}"#,
        nested(100_000)
    );
    let v = refused(&gw, &up, CHAT, &body, "messages").await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nested deeper than 64 levels"),
        "{v}"
    );
    // 65 levels (the body's object is the first), on the hot path and on the slow path
    // (a member simd-json cannot read forces the slow one)
    refused(
        &gw,
        &up,
        CHAT,
        &chat_with(&format!(r#""x_deep":{}"#, nested(64))),
        "x_deep",
    )
    .await;
    refused(
        &gw,
        &up,
        CHAT,
        &chat_with(&format!(r#""y":1e400,"x_deep":{}"#, nested(64))),
        "x_deep",
    )
    .await;
    // 1,000: under simd-json's own limit, so it used to reach the provider
    refused(
        &gw,
        &up,
        CHAT,
        &chat_with(&format!(r#""tools":{}"#, nested(1000))),
        "tools",
    )
    .await;
}

#[tokio::test]
async fn lone_surrogates_are_a_400_naming_the_member() {
    let (up, gw) = gateway().await;
    for s in [r#""\ud800""#, r#""abc\udfff""#, r#""\ud83d\u0041""#] {
        let body = format!(r#"{{"model":"m","messages":[{{"role":"user","content":{s}}}]}}"#);
        let v = refused(&gw, &up, CHAT, &body, "messages").await;
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("lone surrogate"),
            "{v}"
        );
    }
    // in a member the gateway does not read, on the slow path too
    refused(
        &gw,
        &up,
        CHAT,
        &chat_with(r#""big":1e400,"metadata":{"note":"\udc00"}"#),
        "metadata",
    )
    .await;
}

#[tokio::test]
async fn numbers_overflowing_to_infinity_are_a_400() {
    let (up, gw) = gateway().await;
    for (extra, param) in [
        (r#""temperature":1e999999"#, "temperature"),
        (r#""top_p":-1e999999"#, "top_p"),
        (r#""max_tokens":1e999999"#, "max_tokens"),
        (r#""presence_penalty":1e400"#, "presence_penalty"),
        (
            r#""seed":123456789012345678901234567890123456789012"#,
            "seed",
        ),
    ] {
        refused(&gw, &up, CHAT, &chat_with(extra), param).await;
    }
    let v = refused(
        &gw,
        &up,
        CHAT,
        &chat_with(r#""temperature":1e999999"#),
        "temperature",
    )
    .await;
    assert_eq!(
        v["error"]["message"],
        "Invalid parameter temperature: must be a number between 0 and 2"
    );
}

#[tokio::test]
async fn wrong_types_and_out_of_range_values_are_a_400_naming_the_parameter() {
    let (up, gw) = gateway().await;
    for (extra, param) in [
        (r#""max_tokens":"lots""#, "max_tokens"),
        (r#""max_tokens":-5"#, "max_tokens"),
        (r#""max_tokens":0"#, "max_tokens"),
        (r#""max_tokens":12.5"#, "max_tokens"),
        (r#""max_completion_tokens":-1"#, "max_completion_tokens"),
        (r#""temperature":2.5"#, "temperature"),
        (r#""temperature":-0.5"#, "temperature"),
        (r#""temperature":"warm""#, "temperature"),
        (r#""top_p":1.01"#, "top_p"),
        (r#""n":0"#, "n"),
        (r#""n":129"#, "n"),
        (r#""presence_penalty":-2.5"#, "presence_penalty"),
        (r#""frequency_penalty":3"#, "frequency_penalty"),
        (r#""seed":"42""#, "seed"),
        (r#""logprobs":"yes""#, "logprobs"),
        (r#""top_logprobs":21"#, "top_logprobs"),
        (r#""stream":"yes""#, "stream"),
        (
            r#""stream_options":{"include_usage":"no"}"#,
            "stream_options.include_usage",
        ),
        (r#""user":42"#, "user"),
    ] {
        refused(&gw, &up, CHAT, &chat_with(extra), param).await;
    }
    let v = refused(
        &gw,
        &up,
        CHAT,
        &chat_with(r#""max_tokens":"lots""#),
        "max_tokens",
    )
    .await;
    assert_eq!(
        v["error"]["message"],
        "Invalid parameter max_tokens: must be an integer >= 1"
    );
    // `model` must be a string (checked before, now named the same way on the slow path too)
    refused(
        &gw,
        &up,
        CHAT,
        r#"{"model":5,"x":1e400,"messages":[]}"#,
        "model",
    )
    .await;
}

#[tokio::test]
async fn every_llm_route_uses_the_same_validator() {
    let (up, gw) = gateway().await;
    let deep = nested(200);
    let cases: Vec<(&str, String, &str)> = vec![
        // completions
        ("/v1/completions", r#"{"model":"m","prompt":"a","temperature":9}"#.into(), "temperature"),
        ("/v1/completions", r#"{"model":"m","prompt":"a","max_tokens":-5}"#.into(), "max_tokens"),
        ("/completions", r#"{"model":"m","prompt":"a","logprobs":"many"}"#.into(), "logprobs"),
        ("/v1/completions", format!(r#"{{"model":"m","prompt":{deep}}}"#), "prompt"),
        // embeddings
        ("/v1/embeddings", r#"{"model":"m","input":"a","dimensions":"lots"}"#.into(), "dimensions"),
        ("/v1/embeddings", r#"{"model":"m","input":"\ud800"}"#.into(), "input"),
        ("/v1/embeddings", format!(r#"{{"model":"m","input":{deep}}}"#), "input"),
        // Anthropic messages (Anthropic's ranges)
        (
            "/v1/messages",
            r#"{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"hi"}]}"#.into(),
            "max_tokens",
        ),
        (
            "/v1/messages",
            r#"{"model":"m","max_tokens":5,"temperature":1.5,"messages":[{"role":"user","content":"hi"}]}"#.into(),
            "temperature",
        ),
        (
            "/v1/messages",
            r#"{"model":"m","max_tokens":"lots","messages":[{"role":"user","content":"hi"}]}"#.into(),
            "max_tokens",
        ),
        // responses
        ("/v1/responses", r#"{"model":"m","input":"hi","temperature":1e999999}"#.into(), "temperature"),
        ("/v1/responses", r#"{"model":"m","input":"hi","max_output_tokens":-1}"#.into(), "max_output_tokens"),
        // Azure aliases
        (
            "/openai/deployments/m/chat/completions",
            chat_with(r#""max_tokens":"lots""#),
            "max_tokens",
        ),
        ("/openai/deployments/m/embeddings", r#"{"input":"a","dimensions":0}"#.into(), "dimensions"),
        // Gemini native
        (
            "/v1beta/models/m:generateContent",
            r#"{"contents":[{"parts":[{"text":"hi"}]}],"generationConfig":{"temperature":7}}"#.into(),
            "generationConfig.temperature",
        ),
        (
            "/v1beta/models/m:streamGenerateContent",
            format!(r#"{{"contents":[{{"parts":[{{"text":{deep}}}]}}]}}"#),
            "contents",
        ),
    ];
    for (path, body, param) in &cases {
        refused(&gw, &up, path, body, param).await;
    }
}

#[tokio::test]
async fn unusual_but_valid_values_pass_byte_for_byte() {
    let (up, gw) = gateway().await;
    let inner = nested(64 - 2); // with the body object and `x_vendor`: 64 levels in all
    let bodies = [
        chat_with(r#""temperature":0,"top_p":1,"n":1,"stream":false"#),
        chat_with(r#""temperature":2,"top_p":0,"n":128,"presence_penalty":-2,"frequency_penalty":2"#),
        chat_with(
            r#""temperature":2.0,"max_tokens":1,"max_completion_tokens":18446744073709551615,"seed":-9223372036854775808,"logprobs":true,"top_logprobs":0"#,
        ),
        chat_with(r#""temperature":null,"max_tokens":null,"stream":null,"user":"u-1""#),
        // unknown members are not ours to judge, whatever they hold
        chat_with(&format!(
            r#""x_vendor":{{"deep":{inner},"big":[1e400,-1e999999,123456789012345678901234567890],"t":"lots"}},"temperature":0.7"#
        )),
        r#"{"model":"m","messages":[{"role":"user","content":"\ud83d\ude00 caf\u00e9 \\ud800"}],"max_tokens":5}"#
            .to_string(),
    ];
    for body in &bodies {
        let before = up.requests().len();
        let r = gw.post(CHAT, body).await;
        assert_eq!(r.status, 200, "{body}: {}", r.text());
        let got = up.requests();
        assert_eq!(got.len(), before + 1, "{body}");
        assert_eq!(got[before].body, body.as_bytes(), "{body}");
    }
    // other routes' valid values too
    for (path, body) in [
        (
            "/v1/completions",
            r#"{"model":"m","prompt":"a","max_tokens":0,"echo":true,"logprobs":5}"#,
        ),
        (
            "/v1/embeddings",
            r#"{"model":"m","input":"a","dimensions":8}"#,
        ),
    ] {
        let r = gw.post(path, body).await;
        assert_eq!(r.status, 200, "{path} {body}: {}", r.text());
        assert_eq!(up.last().body, body.as_bytes(), "{path}");
    }
}

/// The `chat_validator` fuzz target's properties, the same code the target runs.
mod fuzz_properties {
    include!("../../../fuzz/fuzz_targets/chat_validator_properties.rs");
}

/// The fuzz target's body over its corpus and inputs made from it (cut, spliced, and with the
/// tokens that break validators put in), without a fuzzer: it never panics, and every property
/// holds.
#[test]
fn chat_validator_fuzz_properties_hold_over_its_corpus_and_mutations() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/chat_validator");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 5, "corpus at {dir}");
    let tokens: &[&[u8]] = &[
        b"[",
        b"]",
        b"{",
        b"}",
        b",",
        b":",
        b"\"",
        b"\\",
        b"\\u",
        b"\\ud800",
        b"\\udc00",
        b"\\ud83d\\ude00",
        b"1e999999",
        b"-1e400",
        b"1e-400",
        b"0",
        b"-5",
        b"2.5",
        b"128",
        b"129",
        b"18446744073709551616",
        b"-0",
        b"null",
        b"true",
        b"\"lots\"",
        b"\"temperature\":",
        b"\"max_tokens\":",
        b"\"n\":",
        b"\"top_p\":",
        b"\"stream\":",
        b"\"model\":",
        b"\"generationConfig\":{\"temperature\":",
        b"\"messages\":[",
        b"\xff",
    ];
    // xorshift: the same inputs every run
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    let (mut runs, mut accepted) = (0, 0);
    for seed in &seeds {
        accepted += fuzz_properties::check(seed).min(1);
        runs += 1;
    }
    for _ in 0..20_000 {
        let mut data = seeds[next(seeds.len())].clone();
        for _ in 0..1 + next(4) {
            let at = next(data.len() + 1);
            match next(4) {
                0 | 1 => {
                    let t = tokens[next(tokens.len())];
                    let copies = if next(8) == 0 { 1 + next(200) } else { 1 };
                    for _ in 0..copies {
                        data.splice(at..at, t.iter().copied());
                    }
                }
                2 => {
                    let end = (at + 1 + next(16)).min(data.len());
                    data.drain(at.min(end)..end);
                }
                _ => {
                    let other = &seeds[next(seeds.len())];
                    let from = next(other.len());
                    let to = (from + next(64)).min(other.len());
                    data.splice(at..at, other[from..to].iter().copied());
                }
            }
        }
        accepted += fuzz_properties::check(&data).min(1);
        runs += 1;
    }
    // both sides of the validator were exercised
    assert!(
        accepted > 1000 && runs - accepted > 1000,
        "{accepted} of {runs} accepted"
    );
}
