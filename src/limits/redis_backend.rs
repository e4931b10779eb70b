//! The limiter on Redis: one courier task sends `lua/batch.lua` with everything that queued
//! up while its previous call was in flight (admissions of new requests, releases of finished
//! ones, folds, lease renewals). An idle gateway sends each admission alone at once; a busy one
//! shares each Redis round trip among many requests. Every admission still takes exactly one
//! round trip before its upstream call, and releases never delay a request (releases alone
//! wait up to a millisecond for an admission to ride with).
//!
//! Redis holds one packed value per descriptor; a call names each distinct descriptor of its
//! batch once (`redis_call`), so the script reads and writes each value once per call however
//! many requests of the batch share it.
//!
//! Parallel slots are counts per instance with a lease (see the script). The courier knows how
//! many slots this instance holds on each descriptor and renews their leases every third of a
//! lease, setting the count it knows (so a count Redis lost, or got twice from a call that
//! failed here but ran there, is repaired). An instance that dies stops renewing: its slots
//! free themselves when its leases end.

use crate::util::{FastMap, FastSet};
use std::time::{Duration, Instant};

use crate::util::redis_conn::Conn;
use tokio::sync::{mpsc, oneshot};

use super::local::FoldItem;
use super::redis_call::{Run, Want};
use super::{Counted, Descriptor, HeldOn, Refused};

/// Longest wait for one call (admissions give up earlier and count locally).
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Most operations in one call.
const MAX_BATCH: usize = 128;
/// After a failed call, the next one (with the failed token reconciliations and the slot
/// counts Redis may have wrong) goes at the latest this much later.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Shortest lease (ms): leases are renewed every third of it.
const MIN_LEASE_MS: u64 = 1000;
/// Longest wait of releases alone for an admission to share their call.
const RELEASE_LINGER: Duration = Duration::from_millis(1);
/// A token reconciliation whose call failed is retried with the next calls this many times.
const RELEASE_ATTEMPTS: u32 = 120;

/// An admission's outcome: counted on every descriptor, or the first refusal.
pub type Admission = Result<Result<Grant, Refused>, String>;

pub(super) struct Admit {
    pub wants: Vec<Want>,
    pub tokens: u64,
    pub count: u64,
    pub reply: oneshot::Sender<Admission>,
}

pub(super) struct Release {
    pub on: Vec<HeldOn>,
    pub delta: i64,
    /// The slot id of a request counted in memory: its slots are on Redis only if a fold put
    /// them there.
    pub local: Option<u64>,
    /// Calls that failed with it.
    pub failures: u32,
}

/// Counts made in memory while Redis failed, to add to Redis; answered with the window start
/// each item's counts went to (0 = none). Never retried by the courier (the caller takes a new
/// snapshot).
pub(super) struct Fold {
    pub items: Vec<FoldItem>,
    pub reply: oneshot::Sender<Result<Vec<u64>, String>>,
}

pub(super) enum Op {
    Admit(Admit),
    Release(Release),
    Fold(Fold),
}

/// An admission counted on Redis: its counters, and what the request holds there. If nobody
/// takes it (the caller stopped waiting), dropping it frees its slots and refunds its tokens.
pub struct Grant {
    counted: Vec<Counted>,
    on: Vec<HeldOn>,
    tokens: u64,
    tx: Option<mpsc::UnboundedSender<Op>>,
}

impl Grant {
    /// The counters, and what to release when the request ends.
    pub(super) fn take(mut self) -> (Vec<Counted>, Vec<HeldOn>) {
        (
            std::mem::take(&mut self.counted),
            std::mem::take(&mut self.on),
        )
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        if let Some(tx) = &self.tx
            && !self.on.is_empty()
        {
            let _ = tx.send(Op::Release(Release {
                on: std::mem::take(&mut self.on),
                delta: -i64::try_from(self.tokens).unwrap_or(i64::MAX),
                local: None,
                failures: 0,
            }));
        }
    }
}

pub struct RedisLimits {
    tx: mpsc::UnboundedSender<Op>,
    window: u64,
}

