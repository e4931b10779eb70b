//! The limiter on Redis: one courier task sends `lua/batch.lua` with everything that queued
//! up while its previous call was in flight (admissions of new requests, releases of finished
//! ones). An idle gateway sends each admission alone at once; a busy one shares each Redis
//! round trip among many requests. Every admission still takes exactly one round trip before
//! its upstream call, and releases never delay a request.

use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

use super::local::FoldItem;
use super::{Counted, Descriptor, HeldOn, Refusal, Refused};

const SCRIPT: &str = include_str!("lua/batch.lua");
/// Longest wait for one call (admissions give up earlier and count locally).
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// Most operations in one call.
const MAX_BATCH: usize = 128;

/// An admission's outcome: counters per descriptor, or the first refusal.
pub type Admission = Result<Result<Vec<Counted>, Refused>, String>;

struct Admit {
    ds: Vec<Descriptor>,
    tokens: u64,
    count: u64,
    slot: u64,
    reply: oneshot::Sender<Admission>,
}

struct Release {
    on: Vec<HeldOn>,
    slot: u64,
    delta: i64,
    /// Calls that failed with it.
    failures: u32,
}

/// A release whose call failed is retried with the next calls (at least every second) this
/// many times; after that its slots expire on their own (slot ttl).
const RELEASE_ATTEMPTS: u32 = 120;

/// Counts made in memory while Redis failed, to add to Redis; answered with the window start
/// each item's counts went to (0 = none). Never retried by the courier (the caller takes a new
/// snapshot).
struct Fold {
    items: Vec<FoldItem>,
    reply: oneshot::Sender<Result<Vec<u64>, String>>,
}

enum Op {
    Admit(Admit),
    Release(Release),
    Fold(Fold),
    /// Wake-up to retry failed releases.
    Nothing,
}

pub struct RedisLimits {
    tx: mpsc::UnboundedSender<Op>,
}

fn arg(v: Option<u64>) -> i64 {
    v.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX))
}

fn as_u64(v: &redis::Value) -> u64 {
    match v {
        redis::Value::Int(n) => u64::try_from(*n).unwrap_or(0),
        _ => 0,
    }
}

