//! Cohere v2 chat event stream -> OpenAI chat completion chunks (`data: {...}\n\n`, ending with
//! `data: [DONE]`), fed with upstream bytes split anywhere.
//!
//! Events (each a `data:` line whose JSON has a `type`): `message-start` (id), `content-start`,
//! `content-delta` (`delta.message.content.text` or `.thinking`), `content-end`,
//! `tool-plan-delta` (`delta.message.tool_plan`), `tool-call-start` (`delta.message.tool_calls`
//! with id, name and the first arguments), `tool-call-delta` (an arguments fragment),
//! `tool-call-end`, `citation-start`/`citation-end`, `debug`, and `message-end`
//! (`delta.finish_reason`, `delta.usage`, `delta.error`), the last event.

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
    /// The role chunk went out.
    started: bool,
    /// Cohere tool call index -> OpenAI tool call index.
    tools: Vec<(u64, usize)>,
    /// Send a final usage chunk (the client asked for `stream_options.include_usage`).
    include_usage: bool,
    done: bool,
    /// `message-end` was read.
    ended: bool,
    /// The error `message-end` reported.
    error: Option<String>,
}

impl StreamTranslator {
    /// A translator for a stream from Cohere model `model` (the events do not name it);
    /// `created` is the Unix time to report.
    pub fn new(model: &str, created: u64, include_usage: bool) -> Self {
        Self {
            model: model.to_string(),
            created,
            include_usage,
            ..Self::default()
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Vec<u8> {
        chat_chunk(&self.id, self.created, &self.model, 0, delta, finish)
    }

    /// The role chunk, once, before anything else.
    fn start(&mut self) -> Vec<u8> {
        if self.started {
            return Vec::new();
        }
        self.started = true;
        self.chunk(json!({"role": "assistant", "content": ""}), None)
    }

    /// A delta, after the role chunk; empty text sends nothing.
    fn delta(&mut self, key: &str, text: Option<&str>) -> Vec<u8> {
        let Some(text) = text.filter(|t| !t.is_empty()) else {
            return Vec::new();
        };
        let mut delta = serde_json::Map::new();
        delta.insert(key.into(), json!(text));
        let mut out = self.start();
        out.extend(self.chunk(Value::Object(delta), None));
        out
    }

    /// Translate the next upstream bytes.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for ev in json_events(&mut self.carry, bytes) {
            out.extend(self.event(&ev));
        }
        out
    }

    /// The end of the upstream stream: flush, and close with `[DONE]` if `message-end` never
    /// came.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = self.feed(
            b"
",
        );
        done_once(&mut out, &mut self.done);
        out
    }

    /// The upstream stream stopped before `message-end`: what is pending, without `[DONE]`
    /// (the usage only comes with `message-end`).
    pub fn cut(&mut self) -> Vec<u8> {
        let out = self.feed(b"\n");
        self.done = true;
        out
    }

    /// Whether `message-end` was read (and whether it reported an error).
    pub fn end_state(&self) -> crate::providers::StreamEnd {
        use crate::providers::StreamEnd;
        match (&self.error, self.ended) {
            (Some(e), _) => StreamEnd::Failed(e.clone()),
            (None, true) => StreamEnd::Complete,
            (None, false) => StreamEnd::Open,
        }
    }

    fn call_index(&self, index: u64) -> usize {
        self.tools
            .iter()
            .find(|(i, _)| *i == index)
            .map_or(0, |(_, c)| *c)
    }

    fn event(&mut self, ev: &Value) -> Vec<u8> {
        if self.done {
            return Vec::new();
        }
        let msg = &ev["delta"]["message"];
        match ev.get("type").and_then(Value::as_str).unwrap_or("") {
            "message-start" => {
                if let Some(id) = ev.get("id").and_then(Value::as_str) {
                    self.id = id.to_string();
                }
                self.start()
            }
            "content-start" | "content-delta" => {
                let c = &msg["content"];
                let mut out = self.delta("content", c["text"].as_str());
                out.extend(self.delta("reasoning_content", c["thinking"].as_str()));
                out
            }
            "tool-plan-delta" => self.delta("content", msg["tool_plan"].as_str()),
            "tool-call-start" => {
                let tc = match &msg["tool_calls"] {
                    Value::Array(a) => a.first().unwrap_or(&Value::Null),
                    other => other,
                };
                let index = ev["index"].as_u64().unwrap_or(self.tools.len() as u64);
                let call = self.tools.len();
                self.tools.push((index, call));
                let f = &tc["function"];
                let mut out = self.start();
                out.extend(self.chunk(
                    json!({"tool_calls": [{"index": call, "id": tc["id"], "type": "function",
                        "function": {"name": f["name"], "arguments": f["arguments"].as_str().unwrap_or("")}}]}),
                    None,
                ));
                out
            }
            "tool-call-delta" => {
                let Some(args) = msg["tool_calls"]["function"]["arguments"]
                    .as_str()
                    .filter(|a| !a.is_empty())
                else {
                    return Vec::new();
                };
                let call = self.call_index(ev["index"].as_u64().unwrap_or(0));
                self.chunk(
                    json!({"tool_calls": [{"index": call, "function": {"arguments": args}}]}),
                    None,
                )
            }
            "message-end" => {
                let d = &ev["delta"];
                self.ended = true;
                let mut out = self.start();
                if let Some(e) = d["error"].as_str().filter(|e| !e.is_empty()) {
                    self.error = Some(e.to_string());
                    out.extend(sse(
                        &json!({"error": {"message": e, "type": "api_error", "param": null, "code": "500"}}),
                    ));
                }
                let reason = d["finish_reason"].as_str().unwrap_or("COMPLETE");
                out.extend(self.chunk(json!({}), Some(finish_reason(reason))));
                if self.include_usage {
                    let c = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                        "model": self.model, "choices": [], "usage": usage(&d["usage"])});
                    out.extend(sse(&c));
                }
                self.done = true;
                out.extend_from_slice(b"data: [DONE]\n\n");
                out
            }
            _ => Vec::new(),
        }
    }
}

crate::providers::stream_translate!(StreamTranslator);
