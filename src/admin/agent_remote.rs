//! Calls to a remote A2A agent: the JSON-RPC request goes to the agent's URL
//! (`litellm_params.api_base`, else the card's `url`; refused on a private address unless
//! `general_settings.agent_allow_private_urls`) with the agent's own credentials
//! (`litellm_params.api_key` as a bearer token, `static_headers`), the caller's headers named in
//! `extra_headers` (never its key), and the caller's A2A headers (`A2A-Version`,
//! `A2A-Extensions`, `X-A2A-Extensions`; a 1.0 client that sent no `A2A-Version` gets `1.0`). The
//! method goes out under the name the client used ([`Call::sent_method`]).
//!
//! [`forward`] asks with `Accept: text/event-stream` for `message/stream` and
//! `tasks/resubscribe`, else `application/json`. The timeout (`litellm_params.timeout` seconds,
//! default 600) applies to the head of the answer, then to reading a JSON answer, or between
//! the chunks of an event stream. A failure before the answer (no URL, a private URL, the
//! agent down or silent) is the gateway's JSON-RPC error (`-32000`/`-32603`).
//!
//! - An SSE answer is relayed event by event as it arrives ([`EventRelay`]; what follows the
//!   last complete event is held until that event ends). The head goes to the client with the
//!   first event: a stream that fails before it is answered with the JSON-RPC error (`-32603`,
//!   500) like an agent that is down. A failure after it (the agent breaks
//!   the connection or goes quiet, or the gateway's graceful-shutdown deadline passes) drops the
//!   partial event and ends the stream with one `event: error` whose data is a JSON-RPC error
//!   (`-32603`) for the call's id.
//! - Any other answer (a JSON-RPC result or error, also to a streaming method) is read whole
//!   and relayed as it is, with its status and content type; an authenticated extended card
//!   gets the gateway's URL like the served card.
//!
//! **Observing the end** (for spend and limits): [`forward`] takes an [`OnEnd`] callback, called exactly
//! once with a [`Summary`] when the call is over: at once for a refused or failed call, when a
//! whole answer has been read, and for a relayed stream when it ends, fails, is cut, or its
//! client goes away (the relay body is dropped). The callback runs on the task that polls the
//! body: it must not block (hand work to a channel, as the spend sinks do). The dispatcher's is
//! [`super::agent_usage::on_end`], which writes the call's SpendLogs row.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::time::{Instant, Sleep};

use crate::agents::card::{self, Version};
use crate::agents::events::EventEnds;
use crate::agents::rpc::{Call, RpcError};
use crate::agents::{Agent, address};
use crate::body::{Body, BoxError};
use crate::error::json_response;
use crate::state::AppState;
use crate::upstream::relay::{CUT_AT_SHUTDOWN, CutSignal, dropped_because};

/// How long an agent may take without `litellm_params.timeout` (seconds).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// The largest answer read whole, and the largest single event relayed.
const MAX_ANSWER: usize = 16 << 20;
/// Headers of the caller never passed on, even when `extra_headers` names them.
use crate::secrets::CREDENTIAL_HEADERS as NEVER_FORWARDED;
/// The caller's A2A protocol headers, always passed on.
const A2A_HEADERS: &[&str] = &["a2a-version", "a2a-extensions", "x-a2a-extensions"];

/// How a call to an agent went, told once to its [`OnEnd`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// The agent's HTTP status, when it answered.
    pub status: Option<StatusCode>,
    /// Whether the answer was an event stream.
    pub streamed: bool,
    /// SSE events relayed (0 for a JSON answer).
    pub events: u32,
    /// Bytes of the agent's answer relayed to the client.
    pub bytes: u64,
    /// Why the call failed: refused before it went out, the agent down, slow or breaking off,
    /// the client gone, the gateway shutting down. `None` when the agent's answer was relayed
    /// whole (whatever its status or JSON-RPC error).
    pub error: Option<String>,
}

impl Summary {
    fn failed(error: impl Into<String>) -> Self {
        Self {
            error: Some(error.into()),
            ..Self::default()
        }
    }
}

/// Told how a call ended, once.
pub type OnEnd = Box<dyn FnOnce(Summary) + Send>;

/// The gateway's JSON-RPC error answer.
pub fn answer(e: RpcError) -> Response<Body> {
    json_response(
        e.status,
        Bytes::from(serde_json::to_vec(&e.body()).unwrap_or_default()),
    )
}

/// Answer `e` and tell `on_end`.
fn refuse(e: RpcError, on_end: OnEnd) -> Response<Body> {
    on_end(Summary::failed(e.message.clone()));
    answer(e)
}

