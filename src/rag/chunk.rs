//! Text cut into overlapping chunks, as LiteLLM's RAG ingestion does it: a recursive character
//! splitter (LangChain's `RecursiveCharacterTextSplitter`): split on the first separator that
//! occurs in the text, merge the pieces into chunks of at most `chunk_size` characters carrying
//! about `chunk_overlap` characters of one chunk into the next, and split a piece still too long
//! with the next separator (`""`: per character). Lengths are in characters, not bytes.
//!
//! A separator stays at the start of the piece after it (LangChain's `keep_separator`), so
//! every chunk is a slice of the text ([`split_ranges`] gives the byte ranges), trimmed of
//! whitespace; whitespace-only chunks are dropped. Every chunk has at most `chunk_size`
//! characters (a piece no separator splits is cut into windows), and every non-whitespace
//! character of the text is in some chunk.
//!
//! [`StreamSplitter`] does the same over a text arriving in pieces (a streamed upload), holding
//! at most a few chunks of it.

use std::collections::VecDeque;
use std::ops::Range;

use serde::{Deserialize, Deserializer};

use super::ExtractError;

/// LiteLLM's default `chunk_size` (characters).
pub const DEFAULT_CHUNK_SIZE: usize = 1000;
/// LiteLLM's default `chunk_overlap` (characters).
pub const DEFAULT_CHUNK_OVERLAP: usize = 200;
/// The largest `chunk_size` accepted.
pub const MAX_CHUNK_SIZE: usize = 100_000;
/// The separators tried by default, coarsest first.
pub const DEFAULT_SEPARATORS: [&str; 4] = ["\n\n", "\n", " ", ""];

/// How text is cut (LiteLLM's `chunking_strategy`; every field optional, unknown ones such as
/// `type` ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ChunkOptions {
    /// The most characters in a chunk.
    pub chunk_size: usize,
    /// About how many characters of a chunk start the next one.
    pub chunk_overlap: usize,
    /// Separators tried in order (empty or `null`: the defaults).
    #[serde(deserialize_with = "separators_or_default")]
    pub separators: Vec<String>,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions {
            chunk_size: DEFAULT_CHUNK_SIZE,
            chunk_overlap: DEFAULT_CHUNK_OVERLAP,
            separators: default_separators(),
        }
    }
}

fn default_separators() -> Vec<String> {
    DEFAULT_SEPARATORS.iter().map(|s| (*s).to_owned()).collect()
}

/// `separators: null` as the defaults.
fn separators_or_default<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_else(default_separators))
}

impl ChunkOptions {
    /// Refuse sizes out of range, naming the field.
    pub fn validate(&self) -> Result<(), ExtractError> {
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return Err(ExtractError::InvalidOptions(format!(
                "chunk_size must be between 1 and {MAX_CHUNK_SIZE} characters, got {}",
                self.chunk_size
            )));
        }
        if self.chunk_overlap >= self.chunk_size {
            return Err(ExtractError::InvalidOptions(format!(
                "chunk_overlap ({}) must be smaller than chunk_size ({})",
                self.chunk_overlap, self.chunk_size
            )));
        }
        Ok(())
    }

    /// The separators to use (the defaults when none is given).
    fn seps(&self) -> Vec<&str> {
        if self.separators.is_empty() {
            DEFAULT_SEPARATORS.to_vec()
        } else {
            self.separators.iter().map(String::as_str).collect()
        }
    }

    /// The sizes, made safe for options that were not validated (`chunk_size` at least 1,
    /// `chunk_overlap` below it).
    fn sizes(&self) -> (usize, usize) {
        let size = self.chunk_size.max(1);
        (size, self.chunk_overlap.min(size - 1))
    }
}

/// The chunks of `text`.
pub fn split(text: &str, opts: &ChunkOptions) -> Vec<String> {
    split_ranges(text, opts)
        .into_iter()
        .filter_map(|r| text.get(r).map(str::to_owned))
        .collect()
}

/// The byte ranges of `text`'s chunks, in order (each trimmed, non-empty, on char boundaries).
pub fn split_ranges(text: &str, opts: &ChunkOptions) -> Vec<Range<usize>> {
    let (size, overlap) = opts.sizes();
    let splitter = Splitter {
        text,
        size,
        overlap,
    };
    let mut out = Vec::new();
    splitter.recurse(0..text.len(), &opts.seps(), &mut out);
    out
}

