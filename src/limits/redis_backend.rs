//! The limiter on Redis: one courier task sends `lua/batch.lua` with everything that queued
//! up while its previous call was in flight (admissions of new requests, releases of finished
//! ones). An idle gateway sends each admission alone at once; a busy one shares each Redis
//! round trip among many requests. Every admission still takes exactly one round trip before
//! its upstream call, and releases never delay a request.

use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

use super::{Counted, Descriptor, HeldOn, Refusal, Refused};

const SCRIPT: &str = include_str!("lua/batch.lua");
/// Most operations in one call.
const MAX_BATCH: usize = 128;

/// An admission's outcome: counters and the Redis time (ms), or the first refusal.
pub type Admission = Result<Result<(Vec<Counted>, u64), Refused>, String>;

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
}

enum Op {
    Admit(Admit),
    Release(Release),
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

    /// Free the slots and correct the token reservation of a finished request (queued).
    pub fn release(&self, on: Vec<HeldOn>, slot: u64, delta: i64) {
        let _ = self.tx.send(Op::Release(Release { on, slot, delta }));
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
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        run(&script, &mut conn.clone(), &mut batch, window, slot_ttl).await;
        batch.clear();
    }
}

async fn run(
    script: &redis::Script,
    conn: &mut ConnectionManager,
    batch: &mut Vec<Op>,
    window: u64,
    slot_ttl: u64,
) {
    let mut inv = script.prepare_invoke();
    inv.arg(window).arg(slot_ttl);
    for op in batch.iter() {
        match op {
            Op::Admit(a) => {
                inv.arg(1)
                    .arg(a.ds.len())
                    .arg(a.slot)
                    .arg(a.tokens)
                    .arg(a.count);
                for d in &a.ds {
                    keys(&mut inv, &d.redis_base());
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
                    keys(&mut inv, &o.base);
                    inv.arg(
                        o.token_window
                            .map_or(-1, |s| i64::try_from(s).unwrap_or(-1)),
                    )
                    .arg(u8::from(o.parallel));
                }
            }
        }
    }
    let result: Result<Vec<redis::Value>, redis::RedisError> = inv.invoke_async(conn).await;
    let admits = batch.drain(..).filter_map(|op| match op {
        Op::Admit(a) => Some(a),
        Op::Release(_) => None,
    });
    match result {
        Ok(results) => {
            let mut results = results.into_iter();
            for a in admits {
                let out = match results.next() {
                    Some(redis::Value::Array(v)) => parse(&v, &a.ds),
                    _ => Err("rate limit script returned an unexpected shape".to_string()),
                };
                let _ = a.reply.send(out);
            }
        }
        Err(e) => {
            // The slots of failed releases expire after the slot ttl.
            tracing::debug!(error = %e, "rate limit call failed");
            for a in admits {
                let _ = a.reply.send(Err(e.to_string()));
            }
        }
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
        let now = as_u64(&v[1]);
        let counted = v[2..]
            .chunks_exact(4)
            .zip(ds)
            .map(|(c, d)| Counted {
                start: (d.rpm.is_some() || d.tpm.is_some()).then(|| as_u64(&c[0])),
                requests: as_u64(&c[1]),
                tokens: as_u64(&c[2]),
                in_flight: as_u64(&c[3]),
            })
            .collect();
        return Ok(Ok((counted, now)));
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
