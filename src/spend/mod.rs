//! Spend accounting: what a request costs ([`prices`], [`cost`]), the live budget ledger
//! ([`ledger`]), and the background writer of SpendLogs and roll-ups ([`writer`]).
//!
//! A request is admitted with a [`Ticket`] (queue slot plus budget reservation); when it ends,
//! the ticket is finished with its cost: the ledger books the cost at once and the row goes to
//! the writer.

mod copy;
pub mod cost;
pub mod ledger;
pub mod provider_budget;
pub mod record;

pub mod rollup;
pub mod shared;
pub mod usage;
pub mod windowed;
pub mod writer;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::task::JoinHandle;

use ledger::{Ledger, Reservation};
use record::SpendRow;

use crate::store::Store;

/// Default `general_settings.spend_log_queue_size`.
pub const DEFAULT_QUEUE: usize = 20_000;
/// Default `general_settings.proxy_batch_write_at` (seconds).
pub const DEFAULT_EVERY_SECS: f64 = 1.0;

/// Settings of the spend path.
#[derive(Debug, Clone, Copy)]
pub struct SpendOptions {
    pub writer: writer::Options,
    pub queue: usize,
    /// `store_prompts_in_spend_logs`
    pub store_prompts: bool,
}

impl Default for SpendOptions {
    fn default() -> Self {
        Self {
            writer: writer::Options {
                every: Duration::from_secs_f64(DEFAULT_EVERY_SECS),
                disable_spend_logs: false,
                disable_error_logs: false,
                shutdown_grace: Duration::from_secs(10),
            },
            queue: DEFAULT_QUEUE,
            store_prompts: false,
        }
    }
}

/// The running writer.
struct Running {
    queue: Arc<writer::Queue>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

pub struct Spend {
    pub ledger: Arc<Ledger>,
    /// `router_settings.provider_budget_config`, when set.
    pub providers: Option<Arc<provider_budget::ProviderBudgets>>,
    /// Redis, when live spend is shared by the instances.
    redis: std::sync::OnceLock<crate::util::redis_conn::Conn>,
    /// Rows taken by the writer and not stored yet.
    in_flight: Arc<AtomicUsize>,
    running: Option<Running>,
    pub store_prompts: bool,
    /// Told of each failed spend write.
    on_failure: Arc<std::sync::OnceLock<writer::OnFailure>>,
}

impl Spend {
    /// Start the writer when there is a database.
    pub fn start(store: Option<Arc<Store>>, opts: SpendOptions) -> Self {
        let ledger = Arc::new(Ledger::default());
        let in_flight = Arc::new(AtomicUsize::new(0));
        let on_failure = Arc::new(std::sync::OnceLock::new());
        let running = store.map(|store| {
            let queue = Arc::new(writer::Queue::new(opts.queue));
            let (stop, stop_rx) = watch::channel(false);
            let w = writer::Writer {
                on_failure: on_failure.clone(),
                store,
                ledger: ledger.clone(),
                queue: queue.clone(),
                in_flight: in_flight.clone(),
                opts: opts.writer,
                probe_all: std::sync::atomic::AtomicBool::new(false),
            };
            let task = tokio::spawn(w.run(stop_rx));
            Running {
                queue,
                stop,
                task: Mutex::new(Some(task)),
            }
        });
        Self {
            ledger,
            providers: None,
            redis: std::sync::OnceLock::new(),
            in_flight,
            running,
            store_prompts: opts.store_prompts,
            on_failure,
        }
    }

    /// Call `f` with what failed and why on each failed spend write (set once).
    pub fn on_failure(&self, f: impl Fn(&str, &str) + Send + Sync + 'static) {
        let _ = self.on_failure.set(Box::new(f));
    }

    /// A place in the queue for one request's row (waits while the queue is full); `None`
    /// without a database.
    pub async fn slot(&self) -> Option<Slot> {
        let r = self.running.as_ref()?;
        let permit = match r.queue.room.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => r.queue.room.clone().acquire_owned().await.ok()?,
        };
        Some(Slot {
            queue: r.queue.clone(),
            permit,
        })
    }

    /// Share live spend with the other instances through `conn` (every `every`).
    pub fn share(self: &Arc<Self>, conn: crate::util::redis_conn::Conn, every: Duration) {
        if self.redis.set(conn.clone()).is_ok() {
            shared::spawn(Arc::downgrade(self), conn, every);
        }
    }

    /// The spend of these entities was set to `value` in the database: set the shared totals
    /// too (before the change is announced).
    pub async fn reset_shared(&self, changed: &[crate::auth::Changed], value: f64) {
        let Some(conn) = self.redis.get() else {
            return;
        };
        let accounts: Vec<_> = changed.iter().filter_map(ledger::Account::of).collect();
        self.ledger.drop_unsynced(&accounts);
        if let Err(e) = shared::reset(&mut conn.clone(), &accounts, value).await {
            tracing::warn!(error = %e, "could not reset shared spend totals");
        }
    }

    /// Rows handed to the writer and not stored yet.
    pub fn queued(&self) -> usize {
        self.running.as_ref().map_or(0, |r| r.queue.waiting())
            + self.in_flight.load(Ordering::Relaxed)
    }

    /// Flush what is queued and stop the writer (after the server has drained).
    pub async fn shutdown(&self) {
        let Some(r) = &self.running else {
            return;
        };
        let _ = r.stop.send(true);
        let task = r
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}

/// A request's place in the spend queue.
pub struct Slot {
    queue: Arc<writer::Queue>,
    permit: OwnedSemaphorePermit,
}

/// An admitted request's claim on the spend path, finished once when the request ends.
pub struct Ticket {
    pub spend: Arc<Spend>,
    pub slot: Option<Slot>,
    pub reservation: Reservation,
}

impl Ticket {
    /// Book `cost` (against `provider` too, when it has a budget) and queue the row (when there
    /// is a writer).
    pub fn finish(self, cost: f64, provider: Option<&str>, row: Option<SpendRow>) {
        self.spend.ledger.settle(self.reservation, cost);
        if let (Some(pb), Some(p)) = (&self.spend.providers, provider) {
            pb.add(p, cost);
        }
        if let (Some(s), Some(row)) = (self.slot, row) {
            s.queue.push(s.permit, row);
        }
    }
}
