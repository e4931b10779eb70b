//! The state of live configuration reloads (the reload itself is [`crate::reload`]'s): where
//! the config file is, one reload at a time, and how the last one went (shown on
//! `/health/readiness` and answered by `POST /config/reload`).

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// How one reload went.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// Unix seconds.
    pub at: f64,
    /// `reloaded`, `unchanged` or `rejected`.
    pub status: &'static str,
    /// Why it was rejected (the config in force stayed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The sections put in force.
    pub changed: Vec<String>,
    /// Sections that changed in the file but are read only at startup.
    pub restart_required: Vec<String>,
}

/// Live reloads of one gateway.
#[derive(Debug)]
pub struct Reloads {
    /// The config file (`None`: started without one; nothing to reload).
    pub path: Option<PathBuf>,
    /// Held while a reload runs: SIGHUP, the file watch and the admin route queue behind it.
    pub running: tokio::sync::Mutex<()>,
    last: Mutex<Option<Attempt>>,
    applied: AtomicU64,
    /// The document in force (what the next reload compares against).
    raw: Mutex<serde_json::Value>,
}

impl Reloads {
    pub fn new(path: Option<PathBuf>, raw: serde_json::Value) -> Self {
        Self {
            path,
            running: tokio::sync::Mutex::new(()),
            last: Mutex::new(None),
            applied: AtomicU64::new(0),
            raw: Mutex::new(raw),
        }
    }

    /// The document in force, as read (not redacted).
    pub fn raw(&self) -> serde_json::Value {
        self.raw.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_raw(&self, raw: serde_json::Value) {
        *self.raw.lock().unwrap_or_else(|p| p.into_inner()) = raw;
    }

    /// Remember how a reload went.
    pub fn record(&self, a: &Attempt) {
        if a.status == "reloaded" {
            self.applied.fetch_add(1, Ordering::Relaxed);
        }
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(a.clone());
    }

    /// The last reload, if any ran.
    pub fn last(&self) -> Option<Attempt> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reloads put in force since startup.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }
}
