//! Goal: no input makes the request parser or the body rewrite panic, and whenever a body is
//! accepted, the rewritten upstream body is valid JSON whose `model` is the new one and whose
//! other members are exactly the client's, but for the gateway's own controls (left out).
//!
//! Run: `cargo fuzz run -s none request_parser -- -max_total_time=60` (from the repo root).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tianji::pipeline::parse::{Expect, parse};
use tianji::pipeline::rewrite::rewrite;
use tianji::providers::Catalog;

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    let _ = tianji::pipeline::members::scan(data);
    let Ok(catalog) = Catalog::builtin() else { return };
    for expect in [Expect::Chat, Expect::Completion, Expect::Embedding] {
        let Ok(req) = parse(Bytes::copy_from_slice(data), expect) else { continue };
        for provider in ["openai", "mistral", "heroku"] {
            let Some(spec) = catalog.get(provider) else { continue };
            let Ok(out) = rewrite(&req, &spec, &Bytes::from_static(b"\"fuzz-model\"")) else { continue };
            let bytes = out.to_vec();
            // Numbers beyond f64 range are legal JSON that serde_json refuses: skip those.
            let Ok(orig) = serde_json::from_slice::<Value>(data) else { continue };
            let sent: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("rewritten body is not JSON ({e}): {}", String::from_utf8_lossy(&bytes))
            });
            assert_eq!(sent["model"], "fuzz-model");
            if provider == "openai" {
                let (Value::Object(mut o), Value::Object(mut s)) = (orig, sent) else {
                    panic!("not objects")
                };
                o.remove("model");
                s.remove("model");
                s.remove("stream_options");
                o.remove("stream_options");
                for name in tianji::pipeline::controls::NAMES {
                    o.remove(name);
                    assert!(!s.contains_key(name), "{name} went upstream");
                }
                assert_eq!(o, s, "members changed");
            }
        }
    }
});
