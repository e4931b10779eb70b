//! Client sessions of `/mcp` (Streamable HTTP: issued by `initialize` as `Mcp-Session-Id`) and
//! of `/mcp/sse` (the older SSE transport: issued when the event stream opens, named in its
//! `endpoint` event), bound to the key that opened them, each holding the upstream sessions it
//! opened (one per server, opened on first use and reused). A session ends on `DELETE`, when
//! its event stream closes, or after [`IDLE`] without a request (swept every minute, when
//! sessions are opened, and when a request finds it expired); ending it closes its upstream
//! sessions (Streamable HTTP: `DELETE` upstream; SSE: the stream dropped; stdio: the process
//! killed) in the background. One owner holds at most [`MAX_PER_OWNER`] sessions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OnceCell, mpsc};
use tokio::time::Instant;

use super::client::Conn;

/// A session unused this long ends.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// Sessions open at once; past this the least recently used ends.
pub const MAX_SESSIONS: usize = 10_000;
/// Sessions one owner (key) may hold at once; past this `open` refuses.
pub const MAX_PER_OWNER: usize = 100;
/// Resource URIs remembered per session (which server listed them).
const MAX_RESOURCES: usize = 10_000;

/// Why a session could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "too many MCP sessions open for this key ({0}); end some (DELETE /mcp with Mcp-Session-Id, or close the event stream) or wait for them to idle out"
)]
pub struct TooManySessions(pub usize);

/// What an SSE-transport session has beside the common state: where its answers go and the
/// server its stream was opened for (`/mcp/{server}/sse`).
#[derive(Debug)]
pub struct Stream {
    pub outbox: mpsc::Sender<Bytes>,
    pub server: Option<String>,
}

/// One client session.
#[derive(Debug)]
pub struct Session {
    pub id: String,
    /// Who opened it: the key's hash, or `admin` for the master key / an open gateway.
    pub owner: String,
    /// The protocol version agreed at `initialize`.
    pub version: String,
    last: Mutex<Instant>,
    upstream: Mutex<HashMap<String, Arc<OnceCell<Arc<Conn>>>>>,
    /// Set once the session has ended: an upstream session opened after is closed at once.
    ended: AtomicBool,
    /// The SSE transport's outbox (dropped when the session ends, which ends the stream).
    stream: Mutex<Option<Stream>>,
    /// Resource URIs listed through this session and the server that listed each.
    resources: Mutex<HashMap<String, String>>,
}

impl Session {
    /// The slot of `server`'s upstream session (filled on first use).
    pub fn slot(&self, server: &str) -> Arc<OnceCell<Arc<Conn>>> {
        match self.upstream.lock() {
            Ok(mut m) => m.entry(server.to_string()).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    /// A session that is not in the table: one message's upstream sessions (ended after it).
    pub fn transient(owner: String) -> Self {
        Self::new(owner, String::new(), None)
    }

    fn new(owner: String, version: String, stream: Option<Stream>) -> Self {
        Self {
            id: uuid::Uuid::now_v7().simple().to_string(),
            owner,
            version,
            last: Mutex::new(Instant::now()),
            upstream: Mutex::default(),
            ended: AtomicBool::new(false),
            stream: Mutex::new(stream),
            resources: Mutex::default(),
        }
    }

    /// Whether the session has ended.
    pub fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// The SSE transport's outbox and server; `None` for a Streamable HTTP session (or one
    /// that ended).
    pub fn stream(&self) -> Option<(mpsc::Sender<Bytes>, Option<String>)> {
        let s = self.stream.lock().ok()?;
        s.as_ref().map(|s| (s.outbox.clone(), s.server.clone()))
    }

    /// Remember that `server` listed the resource `uri`.
    pub fn record_resource(&self, uri: &str, server: &str) {
        if let Ok(mut m) = self.resources.lock()
            && (m.len() < MAX_RESOURCES || m.contains_key(uri))
        {
            m.insert(uri.to_string(), server.to_string());
        }
    }

    /// The server that listed `uri` through this session.
    pub fn resource_server(&self, uri: &str) -> Option<String> {
        self.resources.lock().ok()?.get(uri).cloned()
    }

    /// Forget `server`'s upstream session (it ended on the server's side).
    pub fn forget(&self, server: &str) {
        if let Ok(mut m) = self.upstream.lock() {
            m.remove(server);
        }
    }

    /// Mark the session used now.
    pub fn touch(&self) {
        if let Ok(mut l) = self.last.lock() {
            *l = Instant::now();
        }
    }

    fn idle(&self, now: Instant) -> Duration {
        self.last
            .lock()
            .map_or(Duration::MAX, |l| now.saturating_duration_since(*l))
    }

    /// Close every upstream session now.
    pub async fn close(&self) {
        for c in self.finish() {
            c.close().await;
        }
    }

    /// Mark the session ended, drop its outbox; its upstream sessions, to be closed.
    fn finish(&self) -> Vec<Arc<Conn>> {
        self.ended.store(true, Ordering::Release);
        if let Ok(mut s) = self.stream.lock() {
            s.take();
        }
        match self.upstream.lock() {
            Ok(mut m) => m.drain().filter_map(|(_, c)| c.get().cloned()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Close every upstream session (in the background).
    pub fn end(&self) {
        close_all(self.finish());
    }

    /// Take `server`'s upstream session out of this session, if it has one.
    fn take(&self, server: &str) -> Option<Arc<Conn>> {
        let slot = self.upstream.lock().ok()?.remove(server)?;
        slot.get().cloned()
    }
}

/// Close upstream sessions in the background.
fn close_all(conns: Vec<Arc<Conn>>) {
    if conns.is_empty() {
        return;
    }
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            for c in conns {
                c.close().await;
            }
        });
    }
}

/// Every open session.
#[derive(Debug, Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    /// Open a session for `owner` (with `stream`: an SSE-transport session); idle ones are
    /// swept first. Refused when `owner` holds [`MAX_PER_OWNER`] sessions already.
    pub fn open(
        &self,
        owner: String,
        version: String,
        stream: Option<Stream>,
    ) -> Result<Arc<Session>, TooManySessions> {
        let s = Arc::new(Session::new(owner, version, stream));
        self.sweep();
        let mut ended = Vec::new();
        if let Ok(mut m) = self.open.lock() {
            let now = Instant::now();
            let held = m.values().filter(|o| o.owner == s.owner).count();
            if held >= MAX_PER_OWNER {
                return Err(TooManySessions(held));
            }
            if m.len() >= MAX_SESSIONS
                && let Some(oldest) = m
                    .iter()
                    .max_by_key(|(_, s)| s.idle(now))
                    .map(|(k, _)| k.clone())
                && let Some(s) = m.remove(&oldest)
            {
                ended.push(s);
            }
            m.insert(s.id.clone(), s.clone());
        }
        for e in ended {
            e.end();
        }
        Ok(s)
    }

    /// End every session idle for [`IDLE`].
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut ended = Vec::new();
        if let Ok(mut m) = self.open.lock() {
            m.retain(|_, s| {
                let keep = s.idle(now) < IDLE;
                if !keep {
                    ended.push(s.clone());
                }
                keep
            });
        }
        for e in ended {
            e.end();
        }
    }

