//! `/team/member_add`, `/team/member_update`, `/team/member_delete`.

use http::Response;
use serde_json::{Map, Value, json};

use super::super::audit::{Change, MEMBERSHIPS_TABLE, TEAMS_TABLE};
use super::super::budgets;
use super::super::crud::{Tx, str_of};
use super::super::fields::{self, Field, spec};
use super::super::keys::Archived;
use super::super::users::user_named;
use super::super::{AdminError, Call, ok};
use super::{join, parse_members, team_not_found, with_member};
use crate::auth::{Changed, TeamRecord};
use crate::body::Body;
use crate::store::Query;

const ADD_FIELDS: &[Field] = spec! {
    own Str: team_id;
    own Any: member;
    own Money: max_budget_in_team;
    own Duration: budget_duration;
    own Strs: allowed_models;
};

const UPDATE_FIELDS: &[Field] = spec! {
    own Str: team_id user_id user_email role;
    own Money: max_budget_in_team temp_budget_increase;
    own Count: tpm_limit rpm_limit;
    own Duration: budget_duration;
    own Strs: allowed_models;
    own Object: model_max_budget;
    own Time: temp_budget_expiry;
};

const DELETE_FIELDS: &[Field] = spec! {
    own Str: team_id user_id user_email;
};

/// Budget-table columns from a member request (`max_budget_in_team` is the budget's
/// `max_budget`; the other budget fields keep their names).
fn budget_columns(own: &Map<String, Value>) -> Map<String, Value> {
    let mut own = own.clone();
    if let Some(v) = own.remove("max_budget_in_team") {
        own.insert("max_budget".into(), v);
    }
    budgets::take(&mut own)
}

/// The team `team_id` (404 without one) when the caller administers it.
async fn team_for_admin(tx: &Tx<'_>, team_id: &str) -> Result<Value, AdminError> {
    let team = tx.get(Query::GetTeamRows, team_id, team_not_found).await?;
    tx.call().require_team_admin(&team)?;
    Ok(team)
}

/// Whether `user_id` is in `team`'s `members_with_roles`.
fn listed(team: &Value, user_id: &str) -> bool {
    let rec = TeamRecord {
        members_with_roles: team["members_with_roles"].clone(),
        ..Default::default()
    };
    rec.has_member(user_id)
}

