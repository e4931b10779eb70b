//! Goal: HTML to text never panics on arbitrary bytes (html5ever + html2text), and a page
//! either gives non-empty text or one of the expected errors.
//!
//! Run: `cargo fuzz run -s none rag_html -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tianji::rag::{DocFormat, ExtractError, ExtractLimits, extract_sync};

fuzz_target!(|data: &[u8]| {
    let limits = ExtractLimits::default();
    match extract_sync(DocFormat::Html, data, &limits) {
        Ok(text) => assert!(!text.trim().is_empty()),
        Err(ExtractError::Empty) => {}
        Err(ExtractError::Corrupt(why)) => assert!(why.starts_with("HTML"), "{why}"),
        Err(e) => panic!("unexpected error for HTML: {e:?}"),
    }
});
