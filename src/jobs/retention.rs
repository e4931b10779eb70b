//! Log retention: SpendLogs and ErrorLogs rows older than
//! `maximum_spend_logs_retention_period`, AuditLog rows older than
//! `maximum_audit_logs_retention_period`, deleted in batches (each its own statement, so a run
//! cut short keeps what it deleted and the next run goes on). Daily roll-ups are kept.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::scheduler::Work;
use crate::state::AppState;
use crate::store::{Query, StoreError};
use crate::util::clock;

/// Rows one statement deletes at most.
const BATCH: i64 = 1000;
/// Batches one run deletes at most (the next run goes on).
const MAX_BATCHES: usize = 500;

/// Delete rows of `queries` older than `keep`; how many went, per query.
async fn prune(st: &AppState, keep: Duration, queries: &[Query]) -> Result<Value, StoreError> {
    let Some(store) = &st.store else {
        return Ok(Value::Null);
    };
    let cutoff = clock::now_secs() - keep.as_secs_f64();
    let mut out = serde_json::Map::new();
    for &q in queries {
        let mut deleted = 0u64;
        for _ in 0..MAX_BATCHES {
            let conn = store.conn().await?;
            let n = match conn.stmt(q) {
                Some(stmt) => conn.client.execute(stmt, &[&cutoff, &BATCH]).await?,
                None => return Err(StoreError::Queries(format!("{} not prepared", q.name()))),
            };
            deleted += n;
            if n < BATCH as u64 {
                break;
            }
        }
        out.insert(q.name().to_string(), json!(deleted));
    }
    Ok(Value::Object(out))
}

/// The spend-log job's work: SpendLogs and ErrorLogs rows older than `keep`.
pub fn spend_logs(keep: Duration) -> Work {
    Arc::new(move |st| {
        Box::pin(async move {
            prune(
                &st,
                keep,
                &[Query::DeleteOldSpendLogs, Query::DeleteOldErrorLogs],
            )
            .await
        })
    })
}

/// The audit-log job's work: AuditLog rows older than `keep`.
pub fn audit_logs(keep: Duration) -> Work {
    Arc::new(move |st| {
        Box::pin(async move { prune(&st, keep, &[Query::DeleteOldAuditLogs]).await })
    })
}

/// The scheduler's own run records older than 30 days.
pub fn cron_job_runs() -> Work {
    Arc::new(|st| {
        Box::pin(async move {
            let Some(store) = &st.store else {
                return Ok(Value::Null);
            };
            let conn = store.conn().await?;
            let n = match conn.stmt(Query::PruneCronJobRuns) {
                Some(stmt) => conn.client.execute(stmt, &[]).await?,
                None => 0,
            };
            Ok(json!({"deleted": n}))
        })
    })
}
