//! Gemini `streamGenerateContent?alt=sse` -> OpenAI chat completion chunks (`data: {...}\n\n`,
//! ending with `data: [DONE]`), fed with upstream bytes split anywhere.
//!
//! Each Gemini event is a whole `GenerateContentResponse` holding the next parts; a
//! `functionCall` arrives complete in one part, so it becomes one `tool_calls` delta with id,
//! name and all arguments. Gemini has no end event: the usage chunk (from the last
//! `usageMetadata`) and `[DONE]` are sent when the stream ends.

use serde_json::{Value, json};

use super::response::{Parts, candidate_finish, usage};
use crate::providers::chunks::{ChatChunks, ChatEvents, JsonTranslator};

/// A translated Gemini stream.
pub type StreamTranslator = JsonTranslator<Events>;

impl StreamTranslator {
    /// A translator whose chunks report `model`, `id` and `created` (Unix time).
    pub fn new(model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        Self::with(
            ChatChunks::new(id, model, created, include_usage),
            Events::default(),
        )
    }
}

/// What the events said so far that the chunks do not hold.
#[derive(Debug, Default)]
pub struct Events {
    /// The last `usageMetadata` seen.
    usage: Value,
    /// Per candidate index: tool calls sent so far.
    candidates: Vec<(u64, usize)>,
    /// Tool calls sent over all candidates (numbers the generated ids).
    calls: usize,
}

impl ChatEvents for Events {
    const USAGE_AT_FINISH: bool = true;

    fn usage_so_far(&self) -> Option<Value> {
        Some(usage(&self.usage))
    }

    fn event(&mut self, out: &mut ChatChunks, ev: &Value) -> Vec<u8> {
        if let Some(e) = ev.get("error") {
            let status = e
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .filter(|c| (400..600).contains(c))
                .unwrap_or(500);
            let f = crate::providers::errors::in_stream(status, "gemini", ev);
            return out.fail(&f.message, f.error_object());
        }
        if let Some(u) = ev.get("usageMetadata").filter(|u| u.is_object()) {
            self.usage = u.clone();
        }
        let mut o = Vec::new();
        let candidates = ev.get("candidates").and_then(Value::as_array);
        for (i, c) in candidates.into_iter().flatten().enumerate() {
            let index = c.get("index").and_then(Value::as_u64).unwrap_or(i as u64);
            self.start(out, index, &mut o);
            let parts = c.pointer("/content/parts").and_then(Value::as_array);
            for p in parts.into_iter().flatten() {
                let read = Parts::read(&json!([p]), &out.id, self.calls);
                if !read.reasoning.is_empty() {
                    let delta = json!({"reasoning_content": read.reasoning});
                    o.extend(out.chunk_at(index, delta, None));
                }
                if !read.text.is_empty() {
                    o.extend(out.chunk_at(index, json!({"content": read.text}), None));
                }
                for mut call in read.calls {
                    call["index"] = json!(self.bump(index));
                    self.calls += 1;
                    o.extend(out.chunk_at(index, json!({"tool_calls": [call]}), None));
                }
            }
            if let Some(reason) = c.get("finishReason").and_then(Value::as_str) {
                out.ended = true;
                let finish = candidate_finish(Some(reason), self.sent(index) > 0);
                o.extend(out.chunk_at(index, json!({}), Some(finish)));
            }
        }
        if candidates.is_none_or(Vec::is_empty)
            && ev.pointer("/promptFeedback/blockReason").is_some()
        {
            out.ended = true;
            self.start(out, 0, &mut o);
            o.extend(out.chunk(json!({}), Some("content_filter")));
        }
        o
    }
}

impl Events {
    /// The first sight of candidate `index` sends its role chunk.
    fn start(&mut self, out: &ChatChunks, index: u64, o: &mut Vec<u8>) {
        if self.candidates.iter().any(|(i, _)| *i == index) {
            return;
        }
        self.candidates.push((index, 0));
        o.extend(out.chunk_at(index, json!({"role": "assistant", "content": ""}), None));
    }

    /// Count one more tool call for candidate `index`; returns its position.
    fn bump(&mut self, index: u64) -> usize {
        match self.candidates.iter_mut().find(|(i, _)| *i == index) {
            Some((_, n)) => {
                *n += 1;
                *n - 1
            }
            None => 0,
        }
    }

    fn sent(&self, index: u64) -> usize {
        self.candidates
            .iter()
            .find(|(i, _)| *i == index)
            .map_or(0, |(_, n)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::StreamTranslate;

    #[test]
    fn done_exactly_once_and_errors_pass_through() {
        let mut t = StreamTranslator::new("m", "chatcmpl-1", 1, false);
        let out = t.feed(b"data: {\"error\": {\"code\": 429, \"message\": \"slow down\", \"status\": \"RESOURCE_EXHAUSTED\"}}\r\n\r\n");
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains(r#""code":"429""#), "{s}");
        let end = [t.finish(), t.finish()].concat();
        assert_eq!(end, b"data: [DONE]\n\n");
    }

    #[test]
    fn a_finish_reason_ends_the_stream_and_a_cut_has_no_done() {
        use crate::providers::StreamEnd;
        let text = b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}]}}], \"usageMetadata\": {\"promptTokenCount\": 4}}\n\n";
        let mut t = StreamTranslator::new("m", "chatcmpl-1", 1, true);
        t.feed(text);
        assert_eq!(t.end_state(), StreamEnd::Open);
        let rest = String::from_utf8([t.cut(), t.finish()].concat()).unwrap();
        assert!(rest.contains(r#""prompt_tokens":4"#), "{rest}");
        assert!(!rest.contains("[DONE]"), "{rest}");
        let mut t = StreamTranslator::new("m", "chatcmpl-1", 1, true);
        t.feed(text);
        t.feed(b"data: {\"candidates\": [{\"finishReason\": \"STOP\"}]}\n\n");
        assert_eq!(t.end_state(), StreamEnd::Complete);
        assert!(
            String::from_utf8(t.finish())
                .unwrap()
                .ends_with("data: [DONE]\n\n")
        );
    }

    #[test]
    fn blocked_prompt_streams_a_content_filter_finish() {
        let mut t = StreamTranslator::new("m", "chatcmpl-1", 1, false);
        let out = t.feed(b"data: {\"promptFeedback\": {\"blockReason\": \"OTHER\"}}\n\n");
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains(r#""role":"assistant""#), "{s}");
        assert!(s.contains(r#""finish_reason":"content_filter""#), "{s}");
    }
}
