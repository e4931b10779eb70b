//! OpenAI chat answers -> Anthropic Messages answers, for `/v1/messages` clients served by a
//! deployment that is not Anthropic's: whole responses ([`to_messages_response`]) and chunk
//! streams ([`ChunkTranslator`], OpenAI SSE in, Anthropic events out).

use serde_json::{Value, json};

use crate::providers::StreamTranslate;

/// Anthropic `stop_reason` for an OpenAI `finish_reason`.
pub fn stop_reason(finish: &str) -> &'static str {
    match finish {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic `usage` from OpenAI's: input tokens exclude the cached ones, which Anthropic
/// reports apart.
pub fn usage(u: Option<&Value>) -> Value {
    let n = |k: &str| {
        u.and_then(|u| u.get(k))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let read = u
        .and_then(|u| u.get("cache_read_input_tokens"))
        .and_then(Value::as_u64)
        .or_else(|| {
            u.and_then(|u| u.pointer("/prompt_tokens_details/cached_tokens"))
                .and_then(Value::as_u64)
        })
        .unwrap_or(0);
    let created = n("cache_creation_input_tokens");
    json!({
        "input_tokens": n("prompt_tokens").saturating_sub(read + created),
        "output_tokens": n("completion_tokens"),
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": created,
    })
}

/// `msg_...` id for a chat completion id.
fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_string()
    } else {
        format!("msg_{}", id.strip_prefix("chatcmpl-").unwrap_or(id))
    }
}

/// Translate a chat completion into a Messages response.
pub fn to_messages_response(chat: &Value) -> Value {
    let choice = chat.pointer("/choices/0");
    let msg = choice.and_then(|c| c.get("message"));
    let mut content = Vec::new();
    if let Some(r) = msg
        .and_then(|m| m.get("reasoning_content"))
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    {
        content.push(json!({"type": "thinking", "thinking": r, "signature": ""}));
    }
    if let Some(t) = msg
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        content.push(json!({"type": "text", "text": t}));
    }
    for c in msg
        .and_then(|m| m.get("tool_calls"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let f = c.get("function");
        let args = f
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .unwrap_or("{}");
        content.push(json!({
            "type": "tool_use",
            "id": c.get("id").cloned().unwrap_or(json!("")),
            "name": f.and_then(|f| f.get("name")).cloned().unwrap_or(json!("")),
            "input": serde_json::from_str::<Value>(args).unwrap_or_else(|_| json!({})),
        }));
    }
    let finish = choice
        .and_then(|c| c.get("finish_reason"))
        .and_then(Value::as_str)
        .unwrap_or("stop");
    json!({
        "id": message_id(chat.get("id").and_then(Value::as_str).unwrap_or("")),
        "type": "message",
        "role": "assistant",
        "model": chat.get("model").cloned().unwrap_or(json!("")),
        "content": content,
        "stop_reason": stop_reason(finish),
        "stop_sequence": null,
        "usage": usage(chat.get("usage")),
    })
}

/// The content block open in the stream being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Text,
    Thinking,
    /// A tool_use block for OpenAI tool call `index`.
    Tool(u64),
}

/// OpenAI chat chunk SSE -> Anthropic Messages event stream.
#[derive(Debug)]
pub struct ChunkTranslator {
    carry: Vec<u8>,
    started: bool,
    finished: bool,
    /// Index of the next content block.
    next_block: u64,
    open: Open,
    stop: &'static str,
    usage: Option<Value>,
    model: String,
}

impl ChunkTranslator {
    /// `model` is reported in `message_start` when the chunks do not name one.
    pub fn new(model: &str) -> Self {
        Self {
            carry: Vec::new(),
            started: false,
            finished: false,
            next_block: 0,
            open: Open::None,
            stop: "end_turn",
            usage: None,
            model: model.to_string(),
        }
    }

    fn start(&mut self, chunk: &Value, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let id = message_id(chunk.get("id").and_then(Value::as_str).unwrap_or("gateway"));
        let model = chunk
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .unwrap_or(&self.model)
            .to_string();
        event(
            out,
            "message_start",
            &json!({"type": "message_start", "message": {"id": id, "type": "message",
                "role": "assistant", "model": model, "content": [], "stop_reason": null,
                "stop_sequence": null, "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        );
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open != Open::None {
            let index = self.next_block - 1;
            event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
            self.open = Open::None;
        }
    }

    /// Make `want` the open block (closing another one), starting it with `block`.
    fn ensure(&mut self, want: Open, block: Value, out: &mut Vec<u8>) -> u64 {
        if self.open != want {
            self.close(out);
            let index = self.next_block;
            self.next_block += 1;
            event(
                out,
                "content_block_start",
                &json!({"type": "content_block_start", "index": index, "content_block": block}),
            );
            self.open = want;
        }
        self.next_block - 1
    }

    fn chunk(&mut self, c: &Value, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        if let Some(e) = c.get("error") {
            let msg = e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("provider error");
            event(
                out,
                "error",
                &json!({"type": "error", "error": {"type": "api_error", "message": msg}}),
            );
            // Anthropic ends a stream with its error event
            self.finished = true;
            return;
        }
        self.start(c, out);
        if let Some(u) = c.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(u.clone());
        }
        let Some(choice) = c.pointer("/choices/0") else {
            return;
        };
        let delta = choice.get("delta");
        if let Some(r) = delta
            .and_then(|d| d.get("reasoning_content"))
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            let index = self.ensure(
                Open::Thinking,
                json!({"type": "thinking", "thinking": "", "signature": ""}),
                out,
            );
            event(
                out,
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "thinking_delta", "thinking": r}}),
            );
        }
        if let Some(t) = delta
            .and_then(|d| d.get("content"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            let index = self.ensure(Open::Text, json!({"type": "text", "text": ""}), out);
            event(
                out,
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": t}}),
            );
        }
        for call in delta
            .and_then(|d| d.get("tool_calls"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let i = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            let f = call.get("function");
            let starts = call.get("id").and_then(Value::as_str).is_some();
            if starts || self.open != Open::Tool(i) {
                let block = json!({"type": "tool_use",
                    "id": call.get("id").cloned().unwrap_or(json!(format!("toolu_{i}"))),
                    "name": f.and_then(|f| f.get("name")).cloned().unwrap_or(json!("")),
                    "input": {}});
                if self.open == Open::Tool(i) {
                    self.close(out);
                }
                self.ensure(Open::Tool(i), block, out);
            }
            if let Some(args) = f
                .and_then(|f| f.get("arguments"))
                .and_then(Value::as_str)
                .filter(|a| !a.is_empty())
            {
                let index = self.next_block - 1;
                event(
                    out,
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": args}}),
                );
            }
        }
        if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
            self.stop = stop_reason(f);
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.start(&Value::Null, out);
        self.close(out);
        let u = usage(self.usage.as_ref());
        event(
            out,
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": self.stop, "stop_sequence": null}, "usage": u}),
        );
        event(out, "message_stop", &json!({"type": "message_stop"}));
    }
}

impl StreamTranslate for ChunkTranslator {
    fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for data in crate::providers::sse_lines::data_lines(&mut self.carry, bytes) {
            if data == b"[DONE]" {
                self.end(&mut out);
            } else if !self.finished
                && let Ok(c) = serde_json::from_slice::<Value>(&data)
            {
                self.chunk(&c, &mut out);
            }
        }
        out
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = self.feed(b"\n");
        self.end(&mut out);
        out
    }
}

fn event(out: &mut Vec<u8>, name: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}
