//! Relay of an upstream SSE stream to the client, chunk by chunk as it arrives.
//!
//! Each upstream frame is forwarded as is (zero copy) after the usage scanner has looked at it.
//! The stream ends with an SSE error event in the client's format (and a failed SpendLogs row)
//! when it does not end cleanly: a stall longer than `stream_timeout`, a broken upstream
//! connection, an upstream that closes the stream without its end marker (`[DONE]` or a finish
//! reason; a native provider's own end event), or the gateway cutting it at its
//! graceful-shutdown deadline ([`StreamCut`]). If the client goes away, hyper drops this body,
//! which drops the upstream response and closes that connection: the provider stops
//! generating. The relay names no pipeline module: what watches the stream (the request's
//! record, the response cache recorder, the Responses API id sealer) is a [`RelayObserver`],
//! told once per chunk and once at the end: when the stream ends, or on drop.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use hyper::body::Incoming;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use super::sse::{SseScanner, Usage};
use crate::body::BoxError;
use crate::providers::{StreamEnd, StreamTranslate};

/// The error of a stream the provider closed without its end marker.
pub const ENDED_EARLY: &str = "Provider stream ended before completion: the provider closed it without signalling the end of the answer";

/// The error of a stream its client closed before the end.
pub const CLIENT_CLOSED: &str = "client closed the stream";

/// The error of a stream cut at the graceful-shutdown deadline.
pub const CUT_AT_SHUTDOWN: &str =
    "Stream cut: the gateway is shutting down and the graceful_shutdown_timeout has passed";

/// Ends the streams still running when the graceful-shutdown deadline passes: each sends its
/// client an error event and queues its SpendLogs row at once, before the server's last drain
/// and the spend writer's last flush. Every relay holds a [`CutSignal`] from here until its
/// record is finished ([`StreamCut::settled`]).
#[derive(Debug)]
pub struct StreamCut {
    tx: watch::Sender<bool>,
}

impl Default for StreamCut {
    fn default() -> Self {
        Self {
            tx: watch::channel(false).0,
        }
    }
}

impl StreamCut {
    /// The signal for one stream.
    pub fn signal(&self) -> CutSignal {
        let mut rx = self.tx.subscribe();
        if *rx.borrow() {
            rx.mark_changed();
        }
        let mut waiting = rx.clone();
        CutSignal {
            rx,
            waiting_with: None,
            wait: Box::pin(async move {
                if waiting.wait_for(|cut| *cut).await.is_err() {
                    // the gateway is gone without a cut: nothing will come
                    std::future::pending::<()>().await;
                }
            }),
        }
    }

    /// Tell every running stream (and any started from now on) to end now.
    pub fn cut(&self) {
        self.tx.send_replace(true);
    }

    /// Resolves at the cut (at once when it has happened). Held by a request while its
    /// handler runs: one subscription, no allocation.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            if rx.wait_for(|cut| *cut).await.is_err() {
                // the gateway is gone without a cut: nothing will come
                std::future::pending::<()>().await;
            }
        }
    }

    /// Whether every request's record is finished (no signal is held any more).
    pub fn settled(&self) -> bool {
        self.tx.receiver_count() == 0
    }
}

/// Why a stream body was dropped before its end: cut at the graceful-shutdown deadline (its
/// client's connection closed then), else its client went away.
pub fn dropped_because(cut: Option<&CutSignal>) -> &'static str {
    if cut.is_some_and(CutSignal::is_cut) {
        CUT_AT_SHUTDOWN
    } else {
        CLIENT_CLOSED
    }
}

/// One stream's view of the [`StreamCut`].
pub struct CutSignal {
    /// Checked on every frame (one atomic load): a stream that never pauses still sees the cut.
    rx: watch::Receiver<bool>,
    /// Polled when the upstream has nothing yet, so the cut wakes the stream.
    wait: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// The waker `wait` was last polled with: the cut wakes it, so while the stream is polled
    /// with the same one, `wait` need not be polled again (one atomic load instead).
    waiting_with: Option<Waker>,
}

impl CutSignal {
    /// Whether the cut has happened (one atomic load).
    pub fn is_cut(&self) -> bool {
        self.rx.has_changed().unwrap_or(false)
    }

