// The properties of the `chat_validator` fuzz target, included by it and by the run over its
// corpus and generated inputs in tests/it/hardening/validation.rs (so both check the same).
// Whatever the bytes, on every JSON LLM route:
// - parsing (with the validator) and the slow path's scan never panic; a refusal is a 400;
// - an accepted body is one JSON object, nested at most MAX_DEPTH deep (counted here on its
//   own), which serde_json reads whole (so no lone surrogate) unless a number is beyond its
//   range, and whose checked parameters are within their ranges;
// - the validator gives the same answer over simd-json's tape and over serde_json's raw
//   members whenever simd-json reads the body.

use bytes::Bytes;
use serde_json::Value;
use serde_json::value::RawValue;
use tianji::pipeline::parse::{Expect, parse, with_tape};
use tianji::pipeline::validate::{MAX_DEPTH, Members, scan, validate, validate_tape};

const ROUTES: [Expect; 7] = [
    Expect::Chat,
    Expect::Completion,
    Expect::Embedding,
    Expect::Responses,
    Expect::Messages,
    Expect::Gemini { stream: false },
    Expect::Moderation,
];

/// Checks the properties; answers on how many routes `data` was accepted.
pub fn check(data: &[u8]) -> usize {
    let _ = scan(data);
    let mut accepted_on = 0;
    for expect in ROUTES {
        match parse(Bytes::copy_from_slice(data), expect) {
            Ok(_) => {
                accepted(data, expect);
                accepted_on += 1;
            }
            Err(e) => assert_eq!(e.status().as_u16(), 400, "{e}"),
        }
    }
    let tape = with_tape(data, |root| ROUTES.map(|e| validate_tape(e, root).is_ok()));
    if let (Some(tape), Ok(members)) = (tape, serde_json::from_slice::<Members<'_>>(data)) {
        for (i, expect) in ROUTES.into_iter().enumerate() {
            let raw = validate(expect, members.0.iter().map(|(k, v)| (k.as_str(), *v)));
            assert_eq!(tape[i], raw.is_ok(), "{expect:?}: tape and raw views differ");
        }
    }
    accepted_on
}

fn accepted(data: &[u8], expect: Expect) {
    let whole: &RawValue = serde_json::from_slice(data).expect("an accepted body is JSON");
    assert!(whole.get().starts_with('{'), "an accepted body is an object");
    assert!(depth(data) <= MAX_DEPTH, "accepted {} levels deep", depth(data));
    let v: Value = match serde_json::from_slice(data) {
        Ok(v) => v,
        Err(e) => {
            assert!(e.to_string().contains("number out of range"), "{expect:?}: {e}");
            return;
        }
    };
    let num = |k: &str, lo: f64, hi: f64| match &v[k] {
        Value::Null => {}
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            assert!((lo..=hi).contains(&x), "{expect:?}: {k} = {x}");
        }
        other => panic!("{expect:?}: {k} = {other}"),
    };
    let int = |k: &str, lo: u64, hi: u64| match &v[k] {
        Value::Null => {}
        Value::Number(n) => {
            let x = n.as_u64().unwrap_or_else(|| panic!("{expect:?}: {k} = {n}"));
            assert!((lo..=hi).contains(&x), "{expect:?}: {k} = {x}");
        }
        other => panic!("{expect:?}: {k} = {other}"),
    };
    let kind = |k: &str, ok: fn(&Value) -> bool| {
        assert!(v[k].is_null() || ok(&v[k]), "{expect:?}: {k} = {}", v[k]);
    };
    kind("model", Value::is_string);
    kind("stream", Value::is_boolean);
    kind("user", Value::is_string);
    match expect {
        Expect::Chat => {
            num("temperature", 0.0, 2.0);
            num("top_p", 0.0, 1.0);
            num("presence_penalty", -2.0, 2.0);
            num("frequency_penalty", -2.0, 2.0);
            int("n", 1, 128);
            int("max_tokens", 1, u64::MAX);
            int("max_completion_tokens", 1, u64::MAX);
            int("top_logprobs", 0, 20);
            kind("logprobs", Value::is_boolean);
            kind("seed", |s| s.is_i64() || s.is_u64());
        }
        Expect::Completion => {
            num("temperature", 0.0, 2.0);
            int("n", 1, 128);
            int("max_tokens", 0, u64::MAX);
            int("logprobs", 0, u64::MAX);
        }
        Expect::Messages => {
            num("temperature", 0.0, 1.0);
            num("top_p", 0.0, 1.0);
            int("max_tokens", 1, u64::MAX);
            int("top_k", 0, u64::MAX);
        }
        Expect::Responses => {
            num("temperature", 0.0, 2.0);
            int("max_output_tokens", 1, u64::MAX);
        }
        Expect::Embedding => int("dimensions", 1, u64::MAX),
        Expect::Gemini { .. } => {
            let g = &v["generationConfig"];
            assert!(g.is_null() || g.is_object(), "generationConfig = {g}");
            let t = &g["temperature"];
            assert!(
                t.is_null() || t.as_f64().is_some_and(|x| (0.0..=2.0).contains(&x)),
                "generationConfig.temperature = {t}"
            );
        }
        _ => {}
    }
}

/// Nesting depth, counted without any parser: brackets outside strings.
fn depth(data: &[u8]) -> usize {
    let (mut d, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for &b in data {
        if in_str {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                d += 1;
                max = max.max(d);
            }
            b'}' | b']' => d = d.saturating_sub(1),
            _ => {}
        }
    }
    max
}
