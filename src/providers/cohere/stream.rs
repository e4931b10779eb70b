//! Cohere v2 chat event stream -> OpenAI chat completion chunks (`data: {...}\n\n`, ending with
//! `data: [DONE]`), fed with upstream bytes split anywhere.
//!
//! Events (each a `data:` line whose JSON has a `type`): `message-start` (id), `content-start`,
//! `content-delta` (`delta.message.content.text` or `.thinking`), `content-end`,
//! `tool-plan-delta` (`delta.message.tool_plan`), `tool-call-start` (`delta.message.tool_calls`
//! with id, name and the first arguments), `tool-call-delta` (an arguments fragment),
//! `tool-call-end`, `citation-start`/`citation-end`, `debug`, and `message-end`
//! (`delta.finish_reason`, `delta.usage`, `delta.error`), the last event. A stream cut before
//! `message-end` has no usage to report.

use serde_json::{Value, json};

use super::{finish_reason, response::usage};
use crate::providers::chunks::{ChatChunks, ChatEvents, JsonTranslator};

/// A translated Cohere stream.
pub type StreamTranslator = JsonTranslator<Events>;

impl StreamTranslator {
    /// A translator for a stream from Cohere model `model` (the events do not name it);
    /// `created` is the Unix time to report.
    pub fn new(model: &str, created: u64, include_usage: bool) -> Self {
        Self::with(ChatChunks::new("", model, created, include_usage), Events)
    }
}

/// Cohere's events need no state beyond the chunks'.
#[derive(Debug)]
pub struct Events;

/// A delta with `text` under `key`, after the role chunk; empty text sends nothing.
fn delta(out: &mut ChatChunks, key: &str, text: Option<&str>) -> Vec<u8> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Vec::new();
    };
    let mut delta = serde_json::Map::new();
    delta.insert(key.into(), json!(text));
    out.started(Value::Object(delta), None)
}

impl ChatEvents for Events {
    fn event(&mut self, out: &mut ChatChunks, ev: &Value) -> Vec<u8> {
        let msg = &ev["delta"]["message"];
        match ev.get("type").and_then(Value::as_str).unwrap_or("") {
            "message-start" => {
                if let Some(id) = ev.get("id").and_then(Value::as_str) {
                    out.id = id.to_string();
                }
                out.start()
            }
            "content-start" | "content-delta" => {
                let c = &msg["content"];
                let mut o = delta(out, "content", c["text"].as_str());
                o.extend(delta(out, "reasoning_content", c["thinking"].as_str()));
                o
            }
            "tool-plan-delta" => delta(out, "content", msg["tool_plan"].as_str()),
            "tool-call-start" => {
                let tc = match &msg["tool_calls"] {
                    Value::Array(a) => a.first().unwrap_or(&Value::Null),
                    other => other,
                };
                let index = ev["index"].as_u64().unwrap_or(out.tool_count() as u64);
                let call = out.open_tool(index);
                let f = &tc["function"];
                out.started(
                    json!({"tool_calls": [{"index": call, "id": tc["id"], "type": "function",
                        "function": {"name": f["name"], "arguments": f["arguments"].as_str().unwrap_or("")}}]}),
                    None,
                )
            }
            "tool-call-delta" => {
                let Some(args) = msg["tool_calls"]["function"]["arguments"]
                    .as_str()
                    .filter(|a| !a.is_empty())
                else {
                    return Vec::new();
                };
                let call = out.tool(ev["index"].as_u64().unwrap_or(0));
                out.chunk(
                    json!({"tool_calls": [{"index": call, "function": {"arguments": args}}]}),
                    None,
                )
            }
            "message-end" => {
                let d = &ev["delta"];
                let mut o = out.start();
                if let Some(e) = d["error"].as_str().filter(|e| !e.is_empty()) {
                    let f =
                        crate::providers::errors::in_stream(500, "cohere", &json!({"message": e}));
                    o.extend(out.fail(&f.message, f.error_object()));
                }
                let reason = d["finish_reason"].as_str().unwrap_or("COMPLETE");
                o.extend(out.chunk(json!({}), Some(finish_reason(reason))));
                o.extend(out.close(usage(&d["usage"])));
                o
            }
            _ => Vec::new(),
        }
    }
}
