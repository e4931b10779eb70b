//! Goal: reading an upload's `multipart/form-data` up to its `model` field never panics, and
//! what a prefix of the body says agrees with the whole body (a field found early is the same
//! field; "absent" is final); reading a whole form's `target_model_names` field and its file
//! part's content type never panics.
//!
//! Run: `cargo fuzz run -s none multipart_form -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tianji::pipeline::multipart::{Scan, boundary, file_type, find_field};

fuzz_target!(|data: &[u8]| {
    let Some(split) = data.iter().position(|b| *b == b'\n') else {
        return;
    };
    let (ct, body) = (&data[..split], &data[split + 1..]);
    let Ok(ct) = std::str::from_utf8(ct) else {
        return;
    };
    let Ok(b) = boundary(ct) else {
        return;
    };
    let _ = find_field(body, &b, "target_model_names");
    let _ = file_type(body, &b);
    let whole = find_field(body, &b, "model");
    for n in 0..=body.len() {
        match (find_field(&body[..n], &b, "model"), &whole) {
            (Ok(Scan::NeedMore), _) => {}
            (Ok(found @ Scan::Found { .. }), Ok(w @ Scan::Found { .. })) => assert_eq!(&found, w),
            (Ok(Scan::Absent), Ok(Scan::Absent)) => {}
            // an error or result on a prefix must be what the whole body gives too
            (got, want) => assert_eq!(format!("{got:?}"), format!("{want:?}"), "prefix {n}"),
        }
    }
});
