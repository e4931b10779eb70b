//! Client sessions of `/mcp`: issued by `initialize` (`Mcp-Session-Id`), bound to the key that
//! opened them, each holding the upstream sessions it opened (one per server, opened on first
//! use and reused). A session ends on `DELETE`, or after [`IDLE`] without a request (swept
//! every minute, when sessions are opened, and when a request finds it expired); ending it
//! closes its upstream sessions in the background.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::client::Conn;

/// A session unused this long ends.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// Sessions open at once; past this the least recently used ends.
pub const MAX_SESSIONS: usize = 10_000;

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
}

impl Session {
    /// The slot of `server`'s upstream session (filled on first use).
    pub fn slot(&self, server: &str) -> Arc<OnceCell<Arc<Conn>>> {
        match self.upstream.lock() {
            Ok(mut m) => m.entry(server.to_string()).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    /// Forget `server`'s upstream session (it ended on the server's side).
    pub fn forget(&self, server: &str) {
        if let Ok(mut m) = self.upstream.lock() {
            m.remove(server);
        }
    }

    fn touch(&self) {
        if let Ok(mut l) = self.last.lock() {
            *l = Instant::now();
        }
    }

    fn idle(&self, now: Instant) -> Duration {
        self.last
            .lock()
            .map_or(Duration::MAX, |l| now.saturating_duration_since(*l))
    }

    /// Close every upstream session (in the background).
    fn end(&self) {
        let conns: Vec<Arc<Conn>> = match self.upstream.lock() {
            Ok(mut m) => m.drain().filter_map(|(_, c)| c.get().cloned()).collect(),
            Err(_) => Vec::new(),
        };
        close_all(conns);
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
    /// Open a session for `owner`; idle ones are swept first.
    pub fn open(&self, owner: String, version: String) -> Arc<Session> {
        let s = Arc::new(Session {
            id: uuid::Uuid::now_v7().simple().to_string(),
            owner,
            version,
            last: Mutex::new(Instant::now()),
            upstream: Mutex::default(),
        });
        self.sweep();
        let mut ended = Vec::new();
        if let Ok(mut m) = self.open.lock() {
            let now = Instant::now();
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
        s
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
        let s = all.open("k1".into(), "2025-06-18".into());
        assert!(all.get(&s.id, "k1").is_some());
        assert!(all.get(&s.id, "k2").is_none());
        assert!(!all.end(&s.id, "k2"));
        assert!(all.end(&s.id, "k1"));
        assert!(all.get(&s.id, "k1").is_none());
        assert!(all.is_empty());
    }
}
