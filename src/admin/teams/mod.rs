//! `/team/*`: teams, their members and their permissions.
//!
//! `mod.rs`: the field table, new, update, delete, block, models; `members.rs`: member_add,
//! member_update, member_delete; `read.rs`: info, list, available, permissions.

mod members;
mod read;

pub use members::{member_add, member_delete, member_update};
pub use read::{available, info, list, permissions_list, permissions_update};

use http::Response;
use serde_json::{Map, Value, json};
use tokio_postgres::Transaction;

use super::audit::{self, Change, TEAMS_TABLE};
use super::db::{self, str_of};
use super::fields::{self, Dest, Field, Kind, f};
use super::{AdminError, Call, ok};
use crate::auth::Changed;
use crate::body::Body;
use crate::store::{Query, StoreError};

/// Every field of LiteLLM's `NewTeamRequest` / `UpdateTeamRequest`.
const FIELDS: &[Field] = &[
    f("team_id", Kind::Str, Dest::Own),
    f("team_alias", Kind::Str, Dest::Column),
    f("organization_id", Kind::Str, Dest::Column),
    f("admins", Kind::Strs, Dest::Column),
    f("members", Kind::Strs, Dest::Column),
    f("members_with_roles", Kind::Any, Dest::Own),
    f("team_member_permissions", Kind::Strs, Dest::Column),
    f("metadata", Kind::Object, Dest::Column),
    f("tpm_limit", Kind::Count, Dest::Column),
    f("rpm_limit", Kind::Count, Dest::Column),
    f("tpd_limit", Kind::Count, Dest::Column),
    f("max_budget", Kind::Money, Dest::Column),
    f("soft_budget", Kind::Money, Dest::Column),
    f("max_parallel_requests", Kind::Count, Dest::Column),
    f("budget_duration", Kind::Duration, Dest::Column),
    f("budget_limits", Kind::Any, Dest::Column),
    f("models", Kind::Strs, Dest::Column),
    f("blocked", Kind::Bool, Dest::Column),
    f("router_settings", Kind::Object, Dest::Column),
    f("access_group_ids", Kind::Strs, Dest::Column),
    f("default_team_member_models", Kind::Strs, Dest::Column),
    f("model_max_budget", Kind::Object, Dest::Column),
    f("policies", Kind::Strs, Dest::Column),
    f("object_permission", Kind::Object, Dest::Own),
    f("model_aliases", Kind::Object, Dest::Meta),
    f("tags", Kind::Strs, Dest::Meta),
    f("guardrails", Kind::Strs, Dest::Meta),
    f("prompts", Kind::Strs, Dest::Meta),
    f("allowed_passthrough_routes", Kind::Strs, Dest::Meta),
    f("denied_passthrough_routes", Kind::Strs, Dest::Meta),
    f("disable_global_guardrails", Kind::Bool, Dest::Meta),
    f("require_trace_id", Kind::Bool, Dest::Meta),
    f("secret_manager_settings", Kind::Object, Dest::Meta),
    f("model_rpm_limit", Kind::Object, Dest::Meta),
    f("model_tpm_limit", Kind::Object, Dest::Meta),
    f("rpm_limit_type", Kind::Str, Dest::Meta),
    f("tpm_limit_type", Kind::Str, Dest::Meta),
    f("default_estimated_output_tokens", Kind::Count, Dest::Meta),
    f(
        "default_estimated_output_tokens_per_model",
        Kind::Object,
        Dest::Meta,
    ),
    f("mcp_rpm_limit", Kind::Object, Dest::Meta),
    f("team_member_budget", Kind::Money, Dest::Meta),
    f("team_member_rpm_limit", Kind::Count, Dest::Meta),
    f("team_member_tpm_limit", Kind::Count, Dest::Meta),
    f("team_member_key_duration", Kind::Duration, Dest::Meta),
    f("team_member_budget_duration", Kind::Duration, Dest::Meta),
    f("team_member_model_max_budget", Kind::Object, Dest::Meta),
    f("allowed_vector_store_indexes", Kind::Any, Dest::Meta),
    f("enforced_batch_output_expires_after", Kind::Any, Dest::Meta),
    f("enforced_file_expires_after", Kind::Any, Dest::Meta),
];

