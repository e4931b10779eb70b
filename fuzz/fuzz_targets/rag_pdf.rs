//! Goal: text extraction never takes the process down on arbitrary bytes read as a PDF:
//! pdf-extract panics on malformed PDFs by design, and `extract_sync` catches them (as
//! `extract` does on its blocking thread). libFuzzer's panic hook aborts on every panic, even a
//! caught one, so this target's hook lets panics raised inside third-party crates (the PDF
//! reader) unwind to the catch and aborts on any other.
//!
//! Run: `cargo fuzz run -s none rag_pdf -- -max_total_time=60` (from the repo root).
#![no_main]

use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use tianji::rag::{DocFormat, ExtractError, ExtractLimits, extract_sync};

static HOOK: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let third_party = info
                .location()
                .is_some_and(|l| l.file().contains("/.cargo/registry/"));
            if !third_party {
                default(info);
                std::process::abort();
            }
        }));
    });
    let limits = ExtractLimits::default();
    match extract_sync(DocFormat::Pdf, data, &limits) {
        Ok(text) => assert!(!text.trim().is_empty()),
        Err(ExtractError::Corrupt(_) | ExtractError::Empty) => {}
        Err(e) => panic!("unexpected error for a PDF: {e:?}"),
    }
});
