//! Anthropic Messages event stream -> OpenAI chat completion chunks (`data: {...}\n\n`, ending
//! with `data: [DONE]`), fed with upstream bytes split anywhere.

use serde_json::{Value, json};

use super::{finish_reason, response::usage};
use crate::providers::sse_lines::data_event as sse;
use crate::providers::sse_lines::{chat_chunk, done_once, json_events};

/// State of one translated stream.
#[derive(Debug, Default)]
pub struct StreamTranslator {
    /// Bytes of an unfinished line.
    carry: Vec<u8>,
    id: String,
    model: String,
    created: u64,
    /// Usage so far (input from `message_start`, output from `message_delta`).
    usage: Value,
    /// Content block index -> tool call index, for tool_use blocks.
    tools: Vec<(u64, usize)>,
    /// Send a final usage chunk (the client asked for `stream_options.include_usage`).
    include_usage: bool,
    done: bool,
    /// `message_stop` was read.
    stopped: bool,
    /// The message of an `error` event.
    error: Option<String>,
}

impl StreamTranslator {
    pub fn new(created: u64, include_usage: bool) -> Self {
        Self {
            created,
            include_usage,
            usage: json!({}),
            ..Self::default()
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Vec<u8> {
        chat_chunk(&self.id, self.created, &self.model, 0, delta, finish)
    }

    /// Translate the next upstream bytes.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for ev in json_events(&mut self.carry, bytes) {
            out.extend(self.event(&ev));
        }
        out
    }

    /// The end of the upstream stream.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = self.feed(
            b"
",
        );
        done_once(&mut out, &mut self.done);
        out
    }

    /// The upstream stream stopped before `message_stop`: what is pending and the usage so
    /// far (input tokens from `message_start`), without `[DONE]`.
    pub fn cut(&mut self) -> Vec<u8> {
        let mut out = self.feed(b"\n");
        if !self.done {
            self.done = true;
            if self.include_usage {
                out.extend(self.usage_chunk());
            }
        }
        out
    }

    /// Whether `message_stop` (or an error) was read.
    pub fn end_state(&self) -> crate::providers::StreamEnd {
        use crate::providers::StreamEnd;
        match (&self.error, self.stopped) {
            (Some(e), _) => StreamEnd::Failed(e.clone()),
            (None, true) => StreamEnd::Complete,
            (None, false) => StreamEnd::Open,
        }
    }

    fn usage_chunk(&self) -> Vec<u8> {
        let c = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "choices": [], "usage": usage(&self.usage)});
        sse(&c)
    }

    fn event(&mut self, ev: &Value) -> Vec<u8> {
        match ev.get("type").and_then(Value::as_str).unwrap_or("") {
            "message_start" => {
                let m = &ev["message"];
                self.id = m["id"].as_str().unwrap_or("").to_string();
                self.model = m["model"].as_str().unwrap_or("").to_string();
                self.usage = m.get("usage").cloned().unwrap_or(json!({}));
                self.chunk(json!({"role": "assistant", "content": ""}), None)
            }
            "content_block_start" => {
                let b = &ev["content_block"];
                if b["type"] == "tool_use" {
                    let index = ev["index"].as_u64().unwrap_or(0);
                    let call = self.tools.len();
                    self.tools.push((index, call));
                    self.chunk(
                        json!({"tool_calls": [{"index": call, "id": b["id"], "type": "function",
                            "function": {"name": b["name"], "arguments": ""}}]}),
                        None,
                    )
                } else {
                    Vec::new()
                }
            }
            "content_block_delta" => {
                let d = &ev["delta"];
                match d["type"].as_str().unwrap_or("") {
                    "text_delta" => self.chunk(json!({"content": d["text"]}), None),
                    "thinking_delta" => {
                        self.chunk(json!({"reasoning_content": d["thinking"]}), None)
                    }
                    "input_json_delta" => {
                        let index = ev["index"].as_u64().unwrap_or(0);
                        let call = self
                            .tools
                            .iter()
                            .find(|(i, _)| *i == index)
                            .map_or(0, |(_, c)| *c);
                        self.chunk(
                            json!({"tool_calls": [{"index": call, "function": {"arguments": d["partial_json"]}}]}),
                            None,
                        )
                    }
                    _ => Vec::new(),
                }
            }
            "message_delta" => {
                if let Some(u) = ev.get("usage").and_then(Value::as_object) {
                    for (k, v) in u {
                        self.usage[k.as_str()] = v.clone();
                    }
                }
                let stop = ev["delta"]["stop_reason"].as_str().unwrap_or("end_turn");
                self.chunk(json!({}), Some(finish_reason(stop)))
            }
            "message_stop" => {
                let mut out = Vec::new();
                if self.include_usage {
                    out = self.usage_chunk();
                }
                self.stopped = true;
                self.done = true;
                out.extend_from_slice(b"data: [DONE]\n\n");
                out
            }
            "error" => {
                let e = &ev["error"];
                let msg = e["message"].as_str().unwrap_or("Anthropic stream error");
                self.error = Some(msg.to_string());
                let c = json!({"error": {"message": e["message"], "type": e["type"], "param": null, "code": "500"}});
                sse(&c)
            }
            _ => Vec::new(),
        }
    }
}

crate::providers::stream_translate!(StreamTranslator);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::StreamEnd;

    const START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"m\",\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n";

    #[test]
    fn a_cut_stream_keeps_its_usage_and_gets_no_end() {
        let mut t = StreamTranslator::new(1, true);
        let out = String::from_utf8(t.feed(START.as_bytes())).unwrap();
        assert!(out.contains(r#""content":"Hi""#), "{out}");
        assert_eq!(t.end_state(), StreamEnd::Open);
        let rest = String::from_utf8([t.cut(), t.finish()].concat()).unwrap();
        assert!(rest.contains(r#""prompt_tokens":25"#), "{rest}");
        assert!(
            !rest.contains("[DONE]") && !rest.contains("finish_reason"),
            "{rest}"
        );
    }

    #[test]
    fn message_stop_and_errors_end_the_stream() {
        let mut t = StreamTranslator::new(1, false);
        t.feed(START.as_bytes());
        t.feed(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        assert_eq!(t.end_state(), StreamEnd::Complete);
        let mut t = StreamTranslator::new(1, false);
        t.feed(START.as_bytes());
        t.feed(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
        assert_eq!(t.end_state(), StreamEnd::Failed("Overloaded".into()));
    }
}
