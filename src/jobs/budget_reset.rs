//! Scheduled budget resets (`budget_duration`): keys, users and teams by their own
//! `budget_reset_at`; organisations, end users and team members through their BudgetTable row.
//! Every instance runs the job; a Postgres advisory lock lets one of them do the work each
//! time. Reset entities are invalidated everywhere, so budget checks see the new spend at once.

use std::sync::Weak;
use std::time::Duration;

use crate::auth::Changed;
use crate::state::AppState;
use crate::store::{Query, StoreError};

/// Default seconds between two runs (`proxy_budget_rescheduler_min_time` / `_max_time`).
pub const DEFAULT_MIN_SECS: f64 = 10.0;
pub const DEFAULT_MAX_SECS: f64 = 12.0;

/// Run the job until the state is dropped.
pub fn spawn(state: Weak<AppState>, min: Duration, max: Duration) {
    tokio::spawn(async move {
        loop {
            let jitter = max.saturating_sub(min).mul_f64(fastrand::f64());
            tokio::time::sleep(min + jitter).await;
            let Some(st) = state.upgrade() else {
                return;
            };
            match run_once(&st).await {
                Ok(changed) if !changed.is_empty() => {
                    tracing::info!(entities = changed.len(), "budgets reset");
                    st.spend.reset_shared(&changed, 0.0).await;
                    st.invalidate(&changed).await;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "budget reset job failed"),
            }
        }
    });
}

/// Reset what is due; returns the entities whose spend went back to 0.
pub async fn run_once(state: &AppState) -> Result<Vec<Changed>, StoreError> {
    let Some(store) = &state.store else {
        return Ok(Vec::new());
    };
    let mut conn = store.conn().await?;
    let [lock, keys, users, teams, budgets] = conn.stmts([
        Query::TryLockBudgetReset,
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
    let locked: bool = tx.query_one(&lock, &[]).await?.try_get(0)?;
    if !locked {
        return Ok(Vec::new());
    }
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
