//! Cost of the guardrail stage on a 4 KB chat prompt: choosing the request's guardrails, reading
//! its texts and running `banned_keywords` (20 keywords) and the content filter (email, phone,
//! credit card with Luhn, API keys, a custom regex), against the same request with no guardrail
//! configured. The issue's target: at most 10 us added per request.
//! Run: `cargo bench --bench guardrails`.
// Bench code: a failure should stop the bench loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
#[global_allocator]
static GLOBAL: tianji::util::alloc::Mimalloc = tianji::util::alloc::Mimalloc;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use tianji::auth::Principal;
use tianji::guardrails::{Guardrails, Mode, Run, Side};
use tianji::providers::Catalog;
use tianji::router::ModelTable;

const GUARDED: &str = r#"
model_list:
  - model_name: m
    tianji_params: {model: openai/m, api_base: "http://10.0.0.1:8000/v1", api_key: sk-1}
litellm_settings:
  callbacks: [banned_keywords]
  banned_keywords_list: [password, credit card, ssn, exploit, malware, ransomware, phishing,
    keylogger, botnet, rootkit, trojan, spyware, backdoor, jailbreak, bypass, weapon, explosive,
    narcotics, counterfeit, launder]
guardrails:
  - guardrail_name: filter
    litellm_params:
      guardrail: litellm_content_filter
      default_on: true
      patterns:
        - {pattern_type: prebuilt, pattern_name: email, action: MASK}
        - {pattern_type: prebuilt, pattern_name: phone, action: MASK}
        - {pattern_type: prebuilt, pattern_name: credit_card, action: BLOCK}
        - {pattern_type: prebuilt, pattern_name: api_keys, action: MASK}
        - {pattern_type: regex, pattern: 'PROJECT-\d{6}', name: project_code, action: BLOCK}
"#;

/// A chat request of about 4 KB (a system prompt and a user message of prose).
fn body() -> Vec<u8> {
    let prose = "The quick brown fox jumps over the lazy dog while the committee reviews \
        the quarterly roadmap and discusses deployment windows for the new service. ";
    let user: String = prose.repeat(4096 / prose.len() + 1)[..3800].to_string();
    serde_json::to_vec(&serde_json::json!({
        "model": "m",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": user}
        ]
    }))
    .unwrap()
}

fn setup(yaml: &str) -> (Arc<Guardrails>, Arc<ModelTable>) {
    let l = tianji::Loaded::from_yaml(yaml).unwrap();
    let g = Arc::new(Guardrails::build(&l.config).unwrap());
    let t = ModelTable::build(&l.config, Arc::new(Catalog::builtin().unwrap()), l.env).unwrap();
    (g, Arc::new(t))
}

/// The stage: choose, then run the pre_call guardrails on the request's texts.
fn stage(
    g: &Arc<Guardrails>,
    t: &Arc<ModelTable>,
    client: &tianji::upstream::HttpClient,
    raw: &[u8],
) {
    let selected = g.select(raw, &Principal::Master).unwrap();
    if selected == 0 {
        return;
    }
    let run = Run::new((g.clone(), selected), client.clone(), t.clone()).about(
        String::from("call-1"),
        String::from("m"),
        None,
        None,
    );
    let out = run
        .apply_body(Mode::PreCall, Side::Request, raw)
        .now_or_never()
        .expect("local guardrails do not wait");
    black_box(out.unwrap());
}

fn bench(c: &mut Criterion) {
    let raw = body();
    assert!((3900..4300).contains(&raw.len()), "{}", raw.len());
    let client = tianji::upstream::build_client().unwrap();
    let (guarded, t) = setup(GUARDED);
    let (none, _) = setup("model_list: []\n");
    let mut group = c.benchmark_group("guardrails_4kb_chat");
    group.bench_function("none", |b| {
        b.iter(|| stage(&none, &t, &client, black_box(&raw)))
    });
    group.bench_function("banned_keywords+content_filter", |b| {
        b.iter(|| stage(&guarded, &t, &client, black_box(&raw)))
    });
    // one email to mask: the rewrite path (body re-serialized)
    let masked = String::from_utf8(raw.clone())
        .unwrap()
        .replace("lazy dog", "a@b.example");
    let masked = masked.into_bytes();
    group.bench_function("banned_keywords+content_filter, masking", |b| {
        b.iter(|| stage(&guarded, &t, &client, black_box(&masked)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