/// What a team admin (not a proxy admin) may change with `/team/update`.
const TEAM_ADMIN_FIELDS: &[&str] = &["team_alias", "team_member_permissions", "tags"];

/// 404 for a team that does not exist.
pub(crate) fn team_not_found(team_id: &str) -> AdminError {
    AdminError::NotFound {
        param: "team_id",
        message: format!("Team not found, passed team_id={team_id}"),
    }
}

/// The team row, locked for this transaction, or 404.
pub(crate) async fn team_in_tx(
    tx: &Transaction<'_>,
    get_rows: &tokio_postgres::Statement,
    team_id: &str,
) -> Result<Value, AdminError> {
    db::row(tx, get_rows, &[&vec![team_id.to_string()]])
        .await?
        .ok_or_else(|| team_not_found(team_id))
}

/// `members_with_roles` as given: a list of `{role, user_id?, user_email?}`.
pub(crate) fn parse_members(field: &str, v: &Value) -> Result<Vec<Member>, AdminError> {
    let list: Vec<Value> = match v {
        Value::Array(a) => a.clone(),
        Value::Object(_) => vec![v.clone()],
        _ => {
            return Err(AdminError::invalid(
                field,
                "must be a member or a list of members",
            ));
        }
    };
    list.iter()
        .map(|m| {
            let obj = m
                .as_object()
                .ok_or_else(|| AdminError::invalid(field, "each member must be an object"))?;
            for k in obj.keys() {
                if !["role", "user_id", "user_email"].contains(&k.as_str()) {
                    return Err(AdminError::invalid(
                        &format!("{field}.{k}"),
                        format!("unknown field `{k}`"),
                    ));
                }
            }
            let s = |k: &str| -> Result<Option<String>, AdminError> {
                match obj.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                    Some(_) => Err(AdminError::invalid(
                        &format!("{field}.{k}"),
                        "must be a non-empty string",
                    )),
                }
            };
            let role = s("role")?.unwrap_or_else(|| "user".into());
            if role != "admin" && role != "user" {
                return Err(AdminError::invalid(
                    &format!("{field}.role"),
                    format!("must be 'admin' or 'user', got '{role}'"),
                ));
            }
            let (user_id, user_email) = (s("user_id")?, s("user_email")?);
            if user_id.is_none() && user_email.is_none() {
                return Err(AdminError::invalid(
                    field,
                    "each member needs a user_id or a user_email",
                ));
            }
            Ok(Member {
                role,
                user_id,
                user_email,
            })
        })
        .collect()
}

/// A team member as given in a request.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub role: String,
    pub user_id: Option<String>,
    pub user_email: Option<String>,
}

/// Prepared statements for adding members.
pub(crate) struct MemberStmts {
    pub by_email: tokio_postgres::Statement,
    pub ensure_user: tokio_postgres::Statement,
    pub add_team: tokio_postgres::Statement,
    pub upsert_membership: tokio_postgres::Statement,
}

/// Make `member` a member of `team_id`: its user exists (created as an internal user if new),
/// lists the team, and has a membership row. Returns the resolved user id.
pub(crate) async fn join(
    tx: &Transaction<'_>,
    st: &MemberStmts,
    team_id: &str,
    member: &Member,
    budget_id: Option<&str>,
) -> Result<String, AdminError> {
    let user_id = match (&member.user_id, &member.user_email) {
        (Some(u), _) => u.clone(),
        (None, Some(email)) => db::strings(tx, &st.by_email, &[email])
            .await?
            .into_iter()
            .next()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        (None, None) => return Err(AdminError::invalid("member", "user_id or user_email")),
    };
    db::exec(tx, &st.ensure_user, &[&user_id, &member.user_email]).await?;
    db::exec(tx, &st.add_team, &[&user_id, &team_id]).await?;
    db::exec(
        tx,
        &st.upsert_membership,
        &[&user_id, &team_id, &budget_id.map(str::to_string)],
    )
    .await?;
    Ok(user_id)
}

