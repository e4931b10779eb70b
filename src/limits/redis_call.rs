//! One `lua/batch.lua` call: its arguments and the parsing of its answers. Each distinct
//! descriptor of a batch is named once (KEYS, one packed value each) and its limits sent once;
//! operations refer to them by index. Consecutive admissions over the same descriptors go as
//! one admission op (their tokens listed), answered with the counters the first of them found
//! (and an item per admission only when one was refused): the counters each one saw are worked
//! out here. Everything is written into the command's one buffer (no string per argument or
//! key).

use std::collections::HashMap;

use foldhash::fast::RandomState;

use crate::util::FastSet;

use super::redis_backend::{Admit, Effects, Fold, Op, Release};
use super::{Counted, Descriptor, Refusal, Refused};

pub const SCRIPT: &str = include_str!("lua/batch.lua");

/// One descriptor of an admission, as the script needs it (limits: -1 = none).
pub struct Want {
    /// The descriptor's key (`Descriptor::redis_base`).
    pub base: String,
    pub rpm: i64,
    pub tpm: i64,
    pub parallel: i64,
    /// Window (ms).
    pub window: u64,
    pub gate: Option<(f64, usize)>,
}

impl Want {
    /// `d`, with the limiter's `window` (ms) unless it has its own.
    pub fn of(d: &Descriptor, window: u64) -> Self {
        Self {
            base: d.redis_base(),
            rpm: limit(d.rpm),
            tpm: limit(d.tpm),
            parallel: limit(d.parallel),
            window: d.window.unwrap_or(window),
            gate: d.gate,
        }
    }
}

fn limit(v: Option<u64>) -> i64 {
    v.map_or(-1, int)
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A descriptor's limits as the script's table holds them: key index, rpm, tpm, parallel,
/// window, gate (bits, to compare).
type Limits = (i64, i64, i64, i64, u64, u64);

/// The arguments of one call, collected before they are written (KEYS come first).
struct Call<'a> {
    keys: Vec<&'a str>,
    key_ix: HashMap<&'a str, i64, RandomState>,
    descs: Vec<Limits>,
    desc_ix: HashMap<Limits, i64, RandomState>,
    /// The releases, summed per key and window start (-1 = slots only): token delta, slots
    /// freed.
    released: Vec<(i64, i64, i64, i64)>,
    released_ix: HashMap<(i64, i64), usize, RandomState>,
    /// The other operations, in order.
    ops: Vec<i64>,
    /// Where the admission op that ends `ops` starts (the next admission may join it).
    run: Option<usize>,
    /// The descriptor words of the admission at hand (reused).
    shape: Vec<i64>,
}

/// The command for `renewals` (descriptor, slots held) and the operations of `batch`, and in
/// `fx` what it changes in the courier's slot counts. `folded`: slot ids of requests counted
/// in memory that earlier folds put on Redis.
pub(super) fn build<'a>(
    sha: &str,
    lease: u64,
    id: &str,
    renewals: &'a [(String, u64)],
    batch: &'a [Op],
    folded: &FastSet<u64>,
    fx: &mut Effects<'a>,
) -> redis::Cmd {
    let mut c = Call {
        keys: Vec::new(),
        key_ix: HashMap::default(),
        descs: Vec::new(),
        desc_ix: HashMap::default(),
        released: Vec::new(),
        released_ix: HashMap::default(),
        ops: Vec::with_capacity(8 * batch.len()),
        run: None,
        shape: Vec::new(),
    };
    let mut renewed = Vec::with_capacity(2 * renewals.len());
    for (base, n) in renewals {
        let k = c.key(base);
        renewed.extend([k, int(*n)]);
    }
    for op in batch {
        match op {
            Op::Admit(a) => c.admit(a, fx),
            Op::Release(r) => c.release(r, folded, fx),
            Op::Fold(f) => c.fold(f, folded, fx),
        }
    }
    let key_bytes: usize = c.keys.iter().map(|k| k.len()).sum();
    let nums = 6 * c.descs.len() + renewed.len() + 4 * c.released.len() + c.ops.len() + 5;
    // the numbers, packed (little-endian doubles: exact for these integers)
    let mut packed = Numbers(Vec::with_capacity(8 * nums));
    packed.int(c.descs.len() as i64);
    for (k, rpm, tpm, par, window, gate) in &c.descs {
        for n in [*k, *rpm, *tpm, *par, int(*window)] {
            packed.int(n);
        }
        packed
            .0
            .extend_from_slice(&f64::from_bits(*gate).to_le_bytes());
    }
    // renewals first (counts as they were before this call), then the releases, then the rest
    if !renewed.is_empty() {
        packed.int(4);
        packed.int(renewals.len() as i64);
        for n in &renewed {
            packed.int(*n);
        }
    }
    if !c.released.is_empty() {
        packed.int(2);
        packed.int(c.released.len() as i64);
        for (k, start, delta, freed) in &c.released {
            for n in [*k, *start, *delta, *freed] {
                packed.int(n);
            }
        }
    }
    for n in &c.ops {
        packed.int(*n);
    }
    let mut cmd = redis::Cmd::with_capacity(6 + c.keys.len(), 96 + key_bytes + packed.0.len());
    cmd.arg("EVALSHA").arg(sha).arg(c.keys.len());
    for k in &c.keys {
        cmd.arg(*k);
    }
    cmd.arg(lease).arg(id).arg(&packed.0[..]);
    cmd
}

