//! Goal: a skill upload from a client never panics: its multipart form (multer), the zip inside
//! it (zip crate), the paths of its entries and SKILL.md's front matter. A zip that passes the
//! checks names a safe directory, and loose files that pass are zipped into an archive that
//! passes the checks again with the same name.
//!
//! Run: `cargo fuzz run -s none skill_upload -- -max_total_time=60` (from the repo root).
#![no_main]

use bytes::Bytes;
use futures_util::FutureExt as _;
use libfuzzer_sys::fuzz_target;
use tianji::skills::archive;
use tianji::skills_api::form;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(s) = archive::check_zip(bytes.clone(), LIMIT) {
        assert!(!s.directory.contains(".."));
        assert!(s.digest.starts_with("sha256:"));
    }
    if let Ok(md) = std::str::from_utf8(data) {
        let _ = archive::front_matter(md);
    }
    let parsed = form::parse("multipart/form-data; boundary=B", bytes).now_or_never();
    if let Some(Ok(f)) = parsed
        && let Ok(s) = archive::check_files(f.files, LIMIT)
    {
        let again = archive::check_zip(s.zip.clone(), usize::MAX).expect("a zip made passes");
        assert_eq!(again.name, s.name);
    }
});
