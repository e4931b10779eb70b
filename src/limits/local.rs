//! The limiter's algorithm in process memory: used without Redis, and while Redis is failing
//! (per instance then). Same windows, counters and slots as `lua/batch.lua`, under one lock.
//! What was counted here while Redis was failing is handed over to Redis when it answers again
//! ([`Local::snapshot`], [`Local::folded`]).

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Counted, Descriptor, Refusal, Refused};

#[derive(Debug, Default)]
struct Entry {
    /// Window start (ms), 0 = no window yet.
    start: u64,
    requests: u64,
    tokens: i64,
    /// Length of the window (ms).
    window: u64,
    /// slot id -> acquire time (ms)
    slots: HashMap<u64, u64>,
}

impl Entry {
    fn idle(&self, now: u64, window: u64) -> bool {
        self.slots.is_empty() && (self.start == 0 || now.saturating_sub(self.start) >= window)
    }
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Snapshots taken so far: an admission made at generation `g` is in every snapshot
    /// taken after it, i.e. when the generation is above `g`.
    generation: u64,
    /// Admissions counted so far.
    admissions: u64,
}

/// Counters per descriptor (by its Redis key base).
#[derive(Debug, Default)]
pub struct Local {
    state: Mutex<State>,
}

/// The counts of one descriptor to hand over to Redis.
#[derive(Debug, Clone)]
pub struct FoldItem {
    pub base: String,
    /// Window start (ms) and how long ago it started, when the window is still open and has
    /// counts; the requests and tokens counted in it.
    pub window: Option<(u64, u64)>,
    pub window_len: u64,
    pub requests: u64,
    pub tokens: u64,
    /// Slots in flight: id and age (ms).
    pub slots: Vec<(u64, u64)>,
}

/// Everything counted in memory at one moment.
#[derive(Debug)]
pub struct Snapshot {
    pub items: Vec<FoldItem>,
    /// Admissions made before this generation are in it.
    pub generation: u64,
    admissions: u64,
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
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Check all descriptors and count the request on all of them, or on none, if `still`
    /// (asked under the lock) says so, with the generation the admission belongs to; `None`
    /// otherwise.
    pub fn acquire_if(
        &self,
        ds: &[Descriptor],
        t: Times,
        slot: u64,
        want: u64,
        count: u64,
        still: impl FnOnce() -> bool,
    ) -> Option<(Result<Vec<Counted>, Refused>, u64)> {
        let mut state = self.lock();
        if !still() {
            return None;
        }
        let generation = state.generation;
        let r = Self::count(&mut state, ds, t, slot, want, count);
        if r.is_ok() {
            state.admissions += 1;
        }
        Some((r, generation))
    }

    fn count(
        state: &mut State,
        ds: &[Descriptor],
        t: Times,
        slot: u64,
        want: u64,
        count: u64,
    ) -> Result<Vec<Counted>, Refused> {
        let Times { now, window, .. } = t;
        let map = &mut state.entries;
        if map.len() >= SWEEP_AT {
            map.retain(|_, e| !e.idle(now, window));
        }
        let seen = Self::check(map, ds, t, want, count)?;
        Ok(Self::take(map, ds, &seen, now, slot, want, count))
    }