/// The script's numbers as little-endian doubles.
struct Numbers(Vec<u8>);

impl Numbers {
    fn int(&mut self, n: i64) {
        self.0.extend_from_slice(&(n as f64).to_le_bytes());
    }
}

/// The script's answer: little-endian doubles (an empty answer has none).
pub fn numbers(answer: &[u8]) -> Result<Vec<f64>, String> {
    if !answer.len().is_multiple_of(8) {
        return Err(SHAPE.to_string());
    }
    Ok(answer
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            f64::from_le_bytes(b)
        })
        .collect())
}

/// The answer's entries (one per admission op and fold, in order): each is its length, then
/// its values.
pub fn entries(values: &[f64]) -> Result<Vec<&[f64]>, String> {
    let mut out = Vec::new();
    let mut rest = values;
    while let Some((&len, tail)) = rest.split_first() {
        let len = count(len);
        if len > tail.len() {
            return Err(SHAPE.to_string());
        }
        let (entry, next) = tail.split_at(len);
        out.push(entry);
        rest = next;
    }
    Ok(out)
}

/// A count or time the script answered (negative: 0).
pub fn count(v: f64) -> usize {
    as_u64(v) as usize
}

impl<'a> Call<'a> {
    /// The index (in KEYS, from 1) of the value at `base`.
    fn key(&mut self, base: &'a str) -> i64 {
        if let Some(i) = self.key_ix.get(base) {
            return *i;
        }
        self.keys.push(base);
        let i = self.keys.len() as i64;
        self.key_ix.insert(base, i);
        i
    }

    /// The index (from 1) of `w`'s limits in the descriptor table.
    fn desc(&mut self, w: &'a Want) -> i64 {
        let gate = w.gate.map_or(-1.0, |(g, _)| g);
        let limits = (
            self.key(&w.base),
            w.rpm,
            w.tpm,
            w.parallel,
            w.window,
            gate.to_bits(),
        );
        if let Some(i) = self.desc_ix.get(&limits) {
            return *i;
        }
        self.descs.push(limits);
        let i = self.descs.len() as i64;
        self.desc_ix.insert(limits, i);
        i
    }

    /// An admission: joins the admission op that ends `ops` when it has the same descriptors
    /// (and gates) and count, else starts one.
    fn admit(&mut self, a: &'a Admit, fx: &mut Effects<'a>) {
        let gated = a.wants.iter().any(|w| w.gate.is_some());
        let mut shape = std::mem::take(&mut self.shape);
        shape.clear();
        for w in &a.wants {
            shape.push(self.desc(w));
            if gated {
                shape.push(w.gate.map_or(0, |(_, j)| j as i64 + 1));
            }
            if w.parallel >= 0 {
                fx.touched.push(&w.base);
            }
        }
        let head = [
            if gated { 5 } else { 1 },
            a.wants.len() as i64,
            int(a.count),
        ];
        let joins = self.run.is_some_and(|h| {
            self.ops.get(h..h + 3) == Some(&head[..])
                && self.ops.get(h + 4..h + 4 + shape.len()) == Some(&shape[..])
        });
        match self.run {
            Some(h) if joins => {
                self.ops[h + 3] += 1;
                if let Some(m) = fx.runs.last_mut() {
                    *m += 1;
                }
            }
            _ => {
                self.run = Some(self.ops.len());
                self.ops.extend(head);
                self.ops.push(1);
                self.ops.extend_from_slice(&shape);
                fx.runs.push(1);
            }
        }
        self.ops.push(int(a.tokens));
        self.shape = shape;
    }

