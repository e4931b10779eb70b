//! `/team/*`: teams, their members and their permissions.
//!
//! `mod.rs`: the field table, new, update, delete, block, models; `members.rs`: member_add,
//! member_update, member_delete; `read.rs`: info, list, available, permissions.

mod callbacks;
mod members;
mod read;

pub use callbacks::{callback, disable as disable_logging};
pub use members::{member_add, member_delete, member_update};
pub use read::{available, info, list, permissions_list, permissions_update};

use http::Response;
use serde_json::{Map, Value, json};

use super::audit::{self, Change, TEAMS_TABLE};
use super::crud::{self, Tx, distinct, str_list};
use super::fields::{self, Field, spec};
use super::keys::Archived;
use super::{AdminError, Call, ok};
use crate::auth::Changed;
use crate::body::Body;
use crate::store::Query;

/// Every field of LiteLLM's `NewTeamRequest` / `UpdateTeamRequest`.
const FIELDS: &[Field] = spec! {
    own Str: team_id;
    own Any: members_with_roles;
    own Object: object_permission;
    column Str: team_alias organization_id;
    column Strs: admins members team_member_permissions models access_group_ids
        default_team_member_models policies;
    column Object: metadata router_settings model_max_budget;
    column Count: tpm_limit rpm_limit tpd_limit max_parallel_requests;
    column Money: max_budget soft_budget;
    column Duration: budget_duration;
    column Any: budget_limits;
    column Bool: blocked;
    meta Object: model_aliases secret_manager_settings model_rpm_limit model_tpm_limit
        default_estimated_output_tokens_per_model mcp_rpm_limit team_member_model_max_budget;
    meta Strs: tags guardrails prompts allowed_passthrough_routes denied_passthrough_routes;
    meta Bool: disable_global_guardrails require_trace_id;
    meta Str: rpm_limit_type tpm_limit_type;
    meta Count: default_estimated_output_tokens team_member_rpm_limit team_member_tpm_limit;
    meta Money: team_member_budget;
    meta Duration: team_member_key_duration team_member_budget_duration;
    meta Any: allowed_vector_store_indexes enforced_batch_output_expires_after
        enforced_file_expires_after;
};

/// What a team admin (not a proxy admin) may change with `/team/update`.
const TEAM_ADMIN_FIELDS: &[&str] = &["team_alias", "team_member_permissions", "tags"];

