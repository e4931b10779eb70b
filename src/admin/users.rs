//! `/user/*`: internal users. `/user/new` also creates the user's first key unless
//! `auto_create_key: false`; passwords are stored only as a salted sha256.

use http::Response;
use serde_json::{Map, Value, json};

use super::audit::{self, Change, KEYS_TABLE, USERS_TABLE};
use super::crud::{self, Page, Tx, distinct, str_list};
use super::fields::{self, Field, spec};
use super::keys::{Archived, GenerateKey};
use super::teams::{Member, join, member_changed, team_not_found, with_member};
use super::{AdminError, Call, ok};
use crate::auth::{Changed, UserRole};
use crate::body::Body;
use crate::store::Query;

/// The user columns a request may set.
const USER_FIELDS: &[Field] = spec! {
    own Str: user_id password;
    own Any: teams;
    own Strs: organizations;
    own Bool: auto_create_key send_invite_email;
    own Object: object_permission;
    // These go to the key `/user/new` creates.
    own Str: key_alias duration team_id key_type;
    own Object: aliases config permissions;
    own Strs: allowed_routes tags guardrails;
    own Bool: blocked;
    column Str: user_alias user_email user_role sso_user_id;
    column Money: max_budget spend;
    column Strs: models allowed_cache_controls policies;
    column Object: metadata model_max_budget;
    column Count: max_parallel_requests tpm_limit rpm_limit;
    column Duration: budget_duration;
};

/// Fields of the request that configure the auto-created key.
const KEY_FIELDS: &[&str] = &[
    "key_alias",
    "duration",
    "aliases",
    "config",
    "permissions",
    "allowed_routes",
    "team_id",
    "tags",
    "guardrails",
    "blocked",
    "key_type",
];

/// 404 for a user that does not exist.
fn user_not_found(user_id: &str) -> AdminError {
    crud::not_found("User", "user_id", user_id)
}

fn check_role(c: &fields::Checked) -> Result<(), AdminError> {
    if let Some(Value::String(r)) = c.columns.get("user_role")
        && UserRole::parse(r).is_none()
    {
        return Err(AdminError::invalid(
            "user_role",
            format!("must be one of {:?}, got '{r}'", UserRole::NAMES),
        ));
    }
    Ok(())
}

/// The stored form of a password: `sha256:` + hex of salt-free sha256 over a per-user salt.
fn hash_password(user_id: &str, password: &str) -> String {
    format!(
        "sha256:{}",
        crate::auth::token_hex(&format!("{user_id}:{password}"))
    )
}

/// The row of a new user `user_id` from a checked request: its columns (nulls left to the
/// defaults), metadata, an internal user unless a role is given, the password hashed.
fn new_row(c: &mut fields::Checked, user_id: &str) -> Map<String, Value> {
    let metadata = c.new_metadata();
    let mut row: Map<String, Value> = std::mem::take(&mut c.columns)
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .collect();
    row.insert("user_id".into(), json!(user_id));
    row.insert("metadata".into(), metadata);
    row.entry("user_role")
        .or_insert_with(|| json!("internal_user"));
    if let Some(p) = c.own.get("password").and_then(Value::as_str) {
        row.insert("password".into(), json!(hash_password(user_id, p)));
    }
    row
}

