//! The spend writer: a background task that stores SpendLogs rows in batches, one transaction
//! per flush, and rolls their cost up into keys, users, teams, team members, organisations, end
//! users, tags and the daily tables in the same transaction.
//!
//! The queue is bounded. A request takes its place in the queue when it is admitted, so the row
//! it produces always has room: when the database is slow or down and the queue is full, new
//! requests wait for room rather than losing accounting. Requests never wake the writer one by
//! one (a cross-thread wake-up per request costs more than the row). A failed flush is retried with backoff;
//! a retry first drops rows that an ambiguous earlier commit did store, so nothing is counted
//! twice. On shutdown the queue is drained and flushed.
//!
//! A row's `request_id` is its answer's id unless a stored row (or an earlier row of the batch)
//! has it. Asking the database which ids are stored costs it about as much as storing the
//! rows' secondary indexes, and answer ids almost never repeat, so a flush asks only about the
//! ids that are known to repeat (cached answers replay theirs) and lets the primary key catch
//! the rest: a COPY that collides with a stored id is rolled back as a whole (nothing of it is
//! stored) and the batch is stored again at once, asking about every id; flushes keep asking
//! until one finds none stored (a provider that repeats its ids is asked about every time).

use crate::util::FastSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::SinkExt;
use std::sync::Mutex;
use tokio_postgres::types::{ToSql, Type};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio_postgres::types::Json;

use super::copy::{CopyRows, EncodeError};
use super::ledger::{Account, Ledger};
use super::record::{SpendRow, Stored};
use super::rollup::Rollup;
use crate::store::{Query, Store, StoreError};

/// Most rows in one flush. Larger flushes cost the database less per row: the indexes on
/// `startTime` take a sorted flush's rows side by side (benches/spend_flush.rs: 4,000 rows cost
/// it about 1.5 µs per row less than 2,000).
pub const MAX_BATCH: usize = 4000;

/// How the writer runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Longest a row waits before a flush (`general_settings.proxy_batch_write_at`).
    pub every: Duration,
    /// Skip the SpendLogs rows (roll-ups still happen): `disable_spend_logs`.
    pub disable_spend_logs: bool,
    /// Skip the ErrorLogs rows: `disable_error_logs`.
    pub disable_error_logs: bool,
    /// How long shutdown keeps retrying a failing flush.
    pub shutdown_grace: Duration,
}

/// Rows waiting for the writer. Requests push without waking it; it takes them on its tick,
/// or as soon as a full batch is waiting. `room` has one permit per free place: a request takes
/// one when admitted and the writer gives them back once their rows are stored.
pub struct Queue {
    rows: Mutex<Vec<SpendRow>>,
    pub room: Arc<Semaphore>,
    full: Notify,
}

impl Queue {
    pub fn new(capacity: usize) -> Self {
        Self {
            rows: Mutex::new(Vec::with_capacity(MAX_BATCH)),
            room: Arc::new(Semaphore::new(capacity.max(1))),
            full: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SpendRow>> {
        self.rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queue a row whose place was taken with `permit`.
    pub fn push(&self, permit: OwnedSemaphorePermit, row: SpendRow) {
        permit.forget();
        let n = {
            let mut rows = self.lock();
            rows.push(row);
            rows.len()
        };
        if n == MAX_BATCH {
            self.full.notify_one();
        }
    }

    /// The queued rows, leaving room for as many (rows are large: a queue grown again from
    /// nothing after each flush copied them over and over).
    fn take(&self) -> Vec<SpendRow> {
        let mut rows = self.lock();
        if rows.is_empty() {
            // (an idle tick keeps the room it has)
            return Vec::new();
        }
        let room = Vec::with_capacity(rows.len().clamp(64, MAX_BATCH));
        std::mem::replace(&mut *rows, room)
    }

    /// Rows queued and not taken by the writer yet.
    pub fn waiting(&self) -> usize {
        self.lock().len()
    }
}

/// Told of each failed write (`what`, error): the `db_exceptions` alert.
pub type OnFailure = Box<dyn Fn(&str, &str) + Send + Sync>;

pub struct Writer {
    /// Told of each failed flush.
    pub on_failure: Arc<std::sync::OnceLock<OnFailure>>,
    pub store: Arc<Store>,
    pub ledger: Arc<Ledger>,
    pub queue: Arc<Queue>,
    /// Rows taken from the queue and not stored yet.
    pub in_flight: Arc<AtomicUsize>,
    pub opts: Options,
    /// Ask the database about every answer id before a COPY (see the module doc): set when a
    /// COPY collided with a stored id, cleared by a flush that found none stored.
    pub probe_all: AtomicBool,
}

/// How one attempt at storing a batch ended (errors aside).
enum Attempt {
    /// Committed: what it charged each account.
    Stored(Vec<(Account, f64)>),
    /// Rolled back, nothing stored: an answer id that was not asked about is stored already.
    Collided,
}

impl Writer {
    /// Run until `stop` turns true, then store what is queued.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.opts.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.queue.full.notified() => {}
                _ = stop.changed() => break,
            }
            self.drain(None, false).await;
        }
        let deadline = tokio::time::Instant::now() + self.opts.shutdown_grace;
        if !self.drain(Some(deadline), true).await {
            tracing::error!(
                rows = self.queue.waiting() + self.in_flight.load(Ordering::Relaxed),
                "spend writer: database unreachable at shutdown; rows not stored"
            );
        }
    }