/// The agent's URL, if it has one.
fn url_of(agent: &Agent) -> Option<&str> {
    agent
        .row
        .get("tianji_params")
        .and_then(|p| p.get("api_base"))
        .and_then(Value::as_str)
        .or_else(|| agent.card()?.get("url")?.as_str())
        .filter(|u| !u.is_empty())
}

/// `litellm_params.timeout` (seconds), else [`DEFAULT_TIMEOUT`].
fn timeout_of(agent: &Agent) -> Duration {
    agent
        .row
        .get("tianji_params")
        .and_then(|p| p.get("timeout"))
        .and_then(|t| t.as_f64().or_else(|| t.as_str()?.trim().parse().ok()))
        .filter(|t| *t > 0.0)
        .and_then(|t| Duration::try_from_secs_f64(t).ok())
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// The request to the agent, or the JSON-RPC error that refuses the call.
fn outbound(
    state: &AppState,
    agent: &Agent,
    call: &Call,
    headers: &HeaderMap,
    accept: &'static str,
) -> Result<Request<Body>, RpcError> {
    let id = &agent.id;
    let Some(url) = url_of(agent) else {
        return Err(RpcError::new(
            &call.id,
            -32000,
            format!("Agent '{id}' has no URL configured"),
        ));
    };
    if !state.config().general_settings.agent_allow_private_urls && address::refused(url).is_some()
    {
        // the agent's URL stays unsaid: callers never see it
        let why = format!(
            "Agent '{id}' has a URL the gateway may not call (private or loopback; general_settings.agent_allow_private_urls)"
        );
        return Err(RpcError::new(&call.id, -32603, why));
    }
    let out = json!({"jsonrpc": "2.0", "id": call.id, "method": call.sent_method(), "params": call.params});
    let mut req = Request::post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, accept);
    if let Some(key) = agent
        .row
        .get("tianji_params")
        .and_then(|p| p.get("api_key"))
        .and_then(Value::as_str)
        && let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {key}"))
    {
        v.set_sensitive(true);
        req = req.header(header::AUTHORIZATION, v);
    }
    for (name, v) in agent
        .row
        .get("static_headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(v) = v.as_str() {
            req = req.header(name.as_str(), v);
        }
    }
    let extra = agent.row.get("extra_headers").and_then(Value::as_array);
    let named = extra.into_iter().flatten().filter_map(Value::as_str);
    for name in named.map(str::to_ascii_lowercase) {
        if NEVER_FORWARDED.contains(&name.as_str()) || A2A_HEADERS.contains(&name.as_str()) {
            continue;
        }
        if let Some(v) = headers.get(name.as_str()) {
            req = req.header(name.as_str(), v.clone());
        }
    }
    for name in A2A_HEADERS {
        if let Some(v) = headers.get(*name) {
            req = req.header(*name, v.clone());
        }
    }
    if call.v1 && !headers.contains_key("a2a-version") {
        req = req.header("a2a-version", "1.0");
    }
    req.body(Body::full(serde_json::to_vec(&out).unwrap_or_default()))
        .map_err(|e| RpcError::new(&call.id, -32603, format!("Agent '{id}': {e}")))
}

/// The error for a call that failed before the agent's answer was read.
fn failure(call: &Call, agent: &Agent, why: &str) -> RpcError {
    RpcError::new(
        &call.id,
        -32603,
        format!("Agent '{}' failed: {why}", agent.id),
    )
}

fn too_slow(call: &Call, agent: &Agent, timeout: Duration) -> RpcError {
    RpcError::new(
        &call.id,
        -32603,
        format!("Agent '{}' did not answer within {timeout:?}", agent.id),
    )
}

/// An authenticated extended card in `bytes` (the agent's JSON-RPC answer) with the gateway's
/// URL, in the version the client speaks; anything else unchanged.
fn extended_card(bytes: Bytes, url: &str, version: Version) -> Bytes {
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return bytes;
    };
    match v.get_mut("result") {
        Some(card) if card.is_object() => *card = card::served(card, url, version),
        _ => return bytes,
    }
    serde_json::to_vec(&v).map_or(bytes, Bytes::from)
}