impl RedisLimits {
    /// Start the courier (needs a Tokio runtime): `window` is the default window, `lease` the
    /// lease of this instance's slots (ms).
    pub fn new(conn: Conn, window: u64, lease: u64) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let courier = Courier {
            conn,
            tx: tx.downgrade(),
            script: redis::Script::new(super::redis_call::SCRIPT),
            id: format!("{:016x}", fastrand::u64(..)),
            lease: lease.max(MIN_LEASE_MS),
            held: FastMap::default(),
            dirty: FastSet::default(),
            folded: FastSet::default(),
            next_renewal: Instant::now(),
            resync: false,
        };
        tokio::spawn(courier.run(rx));
        Self { tx, window }
    }

    /// Check and count one request (see `lua/batch.lua`).
    pub async fn acquire(&self, ds: &[Descriptor], tokens: u64, count: u64) -> Admission {
        let wants = ds.iter().map(|d| Want::of(d, self.window)).collect();
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Op::Admit(Admit {
                wants,
                tokens,
                count,
                reply,
            }))
            .map_err(|_| "the rate-limit courier stopped".to_string())?;
        rx.await
            .map_err(|_| "the rate-limit courier dropped the request".to_string())?
    }

    /// Queue a fold of `items` (an empty one just checks that Redis answers); the receiver gets
    /// the window starts, one per item.
    pub fn fold(&self, items: Vec<FoldItem>) -> oneshot::Receiver<Result<Vec<u64>, String>> {
        let (reply, rx) = oneshot::channel();
        // a stopped courier drops `reply`: the receiver sees an error
        let _ = self.tx.send(Op::Fold(Fold { items, reply }));
        rx
    }

    /// Free the slots and correct the token reservation of a request admitted on Redis
    /// (queued).
    pub fn release(&self, on: Vec<HeldOn>, delta: i64) {
        self.send_release(on, None, delta);
    }

    /// The same for a request counted in memory (slot `slot`) whose counts a fold put on
    /// Redis.
    pub fn release_local(&self, on: Vec<HeldOn>, slot: u64, delta: i64) {
        self.send_release(on, Some(slot), delta);
    }

    fn send_release(&self, on: Vec<HeldOn>, local: Option<u64>, delta: i64) {
        let _ = self.tx.send(Op::Release(Release {
            on,
            delta,
            local,
            failures: 0,
        }));
    }
}

/// Move what is queued into `batch`, up to [`MAX_BATCH`] operations.
fn drain(rx: &mut mpsc::UnboundedReceiver<Op>, batch: &mut Vec<Op>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(op) => batch.push(op),
            Err(_) => break,
        }
    }
}

/// The courier task and what it knows of this instance's slots.
struct Courier {
    conn: Conn,
    /// To hand out with grants (weak: the courier stops when the limiter is gone).
    tx: mpsc::WeakUnboundedSender<Op>,
    script: redis::Script,
    /// This instance's id in the values (16 characters, random per process).
    id: String,
    /// Lease of this instance's slots (ms).
    lease: u64,
    /// Slots this instance holds per descriptor (by Redis key), as Redis should have them.
    held: FastMap<String, u64>,
    /// Descriptors whose count Redis may have wrong (a call failed): renewed with the next
    /// call.
    dirty: FastSet<String>,
    /// Slot ids of requests counted in memory whose slots a fold put on Redis.
    folded: FastSet<u64>,
    /// When every lease held is renewed next.
    next_renewal: Instant,
    /// A call failed: every count held is set again with the next call.
    resync: bool,
}

/// Slot counts to set with a call (descriptor, count), and whether they are all of them.
struct Renewals {
    all: bool,
    counts: Vec<(String, u64)>,
}

/// What a call changes in the courier's slot counts, once its outcome is known.
#[derive(Default)]
pub(super) struct Effects<'a> {
    /// Descriptors whose slot counts the call changes on Redis.
    pub touched: Vec<&'a str>,
    /// Slots freed (whatever the outcome: a release is final).
    pub freed: Vec<&'a str>,
    /// Slots freed only if the call succeeds (their fold is in the same call).
    pub freed_if_ok: Vec<&'a str>,
    /// Slots a fold adds, and the slot ids it puts on Redis, if the call succeeds.
    pub folded: Vec<(&'a str, u64)>,
    pub folded_ids: FastSet<u64>,
    /// Slot ids released in this call (no longer to track).
    pub released_ids: Vec<u64>,
    /// The number of admissions of each admission op, in order.
    pub runs: Vec<usize>,
}