    /// Whether the cut has happened; if not, `cx` is woken when it does.
    pub fn poll_cut(&mut self, cx: &mut Context<'_>) -> bool {
        if registered_with(self.waiting_with.as_ref(), cx) {
            return self.is_cut();
        }
        if self.wait.as_mut().poll(cx).is_ready() {
            return true;
        }
        self.waiting_with = Some(cx.waker().clone());
        false
    }
}

/// Whether a wake-up registered with `with` reaches the task polling with `cx`.
fn registered_with(with: Option<&Waker>, cx: &Context<'_>) -> bool {
    with.is_some_and(|w| w.will_wake(cx.waker()))
}

/// The shape of the error event a client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// `data: {"error": {...}}`
    OpenAi,
    /// `event: error`
    Anthropic,
    /// Gemini's `data: {"error": {"code", "message", "status"}}`
    Gemini,
}

impl ErrorShape {
    /// The SSE error event saying `msg`.
    pub fn event(self, msg: &str) -> String {
        match self {
            ErrorShape::Anthropic => {
                let ev = serde_json::json!({"type": "error", "error": {"type": "api_error", "message": msg}});
                format!("event: error\ndata: {ev}\n\n")
            }
            ErrorShape::Gemini => {
                let ev = serde_json::json!({"error": {"code": 502, "message": msg,
                    "status": crate::providers::gemini::rpc_status(502)}});
                format!("data: {ev}\r\n\r\n")
            }
            ErrorShape::OpenAi => {
                let ev = serde_json::json!({"error": {"message": msg, "type": "api_error", "param": null, "code": "502"}});
                format!("data: {ev}\n\n")
            }
        }
    }
}

/// What watches a relayed stream on the pipeline's behalf. The relay makes one call per
/// upstream chunk ([`RelayObserver::on_chunk`]), one more only for observers that rewrite what
/// the client gets ([`RelayObserver::rewrites`], asked once), and one at the end.
pub trait RelayObserver: Send {
    /// One upstream chunk arrived; `chat` is what it carried as the usage scanner reads it
    /// (after the provider's format is translated, before the client's is made).
    fn on_chunk(&mut self, chat: &[u8]);

    /// Whether [`RelayObserver::rewrite`] changes what the client gets (else it is not called).
    fn rewrites(&self) -> bool {
        false
    }

    /// The bytes about to go to the client, rewritten (a part may be held for the next call).
    fn rewrite(&mut self, out: Bytes) -> Bytes {
        out
    }

    /// The last bytes to go to the client, rewritten, with whatever was held.
    fn rewrite_last(&mut self, tail: Vec<u8>) -> Vec<u8> {
        tail
    }

    /// The stream is over (ended, failed, cut, or dropped by its client); called once.
    fn on_end(self: Box<Self>, end: Ended<'_>);
}

/// How a relayed stream ended, for its [`RelayObserver`].
pub struct Ended<'a> {
    /// The chat chunks the provider's translator still held at the end.
    pub rest: &'a [u8],
    /// The usage the provider reported, if it did.
    pub usage: Option<Usage>,
    /// The SSE events relayed.
    pub events: u32,
    /// Why the stream failed (the relay's error, or the one the provider sent in the stream);
    /// `None` for a clean end.
    pub error: Option<String>,
}

/// An upstream stream on its way to the client.
pub struct RelayBody {
    inner: Incoming,
    scanner: SseScanner,
    /// Fires `idle_timeout` after the last chunk: armed for a time it may have passed, and
    /// moved on from `last` only when it fires (not on every chunk).
    idle: Pin<Box<Sleep>>,
    /// The waker `idle` was last polled with (the timer wakes it when it fires).
    idle_with: Option<Waker>,
    idle_timeout: Duration,
    /// When the last chunk came.
    last: Instant,
    done: bool,
    /// What watches the stream (the request's record first): told as soon as the stream ends.
    watch: Option<Box<dyn RelayObserver>>,
    /// `watch` rewrites what the client gets.
    rewrites: bool,
    /// The graceful-shutdown cut, until the record is finished.
    cut: Option<CutSignal>,
    /// Native provider streams: translated to chat completion chunks before anything else.
    inward: Option<Box<dyn StreamTranslate>>,
    /// The client's own format (e.g. Anthropic events): chat chunks translated after the usage
    /// scanner has seen them.
    outward: Option<Box<dyn StreamTranslate>>,
    /// `inward` only feeds the usage scanner; the client gets the provider's bytes untouched.
    tap: bool,
    /// How a relay error reaches a client reading the provider's bytes untouched (translated
    /// streams say it in the client's format through `outward`).
    errors: ErrorShape,
}