/// Send `call` to `agent`; the head of its answer, its body and the timeout that applies, or
/// the JSON-RPC error that ends the call.
async fn ask(
    state: &AppState,
    agent: &Agent,
    call: &Call,
    headers: &HeaderMap,
) -> Result<(http::response::Parts, Incoming, Duration), RpcError> {
    let accept = if call.streams() {
        "text/event-stream"
    } else {
        "application/json"
    };
    let req = outbound(state, agent, call, headers, accept)?;
    let timeout = timeout_of(agent);
    match tokio::time::timeout(timeout, state.client.request(req)).await {
        Ok(Ok(r)) => {
            let (head, body) = r.into_parts();
            Ok((head, body, timeout))
        }
        Ok(Err(e)) => Err(failure(call, agent, &e.to_string())),
        Err(_) => Err(too_slow(call, agent, timeout)),
    }
}

/// Forward `call` to `agent` and relay its answer: an event stream as it comes, anything else
/// read whole (see the module doc). `on_end` is told how it went, once.
pub async fn forward(
    state: &AppState,
    agent: &Agent,
    call: &Call,
    headers: &HeaderMap,
    on_end: OnEnd,
) -> Response<Body> {
    let (head, body, timeout) = match ask(state, agent, call, headers).await {
        Ok(got) => got,
        Err(e) => return refuse(e, on_end),
    };
    let ct = head.headers.get(header::CONTENT_TYPE);
    let sse = ct
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.get(..17))
        .is_some_and(|ct| ct.eq_ignore_ascii_case("text/event-stream"));
    if sse {
        let cut = state.streams.signal();
        let mut relay = EventRelay::new(body, timeout, call.id.clone(), cut, head.status, on_end);
        if let Err(why) = relay.first().await {
            return answer(failure(call, agent, &why)); // `on_end` has been told
        }
        let mut resp = Response::new(Body::Relay(Box::new(relay)));
        *resp.status_mut() = head.status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return resp;
    }
    let read = Limited::new(body, MAX_ANSWER).collect();
    let mut bytes = match tokio::time::timeout(timeout, read).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) => return refuse(failure(call, agent, &e.to_string()), on_end),
        Err(_) => return refuse(too_slow(call, agent, timeout), on_end),
    };
    if call.method == "agent/getAuthenticatedExtendedCard" && head.status.is_success() {
        let asked = headers.get("a2a-version").and_then(|v| v.to_str().ok());
        let version = match Version::of(asked) {
            _ if call.v1 => Version::V10,
            v => v,
        };
        let base = super::agents::base_url(state, headers);
        bytes = extended_card(bytes, &format!("{base}/a2a/{}", agent.id), version);
    }
    on_end(Summary {
        status: Some(head.status),
        bytes: bytes.len() as u64,
        ..Summary::default()
    });
    let mut resp = json_response(head.status, bytes);
    if let Some(ct) = ct {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
    }
    resp
}

/// An agent's event stream on its way to the client, whole events at a time (what comes after
/// the last complete event is held until the event ends). Ends with a JSON-RPC error event when
/// the agent breaks off or goes quiet for longer than the timeout, or at the graceful-shutdown
/// deadline; tells its [`OnEnd`] once (on drop at the latest).
pub struct EventRelay<B = Incoming> {
    inner: B,
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    /// The call's JSON-RPC id, for the error event.
    id: Value,
    events: EventEnds,
    /// The start of an event not ended yet.
    held: BytesMut,
    cut: Option<CutSignal>,
    on_end: Option<OnEnd>,
    summary: Summary,
    /// What [`EventRelay::first`] read, not sent yet.
    ready: Option<Bytes>,
    /// Bytes of the agent's events sent on.
    relayed: u64,
    /// Why the stream failed before any event was sent on.
    early: Option<String>,
}

impl<B> EventRelay<B> {
    fn new(
        inner: B,
        idle_timeout: Duration,
        id: Value,
        cut: CutSignal,
        status: StatusCode,
        on_end: OnEnd,
    ) -> Self {
        Self {
            inner,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            idle_timeout,
            id,
            events: EventEnds::default(),
            held: BytesMut::new(),
            cut: Some(cut),
            on_end: Some(on_end),
            summary: Summary {
                status: Some(status),
                streamed: true,
                ..Summary::default()
            },
            ready: None,
            relayed: 0,
            early: None,
        }
    }

    /// The whole events in `data` (with what was held before them), holding the rest.
    fn relay(&mut self, data: Bytes) -> Result<Bytes, String> {
        self.idle.as_mut().reset(Instant::now() + self.idle_timeout);
        let out = match self.events.feed(&data) {
            Some(end) if self.held.is_empty() => {
                let mut data = data;
                let rest = data.split_off(end);
                self.held.extend_from_slice(&rest);
                data
            }
            Some(end) => {
                let mut out = std::mem::take(&mut self.held);
                out.extend_from_slice(data.get(..end).unwrap_or_default());
                self.held
                    .extend_from_slice(data.get(end..).unwrap_or_default());
                out.freeze()
            }
            None => {
                self.held.extend_from_slice(&data);
                Bytes::new()
            }
        };
        if self.held.len() > MAX_ANSWER {
            return Err(format!("an event longer than {MAX_ANSWER} bytes"));
        }
        self.relayed += out.len() as u64;
        Ok(out)
    }