    /// Store what is queued, a batch at a time, and go on while full batches wait (everything,
    /// with `all`); `false` if `deadline` passed first. Waiting for the next tick otherwise
    /// keeps batches large, and a flush costs the database about as much as a thousand rows.
    async fn drain(&self, deadline: Option<tokio::time::Instant>, all: bool) -> bool {
        loop {
            let mut rows = self.queue.take();
            if rows.is_empty() {
                return true;
            }
            self.in_flight.store(rows.len(), Ordering::Relaxed);
            while !rows.is_empty() {
                let rest = rows.split_off(rows.len().min(MAX_BATCH));
                let mut batch = std::mem::replace(&mut rows, rest);
                let n = batch.len();
                if !self.flush(&mut batch, deadline).await {
                    return false;
                }
                self.in_flight.fetch_sub(n, Ordering::Relaxed);
                self.queue.room.add_permits(n);
            }
            if !all && self.queue.waiting() < MAX_BATCH {
                return true;
            }
        }
    }

    /// Store `batch`, retrying until it is stored or `deadline` passes; empties it on success.
    async fn flush(
        &self,
        batch: &mut Vec<SpendRow>,
        deadline: Option<tokio::time::Instant>,
    ) -> bool {
        let mut backoff = Duration::from_millis(100);
        let mut retry = false;
        loop {
            match self.store_batch(batch, retry).await {
                Ok(Attempt::Stored(charged)) => {
                    self.ledger.flushed(charged);
                    batch.clear();
                    return true;
                }
                // nothing was stored; store it again asking about every id
                Ok(Attempt::Collided) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, rows = batch.len(), "spend writer: flush failed; retrying");
                    if let Some(f) = self.on_failure.get() {
                        f("spend writer", &e.to_string());
                    }
                    if deadline.is_some_and(|d| tokio::time::Instant::now() + backoff > d) {
                        return false;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    retry = true;
                }
            }
        }
    }

    async fn store_batch(
        &self,
        batch: &mut Vec<SpendRow>,
        retry: bool,
    ) -> Result<Attempt, StoreError> {
        let mut conn = self.store.conn().await?;
        let [
            existing,
            stored_calls,
            logs,
            logs_lean,
            keys,
            users,
            teams,
            orgs,
            members,
            end_users,
            tags,
            agents,
        ] = conn.stmts([
            Query::ExistingSpendLogs,
            Query::StoredSpendLogCalls,
            Query::CopySpendLogs,
            Query::CopySpendLogsLean,
            Query::FlushKeySpend,
            Query::FlushUserSpend,
            Query::FlushTeamSpend,
            Query::FlushOrganizationSpend,
            Query::FlushTeamMemberSpend,
            Query::FlushEndUserSpend,
            Query::FlushTagSpend,
            Query::FlushAgentSpend,
        ])?;
        let [
            daily_users,
            daily_teams,
            daily_orgs,
            daily_end_users,
            daily_tags,
            daily_agents,
            errors,
        ] = conn.stmts([
            Query::FlushDailyUserSpend,
            Query::FlushDailyTeamSpend,
            Query::FlushDailyOrganizationSpend,
            Query::FlushDailyEndUserSpend,
            Query::FlushDailyTagSpend,
            Query::FlushDailyAgentSpend,
            Query::InsertErrorLogs,
        ])?;
        let tx = conn.client.transaction().await?;
        if retry && !self.opts.disable_spend_logs {
            let ids: Vec<String> = batch.iter().map(call_id).collect();
            let done: FastSet<String> = strings(tx.query(&stored_calls, &[&ids]).await?);
            if !done.is_empty() {
                batch.retain(|r| !done.contains(&call_id(r)));
                if batch.is_empty() {
                    return Ok(Attempt::Stored(Vec::new()));
                }
            }
        }
        if !self.opts.disable_spend_logs {
            // in the order the requests started: rows come in the order they ended, and the
            // indexes that lead with `startTime` (and the call ids, minted at the start) then
            // take them in order, each beside the one before
            // (the rows stay where they are: they are large, their positions are sorted)
            let order = started_order(batch);
            // a retry may follow an ambiguous commit of another writer's row: ask about all
            let all = retry || self.probe_all.load(Ordering::Relaxed);
            let (ids, found) = request_ids(&tx, &existing, batch, &order, all).await?;
            if all && found == 0 {
                self.probe_all.store(false, Ordering::Relaxed);
            }
            // the JSON columns every row leaves at their defaults are not sent (same values)
            let lean = batch
                .iter()
                .all(|r| r.request_tags.is_empty() && r.messages.is_none() && r.response.is_none());
            let st = if lean { &logs_lean } else { &logs };
            let copied = async {
                let sink = tx.copy_in::<_, bytes::Bytes>(st).await?;
                futures_util::pin_mut!(sink);
                let mut rows = CopyRows::default();
                let mut metadata = Vec::with_capacity(512);
                for &i in &order {
                    let (r, id) = (&batch[i as usize], &ids[i as usize]);
                    copy_row(&mut rows, r, id, lean, &mut metadata)?;
                    if let Some(chunk) = rows.full() {
                        sink.send(chunk).await?;
                    }
                }
                sink.send(rows.finish()).await?;
                sink.finish().await?;
                Ok::<(), Copied>(())
            }
            .await;
            match copied {
                Ok(()) => {}
                Err(Copied::Db(e)) if !all && collided(&e) => {
                    self.probe_all.store(true, Ordering::Relaxed);
                    return Ok(Attempt::Collided);
                }
                Err(Copied::Db(e)) => return Err(e.into()),
                Err(e @ Copied::Encode(_)) => return Err(StoreError::Encode(e.to_string())),
            }
        }
        let r = Rollup::of(batch);
        for (st, sums) in [
            (&keys, &r.keys),
            (&users, &r.users),
            (&teams, &r.teams),
            (&orgs, &r.orgs),
            (&end_users, &r.end_users),
            (&tags, &r.tags),
            (&agents, &r.agents),
        ] {
            if !sums.ids.is_empty() {
                tx.execute(st, &[&sums.ids, &sums.amounts]).await?;
            }
        }
        let m = &r.members;
        if !m.teams.is_empty() {
            tx.execute(&members, &[&m.teams, &m.users, &m.amounts])
                .await?;
        }
        for (st, d) in [
            (&daily_users, &r.daily_users),
            (&daily_teams, &r.daily_teams),
            (&daily_orgs, &r.daily_orgs),
            (&daily_end_users, &r.daily_end_users),
            (&daily_tags, &r.daily_tags),
            (&daily_agents, &r.daily_agents),
        ] {
            if !d.entity.is_empty() {
                tx.execute(
                    st,
                    &[
                        &d.entity,
                        &d.day,
                        &d.api_key,
                        &d.model,
                        &d.model_group,
                        &d.provider,
                        &d.endpoint,
                        &d.prompt,
                        &d.completion,
                        &d.cache_read,
                        &d.cache_creation,
                        &d.spend,
                        &d.requests,
                        &d.ok,
                        &d.failed,
                        &d.ms,
                        &d.tool,
                    ],
                )
                .await?;
            }
        }
        let e = if self.opts.disable_error_logs {
            ErrorRows::default()
        } else {
            ErrorRows::of(batch)
        };
        if !e.ids.is_empty() {
            tx.execute(
                &errors,
                &[
                    &e.ids,
                    &e.start,
                    &e.end,
                    &e.base,
                    &e.group,
                    &e.model,
                    &e.model_id,
                    &e.kwargs,
                    &e.kind,
                    &e.message,
                    &e.code,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Attempt::Stored(r.charged()))
    }
}

/// Why a COPY failed: the database refused it, or a row's value could not be encoded.
#[derive(Debug, thiserror::Error)]
enum Copied {
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    #[error("a SpendLogs row could not be encoded: {0}")]
    Encode(#[from] EncodeError),
}

/// Whether a COPY failed on a `request_id` that a stored row has.
fn collided(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|d| {
        *d.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION
            && d.constraint() == Some("TianjiLLM_SpendLogs_pkey")
    })
}

fn call_id(r: &SpendRow) -> String {
    r.call_id.hyphenated().to_string()
}

fn strings(rows: Vec<tokio_postgres::Row>) -> FastSet<String> {
    rows.iter()
        .filter_map(|r| r.try_get::<_, String>(0).ok())
        .collect()
}

/// The `request_id` of each row of `batch`: its answer's id, as LiteLLM stores it, unless a
/// stored row or an earlier row of the batch has that id (providers repeat ids; a cached answer
/// replays one), else its call id; and how many of the ids asked about are stored. The database
/// is asked about every answer id (`all`), or only about cached answers' (the COPY's primary
/// key catches the others). No two rows of the batch get one id; a stored row with an id not
/// asked about, or one another writer stores meanwhile, fails the COPY, and the batch is stored
/// again asking about all.
async fn request_ids(
    tx: &tokio_postgres::Transaction<'_>,
    existing: &tokio_postgres::Statement,
    batch: &[SpendRow],
    order: &[u32],
    all: bool,
) -> Result<(Vec<String>, usize), tokio_postgres::Error> {
    let calls: Vec<String> = batch.iter().map(call_id).collect();
    let mut asked: Vec<&str> = batch
        .iter()
        .filter(|r| all || r.cache_hit)
        .filter_map(|r| r.response_id.as_deref())
        .filter(|id| !id.is_empty())
        .collect();
    asked.sort_unstable();
    asked.dedup();
    let stored = if asked.is_empty() {
        FastSet::default()
    } else {
        strings(tx.query(existing, &[&asked]).await?)
    };
    let found = stored.len();
    // every call id belongs to its own row
    let mut taken: FastSet<&str> = stored.iter().map(String::as_str).collect();
    taken.extend(calls.iter().map(String::as_str));
    // the first row to start keeps a repeated id; by position in `batch`
    let mut answer_ids: Vec<Option<&str>> = vec![None; batch.len()];
    for &i in order {
        if let Some(id) = batch[i as usize].response_id.as_deref()
            && !id.is_empty()
            && taken.insert(id)
        {
            answer_ids[i as usize] = Some(id);
        }
    }
    drop(taken);
    let mut ids = calls;
    for (slot, id) in ids.iter_mut().zip(answer_ids) {
        if let Some(id) = id {
            *slot = id.to_string();
        }
    }
    Ok((ids, found))
}

/// The positions of `batch`'s rows in the order their requests started.
fn started_order(batch: &[SpendRow]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..batch.len() as u32).collect();
    order.sort_by(|a, b| {
        batch[*a as usize]
            .start_time
            .total_cmp(&batch[*b as usize].start_time)
    });
    order
}