/// One piece of the text: its byte range and its length in characters.
#[derive(Debug, Clone)]
struct Piece {
    range: Range<usize>,
    chars: usize,
}

struct Splitter<'a> {
    text: &'a str,
    size: usize,
    overlap: usize,
}

impl Splitter<'_> {
    fn slice(&self, r: &Range<usize>) -> &str {
        self.text.get(r.clone()).unwrap_or_default()
    }

    /// Chunks of the text in `range`, trying `seps` in order.
    fn recurse(&self, range: Range<usize>, seps: &[&str], out: &mut Vec<Range<usize>>) {
        let s = self.slice(&range);
        let mut chosen = None;
        for (i, sep) in seps.iter().enumerate() {
            if sep.is_empty() {
                return self.windows(range, out);
            }
            if s.contains(sep) {
                chosen = Some((*sep, seps.get(i + 1..).unwrap_or_default()));
                break;
            }
        }
        let Some((sep, finer)) = chosen else {
            // No separator occurs: one piece.
            if s.chars().count() < self.size {
                self.emit(range, out);
            } else {
                self.windows(range, out);
            }
            return;
        };
        let mut good: Vec<Piece> = Vec::new();
        for piece in pieces(s, sep, range.start) {
            let chars = self.slice(&piece).chars().count();
            if chars < self.size {
                good.push(Piece {
                    range: piece,
                    chars,
                });
                continue;
            }
            self.merge(&good, out);
            good.clear();
            if finer.is_empty() {
                self.windows(piece, out);
            } else {
                self.recurse(piece, finer, out);
            }
        }
        self.merge(&good, out);
    }

    /// Adjacent pieces merged into chunks of at most `size` characters, the last pieces of one
    /// chunk (at most `overlap` characters) starting the next.
    fn merge(&self, pieces: &[Piece], out: &mut Vec<Range<usize>>) {
        let mut current: VecDeque<&Piece> = VecDeque::new();
        let mut total = 0usize;
        for piece in pieces {
            if total + piece.chars > self.size
                && let (Some(first), Some(last)) = (current.front(), current.back())
            {
                self.emit(first.range.start..last.range.end, out);
                while total > self.overlap || (total > 0 && total + piece.chars > self.size) {
                    let Some(dropped) = current.pop_front() else {
                        break;
                    };
                    total -= dropped.chars;
                }
            }
            current.push_back(piece);
            total += piece.chars;
        }
        if let (Some(first), Some(last)) = (current.front(), current.back()) {
            self.emit(first.range.start..last.range.end, out);
        }
    }

    /// A piece no separator splits, cut into windows of `size` characters, each starting
    /// `size - overlap` characters after the last.
    fn windows(&self, range: Range<usize>, out: &mut Vec<Range<usize>>) {
        let step = self.size - self.overlap;
        let mut start = range.start;
        loop {
            let rest = self.slice(&(start..range.end));
            let end = rest
                .char_indices()
                .nth(self.size)
                .map_or(range.end, |(i, _)| start + i);
            self.emit(start..end, out);
            if end >= range.end {
                return;
            }
            start += rest.char_indices().nth(step).map_or(rest.len(), |(i, _)| i);
        }
    }

    /// `range` trimmed of whitespace, kept when anything is left.
    fn emit(&self, range: Range<usize>, out: &mut Vec<Range<usize>>) {
        let s = self.slice(&range);
        let start = range.start + (s.len() - s.trim_start().len());
        let end = range.end - (s.len() - s.trim_end().len());
        if start < end {
            out.push(start..end);
        }
    }
}

/// The byte ranges (offset by `base`) of `s` split on `sep`, each separator kept at the start
/// of the piece after it; no empty piece.
fn pieces(s: &str, sep: &str, base: usize) -> impl Iterator<Item = Range<usize>> {
    let mut starts: Vec<usize> = s.match_indices(sep).map(|(i, _)| i).collect();
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    let ends: Vec<usize> = starts.iter().skip(1).copied().chain([s.len()]).collect();
    starts
        .into_iter()
        .zip(ends)
        .filter(|(a, b)| a < b)
        .map(move |(a, b)| base + a..base + b)
}

/// How many chunk sizes of text a [`StreamSplitter`] gathers before cutting chunks.
const STREAM_WINDOW: usize = 4;
/// Whitespace kept after the last chunk when the buffer is cut (enough for any separator made
/// of whitespace that would follow).
const KEPT_WHITESPACE: usize = 8;

