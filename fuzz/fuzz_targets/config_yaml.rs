//! Goal: no config text makes the loader (YAML, env resolution, typed sections, validation, the
//! model table) panic; bad input is an error naming where it is.
//!
//! Run: `cargo fuzz run -s none config_yaml -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() > 16 * 1024 {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(loaded) = tianji::Loaded::from_yaml(text) {
        let _ = tianji::router::ModelTable::build(
            &loaded.config,
            std::sync::Arc::new(tianji::providers::Catalog::builtin().expect("catalog")),
            loaded.env.clone(),
        );
    }
});
