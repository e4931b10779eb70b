//! What the pipeline hangs on a relayed stream ([`RelayObserver`]): the request's record
//! (chunks relayed, the first one's time; at the end the usage, estimated for a failed stream,
//! and the error), the response cache recorder (a miss's chat chunks assembled, stored once the
//! stream ends cleanly) and the Responses API id sealer (response ids sealed on the way).

use bytes::Bytes;

use super::post::Completion;
use crate::cache::Pending;
use crate::cache::stream::Assembler;
use crate::responses::EventSealer;
use crate::upstream::relay::{Ended, RelayObserver, estimate};
use crate::upstream::sse::FirstId;

/// The observers of one stream, told in one call per chunk.
pub struct Watch {
    record: Completion,
    /// A response cache miss: the answer assembled, stored at a clean end.
    cache: Option<(Assembler, Pending)>,
    /// Responses API streams: the sealer, with the unfinished line it holds.
    ids: Option<(EventSealer, Vec<u8>)>,
    /// Reads the answer's id from the first chunk (the SpendLogs `request_id`).
    first_id: FirstId,
}

impl Watch {
    /// Watch the stream of the request `record` is for (its row is queued at the end).
    pub fn new(record: Completion) -> Self {
        Self {
            record,
            cache: None,
            ids: None,
            first_id: FirstId::default(),
        }
    }

    /// Store the answer in the response cache once the stream has ended cleanly.
    pub fn recording(mut self, pending: Option<Pending>) -> Self {
        self.cache = pending.map(|p| (Assembler::new(), p));
        self
    }

    /// Seal response ids in the events (Responses API streams).
    pub fn sealing(mut self, sealer: Option<EventSealer>) -> Self {
        self.ids = sealer.map(|s| (s, Vec::new()));
        self
    }

    /// For the relay.
    pub fn boxed(self) -> Box<dyn RelayObserver> {
        Box::new(self)
    }
}

impl RelayObserver for Watch {
    fn on_chunk(&mut self, chat: &[u8]) {
        let c = &mut self.record;
        if c.chunks == 0 {
            c.first_chunk = Some(std::time::SystemTime::now());
        }
        c.chunks += 1;
        // Responses API events carry the id inside `response`, sealed on the way: the row
        // keeps the call id
        if self.ids.is_none() && self.first_id.looking() {
            c.response_id = self.first_id.feed(chat).or(c.response_id.take());
        }
        if let Some((a, _)) = self.cache.as_mut() {
            a.feed(chat);
        }
    }

    fn rewrites(&self) -> bool {
        self.ids.is_some()
    }

    fn rewrite(&mut self, out: Bytes) -> Bytes {
        match self.ids.as_mut() {
            Some((sealer, pending)) => sealer.feed(pending, &out),
            None => out,
        }
    }

    fn rewrite_last(&mut self, tail: Vec<u8>) -> Vec<u8> {
        match self.ids.as_mut() {
            Some((sealer, pending)) => {
                let mut v = sealer.feed(pending, &tail).to_vec();
                v.append(pending);
                v
            }
            None => tail,
        }
    }

    fn on_end(self: Box<Self>, end: Ended<'_>) {
        let Watch {
            mut record, cache, ..
        } = *self;
        if let Some((mut assembler, pending)) = cache
            && end.error.is_none()
        {
            assembler.feed(end.rest);
            if let Some(body) = assembler.finish() {
                pending.store(Bytes::from(body), end.usage.unwrap_or_default());
            }
        }
        record.usage = match end.error {
            Some(_) => Some(estimate(end.usage, record.prompt_estimate, end.events)),
            None => end.usage,
        };
        if let Some(e) = end.error {
            record.stream_error.get_or_insert(e);
        }
        // dropped here: the record is finished, its row queued
    }
}

/// A relayed stream as the client's answer: `text/event-stream`, not to be cached by proxies.
pub(super) fn sse_response(
    relay: crate::upstream::relay::RelayBody,
) -> http::Response<crate::body::Body> {
    let mut out = http::Response::new(crate::body::Body::Relay(Box::new(relay)));
    let h = out.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    out
}

/// Call `dep` for a stream and await its head: the wait timed and the status noted for the
/// record; the body follows as it comes.
pub(super) async fn open_stream(
    state: &crate::state::AppState,
    dep: &crate::router::Deployment,
    uri: &http::Uri,
    body: &[bytes::Bytes],
    extra: &[(http::HeaderName, http::HeaderValue)],
    errors: crate::upstream::Errors<'_>,
    ctx: &mut super::RequestCtx,
) -> Result<(http::response::Parts, hyper::body::Incoming), crate::error::GatewayError> {
    let t0 = tokio::time::Instant::now();
    let within = crate::upstream::HeadWithin::StreamTimeout;
    let resp =
        crate::upstream::call_head(&state.client, dep, within, uri, body, extra, errors).await?;
    ctx.upstream_elapsed = t0.elapsed();
    let (head, incoming) = resp.into_parts();
    ctx.completion.status = head.status.as_u16();
    Ok((head, incoming))
}
