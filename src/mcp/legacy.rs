//! The older HTTP+SSE transport (MCP 2024-11-05) as a client: `GET` the server's event stream,
//! whose first `endpoint` event names the URL messages are POSTed to; answers come back as
//! `message` events on the stream, matched to their requests by id by a reader task. The
//! stream ending fails every request still waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::{HeaderMap, Request, Uri, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::client::{Reply, UpstreamError, next_events, send};
use super::sse::Events;
use crate::body::Body;
use crate::upstream::HttpClient;

/// Requests waiting for their answers; `None` once the stream has ended.
pub(super) type Waiting = Arc<Mutex<Option<HashMap<u64, oneshot::Sender<Reply>>>>>;

/// A new, open [`Waiting`].
pub(super) fn waiting() -> Waiting {
    Arc::new(Mutex::new(Some(HashMap::new())))
}

/// Wait for the answer to request `id`; `Closed` when the stream has ended.
pub(super) fn expect(
    waiting: &Waiting,
    id: u64,
) -> Result<oneshot::Receiver<Reply>, UpstreamError> {
    let (tx, rx) = oneshot::channel();
    match waiting.lock().as_deref_mut() {
        Ok(Some(w)) => {
            w.insert(id, tx);
            Ok(rx)
        }
        _ => Err(UpstreamError::Closed),
    }
}

/// Stop waiting for `id` (it was never sent, or its caller gave up).
pub(super) fn give_up(waiting: &Waiting, id: u64) {
    if let Ok(Some(w)) = waiting.lock().as_deref_mut() {
        w.remove(&id);
    }
}

/// The stream ended: every request still waiting fails, and every later one.
pub(super) fn fail_all(waiting: &Waiting) {
    if let Ok(mut w) = waiting.lock() {
        *w = None;
    }
}

/// Hand a message from the server to the request it answers (anything else is dropped).
pub(super) fn deliver(waiting: &Waiting, data: &[u8]) {
    let Ok(a) = serde_json::from_slice::<Answer>(data) else {
        return;
    };
    let Some(id) = a.id.as_ref().and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    }) else {
        return;
    };
    let reply = match (a.result, a.error) {
        (Some(r), _) => Ok(r),
        (None, Some(e)) => Err(e),
        (None, None) => return,
    };
    let tx = match waiting.lock().as_deref_mut() {
        Ok(Some(w)) => w.remove(&id),
        _ => None,
    };
    if let Some(tx) = tx {
        let _ = tx.send(reply);
    }
}

/// An open event stream and where to POST.
pub struct Legacy {
    endpoint: Uri,
    waiting: Waiting,
    reader: JoinHandle<()>,
}

impl Drop for Legacy {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// `endpoint` (absolute, or a path on the stream's server) as a URL. An absolute endpoint must
/// be on the stream's own origin: the server's credentials go with every message.
pub fn resolve(base: &Uri, endpoint: &str) -> Result<Uri, UpstreamError> {
    let bad = || UpstreamError::Protocol(format!("bad endpoint '{endpoint}'"));
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        let uri: Uri = endpoint.parse().map_err(|_| bad())?;
        if uri.scheme() != base.scheme() || uri.authority() != base.authority() {
            return Err(UpstreamError::Protocol(format!(
                "endpoint '{endpoint}' is not on the server's origin"
            )));
        }
        return Ok(uri);
    }
    if !endpoint.starts_with('/') {
        return Err(bad());
    }
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().ok_or_else(bad)?;
    format!("{scheme}://{authority}{endpoint}")
        .parse()
        .map_err(|_| bad())
}

impl Legacy {
    /// Open the event stream and wait for its `endpoint` event.
    pub async fn connect(
        client: &HttpClient,
        url: &Uri,
        headers: &HeaderMap,
    ) -> Result<Self, UpstreamError> {
        let req = Request::get(url.clone()).header(header::ACCEPT, "text/event-stream");
        let resp = send(client, req, Body::empty(), headers).await?;
        if !resp.status().is_success() {
            return Err(UpstreamError::Status(resp.status().as_u16()));
        }
        let mut body = resp.into_body();
        let mut events = Events::default();
        let mut early = Vec::new();
        let endpoint = 'found: loop {
            let Some(got) = next_events(&mut body, &mut events).await? else {
                return Err(UpstreamError::Closed);
            };
            let mut got = got.into_iter();
            while let Some(e) = got.next() {
                if e.name == "endpoint" {
                    early.extend(got);
                    break 'found resolve(url, e.data.trim())?;
                }
            }
        };
        let waiting = waiting();
        let reader = tokio::spawn(read(body, events, early, waiting.clone()));
        Ok(Self {
            endpoint,
            waiting,
            reader,
        })
    }

    /// POST one message to the endpoint.
    pub async fn post(
        &self,
        client: &HttpClient,
        headers: &HeaderMap,
        body: Vec<u8>,
    ) -> Result<(), UpstreamError> {
        let req =
            Request::post(self.endpoint.clone()).header(header::CONTENT_TYPE, "application/json");
        let resp = send(client, req, Body::full(body), headers).await?;
        let status = resp.status();
        let _ = resp.into_body().collect().await;
        if !status.is_success() {
            return Err(UpstreamError::Status(status.as_u16()));
        }
        Ok(())
    }

    /// Send request `id` and wait for its answer on the stream.
    pub async fn request(
        &self,
        client: &HttpClient,
        headers: &HeaderMap,
        id: u64,
        body: Vec<u8>,
    ) -> Result<Reply, UpstreamError> {
        let rx = expect(&self.waiting, id)?;
        let sent = self.post(client, headers, body).await;
        if let Err(e) = sent {
            give_up(&self.waiting, id);
            return Err(e);
        }
        rx.await.map_err(|_| UpstreamError::Closed)
    }

    /// Stop reading the stream (its connection closes).
    pub fn close(&self) {
        self.reader.abort();
    }
}

#[derive(Deserialize)]
struct Answer {
    id: Option<Value>,
    result: Option<Box<serde_json::value::RawValue>>,
    error: Option<Value>,
}

/// Deliver the answers on the stream to their requests, until it ends.
async fn read(
    mut body: Incoming,
    mut events: Events,
    early: Vec<super::sse::Event>,
    waiting: Waiting,
) {
    for e in early.iter().filter(|e| e.name == "message") {
        deliver(&waiting, e.data.as_bytes());
    }
    while let Ok(Some(got)) = next_events(&mut body, &mut events).await {
        for e in got.iter().filter(|e| e.name == "message") {
            deliver(&waiting, e.data.as_bytes());
        }
    }
    fail_all(&waiting);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_resolve_against_the_stream() {
        let base: Uri = "http://127.0.0.1:8000/sse".parse().unwrap();
        assert_eq!(
            resolve(&base, "/messages/?session_id=ab")
                .unwrap()
                .to_string(),
            "http://127.0.0.1:8000/messages/?session_id=ab"
        );
        assert_eq!(
            resolve(&base, "http://127.0.0.1:8000/m")
                .unwrap()
                .to_string(),
            "http://127.0.0.1:8000/m"
        );
        assert!(resolve(&base, "http://h:1/m").is_err());
        assert!(resolve(&base, "https://127.0.0.1:8000/m").is_err());
        assert!(resolve(&base, "messages").is_err());
    }
}