/// Chunks of a text that arrives in pieces, without holding all of it: text gathers until it
/// holds a few chunk sizes, then every chunk but the last is given out and the buffer restarts
/// at the last chunk's start (so the overlap carries over). The chunks meet [`split`]'s
/// promises but may be cut at other places than `split` of the whole text would cut them.
#[derive(Debug)]
pub struct StreamSplitter {
    opts: ChunkOptions,
    buf: String,
    /// Characters in `buf`.
    buf_chars: usize,
    /// The bytes of a UTF-8 sequence cut at the end of the last `push_bytes`.
    partial: Vec<u8>,
    /// Whether any text arrived yet (a BOM is dropped only at the start).
    started: bool,
}

impl StreamSplitter {
    /// A splitter cutting with `opts` (validate them first).
    pub fn new(opts: ChunkOptions) -> Self {
        StreamSplitter {
            opts,
            buf: String::new(),
            buf_chars: 0,
            partial: Vec::new(),
            started: false,
        }
    }

    /// Add text; returns the chunks complete now.
    pub fn push(&mut self, piece: &str) -> Vec<String> {
        let piece = if self.started {
            piece
        } else {
            self.started = !piece.is_empty();
            piece.strip_prefix('\u{feff}').unwrap_or(piece)
        };
        self.buf.push_str(piece);
        self.buf_chars += piece.chars().count();
        let (size, _) = self.opts.sizes();
        if self.buf_chars < STREAM_WINDOW.saturating_mul(size) {
            return Vec::new();
        }
        self.cut()
    }