    /// A release: summed with the other releases of the call (they all happened before it, so
    /// their order does not matter), except one whose slots a fold of this same call puts on
    /// Redis, which must come after it.
    fn release(&mut self, r: &'a Release, folded: &FastSet<u64>, fx: &mut Effects<'a>) {
        // whether its slots are on Redis, and whether only through a fold of this call
        let (slots, pending) = match r.local {
            None => (true, false),
            Some(id) if folded.contains(&id) => {
                fx.released_ids.push(id);
                (true, false)
            }
            Some(id) if fx.folded_ids.contains(&id) => {
                fx.released_ids.push(id);
                (true, true)
            }
            Some(_) => (false, false),
        };
        let at = self.ops.len();
        if pending {
            self.run = None;
            self.ops.extend([2, 0]);
        }
        for o in &r.on {
            let parallel = slots && o.parallel;
            let window = o.token_window.filter(|_| r.delta != 0);
            if !parallel && window.is_none() {
                continue;
            }
            let k = self.key(&o.base);
            let (delta, freed) = (
                if window.is_some() { r.delta } else { 0 },
                i64::from(parallel),
            );
            let start = window.map_or(-1, int);
            if pending {
                self.ops.extend([k, start, delta, freed]);
                self.ops[at + 1] += 1;
            } else if let Some(i) = self.released_ix.get(&(k, start)) {
                let e = &mut self.released[*i];
                e.2 += delta;
                e.3 += freed;
            } else {
                self.released_ix.insert((k, start), self.released.len());
                self.released.push((k, start, delta, freed));
            }
            if parallel {
                fx.touched.push(&o.base);
                if pending {
                    fx.freed_if_ok.push(&o.base);
                } else {
                    fx.freed.push(&o.base);
                }
            }
        }
        if pending && self.ops[at + 1] == 0 {
            self.ops.truncate(at);
        }
    }

    fn fold(&mut self, f: &'a Fold, folded: &FastSet<u64>, fx: &mut Effects<'a>) {
        self.run = None;
        self.ops.extend([3, f.items.len() as i64]);
        for item in &f.items {
            let k = self.key(&item.base);
            // slots an earlier fold put on Redis are there already
            let mut fresh = 0;
            for (id, _) in &item.slots {
                if !folded.contains(id) {
                    fresh += 1;
                    fx.folded_ids.insert(*id);
                }
            }
            if fresh > 0 {
                fx.touched.push(&item.base);
                fx.folded.push((&item.base, fresh));
            }
            let age = item.window.map_or(-1, |(_, age)| int(age));
            self.ops.extend([
                k,
                age,
                int(item.window_len),
                int(item.requests),
                int(item.tokens),
                int(fresh),
            ]);
        }
    }
}

pub fn as_u64(v: f64) -> u64 {
    // (`as` saturates: negative and NaN are 0)
    v as u64
}

/// The answer of one admission op, handed out to its admissions one after the other.
pub struct Run<'v> {
    /// Per descriptor: (window start, requests, tokens) as the next admission finds them.
    counters: Vec<(u64, u64, u64)>,
    /// Per descriptor: 0 when it counts no requests or tokens, else how many descriptors of
    /// the admission up to it (`.0`) and in all (`.1`) count on its key: what the script adds
    /// there per admission (the same key twice is counted twice).
    shares: Vec<(u64, u64)>,
    /// The items left, one per admission (0 = admitted, else the seven values of its
    /// refusal), when one was refused.
    items: Option<&'v [f64]>,
}

/// The values of a refusal item: {1, i, kind, current, limit, start, saturation}.
const REFUSAL: usize = 7;

