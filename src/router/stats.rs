//! What live traffic tells the router about one deployment: requests in flight, latency,
//! requests and tokens in the current minute, recent failures and cooldown. Lock-free; every
//! request updates it when it starts and when it ends.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::util::clock::now_ms;

/// Weight of the newest sample in the latency average.
const LATENCY_ALPHA: f64 = 0.3;

/// Live counters of one deployment.
#[derive(Debug, Default)]
pub struct Stats {
    in_flight: AtomicU32,
    /// Average latency in microseconds (0: none measured yet).
    latency_us: AtomicU64,
    /// The minute `requests`, `tokens` and `fails` count in.
    minute: AtomicU64,
    requests: AtomicU64,
    tokens: AtomicU64,
    fails: AtomicU32,
    /// Cooled down until this time (ms since the epoch; 0: never).
    cooldown_until: AtomicU64,
    /// Requests and tokens other instances counted this minute (usage-based routing).
    shared_requests: AtomicU64,
    shared_tokens: AtomicU64,
    /// This instance's requests and tokens of the minute already added to Redis.
    pushed_requests: AtomicU64,
    pushed_tokens: AtomicU64,
}

/// What ended a call, as the router counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// A failure that counts towards `allowed_fails`.
    Failure,
    /// A failure that cools the deployment down at once (429, 401, 404, 408).
    CooldownNow,
    /// Not the deployment's fault (a bad request).
    Neutral,
}

impl Stats {
    fn minute_now() -> u64 {
        now_ms() / 60_000
    }

    /// Start counting a new minute if it turned.
    fn roll(&self) {
        let m = Self::minute_now();
        let seen = self.minute.load(Relaxed);
        if seen != m
            && self
                .minute
                .compare_exchange(seen, m, Relaxed, Relaxed)
                .is_ok()
        {
            self.requests.store(0, Relaxed);
            self.tokens.store(0, Relaxed);
            self.fails.store(0, Relaxed);
            self.shared_requests.store(0, Relaxed);
            self.shared_tokens.store(0, Relaxed);
            self.pushed_requests.store(0, Relaxed);
            self.pushed_tokens.store(0, Relaxed);
        }
    }

    /// A request starts on this deployment.
    pub fn start(&self) {
        self.roll();
        self.in_flight.fetch_add(1, Relaxed);
        self.requests.fetch_add(1, Relaxed);
    }

    /// A request that started is no longer in flight.
    pub fn done(&self) {
        self.in_flight.fetch_sub(1, Relaxed);
    }

    /// An attempt ended (`latency`: time to the answer's head). Returns true when the
    /// deployment must now cool down.
    pub fn end(&self, outcome: Outcome, latency: Duration, allowed_fails: u32) -> bool {
        self.roll();
        match outcome {
            Outcome::Success => {
                let sample = latency.as_micros().max(1) as f64;
                let old = self.latency_us.load(Relaxed);
                let new = if old == 0 {
                    sample
                } else {
                    old as f64 * (1.0 - LATENCY_ALPHA) + sample * LATENCY_ALPHA
                };
                self.latency_us.store(new.max(1.0) as u64, Relaxed);
                false
            }
            Outcome::Neutral => false,
            Outcome::CooldownNow => true,
            Outcome::Failure => self.fails.fetch_add(1, Relaxed) + 1 > allowed_fails,
        }
    }

    /// Count `n` tokens used this minute.
    pub fn tokens(&self, n: u64) {
        self.roll();
        self.tokens.fetch_add(n, Relaxed);
    }

    /// Cool down until `until_ms` (kept if a later cooldown is already set).
    pub fn cool_until(&self, until_ms: u64) {
        self.cooldown_until.fetch_max(until_ms, Relaxed);
        self.fails.store(0, Relaxed);
    }

    /// Whether the deployment is cooling down at `now_ms`.
    pub fn cooling(&self, now_ms: u64) -> bool {
        self.cooldown_until.load(Relaxed) > now_ms
    }

    /// Failures counted in the current minute.
    pub fn fails_this_minute(&self) -> u32 {
        if self.minute.load(Relaxed) == Self::minute_now() {
            self.fails.load(Relaxed)
        } else {
            0
        }
    }

    pub fn cooldown_until(&self) -> u64 {
        self.cooldown_until.load(Relaxed)
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }

    /// Average latency in microseconds; 0 when never measured.
    pub fn latency_us(&self) -> u64 {
        self.latency_us.load(Relaxed)
    }

    /// Requests and tokens this minute, this instance's and (when shared) the others'.
    pub fn usage(&self) -> (u64, u64) {
        self.roll();
        (
            self.requests.load(Relaxed) + self.shared_requests.load(Relaxed),
            self.tokens.load(Relaxed) + self.shared_tokens.load(Relaxed),
        )
    }

    /// This instance's own requests and tokens this minute, and the minute.
    pub fn own_usage(&self) -> (u64, u64, u64) {
        self.roll();
        (
            self.minute.load(Relaxed),
            self.requests.load(Relaxed),
            self.tokens.load(Relaxed),
        )
    }

    /// This instance's requests and tokens of the current minute not yet added to Redis
    /// (marked as added), and the minute.
    pub fn take_unpushed(&self) -> (u64, u64, u64) {
        self.roll();
        let minute = self.minute.load(Relaxed);
        let rq = self.requests.load(Relaxed);
        let tk = self.tokens.load(Relaxed);
        let drq = rq.saturating_sub(self.pushed_requests.swap(rq, Relaxed));
        let dtk = tk.saturating_sub(self.pushed_tokens.swap(tk, Relaxed));
        (minute, drq, dtk)
    }

    /// What all instances together counted in `minute` (from Redis), minus this one's.
    pub fn set_shared(&self, minute: u64, requests: u64, tokens: u64) {
        self.roll();
        if self.minute.load(Relaxed) == minute {
            let own = (self.requests.load(Relaxed), self.tokens.load(Relaxed));
            self.shared_requests
                .store(requests.saturating_sub(own.0), Relaxed);
            self.shared_tokens
                .store(tokens.saturating_sub(own.1), Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_cool_down_after_allowed_fails() {
        let s = Stats::default();
        for _ in 0..3 {
            s.start();
            assert!(!s.end(Outcome::Failure, Duration::ZERO, 3));
        }
        s.start();
        assert!(s.end(Outcome::Failure, Duration::ZERO, 3));
        s.start();
        assert!(s.end(Outcome::CooldownNow, Duration::ZERO, 3));
        assert_eq!(s.in_flight(), 5);
        (0..5).for_each(|_| s.done());
        assert_eq!(s.in_flight(), 0);
        let now = now_ms();
        s.cool_until(now + 1000);
        assert!(s.cooling(now));
        assert!(!s.cooling(now + 1000));
    }

    #[test]
    fn latency_is_a_moving_average() {
        let s = Stats::default();
        s.start();
        s.end(Outcome::Success, Duration::from_millis(10), 3);
        assert_eq!(s.latency_us(), 10_000);
        s.start();
        s.end(Outcome::Success, Duration::from_millis(20), 3);
        assert_eq!(s.latency_us(), 13_000);
        s.tokens(5);
        assert_eq!(s.usage(), (2, 5));
    }
}
