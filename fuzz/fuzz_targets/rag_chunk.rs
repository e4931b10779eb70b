//! Goal: the chunk splitters keep their promises on any text and options: no empty or
//! untrimmed chunk, none longer than `chunk_size` characters, every chunk a slice of the text,
//! every non-whitespace character in some chunk; the streamed splitter (bytes cut anywhere)
//! gives chunks with the same properties (whitespace runs at its buffer cuts may be
//! shortened) and loses no non-whitespace character.
//!
//! Input: byte 0-1 chunk_size (1..=512), byte 2 the overlap (mod chunk_size), byte 3 the
//! separators (defaults, or a custom set) and the streamed piece length, the rest the text.
//!
//! Run: `cargo fuzz run -s none rag_chunk -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tianji::rag::{ChunkOptions, StreamSplitter, split, split_ranges};

fn check_chunk(c: &str, size: usize) {
    assert!(!c.is_empty(), "empty chunk");
    assert_eq!(c.trim(), c, "untrimmed chunk");
    assert!(c.chars().count() <= size, "chunk over chunk_size");
}

fuzz_target!(|data: &[u8]| {
    let [a, b, overlap, mode, rest @ ..] = data else {
        return;
    };
    let size = 1 + (usize::from(u16::from_le_bytes([*a, *b])) % 512);
    let separators = match mode % 4 {
        0 => Vec::new(),
        1 => vec![".".to_owned(), " ".to_owned()],
        2 => vec!["ab".to_owned(), "\n".to_owned(), String::new()],
        _ => vec!["\n\n".to_owned()],
    };
    let opts = ChunkOptions {
        chunk_size: size,
        chunk_overlap: usize::from(*overlap) % size,
        separators,
    };
    assert!(opts.validate().is_ok());

    if let Ok(text) = std::str::from_utf8(rest) {
        let ranges = split_ranges(text, &opts);
        let chunks = split(text, &opts);
        assert_eq!(ranges.len(), chunks.len());
        let mut covered = vec![false; text.len()];
        for (r, c) in ranges.iter().zip(&chunks) {
            check_chunk(c, size);
            assert_eq!(text.get(r.clone()), Some(c.as_str()));
            covered[r.clone()].iter_mut().for_each(|x| *x = true);
        }
        for (i, ch) in text.char_indices() {
            assert!(
                ch.is_whitespace() || covered[i],
                "{ch:?} at {i} in no chunk"
            );
        }
    }

    let piece = 1 + usize::from(mode / 4);
    let mut stream = StreamSplitter::new(opts);
    let mut chunks = Vec::new();
    for bytes in rest.chunks(piece) {
        match stream.push_bytes(bytes) {
            Ok(more) => chunks.extend(more),
            Err(_) => {
                assert!(std::str::from_utf8(rest).is_err());
                return;
            }
        }
    }
    let Ok(last) = stream.finish_bytes() else {
        assert!(std::str::from_utf8(rest).is_err());
        return;
    };
    chunks.extend(last);
    let Ok(text) = std::str::from_utf8(rest) else {
        panic!("invalid UTF-8 streamed without an error");
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for c in &chunks {
        // Not necessarily a slice: a long whitespace run at a buffer cut is shortened.
        check_chunk(c, size);
    }
    // The non-whitespace characters, in order, within the chunks (overlaps repeat some).
    let mut got = chunks
        .iter()
        .flat_map(|c| c.chars())
        .filter(|c| !c.is_whitespace());
    for ch in text.chars().filter(|c| !c.is_whitespace()) {
        assert!(got.any(|g| g == ch), "streamed chunks lost {ch:?}");
    }
});