impl<'v> Run<'v> {
    /// The answer `v` of an admission op of `m` admissions over `wants`.
    pub fn new(v: &'v [f64], wants: &[Want], m: usize) -> Result<Self, String> {
        let n = wants.len();
        if v.len() < 3 * n {
            return Err(SHAPE.to_string());
        }
        let (head, rest) = v.split_at(3 * n);
        let items = if rest.is_empty() {
            None
        } else {
            // exactly m items
            let mut left = rest;
            for _ in 0..m {
                left = left.get(item_len(left)?..).ok_or(SHAPE)?;
            }
            if !left.is_empty() {
                return Err(SHAPE.to_string());
            }
            Some(rest)
        };
        let counters = head
            .chunks_exact(3)
            .map(|c| (as_u64(c[0]), as_u64(c[1]), as_u64(c[2])))
            .collect();
        let counts = |w: &Want| w.rpm >= 0 || w.tpm >= 0;
        let shares = wants
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if !counts(w) {
                    return (0, 0);
                }
                let same = |o: &&Want| counts(o) && o.base == w.base;
                let upto = wants[..=i].iter().filter(same).count() as u64;
                (upto, wants.iter().filter(same).count() as u64)
            })
            .collect();
        Ok(Self {
            counters,
            shares,
            items,
        })
    }

    /// The next admission's outcome (`wants`, `tokens`, `count` as sent): its counters per
    /// descriptor, or its first refusal.
    pub fn next(
        &mut self,
        wants: &[Want],
        tokens: u64,
        count: u64,
    ) -> Result<Result<Vec<Counted>, Refused>, String> {
        if let Some(items) = self.items {
            let len = item_len(items)?;
            let (item, rest) = items.split_at(len);
            self.items = Some(rest);
            if len == REFUSAL {
                return Ok(Err(refusal(item)));
            }
        }
        if wants.len() != self.counters.len() {
            return Err(SHAPE.to_string());
        }
        let counted = self
            .counters
            .iter_mut()
            .zip(&self.shares)
            .map(|(c, &(upto, all))| {
                if all == 0 {
                    return Counted::default();
                }
                let seen = Counted {
                    start: Some(c.0),
                    requests: c.1 + upto * count,
                    tokens: c.2 + upto * tokens,
                };
                c.1 += all * count;
                c.2 += all * tokens;
                seen
            })
            .collect();
        Ok(Ok(counted))
    }
}

/// The length of the item that starts `items`: 1 (0, admitted) or a refusal's seven values
/// (starting with 1).
fn item_len(items: &[f64]) -> Result<usize, String> {
    match items.first() {
        Some(v) if *v == 0.0 => Ok(1),
        Some(v) if *v == 1.0 && items.len() >= REFUSAL => Ok(REFUSAL),
        _ => Err(SHAPE.to_string()),
    }
}

const SHAPE: &str = "rate limit script returned an unexpected shape";

