//! Rate limits (LiteLLM's v3 limiter): requests and tokens per fixed window and requests in
//! flight, per key, user, team, team member, end user, organisation, model per key/team,
//! deployment and globally.
//!
//! A request's descriptors ([`descriptor`]) are checked and counted in one call: one Lua
//! script (`lua/batch.lua`) on Redis when it is configured, so limits hold across instances,
//! else the same algorithm in memory ([`local`]). Nothing limited: no call at all. On Redis a
//! courier (`redis_backend`) sends the admissions and releases that queued while its previous
//! call was in flight together, each descriptor's hash read and written once per call
//! (`redis_call`); parallel slots are per-instance counts under a lease the courier renews
//! (`slot_ttl`), so a dead instance's slots free themselves when its lease ends. When Redis
//! fails, the limiter is `degraded`: requests are counted in memory (fail-open, logged, counted
//! in `redis_fallbacks`) or refused with 503 under `fail_closed_rate_limit_enforcement`. A
//! recovery task tries Redis every second; when it answers, everything counted in memory in
//! windows still open (requests, tokens, slots in flight) is added to Redis in one call, so a
//! window that spans the outage still admits no more than its limit, and only then do requests
//! go back to Redis. Each instance folds its own counts. The [`Held`] result frees the parallel
//! slots and reconciles the token reservation with the real usage when the request ends,
//! whatever the outcome (on Redis too for a request counted in memory and folded meanwhile).

pub mod descriptor;
pub mod local;
pub mod model_budget;
pub mod priority;
mod redis_backend;
mod redis_call;

use crate::util::FastMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::util::clock::now_ms;

use http::{HeaderName, HeaderValue};

pub use descriptor::{Descriptor, Subject, descriptors};
use local::Local;
use redis_backend::RedisLimits;

/// Default window (LiteLLM's `LITELLM_RATE_LIMIT_WINDOW_SIZE`).
pub use crate::config::limits::TokenCount;

pub const DEFAULT_WINDOW_SECS: u64 = 60;
/// Default lease of an instance's parallel slots on Redis: the longest the slots of an instance
/// that died (killed, crashed) still count. A live instance renews its leases every third of
/// it, so its slots last as long as its requests.
pub const DEFAULT_SLOT_TTL_SECS: u64 = 30;
/// Life of a slot counted in memory (ms): a safety net only, since a request frees its slot
/// however it ends.
const LOCAL_SLOT_TTL_MS: u64 = 3_600_000;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub window: Duration,
    /// Lease of this instance's parallel slots on Redis (`TIANJI_PARALLEL_REQUEST_SLOT_TTL_SECONDS`).
    pub slot_ttl: Duration,
    /// `fail_closed_rate_limit_enforcement`
    pub fail_closed: bool,
    pub token_count: TokenCount,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(DEFAULT_WINDOW_SECS),
            slot_ttl: Duration::from_secs(DEFAULT_SLOT_TTL_SECS),
            fail_closed: false,
            token_count: TokenCount::Total,
        }
    }
}

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Requests,
    Tokens,
    Parallel,
}

impl Refusal {
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Requests => "requests",
            Refusal::Tokens => "tokens",
            Refusal::Parallel => "max_parallel_requests",
        }
    }
}

/// The first descriptor over its limit.
#[derive(Debug, Clone, Copy)]
pub struct Refused {
    pub index: usize,
    pub what: Refusal,
    pub current: u64,
    pub limit: u64,
    /// Window start (ms).
    pub start: u64,
    /// Saturation of the gating descriptor (dynamic limiter), else 0.
    pub saturation: f64,
}

