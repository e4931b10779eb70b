//! The gateway as an MCP client of one upstream server: a connection ([`Conn`]) is opened
//! with `initialize` + `notifications/initialized` and then carries requests. Streamable HTTP
//! POSTs each message (answers as JSON or as an SSE stream, the server's `Mcp-Session-Id` sent
//! back on every request, the session ended with `DELETE`); the older SSE transport keeps a
//! `GET` event stream open, whose `endpoint` event says where messages are POSTed and whose
//! `message` events carry the answers ([`legacy`]); a stdio server is a local process spoken
//! to over its stdin and stdout ([`super::stdio`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, header,
};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::jsonrpc;
use super::legacy::Legacy;
use super::sse::Events;
use super::stdio::{Process, Stdio};
use crate::body::Body;
use crate::config::mcp::Transport;
use crate::upstream::HttpClient;

/// The protocol version the gateway asks upstream servers for.
pub const UPSTREAM_VERSION: &str = "2025-06-18";
/// The largest upstream answer read.
pub const MAX_ANSWER: usize = 16 << 20;

/// Why a call to an upstream server failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot reach the server: {0}")]
    Connect(String),
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("the server broke the protocol: {0}")]
    Protocol(String),
    #[error("the server closed the connection before answering")]
    Closed,
    #[error("the server did not answer within {0:?}")]
    Timeout(Duration),
    /// The server no longer knows the session (HTTP 404 to a request carrying it).
    #[error("the server ended the session")]
    SessionGone,
}

/// What a connection needs to know of its server.
#[derive(Debug)]
pub struct Target {
    pub name: String,
    pub url: Uri,
    pub transport: Transport,
    /// The credential and static headers (values marked sensitive).
    pub headers: HeaderMap,
    pub timeout: Duration,
    /// A stdio server's process (`url` is unused then).
    pub process: Option<Process>,
}

/// An answer: the `result`, or the JSON-RPC `error` object.
pub type Reply = Result<Box<RawValue>, Value>;

/// One open session with an upstream server.
pub struct Conn {
    target: Arc<Target>,
    client: HttpClient,
    /// The target's headers plus the client's forwarded ones.
    headers: HeaderMap,
    next_id: AtomicU64,
    kind: Kind,
    /// Streamable HTTP: the server's `Mcp-Session-Id` (from its answer to `initialize`).
    session: Mutex<Option<HeaderValue>>,
    /// Streamable HTTP: the agreed protocol version (`MCP-Protocol-Version`).
    version: Mutex<HeaderValue>,
}

enum Kind {
    Http,
    Sse(Legacy),
    Stdio(Stdio),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("server", &self.target.name)
            .finish_non_exhaustive()
    }
}

fn initialize_params() -> Value {
    json!({
        "protocolVersion": UPSTREAM_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "tianji", "version": env!("CARGO_PKG_VERSION")},
    })
}