/// A refusal's seven values: {1, i, kind, current, limit, start, saturation}.
fn refusal(v: &[f64]) -> Refused {
    let what = match as_u64(v[2]) {
        1 => Refusal::Requests,
        2 => Refusal::Tokens,
        _ => Refusal::Parallel,
    };
    Refused {
        index: (as_u64(v[1]) as usize).saturating_sub(1),
        what,
        current: as_u64(v[3]),
        limit: as_u64(v[4]),
        start: as_u64(v[5]),
        saturation: if v[6].is_finite() { v[6] } else { 0.0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::HeldOn;
    use tokio::sync::oneshot;

    fn admit_with(ds: &[Descriptor], tokens: u64, count: u64) -> Op {
        Op::Admit(Admit {
            wants: ds.iter().map(|d| Want::of(d, 60_000)).collect(),
            tokens,
            count,
            reply: oneshot::channel().0,
        })
    }

    fn admit(ds: &[Descriptor]) -> Op {
        admit_with(ds, 10, 1)
    }

    fn release(base: &str, window: Option<u64>, delta: i64) -> Op {
        Op::Release(Release {
            on: vec![HeldOn {
                base: base.to_string(),
                token_window: window,
                parallel: true,
            }],
            delta,
            local: None,
            failures: 0,
        })
    }

    /// The command's words after the script's hash, the packed numbers as words too.
    fn words(cmd: &redis::Cmd) -> Vec<String> {
        let args: Vec<&[u8]> = cmd
            .args_iter()
            .skip(2)
            .map(|a| match a {
                redis::Arg::Simple(b) => b,
                _ => &b""[..],
            })
            .collect();
        let (last, head) = args.split_last().unwrap();
        let mut out: Vec<String> = head
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        out.extend(numbers(last).unwrap().into_iter().map(|n| n.to_string()));
        out
    }

    #[test]
    fn each_descriptor_once_per_call() {
        let key = Descriptor::plain("api_key", "k".into(), Some(10), Some(100), Some(2));
        let team = Descriptor::plain("team", "t".into(), Some(20), None, None);
        let batch = vec![
            admit(&[key.clone(), team.clone()]),
            release(&key.redis_base(), Some(5), -3),
            admit(&[key.clone(), team]),
            release(&key.redis_base(), Some(5), -4),
            release("tianji:{rl}:v2:user:u", None, 0),
        ];
        let mut fx = Effects::default();
        let folded = FastSet::default();
        let cmd = build("sha", 30_000, "id", &[], &batch, &folded, &mut fx);
        let w = words(&cmd);
        let expected = [
            // keys: each descriptor once
            "3",
            "tianji:{rl}:v2:api_key:k",
            "tianji:{rl}:v2:team:t",
            "tianji:{rl}:v2:user:u",
            // lease, instance, descriptors (each limit set once)
            "30000",
            "id",
            "2",
            "1",
            "10",
            "100",
            "2",
            "60000",
            "-1",
            "2",
            "20",
            "-1",
            "-1",
            "60000",
            "-1",
            // releases first, summed per descriptor and window
            "2",
            "2",
            "1",
            "5",
            "-7",
            "2",
            "3",
            "-1",
            "0",
            "1",
            // then the two admissions (the same descriptors, one request each): one op, their
            // tokens listed
            "1",
            "2",
            "1",
            "2",
            "1",
            "2",
            "10",
            "10",
        ];
        assert_eq!(w, expected);
        assert_eq!(fx.freed.len(), 3);
        assert_eq!(fx.touched.len(), 5);
        assert_eq!(fx.runs, [2]);
    }

    /// Consecutive admissions share an op only with the same descriptors and count, and never
    /// across a fold.
    #[test]
    fn admissions_share_an_op_while_alike() {
        let key = Descriptor::plain("api_key", "k".into(), Some(10), None, None);
        let team = Descriptor::plain("team", "t".into(), Some(20), None, None);
        let fold = Op::Fold(Fold {
            items: Vec::new(),
            reply: oneshot::channel().0,
        });
        let one = std::slice::from_ref(&key);
        let batch = vec![
            admit(one),
            admit_with(one, 7, 1),
            admit(&[key.clone(), team]),
            admit(one),
            admit_with(one, 5, 3),
            fold,
            admit(one),
        ];
        let mut fx = Effects::default();
        let folded = FastSet::default();
        let cmd = build("sha", 30_000, "id", &[], &batch, &folded, &mut fx);
        let w = words(&cmd);
        let ops: Vec<&str> = w.iter().skip(3 + 3 + 12).map(String::as_str).collect();
        assert_eq!(
            ops,
            [
                "1", "1", "1", "2", "1", "10", "7", // two admissions on the key
                "1", "2", "1", "1", "1", "2", "10", // key and team
                "1", "1", "1", "1", "1", "10", // the key again
                "1", "1", "3", "1", "1", "5", // three requests at once
                "3", "0", // a fold
                "1", "1", "1", "1", "1", "10",
            ]
        );
        assert_eq!(fx.runs, [2, 1, 1, 1, 1]);
    }

    #[test]
    fn renewals_come_first_and_gates_name_their_source() {
        let mut sat = Descriptor::plain("model_saturation_check", "m".into(), Some(10), None, None);
        sat.window = Some(1000);
        let mut prio = Descriptor::plain("priority_model", "m:p".into(), Some(5), None, None);
        prio.gate = Some((0.5, 0));
        let batch = vec![admit(&[sat, prio])];
        let renewals = vec![("tianji:{rl}:v2:api_key:k".to_string(), 4)];
        let mut fx = Effects::default();
        let cmd = build(
            "sha",
            30_000,
            "id",
            &renewals,
            &batch,
            &FastSet::default(),
            &mut fx,
        );
        let w = words(&cmd);
        let ops: Vec<&str> = w.iter().skip(4 + 3 + 12).map(String::as_str).collect();
        assert_eq!(
            &w[..4],
            [
                "3",
                "tianji:{rl}:v2:api_key:k",
                "tianji:{rl}:v2:model_saturation_check:m",
                "tianji:{rl}:v2:priority_model:m:p"
            ]
        );
        // the gate's threshold with the descriptor, its source (1-based) with the admission
        assert_eq!(&w[7..13], ["2", "10", "-1", "-1", "1000", "-1"]);
        assert_eq!(&w[13..19], ["3", "5", "-1", "-1", "60000", "0.5"]);
        assert_eq!(
            ops,
            [
                "4", "1", "1", "4", "5", "2", "1", "1", "1", "0", "2", "1", "10"
            ]
        );
    }

    /// The counters each admission of an op saw, worked out from those the first one found.
    #[test]
    fn answers_parse() {
        let d = Descriptor::plain("api_key", "k".into(), Some(10), Some(100), Some(2));
        let p = Descriptor::plain("global", "g".into(), None, None, Some(5));
        let wants = [Want::of(&d, 60_000), Want::of(&p, 60_000)];
        let seen = |c: &[Counted]| {
            c.iter()
                .map(|c| (c.start, c.requests, c.tokens))
                .collect::<Vec<_>>()
        };
        // all admitted: no items
        let v = [5.0, 3.0, 20.0, 7.0, 0.0, 0.0];
        let mut run = Run::new(&v, &wants, 2).unwrap();
        let c = run.next(&wants, 10, 1).unwrap().unwrap();
        assert_eq!(seen(&c), [(Some(5), 4, 30), (None, 0, 0)]);
        let c = run.next(&wants, 7, 2).unwrap().unwrap();
        assert_eq!(seen(&c), [(Some(5), 6, 37), (None, 0, 0)]);
        // one refused: an item per admission (a refusal's seven values in place)
        let v = [
            5.0, 3.0, 20.0, 7.0, 0.0, 0.0, // counters
            1.0, 2.0, 3.0, 5.0, 5.0, 9.0, 0.5, // refused
            0.0, // admitted
        ];
        let mut run = Run::new(&v, &wants, 2).unwrap();
        let r = run.next(&wants, 10, 1).unwrap().unwrap_err();
        assert_eq!(
            (r.index, r.what, r.current, r.limit, r.start),
            (1, Refusal::Parallel, 5, 5, 9)
        );
        assert_eq!(r.saturation, 0.5);
        // the refused one counted nothing
        let c = run.next(&wants, 10, 1).unwrap().unwrap();
        assert_eq!(seen(&c), [(Some(5), 4, 30), (None, 0, 0)]);
        assert!(run.next(&wants, 10, 1).is_err());
        // the same key twice counts twice, the first after its own share
        let twice = [Want::of(&d, 60_000), Want::of(&d, 60_000)];
        let v = [5.0, 0.0, 0.0, 5.0, 0.0, 0.0];
        let mut run = Run::new(&v, &twice, 2).unwrap();
        let c = run.next(&twice, 10, 1).unwrap().unwrap();
        assert_eq!(seen(&c), [(Some(5), 1, 10), (Some(5), 2, 20)]);
        let c = run.next(&twice, 10, 1).unwrap().unwrap();
        assert_eq!(seen(&c), [(Some(5), 3, 30), (Some(5), 4, 40)]);
        // shapes that do not fit
        assert!(Run::new(&v[..5], &twice, 2).is_err());
        assert!(Run::new(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], &twice, 2).is_err());
        assert!(Run::new(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0], &twice, 1).is_err());
    }

    /// The answer's entries: each its length, then its values; bytes that are not doubles,
    /// or a length past the end, do not parse.
    #[test]
    fn entries_parse() {
        let bytes: Vec<u8> = [2.0f64, 7.0, 8.0, 0.0, 1.0, 9.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let values = numbers(&bytes).unwrap();
        let e = entries(&values).unwrap();
        assert_eq!(e, [&[7.0, 8.0][..], &[][..], &[9.0][..]]);
        assert!(numbers(&bytes[..7]).is_err());
        assert!(entries(&[3.0, 1.0]).is_err());
        assert!(entries(&[]).unwrap().is_empty());
    }
}
