//! Bedrock ConverseStream (AWS event-stream frames) -> OpenAI chat completion chunks
//! (`data: {...}\n\n`, ending with `data: [DONE]`), fed with upstream bytes split anywhere.
//!
//! Bedrock sends `metadata` (with usage) after `messageStop`: the finish chunk goes out at
//! `messageStop`, the usage chunk (when asked for) and `[DONE]` at `metadata`, or when the
//! stream ends without it. An exception message, a framing error or a stream cut mid-message
//! ends the stream with an error chunk and `[DONE]`.

use serde_json::{Value, json};

use super::{
    eventstream::{Decoder, Message},
    finish_reason,
    response::usage,
};
use crate::providers::chunks::ChatChunks;
use crate::providers::errors::{ProviderFailure, classify};
use crate::providers::{StreamEnd, StreamTranslate};

/// State of one translated stream.
#[derive(Debug, Default)]
pub struct StreamTranslator {
    decoder: Decoder,
    out: ChatChunks,
}

impl StreamTranslator {
    /// A translator reporting `model`, chunk `id` and `created` (Unix time) in every chunk.
    pub fn new(model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        Self {
            decoder: Decoder::default(),
            out: ChatChunks::new(id, model, created, include_usage),
        }
    }

    /// A stream that cannot be decoded: a 502 error event, then its end.
    fn broken(&mut self, message: &str) -> Vec<u8> {
        let error = json!({"message": message, "type": "api_error", "param": null, "code": "502"});
        self.out.fail_and_close(message, error)
    }

    /// The stream's error (classified like a whole answer's), then its end.
    fn end_with(&mut self, f: &ProviderFailure) -> Vec<u8> {
        self.out.fail_and_close(&f.message, f.error_object())
    }

    fn message(&mut self, m: &Message) -> Vec<u8> {
        match m.header_str(":message-type").unwrap_or("event") {
            "event" => {}
            "exception" => {
                let kind = m.header_str(":exception-type").unwrap_or("exception");
                return self.exception(kind, &m.payload);
            }
            "error" => {
                let code = m.header_str(":error-code");
                let message = m
                    .header_str(":error-message")
                    .unwrap_or("Bedrock stream error");
                let body = json!({"message": message}).to_string();
                return self.end_with(&classify(500, "bedrock", body.as_bytes(), code));
            }
            _ => return Vec::new(),
        }
        let Ok(ev) = serde_json::from_slice::<Value>(&m.payload) else {
            return Vec::new();
        };
        let out = &mut self.out;
        match m.header_str(":event-type").unwrap_or("") {
            "messageStart" => out.start(),
            "contentBlockStart" => {
                let Some(tu) = ev.pointer("/start/toolUse") else {
                    return Vec::new();
                };
                let call = out.open_tool(ev["contentBlockIndex"].as_u64().unwrap_or(0));
                out.started(
                    json!({"tool_calls": [{"index": call, "id": tu["toolUseId"], "type": "function",
                        "function": {"name": tu["name"], "arguments": ""}}]}),
                    None,
                )
            }
            "contentBlockDelta" => {
                let d = &ev["delta"];
                let delta = if let Some(t) = d.get("text").and_then(Value::as_str) {
                    json!({"content": t})
                } else if let Some(input) = d.pointer("/toolUse/input").and_then(Value::as_str) {
                    let call = out.tool(ev["contentBlockIndex"].as_u64().unwrap_or(0));
                    json!({"tool_calls": [{"index": call, "function": {"arguments": input}}]})
                } else if let Some(r) = d.pointer("/reasoningContent/text").and_then(Value::as_str)
                {
                    json!({"reasoning_content": r})
                } else {
                    return Vec::new();
                };
                out.started(delta, None)
            }
            "messageStop" => {
                out.ended = true;
                let stop = ev["stopReason"].as_str().unwrap_or("end_turn");
                out.started(json!({}), Some(finish_reason(stop)))
            }
            "metadata" => out.close(usage(ev.get("usage").unwrap_or(&Value::Null))),
            _ => Vec::new(),
        }
    }

    /// An exception message (`throttlingException`, `validationException`, ...) as the
    /// OpenAI error the gateway would return for it, then the end of the stream.
    fn exception(&mut self, kind: &str, payload: &[u8]) -> Vec<u8> {
        let status = match kind {
            "validationException" => 400,
            "accessDeniedException" => 403,
            "resourceNotFoundException" => 404,
            "modelTimeoutException" => 408,
            "throttlingException" | "serviceQuotaExceededException" => 429,
            "modelStreamErrorException" => 424,
            "serviceUnavailableException" => 503,
            _ => 500,
        };
        // the error classifier knows AWS exception names capitalised
        let mut name = kind.to_string();
        if let Some(first) = name.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        self.end_with(&classify(status, "bedrock", payload, Some(&name)))
    }
}