/// The ErrorLogs rows of a batch's failures, as parallel arrays.
#[derive(Default)]
struct ErrorRows {
    ids: Vec<String>,
    start: Vec<f64>,
    end: Vec<f64>,
    base: Vec<String>,
    group: Vec<String>,
    model: Vec<String>,
    model_id: Vec<String>,
    kwargs: Vec<String>,
    kind: Vec<&'static str>,
    message: Vec<String>,
    code: Vec<String>,
}

impl ErrorRows {
    fn of(batch: &[SpendRow]) -> Self {
        let mut e = Self::default();
        for r in batch {
            let Some(err) = r.error.as_ref() else {
                continue;
            };
            e.ids.push(r.call_id.hyphenated().to_string());
            e.start.push(r.start_time);
            e.end.push(r.end_time);
            e.base.push(r.api_base().to_string());
            e.group.push(r.model_group.clone());
            e.model.push(r.model().to_string());
            e.model_id.push(r.model_id().to_string());
            e.kwargs.push(request_kwargs(r));
            e.kind.push(super::record::error_class(err.error_code));
            e.message.push(err.error_message.clone());
            e.code.push(err.error_code.to_string());
        }
        e
    }
}

/// ErrorLogs `request_kwargs`: what was asked, without credentials or bodies (the caller's key
/// only by its hash).
fn request_kwargs(r: &SpendRow) -> String {
    serde_json::json!({
        "model": r.model_group,
        "call_type": r.call_type,
        "endpoint": r.endpoint,
        "metadata": r.metadata(),
        "request_tags": r.request_tags,
    })
    .to_string()
}

