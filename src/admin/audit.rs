//! Audit rows (`general_settings.store_audit_logs: true`), written inside the caller's
//! transaction so a change and its record land together or not at all.

use serde_json::Value;
use tokio_postgres::{Statement, Transaction};

use super::{AdminError, Call};
use crate::store::StoreError;

/// Table names as they appear in `TianjiLLM_AuditLog.table_name`.
pub const KEYS_TABLE: &str = "TianjiLLM_VerificationToken";

/// One change to record.
pub struct Change<'a> {
    pub action: &'a str,
    pub table: &'a str,
    pub object_id: &'a str,
    pub before: Option<&'a Value>,
    pub after: Option<&'a Value>,
}

/// Finish a key write: record the changes (when auditing is on), commit, then drop `tokens`
/// from the auth cache.
pub async fn commit(
    call: &Call<'_>,
    tx: Transaction<'_>,
    insert: &Statement,
    changes: Vec<Change<'_>>,
    tokens: &[&str],
) -> Result<(), AdminError> {
    for change in changes {
        record(call, &tx, insert, change).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    if let Some(keys) = call.state.auth.keys() {
        for t in tokens {
            keys.invalidate(t).await;
        }
    }
    Ok(())
}

/// Record `change` when auditing is on; `insert` is the prepared `InsertAuditLog`.
pub async fn record(
    call: &Call<'_>,
    tx: &Transaction<'_>,
    insert: &Statement,
    change: Change<'_>,
) -> Result<(), AdminError> {
    if !call.state.store_audit_logs {
        return Ok(());
    }
    tx.execute(
        insert,
        &[
            &call.changed_by(),
            &call.caller_hash,
            &change.action,
            &change.table,
            &change.object_id,
            &change.before,
            &change.after,
        ],
    )
    .await
    .map_err(StoreError::from)?;
    Ok(())
}
