//! Scheduled budget resets (`budget_duration`): keys, users and teams by their own
//! `budget_reset_at`; organisations, end users and team members through their BudgetTable row.
//! The scheduler runs it on one instance every `proxy_budget_rescheduler_min_time` to
//! `_max_time` seconds; reset entities are invalidated everywhere (and their shared spend set
//! to 0), so budget checks see the new spend at once. Re-checking `budget_reset_at` under the
//! row lock makes a second pass over the same period a no-op.

use std::sync::Arc;

use serde_json::json;

use super::scheduler::Run;
use crate::auth::Changed;
use crate::state::AppState;
use crate::store::{Query, StoreError};

/// Default seconds between two runs (`proxy_budget_rescheduler_min_time` / `_max_time`).
pub const DEFAULT_MIN_SECS: f64 = 10.0;
pub const DEFAULT_MAX_SECS: f64 = 12.0;

/// The scheduled job's work: reset what is due, then tell every instance.
pub fn work(st: Arc<AppState>) -> Run {
    Box::pin(async move {
        let changed = run_once(&st).await?;
        if !changed.is_empty() {
            tracing::info!(entities = changed.len(), "budgets reset");
            st.spend.reset_shared(&changed, 0.0).await;
            st.invalidate(&changed).await;
        }
        Ok(json!({"reset": changed.len()}))
    })
}

/// Reset what is due; returns the entities whose spend went back to 0.
pub async fn run_once(state: &AppState) -> Result<Vec<Changed>, StoreError> {
    let Some(store) = &state.store else {
        return Ok(Vec::new());
    };
    let mut conn = store.conn().await?;
    let [keys, users, teams, budgets] = conn.stmts([
        Query::ResetDueKeys,
        Query::ResetDueUsers,
        Query::ResetDueTeams,
        Query::ResetDueBudgets,
    ])?;
    let [orgs, end_users, members] = conn.stmts([
        Query::ResetBudgetOrganizations,
        Query::ResetBudgetEndUsers,
        Query::ResetBudgetTeamMembers,
    ])?;
    let tx = conn.client.transaction().await?;
    let mut changed = Vec::new();
    let ids = |rows: Vec<tokio_postgres::Row>| -> Vec<String> {
        rows.iter().filter_map(|r| r.try_get(0).ok()).collect()
    };
    changed.extend(
        ids(tx.query(&keys, &[]).await?)
            .into_iter()
            .map(Changed::Key),
    );
    changed.extend(
        ids(tx.query(&users, &[]).await?)
            .into_iter()
            .map(Changed::User),
    );
    changed.extend(
        ids(tx.query(&teams, &[]).await?)
            .into_iter()
            .map(Changed::Team),
    );
    let ended: Vec<String> = tx
        .query(&budgets, &[])
        .await?
        .iter()
        .filter(|r| r.try_get::<_, bool>(1).unwrap_or(false))
        .filter_map(|r| r.try_get(0).ok())
        .collect();
    if !ended.is_empty() {
        changed.extend(
            ids(tx.query(&orgs, &[&ended]).await?)
                .into_iter()
                .map(Changed::Org),
        );
        changed.extend(
            ids(tx.query(&end_users, &[&ended]).await?)
                .into_iter()
                .map(Changed::EndUser),
        );
        for r in tx.query(&members, &[&ended]).await? {
            if let (Ok(team_id), Ok(user_id)) = (r.try_get(0), r.try_get(1)) {
                changed.push(Changed::Member { team_id, user_id });
            }
        }
    }
    tx.commit().await?;
    Ok(changed)
}