/// A descriptor's counters after the request was counted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counted {
    /// Window start (ms), when it has a request or token limit.
    pub start: Option<u64>,
    pub requests: u64,
    pub tokens: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error(
        "Rate limit exceeded for {kind}: {value}. Limit type: {what}. Current limit: {limit}, Remaining: {remaining}. Limit resets at: {reset_at}",
        what = .what.name()
    )]
    Exceeded {
        kind: &'static str,
        value: String,
        what: Refusal,
        limit: u64,
        remaining: u64,
        /// `YYYY-MM-DD HH:MM:SS UTC`
        reset_at: String,
        /// Seconds until the window resets (1 for parallel limits).
        retry_after: u64,
    },
    #[error(
        "Model capacity reached for {}. Priority: {}, Rate limit type: {}, Model TPM: {}, Model RPM: {}, Remaining: {remaining}",
        .pool.model, .pool.priority, .what.name(), cap(.pool.model_tpm), cap(.pool.model_rpm)
    )]
    Capacity {
        pool: Arc<priority::Pool>,
        what: Refusal,
        remaining: u64,
        retry_after: u64,
        reset_at: String,
    },
    #[error(
        "Priority-based rate limit exceeded. Model: {}, Priority: {}, Rate limit type: {}, Model TPM: {}, Model RPM: {}, Remaining: {remaining}, Model saturation: {:.1}%",
        .pool.model, .pool.priority, .what.name(), cap(.pool.model_tpm), cap(.pool.model_rpm), .saturation * 100.0
    )]
    Priority {
        pool: Arc<priority::Pool>,
        what: Refusal,
        remaining: u64,
        saturation: f64,
        retry_after: u64,
        reset_at: String,
    },
    #[error(
        "Batch rate limit exceeded for {kind}: {value}. Batch contains {asked} {} but only {remaining} {} remaining out of {limit} {unit} limit. Limit resets at: {reset_at}",
        .what.name(), .what.name()
    )]
    Batch {
        kind: &'static str,
        value: String,
        what: Refusal,
        asked: u64,
        limit: u64,
        remaining: u64,
        /// `RPM`, `TPM` or `TPD`
        unit: &'static str,
        reset_at: String,
        retry_after: u64,
    },
    #[error(
        "Rate limit enforcement unavailable: request counters could not be verified against Redis, and fail_closed_rate_limit_enforcement is enabled, so the request was rejected to avoid exceeding the configured rate limit. Retry shortly."
    )]
    Unavailable,
}

/// A model capacity for messages: the number or `not configured`.
fn cap(v: Option<u64>) -> String {
    v.map_or_else(|| "not configured".to_string(), |n| n.to_string())
}

impl LimitError {
    pub fn status(&self) -> http::StatusCode {
        match self {
            LimitError::Unavailable => http::StatusCode::SERVICE_UNAVAILABLE,
            _ => http::StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub fn error_type(&self) -> &'static str {
        match self {
            LimitError::Unavailable => "service_unavailable_error",
            _ => "throttling_error",
        }
    }

    /// `retry-after`, `rate_limit_type`, `reset_at` on a 429 (and the dynamic limiter's
    /// `x-tianji-priority`, `x-tianji-saturation`).
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let (what, reset_at, retry_after) = match self {
            LimitError::Exceeded {
                what,
                reset_at,
                retry_after,
                ..
            }
            | LimitError::Capacity {
                what,
                reset_at,
                retry_after,
                ..
            }
            | LimitError::Priority {
                what,
                reset_at,
                retry_after,
                ..
            }
            | LimitError::Batch {
                what,
                reset_at,
                retry_after,
                ..
            } => (what, reset_at, retry_after),
            LimitError::Unavailable => return Vec::new(),
        };
        let mut h = vec![
            (http::header::RETRY_AFTER, HeaderValue::from(*retry_after)),
            (
                HeaderName::from_static("rate_limit_type"),
                HeaderValue::from_static(what.name()),
            ),
        ];
        if let Ok(v) = HeaderValue::from_str(reset_at) {
            h.push((HeaderName::from_static("reset_at"), v));
        }
        if let LimitError::Capacity { pool, .. } | LimitError::Priority { pool, .. } = self
            && let Ok(v) = HeaderValue::from_str(&pool.priority)
        {
            h.push((HeaderName::from_static("x-tianji-priority"), v));
        }
        if let LimitError::Priority { saturation, .. } = self
            && let Ok(v) = HeaderValue::from_str(&format!("{:.2}%", saturation * 100.0))
        {
            h.push((HeaderName::from_static("x-tianji-saturation"), v));
        }
        h
    }
}