    /// Sweep every minute while `sessions` lives (on the current runtime).
    pub fn sweep_in_background(sessions: &Arc<Sessions>) {
        let weak = Arc::downgrade(sessions);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(s) = weak.upgrade() else { break };
                    s.sweep();
                }
            });
        }
    }

    /// The live session `id` of `owner` (touched); `None` when unknown, expired or another's.
    pub fn get(&self, id: &str, owner: &str) -> Option<Arc<Session>> {
        let mut m = self.open.lock().ok()?;
        let s = m.get(id)?.clone();
        if s.idle(Instant::now()) >= IDLE {
            m.remove(id);
            drop(m);
            s.end();
            return None;
        }
        if s.owner != owner {
            return None;
        }
        s.touch();
        Some(s)
    }

    /// End session `id` of `owner`; false when there is none.
    pub fn end(&self, id: &str, owner: &str) -> bool {
        let Ok(mut m) = self.open.lock() else {
            return false;
        };
        if m.get(id).is_none_or(|s| s.owner != owner) {
            return false;
        }
        let s = m.remove(id);
        drop(m);
        if let Some(s) = s {
            s.end();
        }
        true
    }

    /// End every session's upstream session with `server` (the server was removed or
    /// changed); the client sessions go on, opening a new one on next use.
    pub fn forget_server(&self, server: &str) {
        let open: Vec<Arc<Session>> = match self.open.lock() {
            Ok(m) => m.values().cloned().collect(),
            Err(_) => return,
        };
        close_all(open.iter().filter_map(|s| s.take(server)).collect());
    }

    /// Sessions open now.
    pub fn len(&self) -> usize {
        self.open.lock().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_belong_to_their_owner() {
        let all = Sessions::default();
        let s = all.open("k1".into(), "2025-06-18".into(), None).unwrap();
        assert!(all.get(&s.id, "k1").is_some());
        assert!(all.get(&s.id, "k2").is_none());
        assert!(!all.end(&s.id, "k2"));
        assert!(all.end(&s.id, "k1"));
        assert!(all.get(&s.id, "k1").is_none());
        assert!(all.is_empty());
    }

    #[tokio::test]
    async fn one_owner_cannot_fill_the_table() {
        let all = Sessions::default();
        let mine: Vec<_> = (0..MAX_PER_OWNER)
            .map(|_| all.open("k1".into(), String::new(), None).unwrap())
            .collect();
        assert_eq!(
            all.open("k1".into(), String::new(), None).unwrap_err(),
            TooManySessions(MAX_PER_OWNER)
        );
        // others still get theirs; ending one makes room again
        assert!(all.open("k2".into(), String::new(), None).is_ok());
        assert!(all.end(&mine[0].id, "k1"));
        assert!(mine[0].is_ended());
        assert!(all.open("k1".into(), String::new(), None).is_ok());
        assert_eq!(all.len(), MAX_PER_OWNER + 1);
    }

    #[tokio::test]
    async fn ending_a_stream_session_drops_its_outbox() {
        let all = Sessions::default();
        let (tx, mut rx) = mpsc::channel(1);
        let s = all
            .open(
                "k1".into(),
                String::new(),
                Some(Stream {
                    outbox: tx,
                    server: None,
                }),
            )
            .unwrap();
        assert!(s.stream().is_some());
        s.record_resource("notes://a", "one");
        assert_eq!(s.resource_server("notes://a").as_deref(), Some("one"));
        assert!(all.end(&s.id, "k1"));
        assert!(s.stream().is_none());
        assert!(rx.recv().await.is_none());
    }
}