/// Columns of `CopySpendLogsLean`: the first ones of `CopySpendLogs`.
const COPY_LEAN: usize = 28;

/// Columns of `CopySpendLogs`.
const COPY_COLUMNS: usize = 31;

fn int4_of(v: u64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Write one row (without its last three columns, `lean`).
fn copy_row(
    rows: &mut CopyRows,
    r: &SpendRow,
    request_id: &str,
    lean: bool,
    scratch: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let mut id = uuid::Uuid::encode_buffer();
    let id: &str = r.call_id.hyphenated().encode_lower(&mut id);
    let mut ip_buf = IpText::default();
    let ip = r.requester_ip_address.map(|a| ip_buf.of(a));
    // written into the reused buffer first (faster than serde_json into the COPY's `BytesMut`
    // through `io::Write`, and without escaping the constant keys)
    scratch.clear();
    let metadata = match r.metadata().write_json(scratch) {
        Ok(()) => Jsonb(scratch),
        Err(_) => Jsonb(b"{}"),
    };
    let mut row = rows.row(if lean { COPY_LEAN } else { COPY_COLUMNS });
    let int4 = &Type::INT4;
    row.text(request_id)?;
    row.text(r.call_type)?;
    row.text(r.api_key())?;
    row.value(&Type::FLOAT8, &r.spend)?;
    row.value(int4, &int4_of(r.total_tokens))?;
    row.value(int4, &int4_of(r.prompt_tokens))?;
    row.value(int4, &int4_of(r.completion_tokens))?;
    row.timestamp(r.start_time);
    row.timestamp(r.end_time);
    row.value(int4, &int4_of(r.request_duration_ms))?;
    row.timestamp_or_null(r.completion_start_time);
    row.text(r.model())?;
    row.text(r.model_id())?;
    row.text(&r.model_group)?;
    row.text(r.provider())?;
    row.text(r.api_base())?;
    row.text(r.user_id().unwrap_or(""))?;
    row.value(&Type::JSONB, &metadata)?;
    row.text(if r.cache_hit { "True" } else { "False" })?;
    row.text(&r.cache_key)?;
    row.text_or_null(r.team_id())?;
    row.text_or_null(r.organization_id())?;
    row.text_or_null(r.end_user())?;
    row.text_or_null(ip)?;
    row.text(r.status)?;
    row.text(id)?;
    row.text_or_null(r.mcp_tool())?;
    row.text_or_null(r.agent_id.as_deref())?;
    if !lean {
        let jsonb = &Type::JSONB;
        row.value(jsonb, &Json(&r.request_tags))?;
        row.value(jsonb, &Json(Stored::of(&r.messages)))?;
        row.value(jsonb, &Json(Stored::of(&r.response)))?;
    }
    Ok(())
}

/// A `jsonb` value from JSON text already written.
#[derive(Debug)]
struct Jsonb<'a>(&'a [u8]);

