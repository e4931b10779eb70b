//! `/team/info`, `/team/list`, `/team/available`, `/team/permissions_list`,
//! `/team/permissions_update`.

use http::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::{AdminError, Call, ok};
use super::{column, patch_team, team_not_found};
use crate::body::Body;
use crate::store::Query;

/// Routes a team admin may let team members call on the team's keys.
pub const MEMBER_PERMISSIONS: &[&str] = &[
    "/key/generate",
    "/key/update",
    "/key/delete",
    "/key/regenerate",
    "/key/service-account/generate",
    "/key/{key_id}/regenerate",
    "/key/block",
    "/key/unblock",
    "/key/bulk_update",
    "/team/key/bulk_update",
    "/key/{key_id}/reset_spend",
    "/key/info",
    "/key/health",
    "/key/list",
    "/key/aliases",
];

pub(super) async fn team(call: &Call<'_>, team_id: &str) -> Result<Value, AdminError> {
    call.first(Query::TeamsByIds, &[&vec![team_id.to_string()]])
        .await?
        .ok_or_else(|| team_not_found(team_id))
}

/// `GET /team/info?team_id=`
pub async fn info(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let team_id = call.required("team_id")?;
    let key_limit: i64 = match call.param("key_limit") {
        None => 1000,
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| AdminError::invalid("key_limit", "must be a positive integer"))?,
    };
    let row = team(call, &team_id).await?;
    call.require_team_reader(&row)?;
    let keys = call.rows(Query::TeamKeys, &[&team_id, &key_limit]).await?;
    let memberships = call.rows(Query::TeamMemberships, &[&team_id]).await?;
    let mut info = row;
    if !call.principal.is_admin() {
        super::callbacks::mask_team(&mut info);
    }
    let can_edit = call.require_team_admin(&info).is_ok();
    info["caller_edit_access"] = json!(can_edit);
    Ok(ok(&json!({
        "team_id": team_id,
        "team_info": info,
        "keys": keys,
        "team_memberships": memberships,
    })))
}

/// `GET /team/list?user_id=&organization_id=&team_alias=`: everything for admins and viewers,
/// the caller's own teams for everyone else.
pub async fn list(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let org = call.param("organization_id");
    let alias = call.param("team_alias");
    let mut user = call.param("user_id");
    if !call.principal.can_read_all() {
        match (call.principal.user_id(), call.principal.key()) {
            (Some(u), _) => {
                if user.as_deref().is_some_and(|asked| asked != u) {
                    return Err(AdminError::Forbidden(
                        "You can only list your own teams. Your role=internal_user".into(),
                    ));
                }
                user = Some(u.to_string());
            }
            (None, Some(k)) => {
                let Some(t) = k.key.team_id.clone() else {
                    return Ok(ok(&json!([])));
                };
                let rows = call.rows(Query::TeamsByIds, &[&vec![t]]).await?;
                return Ok(ok(&Value::Array(rows)));
            }
            (None, None) => {}
        }
    }
    let rows = call.rows(Query::ListTeams, &[&org, &user, &alias]).await?;
    Ok(ok(&Value::Array(rows)))
}

/// `GET /team/available`: teams from `default_internal_user_params.available_teams` the caller
/// has not joined yet.
pub async fn available(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let ids = call.state.available_teams.clone();
    if ids.is_empty() {
        return Ok(ok(&json!([])));
    }
    let rows = call.rows(Query::TeamsByIds, &[&ids]).await?;
    let user = call.principal.user_id();
    let open: Vec<Value> = rows
        .into_iter()
        .filter(|t| {
            let rec: crate::auth::TeamRecord =
                serde_json::from_value(t.clone()).unwrap_or_default();
            user.is_none_or(|u| !rec.has_member(u))
        })
        .collect();
    Ok(ok(&Value::Array(open)))
}

/// `GET /team/permissions_list?team_id=`
pub async fn permissions_list(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let team_id = call.required("team_id")?;
    let row = team(call, &team_id).await?;
    call.require_team_admin(&row)?;
    Ok(ok(&json!({
        "team_id": team_id,
        "team_member_permissions": row.get("team_member_permissions").cloned().unwrap_or(json!([])),
        "all_available_permissions": MEMBER_PERMISSIONS,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Permissions {
    team_id: String,
    team_member_permissions: Vec<String>,
}

/// `POST /team/permissions_update`
pub async fn permissions_update(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let req: Permissions = call.json()?;
    if let Some(bad) = req
        .team_member_permissions
        .iter()
        .find(|p| !MEMBER_PERMISSIONS.contains(&p.as_str()))
    {
        return Err(AdminError::invalid(
            "team_member_permissions",
            format!("'{bad}' is not a team member permission; see /team/permissions_list"),
        ));
    }
    let permissions = json!(req.team_member_permissions);
    let patch = |_: &Value| Ok(column("team_member_permissions", permissions));
    Ok(ok(&patch_team(call, &req.team_id, patch, false).await?))
}
