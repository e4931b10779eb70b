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

/// A `deleted` change for each row (`id` names the row's id column).
pub fn deleted<'a>(table: &'a str, id: &str, rows: &'a [Value]) -> Vec<Change<'a>> {
    rows.iter()
        .map(|row| Change {
            action: "deleted",
            table,
            object_id: row.get(id).and_then(Value::as_str).unwrap_or(""),
            before: Some(row),
            after: None,
        })
        .collect()
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

/// `table_name` as a filter: the stored name, LiteLLM's name, or a short form such as
/// `verification_token` or `team_table`.
pub fn table_name(given: &str) -> Option<&'static str> {
    const TABLES: &[(&str, &str)] = &[
        ("verification_token", KEYS_TABLE),
        ("keys", KEYS_TABLE),
        ("team_table", TEAMS_TABLE),
        ("teams", TEAMS_TABLE),
        ("user_table", USERS_TABLE),
        ("users", USERS_TABLE),
        ("organization_table", ORGS_TABLE),
        ("organizations", ORGS_TABLE),
        ("budget_table", BUDGETS_TABLE),
        ("budgets", BUDGETS_TABLE),
        ("end_user_table", END_USERS_TABLE),
        ("end_users", END_USERS_TABLE),
        ("proxy_model_table", MODELS_TABLE),
        ("models", MODELS_TABLE),
        ("team_membership", MEMBERSHIPS_TABLE),
    ];
    let g = given.trim();
    let bare = g
        .strip_prefix("TianjiLLM_")
        .or_else(|| g.strip_prefix("LiteLLM_"))
        .unwrap_or(g);
    TABLES.iter().find_map(|(short, full)| {
        let camel = full.trim_start_matches("TianjiLLM_");
        (short.eq_ignore_ascii_case(bare) || camel.eq_ignore_ascii_case(bare)).then_some(*full)
    })
}

fn date_param(call: &Call<'_>, name: &str) -> Result<Option<String>, AdminError> {
    let Some(v) = call.param(name).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let b = v.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let date_ok = b.len() >= 10
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10);
    let rest_ok = b.len() == 10
        || (b.len() >= 19
            && (b[10] == b'T' || b[10] == b' ')
            && v[11..]
                .bytes()
                .all(|c| c.is_ascii_digit() || b":.Z+-".contains(&c)));
    if date_ok && rest_ok {
        Ok(Some(v))
    } else {
        Err(AdminError::invalid(
            name,
            format!("must be YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, got '{v}'"),
        ))
    }
}

/// `GET /audit`: filtered, paginated, newest first.
pub async fn list(call: &Call<'_>) -> Result<http::Response<crate::body::Body>, AdminError> {
    let page = call.positive("page", 1)?;
    let size = call.positive("page_size", 10)?.min(100);
    let text = |name: &str| call.param(name).filter(|v| !v.is_empty());
    let table = match text("table_name") {
        None => None,
        Some(t) => Some(
            table_name(&t)
                .ok_or_else(|| AdminError::invalid("table_name", format!("unknown table '{t}'")))?
                .to_string(),
        ),
    };
    let filters = (
        text("changed_by"),
        text("changed_by_api_key"),
        text("action"),
        table,
        text("object_id"),
        date_param(call, "start_date")?,
        date_param(call, "end_date")?,
    );
    let (a, b, c, d, e, f, g) = &filters;
    let total: i64 = call
        .store
        .query(crate::store::Query::CountAuditLogs, &[a, b, c, d, e, f, g])
        .await?
        .first()
        .map(|r| r.get(0))
        .unwrap_or(0);
    let offset = (page - 1) * size;
    let logs: Vec<Value> = call
        .rows(
            crate::store::Query::ListAuditLogs,
            &[a, b, c, d, e, f, g, &size, &offset],
        )
        .await?;
    Ok(super::ok(&serde_json::json!({
        "audit_logs": logs,
        "total": total,
        "page": page,
        "page_size": size,
        "total_pages": (total + size - 1) / size,
    })))
}

/// `GET /audit/{id}`
pub async fn get(call: &Call<'_>) -> Result<http::Response<crate::body::Body>, AdminError> {
    let id = call.path_key.clone().unwrap_or_default();
    let row = call
        .store
        .query(crate::store::Query::GetAuditLog, &[&id])
        .await?
        .first()
        .and_then(|r| r.try_get::<_, Value>(0).ok())
        .ok_or_else(|| AdminError::NotFound {
            param: "id",
            message: format!("Audit log not found, passed id={id}"),
        })?;
    Ok(super::ok(&row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert_eq!(table_name("verification_token"), Some(KEYS_TABLE));
        assert_eq!(table_name("LiteLLM_VerificationToken"), Some(KEYS_TABLE));
        assert_eq!(table_name("TianjiLLM_TeamTable"), Some(TEAMS_TABLE));
        assert_eq!(table_name("team_table"), Some(TEAMS_TABLE));
        assert_eq!(table_name("nope"), None);
    }
}
