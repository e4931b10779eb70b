//! `/team/member_add`, `/team/member_update`, `/team/member_delete`.

use http::Response;
use serde_json::{Map, Value, json};

use super::super::audit::{self, Change, MEMBERSHIPS_TABLE, TEAMS_TABLE};
use super::super::db::{self, str_of};
use super::super::fields::{self, Dest, Field, Kind, f};
use super::super::{AdminError, Call, ok};
use super::{MemberStmts, join, parse_members, team_in_tx, with_member};
use crate::auth::Changed;
use crate::body::Body;
use crate::store::{Query, StoreError};

const ADD_FIELDS: &[Field] = &[
    f("team_id", Kind::Str, Dest::Own),
    f("member", Kind::Any, Dest::Own),
    f("max_budget_in_team", Kind::Money, Dest::Own),
    f("budget_duration", Kind::Duration, Dest::Own),
    f("allowed_models", Kind::Strs, Dest::Own),
];

const UPDATE_FIELDS: &[Field] = &[
    f("team_id", Kind::Str, Dest::Own),
    f("user_id", Kind::Str, Dest::Own),
    f("user_email", Kind::Str, Dest::Own),
    f("role", Kind::Str, Dest::Own),
    f("max_budget_in_team", Kind::Money, Dest::Own),
    f("tpm_limit", Kind::Count, Dest::Own),
    f("rpm_limit", Kind::Count, Dest::Own),
    f("budget_duration", Kind::Duration, Dest::Own),
    f("allowed_models", Kind::Strs, Dest::Own),
    f("model_max_budget", Kind::Object, Dest::Own),
    f("temp_budget_increase", Kind::Money, Dest::Own),
    f("temp_budget_expiry", Kind::Time, Dest::Own),
];

const DELETE_FIELDS: &[Field] = &[
    f("team_id", Kind::Str, Dest::Own),
    f("user_id", Kind::Str, Dest::Own),
    f("user_email", Kind::Str, Dest::Own),
];

