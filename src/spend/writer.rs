//! The spend writer: a background task that stores SpendLogs rows in batches, one transaction
//! per flush, and rolls their cost up into keys, users, teams, team members, organisations, end
//! users, tags and the daily tables in the same transaction.
//!
//! The queue is bounded. A request takes its queue slot when it is admitted, so the row it
//! produces always has room: when the database is slow or down and the queue is full, new
//! requests wait for room rather than losing accounting. A failed flush is retried with backoff;
//! a retry first drops rows that an ambiguous earlier commit did store, so nothing is counted
//! twice. On shutdown the queue is drained and flushed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::value::RawValue;
use tokio::sync::{mpsc, watch};
use tokio_postgres::types::Json;

use super::ledger::{Account, Ledger};
use super::record::SpendRow;
use super::rollup::Rollup;
use crate::store::{Query, Store, StoreError};

/// Most rows in one flush.
pub const MAX_BATCH: usize = 1000;

/// How the writer runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Longest a row waits before a flush (`general_settings.proxy_batch_write_at`).
    pub every: Duration,
    /// Skip the SpendLogs rows (roll-ups still happen): `disable_spend_logs`.
    pub disable_spend_logs: bool,
    /// How long shutdown keeps retrying a failing flush.
    pub shutdown_grace: Duration,
}

pub struct Writer {
    pub store: Arc<Store>,
    pub ledger: Arc<Ledger>,
    /// Rows queued and not stored (decremented per stored batch).
    pub pending: Arc<AtomicUsize>,
    pub opts: Options,
}

impl Writer {
    /// Run until `stop` turns true and the queue is drained.
    pub async fn run(self, mut rx: mpsc::Receiver<SpendRow>, mut stop: watch::Receiver<bool>) {
        let mut batch: Vec<SpendRow> = Vec::with_capacity(MAX_BATCH);
        let mut tick = tokio::time::interval(self.opts.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let room = MAX_BATCH - batch.len();
            tokio::select! {
                n = rx.recv_many(&mut batch, room) => {
                    if n == 0 {
                        break;
                    }
                    if batch.len() >= MAX_BATCH {
                        self.flush(&mut batch, None).await;
                    }
                }
                _ = tick.tick() => {
                    if !batch.is_empty() {
                        self.flush(&mut batch, None).await;
                    }
                }
                _ = stop.changed() => break,
            }
        }
        // Shutdown: everything queued, in batches.
        rx.close();
        let deadline = tokio::time::Instant::now() + self.opts.shutdown_grace;
        loop {
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                break;
            }
            if !self.flush(&mut batch, Some(deadline)).await {
                let left = batch.len() + rx.len();
                tracing::error!(
                    rows = left,
                    "spend writer: database unreachable at shutdown; rows not stored"
                );
                break;
            }
        }
    }

    /// Store `batch`, retrying until it is stored or `deadline` passes; empties it on success.
    async fn flush(
        &self,
        batch: &mut Vec<SpendRow>,
        deadline: Option<tokio::time::Instant>,
    ) -> bool {
        let n = batch.len();
        let mut backoff = Duration::from_millis(100);
        let mut retry = false;
        loop {
            match self.store_batch(batch, retry).await {
                Ok(()) => {
                    self.ledger.flushed(charged(batch));
                    self.pending.fetch_sub(n, Ordering::Relaxed);
                    batch.clear();
                    return true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, rows = batch.len(), "spend writer: flush failed; retrying");
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

    async fn store_batch(&self, batch: &mut Vec<SpendRow>, retry: bool) -> Result<(), StoreError> {
        let mut conn = self.store.conn().await?;
        let [existing, logs, keys, users, teams, orgs, members, end_users, tags] = conn.stmts([
            Query::ExistingSpendLogs,
            Query::FlushSpendLogs,
            Query::FlushKeySpend,
            Query::FlushUserSpend,
            Query::FlushTeamSpend,
            Query::FlushOrganizationSpend,
            Query::FlushTeamMemberSpend,
            Query::FlushEndUserSpend,
            Query::FlushTagSpend,
        ])?;
        let [daily_users, daily_teams, daily_orgs, daily_end_users, daily_tags] = conn.stmts([
            Query::FlushDailyUserSpend,
            Query::FlushDailyTeamSpend,
            Query::FlushDailyOrganizationSpend,
            Query::FlushDailyEndUserSpend,
            Query::FlushDailyTagSpend,
        ])?;
        let tx = conn.client.transaction().await?;
        if retry && !self.opts.disable_spend_logs {
            let ids: Vec<&str> = batch.iter().map(|r| r.request_id.as_str()).collect();
            let done: std::collections::HashSet<String> = tx
                .query(&existing, &[&ids])
                .await?
                .iter()
                .filter_map(|r| r.try_get::<_, String>(0).ok())
                .collect();
            if !done.is_empty() {
                batch.retain(|r| !done.contains(&r.request_id));
                if batch.is_empty() {
                    return Ok(());
                }
            }
        }
        let text = serde_json::to_string(&batch).map_err(|e| StoreError::Queries(e.to_string()))?;
        let raw = RawValue::from_string(text).map_err(|e| StoreError::Queries(e.to_string()))?;
        if !self.opts.disable_spend_logs {
            tx.execute(&logs, &[&Json(raw)]).await?;
        }
        let r = Rollup::of(batch);
        for (st, sums) in [
            (&keys, &r.keys),
            (&users, &r.users),
            (&teams, &r.teams),
            (&orgs, &r.orgs),
            (&end_users, &r.end_users),
            (&tags, &r.tags),
        ] {
            if !sums.ids.is_empty() {
                tx.execute(st, &[&sums.ids, &sums.amounts]).await?;
            }
        }
        let m = &r.members;
        if !m.teams.is_empty() {
            tx.execute(&members, &[&m.teams, &m.users, &m.amounts]).await?;
        }
        for (st, d) in [
            (&daily_users, &r.daily_users),
            (&daily_teams, &r.daily_teams),
            (&daily_orgs, &r.daily_orgs),
            (&daily_end_users, &r.daily_end_users),
            (&daily_tags, &r.daily_tags),
        ] {
            if !d.entity.is_empty() {
                tx.execute(
                    st,
                    &[
                        &d.entity, &d.day, &d.api_key, &d.model, &d.model_group, &d.provider,
                        &d.endpoint, &d.prompt, &d.completion, &d.cache_read, &d.cache_creation,
                        &d.spend, &d.requests, &d.ok, &d.failed, &d.ms,
                    ],
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The accounts a batch charged, with what it cost each.
fn charged(batch: &[SpendRow]) -> Vec<(Account, f64)> {
    let mut out = Vec::new();
    for r in batch.iter().filter(|r| r.spend > 0.0) {
        if !r.api_key.is_empty() {
            out.push((Account::Key(r.api_key.clone()), r.spend));
        }
        if let Some(t) = &r.team_id {
            out.push((Account::Team(t.clone()), r.spend));
            if let Some(u) = &r.user_id {
                out.push((
                    Account::Member {
                        team_id: t.clone(),
                        user_id: u.clone(),
                    },
                    r.spend,
                ));
            }
        }
        if let Some(u) = &r.user_id {
            out.push((Account::User(u.clone()), r.spend));
        }
        if let Some(o) = &r.organization_id {
            out.push((Account::Org(o.clone()), r.spend));
        }
        if let Some(e) = &r.end_user {
            out.push((Account::EndUser(e.clone()), r.spend));
        }
    }
    out
}