impl StreamTranslate for StreamTranslator {
    fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.out.done {
            return out;
        }
        self.decoder.push(bytes);
        while let Some(m) = self.decoder.next_message() {
            match m {
                Ok(m) => out.extend(self.message(&m)),
                Err(e) => {
                    let message = format!("Bedrock stream: {e}");
                    out.extend(self.broken(&message));
                }
            }
            if self.out.done {
                break;
            }
        }
        out
    }

    fn finish(&mut self) -> Vec<u8> {
        if self.out.done {
            return Vec::new();
        }
        if self.decoder.buffered() > 0 {
            return self.broken("Bedrock stream: the stream ended inside a message");
        }
        self.out.done = true;
        b"data: [DONE]\n\n".to_vec()
    }

    /// The upstream stream stopped before `messageStop`: nothing more is sent (the usage only
    /// comes after it).
    fn cut(&mut self) -> Vec<u8> {
        self.out.done = true;
        Vec::new()
    }

    fn end_state(&self) -> StreamEnd {
        self.out.end_state()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::bedrock::eventstream::encode;

    fn event(kind: &str, payload: Value) -> Vec<u8> {
        encode(
            &[
                (":event-type", kind),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload.to_string().as_bytes(),
        )
    }

    fn run(t: &mut StreamTranslator, wire: &[u8]) -> String {
        let mut out = t.feed(wire);
        out.extend(t.finish());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn usage_only_when_asked() {
        let mut wire = event("messageStart", json!({"role": "assistant"}));
        wire.extend(event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
        ));
        wire.extend(event("messageStop", json!({"stopReason": "end_turn"})));
        wire.extend(event(
            "metadata",
            json!({"usage": {"inputTokens": 1, "outputTokens": 2}}),
        ));
        let without = run(&mut StreamTranslator::new("m", "id", 1, false), &wire);
        assert!(!without.contains("usage"), "{without}");
        assert!(without.contains(r#""finish_reason":"stop""#), "{without}");
        assert_eq!(without.matches("[DONE]").count(), 1);
        let with = run(&mut StreamTranslator::new("m", "id", 1, true), &wire);
        assert!(with.contains(r#""total_tokens":3"#), "{with}");
        assert!(with.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn reasoning_deltas() {
        let wire = event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hmm"}}}),
        );
        let out = run(&mut StreamTranslator::new("m", "id", 1, true), &wire);
        assert!(out.contains(r#""role":"assistant""#), "{out}");
        assert!(out.contains(r#""reasoning_content":"hmm""#), "{out}");
        assert!(out.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn exceptions_end_the_stream() {
        let mut wire = event("messageStart", json!({"role": "assistant"}));
        wire.extend(encode(
            &[
                (":exception-type", "throttlingException"),
                (":content-type", "application/json"),
                (":message-type", "exception"),
            ],
            br#"{"message":"Too many requests, please wait before trying again."}"#,
        ));
        wire.extend(event(
            "contentBlockDelta",
            json!({"delta": {"text": "late"}}),
        ));
        let out = run(&mut StreamTranslator::new("m", "id", 1, true), &wire);
        let err = out.lines().find(|l| l.contains(r#""error""#)).unwrap();
        let err: Value = serde_json::from_str(err.strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(
            err["error"]["message"],
            "Too many requests, please wait before trying again."
        );
        assert_eq!(err["error"]["type"], "rate_limit_error");
        assert!(!out.contains("late"), "{out}");
        assert_eq!(out.matches("[DONE]").count(), 1);
        assert!(out.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn message_stop_ends_the_stream_and_a_cut_sends_nothing() {
        use crate::providers::StreamEnd;
        let start = event("messageStart", json!({"role": "assistant"}));
        let mut t = StreamTranslator::new("m", "id", 1, true);
        t.feed(&start);
        assert_eq!(t.end_state(), StreamEnd::Open);
        assert!(t.cut().is_empty() && t.finish().is_empty());
        let mut t = StreamTranslator::new("m", "id", 1, true);
        t.feed(&start);
        t.feed(&event("messageStop", json!({"stopReason": "end_turn"})));
        assert_eq!(t.end_state(), StreamEnd::Complete);
    }

    #[test]
    fn a_cut_stream_ends_with_an_error() {
        let wire = event("messageStart", json!({"role": "assistant"}));
        let out = run(
            &mut StreamTranslator::new("m", "id", 1, true),
            &wire[..wire.len() - 1],
        );
        assert!(out.contains("ended inside a message"), "{out}");
        assert!(out.ends_with("data: [DONE]\n\n"));
    }
}
