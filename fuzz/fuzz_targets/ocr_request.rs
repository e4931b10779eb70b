//! Goal: an OCR request from a client never panics: its JSON `document` check, and a multipart
//! upload made into the JSON request (multer, the file base64-encoded as it arrives). A form that
//! is accepted becomes a JSON object whose document passes the check, inline (a `data:` URI).
//!
//! Run: `cargo fuzz run -s none ocr_request -- -max_total_time=60` (from the repo root).
#![no_main]

use bytes::Bytes;
use futures_util::FutureExt as _;
use libfuzzer_sys::fuzz_target;
use tianji::pipeline::ocr::{document, form};

fuzz_target!(|data: &[u8]| {
    let _ = document(data);
    // the body in two pieces, split at its first byte's value
    let at = data.first().map_or(0, |b| usize::from(*b).min(data.len()));
    let pieces: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::copy_from_slice(&data[..at])),
        Ok(Bytes::copy_from_slice(&data[at..])),
    ];
    let made = form::to_json(futures_util::stream::iter(pieces), "B".into(), 1 << 16).now_or_never();
    if let Some(Ok(json)) = made {
        let v: serde_json::Value = serde_json::from_slice(&json).expect("a form makes JSON");
        assert!(v.is_object());
        let doc = document(&json).expect("a form's document passes");
        assert!(doc.remote.is_none());
    }
});