impl RelayBody {
    /// Relay `inner`, watched by `watch`; `cut` ends the stream at the graceful-shutdown
    /// deadline.
    pub fn new(
        inner: Incoming,
        drop_usage_chunk: bool,
        idle_timeout: Duration,
        watch: Box<dyn RelayObserver>,
        cut: CutSignal,
    ) -> Self {
        Self {
            rewrites: watch.rewrites(),
            inner,
            scanner: SseScanner::new(drop_usage_chunk),
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            idle_with: None,
            idle_timeout,
            last: Instant::now(),
            done: false,
            watch: Some(watch),
            cut: Some(cut),
            inward: None,
            outward: None,
            tap: false,
            errors: ErrorShape::OpenAi,
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
        self.errors = ErrorShape::Anthropic;
        self
    }

    /// A relay error reaches the client as Gemini's error chunk (a tapped Gemini stream).
    pub fn gemini_errors(mut self) -> Self {
        self.errors = ErrorShape::Gemini;
        self
    }

    /// How the provider's stream has ended so far: read by its translator, else by the
    /// scanner of its OpenAI chunks.
    fn end_state(&self) -> StreamEnd {
        match &self.inward {
            Some(t) => t.end_state(),
            None => self.scanner.end_state(),
        }
    }

    /// The error event for `msg` in the client's format, when no outward translator says it.
    fn error_event(&self, msg: &str) -> String {
        let shape = if self.outward.is_some() {
            ErrorShape::OpenAi
        } else {
            self.errors
        };
        shape.event(msg)
    }

    /// End the stream: the rest of the translation and, for `error`, an error event in the
    /// client's format (and no end marker: the client must not take the answer as complete).
    /// `reported` is an error the provider itself sent in the stream (already relayed). The
    /// observer is told here.
    fn end(&mut self, error: Option<String>, reported: Option<String>) -> Option<Bytes> {
        self.done = true;
        let mut pre = Bytes::new();
        if let Some(t) = self.inward.as_mut() {
            let rest = if error.is_some() { t.cut() } else { t.finish() };
            pre = self.scanner.feed(Bytes::from(rest));
        }
        let mut tail = [&pre[..], &self.scanner.finish()[..]].concat();
        if self.tap {
            tail.clear();
        }
        let mut error_event = error.as_deref().map(|msg| self.error_event(msg));
        if let Some(t) = self.outward.as_mut() {
            // the error in the client's own format, before its stream ends
            let mut v = t.feed(&tail);
            if let Some(ev) = error_event.take() {
                v.extend(t.feed(ev.as_bytes()));
            }
            v.extend(t.finish());
            tail = v;
        }
        let mut out = match self.watch.as_mut() {
            Some(w) if self.rewrites => w.rewrite_last(tail),
            _ => tail,
        };
        if let Some(ev) = error_event {
            out.extend_from_slice(ev.as_bytes());
        }
        self.settle(error.or(reported), &pre);
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    /// The stream stops here (the upstream closed or broke, or the gateway cuts it): a clean
    /// end if the provider's end marker came (a connection that breaks after it lost nothing),
    /// else the error `why` says.
    fn stop(&mut self, why: impl FnOnce() -> String) -> Option<Bytes> {
        match self.end_state() {
            StreamEnd::Complete => self.end(None, None),
            StreamEnd::Failed(reported) => self.end(None, Some(reported)),
            StreamEnd::Open => self.end(Some(why()), None),
        }
    }

    /// Tell the observer once how the stream ended (`rest`: the chat chunks the translator
    /// still held). Then the cut signal goes.
    fn settle(&mut self, error: Option<String>, rest: &[u8]) {
        if let Some(w) = self.watch.take() {
            w.on_end(Ended {
                rest,
                usage: self.scanner.usage,
                events: self.scanner.events,
                error,
            });
        }
        self.cut = None;
    }

    /// Whether `idle_timeout` has passed since the last chunk (else `cx` is woken when it may
    /// have).
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        if registered_with(self.idle_with.as_ref(), cx) && !self.idle.is_elapsed() {
            return false;
        }
        self.idle_with = None;
        loop {
            if self.idle.as_mut().poll(cx).is_pending() {
                self.idle_with = Some(cx.waker().clone());
                return false;
            }
            let due = self.last + self.idle_timeout;
            if due <= Instant::now() {
                return true;
            }
            self.idle.as_mut().reset(due);
        }
    }

    /// One upstream chunk: translated, scanned, told to the observer and made into what the
    /// client gets (possibly nothing yet).
    fn relay(&mut self, data: Bytes) -> Bytes {
        self.last = Instant::now();
        let watch = &mut self.watch;
        let mut seen = |chat: &[u8]| {
            if let Some(w) = watch.as_mut() {
                w.on_chunk(chat);
            }
        };
        let mut out = match self.inward.as_mut() {
            Some(t) if self.tap => {
                let chat = Bytes::from(t.feed(&data));
                seen(&chat);
                self.scanner.feed(chat);
                data
            }
            Some(t) => {
                let chat = Bytes::from(t.feed(&data));
                seen(&chat);
                self.scanner.feed(chat)
            }
            None => {
                seen(&data);
                self.scanner.feed(data)
            }
        };
        if let Some(t) = self.outward.as_mut() {
            out = Bytes::from(t.feed(&out));
        }
        match self.watch.as_mut() {
            Some(w) if self.rewrites => w.rewrite(out),
            _ => out,
        }
    }
}

/// The usage of a stream that failed: what the provider reported, with the parts it did not
/// report estimated (prompt tokens at about 4 request bytes a token, as the token rate limits
/// reserve them; completion tokens as the chunks relayed, about one token each).
/// `prompt_estimate` is the request's estimate.
pub fn estimate(reported: Option<Usage>, prompt_estimate: u64, events: u32) -> Usage {
    let mut u = reported.unwrap_or_default();
    if u.prompt_tokens == 0 {
        u.prompt_tokens = prompt_estimate;
    }
    if u.completion_tokens == 0 {
        u.completion_tokens = u64::from(events);
    }
    u.total_tokens = u.total_tokens.max(u.prompt_tokens + u.completion_tokens);
    u
}

impl Drop for RelayBody {
    /// The client went away before the end of the stream, or stopped reading it and its
    /// connection was closed at the graceful-shutdown deadline.
    fn drop(&mut self) {
        if self.watch.is_some() {
            // the usage the translator has read so far (e.g. Anthropic's input tokens)
            if let Some(t) = self.inward.as_mut() {
                let rest = t.cut();
                self.scanner.feed(Bytes::from(rest));
            }
            let why = dropped_because(self.cut.as_ref());
            self.settle(Some(why.to_string()), &[]);
        }
    }
}

impl http_body::Body for RelayBody {
    type Data = Bytes;
    type Error = BoxError;

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let ended = |out: Option<Bytes>| Poll::Ready(out.map(|b| Ok(Frame::data(b))));
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if this.cut.as_ref().is_some_and(CutSignal::is_cut) {
                return ended(this.stop(|| CUT_AT_SHUTDOWN.to_string()));
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers are not relayed
                    };
                    let out = this.relay(data);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    return ended(this.stop(|| format!("Provider stream failed: {e}")));
                }
                Poll::Ready(None) => return ended(this.stop(|| ENDED_EARLY.to_string())),
                Poll::Pending => {
                    if this.cut.as_mut().is_some_and(|c| c.poll_cut(cx)) {
                        return ended(this.stop(|| CUT_AT_SHUTDOWN.to_string()));
                    }
                    if this.idle_expired(cx) {
                        let secs = this.idle_timeout.as_secs_f64();
                        let why =
                            || format!("Provider sent nothing for {secs:.1}s (stream_timeout)");
                        return ended(this.stop(why));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}