    /// The stream is over: `error` (a partial event dropped, an error event sent), else what
    /// was held. The observer is told.
    fn end(&mut self, error: Option<String>) -> Option<Bytes> {
        let held = std::mem::take(&mut self.held);
        let out = match &error {
            Some(why) => {
                let e = json!({"jsonrpc": "2.0", "id": self.id,
                    "error": {"code": -32603, "message": format!("Agent stream failed: {why}")}});
                Some(Bytes::from(format!("event: error\ndata: {e}\n\n")))
            }
            None => (!held.is_empty()).then(|| held.freeze()),
        };
        if error.is_some() && self.relayed == 0 {
            // the client gets a JSON-RPC error answer, not this stream
            self.early.clone_from(&error);
            self.summary.status = None;
            self.summary.streamed = false;
            self.summary.bytes = 0;
        } else {
            self.summary.bytes = self.relayed + out.as_ref().map_or(0, |b| b.len() as u64);
        }
        self.summary.events = self.events.count;
        self.summary.error = error;
        self.cut = None;
        if let Some(f) = self.on_end.take() {
            f(std::mem::take(&mut self.summary));
        }
        out
    }
}

impl<B> EventRelay<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    /// Wait for the first whole events (kept for the client) or the end: the error when the
    /// stream failed before any event, so that the call can be answered with a JSON-RPC error
    /// instead of a stream.
    async fn first(&mut self) -> Result<(), String> {
        self.ready = std::future::poll_fn(|cx| self.poll_events(cx)).await;
        self.early.take().map_or(Ok(()), Err)
    }

    /// The next whole events, the error event that ends a broken stream, or the end.
    fn poll_events(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        while self.on_end.is_some() {
            if self.cut.as_ref().is_some_and(CutSignal::is_cut) {
                return Poll::Ready(self.end(Some(CUT_AT_SHUTDOWN.to_string())));
            }
            let why = match http_body::Body::poll_frame(Pin::new(&mut self.inner), cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data().map(|d| self.relay(d)) {
                    Ok(Ok(out)) if !out.is_empty() => return Poll::Ready(Some(out)),
                    Ok(Err(why)) => why,
                    _ => continue, // nothing whole yet, or trailers (not relayed)
                },
                Poll::Ready(Some(Err(e))) => format!("the connection broke: {e}"),
                Poll::Ready(None) => return Poll::Ready(self.end(None)),
                Poll::Pending if self.cut.as_mut().is_some_and(|c| c.poll_cut(cx)) => {
                    CUT_AT_SHUTDOWN.to_string()
                }
                Poll::Pending if self.idle.as_mut().poll(cx).is_ready() => {
                    let secs = self.idle_timeout.as_secs_f64();
                    format!("the agent sent nothing for {secs:.1}s")
                }
                Poll::Pending => return Poll::Pending,
            };
            return Poll::Ready(self.end(Some(why)));
        }
        Poll::Ready(None)
    }
}

impl<B> Drop for EventRelay<B> {
    /// The client went away before the end (or its connection was closed at the shutdown
    /// deadline).
    fn drop(&mut self) {
        if self.on_end.is_some() {
            self.end(Some(dropped_because(self.cut.as_ref()).to_string()));
        }
    }
}

