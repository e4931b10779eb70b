//! Anthropic Messages event stream -> OpenAI chat completion chunks (`data: {...}\n\n`, ending
//! with `data: [DONE]`), fed with upstream bytes split anywhere.

use serde_json::{Value, json};

use super::{finish_reason, response::usage};
use crate::providers::chunks::{ChatChunks, ChatEvents, JsonTranslator};

/// A translated Anthropic stream.
pub type StreamTranslator = JsonTranslator<Events>;

impl StreamTranslator {
    pub fn new(created: u64, include_usage: bool) -> Self {
        Self::with(
            ChatChunks::new("", "", created, include_usage),
            Events { usage: json!({}) },
        )
    }
}

/// What the events said so far that the chunks do not hold.
#[derive(Debug)]
pub struct Events {
    /// Usage so far (input from `message_start`, output from `message_delta`).
    usage: Value,
}

impl ChatEvents for Events {
    fn usage_so_far(&self) -> Option<Value> {
        Some(usage(&self.usage))
    }

    fn event(&mut self, out: &mut ChatChunks, ev: &Value) -> Vec<u8> {
        match ev.get("type").and_then(Value::as_str).unwrap_or("") {
            "message_start" => {
                let m = &ev["message"];
                out.id = m["id"].as_str().unwrap_or("").to_string();
                out.model = m["model"].as_str().unwrap_or("").to_string();
                self.usage = m.get("usage").cloned().unwrap_or(json!({}));
                out.start()
            }
            "content_block_start" => {
                let b = &ev["content_block"];
                if b["type"] != "tool_use" {
                    return Vec::new();
                }
                let call = out.open_tool(ev["index"].as_u64().unwrap_or(0));
                out.chunk(
                    json!({"tool_calls": [{"index": call, "id": b["id"], "type": "function",
                        "function": {"name": b["name"], "arguments": ""}}]}),
                    None,
                )
            }
            "content_block_delta" => {
                let d = &ev["delta"];
                match d["type"].as_str().unwrap_or("") {
                    "text_delta" => out.chunk(json!({"content": d["text"]}), None),
                    "thinking_delta" => {
                        out.chunk(json!({"reasoning_content": d["thinking"]}), None)
                    }
                    "input_json_delta" => {
                        let call = out.tool(ev["index"].as_u64().unwrap_or(0));
                        out.chunk(
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
                out.chunk(json!({}), Some(finish_reason(stop)))
            }
            "message_stop" => out.close(usage(&self.usage)),
            "error" => {
                let f = crate::providers::errors::in_stream(500, "anthropic", ev);
                out.fail(&f.message, f.error_object())
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::StreamEnd;
    use crate::providers::StreamTranslate;

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
