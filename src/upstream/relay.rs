//! Relay of an upstream SSE stream to the client, chunk by chunk as it arrives.
//!
//! Each upstream frame is forwarded as is (zero copy) after the usage scanner has looked at it.
//! A stall longer than `stream_timeout` ends the stream with an SSE error event. If the client
//! goes away, hyper drops this body, which drops the upstream response and closes that
//! connection: the provider stops generating. The post-stage record is finished on drop in all
//! cases.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as _, Frame};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use super::sse::SseScanner;
use crate::body::BoxError;
use crate::pipeline::post::Completion;
use crate::providers::StreamTranslate;

/// An upstream stream on its way to the client.
pub struct RelayBody {
    inner: Incoming,
    scanner: SseScanner,
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    done: bool,
    completion: Completion,
    /// Responses API streams: response ids sealed on the way (with the unfinished line).
    ids: Option<(crate::responses::EventSealer, Vec<u8>)>,
    /// Native provider streams: translated to chat completion chunks before anything else.
    inward: Option<Box<dyn StreamTranslate>>,
    /// The client's own format (e.g. Anthropic events): chat chunks translated after the usage
    /// scanner has seen them.
    outward: Option<Box<dyn StreamTranslate>>,
    /// `inward` only feeds the usage scanner; the client gets the provider's bytes untouched.
    tap: bool,
    /// The client reads Anthropic events (a tapped Anthropic stream): a relay error is sent as
    /// Anthropic's `error` event.
    anthropic_errors: bool,
    /// A response cache miss: the chat chunks assembled, stored once the stream ends cleanly.
    record: Option<(crate::cache::stream::Assembler, crate::cache::Pending)>,
}

impl RelayBody {
    pub fn new(
        inner: Incoming,
        drop_usage_chunk: bool,
        idle_timeout: Duration,
        completion: Completion,
    ) -> Self {
        Self {
            inner,
            scanner: SseScanner::new(drop_usage_chunk),
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            idle_timeout,
            done: false,
            completion,
            ids: None,
            inward: None,
            outward: None,
            tap: false,
            anthropic_errors: false,
            record: None,
        }
    }

    /// Translate a provider's stream into chat completion chunks.
    pub fn translating(mut self, t: Box<dyn StreamTranslate>) -> Self {
        self.inward = Some(t);
        self
    }

    /// Translate the chat completion chunks into the client's format.
    pub fn answering_as(mut self, t: Option<Box<dyn StreamTranslate>>) -> Self {
        self.outward = t;
        self
    }

    /// Pass the provider's bytes through untouched; `t` only reads usage from them.
    pub fn tapping(mut self, t: Box<dyn StreamTranslate>) -> Self {
        self.inward = Some(t);
        self.tap = true;
        self
    }

    /// A relay error reaches the client as Anthropic's `error` event (for a tapped Anthropic
    /// stream; translated streams say it in the client's format through `answering_as`).
    pub fn anthropic_errors(mut self) -> Self {
        self.anthropic_errors = true;
        self
    }

    /// Store the answer in the response cache once the stream has ended cleanly.
    pub fn recording(mut self, pending: Option<crate::cache::Pending>) -> Self {
        self.record = pending.map(|p| (crate::cache::stream::Assembler::new(), p));
        self
    }

    /// Seal response ids in the events (Responses API streams).
    pub fn sealing(mut self, sealer: Option<crate::responses::EventSealer>) -> Self {
        self.ids = sealer.map(|s| (s, Vec::new()));
        self
    }

    pub fn is_end_stream(&self) -> bool {
        self.done
    }

    fn end(&mut self, error: Option<String>) -> Option<Bytes> {
        self.done = true;
        let mut pre = Bytes::new();
        if let Some(t) = self.inward.as_mut() {
            pre = self.scanner.feed(Bytes::from(t.finish()));
        }
        self.completion.usage = self.scanner.usage;
        if let Some((mut assembler, pending)) = self.record.take()
            && error.is_none()
        {
            assembler.feed(&pre);
            if let Some(body) = assembler.finish() {
                pending.store(Bytes::from(body), self.scanner.usage.unwrap_or_default());
            }
        }
        let mut tail = [pre, self.scanner.finish()].concat();
        if self.tap {
            tail.clear();
        }
        let mut error_event = error.map(|msg| {
            self.completion.stream_error = Some(msg.clone());
            if self.anthropic_errors && self.outward.is_none() {
                let ev = serde_json::json!({"type": "error", "error": {"type": "api_error", "message": msg}});
                format!("event: error\ndata: {ev}\n\n")
            } else {
                let ev = serde_json::json!({"error": {"message": msg, "type": "api_error", "param": null, "code": "502"}});
                format!("data: {ev}\n\n")
            }
        });
        if let Some(t) = self.outward.as_mut() {
            // the error in the client's own format, before its stream ends
            let mut v = t.feed(&tail);
            if let Some(ev) = error_event.take() {
                v.extend(t.feed(ev.as_bytes()));
            }
            v.extend(t.finish());
            tail = v;
        }
        let mut out = match self.ids.as_mut() {
            Some((sealer, pending)) => {
                let mut v = sealer.feed(pending, &tail).to_vec();
                v.append(pending);
                v
            }
            None => tail.to_vec(),
        };
        if let Some(ev) = error_event {
            out.extend_from_slice(ev.as_bytes());
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    pub fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers are not relayed
                    };
                    this.idle.as_mut().reset(Instant::now() + this.idle_timeout);
                    if this.completion.chunks == 0 {
                        this.completion.first_chunk = Some(std::time::SystemTime::now());
                    }
                    this.completion.chunks += 1;
                    // the chat chunks (translated when the provider's are not) feed the
                    // usage scanner and, on a cache miss, the answer being assembled
                    let record = &mut this.record;
                    let mut seen = |chat: &[u8]| {
                        if let Some((a, _)) = record.as_mut() {
                            a.feed(chat);
                        }
                    };
                    let mut out = match this.inward.as_mut() {
                        Some(t) if this.tap => {
                            let chat = Bytes::from(t.feed(&data));
                            seen(&chat);
                            this.scanner.feed(chat);
                            data
                        }
                        Some(t) => {
                            let chat = Bytes::from(t.feed(&data));
                            seen(&chat);
                            this.scanner.feed(chat)
                        }
                        None => {
                            seen(&data);
                            this.scanner.feed(data)
                        }
                    };
                    if let Some(t) = this.outward.as_mut() {
                        out = Bytes::from(t.feed(&out));
                    }
                    if let Some((sealer, pending)) = this.ids.as_mut() {
                        out = sealer.feed(pending, &out);
                    }
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    let msg = format!("Provider stream failed: {e}");
                    return Poll::Ready(this.end(Some(msg)).map(|b| Ok(Frame::data(b))));
                }
                Poll::Ready(None) => {
                    return Poll::Ready(this.end(None).map(|b| Ok(Frame::data(b))));
                }
                Poll::Pending => {
                    if this.idle.as_mut().poll(cx).is_ready() {
                        let msg = format!(
                            "Provider sent nothing for {:.1}s (stream_timeout)",
                            this.idle_timeout.as_secs_f64()
                        );
                        return Poll::Ready(this.end(Some(msg)).map(|b| Ok(Frame::data(b))));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl Drop for RelayBody {
    /// The client went away before the end of the stream.
    fn drop(&mut self) {
        if !self.done {
            self.completion.usage = self.scanner.usage;
            self.completion
                .stream_error
                .get_or_insert_with(|| "client closed the stream".to_string());
        }
    }
}
