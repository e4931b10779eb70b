//! One `lua/batch.lua` call: its arguments and the parsing of its answers. Each distinct
//! descriptor of a batch is named once (KEYS, one hash each) and its limits sent once;
//! operations refer to them by index. Everything is written into the command's one buffer (no
//! string per argument or key).

use std::collections::{HashMap, HashSet};

use foldhash::fast::RandomState;

use super::redis_backend::{Admit, Effects, Fold, Op, Release};
use super::{Counted, Descriptor, Refusal, Refused};

pub const SCRIPT: &str = include_str!("lua/batch.lua");

/// One descriptor of an admission, as the script needs it (limits: -1 = none).
pub struct Want {
    /// The hash's key (`Descriptor::redis_base`).
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
    /// Keys an operation other than a release reads in full (by index - 1).
    loaded: Vec<bool>,
    /// The other operations, in order.
    ops: Vec<i64>,
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
    folded: &HashSet<u64>,
    fx: &mut Effects<'a>,
) -> redis::Cmd {
    let mut c = Call {
        keys: Vec::new(),
        key_ix: HashMap::default(),
        descs: Vec::new(),
        desc_ix: HashMap::default(),
        released: Vec::new(),
        released_ix: HashMap::default(),
        loaded: Vec::new(),
        ops: Vec::with_capacity(8 * batch.len()),
    };
    let mut renewed = Vec::with_capacity(2 * renewals.len());
    for (base, n) in renewals {
        let k = c.loaded_key(base);
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
    let nums = 6 * c.descs.len() + renewed.len() + 4 * c.released.len() + c.ops.len() + 4;
    let mut cmd = redis::Cmd::with_capacity(6 + c.keys.len() + nums, 64 + key_bytes + 8 * nums);
    cmd.arg("EVALSHA").arg(sha).arg(c.keys.len());
    for k in &c.keys {
        cmd.arg(*k);
    }
    cmd.arg(lease).arg(id).arg(c.descs.len());
    for (k, rpm, tpm, par, window, gate) in &c.descs {
        cmd.arg(*k)
            .arg(*rpm)
            .arg(*tpm)
            .arg(*par)
            .arg(*window)
            .arg(f64::from_bits(*gate));
    }
    // renewals first (counts as they were before this call), then the releases, then the rest
    if !renewed.is_empty() {
        cmd.arg(4).arg(renewals.len());
        for n in &renewed {
            cmd.arg(*n);
        }
    }
    // releases on hashes the call reads anyway change the loaded state; the others are
    // read and written alone (op 6: two fields read, no lease, no clean-up)
    let loaded = |k: &i64| c.loaded[(*k - 1) as usize];
    for (op, on_loaded) in [(2, true), (6, false)] {
        let n = c
            .released
            .iter()
            .filter(|r| loaded(&r.0) == on_loaded)
            .count();
        if n > 0 {
            cmd.arg(op).arg(n);
            for (k, start, delta, freed) in c.released.iter().filter(|r| loaded(&r.0) == on_loaded)
            {
                cmd.arg(*k).arg(*start).arg(*delta).arg(*freed);
            }
        }
    }
    for n in &c.ops {
        cmd.arg(*n);
    }
    cmd
}

impl<'a> Call<'a> {
    /// The index (in KEYS, from 1) of the hash at `base`.
    fn key(&mut self, base: &'a str) -> i64 {
        if let Some(i) = self.key_ix.get(base) {
            return *i;
        }
        self.keys.push(base);
        self.loaded.push(false);
        let i = self.keys.len() as i64;
        self.key_ix.insert(base, i);
        i
    }

    /// [`Call::key`] of a hash the script reads in full.
    fn loaded_key(&mut self, base: &'a str) -> i64 {
        let k = self.key(base);
        self.loaded[(k - 1) as usize] = true;
        k
    }

    /// The index (from 1) of `w`'s limits in the descriptor table.
    fn desc(&mut self, w: &'a Want) -> i64 {
        let gate = w.gate.map_or(-1.0, |(g, _)| g);
        let limits = (
            self.loaded_key(&w.base),
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

    fn admit(&mut self, a: &'a Admit, fx: &mut Effects<'a>) {
        let gated = a.wants.iter().any(|w| w.gate.is_some());
        self.ops.extend([
            if gated { 5 } else { 1 },
            a.wants.len() as i64,
            int(a.tokens),
            int(a.count),
        ]);
        for w in &a.wants {
            let d = self.desc(w);
            self.ops.push(d);
            if gated {
                self.ops.push(w.gate.map_or(0, |(_, j)| j as i64 + 1));
            }
            if w.parallel >= 0 {
                fx.touched.push(&w.base);
            }
        }
    }

    /// A release: summed with the other releases of the call (they all happened before it, so
    /// their order does not matter), except one whose slots a fold of this same call puts on
    /// Redis, which must come after it.
    fn release(&mut self, r: &'a Release, folded: &HashSet<u64>, fx: &mut Effects<'a>) {
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
            self.ops.extend([2, 0]);
        }
        for o in &r.on {
            let parallel = slots && o.parallel;
            let window = o.token_window.filter(|_| r.delta != 0);
            if !parallel && window.is_none() {
                continue;
            }
            let k = if pending {
                self.loaded_key(&o.base)
            } else {
                self.key(&o.base)
            };
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

    fn fold(&mut self, f: &'a Fold, folded: &HashSet<u64>, fx: &mut Effects<'a>) {
        self.ops.extend([3, f.items.len() as i64]);
        for item in &f.items {
            let k = self.loaded_key(&item.base);
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

pub fn as_u64(v: &redis::Value) -> u64 {
    match v {
        redis::Value::Int(n) => u64::try_from(*n).unwrap_or(0),
        _ => 0,
    }
}

/// An admission's answer: its counters per descriptor, or its first refusal.
pub fn parse(v: &[redis::Value], wants: &[Want]) -> Result<Result<Vec<Counted>, Refused>, String> {
    let bad = || Err("rate limit script returned an unexpected shape".to_string());
    let Some(status) = v.first().map(as_u64) else {
        return bad();
    };
    if status == 0 && v.len() == 2 + 4 * wants.len() {
        let counted = v[2..]
            .chunks_exact(4)
            .zip(wants)
            .map(|(c, w)| Counted {
                start: (w.rpm >= 0 || w.tpm >= 0).then(|| as_u64(&c[0])),
                requests: as_u64(&c[1]),
                tokens: as_u64(&c[2]),
            })
            .collect();
        return Ok(Ok(counted));
    }
    if status == 1 && v.len() == 7 {
        let what = match as_u64(&v[2]) {
            1 => Refusal::Requests,
            2 => Refusal::Tokens,
            _ => Refusal::Parallel,
        };
        let saturation = match &v[6] {
            redis::Value::BulkString(b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0),
            _ => 0.0,
        };
        return Ok(Err(Refused {
            index: (as_u64(&v[1]) as usize).saturating_sub(1),
            what,
            current: as_u64(&v[3]),
            limit: as_u64(&v[4]),
            start: as_u64(&v[5]),
            saturation,
        }));
    }
    bad()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::HeldOn;
    use tokio::sync::oneshot;

    fn admit(ds: &[Descriptor]) -> Op {
        Op::Admit(Admit {
            wants: ds.iter().map(|d| Want::of(d, 60_000)).collect(),
            tokens: 10,
            count: 1,
            reply: oneshot::channel().0,
        })
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

    /// The command's words after the script's hash.
    fn words(cmd: &redis::Cmd) -> Vec<String> {
        cmd.args_iter()
            .skip(2)
            .map(|a| match a {
                redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                _ => "cursor".into(),
            })
            .collect()
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
            release("tianji:{rl}:user:u", None, 0),
        ];
        let mut fx = Effects::default();
        let cmd = build("sha", 30_000, "id", &[], &batch, &HashSet::new(), &mut fx);
        let w = words(&cmd);
        let expected = [
            // keys: each hash once
            "3",
            "tianji:{rl}:api_key:k",
            "tianji:{rl}:team:t",
            "tianji:{rl}:user:u",
            // lease, instance, descriptors (each limit set once)
            "30000",
            "id",
            "2",
            "1",
            "10",
            "100",
            "2",
            "60000",
            "-1.0",
            "2",
            "20",
            "-1",
            "-1",
            "60000",
            "-1.0",
            // releases first, summed per hash and window: on a hash the call loads...
            "2",
            "1",
            "1",
            "5",
            "-7",
            "2",
            // ... and alone (read and written field by field)
            "6",
            "1",
            "3",
            "-1",
            "0",
            "1",
            // then the admissions in order
            "1",
            "2",
            "10",
            "1",
            "1",
            "2",
            "1",
            "2",
            "10",
            "1",
            "1",
            "2",
        ];
        assert_eq!(w, expected);
        assert_eq!(fx.freed.len(), 3);
        assert_eq!(fx.touched.len(), 5);
    }

    #[test]
    fn renewals_come_first_and_gates_name_their_source() {
        let mut sat = Descriptor::plain("model_saturation_check", "m".into(), Some(10), None, None);
        sat.window = Some(1000);
        let mut prio = Descriptor::plain("priority_model", "m:p".into(), Some(5), None, None);
        prio.gate = Some((0.5, 0));
        let batch = vec![admit(&[sat, prio])];
        let renewals = vec![("tianji:{rl}:api_key:k".to_string(), 4)];
        let mut fx = Effects::default();
        let cmd = build(
            "sha",
            30_000,
            "id",
            &renewals,
            &batch,
            &HashSet::new(),
            &mut fx,
        );
        let w = words(&cmd);
        let ops: Vec<&str> = w.iter().skip(4 + 3 + 12).map(String::as_str).collect();
        assert_eq!(
            &w[..4],
            [
                "3",
                "tianji:{rl}:api_key:k",
                "tianji:{rl}:model_saturation_check:m",
                "tianji:{rl}:priority_model:m:p"
            ]
        );
        // the gate's threshold with the descriptor, its source (1-based) with the admission
        assert_eq!(&w[7..13], ["2", "10", "-1", "-1", "1000", "-1.0"]);
        assert_eq!(&w[13..19], ["3", "5", "-1", "-1", "60000", "0.5"]);
        assert_eq!(
            ops,
            ["4", "1", "1", "4", "5", "2", "10", "1", "1", "0", "2", "1"]
        );
    }

    #[test]
    fn answers_parse() {
        use redis::Value::{Array, BulkString, Int};
        let d = Descriptor::plain("api_key", "k".into(), Some(10), None, Some(2));
        let wants = [Want::of(&d, 60_000)];
        let ok = parse(&[Int(0), Int(7), Int(5), Int(3), Int(0), Int(1)], &wants).unwrap();
        let c = ok.unwrap();
        assert_eq!((c[0].start, c[0].requests), (Some(5), 3));
        let refused = [
            Int(1),
            Int(1),
            Int(3),
            Int(2),
            Int(2),
            Int(9),
            BulkString(b"0.5".to_vec()),
        ];
        let r = parse(&refused, &wants).unwrap().unwrap_err();
        assert_eq!(
            (r.index, r.what, r.current, r.limit, r.start),
            (0, Refusal::Parallel, 2, 2, 9)
        );
        assert_eq!(r.saturation, 0.5);
        assert!(parse(&[Array(vec![])], &wants).is_err());
    }
}
