//! Audit rows (`general_settings.store_audit_logs: true`), written inside the caller's
//! transaction so a change and its record land together or not at all.

use serde_json::Value;
use tokio_postgres::{Statement, Transaction};

use super::{AdminError, Call};
use crate::auth::Changed;
use crate::store::StoreError;

/// Table names as they appear in `TianjiLLM_AuditLog.table_name`.
pub const KEYS_TABLE: &str = "TianjiLLM_VerificationToken";
pub const TEAMS_TABLE: &str = "TianjiLLM_TeamTable";
pub const USERS_TABLE: &str = "TianjiLLM_UserTable";
pub const ORGS_TABLE: &str = "TianjiLLM_OrganizationTable";
pub const BUDGETS_TABLE: &str = "TianjiLLM_BudgetTable";
pub const END_USERS_TABLE: &str = "TianjiLLM_EndUserTable";
pub const MODELS_TABLE: &str = "TianjiLLM_ProxyModelTable";
pub const MEMBERSHIPS_TABLE: &str = "TianjiLLM_TeamMembership";

/// One change to record.
pub struct Change<'a> {
    pub action: &'a str,
    pub table: &'a str,
    pub object_id: &'a str,
    pub before: Option<&'a Value>,
    pub after: Option<&'a Value>,
}

/// Finish a write: record the changes (when auditing is on), commit, then drop what changed
/// from the governance caches here and on every other instance.
pub async fn commit(
    call: &Call<'_>,
    tx: Transaction<'_>,
    insert: &Statement,
    changes: Vec<Change<'_>>,
    changed: &[Changed],
) -> Result<(), AdminError> {
    for change in changes {
        record(call, &tx, insert, change).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    call.state.invalidate(changed).await;
    Ok(())
}

/// `Changed::Key` for each token.
pub fn keys_changed<S: AsRef<str>>(tokens: &[S]) -> Vec<Changed> {
    tokens
        .iter()
        .map(|t| Changed::Key(t.as_ref().to_string()))
        .collect()
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