/// `POST /team/member_add`
pub async fn member_add(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let c = fields::check(ADD_FIELDS, call.object()?, false)?;
    let team_id = fields::required_str(&c.own, "team_id")?;
    let members = match c.own.get("member") {
        Some(v) => parse_members("member", v)?,
        None => return Err(AdminError::invalid("member", "`member` is required")),
    };
    let budget = budget_columns(&c.own);
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let before = team_for_admin(&tx, &team_id).await?;
    member_limits_within(call, &before, &budget, None, false)?;
    let mut team = before.clone();
    let mut user_ids = Vec::new();
    let mut changed = vec![Changed::Team(team_id.clone())];
    for m in &members {
        if let Some(u) = &m.user_id
            && listed(&team, u)
        {
            return Err(AdminError::Invalid {
                field: "member".into(),
                message: format!("User={u} is already a member of team={team_id}"),
            });
        }
        let b = tx.budget(None, budget.clone()).await?;
        let budget_id = b.as_ref().and_then(|b| str_of(b, "budget_id"));
        let user_id = join(&tx, &team_id, m, budget_id).await?;
        team["members_with_roles"] = with_member(&team, &user_id, m.user_email.as_deref(), &m.role);
        changed.push(Changed::User(user_id.clone()));
        changed.push(Changed::Member {
            team_id: team_id.clone(),
            user_id: user_id.clone(),
        });
        user_ids.push(user_id);
    }
    let patch = json!({"members_with_roles": team["members_with_roles"]});
    let after = tx.row(Query::UpdateTeam, &[&team_id, &patch]).await?;
    let after = after.unwrap_or_default();
    let users = tx.rows(Query::GetUserRows, &[&user_ids]).await?;
    let rows = tx.rows(Query::TeamMemberships, &[&team_id]).await?;
    let updated: Vec<Value> = rows
        .into_iter()
        .filter(|m| str_of(m, "user_id").is_some_and(|u| user_ids.iter().any(|x| x == u)))
        .collect();
    let changes = vec![Change::updated(TEAMS_TABLE, &team_id, &before, &after)];
    tx.commit(changes, &changed).await?;
    let mut out = match after {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    out.insert("updated_users".into(), Value::Array(users));
    out.insert("updated_team_memberships".into(), Value::Array(updated));
    Ok(ok(&Value::Object(out)))
}

/// The member a request names in `team` (listed there or with a membership row), and its
/// membership row.
async fn member_of(
    tx: &Tx<'_>,
    team: &Value,
    team_id: &str,
    own: &Map<String, Value>,
) -> Result<(String, Option<Value>), AdminError> {
    let s = |k: &str| own.get(k).and_then(Value::as_str);
    let neither = "pass the member's `user_id` or `user_email`";
    let user_id = user_named(tx, s("user_id"), s("user_email"), neither).await?;
    let membership = tx
        .row(Query::GetMembershipForUpdate, &[&team_id, &user_id])
        .await?;
    if !listed(team, &user_id) && membership.is_none() {
        return Err(not_member(&user_id, team_id));
    }
    Ok((user_id, membership))
}

fn not_member(user_id: &str, team_id: &str) -> AdminError {
    AdminError::NotFound {
        param: "user_id",
        message: format!("User={user_id} is not a member of team={team_id}"),
    }
}

/// `POST /team/member_update`: role and in-team budget / limits of one member.
pub async fn member_update(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let c = fields::check(UPDATE_FIELDS, call.object()?, false)?;
    let team_id = fields::required_str(&c.own, "team_id")?;
    let role = c
        .own
        .get("role")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(r) = &role
        && r != "admin"
        && r != "user"
    {
        return Err(AdminError::invalid(
            "role",
            format!("must be 'admin' or 'user', got '{r}'"),
        ));
    }
    let budget = budget_columns(&c.own);
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let before = team_for_admin(&tx, &team_id).await?;
    let (user_id, membership) = member_of(&tx, &before, &team_id, &c.own).await?;
    let budget_id = membership.as_ref().and_then(|m| str_of(m, "budget_id"));
    if !call.principal.is_admin() {
        let current = match budget_id {
            Some(id) => tx.find(Query::GetBudgetRows, id).await?,
            None => None,
        };
        let own = call.principal.user_id() == Some(user_id.as_str());
        member_limits_within(call, &before, &budget, current.as_ref(), own)?;
    }
    let mut changes_before = vec![before.clone()];
    let mut team_after = before.clone();
    if let Some(r) = &role {
        let email = before["members_with_roles"]
            .as_array()
            .and_then(|ms| {
                ms.iter()
                    .find(|m| str_of(m, "user_id") == Some(user_id.as_str()))
            })
            .and_then(|m| str_of(m, "user_email"))
            .map(str::to_string);
        let list = with_member(&before, &user_id, email.as_deref(), r);
        let patch = json!({"members_with_roles": list});
        let updated = tx.row(Query::UpdateTeam, &[&team_id, &patch]).await?;
        team_after = updated.unwrap_or_default();
    }
    let mut budget_after = Value::Null;
    if let Some(id) = budget_id.filter(|_| !budget.is_empty()) {
        let old = tx.find(Query::GetBudgetRows, id).await?;
        changes_before.push(old.unwrap_or_default());
    }
    if let Some(b) = tx.budget(budget_id, budget).await? {
        if budget_id.is_none() {
            let id = str_of(&b, "budget_id");
            tx.exec(Query::UpsertMembership, &[&user_id, &team_id, &id])
                .await?;
        }
        budget_after = b;
    }
    let member_key = format!("{team_id}/{user_id}");
    let was = Value::Array(changes_before);
    let after = json!({"team": team_after, "budget": budget_after});
    let change = Change::updated(MEMBERSHIPS_TABLE, &member_key, &was, &after);
    let member = Changed::Member {
        team_id: team_id.clone(),
        user_id: user_id.clone(),
    };
    tx.commit(vec![change], &[Changed::Team(team_id.clone()), member])
        .await?;
    let b = |k: &str| budget_after.get(k).cloned().unwrap_or(Value::Null);
    Ok(ok(&json!({
        "team_id": team_id,
        "user_id": user_id,
        "user_email": c.own.get("user_email"),
        "role": role,
        "max_budget_in_team": b("max_budget"),
        "tpm_limit": b("tpm_limit"),
        "rpm_limit": b("rpm_limit"),
        "budget_duration": b("budget_duration"),
        "allowed_models": b("allowed_models"),
        "temp_budget_increase": b("temp_budget_increase"),
        "temp_budget_expiry": b("temp_budget_expiry"),
        "model_max_budget": b("model_max_budget"),
    })))
}

/// `POST /team/member_delete`: the member leaves the team; its keys in the team are deleted
/// (archived first), since they would otherwise keep spending the team's budget.
pub async fn member_delete(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let c = fields::check(DELETE_FIELDS, call.object()?, false)?;
    let team_id = fields::required_str(&c.own, "team_id")?;
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let before = team_for_admin(&tx, &team_id).await?;
    let (user_id, _) = member_of(&tx, &before, &team_id, &c.own).await?;
    let list: Vec<Value> = before["members_with_roles"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter(|m| str_of(m, "user_id") != Some(user_id.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let patch = json!({"members_with_roles": list});
    let after = tx.row(Query::UpdateTeam, &[&team_id, &patch]).await?;
    let after = after.unwrap_or_default();
    tx.exec(Query::DeleteMembership, &[&team_id, &user_id])
        .await?;
    tx.exec(Query::RemoveUserTeam, &[&user_id, &team_id])
        .await?;
    let keys = Archived::listed(&tx, Query::MemberKeyTokens, &[&team_id, &user_id]).await?;
    let mut changes = vec![Change::updated(TEAMS_TABLE, &team_id, &before, &after)];
    let mut changed = vec![
        Changed::Team(team_id.clone()),
        Changed::User(user_id.clone()),
        Changed::Member {
            team_id: team_id.clone(),
            user_id: user_id.clone(),
        },
    ];
    keys.record(&mut changes, &mut changed);
    tx.commit(changes, &changed).await?;
    Ok(ok(&after))
}

/// A non-admin's budget for a member (`budget`: budget-table columns) stays within the team's
/// limits, and — for its own membership — within its current budget where the team sets none.
fn member_limits_within(
    call: &Call<'_>,
    team: &Value,
    budget: &Map<String, Value>,
    current: Option<&Value>,
    own: bool,
) -> Result<(), AdminError> {
    use super::super::keys::{models_within, num, within_ceiling};
    if call.principal.is_admin() {
        return Ok(());
    }
    let now = |c: &str| num(current.and_then(|b| b.get(c)));
    for (field, column, team_column) in [
        ("max_budget_in_team", "max_budget", "max_budget"),
        ("tpm_limit", "tpm_limit", "tpm_limit"),
        ("rpm_limit", "rpm_limit", "rpm_limit"),
    ] {
        if let Some(v) = budget.get(column) {
            within_ceiling(
                field,
                num(Some(v)),
                num(team.get(team_column)),
                now(column),
                own,
            )?;
        }
    }
    if let Some(extra) = budget
        .get("temp_budget_increase")
        .and_then(Value::as_f64)
        .filter(|x| *x > 0.0)
        && let Some(now) = num(budget.get("max_budget")).or(now("max_budget"))
    {
        within_ceiling(
            "temp_budget_increase",
            Some(now + extra),
            num(team.get("max_budget")),
            Some(now),
            own,
        )?;
    }
    if let Some(v) = budget.get("allowed_models") {
        let list = |v: Option<&Value>| -> Option<Vec<String>> {
            v.and_then(|v| serde_json::from_value(v.clone()).ok())
        };
        models_within(
            "allowed_models",
            list(Some(v)).as_deref(),
            list(team.get("models")).as_deref(),
            list(current.and_then(|b| b.get("allowed_models"))).as_deref(),
            own,
        )?;
    }
    Ok(())
}
