//! Incremental scanner over an OpenAI SSE stream: forwards bytes untouched while picking out
//! `usage`, and (when the gateway added `stream_options.include_usage` on its own) removes the
//! usage-only chunk the client did not ask for. Only lines that carry a non-null `usage` are
//! parsed as JSON.

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde::de::IgnoredAny;

pub use crate::spend::usage::Usage;

#[derive(Deserialize)]
struct UsageLine {
    usage: Option<Usage>,
    choices: Option<Vec<IgnoredAny>>,
}

/// Read `usage` from a whole (non-streamed) response body.
pub fn usage_of_body(body: &[u8]) -> Option<Usage> {
    #[derive(Deserialize)]
    struct B {
        usage: Option<Usage>,
    }
    serde_json::from_slice::<B>(body).ok().and_then(|b| b.usage)
}

/// The last event of a Responses API or image stream (they send no `[DONE]`).
fn is_last_event(name: &[u8]) -> bool {
    matches!(
        name,
        b"response.completed"
            | b"response.incomplete"
            | b"image_generation.completed"
            | b"image_edit.completed"
    )
}

/// The value of `"type"` when it is the object's first member (`"type":"x"`, as OpenAI writes
/// its events); `body` starts after the opening brace.
fn leading_type(body: &[u8]) -> Option<&[u8]> {
    let rest = body.strip_prefix(b"\"type\"")?.trim_ascii_start();
    let rest = rest.strip_prefix(b":")?.trim_ascii_start();
    let rest = rest.strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', rest)?;
    Some(&rest[..end])
}

/// The message of an error event (`{"error": {"message": ...}}`, a Responses API `error` or
/// `response.failed` event); read only when a stream reports one.
fn error_message(payload: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
    [
        "/error/message",
        "/message",
        "/response/error/message",
        "/error",
    ]
    .iter()
    .find_map(|p| v.pointer(p).and_then(serde_json::Value::as_str))
    .unwrap_or("The provider reported an error in the stream")
    .chars()
    .take(2000)
    .collect()
}

/// Read `usage` from a whole answer that must be JSON (chat, completions, embeddings, ...):
/// `Err` when the body is not valid JSON, a provider's failure even with a 200. The parse that
/// reads the usage checks the syntax of the whole body: no extra pass. Valid JSON of another
/// shape only has no usage.
pub fn usage_of_json_body(body: &[u8]) -> Result<Option<Usage>, serde_json::Error> {
    usage_and_id_of_json_body(body).map(|(usage, _)| usage)
}

