//! Goal: reading a prompt's text, an embedding answer or stored vector bytes never panics; stored
//! vector bytes survive an encode/decode round trip unchanged; and a decoded vector inserted into
//! the semantic index is found again by itself.
//!
//! Run: `cargo fuzz run -s none semantic_input fuzz/corpus/semantic_input -- -max_total_time=60`
//! (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tianji::cache::semantic::{
    Index, MAX_DIMENSIONS, decode_vector, embedding_of, encode_vector, prompt_text,
};

fuzz_target!(|data: &[u8]| {
    if data.len() > 256 * 1024 {
        return;
    }
    if let Some(text) = prompt_text(data) {
        assert!(!text.is_empty());
    }
    if let Some(v) = embedding_of(data) {
        assert!(!v.is_empty() && v.len() <= MAX_DIMENSIONS);
        assert!(v.iter().all(|x| x.is_finite()));
        assert_eq!(decode_vector(&encode_vector(&v)), Some(v));
    }
    let Some(v) = decode_vector(data) else {
        return;
    };
    assert_eq!(decode_vector(&encode_vector(&v)).as_ref(), Some(&v));
    let index = Index::new(4, 4);
    index.insert("p", "k", &v);
    let found = index.best("p", &v, 0.99);
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm.is_finite() && norm > 1e-6 {
        let (key, sim) = found.unwrap();
        assert_eq!(key, "k");
        assert!((0.99..=1.0).contains(&sim), "similarity {sim}");
        assert_eq!(index.len(), 1);
    }
    index.remove_key("k");
    assert!(index.is_empty());
    assert_eq!(index.best("p", &v, -1.0), None);
});