impl Courier {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Op>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut retry: Vec<Release> = Vec::new();
        loop {
            let first = match self.wake_at(!retry.is_empty()) {
                None => match rx.recv().await {
                    Some(op) => Some(op),
                    None => return, // the limiter is gone
                },
                Some(at) => match tokio::time::timeout_at(at.into(), rx.recv()).await {
                    Ok(Some(op)) => Some(op),
                    Ok(None) => return,
                    Err(_) => None, // renewals or retries are due
                },
            };
            batch.extend(first);
            batch.extend(retry.drain(..).map(Op::Release));
            drain(&mut rx, &mut batch);
            // releases alone wait a little for an admission to ride with (under load the next
            // one comes within it): they cost next to nothing there
            if !batch.is_empty()
                && batch.iter().all(|op| matches!(op, Op::Release(_)))
                && let Ok(Some(op)) = tokio::time::timeout(RELEASE_LINGER, rx.recv()).await
            {
                batch.push(op);
                drain(&mut rx, &mut batch);
            }
            let renewals = self.renewals();
            if batch.is_empty() && renewals.counts.is_empty() {
                continue;
            }
            retry = self.call(&mut batch, renewals).await;
        }
    }

    /// The slot counts to set with the next call: every count held when the leases are due
    /// (counts of 0 are forgotten then), else those Redis may have wrong.
    fn renewals(&mut self) -> Renewals {
        if self.held.is_empty() {
            self.resync = false;
        }
        let all = !self.held.is_empty() && (self.resync || Instant::now() >= self.next_renewal);
        let mut counts: Vec<(String, u64)> = Vec::new();
        if all {
            self.held.retain(|k, n| *n > 0 || self.dirty.contains(k));
            counts.extend(self.held.iter().map(|(k, n)| (k.clone(), *n)));
            counts.extend(
                self.dirty
                    .iter()
                    .filter(|k| !self.held.contains_key(*k))
                    .map(|k| (k.clone(), 0)),
            );
        } else {
            counts.extend(
                self.dirty
                    .iter()
                    .map(|k| (k.clone(), self.held.get(k).copied().unwrap_or(0))),
            );
        }
        Renewals { all, counts }
    }

    /// When to send a call without waiting for work: lease renewals, retries.
    fn wake_at(&self, retrying: bool) -> Option<Instant> {
        let renew = (!self.held.is_empty()).then_some(self.next_renewal);
        let retry = (retrying || self.resync || !self.dirty.is_empty())
            .then(|| Instant::now() + RETRY_AFTER);
        match (renew, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// One script call for `renewals` and `batch` (drained); returns the releases to try
    /// again.
    async fn call(&mut self, batch: &mut Vec<Op>, renewals: Renewals) -> Vec<Release> {
        let Renewals {
            all: renew_all,
            counts: renewals,
        } = renewals;
        let mut effects = Effects::default();
        let cmd = super::redis_call::build(
            self.script.get_hash(),
            self.lease,
            &self.id,
            &renewals,
            batch.as_slice(),
            &self.folded,
            &mut effects,
        );
        let result = match tokio::time::timeout(CALL_TIMEOUT, self.send(&cmd)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("timed out".to_string()),
        };
        let ok = result.is_ok();
        // the slot counts as they are now
        for base in &effects.freed {
            self.free(base);
        }
        for id in &effects.released_ids {
            self.folded.remove(id);
        }
        if ok {
            for base in &effects.freed_if_ok {
                self.free(base);
            }
            for (base, n) in &effects.folded {
                self.add(base, *n);
            }
            self.folded.extend(
                effects
                    .folded_ids
                    .iter()
                    .filter(|id| !effects.released_ids.contains(id)),
            );
            self.dirty.clear();
            if renew_all {
                self.resync = false;
                self.next_renewal = Instant::now() + Duration::from_millis(self.lease / 3);
            }
        } else {
            // Redis may have lost everything (a restart): every count is set again with the
            // next call
            self.resync = true;
            self.dirty.extend(renewals.iter().map(|(k, _)| k.clone()));
            self.dirty
                .extend(effects.touched.iter().map(|k| (*k).to_string()));
        }
        let runs = std::mem::take(&mut effects.runs);
        drop(effects);
        self.answer(result, batch, &runs)
    }

    async fn send(&self, cmd: &redis::Cmd) -> redis::RedisResult<Vec<u8>> {
        let mut conn = self.conn.clone();
        match cmd.query_async(&mut conn).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                self.script.load_async(&mut conn).await?;
                cmd.query_async(&mut conn).await
            }
            r => r,
        }
    }

    fn add(&mut self, base: &str, n: u64) {
        if n == 0 {
            return;
        }
        if self.held.is_empty() {
            // the lease just set on Redis is renewed a third of it from now
            self.next_renewal = Instant::now() + Duration::from_millis(self.lease / 3);
        }
        match self.held.get_mut(base) {
            Some(held) => *held += n,
            None => {
                self.held.insert(base.to_string(), n);
            }
        }
    }

    fn free(&mut self, base: &str) {
        if let Some(n) = self.held.get_mut(base) {
            *n = n.saturating_sub(1);
        }
    }

    /// Answer each admission and fold of `batch` (drained) with its part of the script's
    /// answer (or the call's error); `runs`: the number of admissions of each admission op.
    /// Returns the failed token reconciliations to retry.
    fn answer(
        &mut self,
        result: Result<Vec<u8>, String>,
        batch: &mut Vec<Op>,
        runs: &[usize],
    ) -> Vec<Release> {
        let shape = || "rate limit script returned an unexpected shape".to_string();
        let mut retry = Vec::new();
        // (an answer of the wrong shape fails each admission and fold, not the call)
        let values = match &result {
            Ok(b) => super::redis_call::numbers(b).unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let entries = super::redis_call::entries(&values).unwrap_or_default();
        let mut results = entries.into_iter();
        let mut runs = runs.iter();
        // the admission op at hand, and how many of its admissions are still to answer
        let mut run: Option<Run<'_>> = None;
        let mut left = 0;
        for op in batch.drain(..) {
            match (op, &result) {
                (Op::Admit(a), Ok(_)) => {
                    if left == 0 {
                        left = runs.next().copied().unwrap_or(1);
                        run = results
                            .next()
                            .and_then(|v| Run::new(v, &a.wants, left).ok());
                    }
                    left -= 1;
                    let out = match run.as_mut() {
                        Some(r) => match r.next(&a.wants, a.tokens, a.count) {
                            Ok(Ok(counted)) => Ok(Ok(self.admitted(counted, a.wants, a.tokens))),
                            Ok(Err(refused)) => Ok(Err(refused)),
                            Err(e) => Err(e),
                        },
                        None => Err(shape()),
                    };
                    let _ = a.reply.send(out);
                }
                (Op::Fold(f), Ok(_)) => {
                    let out = match results.next() {
                        Some(v) if v.len() == f.items.len() => {
                            Ok(v.iter().map(|x| super::redis_call::as_u64(*x)).collect())
                        }
                        None if f.items.is_empty() => Ok(Vec::new()),
                        _ => Err(shape()),
                    };
                    let _ = f.reply.send(out);
                }
                (Op::Admit(a), Err(e)) => {
                    let _ = a.reply.send(Err(e.clone()));
                }
                (Op::Fold(f), Err(e)) => {
                    let _ = f.reply.send(Err(e.clone()));
                }
                (Op::Release(_), Ok(_)) => {}
                (Op::Release(mut r), Err(_)) => {
                    // the slots are counted right by the next renewal; the tokens are retried
                    r.failures += 1;
                    for o in &mut r.on {
                        o.parallel = false;
                    }
                    if r.delta != 0
                        && r.failures < RELEASE_ATTEMPTS
                        && r.on.iter().any(|o| o.token_window.is_some())
                    {
                        retry.push(r);
                    }
                }
            }
        }
        if let Err(e) = &result {
            tracing::debug!(error = %e, "rate limit call failed");
        }
        retry
    }

    /// An admission counted on Redis: its slots are counted as held and the request gets a
    /// grant.
    fn admitted(&mut self, counted: Vec<Counted>, wants: Vec<Want>, tokens: u64) -> Grant {
        let mut on = Vec::with_capacity(wants.len());
        for (w, c) in wants.into_iter().zip(&counted) {
            let parallel = w.parallel >= 0;
            if parallel {
                self.add(&w.base, 1);
            }
            on.push(HeldOn {
                token_window: (w.tpm >= 0).then_some(c.start).flatten(),
                base: w.base,
                parallel,
            });
        }
        Grant {
            counted,
            on,
            tokens,
            tx: self.tx.upgrade(),
        }
    }
}