/// `{"jsonrpc": "2.0", "id", "method", "params"}` (no `id` for a notification), written
/// straight into the body: `params` is already JSON and goes out as it is.
pub fn message(id: Option<u64>, method: &str, params: Option<&RawValue>) -> Vec<u8> {
    use std::io::Write as _;
    let params = params.map(RawValue::get);
    let mut m = Vec::with_capacity(48 + method.len() + params.map_or(0, str::len));
    m.extend_from_slice(br#"{"jsonrpc":"2.0","#);
    if let Some(id) = id {
        let _ = write!(m, r#""id":{id},"#);
    }
    m.extend_from_slice(br#""method":"#);
    // a string always serializes
    let _ = serde_json::to_writer(&mut m, method);
    if let Some(p) = params {
        m.extend_from_slice(br#","params":"#);
        m.extend_from_slice(p.as_bytes());
    }
    m.push(b'}');
    m
}

impl Conn {
    /// Open a session: connect (SSE: the event stream and its endpoint), `initialize`, then
    /// `notifications/initialized`. Bounded by the target's timeout.
    pub async fn open(
        target: Arc<Target>,
        client: HttpClient,
        forwarded: HeaderMap,
    ) -> Result<Self, UpstreamError> {
        let timeout = target.timeout;
        tokio::time::timeout(timeout, Self::open_now(target, client, forwarded))
            .await
            .map_err(|_| UpstreamError::Timeout(timeout))?
    }

    async fn open_now(
        target: Arc<Target>,
        client: HttpClient,
        forwarded: HeaderMap,
    ) -> Result<Self, UpstreamError> {
        let mut headers = target.headers.clone();
        for (k, v) in &forwarded {
            headers.insert(k.clone(), v.clone());
        }
        let kind = match (&target.transport, &target.process) {
            (Transport::Sse, _) => {
                Kind::Sse(Legacy::connect(&client, &target.url, &headers).await?)
            }
            (Transport::Stdio, Some(p)) => Kind::Stdio(Stdio::spawn(&target.name, p)?),
            (Transport::Stdio, None) => {
                return Err(UpstreamError::Connect("no command to run".into()));
            }
            (Transport::Http, _) => Kind::Http,
        };
        let conn = Self {
            target,
            client,
            headers,
            next_id: AtomicU64::new(0),
            kind,
            session: Mutex::new(None),
            version: Mutex::new(HeaderValue::from_static(UPSTREAM_VERSION)),
        };
        let params = RawValue::from_string(initialize_params().to_string())
            .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        let init = conn.request_now("initialize", Some(&params)).await?;
        let result = init.map_err(|e| {
            UpstreamError::Protocol(format!("initialize refused: {}", error_message(&e)))
        })?;
        let agreed = serde_json::from_str::<Value>(result.get())
            .ok()
            .and_then(|v| v.get("protocolVersion")?.as_str().map(str::to_string));
        if let Some(v) = agreed.and_then(|v| HeaderValue::from_str(&v).ok())
            && let Ok(mut slot) = conn.version.lock()
        {
            *slot = v;
        }
        conn.notify("notifications/initialized").await?;
        Ok(conn)
    }

    pub fn server(&self) -> &str {
        &self.target.name
    }

    /// Send a request and wait for its answer (bounded by the target's timeout).
    pub async fn request(
        &self,
        method: &str,
        params: Option<&RawValue>,
    ) -> Result<Reply, UpstreamError> {
        let timeout = self.target.timeout;
        tokio::time::timeout(timeout, self.request_now(method, params))
            .await
            .map_err(|_| UpstreamError::Timeout(timeout))?
    }

    async fn request_now(
        &self,
        method: &str,
        params: Option<&RawValue>,
    ) -> Result<Reply, UpstreamError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = message(Some(id), method, params);
        match &self.kind {
            Kind::Sse(l) => l.request(&self.client, &self.headers, id, body).await,
            Kind::Stdio(p) => p.request(id, body).await,
            Kind::Http => {
                let resp = self.post(body).await?;
                self.http_reply(resp, id).await
            }
        }
    }

    async fn notify(&self, method: &str) -> Result<(), UpstreamError> {
        let body = message(None, method, None);
        match &self.kind {
            Kind::Sse(l) => l.post(&self.client, &self.headers, body).await.map(drop),
            Kind::Stdio(p) => p.post(body).await,
            Kind::Http => {
                let resp = self.post(body).await?;
                if !resp.status().is_success() {
                    return Err(UpstreamError::Status(resp.status().as_u16()));
                }
                Ok(())
            }
        }
    }

    /// POST one message (Streamable HTTP), with the session's headers.
    async fn post(&self, body: Vec<u8>) -> Result<Response<Incoming>, UpstreamError> {
        let mut req = Request::post(self.target.url.clone())
            .body(Body::full(body))
            .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        let h = req.headers_mut();
        h.insert(header::CONTENT_TYPE, JSON.clone());
        h.insert(header::ACCEPT, ACCEPTED.clone());
        self.add_headers(h);
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| UpstreamError::Connect(e.to_string()))?;
        let has_session = self.session.lock().is_ok_and(|s| s.is_some());
        if resp.status() == StatusCode::NOT_FOUND && has_session {
            return Err(UpstreamError::SessionGone);
        }
        Ok(resp)
    }

    fn add_headers(&self, h: &mut HeaderMap) {
        for (k, v) in &self.headers {
            h.insert(k.clone(), v.clone());
        }
        if let Kind::Http = &self.kind {
            if let Ok(s) = self.session.lock()
                && let Some(s) = s.as_ref()
            {
                h.insert(SESSION_HEADER.clone(), s.clone());
            }
            if let Ok(v) = self.version.lock() {
                h.insert(VERSION_HEADER.clone(), v.clone());
            }
        }
    }

    /// Read the answer to request `id` from a Streamable HTTP response (JSON or SSE).
    async fn http_reply(&self, resp: Response<Incoming>, id: u64) -> Result<Reply, UpstreamError> {
        if !resp.status().is_success() {
            return Err(UpstreamError::Status(resp.status().as_u16()));
        }
        let (head, mut body) = resp.into_parts();
        if let Some(s) = head.headers.get(&SESSION_HEADER)
            && let Ok(mut slot) = self.session.lock()
            && slot.is_none()
        {
            // the session id comes with the answer to `initialize`, kept from then on
            *slot = Some(s.clone());
        }
        let is_sse = head
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        if !is_sse {
            let bytes = Limited::new(body, MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| UpstreamError::Protocol(e.to_string()))?
                .to_bytes();
            return jsonrpc::reply_to(&bytes, id)
                .ok_or_else(|| UpstreamError::Protocol("no answer to the request".into()));
        }
        let mut events = Events::default();
        while let Some(got) = next_events(&mut body, &mut events).await? {
            for e in got {
                if e.name != "message" {
                    continue;
                }
                if let Some(r) = jsonrpc::reply_to(e.data.as_bytes(), id) {
                    return Ok(r);
                }
            }
        }
        Err(UpstreamError::Closed)
    }

    /// End the session: `DELETE` with its id (Streamable HTTP), or close the event stream.
    pub async fn close(&self) {
        match &self.kind {
            Kind::Sse(l) => l.close(),
            Kind::Stdio(p) => p.close(),
            Kind::Http if !self.session.lock().is_ok_and(|s| s.is_some()) => {}
            Kind::Http => {
                let mut h = HeaderMap::new();
                self.add_headers(&mut h);
                let req = Request::builder()
                    .method(Method::DELETE)
                    .uri(self.target.url.clone());
                let sent = send(&self.client, req, Body::empty(), &h);
                if let Ok(Ok(resp)) = tokio::time::timeout(Duration::from_secs(5), sent).await {
                    let _ = resp.into_body().collect().await;
                }
            }
        }
    }
}

static JSON: HeaderValue = HeaderValue::from_static("application/json");
static ACCEPTED: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
pub static SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");
pub static VERSION_HEADER: HeaderName = HeaderName::from_static("mcp-protocol-version");

/// The `message` of a JSON-RPC error object (or the whole object).
pub fn error_message(e: &Value) -> String {
    e.get("message")
        .and_then(Value::as_str)
        .map_or_else(|| e.to_string(), str::to_string)
}

/// A body's bytes, at most `limit`.
pub async fn collect(body: Incoming, limit: usize) -> Result<Bytes, UpstreamError> {
    Limited::new(body, limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| UpstreamError::Protocol(e.to_string()))
}

/// Send a request with `headers` added.
pub async fn send(
    client: &HttpClient,
    req: http::request::Builder,
    body: Body,
    headers: &HeaderMap,
) -> Result<Response<Incoming>, UpstreamError> {
    let mut req = req
        .body(body)
        .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
    for (k, v) in headers {
        req.headers_mut().insert(k.clone(), v.clone());
    }
    client
        .request(req)
        .await
        .map_err(|e| UpstreamError::Connect(e.to_string()))
}

/// The events the next data of an event stream completes; `None` at its end.
pub async fn next_events(
    body: &mut Incoming,
    events: &mut Events,
) -> Result<Option<Vec<super::sse::Event>>, UpstreamError> {
    loop {
        let Some(frame) = body.frame().await else {
            return Ok(None);
        };
        let frame = frame.map_err(|_| UpstreamError::Closed)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        return events
            .feed(&data)
            .map(Some)
            .map_err(|_| UpstreamError::Protocol("event too large".into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_params_as_they_are() {
        let p = RawValue::from_string(r#"{"name":"echo","arguments":{"x":1.50}}"#.into()).unwrap();
        let m = message(Some(7), "tools/call", Some(&p));
        assert_eq!(
            std::str::from_utf8(&m).unwrap(),
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"x":1.50}}}"#
        );
        let n = message(None, "notifications/initialized", None);
        let v: Value = serde_json::from_slice(&n).unwrap();
        assert_eq!(
            v,
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
        );
        let odd: Value = serde_json::from_slice(&message(Some(1), "a\"b", None)).unwrap();
        assert_eq!(odd["method"], "a\"b");
    }
}