    /// Whether every descriptor admits the request; for each, whether its window is live and
    /// its requests and tokens so far.
    fn check(
        map: &mut HashMap<String, Entry>,
        ds: &[Descriptor],
        t: Times,
        want: u64,
        count: u64,
    ) -> Result<Vec<(bool, u64, u64)>, Refused> {
        let Times {
            now,
            window,
            slot_ttl,
        } = t;
        let mut seen: Vec<(bool, u64, u64)> = Vec::with_capacity(ds.len());
        for (i, d) in ds.iter().enumerate() {
            let (enforce, sat) = gate(ds, i, &seen);
            let e = map.entry(d.redis_base()).or_default();
            e.window = d.window.unwrap_or(window);
            let live = e.start != 0 && now.saturating_sub(e.start) < e.window;
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
        Ok(seen)
    }

    /// Count an admitted request in every descriptor's window (a new window where the last
    /// one ended) and hold its parallel slot.
    fn take(
        map: &mut HashMap<String, Entry>,
        ds: &[Descriptor],
        seen: &[(bool, u64, u64)],
        now: u64,
        slot: u64,
        want: u64,
        count: u64,
    ) -> Vec<Counted> {
        let mut out = Vec::with_capacity(ds.len());
        for (d, (live, _, _)) in ds.iter().zip(seen) {
            let e = map.entry(d.redis_base()).or_default();
            let mut c = Counted::default();
            if d.rpm.is_some() || d.tpm.is_some() {
                if *live {
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
        out
    }

    /// Free `slot` and correct the token reservation by `delta` (same window only).
    pub fn release(&self, held: &[(String, Option<u64>, bool)], slot: u64, delta: i64) {
        release_in(&mut self.lock().entries, held, slot, delta);
    }

    /// [`Local::release`] of what `split` returns, called under the lock with the current
    /// generation (so it can hand the rest to Redis before any later snapshot is taken).
    pub fn release_with(
        &self,
        slot: u64,
        delta: i64,
        split: impl FnOnce(u64) -> Vec<(String, Option<u64>, bool)>,
    ) {
        let mut state = self.lock();
        let held = split(state.generation);
        release_in(&mut state.entries, &held, slot, delta);
    }

    /// Slots held on `base` now (tests and readiness).
    pub fn in_flight(&self, base: &str) -> usize {
        self.lock().entries.get(base).map_or(0, |e| e.slots.len())
    }

    /// The counts of open windows and the slots in flight, handed to `send` under the lock
    /// (so a release that follows is queued after it); starts a new generation.
    pub fn snapshot<R>(&self, t: Times, send: impl FnOnce(&[FoldItem]) -> R) -> (R, Snapshot) {
        let mut state = self.lock();
        let mut items = Vec::new();
        for (base, e) in &state.entries {
            let age = t.now.saturating_sub(e.start);
            let open = e.start != 0 && age < e.window && (e.requests > 0 || e.tokens > 0);
            let slots: Vec<(u64, u64)> = e
                .slots
                .iter()
                .map(|(id, at)| (*id, t.now.saturating_sub(*at)))
                .filter(|(_, age)| *age < t.slot_ttl)
                .collect();
            if !open && slots.is_empty() {
                continue;
            }
            items.push(FoldItem {
                base: base.clone(),
                window: open.then_some((e.start, age)),
                window_len: e.window,
                requests: if open { e.requests } else { 0 },
                tokens: if open { e.tokens.max(0) as u64 } else { 0 },
                slots,
            });
        }
        let r = send(&items);
        let snap = Snapshot {
            items,
            generation: state.generation,
            admissions: state.admissions,
        };
        state.generation += 1;
        (r, snap)
    }

    /// Take what `snap` handed to Redis off the in-memory counts. When nothing was admitted
    /// since the snapshot, `done` runs under the lock (the caller stops counting here) and
    /// the answer is true.
    pub fn folded(&self, snap: &Snapshot, done: impl FnOnce()) -> bool {
        let mut state = self.lock();
        for item in &snap.items {
            let Some((start, _)) = item.window else {
                continue;
            };
            if let Some(e) = state.entries.get_mut(&item.base)
                && e.start == start
            {
                e.requests = e.requests.saturating_sub(item.requests);
                e.tokens -= item.tokens as i64;
            }
        }
        if state.admissions != snap.admissions {
            return false;
        }
        done();
        true
    }
}

fn release_in(
    map: &mut HashMap<String, Entry>,
    held: &[(String, Option<u64>, bool)],
    slot: u64,
    delta: i64,
) {
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

/// Whether descriptor `i` is enforced now, and its source's saturation: a gated descriptor is
/// enforced only while its source (an earlier descriptor, `seen` so far) is saturated enough.
fn gate(ds: &[Descriptor], i: usize, seen: &[(bool, u64, u64)]) -> (bool, f64) {
    match ds[i].gate {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an unconditional admission got.
    fn held(r: Option<(Result<Vec<Counted>, Refused>, u64)>) -> Result<Vec<Counted>, Refused> {
        r.expect("unconditional").0
    }

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
        assert!(held(l.acquire_if(&ds, t(1000), 1, 0, 1, || true)).is_ok());
        assert!(held(l.acquire_if(&ds, t(1001), 2, 0, 1, || true)).is_ok());
        let r = held(l.acquire_if(&ds, t(1002), 3, 0, 1, || true)).unwrap_err();
        assert_eq!(
            (r.what, r.current, r.limit, r.start),
            (Refusal::Requests, 2, 2, 1000)
        );
        // next window
        assert!(held(l.acquire_if(&ds, t(61_000), 4, 0, 1, || true)).is_ok());
    }

    #[test]
    fn all_or_nothing() {
        let l = Local::default();
        let a = d(Some(5), None, None);
        let mut b = d(Some(1), None, None);
        b.kind = "team";
        assert!(held(l.acquire_if(&[a.clone(), b.clone()], t(1), 1, 0, 1, || true)).is_ok());
        assert!(held(l.acquire_if(&[a.clone(), b.clone()], t(2), 2, 0, 1, || true)).is_err());
        // the refused request did not count on `a`
        let c = held(l.acquire_if(&[a], t(3), 3, 0, 1, || true)).unwrap();
        assert_eq!(c[0].requests, 2);
    }

    #[test]
    fn tokens_reserved_and_reconciled() {
        let l = Local::default();
        let ds = [d(None, Some(100), None)];
        let c = held(l.acquire_if(&ds, t(1), 1, 80, 1, || true)).unwrap();
        assert!(held(l.acquire_if(&ds, t(2), 2, 30, 1, || true)).is_err());
        l.release(&[(ds[0].redis_base(), c[0].start, false)], 1, -60);
        assert!(held(l.acquire_if(&ds, t(3), 3, 30, 1, || true)).is_ok());
    }

    #[test]
    fn slots_release_and_expire() {
        let l = Local::default();
        let ds = [d(None, None, Some(1))];
        let base = ds[0].redis_base();
        assert!(held(l.acquire_if(&ds, t(1), 1, 0, 1, || true)).is_ok());
        assert!(held(l.acquire_if(&ds, t(2), 2, 0, 1, || true)).is_err());
        l.release(&[(base.clone(), None, true)], 1, 0);
        assert_eq!(l.in_flight(&base), 0);
        assert!(held(l.acquire_if(&ds, t(3), 3, 0, 1, || true)).is_ok());
        // a slot never released (crashed holder) expires after the slot ttl
        assert!(held(l.acquire_if(&ds, t(1003), 4, 0, 1, || true)).is_ok());
    }

    #[test]
    fn snapshot_then_folded() {
        let l = Local::default();
        let ds = [d(Some(5), Some(1000), Some(2))];
        let base = ds[0].redis_base();
        let (_, g) = l.acquire_if(&ds, t(1000), 7, 10, 1, || true).unwrap();
        assert_eq!(g, 0);
        assert!(held(l.acquire_if(&ds, t(1100), 8, 20, 1, || true)).is_ok());
        l.release(&[(base.clone(), None, true)], 8, 0);
        let (sent, snap) = l.snapshot(t(1200), |items| items.len());
        assert_eq!(sent, 1);
        let item = &snap.items[0];
        assert_eq!(item.window, Some((1000, 200)));
        assert_eq!((item.requests, item.tokens), (2, 30));
        assert_eq!(item.slots, vec![(7, 200)]);
        // admitted after the snapshot: a later generation, and folding must go on
        let (_, g) = l.acquire_if(&ds, t(1300), 9, 5, 1, || true).unwrap();
        assert_eq!(g, 1);
        assert!(!l.folded(&snap, || unreachable!()));
        let (_, snap) = l.snapshot(t(1400), |_| ());
        assert_eq!((snap.items[0].requests, snap.items[0].tokens), (1, 5));
        let mut done = false;
        assert!(l.folded(&snap, || done = true));
        assert!(done);
        // nothing left to fold but the slots in flight
        let (_, snap) = l.snapshot(t(1500), |_| ());
        assert_eq!(snap.items[0].window, None);
        assert_eq!(snap.items[0].slots.len(), 2);
        // refused while the guard says no
        assert!(l.acquire_if(&ds, t(1600), 10, 0, 1, || false).is_none());
    }
}