/// Counted on every descriptor (and, on Redis, what the request holds there), or the first
/// refusal.
type Outcome = Result<(Vec<Counted>, Option<Vec<HeldOn>>), Refused>;

/// Where a request was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Redis,
    Local,
}

pub struct Limits {
    redis: Option<RedisLimits>,
    local: Local,
    pub opts: Options,
    /// Requests counted in memory because Redis failed (the fail-open metric).
    pub redis_fallbacks: AtomicU64,
    /// Redis failed: requests are counted in memory (or refused) until the recovery task has
    /// folded those counts into Redis. Cleared only under the [`Local`] lock.
    degraded: AtomicBool,
    /// The recovery task runs.
    recovering: AtomicBool,
    /// Where the in-memory token counts of each descriptor went in Redis (last fold), so that
    /// requests counted in memory reconcile their tokens there.
    folded: Mutex<FastMap<String, Folded>>,
    next_slot: AtomicU64,
}

/// One descriptor's in-memory window as folded into Redis.
#[derive(Debug, Clone, Copy)]
struct Folded {
    local_start: u64,
    redis_start: u64,
    /// Admissions of generations below this were in the fold.
    generation: u64,
    /// When it was folded (ms), to forget it after the slot ttl.
    at: u64,
}

/// What one attempt to fold the in-memory counts into Redis did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    /// Folded; back on Redis.
    Done,
    /// Folded, but requests were counted in memory meanwhile: fold again.
    Again,
    /// Redis did not answer.
    Failed,
}

/// How often the recovery task tries Redis after it failed.
const RETRY_REDIS_AFTER: Duration = Duration::from_millis(1000);
/// Longest wait for Redis before counting locally.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

impl Limits {
    pub fn new(redis: Option<crate::util::redis_conn::Conn>, opts: Options) -> Self {
        Self {
            redis: redis.map(|c| {
                RedisLimits::new(
                    c,
                    opts.window.as_millis() as u64,
                    opts.slot_ttl.as_millis() as u64,
                )
            }),
            local: Local::default(),
            opts,
            redis_fallbacks: AtomicU64::new(0),
            degraded: AtomicBool::new(false),
            recovering: AtomicBool::new(false),
            folded: Mutex::new(FastMap::default()),
            // Slot ids must differ across instances: start from random high bits.
            next_slot: AtomicU64::new(u64::from(fastrand::u32(..)) << 32),
        }
    }