    /// Add bytes of UTF-8 text, a sequence possibly cut between two calls; returns the chunks
    /// complete now. Invalid UTF-8 is [`ExtractError::NotText`].
    pub fn push_bytes(&mut self, mut bytes: &[u8]) -> Result<Vec<String>, ExtractError> {
        let mut out = Vec::new();
        // Complete a sequence cut at the end of the last call, a byte at a time.
        while !self.partial.is_empty() {
            let Some((first, rest)) = bytes.split_first() else {
                return Ok(out);
            };
            self.partial.push(*first);
            bytes = rest;
            match std::str::from_utf8(&self.partial) {
                Ok(s) => {
                    let s = s.to_owned();
                    self.partial.clear();
                    out.extend(self.push(&s));
                }
                Err(e) if e.error_len().is_some() => return Err(ExtractError::NotText),
                Err(_) => {}
            }
        }
        let valid = match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) if e.error_len().is_some() => return Err(ExtractError::NotText),
            Err(e) => {
                let (valid, cut) = bytes.split_at(e.valid_up_to());
                self.partial.extend_from_slice(cut);
                std::str::from_utf8(valid).map_err(|_| ExtractError::NotText)?
            }
        };
        out.extend(self.push(valid));
        Ok(out)
    }

    /// The last chunks, once all text arrived (a UTF-8 sequence left cut by `push_bytes` is
    /// dropped; see [`StreamSplitter::finish_bytes`]).
    pub fn finish(self) -> Vec<String> {
        split(&self.buf, &self.opts)
    }

    /// The last chunks, once all bytes arrived: [`ExtractError::NotText`] when the text ends
    /// inside a UTF-8 sequence.
    pub fn finish_bytes(self) -> Result<Vec<String>, ExtractError> {
        if !self.partial.is_empty() {
            return Err(ExtractError::NotText);
        }
        Ok(self.finish())
    }

    /// Give out every chunk of the buffer but the last; keep the buffer from the last chunk's
    /// start.
    fn cut(&mut self) -> Vec<String> {
        let ranges = split_ranges(&self.buf, &self.opts);
        let (keep_from, done) = match ranges.split_last() {
            Some((last, done)) => (last.start, done),
            None => (self.buf.len(), &[][..]),
        };
        let out: Vec<String> = done
            .iter()
            .filter_map(|r| self.buf.get(r.clone()).map(str::to_owned))
            .collect();
        // Whitespace after the last chunk: keep only its end.
        let kept_end = match ranges.last() {
            Some(last) => last.end,
            None => keep_from,
        };
        let tail = self.buf.get(kept_end..).unwrap_or_default();
        let tail_from = tail
            .char_indices()
            .rev()
            .nth(KEPT_WHITESPACE - 1)
            .map_or(0, |(i, _)| i);
        let mut next = String::with_capacity(self.buf.len() - keep_from);
        next.push_str(self.buf.get(keep_from..kept_end).unwrap_or_default());
        next.push_str(tail.get(tail_from..).unwrap_or_default());
        self.buf_chars = next.chars().count();
        self.buf = next;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(size: usize, overlap: usize) -> ChunkOptions {
        ChunkOptions {
            chunk_size: size,
            chunk_overlap: overlap,
            ..ChunkOptions::default()
        }
    }

    /// A small xorshift generator (no proptest).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Text of words, spaces, newlines, paragraphs, long runs without separators and
    /// multi-byte characters.
    fn text(rng: &mut Rng, len: usize) -> String {
        const ATOMS: [&str; 12] = [
            "word", "é", "数据", " ", " ", "\n", "\n\n", "\t", "🦀", "lorem", "  \n ", ".",
        ];
        let mut s = String::new();
        while s.chars().count() < len {
            match rng.below(40) {
                0 => s.push_str(&"x".repeat(rng.below(300))),
                1 => s.push_str(&" ".repeat(rng.below(300))),
                _ => s.push_str(ATOMS[rng.below(ATOMS.len())]),
            }
        }
        s
    }

    /// The properties every splitter keeps: chunks non-empty, trimmed, at most `chunk_size`
    /// characters, covering every non-whitespace character; `ranges` (when known) are slices.
    fn check(text: &str, o: &ChunkOptions, chunks: &[String], ranges: Option<&[Range<usize>]>) {
        for c in chunks {
            assert!(!c.trim().is_empty(), "empty chunk");
            assert_eq!(c.trim(), c, "untrimmed chunk");
            assert!(
                c.chars().count() <= o.chunk_size,
                "chunk of {} chars",
                c.chars().count()
            );
        }
        if let Some(ranges) = ranges {
            let mut covered = vec![false; text.len()];
            for (r, c) in ranges.iter().zip(chunks) {
                assert_eq!(&text[r.clone()], c);
                covered[r.clone()].iter_mut().for_each(|b| *b = true);
            }
            for (i, ch) in text.char_indices() {
                assert!(
                    ch.is_whitespace() || covered[i],
                    "char {ch:?} at {i} not covered"
                );
            }
        } else {
            // Streamed: the non-whitespace characters, in order, with overlaps removed.
            let want: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            let got: String = chunks
                .concat()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            assert!(got.len() >= want.len());
            let mut it = got.chars();
            for ch in want.chars() {
                assert!(it.any(|g| g == ch), "streamed chunks lost {ch:?}");
            }
        }
    }

    #[test]
    fn defaults_and_json() {
        let o = ChunkOptions::default();
        assert_eq!((o.chunk_size, o.chunk_overlap), (1000, 200));
        assert_eq!(o.separators, ["\n\n", "\n", " ", ""]);
        let o: ChunkOptions = serde_json::from_str(r#"{"chunk_size": 50}"#).unwrap();
        assert_eq!((o.chunk_size, o.chunk_overlap), (50, 200));
        let o: ChunkOptions = serde_json::from_str(
            r#"{"type": "recursive", "chunk_overlap": 5, "separators": null}"#,
        )
        .unwrap();
        assert_eq!((o.chunk_overlap, o.separators.len()), (5, 4));
        let o: ChunkOptions = serde_json::from_str(r#"{"separators": ["."]}"#).unwrap();
        assert_eq!(o.separators, ["."]);
    }

    #[test]
    fn validation_names_the_field() {
        assert!(ChunkOptions::default().validate().is_ok());
        let e = opts(0, 0).validate().unwrap_err();
        assert!(e.to_string().contains("chunk_size"));
        assert_eq!(e.status(), 400);
        assert!(
            opts(100_001, 0)
                .validate()
                .unwrap_err()
                .to_string()
                .contains("chunk_size")
        );
        assert!(opts(100_000, 99_999).validate().is_ok());
        let e = opts(100, 100).validate().unwrap_err();
        assert!(e.to_string().contains("chunk_overlap"));
    }

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(split("  hello world \n", &opts(100, 10)), ["hello world"]);
        assert!(split("", &ChunkOptions::default()).is_empty());
        assert!(split(" \n\n \t ", &ChunkOptions::default()).is_empty());
    }

    #[test]
    fn paragraphs_first_then_words() {
        let text = "aaaa bbbb\n\ncccc dddd\n\neeee ffff gggg hhhh";
        assert_eq!(
            split(text, &opts(10, 0)),
            ["aaaa bbbb", "cccc dddd", "eeee ffff", "gggg hhhh"]
        );
    }

    #[test]
    fn overlap_carries_words() {
        let text = "one two three four five six seven eight nine ten";
        let chunks = split(text, &opts(15, 6));
        assert_eq!(
            chunks,
            [
                "one two three",
                "three four",
                "four five six",
                "six seven",
                "seven eight",
                "eight nine ten"
            ]
        );
    }

    #[test]
    fn long_runs_are_windowed_by_chars() {
        let text = "é".repeat(25);
        let chunks = split(&text, &opts(10, 2));
        assert_eq!(
            chunks.iter().map(|c| c.chars().count()).collect::<Vec<_>>(),
            [10, 10, 9]
        );
        // Separators without "": a piece no separator splits is windowed too.
        let o = ChunkOptions {
            separators: vec!["\n".into()],
            ..opts(10, 0)
        };
        assert_eq!(
            split("abcdefghijklmno\nxy", &o),
            ["abcdefghij", "klmno", "xy"]
        );
    }

    #[test]
    fn custom_separators_are_kept() {
        let o = ChunkOptions {
            separators: vec![";".into(), "".into()],
            ..opts(8, 0)
        };
        let chunks = split("aaa;bbb;ccc;ddd", &o);
        assert_eq!(chunks, ["aaa;bbb", ";ccc;ddd"]);
    }

    #[test]
    fn properties_hold_on_generated_texts() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..400 {
            let len = rng.below(3000);
            let t = text(&mut rng, len);
            let size = 1 + rng.below(if round % 4 == 0 { 8 } else { 400 });
            let overlap = rng.below(size);
            let mut o = opts(size, overlap);
            if round % 5 == 0 {
                o.separators = vec![".".into(), "\n".into()];
            }
            let ranges = split_ranges(&t, &o);
            let chunks = split(&t, &o);
            check(&t, &o, &chunks, Some(&ranges));
        }
    }

    #[test]
    fn stream_holds_the_properties_and_a_bounded_buffer() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..200 {
            let len = rng.below(6000);
            let t = text(&mut rng, len);
            let size = 1 + rng.below(300);
            let o = opts(size, rng.below(size));
            let mut s = StreamSplitter::new(o.clone());
            let mut chunks = Vec::new();
            let bytes = t.as_bytes();
            let mut at = 0;
            while at < bytes.len() {
                let n = (1 + rng.below(700)).min(bytes.len() - at);
                chunks.extend(s.push_bytes(&bytes[at..at + n]).unwrap());
                at += n;
                assert!(s.buf_chars <= (STREAM_WINDOW + 1) * size + 700 + KEPT_WHITESPACE);
            }
            chunks.extend(s.finish_bytes().unwrap());
            check(&t, &o, &chunks, None);
        }
    }

    #[test]
    fn stream_matches_split_on_plain_prose() {
        let t = "The quick brown fox jumps over the lazy dog. ".repeat(200);
        let o = opts(100, 20);
        let mut s = StreamSplitter::new(o.clone());
        let mut chunks = Vec::new();
        for piece in t.as_bytes().chunks(37) {
            chunks.extend(s.push_bytes(piece).unwrap());
        }
        chunks.extend(s.finish());
        assert_eq!(chunks, split(&t, &o));
    }

    #[test]
    fn stream_bytes() {
        let mut s = StreamSplitter::new(opts(100, 0));
        let text = "\u{feff}héllo wörld";
        let mut out = Vec::new();
        for b in text.as_bytes() {
            out.extend(s.push_bytes(&[*b]).unwrap());
        }
        out.extend(s.finish_bytes().unwrap());
        assert_eq!(out, ["héllo wörld"]);
        let mut s = StreamSplitter::new(opts(100, 0));
        assert_eq!(s.push_bytes(b"ab\xff"), Err(ExtractError::NotText));
        let mut s = StreamSplitter::new(opts(100, 0));
        s.push_bytes(&"é".as_bytes()[..1]).unwrap();
        assert_eq!(s.push_bytes(b"x"), Err(ExtractError::NotText));
        let mut s = StreamSplitter::new(opts(100, 0));
        s.push_bytes(b"ok \xe6\x95").unwrap();
        assert_eq!(s.finish_bytes(), Err(ExtractError::NotText));
    }
}