/// `members_with_roles` of `team` with `user_id` set to `role` (added if missing).
pub(crate) fn with_member(team: &Value, user_id: &str, email: Option<&str>, role: &str) -> Value {
    let mut list: Vec<Value> = team
        .get("members_with_roles")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match list
        .iter_mut()
        .find(|m| m.get("user_id").and_then(Value::as_str) == Some(user_id))
    {
        Some(m) => {
            m["role"] = json!(role);
            if let Some(e) = email {
                m["user_email"] = json!(e);
            }
        }
        None => list.push(json!({"role": role, "user_id": user_id, "user_email": email})),
    }
    Value::Array(list)
}

/// Insert an object-permission row from `v`, returning its id.
pub(crate) async fn object_permission(
    tx: &Transaction<'_>,
    insert: &tokio_postgres::Statement,
    v: &Value,
) -> Result<String, AdminError> {
    let row = db::row(tx, insert, &[v]).await?.unwrap_or_default();
    Ok(str_of(&row, "object_permission_id")
        .unwrap_or_default()
        .to_string())
}

/// `POST /team/new`
pub async fn new(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let mut c = fields::check(FIELDS, call.object()?, false)?;
    let members = match c.own.get("members_with_roles") {
        Some(v) => parse_members("members_with_roles", v)?,
        None => Vec::new(),
    };
    let team_id = match c.own.get("team_id").and_then(Value::as_str) {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => uuid::Uuid::now_v7().to_string(),
    };
    let metadata = c.new_metadata();
    let mut row = c.columns;
    row.insert("team_id".into(), json!(team_id));
    row.insert("metadata".into(), metadata);

    let mut conn = call.store.conn().await?;
    let [
        get_rows,
        alias_taken,
        insert,
        update,
        op_insert,
        by_email,
        ensure_user,
        add_team,
        upsert_membership,
        audit_insert,
    ] = conn.stmts([
        Query::GetTeamRows,
        Query::TeamAliasTaken,
        Query::InsertTeam,
        Query::UpdateTeam,
        Query::InsertObjectPermission,
        Query::UserIdByEmail,
        Query::EnsureUser,
        Query::AddUserTeam,
        Query::UpsertMembership,
        Query::InsertAuditLog,
    ])?;
    let tx = conn.client.transaction().await.map_err(StoreError::from)?;
    if db::row(&tx, &get_rows, &[&vec![team_id.clone()]])
        .await?
        .is_some()
    {
        return Err(AdminError::invalid(
            "team_id",
            format!("Team id = {team_id} already exists. Please use a different team id."),
        ));
    }
    if let Some(alias) = str_of(&Value::Object(row.clone()), "team_alias")
        && !tx
            .query(&alias_taken, &[&alias, &team_id])
            .await
            .map_err(StoreError::from)?
            .is_empty()
    {
        return Err(AdminError::invalid(
            "team_alias",
            format!("Team alias '{alias}' already exists. Please use a different alias."),
        ));
    }
    if let Some(op) = c.own.get("object_permission") {
        let id = object_permission(&tx, &op_insert, op).await?;
        row.insert("object_permission_id".into(), json!(id));
    }
    let mut team = db::row(&tx, &insert, &[&Value::Object(row)])
        .await?
        .unwrap_or_default();
    let st = MemberStmts {
        by_email,
        ensure_user,
        add_team,
        upsert_membership,
    };
    let mut changed = vec![Changed::Team(team_id.clone())];
    if !members.is_empty() {
        for m in &members {
            let user_id = join(&tx, &st, &team_id, m, None).await?;
            team["members_with_roles"] =
                with_member(&team, &user_id, m.user_email.as_deref(), &m.role);
            changed.push(Changed::User(user_id));
        }
        team = db::row(
            &tx,
            &update,
            &[
                &team_id,
                &json!({"members_with_roles": team["members_with_roles"]}),
            ],
        )
        .await?
        .unwrap_or_default();
    }
    audit::commit(
        call,
        tx,
        &audit_insert,
        vec![Change {
            action: "created",
            table: TEAMS_TABLE,
            object_id: &team_id,
            before: None,
            after: Some(&team),
        }],
        &changed,
    )
    .await?;
    Ok(ok(&team))
}