    /// `redis`, `local`, or `degraded` (Redis configured but failing: counting locally).
    pub fn mode(&self) -> &'static str {
        match &self.redis {
            None => "local",
            Some(_) if self.degraded.load(Ordering::Acquire) => "degraded",
            Some(_) => "redis",
        }
    }

    /// Check and count one request against `ds` (reserving `tokens` on token limits). `None`
    /// when nothing is limited.
    pub async fn acquire(
        self: &Arc<Self>,
        ds: Vec<Descriptor>,
        tokens: u64,
    ) -> Result<Option<Held>, LimitError> {
        self.acquire_n(ds, tokens, 1).await
    }

    /// Reserve a batch of `requests` requests and `tokens` tokens on `ds` at once, all or
    /// nothing; kept (never reconciled).
    pub async fn reserve_batch(
        self: &Arc<Self>,
        ds: Vec<Descriptor>,
        tokens: u64,
        requests: u64,
    ) -> Result<(), LimitError> {
        match self.acquire_n(ds.clone(), tokens, requests).await {
            Ok(Some(mut held)) => {
                held.used = Some(held.reserved);
                held.on.clear();
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(LimitError::Exceeded {
                kind,
                value,
                what,
                limit,
                remaining,
                reset_at,
                retry_after,
            }) => {
                let unit = match (what, ds.iter().find(|d| d.kind == kind && d.value == value)) {
                    (Refusal::Tokens, Some(d)) if d.window.is_some() => "TPD",
                    (Refusal::Tokens, _) => "TPM",
                    _ => "RPM",
                };
                Err(LimitError::Batch {
                    kind,
                    value,
                    what,
                    asked: if what == Refusal::Tokens {
                        tokens
                    } else {
                        requests
                    },
                    limit,
                    remaining,
                    unit,
                    reset_at,
                    retry_after,
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn acquire_n(
        self: &Arc<Self>,
        ds: Vec<Descriptor>,
        tokens: u64,
        count: u64,
    ) -> Result<Option<Held>, LimitError> {
        if ds.is_empty() {
            return Ok(None);
        }
        let slot = self.next_slot.fetch_add(1, Ordering::Relaxed);
        let (backend, generation, result) = match &self.redis {
            None => (
                Backend::Local,
                0,
                self.local
                    .acquire_if(&ds, self.times(), slot, tokens, count, || true)
                    .map_or(Ok(Vec::new()), |(r, _)| r)
                    .map(|c| (c, None)),
            ),
            Some(r) => self.acquire_shared(r, &ds, slot, tokens, count).await?,
        };
        match result {
            Ok((counted, on)) => {
                let mut held = Held::new(self.clone(), backend, slot, tokens, &ds, &counted, on);
                held.generation = generation;
                Ok(Some(held))
            }
            Err(r) => Err(self.exceeded(&ds, r)),
        }
    }

    fn times(&self) -> local::Times {
        local::Times {
            now: now_ms(),
            window: self.opts.window.as_millis() as u64,
            slot_ttl: LOCAL_SLOT_TTL_MS,
        }
    }

    /// With Redis configured: on Redis, or in memory (fail-open) while degraded.
    async fn acquire_shared(
        self: &Arc<Self>,
        r: &RedisLimits,
        ds: &[Descriptor],
        slot: u64,
        tokens: u64,
        count: u64,
    ) -> Result<(Backend, u64, Outcome), LimitError> {
        // a recovery may end between the two checks of `degraded`: then Redis is tried again
        for _ in 0..3 {
            if !self.degraded.load(Ordering::Acquire) {
                let call = r.acquire(ds, tokens, count);
                match tokio::time::timeout(REDIS_TIMEOUT, call).await {
                    Ok(Ok(res)) => {
                        let res = res.map(|grant| {
                            let (counted, on) = grant.take();
                            (counted, Some(on))
                        });
                        return Ok((Backend::Redis, 0, res));
                    }
                    Ok(Err(e)) => self.redis_failed(&e),
                    Err(_) => self.redis_failed("timed out"),
                }
            }
            if self.opts.fail_closed {
                return Err(LimitError::Unavailable);
            }
            // counted in memory only while still degraded (checked under the lock, so that the
            // recovery task folds it)
            let still = || self.degraded.load(Ordering::Acquire);
            if let Some((res, generation)) =
                self.local
                    .acquire_if(ds, self.times(), slot, tokens, count, still)
            {
                self.redis_fallbacks.fetch_add(1, Ordering::Relaxed);
                return Ok((Backend::Local, generation, res.map(|c| (c, None))));
            }
        }
        Err(LimitError::Unavailable)
    }

    fn redis_failed(self: &Arc<Self>, error: &str) {
        if !self.degraded.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                error,
                fail_closed = self.opts.fail_closed,
                "rate limits: Redis failed; counting per instance until it answers again"
            );
        }
        if !self.recovering.swap(true, Ordering::AcqRel) {
            tokio::spawn(recover(Arc::downgrade(self)));
        }
    }

    /// Add what was counted in memory to Redis (one call), then go back to Redis.
    async fn fold(&self) -> Recovery {
        let Some(r) = &self.redis else {
            return Recovery::Done;
        };
        let t = self.times();
        let (reply, snap) = self.local.snapshot(t, |items| r.fold(items.to_vec()));
        let starts = match reply.await {
            Ok(Ok(starts)) => starts,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "rate limits: Redis still failing");
                return Recovery::Failed;
            }
            Err(_) => return Recovery::Failed,
        };
        let done = self.local.folded(&snap, || {
            let mut folded = self.folded.lock().unwrap_or_else(|e| e.into_inner());
            folded.retain(|_, f| t.now.saturating_sub(f.at) < t.slot_ttl);
            for (item, redis_start) in snap.items.iter().zip(starts) {
                if let (Some((local_start, _)), true) = (item.window, redis_start > 0) {
                    folded.insert(
                        item.base.clone(),
                        Folded {
                            local_start,
                            redis_start,
                            generation: snap.generation + 1,
                            at: t.now,
                        },
                    );
                }
            }
            self.degraded.store(false, Ordering::Release);
        });
        if done {
            let n = snap.items.len();
            tracing::info!(
                descriptors = n,
                "rate limits: Redis answers again; counts made meanwhile added to it"
            );
            Recovery::Done
        } else {
            Recovery::Again
        }
    }

    fn exceeded(&self, ds: &[Descriptor], r: Refused) -> LimitError {
        let d = &ds[r.index.min(ds.len().saturating_sub(1))];
        let window = self.opts.window.as_millis() as u64;
        let (reset_ms, retry_after) = match r.what {
            Refusal::Parallel => (r.start, 1),
            _ => {
                let reset = r.start + d.window.unwrap_or(window);
                (reset, reset.saturating_sub(now_ms()).div_ceil(1000).max(1))
            }
        };
        let remaining = r.limit.saturating_sub(r.current);
        let reset_at = utc(reset_ms);
        match (&d.dynamic, d.kind) {
            (Some(pool), "priority_model") => LimitError::Priority {
                pool: pool.clone(),
                what: r.what,
                remaining,
                saturation: r.saturation,
                retry_after,
                reset_at,
            },
            (Some(pool), _) => LimitError::Capacity {
                pool: pool.clone(),
                what: r.what,
                remaining,
                retry_after,
                reset_at,
            },
            (None, _) => LimitError::Exceeded {
                kind: d.kind,
                value: d.value.clone(),
                what: r.what,
                limit: r.limit,
                remaining,
                reset_at,
                retry_after,
            },
        }
    }

    /// Release a request counted in memory: what a fold put on Redis (its slot, its tokens when
    /// their window went there) is released on Redis too.
    fn release_local(&self, on: Vec<HeldOn>, slot: u64, generation: u64, delta: i64) {
        let Some(r) = &self.redis else {
            let held: Vec<_> = on
                .into_iter()
                .map(|o| (o.base, o.token_window, o.parallel))
                .collect();
            self.local.release(&held, slot, delta);
            return;
        };
        self.local.release_with(slot, delta, |current| {
            if current <= generation {
                // in no fold
                return on
                    .into_iter()
                    .map(|o| (o.base, o.token_window, o.parallel))
                    .collect();
            }
            let folded = self.folded.lock().unwrap_or_else(|e| e.into_inner());
            let mut here = Vec::with_capacity(on.len());
            let mut there = Vec::new();
            for o in on {
                let redis_start = o.token_window.and_then(|s| {
                    folded
                        .get(&o.base)
                        .filter(|f| f.local_start == s && f.generation > generation)
                        .map(|f| f.redis_start)
                });
                if o.parallel || redis_start.is_some() {
                    there.push(HeldOn {
                        base: o.base.clone(),
                        token_window: redis_start,
                        parallel: o.parallel,
                    });
                }
                let token_window = if redis_start.is_some() {
                    None
                } else {
                    o.token_window
                };
                here.push((o.base, token_window, o.parallel));
            }
            if !there.is_empty() {
                r.release_local(there, slot, delta);
            }
            here
        });
    }

    /// Slots held in memory on `base` (tests).
    pub fn local_in_flight(&self, base: &str) -> usize {
        self.local.in_flight(base)
    }
}

/// The recovery task: tries Redis every second until the in-memory counts are folded into it.
async fn recover(limits: Weak<Limits>) {
    loop {
        tokio::time::sleep(RETRY_REDIS_AFTER).await;
        loop {
            let Some(l) = limits.upgrade() else {
                return;
            };
            match l.fold().await {
                Recovery::Again => continue,
                Recovery::Failed => break,
                Recovery::Done => {
                    l.recovering.store(false, Ordering::Release);
                    // Redis may have failed again before the flag was down: then go on
                    if !l.degraded.load(Ordering::Acquire)
                        || l.recovering.swap(true, Ordering::AcqRel)
                    {
                        return;
                    }
                    break;
                }
            }
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC`
fn utc(ms: u64) -> String {
    format!("{} UTC", crate::util::clock::fmt_utc((ms / 1000) as f64))
}

/// One descriptor a request was counted on.
#[derive(Debug, Clone)]
struct HeldOn {
    base: String,
    /// Window start of the token reservation (when it has a token limit).
    token_window: Option<u64>,
    parallel: bool,
}

/// An admitted request's hold on its limits: freed when dropped, after the post stage set the
/// real token usage with [`Held::used`].
pub struct Held {
    limits: Arc<Limits>,
    backend: Backend,
    /// In-memory generation of the admission (see [`Local::snapshot`]).
    generation: u64,
    slot: u64,
    reserved: u64,
    used: Option<u64>,
    on: Vec<HeldOn>,
    /// `x-ratelimit-*` headers for the response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Held {
    /// `on`: what the request holds (built from `ds` when not given).
    fn new(
        limits: Arc<Limits>,
        backend: Backend,
        slot: u64,
        reserved: u64,
        ds: &[Descriptor],
        counted: &[Counted],
        on: Option<Vec<HeldOn>>,
    ) -> Self {
        let headers = rate_headers(ds, counted);
        let given = on.is_some();
        let mut on = on.unwrap_or_else(|| Vec::with_capacity(ds.len()));
        for (d, c) in ds.iter().zip(counted) {
            if !given {
                on.push(HeldOn {
                    base: d.redis_base(),
                    token_window: d.tpm.and(c.start),
                    parallel: d.parallel.is_some(),
                });
            }
        }
        Self {
            limits,
            backend,
            generation: 0,
            slot,
            reserved,
            used: None,
            on,
            headers,
        }
    }

    /// The tokens the request really used (by `token_rate_limit_type`); without it the
    /// reservation is refunded.
    pub fn used(&mut self, input: u64, output: u64) {
        self.used = Some(match self.limits.opts.token_count {
            TokenCount::Input => input,
            TokenCount::Output => output,
            TokenCount::Total => input + output,
        });
    }
}

/// `x-ratelimit-{kind}-{remaining,limit}-{requests,tokens}`, in that order: the limiter's own
/// kinds are made at compile time (every governed response carries several); other kinds (an
/// MCP server's, an agent's) once each, kept for the process's life.
fn header_names(kind: &'static str) -> Option<&'static [HeaderName; 4]> {
    macro_rules! known {
        ($($kind:literal),* $(,)?) => {
            match kind {
                $($kind => {
                    static KNOWN: [HeaderName; 4] = [
                        HeaderName::from_static(concat!("x-ratelimit-", $kind, "-remaining-requests")),
                        HeaderName::from_static(concat!("x-ratelimit-", $kind, "-limit-requests")),
                        HeaderName::from_static(concat!("x-ratelimit-", $kind, "-remaining-tokens")),
                        HeaderName::from_static(concat!("x-ratelimit-", $kind, "-limit-tokens")),
                    ];
                    return Some(&KNOWN);
                })*
                _ => {}
            }
        };
    }
    known!(
        "api_key",
        "user",
        "team",
        "team_member",
        "end_user",
        "organization",
        "model_per_key",
        "model_per_team",
        "deployment",
        "global",
        "model_saturation_check",
        "priority_model",
    );
    type Names = FastMap<&'static str, &'static [HeaderName; 4]>;
    static NAMES: std::sync::LazyLock<std::sync::RwLock<Names>> =
        std::sync::LazyLock::new(Default::default);
    if let Some(n) = NAMES.read().unwrap_or_else(|e| e.into_inner()).get(kind) {
        return Some(*n);
    }
    let name = |which: &str, unit: &str| {
        HeaderName::from_bytes(format!("x-ratelimit-{kind}-{which}-{unit}").as_bytes()).ok()
    };
    let names = [
        name("remaining", "requests")?,
        name("limit", "requests")?,
        name("remaining", "tokens")?,
        name("limit", "tokens")?,
    ];
    let mut map = NAMES.write().unwrap_or_else(|e| e.into_inner());
    // a kind is leaked once (kinds are a few static names)
    let names: &'static [HeaderName; 4] = map
        .entry(kind)
        .or_insert_with(|| Box::leak(Box::new(names)));
    Some(names)
}

/// The rate-limit headers of the counts in `ds`/`counted`: every value's digits in one buffer,
/// each header's value split off it as it is written (one allocation for all of them).
fn rate_headers(ds: &[Descriptor], counted: &[Counted]) -> Vec<(HeaderName, HeaderValue)> {
    let mut digits = bytes::BytesMut::with_capacity(4 * 20 * ds.len());
    let mut out = Vec::with_capacity(4 * ds.len());
    for (d, c) in ds.iter().zip(counted) {
        let Some(names) = header_names(d.kind) else {
            continue;
        };
        for (at, cap, used) in [(0, d.rpm, c.requests), (2, d.tpm, c.tokens)] {
            let Some(cap) = cap else {
                continue;
            };
            for (name, n) in [
                (&names[at], cap.saturating_sub(used)),
                (&names[at + 1], cap),
            ] {
                digits.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                if let Ok(v) = HeaderValue::from_maybe_shared(digits.split().freeze()) {
                    out.push((name.clone(), v));
                }
            }
        }
    }
    out
}

impl Drop for Held {
    fn drop(&mut self) {
        let delta = self.used.unwrap_or(0) as i64 - self.reserved as i64;
        let needed = self
            .on
            .iter()
            .any(|o| o.parallel || (o.token_window.is_some() && delta != 0));
        if !needed {
            return;
        }
        let on = std::mem::take(&mut self.on);
        let slot = self.slot;
        let limits = self.limits.clone();
        match self.backend {
            Backend::Local => limits.release_local(on, slot, self.generation, delta),
            Backend::Redis => {
                if let Some(r) = &limits.redis {
                    r.release(on, delta);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_format() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
    }

    /// Each limited count gives its remaining and limit headers, in order, values sliced from
    /// one buffer; unknown kinds get names made once.
    #[test]
    fn rate_headers_of_counts() {
        let key = Descriptor::plain("api_key", "k".into(), Some(100), Some(5000), Some(3));
        let mcp = Descriptor::plain("mcp_server", "s".into(), Some(7), None, None);
        let counted = [
            Counted {
                start: Some(1),
                requests: 40,
                tokens: 6000,
            },
            Counted {
                start: Some(1),
                requests: 0,
                tokens: 0,
            },
        ];
        let h = rate_headers(&[key, mcp], &counted);
        let got: Vec<(&str, &str)> = h
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("x-ratelimit-api_key-remaining-requests", "60"),
                ("x-ratelimit-api_key-limit-requests", "100"),
                ("x-ratelimit-api_key-remaining-tokens", "0"),
                ("x-ratelimit-api_key-limit-tokens", "5000"),
                ("x-ratelimit-mcp_server-remaining-requests", "7"),
                ("x-ratelimit-mcp_server-limit-requests", "7"),
            ]
        );
        let again = header_names("mcp_server").unwrap();
        assert!(std::ptr::eq(again, header_names("mcp_server").unwrap()));
    }

    /// Random interleavings of acquire and release (in memory) never leave a slot behind.
    #[tokio::test]
    async fn no_slot_leaks() {
        let limits = Arc::new(Limits::new(None, Options::default()));
        let d = Descriptor::plain("api_key", "prop".into(), None, Some(1_000_000), Some(3));
        let base = d.redis_base();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut held: Vec<Held> = Vec::new();
        for _ in 0..10_000 {
            if next() % 2 == 0 {
                match limits.acquire(vec![d.clone()], next() % 50).await {
                    Ok(Some(h)) => held.push(h),
                    Ok(None) => unreachable!(),
                    Err(_) => assert_eq!(held.len(), 3),
                }
            } else if !held.is_empty() {
                let i = (next() as usize) % held.len();
                let mut h = held.swap_remove(i);
                if next() % 2 == 0 {
                    h.used(next() % 40, next() % 40);
                }
                drop(h);
            }
            assert_eq!(limits.local_in_flight(&base), held.len());
        }
        held.clear();
        assert_eq!(limits.local_in_flight(&base), 0);
    }
}
