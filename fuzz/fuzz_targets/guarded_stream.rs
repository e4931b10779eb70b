//! Goal: a stream under a `post_call` guardrail (its SSE text assembled from any upstream
//! bytes, its end held) never panics; when the guardrails pass, every byte goes out unchanged
//! and in order, however the stream is split; when they block, what went out is a prefix of
//! the stream followed by one error event.
//!
//! Run: `cargo fuzz run -s none guarded_stream -- -max_total_time=60` (from the repo root).
#![no_main]

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures_util::FutureExt;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tianji::body::Body;
use tianji::guardrails::stream::Guarded;
use tianji::guardrails::{Guardrails, Run};

struct Setup {
    set: Arc<Guardrails>,
    models: Arc<tianji::router::ModelTable>,
    client: tianji::upstream::HttpClient,
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let yaml = "model_list: []\nguardrails:\n  - guardrail_name: g\n    litellm_params: {guardrail: litellm_content_filter, mode: post_call, blocked_words: [{keyword: zz, action: BLOCK}]}\n";
        let l = tianji::Loaded::from_yaml(yaml).unwrap();
        let catalog = Arc::new(tianji::providers::Catalog::builtin().unwrap());
        Setup {
            set: Arc::new(Guardrails::build(&l.config).unwrap()),
            models: Arc::new(tianji::router::ModelTable::build(&l.config, catalog, l.env).unwrap()),
            client: tianji::upstream::build_client().unwrap(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 || data.len() > 64 * 1024 {
        return;
    }
    let s = setup();
    let split = (data[0] as usize % 64) + 1;
    let body = &data[1..];
    for selected in [0u64, 1] {
        let run = Arc::new(Run::new((s.set.clone(), selected), s.client.clone(), s.models.clone()));
        let inner = Body::chunks(body.chunks(split).map(Bytes::copy_from_slice));
        let guarded = Guarded::new(Box::new(inner), run);
        let out = guarded
            .collect()
            .now_or_never()
            .expect("local guardrails do not wait")
            .expect("no body error")
            .to_bytes();
        if out[..] == body[..] {
            continue;
        }
        assert_eq!(selected, 1, "no guardrail, yet the stream changed");
        let at = out.windows(9).rposition(|w| w == b"data: {\"e").expect("an error event");
        assert!(body.starts_with(&out[..at]), "not a prefix of the stream");
    }
});
