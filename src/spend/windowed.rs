//! Spend counted per named window (provider budgets, model budgets). Windows are aligned to
//! multiples of their period since the Unix epoch, so every instance agrees on them. With Redis
//! the instances add what they booked to one total per name and window every second and read
//! the totals back (no Redis call on the request path).

use crate::util::FastMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use crate::util::clock::now_whole_secs as now_secs;

use crate::util::redis_conn::Conn;

#[derive(Debug, Default)]
struct Window {
    id: u64,
    secs: u64,
    /// Spend in the window as last known (all instances).
    spend: f64,
    /// Booked here, not yet added to the shared total.
    unsynced: f64,
}

pub struct Windowed {
    /// Redis key namespace (`tianji:{<ns>}:<name>:<window>`).
    ns: &'static str,
    windows: Mutex<FastMap<String, Window>>,
    redis: OnceLock<Conn>,
}

impl Windowed {
    pub fn new(ns: &'static str) -> Self {
        Self {
            ns,
            windows: Mutex::new(FastMap::default()),
            redis: OnceLock::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FastMap<String, Window>> {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The window of `name` now (period `secs`), reset when a new one started.
    fn current<'a>(map: &'a mut FastMap<String, Window>, name: &str, secs: u64) -> &'a mut Window {
        let secs = secs.max(1);
        let id = now_secs() / secs;
        let w = map.entry(name.to_string()).or_default();
        if w.id != id || w.secs != secs {
            *w = Window {
                id,
                secs,
                ..Window::default()
            };
        }
        w
    }

    /// Spend of `name` in its current window, and when that window ends (Unix seconds).
    pub fn spend(&self, name: &str, secs: u64) -> (f64, u64) {
        let mut map = self.lock();
        let w = Self::current(&mut map, name, secs);
        (w.spend, (w.id + 1) * w.secs)
    }

    /// Book `cost` on `name`.
    pub fn add(&self, name: &str, secs: u64, cost: f64) {
        if cost <= 0.0 || !cost.is_finite() {
            return;
        }
        let mut map = self.lock();
        let w = Self::current(&mut map, name, secs);
        w.spend += cost;
        w.unsynced += cost;
    }

    /// Share the totals through Redis every `every`.
    pub fn share(self: &Arc<Self>, conn: Conn, every: Duration) {
        if self.redis.set(conn.clone()).is_err() {
            return;
        }
        let me: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut conn = conn;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(w) = me.upgrade() else {
                    return;
                };
                if let Err(e) = w.sync_once(&mut conn).await {
                    tracing::warn!(error = %e, ns = w.ns, "windowed spend sync failed");
                }
            }
        });
    }

    /// One round: send what was booked, take the totals back; forget ended windows.
    pub async fn sync_once(&self, conn: &mut Conn) -> Result<(), redis::RedisError> {
        let items: Vec<(String, u64, u64, f64)> = {
            let mut map = self.lock();
            let now = now_secs();
            map.retain(|_, w| now / w.secs.max(1) == w.id || w.unsynced > 0.0);
            map.iter()
                .map(|(n, w)| (n.clone(), w.id, w.secs, w.unsynced))
                .collect()
        };
        if items.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (n, id, secs, delta) in &items {
            let key = format!("tianji:{{{}}}:{n}:{id}", self.ns);
            pipe.cmd("INCRBYFLOAT").arg(&key).arg(delta.to_string());
            pipe.cmd("EXPIRE")
                .arg(&key)
                .arg(secs.saturating_add(60).min(400 * 86_400))
                .ignore();
        }
        let totals: Vec<String> = pipe.query_async(conn).await?;
        let mut map = self.lock();
        for ((n, id, _, sent), total) in items.into_iter().zip(totals) {
            let Some(w) = map.get_mut(&n) else {
                continue;
            };
            if w.id != id {
                // the window ended since: what was sent belongs to the old one
                continue;
            }
            w.unsynced = (w.unsynced - sent).max(0.0);
            w.spend = total.parse::<f64>().unwrap_or(w.spend - w.unsynced) + w.unsynced;
        }
        map.retain(|_, w| now_secs() / w.secs.max(1) == w.id);
        Ok(())
    }
}
