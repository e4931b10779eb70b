//! The OpenAI side of an inward stream translator: chunk framing, the role chunk, tool call
//! numbering, the usage chunk, `[DONE]` and how the provider's stream ended; and
//! [`JsonTranslator`], which feeds a provider's JSON `data:` events to its event reader.

use serde_json::{Value, json};

use super::sse_lines::{chat_chunk, data_event, data_lines};
use super::{StreamEnd, StreamTranslate};

/// What a translator has sent of an OpenAI chat completion chunk stream.
#[derive(Debug, Default)]
pub struct ChatChunks {
    pub id: String,
    pub model: String,
    created: u64,
    /// Send a final usage chunk (the client asked for `stream_options.include_usage`).
    include_usage: bool,
    /// The role chunk went out.
    started: bool,
    /// `[DONE]` went out (or the stream was cut): later input is ignored.
    pub done: bool,
    /// The provider's own end marker was read.
    pub ended: bool,
    /// The error the provider's stream reported.
    error: Option<String>,
    /// Provider tool call (or content block) index -> OpenAI tool call index.
    tools: Vec<(u64, usize)>,
}

impl ChatChunks {
    pub fn new(id: &str, model: &str, created: u64, include_usage: bool) -> Self {
        Self {
            id: id.to_string(),
            model: model.to_string(),
            created,
            include_usage,
            ..Self::default()
        }
    }

    /// A chunk for choice 0.
    pub fn chunk(&self, delta: Value, finish: Option<&str>) -> Vec<u8> {
        self.chunk_at(0, delta, finish)
    }

    /// A chunk for choice `index`.
    pub fn chunk_at(&self, index: u64, delta: Value, finish: Option<&str>) -> Vec<u8> {
        chat_chunk(&self.id, self.created, &self.model, index, delta, finish)
    }

    /// The role chunk, once, before anything else.
    pub fn start(&mut self) -> Vec<u8> {
        if self.started {
            return Vec::new();
        }
        self.started = true;
        self.chunk(json!({"role": "assistant", "content": ""}), None)
    }

    /// The role chunk (if it has not gone out) and then `delta`.
    pub fn started(&mut self, delta: Value, finish: Option<&str>) -> Vec<u8> {
        let mut out = self.start();
        out.extend(self.chunk(delta, finish));
        out
    }

    /// A new tool call for provider index `upstream`: its OpenAI index.
    pub fn open_tool(&mut self, upstream: u64) -> usize {
        let call = self.tools.len();
        self.tools.push((upstream, call));
        call
    }

    /// How many tool calls were opened.
    pub fn tool_count(&self) -> usize {
        self.tools.len()
    }

    /// The OpenAI index of the tool call opened for provider index `upstream`.
    pub fn tool(&self, upstream: u64) -> usize {
        self.tools
            .iter()
            .find(|(i, _)| *i == upstream)
            .map_or(0, |(_, c)| *c)
    }

    /// The usage chunk for OpenAI `usage`, when the client asked for one.
    pub fn usage(&self, usage: Value) -> Vec<u8> {
        if !self.include_usage {
            return Vec::new();
        }
        data_event(&json!({"id": self.id, "object": "chat.completion.chunk",
            "created": self.created, "model": self.model, "choices": [], "usage": usage}))
    }

    /// The provider's end marker: the usage chunk (when asked for) and `[DONE]`.
    pub fn close(&mut self, usage: Value) -> Vec<u8> {
        self.ended = true;
        let mut out = self.usage(usage);
        self.done = true;
        out.extend_from_slice(b"data: [DONE]\n\n");
        out
    }

    /// The provider reported an error (`message`): the OpenAI error event for `error`
    /// (`message`, `type`, `param`, `code`). The first error is the one the stream ended with.
    pub fn fail(&mut self, message: &str, error: Value) -> Vec<u8> {
        self.error.get_or_insert_with(|| message.to_string());
        data_event(&json!({ "error": error }))
    }

    /// [`fail`](Self::fail), then `[DONE]`: nothing more is read.
    pub fn fail_and_close(&mut self, message: &str, error: Value) -> Vec<u8> {
        let mut out = self.fail(message, error);
        self.done = true;
        out.extend_from_slice(b"data: [DONE]\n\n");
        out
    }

    /// Whether the provider's end marker (or an error) was read.
    pub fn end_state(&self) -> StreamEnd {
        match (&self.error, self.ended) {
            (Some(e), _) => StreamEnd::Failed(e.clone()),
            (None, true) => StreamEnd::Complete,
            (None, false) => StreamEnd::Open,
        }
    }
}

/// A provider's JSON stream events, read one at a time into OpenAI chunks.
pub trait ChatEvents: Send {
    /// The chunks for one event.
    fn event(&mut self, out: &mut ChatChunks, ev: &Value) -> Vec<u8>;
    /// The OpenAI usage read so far, for the usage chunk of a stream that stops without the
    /// provider's end marker; `None` when the usage only comes with that marker.
    fn usage_so_far(&self) -> Option<Value> {
        None
    }
    /// Whether a stream that ends without the end marker still sends the usage so far (the
    /// provider has no end marker of its own).
    const USAGE_AT_FINISH: bool = false;
    /// `data: [DONE]` was read (OpenAI-shaped streams end with it): whether it is the
    /// provider's end marker.
    const DONE_ENDS: bool = false;
}

/// A translator for a provider whose stream is JSON `data:` lines.
#[derive(Debug)]
pub struct JsonTranslator<E> {
    /// Bytes of an unfinished line.
    carry: Vec<u8>,
    out: ChatChunks,
    events: E,
}

impl<E: ChatEvents> JsonTranslator<E> {
    pub(crate) fn with(out: ChatChunks, events: E) -> Self {
        Self {
            carry: Vec::new(),
            out,
            events,
        }
    }

    /// The usage chunk of what was read so far, once the stream is over.
    fn usage_so_far(&self) -> Vec<u8> {
        self.events
            .usage_so_far()
            .map_or_else(Vec::new, |u| self.out.usage(u))
    }
}

impl<E: ChatEvents> StreamTranslate for JsonTranslator<E> {
    fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for data in data_lines(&mut self.carry, bytes) {
            if self.out.done {
                break;
            }
            if data.trim_ascii() == b"[DONE]" {
                self.out.ended |= E::DONE_ENDS;
                continue;
            }
            if let Ok(ev) = serde_json::from_slice::<Value>(&data) {
                out.extend(self.events.event(&mut self.out, &ev));
            }
        }
        out
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = self.feed(b"\n");
        if !self.out.done {
            self.out.done = true;
            if E::USAGE_AT_FINISH {
                out.extend(self.usage_so_far());
            }
            out.extend_from_slice(b"data: [DONE]\n\n");
        }
        out
    }

    fn cut(&mut self) -> Vec<u8> {
        let mut out = self.feed(b"\n");
        if !self.out.done {
            self.out.done = true;
            out.extend(self.usage_so_far());
        }
        out
    }

    fn end_state(&self) -> StreamEnd {
        self.out.end_state()
    }
}
