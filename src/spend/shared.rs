//! Live spend shared by the instances through Redis. Every second each instance adds the costs
//! it booked since the last round to one Redis total per budgeted entity (starting a missing
//! total from its own view) and takes the totals back, so a budget spent on one instance is
//! seen by the others within about a second. One script call per round carries every account
//! (keys hash-tagged into one slot, so Redis Cluster works). Requests never wait for Redis.
//! A spend reset (scheduled, `/global/spend/reset`, `/key/{key}/reset_spend`) overwrites the
//! totals, so an instance that has not heard of it yet cannot bring the old value back.

use std::sync::Weak;
use std::time::Duration;

use crate::util::redis_conn::Conn;

use super::Spend;
use super::ledger::Account;

/// Seconds a total outlives its last update.
const TTL_SECS: u64 = 86_400;

const SYNC: &str = r"
local ttl = tonumber(ARGV[#ARGV])
local out = {}
for i, k in ipairs(KEYS) do
  if redis.call('EXISTS', k) == 0 then
    redis.call('SET', k, ARGV[2 * i - 1])
  end
  out[i] = redis.call('INCRBYFLOAT', k, ARGV[2 * i])
  redis.call('EXPIRE', k, ttl)
end
return out
";

/// The Redis key of an account's total.
pub fn key(a: &Account) -> String {
    match a {
        Account::Key(t) => format!("tianji:{{spend}}:key:{t}"),
        Account::Team(t) => format!("tianji:{{spend}}:team:{t}"),
        Account::Member { team_id, user_id } => {
            format!("tianji:{{spend}}:member:{team_id}:{user_id}")
        }
        Account::User(u) => format!("tianji:{{spend}}:user:{u}"),
        Account::Org(o) => format!("tianji:{{spend}}:org:{o}"),
        Account::EndUser(e) => format!("tianji:{{spend}}:end_user:{e}"),
    }
}

/// One round: send unsent costs, take the totals back.
pub async fn sync_once(spend: &Spend, conn: &mut Conn) -> Result<(), redis::RedisError> {
    let items = spend.ledger.to_sync();
    if items.is_empty() {
        return Ok(());
    }
    let script = redis::Script::new(SYNC);
    let mut inv = script.prepare_invoke();
    for (a, base, delta) in &items {
        inv.key(key(a)).arg(base.to_string()).arg(delta.to_string());
    }
    inv.arg(TTL_SECS);
    let totals: Vec<String> = inv.invoke_async(conn).await?;
    spend.ledger.synced(
        items
            .into_iter()
            .zip(totals)
            .map(|((a, _, sent), t)| (a, sent, t.parse().unwrap_or(0.0))),
    );
    Ok(())
}

/// Set the totals of `accounts` to `value` (a spend reset).
pub async fn reset(
    conn: &mut Conn,
    accounts: &[Account],
    value: f64,
) -> Result<(), redis::RedisError> {
    if accounts.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for a in accounts {
        pipe.cmd("SET")
            .arg(key(a))
            .arg(value.to_string())
            .arg("EX")
            .arg(TTL_SECS)
            .ignore();
    }
    pipe.query_async::<()>(conn).await
}

/// Sync every `every` until the spend state is dropped.
pub fn spawn(spend: Weak<Spend>, mut conn: Conn, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(s) = spend.upgrade() else {
                return;
            };
            if let Err(e) = sync_once(&s, &mut conn).await {
                tracing::warn!(error = %e, "shared spend sync failed; budgets are per instance until Redis is back");
            }
        }
    });
}
