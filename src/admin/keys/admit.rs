//! Who may create which key with `/key/generate`. Proxy admins: any key. Others: a personal key
//! (no `team_id`) for themselves as an internal user, or a key of a team they administer or may
//! create keys in (`team_member_permissions`); never a key for someone else above them, never
//! with more rights than the caller: the role the key acts with is capped at the creator's, a
//! personal key stays within the caller key's models and routes, a team key within the team's
//! limits. `tianji_settings.key_generation_settings` restricts it further, as LiteLLM's does
//! (`personal_key_generation` for every caller, `team_key_generation` for non-admins).

use serde_json::{Map, Value, json};

use super::{GenerateKey, models_within, team_key_access, within_ceiling};
use crate::admin::{AdminError, Call};
use crate::auth::access::{AccessGroups, model_allowed, route_allowed};
use crate::auth::{KeyCaller, ROLE_CAP, TeamRecord, UserRole};
use crate::config::{KeyGenerationSettings, PersonalKeyGeneration, TeamKeyGeneration};
use crate::store::Query;

/// Check `req` against who calls, and fill in what a non-admin's key inherits (its owner, the
/// caller's model and route lists, the role cap).
pub(super) async fn admit_new_key(
    call: &Call<'_>,
    req: &mut GenerateKey,
) -> Result<(), AdminError> {
    let asked_cap = asked_role_cap(req)?;
    let given: Map<String, Value> = serde_json::from_slice(&call.body).unwrap_or_default();
    let config = call.state.config();
    let settings = config.tianji_settings.key_generation_settings.as_ref();
    if req.team_id.is_none() {
        let personal = settings.and_then(|s| s.personal_key_generation.as_ref());
        personal_allowed(call, personal, &given)?;
    }
    if call.principal.is_admin() {
        return admin_team_exists(call, req, settings).await;
    }
    match call.principal.key() {
        Some(caller) if req.team_id.is_none() => admit_personal(call, caller, req)?,
        _ => {
            let team = settings.and_then(|s| s.team_key_generation.as_ref());
            admit_team_key(call, req, team, &given).await?;
        }
    }
    let mine = call.principal.role();
    let cap = asked_cap.map_or(mine, |c| c.min(mine));
    req.metadata
        .get_or_insert_with(Map::new)
        .insert(ROLE_CAP.into(), json!(cap.name()));
    Ok(())
}

/// The role cap the request asks for in its metadata (400 when it is not a role).
fn asked_role_cap(req: &GenerateKey) -> Result<Option<UserRole>, AdminError> {
    match req.metadata.as_ref().and_then(|m| m.get(ROLE_CAP)) {
        None => Ok(None),
        Some(v) => Ok(Some(v.as_str().and_then(UserRole::parse).ok_or_else(
            || {
                AdminError::invalid(
                    &format!("metadata.{ROLE_CAP}"),
                    format!("must be one of {:?}", UserRole::NAMES),
                )
            },
        )?)),
    }
}

/// 400 for the first of `required` the request does not give (LiteLLM's `required_params`).
fn required_params(given: &Map<String, Value>, required: &[String]) -> Result<(), AdminError> {
    match required.iter().find(|p| !given.contains_key(p.as_str())) {
        Some(p) => Err(AdminError::invalid(
            p,
            format!("Required param {p} not in data"),
        )),
        None => Ok(()),
    }
}

/// `personal_key_generation`: the caller's role among `allowed_user_roles`, and the required
/// params given.
fn personal_allowed(
    call: &Call<'_>,
    rules: Option<&PersonalKeyGeneration>,
    given: &Map<String, Value>,
) -> Result<(), AdminError> {
    let Some(rules) = rules else {
        return Ok(());
    };
    let role = call.principal.role().name();
    if let Some(roles) = &rules.allowed_user_roles
        && !roles.iter().any(|r| r == role)
    {
        return Err(AdminError::invalid(
            "user_role",
            format!(
                "Personal key creation has been restricted by admin. Allowed roles={roles:?}. Your role={role}"
            ),
        ));
    }
    required_params(given, &rules.required_params)
}

/// With `key_generation_settings` set, a team key needs its team to exist, even for admins.
async fn admin_team_exists(
    call: &Call<'_>,
    req: &GenerateKey,
    settings: Option<&KeyGenerationSettings>,
) -> Result<(), AdminError> {
    let (Some(team_id), Some(_)) = (&req.team_id, settings) else {
        return Ok(());
    };
    let ids = vec![team_id.clone()];
    match call.first(Query::TeamsByIds, &[&ids]).await? {
        Some(_) => Ok(()),
        None => Err(AdminError::invalid(
            "team_id",
            format!("Unable to find team object in database. Team ID: {team_id}"),
        )),
    }
}

/// A personal key of a non-admin: an internal user's own (`user_id` defaults to it), in no
/// organisation but its user's, within the caller key's models, its team's and its user's, and
/// within the caller key's routes. Unset lists inherit the caller key's restriction.
fn admit_personal(
    call: &Call<'_>,
    caller: &KeyCaller,
    req: &mut GenerateKey,
) -> Result<(), AdminError> {
    let role = call.principal.role();
    if role != UserRole::InternalUser {
        return Err(
            call.forbidden("Only proxy admins and internal users can create keys for themselves")
        );
    }
    let me = caller.key.user_id.clone().unwrap_or_default();
    match &req.user_id {
        None => req.user_id = Some(me.clone()),
        Some(u) if *u != me => {
            return Err(AdminError::Forbidden(format!(
                "User can only create keys for themselves. Got user_id={u}, Your ID={me}"
            )));
        }
        Some(_) => {}
    }
    let user_org = caller
        .user
        .as_ref()
        .and_then(|u| u.organization_id.as_ref());
    if let Some(org) = &req.organization_id
        && user_org != Some(org)
    {
        return Err(call.forbidden(format_args!(
            "organization_id {org} is not your user's organization; only proxy admins can set another"
        )));
    }
    let table = call.state.models.load();
    personal_models(caller, req, &**table)?;
    personal_routes(caller, req)
}