/// `teams` as given: team ids, or `{team_id, ...}` objects.
fn team_ids(v: &Value) -> Result<Vec<String>, AdminError> {
    let Some(list) = v.as_array() else {
        return Err(AdminError::invalid("teams", "must be a list of team ids"));
    };
    list.iter()
        .map(|t| match t {
            Value::String(s) => Ok(s.clone()),
            Value::Object(o) => o
                .get("team_id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| AdminError::invalid("teams", "each team needs a team_id")),
            _ => Err(AdminError::invalid("teams", "must be a list of team ids")),
        })
        .collect()
}

/// `POST /user/new`
pub async fn new(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let body = call.object()?;
    let mut c = fields::check(USER_FIELDS, body.clone(), false)?;
    check_role(&c)?;
    let user_id = fields::id_or_new(&c.own, "user_id");
    let teams = match c.own.get("teams") {
        Some(v) => team_ids(v)?,
        None => Vec::new(),
    };
    let auto_key = c
        .own
        .get("auto_create_key")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let key_req: Option<GenerateKey> = if auto_key {
        let mut k = Map::new();
        for f in KEY_FIELDS {
            if let Some(v) = body.get(*f).filter(|v| !v.is_null()) {
                k.insert((*f).to_string(), v.clone());
            }
        }
        k.insert("user_id".into(), json!(user_id));
        Some(
            serde_json::from_value(Value::Object(k))
                .map_err(|e| AdminError::invalid("request", e.to_string()))?,
        )
    } else {
        None
    };
    let mut row = new_row(&mut c, &user_id);

    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let taken = format!("User with id={user_id} already exists");
    tx.absent(Query::GetUserRows, &user_id, "user_id", taken)
        .await?;
    tx.object_permission(c.own.get("object_permission"), &mut row)
        .await?;
    tx.row(Query::InsertUser, &[&Value::Object(row)]).await?;
    let mut changed = vec![Changed::User(user_id.clone())];
    let member = Member {
        role: "user".into(),
        user_id: Some(user_id.clone()),
        user_email: None,
    };
    for team_id in &teams {
        let team = tx.get(Query::GetTeamRows, team_id, team_not_found).await?;
        join(&tx, team_id, &member, None).await?;
        let list = with_member(&team, &user_id, None, "user");
        let patch = json!({"members_with_roles": list});
        tx.exec(Query::UpdateTeam, &[team_id, &patch]).await?;
        changed.push(Changed::Team(team_id.clone()));
    }
    let user = tx.find(Query::GetUserRows, &user_id).await?;
    let user = user.unwrap_or_default();
    let key = match &key_req {
        Some(req) => Some(super::keys::insert_in_tx(&tx, req).await?),
        None => None,
    };
    let invite = c.own.get("send_invite_email").and_then(Value::as_bool) == Some(true);
    let invite = super::invitations::pending(&tx, invite, &user).await?;
    let mut changes = vec![Change::created(USERS_TABLE, &user_id, &user)];
    if let Some((_, token, stored)) = &key {
        changes.push(Change::created(KEYS_TABLE, token, stored));
        changed.push(Changed::Key(token.clone()));
    }
    tx.commit(changes, &changed).await?;
    super::invitations::send(call, invite, "An account was created for you");
    let mut out = Map::new();
    if let Some((raw, token, Value::Object(stored))) = key {
        out.extend(stored);
        out.insert("key".into(), json!(raw));
        out.insert("token_id".into(), json!(token));
    }
    if let Value::Object(u) = user {
        out.extend(u);
    }
    out.insert("teams".into(), json!(teams));
    Ok(ok(&Value::Object(out)))
}

/// The user a request names by `user_id`, else by `user_email` (404 when no user has it);
/// with neither, a 400 on `user_id` saying `neither`.
pub(crate) async fn user_named(
    tx: &Tx<'_>,
    user_id: Option<&str>,
    email: Option<&str>,
    neither: &str,
) -> Result<String, AdminError> {
    if let Some(u) = user_id {
        return Ok(u.to_string());
    }
    let Some(email) = email else {
        return Err(AdminError::invalid("user_id", neither));
    };
    tx.strings(Query::UserIdByEmail, &[&email])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| AdminError::NotFound {
            param: "user_email",
            message: format!("No user with user_email={email}"),
        })
}

/// `POST /user/update`: given fields change, an explicit `null` clears; a `user_id` that does
/// not exist yet is created with the given fields (LiteLLM upserts).
pub async fn update(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let body = call.object()?;
    let mut c = fields::check(USER_FIELDS, body, true)?;
    check_role(&c)?;
    for own_only in [
        "teams",
        "organizations",
        "auto_create_key",
        "object_permission",
        "key_alias",
        "duration",
        "team_id",
    ] {
        c.refuse(
            own_only,
            &format!("`{own_only}` cannot be changed with /user/update"),
        )?;
    }
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    // With a user_id, user_email is a column to change; without, it names the user.
    let email = if c.own.contains_key("user_id") {
        None
    } else {
        c.columns.remove("user_email")
    };
    let user_id = c.own.get("user_id").and_then(Value::as_str);
    let email = email.as_ref().and_then(Value::as_str);
    let user_id = user_named(&tx, user_id, email, "pass `user_id` or `user_email`").await?;
    let Some(before) = tx.find(Query::GetUserRows, &user_id).await? else {
        // LiteLLM upserts: a user named by a user_id it does not know yet is created.
        let row = Value::Object(new_row(&mut c, &user_id));
        let after = tx.one(Query::InsertUser, &[&row]).await?;
        let changes = vec![Change::created(USERS_TABLE, &user_id, &after)];
        tx.commit(changes, &[Changed::User(user_id.clone())])
            .await?;
        return Ok(ok(&json!({"user_id": user_id, "data": after})));
    };
    let meta = c.updated_metadata(&before);
    let mut cols = c.columns;
    if let Some(m) = meta {
        cols.insert("metadata".into(), m);
    }
    if let Some(p) = c.own.get("password") {
        cols.insert(
            "password".into(),
            p.as_str()
                .map(|p| json!(hash_password(&user_id, p)))
                .unwrap_or(Value::Null),
        );
    }
    let cols = Value::Object(cols);
    let after = tx.row(Query::UpdateUser, &[&user_id, &cols]).await?;
    let after = after.unwrap_or_default();
    let changes = vec![Change::updated(USERS_TABLE, &user_id, &before, &after)];
    tx.commit(changes, &[Changed::User(user_id.clone())])
        .await?;
    Ok(ok(&json!({"user_id": user_id, "data": after})))
}

