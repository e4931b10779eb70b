//! The older HTTP+SSE transport (MCP 2024-11-05) as a server, for clients that still need it:
//! `GET /mcp/sse` (or `/mcp/{server}/sse`) opens an event stream for the caller's key and a
//! session (the same sessions as Streamable HTTP: bound to the key, holding the upstream
//! sessions); its first event, `endpoint`, names where to POST messages
//! (`/mcp/sse/messages?session_id=...`). Each POSTed request is answered `202 Accepted` and its
//! answer goes out on the stream as a `message` event; notifications and responses are
//! accepted and dropped. The stream sends a keep-alive comment every [`KEEP_ALIVE`]; at most
//! [`QUEUE`] answers wait for it (a POST past that is refused with 429). Closing the stream
//! ends the session; ending the session (DELETE /mcp, idle sweep) ends the stream.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Frame;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::{Interval, MissedTickBehavior};

use super::{Message, accepted, handle, owner, read_message, session_not_found, too_many};
use crate::body::{Body, BoxError};
use crate::error::{GatewayError, json_response};
use crate::mcp::jsonrpc::{REFUSED, RpcError};
use crate::mcp::sessions::{Session, Sessions, Stream};
use crate::request_body::RequestBody;
use crate::state::AppState;
use crate::upstream::relay::CutSignal;

/// Where clients POST their messages.
pub const MESSAGES_PATH: &str = "/mcp/sse/messages";
/// Answers waiting for the stream, per stream.
pub const QUEUE: usize = 32;
/// How often an idle stream sends a comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The protocol version of this transport.
const VERSION: &str = "2024-11-05";

/// The session id of a messages URL's query (`session_id`, or `sessionId` as some clients
/// write it); `None` unless it looks like one the gateway issued (hex, at most 64 bytes).
pub fn session_param(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        let named = k == "session_id" || k == "sessionId";
        let valid = !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric());
        (named && valid).then_some(v)
    })
}

/// A `message` event carrying a JSON-RPC message: its lines (JSON has line breaks only as
/// whitespace: `\n`, `\r` or both) as `data:` lines, blank ones left out.
pub fn message_event(json: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(json.len() + 24);
    out.put_slice(b"event: message\n");
    let mut lines = json
        .split(|b| *b == b'\n' || *b == b'\r')
        .filter(|l| !l.is_empty())
        .peekable();
    if lines.peek().is_none() {
        out.put_slice(b"data: \n");
    }
    for line in lines {
        out.put_slice(b"data: ");
        out.put_slice(line);
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
    out.freeze()
}

/// `GET /mcp/sse`, `/mcp/{server}/sse`: a new session and its event stream.
pub async fn open(
    state: &AppState,
    server: Option<String>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let principal = state.auth.caller_of(&req).await?;
    if let Some(name) = &server
        && state.mcp.server(name).is_none()
    {
        return Err(GatewayError::NotFound(format!("MCP server `{name}`")));
    }
    let (outbox, rx) = mpsc::channel(QUEUE);
    let stream = Stream { outbox, server };
    let opened = state
        .mcp
        .sessions
        .open(owner(&principal), VERSION.into(), Some(stream));
    let session = match opened {
        Ok(s) => s,
        Err(e) => return Ok(too_many(&Value::Null, &e).into_response()),
    };
    let first = format!(
        "event: endpoint\ndata: {MESSAGES_PATH}?session_id={}\n\n",
        session.id
    );
    let mut keep_alive =
        tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let body = EventStream {
        first: Some(Bytes::from(first)),
        rx,
        keep_alive,
        cut: state.streams.signal(),
        sessions: state.mcp.sessions.clone(),
        session,
    };
    let mut r = Response::new(Body::Relay(Box::new(body)));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(r)
}

/// `POST /mcp/sse/messages?session_id=...`: one message of a stream's session; a request is
/// answered on the stream.
pub async fn post(
    state: &Arc<AppState>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let principal = state.auth.caller_of(&req).await?;
    let session = session_param(req.uri().query())
        .and_then(|id| state.mcp.sessions.get(id, &owner(&principal)));
    let Some((session, (outbox, server))) = session.and_then(|s| {
        let stream = s.stream()?;
        Some((s, stream))
    }) else {
        return Ok(session_not_found().into_response());
    };
    let (parts, body) = req.into_parts();
    let (id, method, params) = match read_message(state, &parts.headers, body).await? {
        Ok(Some(m)) => m,
        Ok(None) => return Ok(accepted()),
        Err(a) => return Ok(a.into_response()),
    };
    let Ok(permit) = outbox.try_reserve_owned() else {
        let e = RpcError::new(
            &id,
            REFUSED,
            format!("too many answers wait for this session's event stream ({QUEUE}): read it"),
        );
        return Ok(json_response(
            StatusCode::TOO_MANY_REQUESTS,
            Bytes::from(e.body().to_string()),
        ));
    };
    let state = state.clone();
    tokio::spawn(async move {
        let msg = Message {
            principal: &principal,
            session: Some(session),
            server: server.as_deref(),
            headers: &parts.headers,
        };
        let answer = handle(&state, msg, &id, &method, params.as_deref()).await;
        permit.send(message_event(&answer.body));
    });
    Ok(accepted())
}

/// A session's event stream: the `endpoint` event, then its answers and keep-alives, until
/// the session ends, the client goes away (the session ends then) or the gateway shuts down.
struct EventStream {
    first: Option<Bytes>,
    rx: mpsc::Receiver<Bytes>,
    keep_alive: Interval,
    cut: CutSignal,
    sessions: Arc<Sessions>,
    session: Arc<Session>,
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.sessions.end(&self.session.id, &self.session.owner);
    }
}

