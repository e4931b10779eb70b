//! The limiter on Redis: `lua/acquire.lua` (one EVALSHA per admitted request) and
//! `lua/release.lua` (after the request, only when it holds a slot or a token reservation).

use redis::aio::ConnectionManager;

use super::{Counted, Descriptor, HeldOn, Refusal, Refused};

const ACQUIRE: &str = include_str!("lua/acquire.lua");
const RELEASE: &str = include_str!("lua/release.lua");

pub struct RedisLimits {
    conn: ConnectionManager,
    acquire: redis::Script,
    release: redis::Script,
}

fn arg(v: Option<u64>) -> i64 {
    v.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX))
}

fn as_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl RedisLimits {
    pub fn new(conn: ConnectionManager) -> Self {
        Self {
            conn,
            acquire: redis::Script::new(ACQUIRE),
            release: redis::Script::new(RELEASE),
        }
    }

    /// Counters per descriptor and the server time (ms), or the first refusal.
    pub async fn acquire(
        &self,
        ds: &[Descriptor],
        window: u64,
        slot_ttl: u64,
        slot: u64,
        tokens: u64,
    ) -> Result<Result<(Vec<Counted>, u64), Refused>, redis::RedisError> {
        let mut inv = self.acquire.prepare_invoke();
        inv.arg(window).arg(slot).arg(tokens).arg(slot_ttl);
        for d in ds {
            let base = d.redis_base();
            inv.key(format!("{base}:window"))
                .key(format!("{base}:requests"))
                .key(format!("{base}:tokens"))
                .key(format!("{base}:parallel"));
            let (gate, source) = d.gate.map_or((-1.0, 0), |(g, i)| (g, i + 1));
            inv.arg(arg(d.rpm))
                .arg(arg(d.tpm))
                .arg(arg(d.parallel))
                .arg(gate)
                .arg(source);
        }
        let raw: Vec<redis::Value> = inv.invoke_async(&mut self.conn.clone()).await?;
        let out: Vec<i64> = raw
            .iter()
            .map(|v| match v {
                redis::Value::Int(n) => *n,
                _ => 0,
            })
            .collect();
        let bad = || {
            redis::RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "rate limit script returned an unexpected shape",
            ))
        };
        match out.first() {
            Some(0) if out.len() == 2 + 4 * ds.len() => {
                let now = as_u64(out[1]);
                let counted = out[2..]
                    .chunks_exact(4)
                    .zip(ds)
                    .map(|(c, d)| Counted {
                        start: (d.rpm.is_some() || d.tpm.is_some()).then(|| as_u64(c[0])),
                        requests: as_u64(c[1]),
                        tokens: as_u64(c[2]),
                        in_flight: as_u64(c[3]),
                    })
                    .collect();
                Ok(Ok((counted, now)))
            }
            Some(1) if out.len() == 7 => {
                let saturation = match &raw[6] {
                    redis::Value::BulkString(b) => std::str::from_utf8(b)
                        .ok()
                        .and_then(|s| s.parse::<f64>().ok())
                        .unwrap_or(0.0),
                    _ => 0.0,
                };
                let what = match out[2] {
                    1 => Refusal::Requests,
                    2 => Refusal::Tokens,
                    _ => Refusal::Parallel,
                };
                Ok(Err(Refused {
                    index: as_u64(out[1] - 1) as usize,
                    what,
                    current: as_u64(out[3]),
                    limit: as_u64(out[4]),
                    start: as_u64(out[5]),
                    saturation,
                }))
            }
            _ => Err(bad()),
        }
    }

    pub async fn release(
        &self,
        on: &[HeldOn],
        slot: u64,
        delta: i64,
    ) -> Result<(), redis::RedisError> {
        let mut inv = self.release.prepare_invoke();
        inv.arg(slot).arg(delta);
        for o in on {
            inv.key(format!("{}:window", o.base))
                .key(format!("{}:tokens", o.base))
                .key(format!("{}:parallel", o.base));
            inv.arg(
                o.token_window
                    .map_or(-1, |s| i64::try_from(s).unwrap_or(-1)),
            )
            .arg(u8::from(o.parallel));
        }
        let _: i64 = inv.invoke_async(&mut self.conn.clone()).await?;
        Ok(())
    }
}
