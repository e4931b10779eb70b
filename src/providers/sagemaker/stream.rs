//! A SageMaker response stream (`/invocations-response-stream`) -> OpenAI chat completion
//! chunks, fed with upstream bytes split anywhere.
//!
//! The AWS event stream's `PayloadPart` events carry the container's own stream, split
//! anywhere: SSE `data:` lines or bare JSON lines, read line by line. A Messages API container
//! sends OpenAI chunks ([`openai_like::Events`]); TGI's `generate_stream` sends
//! `{"token": {"text"}, "generated_text", "details"}` ([`TgiEvents`]). An exception message
//! (`ModelStreamError`, `InternalStreamFailure`), a framing error or a stream cut mid-message
//! ends the stream with an error chunk and `[DONE]`.

use serde_json::{Value, json};

use super::{estimate_tokens, finish_reason};
use crate::providers::bedrock::eventstream::{Decoder, Message};
use crate::providers::chunks::{ChatChunks, ChatEvents};
use crate::providers::errors::classify;
use crate::providers::openai_like;
use crate::providers::{StreamEnd, StreamTranslate};

/// A translated SageMaker stream whose payload JSON lines `E` reads.
#[derive(Debug)]
pub struct StreamTranslator<E> {
    decoder: Decoder,
    /// Payload bytes of an unfinished line.
    carry: Vec<u8>,
    out: ChatChunks,
    events: E,
}

/// A Messages API container's stream.
pub type ChatStream = StreamTranslator<openai_like::Events>;
/// A TGI container's stream.
pub type TgiStream = StreamTranslator<TgiEvents>;

impl ChatStream {
    pub fn chat(model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        Self::with(
            ChatChunks::new(id, model, created, include_usage),
            openai_like::Events::new("sagemaker"),
        )
    }
}

impl TgiStream {
    /// `prompt` is what was sent, for the usage estimate.
    pub fn tgi(model: &str, id: &str, created: u64, include_usage: bool, prompt: &str) -> Self {
        Self::with(
            ChatChunks::new(id, model, created, include_usage),
            TgiEvents {
                prompt_tokens: estimate_tokens(prompt),
                ..TgiEvents::default()
            },
        )
    }
}

impl<E: ChatEvents> StreamTranslator<E> {
    fn with(out: ChatChunks, events: E) -> Self {
        Self {
            decoder: Decoder::default(),
            carry: Vec::new(),
            out,
            events,
        }
    }

    fn fail(&mut self, status: u16, body: &[u8], kind: Option<&str>) -> Vec<u8> {
        let f = classify(status, "sagemaker", body, kind);
        self.out.fail_and_close(&f.message, f.error_object())
    }

    /// The complete lines of `bytes` (after what was carried), read.
    fn lines(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.carry.extend_from_slice(bytes);
        let Some(end) = self.carry.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let rest = self.carry.split_off(end + 1);
        let lines = std::mem::replace(&mut self.carry, rest);
        let mut out = Vec::new();
        for line in lines.split(|b| *b == b'\n') {
            if self.out.done {
                break;
            }
            let line = line.trim_ascii();
            let data = match line.strip_prefix(b"data:") {
                Some(d) => d.trim_ascii(),
                None => line,
            };
            if data == b"[DONE]" {
                self.out.ended |= E::DONE_ENDS;
                continue;
            }
            if !matches!(data.first(), Some(b'{' | b'[')) {
                continue;
            }
            if let Ok(ev) = serde_json::from_slice::<Value>(data) {
                out.extend(self.events.event(&mut self.out, &ev));
            }
        }
        out
    }