/// [`usage_of_json_body`], and the answer's top-level `id` when it is a string, read in the
/// same parse.
pub fn usage_and_id_of_json_body(
    body: &[u8],
) -> Result<(Option<Usage>, Option<String>), serde_json::Error> {
    #[derive(Deserialize)]
    struct B {
        usage: Option<Usage>,
        id: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<B>(body) {
        Ok(b) => Ok((b.usage, string(b.id))),
        Err(e) if e.is_syntax() || e.is_eof() => Err(e),
        Err(_) => Ok((None, None)),
    }
}

fn string(v: Option<serde_json::Value>) -> Option<String> {
    match v {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// Reads the top-level `id` of a stream's first `data:` event that has one (a chat or
/// completions chunk's), fed the stream in pieces; stops looking after the first events.
#[derive(Debug, Default)]
pub struct FirstId {
    carry: Vec<u8>,
    events: u8,
    done: bool,
}

/// Events [`FirstId`] reads before it stops looking.
const FIRST_ID_EVENTS: u8 = 4;
/// Bytes of one line [`FirstId`] holds at most.
const FIRST_ID_LINE: usize = 64 * 1024;

impl FirstId {
    /// Whether it still looks.
    pub fn looking(&self) -> bool {
        !self.done
    }

    /// Feed the next bytes; the id once the event carrying it is complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Option<String> {
        if self.done {
            return None;
        }
        self.carry.extend_from_slice(bytes);
        while let Some(end) = memchr::memchr(b'\n', &self.carry) {
            let line: Vec<u8> = self.carry.drain(..=end).collect();
            let Some(data) = line.trim_ascii().strip_prefix(b"data:") else {
                continue;
            };
            let data = data.trim_ascii_start();
            if data.first() != Some(&b'{') {
                continue;
            }
            self.events += 1;
            #[derive(Deserialize)]
            struct Chunk {
                id: Option<serde_json::Value>,
            }
            let id = serde_json::from_slice::<Chunk>(data)
                .ok()
                .and_then(|c| string(c.id));
            if id.is_some() || self.events >= FIRST_ID_EVENTS {
                self.done = true;
                self.carry = Vec::new();
                return id;
            }
        }
        if self.carry.len() > FIRST_ID_LINE {
            self.done = true;
            self.carry = Vec::new();
        }
        None
    }
}

/// State carried across chunks of one stream.
#[derive(Debug, Default)]
pub struct SseScanner {
    /// Bytes of an unfinished line.
    carry: BytesMut,
    /// Drop usage-only chunks from the output.
    drop_usage: bool,
    /// The next blank line ends a dropped event.
    skip_blank: bool,
    pub usage: Option<Usage>,
    pub saw_done: bool,
    /// A chunk with a finish reason, or a Responses API stream's last event, went by.
    pub saw_end: bool,
    /// The provider reported an error in the stream (its message).
    pub error: Option<String>,
    /// The last `event:` line named an error: its `data:` line says which.
    error_event: bool,
    pub events: u32,
}

enum Line {
    Keep,
    Drop,
}

impl SseScanner {
    pub fn new(drop_usage: bool) -> Self {
        Self {
            drop_usage,
            ..Default::default()
        }
    }

    fn line(&mut self, line: &[u8]) -> Line {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if self.skip_blank {
                self.skip_blank = false;
                return Line::Drop;
            }
            return Line::Keep;
        }
        self.skip_blank = false;
        let Some(payload) = line.strip_prefix(b"data:") else {
            if let Some(name) = line.strip_prefix(b"event:") {
                self.event_name(name.trim_ascii());
            }
            return Line::Keep;
        };
        self.events += 1;
        let payload = payload.trim_ascii_start();
        if payload == b"[DONE]" {
            self.saw_done = true;
            return Line::Keep;
        }
        self.ending(payload);
        let Some(at) = crate::literal!(b"\"usage\"").find(payload) else {
            return Line::Keep;
        };
        let after = payload[at + 7..].trim_ascii_start();
        let after = after.strip_prefix(b":").unwrap_or(after).trim_ascii_start();
        if after.starts_with(b"null") {
            return Line::Keep;
        }
        let Ok(u) = serde_json::from_slice::<UsageLine>(payload) else {
            return Line::Keep;
        };
        if let Some(usage) = u.usage {
            self.usage = Some(usage);
            if self.drop_usage && u.choices.is_none_or(|c| c.is_empty()) {
                self.skip_blank = true;
                return Line::Drop;
            }
        }
        Line::Keep
    }

    /// An `event:` line (Responses API and image streams name their events).
    fn event_name(&mut self, name: &[u8]) {
        if is_last_event(name) {
            self.saw_end = true;
        } else if matches!(name, b"response.failed" | b"error") {
            self.error_event = true;
        }
    }

    /// Watch `payload` for the end of the answer: a finish reason, a Responses API stream's
    /// last event, or an error. Cheap: a prefix check and one search until a finish is seen.
    fn ending(&mut self, payload: &[u8]) {
        let body = payload
            .strip_prefix(b"{")
            .map_or(payload, <[u8]>::trim_ascii_start);
        let kind = leading_type(body);
        if std::mem::take(&mut self.error_event)
            || body.starts_with(b"\"error\"")
            || matches!(kind, Some(b"error" | b"response.failed"))
        {
            self.error = Some(error_message(payload));
            return;
        }
        if self.saw_end {
            return;
        }
        if kind.is_some_and(is_last_event) {
            self.saw_end = true;
            return;
        }
        if let Some(at) = crate::literal!(b"\"finish_reason\"").find(payload) {
            let after = payload[at + 15..].trim_ascii_start();
            let after = after.strip_prefix(b":").unwrap_or(after).trim_ascii_start();
            self.saw_end = after.starts_with(b"\"");
        }
    }

    /// How the stream ended, as far as it was read: an error the provider reported, a finish
    /// (`[DONE]`, a finish reason, a Responses API stream's last event), or neither.
    pub fn end_state(&self) -> crate::providers::StreamEnd {
        use crate::providers::StreamEnd;
        match &self.error {
            Some(e) => StreamEnd::Failed(e.clone()),
            None if self.saw_done || self.saw_end => StreamEnd::Complete,
            None => StreamEnd::Open,
        }
    }

    /// Scan one chunk; returns the bytes to forward (the chunk itself unless something is dropped
    /// or held back).
    pub fn feed(&mut self, chunk: Bytes) -> Bytes {
        if !self.drop_usage {
            self.scan_only(&chunk);
            return chunk;
        }
        // Filtering mode: forward complete lines only.
        let buf: Bytes = if self.carry.is_empty() {
            chunk
        } else {
            self.carry.extend_from_slice(&chunk);
            self.carry.split().freeze()
        };
        let Some(last_nl) = memchr::memrchr(b'\n', &buf) else {
            self.carry.extend_from_slice(&buf);
            return Bytes::new();
        };
        let complete = buf.slice(..=last_nl);
        if last_nl + 1 < buf.len() {
            self.carry.extend_from_slice(&buf[last_nl + 1..]);
        }
        let mut out: Option<BytesMut> = None;
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', &complete) {
            let line = &complete[start..nl];
            match self.line(line) {
                Line::Keep => {
                    if let Some(o) = out.as_mut() {
                        o.extend_from_slice(&complete[start..=nl]);
                    }
                }
                Line::Drop => {
                    if out.is_none() {
                        let mut o = BytesMut::with_capacity(complete.len());
                        o.extend_from_slice(&complete[..start]);
                        out = Some(o);
                    }
                }
            }
            start = nl + 1;
        }
        match out {
            Some(o) => o.freeze(),
            None => complete,
        }
    }

    fn scan_only(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        if !self.carry.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(nl) => {
                    self.carry.extend_from_slice(&rest[..nl]);
                    let line = self.carry.split();
                    self.line(&line);
                    rest = &rest[nl + 1..];
                }
                None => {
                    self.carry.extend_from_slice(rest);
                    return;
                }
            }
        }
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', rest) {
            self.line(&rest[start..nl]);
            start = nl + 1;
        }
        if start < rest.len() {
            self.carry.extend_from_slice(&rest[start..]);
        }
    }

    /// End of stream: whatever is still held back.
    pub fn finish(&mut self) -> Bytes {
        let tail = self.carry.split().freeze();
        if !tail.is_empty() {
            let line = tail.clone();
            if let Line::Drop = self.line(&line) {
                return Bytes::new();
            }
        }
        if self.drop_usage { tail } else { Bytes::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_id_of_a_stream_however_split() {
        let stream = b"data: {\"id\":\"chatcmpl-7\",\"choices\":[{\"delta\":{}}]}\n\ndata: {\"id\":\"x\"}\n\n";
        for split in 0..stream.len() {
            let mut f = FirstId::default();
            let mut got = f.feed(&stream[..split]);
            if got.is_none() {
                got = f.feed(&stream[split..]);
            }
            assert_eq!(got.as_deref(), Some("chatcmpl-7"), "split at {split}");
            assert!(!f.looking());
        }
        let mut f = FirstId::default();
        assert_eq!(f.feed(b"event: ping\ndata: [DONE]\n"), None);
        assert!(f.looking());
        assert_eq!(
            usage_and_id_of_json_body(br#"{"id":"msg_1","usage":null}"#).unwrap(),
            (None, Some("msg_1".to_string()))
        );
    }

    const STREAM: &str = "data: {\"id\":\"1\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n\
data: {\"id\":\"1\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n\
data: {\"id\":\"1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n\
data: [DONE]\n\n";

    fn run(split_every: usize, drop: bool) -> (String, SseScanner) {
        let mut s = SseScanner::new(drop);
        let mut out = Vec::new();
        for c in STREAM.as_bytes().chunks(split_every) {
            out.extend_from_slice(&s.feed(Bytes::copy_from_slice(c)));
        }
        out.extend_from_slice(&s.finish());
        (String::from_utf8(out).unwrap(), s)
    }

    #[test]
    fn reads_usage_without_changing_bytes() {
        for n in [1, 3, 7, 64, 4096] {
            let (out, s) = run(n, false);
            assert_eq!(out, STREAM);
            assert_eq!(s.usage.unwrap().total_tokens, 7);
            assert!(s.saw_done);
        }
    }

    #[test]
    fn drops_the_usage_chunk_when_asked() {
        for n in [1, 3, 7, 64, 4096] {
            let (out, s) = run(n, true);
            assert!(!out.contains("prompt_tokens"), "{out}");
            assert!(
                out.ends_with("\"usage\":null}\n\ndata: [DONE]\n\n"),
                "{out}"
            );
            assert_eq!(s.usage.unwrap().prompt_tokens, 5);
        }
    }

    #[test]
    fn body_usage() {
        assert_eq!(
            usage_of_body(br#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#)
                .unwrap()
                .completion_tokens,
            2
        );
        assert!(usage_of_body(b"not json").is_none());
    }

    #[test]
    fn sees_how_a_stream_ends() {
        use crate::providers::StreamEnd;
        let end = |s: &str| {
            for drop in [false, true] {
                let mut sc = SseScanner::new(drop);
                for c in s.as_bytes().chunks(5) {
                    sc.feed(Bytes::copy_from_slice(c));
                }
                sc.finish();
                let got = sc.end_state();
                if !drop {
                    return got;
                }
            }
            StreamEnd::Open
        };
        let failed = |m: &str| StreamEnd::Failed(m.to_string());
        assert_eq!(end(STREAM), StreamEnd::Complete);
        let open =
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n";
        assert_eq!(end(open), StreamEnd::Open);
        let finished = "data: {\"choices\":[{\"delta\":{},\"finish_reason\" : \"length\"}]}\n\n";
        assert_eq!(end(&format!("{open}{finished}")), StreamEnd::Complete);
        let error = "data: {\"error\":{\"message\":\"overloaded\"}}\n\n";
        assert_eq!(end(&format!("{open}{error}")), failed("overloaded"));
        // Responses API streams: their last event, with or without `event:` lines
        let created = "event: response.created\ndata: {\"type\":\"response.created\"}\n\n";
        assert_eq!(end(created), StreamEnd::Open);
        let done = "event: response.completed\ndata: {\"response\":{},\"type\":\"response.completed\"}\n\n";
        assert_eq!(end(&format!("{created}{done}")), StreamEnd::Complete);
        let cut_short = "data: {\"type\": \"response.incomplete\"}\n\n";
        assert_eq!(end(cut_short), StreamEnd::Complete);
        let error = "event: error\ndata: {\"code\":\"x\",\"message\":\"boom\"}\n\n";
        assert_eq!(end(&format!("{created}{error}")), failed("boom"));
        let failure = "data: {\"type\":\"response.failed\",\"response\":{\"error\":{\"message\":\"bad\"}}}\n\n";
        assert_eq!(end(failure), failed("bad"));
        let image = "event: image_generation.completed\ndata: {\"b64_json\":\"x\"}\n\n";
        assert_eq!(end(image), StreamEnd::Complete);
    }

    #[test]
    fn whole_bodies_must_be_json() {
        let u = usage_of_json_body(br#"{"usage":{"prompt_tokens":1,"completion_tokens":2}}"#);
        assert_eq!(u.unwrap().unwrap().total_tokens, 3);
        let bad: [&[u8]; 5] = [b"", b"<html>", b"{\"id\"", b"{\"id\":1} x", b"{\"a\":tru}"];
        for bad in bad {
            assert!(usage_of_json_body(bad).is_err(), "{bad:?}");
        }
        // valid JSON of another shape: only no usage
        for other in [
            &b"[]"[..],
            b"{\"usage\":{\"prompt_tokens\":null}}",
            b"{\"usage\":\"n/a\"}",
        ] {
            assert_eq!(usage_of_json_body(other).unwrap(), None, "{other:?}");
        }
    }

    #[test]
    fn cache_tokens_in_both_shapes() {
        let u = usage_of_body(br#"{"usage":{"prompt_tokens":100,"completion_tokens":2,"total_tokens":102,"prompt_tokens_details":{"cached_tokens":60}}}"#).unwrap();
        assert_eq!((u.cache_read_tokens, u.cache_creation_tokens), (60, 0));
        let u = usage_of_body(br#"{"usage":{"prompt_tokens":100,"completion_tokens":2,"cache_read_input_tokens":10,"cache_creation_input_tokens":30}}"#).unwrap();
        assert_eq!(
            (u.cache_read_tokens, u.cache_creation_tokens, u.total_tokens),
            (10, 30, 102)
        );
    }
}