/// 404 for a team that does not exist.
pub(crate) fn team_not_found(team_id: &str) -> AdminError {
    crud::not_found("Team", "team_id", team_id)
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

/// Make `member` a member of `team_id`: its user exists (created as an internal user if new),
/// lists the team, and has a membership row. Returns the resolved user id.
pub(crate) async fn join(
    tx: &Tx<'_>,
    team_id: &str,
    member: &Member,
    budget_id: Option<&str>,
) -> Result<String, AdminError> {
    let user_id = match (&member.user_id, &member.user_email) {
        (Some(u), _) => u.clone(),
        (None, Some(email)) => tx
            .strings(Query::UserIdByEmail, &[email])
            .await?
            .into_iter()
            .next()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        (None, None) => return Err(AdminError::invalid("member", "user_id or user_email")),
    };
    tx.exec(Query::EnsureUser, &[&user_id, &member.user_email])
        .await?;
    tx.exec(Query::AddUserTeam, &[&user_id, &team_id]).await?;
    tx.exec(Query::UpsertMembership, &[&user_id, &team_id, &budget_id])
        .await?;
    Ok(user_id)
}

/// `Changed::Member` of a `(team_id, user_id)` row.
pub(crate) fn member_changed(r: &tokio_postgres::Row) -> Changed {
    Changed::Member {
        team_id: r.get(0),
        user_id: r.get(1),
    }
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

/// `POST /team/new`
pub async fn new(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let mut c = fields::check(FIELDS, call.object()?, false)?;
    let members = match c.own.get("members_with_roles") {
        Some(v) => parse_members("members_with_roles", v)?,
        None => Vec::new(),
    };
    let team_id = fields::id_or_new(&c.own, "team_id");
    let metadata = c.new_metadata();
    let mut row = c.columns;
    row.insert("team_id".into(), json!(team_id));
    row.insert("metadata".into(), metadata);

    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let taken = format!("Team id = {team_id} already exists. Please use a different team id.");
    tx.absent(Query::GetTeamRows, &team_id, "team_id", taken.clone())
        .await?;
    tx.object_permission(c.own.get("object_permission"), &mut row)
        .await?;
    // no row: another request took the id since the check
    let mut team = (tx.row(Query::InsertTeam, &[&Value::Object(row)]).await?)
        .ok_or_else(|| AdminError::invalid("team_id", taken))?;
    let mut changed = vec![Changed::Team(team_id.clone())];
    if !members.is_empty() {
        for m in &members {
            let user_id = join(&tx, &team_id, m, None).await?;
            team["members_with_roles"] =
                with_member(&team, &user_id, m.user_email.as_deref(), &m.role);
            changed.push(Changed::User(user_id));
        }
        let patch = json!({"members_with_roles": team["members_with_roles"]});
        let updated = tx.row(Query::UpdateTeam, &[&team_id, &patch]).await?;
        team = updated.unwrap_or_default();
    }
    let changes = vec![Change::created(TEAMS_TABLE, &team_id, &team)];
    tx.commit(changes, &changed).await?;
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
    let tx = Tx::begin(call, &mut conn).await?;
    let before = tx.get(Query::GetTeamRows, team_id, team_not_found).await?;
    if admin_only && !call.principal.is_admin() {
        return Err(call.forbidden("Only proxy admins can do this"));
    }
    call.require_team_admin(&before)?;
    let cols = Value::Object(patch(&before)?);
    let after = tx.row(Query::UpdateTeam, &[&team_id, &cols]).await?;
    let after = after.unwrap_or_default();
    let changes = vec![Change::updated(TEAMS_TABLE, team_id, &before, &after)];
    tx.commit(changes, &[Changed::Team(team_id.to_string())])
        .await?;
    Ok(after)
}

/// `POST /team/update`: given fields change, an explicit `null` clears.
pub async fn update(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let mut c = fields::check(FIELDS, call.object()?, true)?;
    let team_id = fields::required_str(&c.own, "team_id")?;
    c.refuse(
        "members_with_roles",
        "use /team/member_add, /team/member_update and /team/member_delete to change members",
    )?;
    c.refuse(
        "object_permission",
        "set object permissions when the team is created",
    )?;
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

/// One column's new value, as a patch.
fn column(name: &str, v: Value) -> Map<String, Value> {
    Map::from_iter([(name.to_string(), v)])
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamRef {
    team_id: String,
}

/// `POST /team/block` and `/team/unblock`
pub async fn set_blocked(call: &Call<'_>, blocked: bool) -> Result<Response<Body>, AdminError> {
    let req: TeamRef = call.json()?;
    let patch = |_: &Value| Ok(column("blocked", json!(blocked)));
    Ok(ok(&patch_team(call, &req.team_id, patch, true).await?))
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
    let patch = |before: &Value| {
        let mut models = str_list(before.get("models"));
        if add {
            for m in &req.models {
                if !models.contains(m) {
                    models.push(m.clone());
                }
            }
        } else {
            models.retain(|m| !req.models.contains(m));
        }
        Ok(column("models", json!(models)))
    };
    Ok(ok(&patch_team(call, &req.team_id, patch, true).await?))
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
    let ids = distinct("team_ids", req.team_ids.clone())?;
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let before = tx
        .get_all(Query::GetTeamRows, &ids, "team_id", team_not_found)
        .await?;
    for t in &before {
        call.require_team_admin(t)?;
    }
    let header = call.changed_by_header();
    let by = call.changed_by();
    let keys = Archived::listed(&tx, Query::TeamKeyTokens, &[&ids]).await?;
    tx.exec(
        Query::ArchiveTeams,
        &[&ids, &by, &call.caller_hash, &header],
    )
    .await?;
    let memberships = tx.query(Query::DeleteTeamMemberships, &[&ids]).await?;
    let users = tx.strings(Query::RemoveTeamFromUsers, &[&ids]).await?;
    tx.exec(Query::DeleteTeams, &[&ids]).await?;

    let mut changes = audit::deleted(TEAMS_TABLE, "team_id", &before);
    let mut changed: Vec<Changed> = ids.iter().map(|t| Changed::Team(t.clone())).collect();
    keys.record(&mut changes, &mut changed);
    changed.extend(users.into_iter().map(Changed::User));
    changed.extend(memberships.iter().map(member_changed));
    tx.commit(changes, &changed).await?;
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