impl RedisLimits {
    /// Start the courier (needs a Tokio runtime).
    pub fn new(conn: ConnectionManager, window: u64, slot_ttl: u64) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(courier(conn, rx, window, slot_ttl));
        Self { tx }
    }

    /// Check and count one request (see `lua/batch.lua`).
    pub async fn acquire(
        &self,
        ds: Vec<Descriptor>,
        slot: u64,
        tokens: u64,
        count: u64,
    ) -> Admission {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Op::Admit(Admit {
                ds,
                tokens,
                count,
                slot,
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

    /// Free the slots and correct the token reservation of a finished request (queued).
    pub fn release(&self, on: Vec<HeldOn>, slot: u64, delta: i64) {
        let _ = self.tx.send(Op::Release(Release {
            on,
            slot,
            delta,
            failures: 0,
        }));
    }
}

async fn courier(
    conn: ConnectionManager,
    mut rx: mpsc::UnboundedReceiver<Op>,
    window: u64,
    slot_ttl: u64,
) {
    let script = redis::Script::new(SCRIPT);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut retry: Vec<Op> = Vec::new();
    loop {
        let first = if retry.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout(std::time::Duration::from_secs(1), rx.recv()).await {
                Ok(op) => op,
                Err(_) => Some(Op::Nothing),
            }
        };
        let Some(first) = first else {
            return; // the limiter is gone
        };
        batch.append(&mut retry);
        if !matches!(first, Op::Nothing) {
            batch.push(first);
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        run(&script, &mut conn.clone(), &mut batch, window, slot_ttl).await;
        // what is left: releases of a failed call, to try again
        retry.extend(batch.drain(..).filter_map(|op| match op {
            Op::Release(mut r) if r.failures < RELEASE_ATTEMPTS => {
                r.failures += 1;
                Some(Op::Release(r))
            }
            _ => None,
        }));
    }
}

async fn run(
    script: &redis::Script,
    conn: &mut ConnectionManager,
    batch: &mut Vec<Op>,
    window: u64,
    slot_ttl: u64,
) {
    if batch.is_empty() {
        return;
    }
    let mut inv = script.prepare_invoke();
    inv.arg(window).arg(slot_ttl);
    for op in batch.iter() {
        add_args(&mut inv, op);
    }
    let result: Result<Vec<redis::Value>, String> =
        match tokio::time::timeout(CALL_TIMEOUT, inv.invoke_async(conn)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("timed out".to_string()),
        };
    let failed = result.is_err();
    // admissions and folds are answered either way; releases stay in `batch` only when the
    // call failed
    let mut answered = Vec::new();
    let mut kept = Vec::new();
    for op in batch.drain(..) {
        match op {
            Op::Admit(_) | Op::Fold(_) => answered.push(op),
            Op::Release(r) if failed => kept.push(Op::Release(r)),
            _ => {}
        }
    }
    batch.extend(kept);
    answer(result, answered);
}

/// Send each admission and fold its part of the script's answer (or the call's error).
fn answer(result: Result<Vec<redis::Value>, String>, answered: Vec<Op>) {
    let shape = || "rate limit script returned an unexpected shape".to_string();
    match result {
        Ok(results) => {
            let mut results = results.into_iter();
            for op in answered {
                let next = results.next();
                match op {
                    Op::Admit(a) => {
                        let out = match next {
                            Some(redis::Value::Array(v)) => parse(&v, &a.ds),
                            _ => Err(shape()),
                        };
                        let _ = a.reply.send(out);
                    }
                    Op::Fold(f) => {
                        let out = match next {
                            Some(redis::Value::Array(v)) if v.len() == f.items.len() => {
                                Ok(v.iter().map(as_u64).collect())
                            }
                            // Lua turns an empty table into nil
                            None | Some(redis::Value::Nil) if f.items.is_empty() => Ok(Vec::new()),
                            _ => Err(shape()),
                        };
                        let _ = f.reply.send(out);
                    }
                    _ => {}
                }
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, "rate limit call failed");
            for op in answered {
                match op {
                    Op::Admit(a) => {
                        let _ = a.reply.send(Err(e.clone()));
                    }
                    Op::Fold(f) => {
                        let _ = f.reply.send(Err(e.clone()));
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The script arguments of one operation.
fn add_args(inv: &mut redis::ScriptInvocation<'_>, op: &Op) {
    match op {
        Op::Admit(a) => {
            inv.arg(1)
                .arg(a.ds.len())
                .arg(a.slot)
                .arg(a.tokens)
                .arg(a.count);
            for d in &a.ds {
                keys(inv, &d.redis_base());
                let (gate, source) = d.gate.map_or((-1.0, 0), |(g, i)| (g, i + 1));
                inv.arg(arg(d.rpm))
                    .arg(arg(d.tpm))
                    .arg(arg(d.parallel))
                    .arg(gate)
                    .arg(source)
                    .arg(arg(d.window));
            }
        }
        Op::Release(r) => {
            inv.arg(2).arg(r.on.len()).arg(r.slot).arg(r.delta);
            for o in &r.on {
                keys(inv, &o.base);
                inv.arg(
                    o.token_window
                        .map_or(-1, |s| i64::try_from(s).unwrap_or(-1)),
                )
                .arg(u8::from(o.parallel));
            }
        }
        Op::Fold(f) => {
            inv.arg(3).arg(f.items.len());
            for item in &f.items {
                keys(inv, &item.base);
                let age = item
                    .window
                    .map_or(-1, |(_, age)| i64::try_from(age).unwrap_or(i64::MAX));
                inv.arg(age)
                    .arg(item.window_len)
                    .arg(item.requests)
                    .arg(item.tokens)
                    .arg(item.slots.len());
                for (id, age) in &item.slots {
                    inv.arg(*id).arg(*age);
                }
            }
        }
        Op::Nothing => {}
    }
}

fn keys(inv: &mut redis::ScriptInvocation<'_>, base: &str) {
    for suffix in [":window", ":requests", ":tokens", ":parallel"] {
        let mut k = String::with_capacity(base.len() + suffix.len());
        k.push_str(base);
        k.push_str(suffix);
        inv.key(k);
    }
}

fn parse(v: &[redis::Value], ds: &[Descriptor]) -> Admission {
    let bad = || Err("rate limit script returned an unexpected shape".to_string());
    let Some(status) = v.first().map(as_u64) else {
        return bad();
    };
    if status == 0 && v.len() == 2 + 4 * ds.len() {
        let counted = v[2..]
            .chunks_exact(4)
            .zip(ds)
            .map(|(c, d)| Counted {
                start: (d.rpm.is_some() || d.tpm.is_some()).then(|| as_u64(&c[0])),
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
