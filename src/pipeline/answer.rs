//! Answers in the client's own format. A client that spoke Anthropic Messages (or Gemini) to a
//! deployment of another family is served through the chat path; its answer is translated back
//! here: streams chunk by chunk (a translator handed to the relay), whole bodies at the end.

use bytes::Bytes;
use http::{Response, header};
use http_body_util::BodyExt;
use serde_json::Value;

use crate::body::Body;
use crate::providers::{StreamTranslate, anthropic, gemini};

/// The format a client speaks when it is not OpenAI chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outward {
    /// Anthropic Messages (`/v1/messages`).
    Anthropic,
    /// Gemini `generateContent` (`/v1beta/models/...`).
    Gemini,
}

impl Outward {
    /// Translator of chat chunks into this format.
    pub fn stream(self, model: &str) -> Box<dyn StreamTranslate> {
        match self {
            Outward::Anthropic => Box::new(anthropic::egress::ChunkTranslator::new(model)),
            Outward::Gemini => Box::new(gemini::native::ChunkTranslator::new()),
        }
    }

    /// A whole chat completion in this format.
    pub fn whole(self, chat: &Value) -> Value {
        match self {
            Outward::Anthropic => anthropic::egress::to_messages_response(chat),
            Outward::Gemini => gemini::native::from_chat(chat),
        }
    }

    /// Translate a successful answer held in memory (streamed or not); a relayed stream already
    /// carries its translator, errors stay as they are.
    pub async fn answer(self, resp: Response<Body>, model: &str) -> Response<Body> {
        if !resp.status().is_success() || matches!(resp.body(), Body::Relay(_)) {
            return resp;
        }
        let stream = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let (mut head, body) = resp.into_parts();
        let bytes = match body.collect().await {
            Ok(c) => c.to_bytes(),
            Err(_) => Bytes::new(),
        };
        let out = if stream {
            let mut t = self.stream(model);
            let mut v = t.feed(&bytes);
            v.extend(t.finish());
            Bytes::from(v)
        } else {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(chat) => Bytes::from(self.whole(&chat).to_string()),
                Err(_) => bytes,
            }
        };
        head.headers.remove(header::CONTENT_LENGTH);
        Response::from_parts(head, Body::full(out))
    }
}