impl ToSql for Jsonb<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        // jsonb's binary format: a version byte, then the text
        out.extend_from_slice(&[1]);
        out.extend_from_slice(self.0);
        Ok(tokio_postgres::types::IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    tokio_postgres::types::to_sql_checked!();
}

/// An address as text without the formatting machinery for IPv4 (every row has one).
#[derive(Default)]
struct IpText {
    v4: [u8; 15],
    other: String,
}

impl IpText {
    fn of(&mut self, ip: std::net::IpAddr) -> &str {
        match ip {
            std::net::IpAddr::V4(v4) => {
                let mut len = 0;
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.v4[len] = b'.';
                        len += 1;
                    }
                    let mut b = itoa::Buffer::new();
                    let digits = b.format(octet).as_bytes();
                    self.v4[len..len + digits.len()].copy_from_slice(digits);
                    len += digits.len();
                }
                std::str::from_utf8(&self.v4[..len]).unwrap_or_default()
            }
            other => {
                self.other = other.to_string();
                &self.other
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_text() {
        let mut t = IpText::default();
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "255.255.255.255",
            "10.20.3.199",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:192.0.2.1",
        ] {
            let a: std::net::IpAddr = ip.parse().unwrap();
            assert_eq!(t.of(a), a.to_string());
        }
    }

    /// Rows in the order their requests started, ties in queue order.
    #[test]
    fn started_order_is_stable() {
        let row = |start_time| SpendRow {
            start_time,
            ..Default::default()
        };
        let batch = [row(3.0), row(1.0), row(2.0), row(1.0)];
        assert_eq!(started_order(&batch), [1, 3, 2, 0]);
    }
}