    fn message(&mut self, m: &Message) -> Vec<u8> {
        match m.header_str(":message-type").unwrap_or("event") {
            "event" if m.header_str(":event-type") == Some("PayloadPart") => {
                let payload = m.payload.clone();
                self.lines(&payload)
            }
            "exception" => {
                let kind = m.header_str(":exception-type").unwrap_or("exception");
                let status = match kind {
                    "ModelStreamError" => 424,
                    "ValidationError" => 400,
                    _ => 500,
                };
                let kind = kind.to_string();
                let payload = m.payload.clone();
                self.fail(status, &payload, Some(&kind))
            }
            "error" => {
                let message = m
                    .header_str(":error-message")
                    .unwrap_or("SageMaker stream error");
                let body = json!({"message": message}).to_string();
                let code = m.header_str(":error-code").map(str::to_string);
                self.fail(500, body.as_bytes(), code.as_deref())
            }
            _ => Vec::new(),
        }
    }

    fn broken(&mut self, message: &str) -> Vec<u8> {
        let error = json!({"message": message, "type": "api_error", "param": null, "code": "502"});
        self.out.fail_and_close(message, error)
    }

    fn usage_so_far(&self) -> Vec<u8> {
        self.events
            .usage_so_far()
            .map_or_else(Vec::new, |u| self.out.usage(u))
    }
}

impl<E: ChatEvents> StreamTranslate for StreamTranslator<E> {
    fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.out.done {
            return out;
        }
        self.decoder.push(bytes);
        while let Some(m) = self.decoder.next_message() {
            match m {
                Ok(m) => out.extend(self.message(&m)),
                Err(e) => out.extend(self.broken(&format!("SageMaker stream: {e}"))),
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
            return self.broken("SageMaker stream: the stream ended inside a message");
        }
        let mut out = self.lines(b"\n");
        if !self.out.done {
            self.out.done = true;
            out.extend(self.usage_so_far());
            out.extend_from_slice(b"data: [DONE]\n\n");
        }
        out
    }