/// Budget-table columns from a member request (`max_budget_in_team` is the budget's
/// `max_budget`, `allowed_models` its `allowed_models`).
fn budget_columns(own: &Map<String, Value>) -> Map<String, Value> {
    let mut b = Map::new();
    for (from, to) in [
        ("max_budget_in_team", "max_budget"),
        ("tpm_limit", "tpm_limit"),
        ("rpm_limit", "rpm_limit"),
        ("budget_duration", "budget_duration"),
        ("allowed_models", "allowed_models"),
        ("model_max_budget", "model_max_budget"),
        ("temp_budget_increase", "temp_budget_increase"),
        ("temp_budget_expiry", "temp_budget_expiry"),
    ] {
        if let Some(v) = own.get(from) {
            b.insert(to.to_string(), v.clone());
            if to == "budget_duration" {
                let reset = v.as_str().and_then(super::super::duration::parse).map(|d| {
                    crate::auth::fmt_utc(super::super::keys::now_secs() + d.as_secs_f64())
                });
                b.insert("budget_reset_at".into(), json!(reset));
            }
        }
    }
    b
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
    let changed_by = call.changed_by();

    let mut conn = call.store.conn().await?;
    let [
        get_rows,
        update,
        by_email,
        ensure_user,
        add_team,
        upsert_membership,
        insert_budget,
        user_rows,
        memberships,
        audit_insert,
    ] = conn.stmts([
        Query::GetTeamRows,
        Query::UpdateTeam,
        Query::UserIdByEmail,
        Query::EnsureUser,
        Query::AddUserTeam,
        Query::UpsertMembership,
        Query::InsertBudget,
        Query::GetUserRows,
        Query::TeamMemberships,
        Query::InsertAuditLog,
    ])?;
    let tx = conn.client.transaction().await.map_err(StoreError::from)?;
    let before = team_in_tx(&tx, &get_rows, &team_id).await?;
    call.require_team_admin(&before)?;
    member_limits_within(call, &before, &budget, None, false)?;
    let st = MemberStmts {
        by_email,
        ensure_user,
        add_team,
        upsert_membership,
    };
    let mut team = before.clone();
    let mut user_ids = Vec::new();
    let mut changed = vec![Changed::Team(team_id.clone())];
    for m in &members {
        let known = crate::auth::TeamRecord {
            members_with_roles: team["members_with_roles"].clone(),
            ..Default::default()
        };
        if let Some(u) = &m.user_id
            && known.has_member(u)
        {
            return Err(AdminError::Invalid {
                field: "member".into(),
                message: format!("User={u} is already a member of team={team_id}"),
            });
        }
        let budget_id = if budget.is_empty() {
            None
        } else {
            let mut row = budget.clone();
            row.insert("created_by".into(), json!(changed_by));
            row.insert("updated_by".into(), json!(changed_by));
            let b = db::row(&tx, &insert_budget, &[&Value::Object(row)])
                .await?
                .unwrap_or_default();
            str_of(&b, "budget_id").map(str::to_string)
        };
        let user_id = join(&tx, &st, &team_id, m, budget_id.as_deref()).await?;
        team["members_with_roles"] = with_member(&team, &user_id, m.user_email.as_deref(), &m.role);
        changed.push(Changed::User(user_id.clone()));
        changed.push(Changed::Member {
            team_id: team_id.clone(),
            user_id: user_id.clone(),
        });
        user_ids.push(user_id);
    }
    let after = db::row(
        &tx,
        &update,
        &[
            &team_id,
            &json!({"members_with_roles": team["members_with_roles"]}),
        ],
    )
    .await?
    .unwrap_or_default();
    let users = db::rows(&tx, &user_rows, &[&user_ids]).await?;
    let rows = db::rows(&tx, &memberships, &[&team_id]).await?;
    let updated: Vec<Value> = rows
        .into_iter()
        .filter(|m| str_of(m, "user_id").is_some_and(|u| user_ids.iter().any(|x| x == u)))
        .collect();
    audit::commit(
        call,
        tx,
        &audit_insert,
        vec![Change {
            action: "updated",
            table: TEAMS_TABLE,
            object_id: &team_id,
            before: Some(&before),
            after: Some(&after),
        }],
        &changed,
    )
    .await?;
    let mut out = match after {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    out.insert("updated_users".into(), Value::Array(users));
    out.insert("updated_team_memberships".into(), Value::Array(updated));
    Ok(ok(&Value::Object(out)))
}

/// The member's user id, from `user_id` or `user_email`.
async fn member_id(
    tx: &tokio_postgres::Transaction<'_>,
    by_email: &tokio_postgres::Statement,
    own: &Map<String, Value>,
) -> Result<String, AdminError> {
    if let Some(u) = own.get("user_id").and_then(Value::as_str) {
        return Ok(u.to_string());
    }
    let Some(email) = own.get("user_email").and_then(Value::as_str) else {
        return Err(AdminError::invalid(
            "user_id",
            "pass the member's `user_id` or `user_email`",
        ));
    };
    db::strings(tx, by_email, &[&email])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| AdminError::NotFound {
            param: "user_email",
            message: format!("No user with user_email={email}"),
        })
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
    let changed_by = call.changed_by();

    let mut conn = call.store.conn().await?;
    let [
        get_rows,
        update,
        by_email,
        get_membership,
        upsert_membership,
        insert_budget,
        get_budgets,
        update_budget,
        audit_insert,
    ] = conn.stmts([
        Query::GetTeamRows,
        Query::UpdateTeam,
        Query::UserIdByEmail,
        Query::GetMembershipForUpdate,
        Query::UpsertMembership,
        Query::InsertBudget,
        Query::GetBudgetRows,
        Query::UpdateBudget,
        Query::InsertAuditLog,
    ])?;
    let tx = conn.client.transaction().await.map_err(StoreError::from)?;
    let before = team_in_tx(&tx, &get_rows, &team_id).await?;
    call.require_team_admin(&before)?;
    let user_id = member_id(&tx, &by_email, &c.own).await?;
    let rec = crate::auth::TeamRecord {
        members_with_roles: before["members_with_roles"].clone(),
        ..Default::default()
    };
    let membership = db::row(&tx, &get_membership, &[&team_id, &user_id]).await?;
    if !rec.has_member(&user_id) && membership.is_none() {
        return Err(not_member(&user_id, &team_id));
    }
    if !call.principal.is_admin() {
        let current = match membership.as_ref().and_then(|m| str_of(m, "budget_id")) {
            Some(id) => db::row(&tx, &get_budgets, &[&vec![id.to_string()]]).await?,
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
        team_after = db::row(
            &tx,
            &update,
            &[&team_id, &json!({"members_with_roles": list})],
        )
        .await?
        .unwrap_or_default();
    }
    let mut budget_after = Value::Null;
    if !budget.is_empty() {
        let existing = membership
            .as_ref()
            .and_then(|m| str_of(m, "budget_id"))
            .map(str::to_string);
        budget_after = match existing {
            Some(id) => {
                let old = db::row(&tx, &get_budgets, &[&vec![id.clone()]])
                    .await?
                    .unwrap_or_default();
                changes_before.push(old);
                db::row(
                    &tx,
                    &update_budget,
                    &[&id, &Value::Object(budget.clone()), &changed_by],
                )
                .await?
                .unwrap_or_default()
            }
            None => {
                let mut row = budget.clone();
                row.insert("created_by".into(), json!(changed_by));
                row.insert("updated_by".into(), json!(changed_by));
                let b = db::row(&tx, &insert_budget, &[&Value::Object(row)])
                    .await?
                    .unwrap_or_default();
                let id = str_of(&b, "budget_id").map(str::to_string);
                db::exec(&tx, &upsert_membership, &[&user_id, &team_id, &id]).await?;
                b
            }
        };
    }
    let member_key = format!("{team_id}/{user_id}");
    audit::commit(
        call,
        tx,
        &audit_insert,
        vec![Change {
            action: "updated",
            table: MEMBERSHIPS_TABLE,
            object_id: &member_key,
            before: Some(&Value::Array(changes_before)),
            after: Some(&json!({"team": team_after, "budget": budget_after})),
        }],
        &[
            Changed::Team(team_id.clone()),
            Changed::Member {
                team_id: team_id.clone(),
                user_id: user_id.clone(),
            },
        ],
    )
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
    let keys_st = super::super::keys::ArchiveStmts::new(
        conn.stmts(super::super::keys::ArchiveStmts::QUERIES)?,
    );
    let [
        get_rows,
        update,
        by_email,
        get_membership,
        delete_membership,
        remove_team,
        key_tokens,
        audit_insert,
    ] = conn.stmts([
        Query::GetTeamRows,
        Query::UpdateTeam,
        Query::UserIdByEmail,
        Query::GetMembershipForUpdate,
        Query::DeleteMembership,
        Query::RemoveUserTeam,
        Query::MemberKeyTokens,
        Query::InsertAuditLog,
    ])?;
    let tx = conn.client.transaction().await.map_err(StoreError::from)?;
    let before = team_in_tx(&tx, &get_rows, &team_id).await?;
    call.require_team_admin(&before)?;
    let user_id = member_id(&tx, &by_email, &c.own).await?;
    let rec = crate::auth::TeamRecord {
        members_with_roles: before["members_with_roles"].clone(),
        ..Default::default()
    };
    let membership = db::row(&tx, &get_membership, &[&team_id, &user_id]).await?;
    if !rec.has_member(&user_id) && membership.is_none() {
        return Err(not_member(&user_id, &team_id));
    }
    let list: Vec<Value> = before["members_with_roles"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter(|m| str_of(m, "user_id") != Some(user_id.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let after = db::row(
        &tx,
        &update,
        &[&team_id, &json!({"members_with_roles": list})],
    )
    .await?
    .unwrap_or_default();
    db::exec(&tx, &delete_membership, &[&team_id, &user_id]).await?;
    db::exec(&tx, &remove_team, &[&user_id, &team_id]).await?;
    let tokens = db::strings(&tx, &key_tokens, &[&team_id, &user_id]).await?;
    let keys_before = super::super::keys::archive_keys(call, &tx, &keys_st, &tokens).await?;
    let mut changes = vec![Change {
        action: "updated",
        table: TEAMS_TABLE,
        object_id: &team_id,
        before: Some(&before),
        after: Some(&after),
    }];
    changes.extend(audit::deleted(audit::KEYS_TABLE, "token", &keys_before));
    let mut changed = vec![
        Changed::Team(team_id.clone()),
        Changed::User(user_id.clone()),
        Changed::Member {
            team_id: team_id.clone(),
            user_id: user_id.clone(),
        },
    ];
    changed.extend(audit::keys_changed(&tokens));
    audit::commit(call, tx, &audit_insert, changes, &changed).await?;
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
