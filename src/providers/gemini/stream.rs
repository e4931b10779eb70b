//! Gemini `streamGenerateContent?alt=sse` -> OpenAI chat completion chunks (`data: {...}\n\n`,
//! ending with `data: [DONE]`), fed with upstream bytes split anywhere.
//!
//! Each Gemini event is a whole `GenerateContentResponse` holding the next parts; a
//! `functionCall` arrives complete in one part, so it becomes one `tool_calls` delta with id,
//! name and all arguments. Gemini has no end event: the usage chunk (from the last
//! `usageMetadata`) and `[DONE]` are sent by [`StreamTranslator::finish`].

use serde_json::{Value, json};

use super::response::{Parts, candidate_finish, usage};
use super::sse;
use crate::providers::sse_lines::json_events;

/// State of one translated stream.
#[derive(Debug, Default)]
pub struct StreamTranslator {
    /// Bytes of an unfinished line.
    carry: Vec<u8>,
    id: String,
    model: String,
    created: u64,
    /// The last `usageMetadata` seen.
    usage: Value,
    /// Per candidate index: tool calls sent so far.
    candidates: Vec<(u64, usize)>,
    /// Tool calls sent over all candidates (numbers the generated ids).
    calls: usize,
    /// Send a final usage chunk (the client asked for `stream_options.include_usage`).
    include_usage: bool,
    done: bool,
    /// A `finishReason` (or a blocked prompt) was read: Gemini's end of an answer.
    finished: bool,
    /// The message of an error event.
    error: Option<String>,
}

impl StreamTranslator {
    /// A translator whose chunks report `model`, `id` and `created` (Unix time).
    pub fn new(model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        Self {
            id: id.to_string(),
            model: model.to_string(),
            created,
            include_usage,
            usage: Value::Null,
            ..Self::default()
        }
    }

    fn chunk(&self, index: u64, delta: Value, finish: Option<&str>) -> Vec<u8> {
        let c = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "choices": [{"index": index, "delta": delta, "finish_reason": finish}]});
        sse(&c, b"\n\n")
    }

    /// Translate the next upstream bytes.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for ev in json_events(&mut self.carry, bytes) {
            out.extend(self.event(&ev));
        }
        out
    }

    /// The end of the upstream stream: the usage chunk (when asked for) and `[DONE]`.
    pub fn finish(&mut self) -> Vec<u8> {
        let first = !self.done;
        let mut out = self.cut();
        if first {
            out.extend_from_slice(b"data: [DONE]\n\n");
        }
        out
    }

    /// The upstream stream stopped before a `finishReason`: what is pending and the usage
    /// chunk (when asked for), without `[DONE]`.
    pub fn cut(&mut self) -> Vec<u8> {
        let mut out = self.feed(b"\n");
        if !self.done {
            self.done = true;
            if self.include_usage {
                let c = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                    "model": self.model, "choices": [], "usage": usage(&self.usage)});
                out.extend(sse(&c, b"\n\n"));
            }
        }
        out
    }

    /// Whether a `finishReason` (or an error) was read.
    pub fn end_state(&self) -> crate::providers::StreamEnd {
        use crate::providers::StreamEnd;
        match (&self.error, self.finished) {
            (Some(e), _) => StreamEnd::Failed(e.clone()),
            (None, true) => StreamEnd::Complete,
            (None, false) => StreamEnd::Open,
        }
    }

    /// The first sight of candidate `index` sends its role chunk.
    fn start(&mut self, index: u64, out: &mut Vec<u8>) {
        if self.candidates.iter().any(|(i, _)| *i == index) {
            return;
        }
        self.candidates.push((index, 0));
        out.extend(self.chunk(index, json!({"role": "assistant", "content": ""}), None));
    }

    fn event(&mut self, ev: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(e) = ev.get("error") {
            let msg = e.get("message").and_then(Value::as_str);
            self.error = Some(msg.unwrap_or("Gemini stream error").to_string());
            let c = json!({"error": {"message": e.get("message").cloned().unwrap_or(json!("Gemini stream error")),
                "type": e.get("status").cloned().unwrap_or(json!("api_error")), "param": null,
                "code": e.get("code").map_or_else(|| "500".to_string(), |c| c.to_string().trim_matches('"').to_string())}});
            return sse(&c, b"\n\n");
        }
        if let Some(u) = ev.get("usageMetadata").filter(|u| u.is_object()) {
            self.usage = u.clone();
        }
        let candidates = ev.get("candidates").and_then(Value::as_array);
        for (i, c) in candidates.into_iter().flatten().enumerate() {
            let index = c.get("index").and_then(Value::as_u64).unwrap_or(i as u64);
            self.start(index, &mut out);
            for p in c
                .pointer("/content/parts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let read = Parts::read(&json!([p]), &self.id, self.calls);
                if !read.reasoning.is_empty() {
                    out.extend(self.chunk(
                        index,
                        json!({"reasoning_content": read.reasoning}),
                        None,
                    ));
                }
                if !read.text.is_empty() {
                    out.extend(self.chunk(index, json!({"content": read.text}), None));
                }
                for mut call in read.calls {
                    let n = self.bump(index);
                    self.calls += 1;
                    call["index"] = json!(n);
                    out.extend(self.chunk(index, json!({"tool_calls": [call]}), None));
                }
            }
            if let Some(reason) = c.get("finishReason").and_then(Value::as_str) {
                self.finished = true;
                let has_calls = self.sent(index) > 0;
                out.extend(self.chunk(
                    index,
                    json!({}),
                    Some(candidate_finish(Some(reason), has_calls)),
                ));
            }
        }
        if candidates.is_none_or(Vec::is_empty)
            && ev.pointer("/promptFeedback/blockReason").is_some()
        {
            self.finished = true;
            self.start(0, &mut out);
            out.extend(self.chunk(0, json!({}), Some("content_filter")));
        }
        out
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

crate::providers::stream_translate!(StreamTranslator);

#[cfg(test)]
mod tests {
    use super::*;

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
