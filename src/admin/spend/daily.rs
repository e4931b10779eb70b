//! `/{user,team,organization,end_user,agent}/daily/activity`: per-day spend and usage with
//! breakdowns by model, model group, provider, endpoint, key and entity, from the daily tables.

use http::Response;
use serde_json::{Value, json};

use super::{Scope, key_param, range, scope};
use crate::admin::{AdminError, Call, ok};
use crate::body::Body;
use crate::store::Query;

/// Whose daily table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    User,
    Team,
    Organization,
    EndUser,
    /// A2A agents (`agent_ids`, `exclude_agent_ids`).
    Agent,
}

fn ids(call: &Call<'_>, name: &str) -> Option<Vec<String>> {
    call.param(name).map(|v| {
        v.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

/// Which entities (and keys) a caller may see; `None` ids = all.
fn allowed(
    call: &Call<'_>,
    entity: Entity,
) -> Result<(Option<Vec<String>>, Option<String>), AdminError> {
    let api_key = key_param(call, "api_key");
    let asked = match entity {
        Entity::User => call
            .param("user_id")
            .filter(|v| !v.is_empty())
            .map(|u| vec![u]),
        Entity::Team => ids(call, "team_ids"),
        Entity::Organization => ids(call, "organization_ids"),
        Entity::EndUser => ids(call, "end_user_ids"),
        Entity::Agent => ids(call, "agent_ids"),
    };
    if entity == Entity::Agent {
        return agents_allowed(call, asked, api_key);
    }
    let (user, key) = match scope(call) {
        Scope::All => return Ok((asked, api_key)),
        Scope::User(u) => (u, call.principal.key().map(|k| k.key.token.clone())),
        Scope::Key(_) => {
            return Err(AdminError::Forbidden(
                "Service-account keys cannot query user analytics. Use a user-bound key, or call as a proxy admin."
                    .into(),
            ));
        }
    };
    match entity {
        Entity::User => {
            if asked.as_ref().is_some_and(|a| a.iter().any(|x| *x != user)) {
                return Err(AdminError::Forbidden(
                    "Non-admin users can only view their own spend data.".into(),
                ));
            }
            Ok((Some(vec![user]), api_key))
        }
        Entity::Team => {
            let caller = call.principal.key();
            let my_teams: Vec<String> = caller
                .and_then(|k| k.user.as_ref())
                .and_then(|u| u.teams.clone())
                .unwrap_or_default();
            let teams = asked.unwrap_or_else(|| my_teams.clone());
            if let Some(t) = teams.iter().find(|t| !my_teams.contains(t)) {
                return Err(AdminError::Forbidden(format!(
                    "User does not belong to Team= {t}. Call `/user/info` to see user's teams"
                )));
            }
            // Team admins see the whole team; members only their own key's traffic.
            let admin_of_all = caller
                .and_then(|k| k.team.as_ref())
                .is_some_and(|t| teams.len() == 1 && t.team_id == teams[0] && t.is_admin(&user));
            let key_filter = if admin_of_all { api_key } else { key };
            Ok((Some(teams), key_filter))
        }
        Entity::Organization | Entity::EndUser | Entity::Agent => {
            Err(AdminError::Forbidden(format!(
                "Admin-only endpoint. Your user role={}",
                call.principal.role().name()
            )))
        }
    }
}

/// Agents: admins see every agent's calls; anyone else its own key's calls to the agents it may
/// use.
fn agents_allowed(
    call: &Call<'_>,
    asked: Option<Vec<String>>,
    api_key: Option<String>,
) -> Result<(Option<Vec<String>>, Option<String>), AdminError> {
    if call.principal.can_read_all() {
        return Ok((asked, api_key));
    }
    let Some(caller) = call.principal.key() else {
        return Ok((asked, api_key));
    };
    let can = crate::admin::agents::allowed(call.state, &call.principal);
    if let Some(a) = asked.iter().flatten().find(|a| !can.permits(a)) {
        return Err(AdminError::Forbidden(format!(
            "Agent '{a}' is not allowed for your key/team. Contact proxy admin for access."
        )));
    }
    let ids = match (asked, can) {
        (Some(a), _) => Some(a),
        (None, crate::agents::access::Allowed::All) => None,
        (None, crate::agents::access::Allowed::Only(set)) => Some(set.into_iter().collect()),
    };
    Ok((ids, Some(caller.key.token.clone())))
}

/// `GET /<entity>/daily/activity?start_date&end_date[&ids][&model][&api_key][&page][&page_size]`
/// (agents: `[&exclude_agent_ids]` too).
pub async fn daily_activity(call: &Call<'_>, entity: Entity) -> Result<Response<Body>, AdminError> {
    let (start, end) = range(call)?;
    let page = call.positive("page", 1)?;
    let default_size = if entity == Entity::User { 50 } else { 10 };
    let size = call.positive("page_size", default_size)?.min(1000);
    let excluded = ids(call, "exclude_agent_ids");
    let (ids, api_key) = allowed(call, entity)?;
    let model = call.param("model").filter(|v| !v.is_empty());
    let offset = (page - 1) * size;
    let q = match entity {
        Entity::User => Query::DailyUserActivity,
        Entity::Team => Query::DailyTeamActivity,
        Entity::Organization => Query::DailyOrganizationActivity,
        Entity::EndUser => Query::DailyEndUserActivity,
        Entity::Agent => Query::DailyAgentActivity,
    };
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        vec![&start, &end, &ids, &model, &api_key, &size, &offset];
    if entity == Entity::Agent {
        params.push(&excluded);
    }
    let mut v = call
        .rows(q, &params)
        .await?
        .into_iter()
        .next()
        .unwrap_or_else(|| json!({"results": [], "metadata": {}}));
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        let days = m.remove("total_days").and_then(|d| d.as_i64()).unwrap_or(0);
        let pages = (days + size - 1) / size;
        m.insert("page".into(), json!(page));
        m.insert("total_pages".into(), json!(pages));
        m.insert("has_more".into(), json!(page * size < days));
    }
    Ok(ok(&v))
}