impl http_body::Body for EventStream {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if this.cut.poll_cut(cx) {
            return Poll::Ready(None);
        }
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(event)) => return Poll::Ready(Some(Ok(Frame::data(event)))),
            // the session ended
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        if this.keep_alive.poll_tick(cx).is_ready() {
            // a stream still read keeps its session from idling out
            this.session.touch();
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b": ping\n\n")))));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_from_the_query() {
        assert_eq!(session_param(Some("session_id=ab12")), Some("ab12"));
        assert_eq!(session_param(Some("x=1&sessionId=CD")), Some("CD"));
        assert_eq!(session_param(Some("session_id=")), None);
        assert_eq!(session_param(Some("session_id=a%20b")), None);
        assert_eq!(
            session_param(Some(&format!("session_id={}", "a".repeat(65)))),
            None
        );
        assert_eq!(session_param(None), None);
    }

    #[test]
    fn messages_become_events_line_by_line() {
        assert_eq!(
            &message_event(br#"{"a":1}"#)[..],
            b"event: message\ndata: {\"a\":1}\n\n"
        );
        assert_eq!(
            &message_event(b"{\r\n\"a\": 1\r}")[..],
            b"event: message\ndata: {\ndata: \"a\": 1\ndata: }\n\n"
        );
    }

    /// The fuzz target's properties (`fuzz/fuzz_targets/mcp_transport.rs`) over random text.
    #[test]
    fn random_messages_read_back_as_one_event() {
        let mut rng = fastrand::Rng::with_seed(25);
        for _ in 0..5_000 {
            let text: String = (0..rng.usize(0..40))
                .map(|_| ['a', '{', ' ', '\n', '\r', ':', '=', '&', 'é'][rng.usize(..9)])
                .collect();
            if let Some(id) = session_param(Some(&text)) {
                assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
            }
            let got = crate::mcp::sse::Events::default()
                .feed(&message_event(text.as_bytes()))
                .unwrap();
            let lines: Vec<&str> = text.split(['\n', '\r']).filter(|l| !l.is_empty()).collect();
            assert_eq!(got.len(), 1, "{text:?}");
            assert_eq!(got[0].data, lines.join("\n"), "{text:?}");
        }
    }
}