/// A list that restricts (non-empty, no "every model" entry).
fn restricting(list: Option<&Vec<String>>) -> Option<&Vec<String>> {
    const EVERY: &[&str] = &["*", "all-proxy-models", "all-team-models"];
    list.filter(|l| !l.is_empty() && !l.iter().any(|m| EVERY.contains(&m.as_str())))
}

fn personal_models(
    caller: &KeyCaller,
    req: &mut GenerateKey,
    groups: &dyn AccessGroups,
) -> Result<(), AdminError> {
    let key = restricting(caller.key.models.as_ref());
    let team = restricting(caller.team.as_ref().and_then(|t| t.models.as_ref()));
    let user = restricting(caller.user.as_ref().and_then(|u| u.models.as_ref()));
    let asked = req.models.as_ref().filter(|m| !m.is_empty());
    let Some(asked) = asked else {
        // The user's own list applies to its personal keys anyway; the caller key's does not.
        req.models = key.or(team).cloned();
        return Ok(());
    };
    for cap in [key, team, user].into_iter().flatten() {
        if let Some(m) = asked.iter().find(|m| !model_allowed(cap, m, groups)) {
            return Err(AdminError::Forbidden(format!(
                "models: model '{m}' is not within {cap:?}, the models you may call; ask a proxy admin for more"
            )));
        }
    }
    Ok(())
}

fn personal_routes(caller: &KeyCaller, req: &mut GenerateKey) -> Result<(), AdminError> {
    let Some(mine) = caller.key.allowed_routes.as_ref().filter(|r| !r.is_empty()) else {
        return Ok(());
    };
    match req.allowed_routes.as_ref().filter(|r| !r.is_empty()) {
        None => req.allowed_routes = Some(mine.clone()),
        Some(asked) => {
            if let Some(r) = asked.iter().find(|r| !route_allowed(mine, r)) {
                return Err(AdminError::Forbidden(format!(
                    "allowed_routes: '{r}' is not within {mine:?}, the routes your key may call"
                )));
            }
        }
    }
    Ok(())
}

/// A team key of a non-admin: the team lets the caller create it ([`team_key_access`]), its
/// member role is allowed and the required params are given (`team_key_generation`), and the
/// key stays in the team's organisation and within the team's limits and models.
async fn admit_team_key(
    call: &Call<'_>,
    req: &mut GenerateKey,
    rules: Option<&TeamKeyGeneration>,
    given: &Map<String, Value>,
) -> Result<(), AdminError> {
    // A team member's key is its own.
    if req.user_id.is_none() {
        req.user_id = call.principal.user_id().map(str::to_string);
    }
    let key = json!({"team_id": req.team_id, "user_id": req.user_id, "metadata": req.metadata});
    let Some(team) = team_key_access(call, &key, "/key/generate").await? else {
        return Ok(());
    };
    member_role_allowed(call, &team, rules)?;
    required_params(given, rules.map_or(&[][..], |r| &r.required_params))?;
    if let Some(org) = req.organization_id.as_deref()
        && team.organization_id.as_deref() != Some(org)
    {
        return Err(AdminError::Forbidden(format!(
            "organization_id {org} is not the organization of team {}; only proxy admins can set another",
            team.team_id
        )));
    }
    within_team(req, &team)
}

/// `team_key_generation.allowed_team_member_roles` (default: admins and users).
fn member_role_allowed(
    call: &Call<'_>,
    team: &TeamRecord,
    rules: Option<&TeamKeyGeneration>,
) -> Result<(), AdminError> {
    let Some(allowed) = rules.and_then(|r| r.allowed_team_member_roles.as_ref()) else {
        return Ok(());
    };
    let user = call.principal.user_id().unwrap_or_default();
    let role = if team.is_admin(user) { "admin" } else { "user" };
    if allowed.iter().any(|r| r == role) {
        return Ok(());
    }
    Err(AdminError::invalid(
        "team_id",
        format!("Team member role {role} not in allowed_team_member_roles={allowed:?}"),
    ))
}

/// A team key's limits and models within its team's.
fn within_team(req: &GenerateKey, team: &TeamRecord) -> Result<(), AdminError> {
    within_ceiling(
        "max_budget",
        req.max_budget,
        team.limits.max_budget,
        None,
        false,
    )?;
    let as_f = |v: Option<i64>| v.map(|x| x as f64);
    for (field, asked, cap) in [
        ("rpm_limit", req.rpm_limit, team.limits.rpm_limit),
        ("tpm_limit", req.tpm_limit, team.limits.tpm_limit),
        ("tpd_limit", req.tpd_limit, team.tpd_limit),
        (
            "max_parallel_requests",
            req.max_parallel_requests.map(i64::from),
            team.limits.max_parallel_requests,
        ),
    ] {
        within_ceiling(field, as_f(asked), as_f(cap), None, false)?;
    }
    models_within(
        "models",
        req.models.as_deref(),
        team.models.as_deref(),
        None,
        false,
    )
}