/// `GET /user/info?user_id=` (defaults to the caller's user; others only for admins/viewers).
pub async fn info(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let asked = call.param("user_id").filter(|u| !u.is_empty());
    let user_id = match (asked, call.principal.user_id()) {
        (Some(u), _) => u,
        (None, Some(own)) => own.to_string(),
        (None, None) => return Err(AdminError::invalid("user_id", "pass ?user_id=")),
    };
    if !call.principal.can_read_all() && call.principal.user_id() != Some(user_id.as_str()) {
        return Err(call.forbidden("You can only view your own user info"));
    }
    let user = call
        .first(Query::GetUserRecord, &[&user_id])
        .await?
        .ok_or_else(|| user_not_found(&user_id))?;
    let keys = call.rows(Query::UserKeys, &[&user_id]).await?;
    let team_ids = str_list(user.get("teams"));
    let teams = call.rows(Query::TeamsByIds, &[&team_ids]).await?;
    Ok(ok(&json!({
        "user_id": user_id,
        "user_info": user,
        "keys": keys,
        "teams": teams,
    })))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteUsers {
    user_ids: Vec<String>,
}

/// `POST /user/delete`: the users, their keys (archived first), memberships and their places
/// in teams. Answers the number of users deleted.
pub async fn delete(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let req: DeleteUsers = call.json()?;
    let ids = distinct("user_ids", req.user_ids)?;
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let before = tx
        .get_all(Query::GetUserRows, &ids, "user_id", user_not_found)
        .await?;
    let keys = Archived::listed(&tx, Query::UserKeyTokens, &[&ids]).await?;
    let removed = tx.query(Query::DeleteUserMemberships, &[&ids]).await?;
    tx.exec(Query::DeleteUserOrgMemberships, &[&ids]).await?;
    let teams = tx.strings(Query::RemoveUsersFromTeams, &[&ids]).await?;
    let deleted = tx.strings(Query::DeleteUsers, &[&ids]).await?;
    let mut changes = audit::deleted(USERS_TABLE, "user_id", &before);
    let mut changed: Vec<Changed> = ids.iter().map(|u| Changed::User(u.clone())).collect();
    keys.record(&mut changes, &mut changed);
    changed.extend(teams.into_iter().map(Changed::Team));
    changed.extend(removed.iter().map(member_changed));
    tx.commit(changes, &changed).await?;
    Ok(ok(&json!(deleted.len())))
}

/// `GET /user/list?page=&page_size=&role=&user_ids=a,b&team_id=&user_email=`
pub async fn list(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let page = Page::of(call, 25)?;
    let role = call.given("role");
    if let Some(r) = &role
        && UserRole::parse(r).is_none()
    {
        return Err(AdminError::invalid(
            "role",
            format!("must be one of {:?}", UserRole::NAMES),
        ));
    }
    let ids: Option<Vec<String>> = call
        .given("user_ids")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let team = call.given("team_id");
    let email = call.given("user_email");
    let total = call
        .count(Query::CountUsers, &[&role, &ids, &team, &email])
        .await?;
    let (size, offset) = (page.size, page.offset());
    let users = call
        .rows(
            Query::ListUsers,
            &[&role, &ids, &team, &email, &size, &offset],
        )
        .await?;
    Ok(ok(&page.answer("users", users, total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_salted_by_user() {
        assert_ne!(hash_password("a", "pw"), hash_password("b", "pw"));
        assert!(hash_password("a", "pw").starts_with("sha256:"));
        assert_eq!(
            team_ids(&json!(["a", {"team_id": "b"}])).unwrap(),
            vec!["a", "b"]
        );
        assert!(team_ids(&json!("a")).is_err());
    }
}