    fn cut(&mut self) -> Vec<u8> {
        let mut out = self.lines(b"\n");
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

/// TGI `generate_stream` events: a token per event, the last one with `generated_text` and
/// `details` (`finish_reason`, `generated_tokens`).
#[derive(Debug, Default)]
pub struct TgiEvents {
    prompt_tokens: u64,
    /// Tokens seen (the completion count when `details` never comes).
    tokens: u64,
    /// `details.generated_tokens`, when sent.
    generated: Option<u64>,
}

impl ChatEvents for TgiEvents {
    fn event(&mut self, out: &mut ChatChunks, ev: &Value) -> Vec<u8> {
        if let Some(e) = ev.get("error") {
            let status = match ev.get("error_type").and_then(Value::as_str) {
                Some("validation") => 400,
                Some("overloaded") => 429,
                _ => 500,
            };
            let body = json!({"message": e}).to_string();
            let f = classify(status, "sagemaker", body.as_bytes(), None);
            return out.fail_and_close(&f.message, f.error_object());
        }
        // a container that answered the stream request whole
        let ev = match ev {
            Value::Array(a) => a.first().unwrap_or(&Value::Null),
            other => other,
        };
        let mut o = out.start();
        let token = ev
            .get("token")
            .and_then(|t| t.get("text"))
            .and_then(Value::as_str);
        match token {
            Some("<|endoftext|>") => {
                out.ended = true;
                o.extend(out.chunk(json!({}), Some("stop")));
                return o;
            }
            Some(text) => {
                self.tokens += 1;
                let special = ev.pointer("/token/special").and_then(Value::as_bool) == Some(true);
                if !special && !text.is_empty() {
                    o.extend(out.chunk(json!({"content": text}), None));
                }
            }
            None => {
                if let Some(text) = ev.get("generated_text").and_then(Value::as_str) {
                    self.tokens += estimate_tokens(text);
                    o.extend(out.chunk(json!({"content": text}), None));
                }
            }
        }
        let details = ev.get("details").filter(|d| d.is_object());
        if details.is_some() || ev.get("generated_text").is_some_and(Value::is_string) {
            if let Some(n) = details
                .and_then(|d| d.get("generated_tokens"))
                .and_then(Value::as_u64)
            {
                self.generated = Some(n);
            }
            let reason = details
                .and_then(|d| d.get("finish_reason"))
                .and_then(Value::as_str);
            out.ended = true;
            o.extend(out.chunk(json!({}), Some(finish_reason(reason))));
        }
        o
    }

    fn usage_so_far(&self) -> Option<Value> {
        let completion = self.generated.unwrap_or(self.tokens);
        Some(
            json!({"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion}),
        )
    }

    const USAGE_AT_FINISH: bool = true;
    const DONE_ENDS: bool = true;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::bedrock::eventstream::encode;

    fn part(bytes: &[u8]) -> Vec<u8> {
        encode(
            &[(":event-type", "PayloadPart"), (":message-type", "event")],
            bytes,
        )
    }

    fn run<T: StreamTranslate>(t: &mut T, wire: &[u8], split: usize) -> String {
        let mut out = Vec::new();
        for c in wire.chunks(split) {
            out.extend(t.feed(c));
        }
        out.extend(t.finish());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn chat_payload_lines_split_across_parts() {
        let sse = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n",
            "data: [DONE]\n\n"
        );
        let mut wire = Vec::new();
        for piece in sse.as_bytes().chunks(17) {
            wire.extend(part(piece));
        }
        let whole = run(
            &mut ChatStream::chat("ep", "id", 1, true),
            &wire,
            wire.len(),
        );
        for split in [1, 5, 64] {
            assert_eq!(
                run(&mut ChatStream::chat("ep", "id", 1, true), &wire, split),
                whole
            );
        }
        assert!(whole.contains("\"content\":\"Hel\""), "{whole}");
        assert!(whole.contains("\"total_tokens\":5"), "{whole}");
        assert_eq!(whole.matches("[DONE]").count(), 1, "{whole}");
        let mut t = ChatStream::chat("ep", "id", 1, true);
        t.feed(&wire);
        assert_eq!(t.end_state(), StreamEnd::Complete);
    }

    #[test]
    fn tgi_tokens_and_details() {
        let lines = [
            r#"data:{"index":1,"token":{"id":1,"text":"Hello","special":false},"generated_text":null,"details":null}"#,
            r#"data:{"index":2,"token":{"id":2,"text":" there","special":false},"generated_text":null,"details":null}"#,
            r#"data:{"index":3,"token":{"id":3,"text":"</s>","special":true},"generated_text":"Hello there","details":{"finish_reason":"eos_token","generated_tokens":3}}"#,
        ];
        let mut wire = Vec::new();
        for l in lines {
            wire.extend(part(format!("{l}\n\n").as_bytes()));
        }
        let out = run(
            &mut TgiStream::tgi("ep", "id", 1, true, "12345678"),
            &wire,
            3,
        );
        assert!(out.contains("\"content\":\"Hello\""), "{out}");
        assert!(!out.contains("</s>"), "{out}");
        assert!(out.contains("\"finish_reason\":\"stop\""), "{out}");
        assert!(
            out.contains(
                "\"usage\":{\"completion_tokens\":3,\"prompt_tokens\":2,\"total_tokens\":5}"
            ),
            "{out}"
        );
    }

    #[test]
    fn exception_ends_the_stream() {
        let mut wire =
            part(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n");
        wire.extend(encode(
            &[
                (":exception-type", "ModelStreamError"),
                (":message-type", "exception"),
            ],
            br#"{"Message":"Your invocation timed out","ErrorCode":"ModelError"}"#,
        ));
        let mut t = ChatStream::chat("ep", "id", 1, true);
        let out = run(&mut t, &wire, 7);
        assert!(out.contains("Your invocation timed out"), "{out}");
        assert_eq!(out.matches("[DONE]").count(), 1, "{out}");
        assert!(matches!(t.end_state(), StreamEnd::Failed(_)));
        let out = run(
            &mut ChatStream::chat("ep", "id", 1, true),
            &wire[..wire.len() - 3],
            7,
        );
        assert!(out.contains("ended inside a message"), "{out}");
    }
}
