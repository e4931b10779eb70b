//! Rate limits (LiteLLM's v3 limiter): requests and tokens per fixed window and requests in
//! flight, per key, user, team, team member, end user, organisation, model per key/team,
//! deployment and globally.
//!
//! A request's descriptors ([`descriptor`]) are checked and counted in one call: one Lua
//! script (`lua/acquire.lua`) on Redis when it is configured, so limits hold across instances,
//! else the same algorithm in memory ([`local`]). Nothing limited: no call at all. When Redis
//! fails, the request is counted in memory (fail-open, logged, counted in `redis_fallbacks`) or
//! refused with 503 under `fail_closed_rate_limit_enforcement`; Redis is tried again a second
//! later. The [`Held`] result frees the parallel slots and reconciles the token reservation with
//! the real usage when the request ends, whatever the outcome.

pub mod descriptor;
pub mod local;
pub mod model_budget;
pub mod priority;
mod redis_backend;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderName, HeaderValue};

pub use descriptor::{Descriptor, Subject, descriptors};
use local::Local;
use redis_backend::RedisLimits;

/// Default window (LiteLLM's `LITELLM_RATE_LIMIT_WINDOW_SIZE`).
pub const DEFAULT_WINDOW_SECS: u64 = 60;
/// Default life of a parallel slot whose holder never released it (a crashed instance).
pub const DEFAULT_SLOT_TTL_SECS: u64 = 3600;

/// Which usage counts against TPM (`general_settings.token_rate_limit_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenCount {
    Input,
    Output,
    #[default]
    Total,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub window: Duration,
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
    /// Redis is skipped until this time (ms) after a failure.
    down_until: AtomicU64,
    next_slot: AtomicU64,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How long Redis is left alone after it failed.
const RETRY_REDIS_AFTER_MS: u64 = 1000;
/// Longest wait for Redis before counting locally.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

impl Limits {
    pub fn new(redis: Option<redis::aio::ConnectionManager>, opts: Options) -> Self {
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
            down_until: AtomicU64::new(0),
            // Slot ids must differ across instances: start from random high bits.
            next_slot: AtomicU64::new(u64::from(fastrand::u32(..)) << 32),
        }
    }

    /// `redis`, `local`, or `degraded` (Redis configured but failing: counting locally).
    pub fn mode(&self) -> &'static str {
        match &self.redis {
            None => "local",
            Some(_) if self.down_until.load(Ordering::Relaxed) > now_ms() => "degraded",
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
        let window = self.opts.window.as_millis() as u64;
        let slot_ttl = self.opts.slot_ttl.as_millis() as u64;
        let mut backend = Backend::Local;
        let mut result = None;
        if let Some(r) = &self.redis {
            let now = now_ms();
            if self.down_until.load(Ordering::Relaxed) <= now {
                let call = r.acquire(ds.clone(), slot, tokens, count);
                match tokio::time::timeout(REDIS_TIMEOUT, call).await {
                    Ok(Ok(res)) => {
                        backend = Backend::Redis;
                        result = Some(res);
                    }
                    Ok(Err(e)) => self.redis_failed(&e),
                    Err(_) => self.redis_failed("timed out"),
                }
            }
            if result.is_none() {
                if self.opts.fail_closed {
                    return Err(LimitError::Unavailable);
                }
                self.redis_fallbacks.fetch_add(1, Ordering::Relaxed);
            }
        }
        let result = match result {
            Some(r) => r,
            None => self.local.acquire(
                &ds,
                local::Times {
                    now: now_ms(),
                    window,
                    slot_ttl,
                },
                slot,
                tokens,
                count,
            ),
        };
        match result {
            Ok(counted) => Ok(Some(Held::new(
                self.clone(),
                backend,
                slot,
                tokens,
                &ds,
                &counted,
            ))),
            Err(r) => Err(self.exceeded(&ds, r)),
        }
    }

    fn redis_failed(&self, error: &str) {
        let now = now_ms();
        let was = self
            .down_until
            .swap(now + RETRY_REDIS_AFTER_MS, Ordering::Relaxed);
        if was <= now {
            tracing::warn!(
                error,
                fail_closed = self.opts.fail_closed,
                "rate limits: Redis failed; counting per instance until it answers again"
            );
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

    /// Slots held in memory on `base` (tests).
    pub fn local_in_flight(&self, base: &str) -> usize {
        self.local.in_flight(base)
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC`
fn utc(ms: u64) -> String {
    format!("{} UTC", crate::auth::fmt_utc((ms / 1000) as f64))
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
    slot: u64,
    reserved: u64,
    used: Option<u64>,
    on: Vec<HeldOn>,
    /// `x-ratelimit-*` headers for the response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Held {
    fn new(
        limits: Arc<Limits>,
        backend: Backend,
        slot: u64,
        reserved: u64,
        ds: &[Descriptor],
        counted: &[Counted],
    ) -> Self {
        let mut headers = Vec::new();
        let mut on = Vec::with_capacity(ds.len());
        for (d, c) in ds.iter().zip(counted) {
            if let Some(rpm) = d.rpm {
                push_header(
                    &mut headers,
                    d.kind,
                    "remaining",
                    "requests",
                    rpm.saturating_sub(c.requests),
                );
                push_header(&mut headers, d.kind, "limit", "requests", rpm);
            }
            if let Some(tpm) = d.tpm {
                push_header(
                    &mut headers,
                    d.kind,
                    "remaining",
                    "tokens",
                    tpm.saturating_sub(c.tokens),
                );
                push_header(&mut headers, d.kind, "limit", "tokens", tpm);
            }
            on.push(HeldOn {
                base: d.redis_base(),
                token_window: d.tpm.and(c.start),
                parallel: d.parallel.is_some(),
            });
        }
        Self {
            limits,
            backend,
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

fn push_header(
    h: &mut Vec<(HeaderName, HeaderValue)>,
    kind: &str,
    which: &str,
    unit: &str,
    n: u64,
) {
    if let Ok(name) =
        HeaderName::from_bytes(format!("x-ratelimit-{kind}-{which}-{unit}").as_bytes())
    {
        h.push((name, HeaderValue::from(n)));
    }
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
            Backend::Local => {
                let held: Vec<_> = on
                    .into_iter()
                    .map(|o| (o.base, o.token_window, o.parallel))
                    .collect();
                limits.local.release(&held, slot, delta);
            }
            Backend::Redis => {
                if let Some(r) = &limits.redis {
                    r.release(on, slot, delta);
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
