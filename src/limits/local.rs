//! The limiter's algorithm in process memory: used without Redis, and while Redis is failing
//! (per instance then). Same windows, counters and slots as `lua/acquire.lua`, under one lock.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Counted, Descriptor, Refusal, Refused};

#[derive(Debug, Default)]
struct Entry {
    /// Window start (ms), 0 = no window yet.
    start: u64,
    requests: u64,
    tokens: i64,
    /// slot id -> acquire time (ms)
    slots: HashMap<u64, u64>,
}

impl Entry {
    fn idle(&self, now: u64, window: u64) -> bool {
        self.slots.is_empty() && (self.start == 0 || now.saturating_sub(self.start) >= window)
    }
}

/// Counters per descriptor (by its Redis key base).
#[derive(Debug, Default)]
pub struct Local {
    entries: Mutex<HashMap<String, Entry>>,
}

/// The clock and windows of one admission (ms).
#[derive(Debug, Clone, Copy)]
pub struct Times {
    pub now: u64,
    pub window: u64,
    pub slot_ttl: u64,
}

/// Sweep idle entries once the map is this large.
const SWEEP_AT: usize = 4096;

impl Local {
    /// Check all descriptors and count the request on all of them, or on none.
    pub fn acquire(
        &self,
        ds: &[Descriptor],
        t: Times,
        slot: u64,
        want: u64,
        count: u64,
    ) -> Result<Vec<Counted>, Refused> {
        let Times {
            now,
            window,
            slot_ttl,
        } = t;
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= SWEEP_AT {
            map.retain(|_, e| !e.idle(now, window));
        }
        let mut seen: Vec<(bool, u64, u64)> = Vec::with_capacity(ds.len());
        for (i, d) in ds.iter().enumerate() {
            // a gated descriptor is enforced only while its source is saturated enough
            let (enforce, sat) = match d.gate {
                Some((threshold, j)) if j < i => {
                    let (_, req, tok) = seen[j];
                    let src = &ds[j];
                    let ratio = |n: u64, cap: Option<u64>| {
                        cap.filter(|c| *c > 0).map_or(0.0, |c| n as f64 / c as f64)
                    };
                    let sat = ratio(req, src.rpm).max(ratio(tok, src.tpm));
                    (sat >= threshold, sat)
                }
                _ => (true, 0.0),
            };
            let e = map.entry(d.redis_base()).or_default();
            let live = e.start != 0 && now.saturating_sub(e.start) < d.window.unwrap_or(window);
            let (requests, tokens) = if live {
                (e.requests, e.tokens.max(0) as u64)
            } else {
                (0, 0)
            };
            let start = if live { e.start } else { now };
            let refused = |what, current, limit, start| Refused {
                index: i,
                what,
                current,
                limit,
                start,
                saturation: sat,
            };
            if let Some(rpm) = d.rpm
                && enforce
                && requests + count > rpm
            {
                return Err(refused(Refusal::Requests, requests, rpm, start));
            }
            if let Some(tpm) = d.tpm.filter(|_| enforce) {
                let over = if want > 0 {
                    tokens + want > tpm
                } else {
                    tokens >= tpm
                };
                if over {
                    return Err(refused(Refusal::Tokens, tokens, tpm, start));
                }
            }
            if let Some(par) = d.parallel {
                e.slots.retain(|_, at| now.saturating_sub(*at) < slot_ttl);
                let in_flight = e.slots.len() as u64;
                if enforce && in_flight + 1 > par {
                    return Err(refused(Refusal::Parallel, in_flight, par, now));
                }
            }
            seen.push((live, requests, tokens));
        }
        let mut out = Vec::with_capacity(ds.len());
        for (d, (live, _, _)) in ds.iter().zip(seen) {
            let e = map.entry(d.redis_base()).or_default();
            let mut c = Counted::default();
            if d.rpm.is_some() || d.tpm.is_some() {
                if live {
                    e.requests += count;
                    e.tokens += want as i64;
                } else {
                    e.start = now;
                    e.requests = count;
                    e.tokens = want as i64;
                }
                c.start = Some(e.start);
                c.requests = e.requests;
                c.tokens = e.tokens.max(0) as u64;
            }
            if d.parallel.is_some() {
                e.slots.insert(slot, now);
            }
            out.push(c);
        }
        Ok(out)
    }

    /// Free `slot` and correct the token reservation by `delta` (same window only).
    pub fn release(&self, held: &[(String, Option<u64>, bool)], slot: u64, delta: i64) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for (base, start, parallel) in held {
            let Some(e) = map.get_mut(base) else {
                continue;
            };
            if let Some(s) = start
                && e.start == *s
            {
                e.tokens += delta;
            }
            if *parallel {
                e.slots.remove(&slot);
            }
        }
    }

    /// Slots held on `base` now (tests and readiness).
    pub fn in_flight(&self, base: &str) -> usize {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.get(base).map_or(0, |e| e.slots.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(now: u64) -> Times {
        Times {
            now,
            window: 60_000,
            slot_ttl: 1000,
        }
    }

    fn d(rpm: Option<u64>, tpm: Option<u64>, parallel: Option<u64>) -> Descriptor {
        Descriptor::plain("api_key", "h".into(), rpm, tpm, parallel)
    }

    #[test]
    fn requests_per_window() {
        let l = Local::default();
        let ds = [d(Some(2), None, None)];
        assert!(l.acquire(&ds, t(1000), 1, 0, 1).is_ok());
        assert!(l.acquire(&ds, t(1001), 2, 0, 1).is_ok());
        let r = l.acquire(&ds, t(1002), 3, 0, 1).unwrap_err();
        assert_eq!(
            (r.what, r.current, r.limit, r.start),
            (Refusal::Requests, 2, 2, 1000)
        );
        // next window
        assert!(l.acquire(&ds, t(61_000), 4, 0, 1).is_ok());
    }

    #[test]
    fn all_or_nothing() {
        let l = Local::default();
        let a = d(Some(5), None, None);
        let mut b = d(Some(1), None, None);
        b.kind = "team";
        assert!(l.acquire(&[a.clone(), b.clone()], t(1), 1, 0, 1).is_ok());
        assert!(l.acquire(&[a.clone(), b.clone()], t(2), 2, 0, 1).is_err());
        // the refused request did not count on `a`
        let c = l.acquire(&[a], t(3), 3, 0, 1).unwrap();
        assert_eq!(c[0].requests, 2);
    }

    #[test]
    fn tokens_reserved_and_reconciled() {
        let l = Local::default();
        let ds = [d(None, Some(100), None)];
        let c = l.acquire(&ds, t(1), 1, 80, 1).unwrap();
        assert!(l.acquire(&ds, t(2), 2, 30, 1).is_err());
        l.release(&[(ds[0].redis_base(), c[0].start, false)], 1, -60);
        assert!(l.acquire(&ds, t(3), 3, 30, 1).is_ok());
    }

    #[test]
    fn slots_release_and_expire() {
        let l = Local::default();
        let ds = [d(None, None, Some(1))];
        let base = ds[0].redis_base();
        assert!(l.acquire(&ds, t(1), 1, 0, 1).is_ok());
        assert!(l.acquire(&ds, t(2), 2, 0, 1).is_err());
        l.release(&[(base.clone(), None, true)], 1, 0);
        assert_eq!(l.in_flight(&base), 0);
        assert!(l.acquire(&ds, t(3), 3, 0, 1).is_ok());
        // a slot never released (crashed holder) expires after the slot ttl
        assert!(l.acquire(&ds, t(1003), 4, 0, 1).is_ok());
    }
}