/// Apply `patch` (columns) to a team inside a transaction, audit it and commit.
async fn patch_team(
    call: &Call<'_>,
    team_id: &str,
    patch: impl FnOnce(&Value) -> Result<Map<String, Value>, AdminError>,
    admin_only: bool,
) -> Result<Value, AdminError> {
    let mut conn = call.store.conn().await?;
    let [get_rows, update, audit_insert] =
        conn.stmts([Query::GetTeamRows, Query::UpdateTeam, Query::InsertAuditLog])?;
    let tx = conn.client.transaction().await.map_err(StoreError::from)?;
    let before = team_in_tx(&tx, &get_rows, team_id).await?;
    if admin_only && !call.principal.is_admin() {
        return Err(AdminError::Forbidden(format!(
            "Only proxy admins can do this. Your role={}",
            call.principal.role().name()
        )));
    }
    call.require_team_admin(&before)?;
    let cols = patch(&before)?;
    let after = db::row(&tx, &update, &[&team_id, &Value::Object(cols)])
        .await?
        .unwrap_or_default();
    audit::commit(
        call,
        tx,
        &audit_insert,
        vec![Change {
            action: "updated",
            table: TEAMS_TABLE,
            object_id: team_id,
            before: Some(&before),
            after: Some(&after),
        }],
        &[Changed::Team(team_id.to_string())],
    )
    .await?;
    Ok(after)
}