impl<B> http_body::Body for EventRelay<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    type Data = Bytes;
    type Error = BoxError;

    fn is_end_stream(&self) -> bool {
        self.on_end.is_none() && self.ready.is_none()
    }

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(b) = this.ready.take() {
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        this.poll_events(cx)
            .map(|out| out.map(|b| Ok(Frame::data(b))))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use http_body_util::BodyExt;

    use super::*;
    use crate::upstream::relay::{CLIENT_CLOSED, StreamCut};

    type Chunks = Vec<Result<&'static str, &'static str>>;
    type Told = Arc<Mutex<Vec<Summary>>>;

    /// An agent's answer: these chunks (or errors), then the end or nothing more.
    struct Answer {
        chunks: VecDeque<Result<&'static str, &'static str>>,
        then_silent: bool,
    }

    impl http_body::Body for Answer {
        type Data = Bytes;
        type Error = &'static str;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, &'static str>>> {
            match self.chunks.pop_front() {
                Some(c) => Poll::Ready(Some(
                    c.map(|c| Frame::data(Bytes::from_static(c.as_bytes()))),
                )),
                None if self.then_silent => Poll::Pending,
                None => Poll::Ready(None),
            }
        }
    }

    /// A relay of `chunks` for call id 7 (50 ms idle timeout), and what its observer is told.
    fn relay_of(chunks: Chunks, then_silent: bool, cut: &StreamCut) -> (EventRelay<Answer>, Told) {
        let told = Told::default();
        let t = told.clone();
        let on_end: OnEnd = Box::new(move |s| t.lock().unwrap().push(s));
        let agent = Answer {
            chunks: chunks.into(),
            then_silent,
        };
        let idle = Duration::from_millis(50);
        let body = EventRelay::new(agent, idle, json!(7), cut.signal(), StatusCode::OK, on_end);
        (body, told)
    }

    /// Relay `chunks`; the frames the client got and what the observer was told.
    async fn relay(chunks: Chunks, then_silent: bool) -> (Vec<String>, Vec<Summary>) {
        let (mut body, told) = relay_of(chunks, then_silent, &StreamCut::default());
        let mut frames = Vec::new();
        while let Some(f) = body.frame().await {
            let data = f.unwrap().into_data().unwrap();
            frames.push(String::from_utf8(data.to_vec()).unwrap());
        }
        drop(body);
        let told = told.lock().unwrap().clone();
        (frames, told)
    }

    #[tokio::test]
    async fn whole_events_are_relayed_and_the_end_is_told_once() {
        let (frames, told) = relay(vec![Ok("data: 1\n\nda"), Ok("ta: 2\n"), Ok("\n")], false).await;
        assert_eq!(frames, ["data: 1\n\n", "data: 2\n\n"]);
        let want = Summary {
            status: Some(StatusCode::OK),
            streamed: true,
            events: 2,
            bytes: 18,
            error: None,
        };
        assert_eq!(told, [want]);
    }

    #[tokio::test]
    async fn a_broken_or_silent_agent_ends_with_an_error_event_and_a_failed_summary() {
        let (frames, told) = relay(vec![Ok("data: 1\n\ndata: hal"), Err("reset")], false).await;
        assert_eq!(frames[0], "data: 1\n\n");
        assert_eq!(frames.len(), 2, "the partial event is dropped: {frames:?}");
        let ev = frames[1].strip_prefix("event: error\ndata: ").unwrap();
        let ev: Value = serde_json::from_str(ev.trim_end()).unwrap();
        assert_eq!(
            (ev["id"].as_i64(), ev["error"]["code"].as_i64()),
            (Some(7), Some(-32603))
        );
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].events, 1);
        assert!(
            told[0].error.as_deref().unwrap().contains("reset"),
            "{told:?}"
        );

        let (frames, told) = relay(vec![Ok("data: 1\n\n")], true).await;
        assert_eq!(frames.len(), 2);
        assert!(frames[1].contains("sent nothing"), "{frames:?}");
        assert!(told[0].error.as_deref().unwrap().contains("sent nothing"));
    }

    #[tokio::test]
    async fn a_stream_that_fails_before_its_first_event_is_an_error_not_a_stream() {
        let cut = StreamCut::default();
        let (mut body, told) = relay_of(vec![Ok("data: hal"), Err("reset")], false, &cut);
        let why = body.first().await.unwrap_err();
        assert!(why.contains("reset"), "{why}");
        drop(body);
        let told = told.lock().unwrap().clone();
        assert_eq!(told.len(), 1, "told once");
        // the client got an error answer: no agent status, no stream, nothing relayed
        assert_eq!(
            (told[0].status, told[0].streamed, told[0].bytes),
            (None, false, 0)
        );
        assert!(
            told[0]
                .error
                .as_deref()
                .is_some_and(|e| e.contains("reset"))
        );

        let (mut body, _) = relay_of(vec![Ok("data: 1\n\n"), Ok("data: 2\n\n")], false, &cut);
        body.first().await.unwrap();
        let all = body.collect().await.unwrap().to_bytes();
        assert_eq!(all, "data: 1\n\ndata: 2\n\n");
    }

    #[tokio::test]
    async fn a_client_that_goes_away_is_told_as_such() {
        let cut = StreamCut::default();
        let (mut body, told) = relay_of(vec![Ok("data: 1\n\n")], true, &cut);
        assert!(body.frame().await.is_some());
        drop(body);
        let told = told.lock().unwrap().clone();
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].error.as_deref(), Some(CLIENT_CLOSED));
        assert!(cut.settled());
    }
}
