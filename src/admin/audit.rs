//! Audit rows (`general_settings.store_audit_logs: true`), written inside the caller's
//! transaction ([`Tx::commit`]) so a change and its record land together or not at all; and
//! `GET /audit`.

use serde_json::Value;

use super::crud::{self, Page, Tx, str_of};
use super::{AdminError, Call};
use crate::auth::Changed;
use crate::store::Query;

/// Table names as they appear in `TianjiLLM_AuditLog.table_name`.
pub const KEYS_TABLE: &str = "TianjiLLM_VerificationToken";
pub const TEAMS_TABLE: &str = "TianjiLLM_TeamTable";
pub const USERS_TABLE: &str = "TianjiLLM_UserTable";
pub const ORGS_TABLE: &str = "TianjiLLM_OrganizationTable";
pub const BUDGETS_TABLE: &str = "TianjiLLM_BudgetTable";
pub const END_USERS_TABLE: &str = "TianjiLLM_EndUserTable";
pub const MODELS_TABLE: &str = "TianjiLLM_ProxyModelTable";
pub const MEMBERSHIPS_TABLE: &str = "TianjiLLM_TeamMembership";
pub const INVITATIONS_TABLE: &str = "TianjiLLM_InvitationLink";
pub const AGENTS_TABLE: &str = "TianjiLLM_AgentsTable";
pub const PLUGINS_TABLE: &str = "TianjiLLM_ClaudeCodePluginTable";
pub const MCP_SERVERS_TABLE: &str = "TianjiLLM_MCPServerTable";
pub const PROMPTS_TABLE: &str = "TianjiLLM_PromptTable";

/// One change to record.
pub struct Change<'a> {
    pub action: &'a str,
    pub table: &'a str,
    pub object_id: &'a str,
    pub before: Option<&'a Value>,
    pub after: Option<&'a Value>,
}

impl<'a> Change<'a> {
    /// A new row.
    pub fn created(table: &'a str, object_id: &'a str, after: &'a Value) -> Self {
        Self::of("created", table, object_id, None, Some(after))
    }

    /// A changed row.
    pub fn updated(
        table: &'a str,
        object_id: &'a str,
        before: &'a Value,
        after: &'a Value,
    ) -> Self {
        Self::of("updated", table, object_id, Some(before), Some(after))
    }

    /// Any change: `action` with the row as it was and as it is.
    pub fn of(
        action: &'a str,
        table: &'a str,
        object_id: &'a str,
        before: Option<&'a Value>,
        after: Option<&'a Value>,
    ) -> Self {
        Self {
            action,
            table,
            object_id,
            before,
            after,
        }
    }
}

/// A `deleted` change for each row (`id` names the row's id column).
pub fn deleted<'a>(table: &'a str, id: &str, rows: &'a [Value]) -> Vec<Change<'a>> {
    rows.iter()
        .map(|row| {
            Change::of(
                "deleted",
                table,
                str_of(row, id).unwrap_or(""),
                Some(row),
                None,
            )
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

/// Record `change` inside `tx` when auditing is on (see [`Tx::commit`]).
pub async fn record(tx: &Tx<'_>, change: Change<'_>) -> Result<(), AdminError> {
    let call = tx.call();
    if !call.state.store_audit_logs {
        return Ok(());
    }
    tx.query(
        Query::InsertAuditLog,
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
    .await?;
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
        ("invitation_link", INVITATIONS_TABLE),
        ("invitations", INVITATIONS_TABLE),
        ("agents_table", AGENTS_TABLE),
        ("agents", AGENTS_TABLE),
        ("claude_code_plugin_table", PLUGINS_TABLE),
        ("plugins", PLUGINS_TABLE),
        ("mcp_server_table", MCP_SERVERS_TABLE),
        ("mcp_servers", MCP_SERVERS_TABLE),
        ("prompt_table", PROMPTS_TABLE),
        ("prompts", PROMPTS_TABLE),
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
    let Some(v) = call.given(name) else {
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
    let page = Page::of(call, 10)?;
    let table = match call.given("table_name") {
        None => None,
        Some(t) => Some(
            table_name(&t)
                .ok_or_else(|| AdminError::invalid("table_name", format!("unknown table '{t}'")))?
                .to_string(),
        ),
    };
    let filters = (
        call.given("changed_by"),
        call.given("changed_by_api_key"),
        call.given("action"),
        table,
        call.given("object_id"),
        date_param(call, "start_date")?,
        date_param(call, "end_date")?,
    );
    let (a, b, c, d, e, f, g) = &filters;
    let total = call
        .count(Query::CountAuditLogs, &[a, b, c, d, e, f, g])
        .await?;
    let (size, offset) = (page.size, page.offset());
    let logs = call
        .rows(Query::ListAuditLogs, &[a, b, c, d, e, f, g, &size, &offset])
        .await?;
    Ok(super::ok(&page.answer("audit_logs", logs, total)))
}

/// `GET /audit/{id}`
pub async fn get(call: &Call<'_>) -> Result<http::Response<crate::body::Body>, AdminError> {
    let id = call.path_key.clone().unwrap_or_default();
    let row = call
        .first(Query::GetAuditLog, &[&id])
        .await?
        .ok_or_else(|| crud::not_found("Audit log", "id", &id))?;
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