/// `POST /team/update`: given fields change, an explicit `null` clears.
pub async fn update(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let mut c = fields::check(FIELDS, call.object()?, true)?;
    let team_id = fields::required_str(&c.own, "team_id")?;
    if c.own.contains_key("members_with_roles") {
        return Err(AdminError::invalid(
            "members_with_roles",
            "use /team/member_add, /team/member_update and /team/member_delete to change members",
        ));
    }
    if c.own.contains_key("object_permission") {
        return Err(AdminError::invalid(
            "object_permission",
            "set object permissions when the team is created",
        ));
    }
    let conn = call.store.conn().await?;
    let [alias_taken] = conn.stmts([Query::TeamAliasTaken])?;
    if let Some(Value::String(alias)) = c.columns.get("team_alias")
        && !conn
            .client
            .query(&alias_taken, &[alias, &team_id])
            .await
            .map_err(StoreError::from)?
            .is_empty()
    {
        return Err(AdminError::invalid(
            "team_alias",
            format!("Team alias '{alias}' already exists. Please use a different alias."),
        ));
    }
    drop(conn);
    // Team admins may rename their team and set member permissions and tags; budgets, limits,
    // models, access groups and everything else stay with proxy admins.
    let admin_only = c
        .columns
        .keys()
        .chain(c.meta.keys())
        .any(|f| !TEAM_ADMIN_FIELDS.contains(&f.as_str()) && f != "budget_reset_at");
    let after = patch_team(
        call,
        &team_id,
        |before| {
            let meta = c.updated_metadata(before);
            let mut cols = std::mem::take(&mut c.columns);
            if let Some(m) = meta {
                cols.insert("metadata".into(), m);
            }
            Ok(cols)
        },
        admin_only,
    )
    .await?;
    Ok(ok(&json!({"team_id": team_id, "data": after})))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamRef {
    team_id: String,
}

/// `POST /team/block` and `/team/unblock`
pub async fn set_blocked(call: &Call<'_>, blocked: bool) -> Result<Response<Body>, AdminError> {
    let req: TeamRef = call.json()?;
    let after = patch_team(
        call,
        &req.team_id,
        |_| {
            Ok(json!({"blocked": blocked})
                .as_object()
                .cloned()
                .unwrap_or_default())
        },
        true,
    )
    .await?;
    Ok(ok(&after))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamModels {
    team_id: String,
    models: Vec<String>,
}

/// `POST /team/model/add` and `/team/model/remove`
pub async fn models(call: &Call<'_>, add: bool) -> Result<Response<Body>, AdminError> {
    let req: TeamModels = call.json()?;
    let after = patch_team(
        call,
        &req.team_id,
        |before| {
            let mut models: Vec<String> = before
                .get("models")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if add {
                for m in &req.models {
                    if !models.contains(m) {
                        models.push(m.clone());
                    }
                }
            } else {
                models.retain(|m| !req.models.contains(m));
            }
            Ok(json!({"models": models})
                .as_object()
                .cloned()
                .unwrap_or_default())
        },
        true,
    )
    .await?;
    Ok(ok(&after))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteTeams {
    team_ids: Vec<String>,
}

/// `POST /team/delete`: copies each team into `TianjiLLM_DeletedTeamTable` and its keys into
/// `TianjiLLM_DeletedVerificationToken`, then deletes them with the team's memberships.
pub async fn delete(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let req: DeleteTeams = call.json()?;
    let mut ids = req.team_ids.clone();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Err(AdminError::invalid("team_ids", "must not be empty"));
    }
    let mut conn = call.store.conn().await?;
    let keys_st = super::keys::ArchiveStmts::new(conn.stmts(super::keys::ArchiveStmts::QUERIES)?);
    let [
        get_rows,
        key_tokens,
        archive_teams,
        delete_memberships,
        remove_from_users,
        delete_teams,
        audit_insert,
    ] = conn.stmts([
        Query::GetTeamRows,
        Query::TeamKeyTokens,
        Query::ArchiveTeams,
        Query::DeleteTeamMemberships,
        Query::RemoveTeamFromUsers,
        Query::DeleteTeams,
        Query::InsertAuditLog,
    ])?;
    let tx = conn.client.transaction().await.map_err(StoreError::from)?;
    let before = db::rows(&tx, &get_rows, &[&ids]).await?;
    if before.len() != ids.len() {
        let missing: Vec<&String> = ids
            .iter()
            .filter(|id| {
                !before
                    .iter()
                    .any(|t| str_of(t, "team_id") == Some(id.as_str()))
            })
            .collect();
        return Err(team_not_found(
            &missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ));
    }
    for t in &before {
        call.require_team_admin(t)?;
    }
    let header = call.changed_by_header();
    let by = call.changed_by();
    let tokens = db::strings(&tx, &key_tokens, &[&ids]).await?;
    let keys_before = super::keys::archive_keys(call, &tx, &keys_st, &tokens).await?;
    db::exec(
        &tx,
        &archive_teams,
        &[&ids, &by, &call.caller_hash, &header],
    )
    .await?;
    let memberships = tx
        .query(&delete_memberships, &[&ids])
        .await
        .map_err(StoreError::from)?;
    let users = db::strings(&tx, &remove_from_users, &[&ids]).await?;
    db::exec(&tx, &delete_teams, &[&ids]).await?;

    let mut changes: Vec<Change<'_>> = audit::deleted(TEAMS_TABLE, "team_id", &before);
    changes.extend(audit::deleted(audit::KEYS_TABLE, "token", &keys_before));
    let mut changed: Vec<Changed> = ids.iter().map(|t| Changed::Team(t.clone())).collect();
    changed.extend(audit::keys_changed(&tokens));
    changed.extend(users.into_iter().map(Changed::User));
    changed.extend(memberships.iter().map(|r| Changed::Member {
        team_id: r.get(0),
        user_id: r.get(1),
    }));
    audit::commit(call, tx, &audit_insert, changes, &changed).await?;
    Ok(ok(&json!({"deleted_teams": req.team_ids})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_checked() {
        let ok = parse_members(
            "m",
            &json!([{"role": "admin", "user_id": "u1"}, {"user_email": "a@b.c"}]),
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].role, "user");
        for bad in [
            json!([{"role": "owner", "user_id": "u"}]),
            json!([{"role": "user"}]),
            json!([{"user_id": 3}]),
            json!([{"user_id": "u", "x": 1}]),
            json!("u"),
        ] {
            assert!(parse_members("m", &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn member_roles_are_replaced_not_duplicated() {
        let team = json!({"members_with_roles": [{"role": "user", "user_id": "u"}]});
        let v = with_member(&team, "u", None, "admin");
        assert_eq!(v, json!([{"role": "admin", "user_id": "u"}]));
        let v = with_member(&team, "w", Some("w@x"), "user");
        assert_eq!(v.as_array().unwrap().len(), 2);
    }
}
