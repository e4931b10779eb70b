//! `/organization/*`: organisations (each with a required budget row) and their members.

use http::Response;
use serde_json::{Map, Value, json};

use super::audit::{self, Change, ORGS_TABLE};
use super::budgets::{self, BUDGET_FIELDS};
use super::crud::{self, Tx, str_of};
use super::fields::{self, Field, spec};
use super::{AdminError, Call, ok};
use crate::auth::Changed;
use crate::body::Body;
use crate::store::Query;

/// Roles inside an organisation.
const ORG_ROLES: &[&str] = &["org_admin", "internal_user", "internal_user_viewer"];

const ORG_FIELDS: &[Field] = spec! {
    own Str: organization_id;
    own Object: object_permission;
    column Str: organization_alias budget_id;
    column Strs: models;
    column Object: metadata;
};

const MEMBER_FIELDS: &[Field] = spec! {
    own Str: organization_id user_id user_email role;
    own Any: member;
    own Money: max_budget_in_organization;
};

fn not_found(id: &str) -> AdminError {
    crud::not_found("Organization", "organization_id", id)
}

/// `POST /organization/new`
pub async fn new(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let mut c = fields::check(&[ORG_FIELDS, BUDGET_FIELDS].concat(), call.object()?, false)?;
    // Required, but not unique (unless enforce_unique_organization_alias is on).
    if c.columns
        .get("organization_alias")
        .and_then(Value::as_str)
        .is_none_or(|a| a.trim().is_empty())
    {
        return Err(AdminError::invalid(
            "organization_alias",
            "`organization_alias` is required",
        ));
    }
    let id = fields::id_or_new(&c.own, "organization_id");
    let budget = budgets::take(&mut c.own);
    let by = call.changed_by();
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let taken = format!("Organization id = {id} already exists");
    tx.absent(Query::GetOrgRows, &id, "organization_id", taken)
        .await?;
    let mut row = c.columns;
    row.insert("organization_id".into(), json!(id));
    row.insert("created_by".into(), json!(by));
    row.insert("updated_by".into(), json!(by));
    match row.get("budget_id").and_then(Value::as_str) {
        Some(b) => {
            tx.get(Query::GetBudgetRows, b, budgets::not_found).await?;
        }
        None => {
            // An organisation always has a budget row, even an unlimited one.
            let mut cols = budget;
            cols.entry("max_budget").or_insert(Value::Null);
            let b = tx.budget(None, cols).await?.unwrap_or_default();
            row.insert("budget_id".into(), b["budget_id"].clone());
        }
    }
    tx.object_permission(c.own.get("object_permission"), &mut row)
        .await?;
    tx.row(Query::InsertOrg, &[&Value::Object(row)]).await?;
    let after = tx.find(Query::GetOrgRows, &id).await?.unwrap_or_default();
    let changes = vec![Change::created(ORGS_TABLE, &id, &after)];
    tx.commit(changes, &[Changed::Org(id.clone())]).await?;
    Ok(ok(&after))
}

/// `PATCH /organization/update`: given fields change (budget fields change its budget row).
pub async fn update(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let mut c = fields::check(&[ORG_FIELDS, BUDGET_FIELDS].concat(), call.object()?, true)?;
    let id = fields::required_str(&c.own, "organization_id")?;
    c.refuse(
        "object_permission",
        "set object permissions when the organization is created",
    )?;
    if c.columns.get("budget_id").is_some_and(Value::is_null)
        || c.columns
            .get("organization_alias")
            .is_some_and(Value::is_null)
    {
        return Err(AdminError::invalid(
            "organization_alias",
            "organization_alias and budget_id cannot be cleared",
        ));
    }
    let budget = budgets::take(&mut c.own);
    let by = call.changed_by();
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let before = tx.get(Query::GetOrgRows, &id, not_found).await?;
    tx.budget(str_of(&before, "budget_id"), budget).await?;
    tx.row(Query::UpdateOrg, &[&id, &Value::Object(c.columns), &by])
        .await?;
    let after = tx.find(Query::GetOrgRows, &id).await?.unwrap_or_default();
    let changes = vec![Change::updated(ORGS_TABLE, &id, &before, &after)];
    tx.commit(changes, &[Changed::Org(id.clone())]).await?;
    Ok(ok(&after))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Ids {
    organization_ids: Vec<String>,
}

/// `DELETE /organization/delete` `{"organization_ids": [..]}`: memberships go with it; teams,
/// keys and users keep existing without an organisation.
pub async fn delete(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let req: Ids = call.json()?;
    if req.organization_ids.is_empty() {
        return Err(AdminError::invalid("organization_ids", "must not be empty"));
    }
    let ids = &req.organization_ids;
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let before = tx
        .get_all(Query::GetOrgRows, ids, "organization_id", not_found)
        .await?;
    tx.strings(Query::DeleteOrgMemberships, &[ids]).await?;
    tx.exec(Query::DeleteOrgs, &[ids]).await?;
    let changes = audit::deleted(ORGS_TABLE, "organization_id", &before);
    // Keys, teams and users lose their organisation (ON DELETE SET NULL): drop all cached.
    tx.commit(changes, &[Changed::All]).await?;
    Ok(ok(&Value::Array(before)))
}

fn member_of(rows: &[Value], user_id: &str) -> bool {
    rows.iter().any(|m| str_of(m, "user_id") == Some(user_id))
}

/// `GET /organization/info?organization_id=`: admins and viewers, or members of it.
pub async fn info(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let id = call.required("organization_id")?;
    let mut org = call
        .first(Query::GetOrgRows, &[&vec![id.clone()]])
        .await?
        .ok_or_else(|| not_found(&id))?;
    let members = call.rows(Query::OrgMembers, &[&id]).await?;
    if !call.principal.can_read_all()
        && !call
            .principal
            .user_id()
            .is_some_and(|u| member_of(&members, u))
    {
        return Err(call.forbidden(format_args!("You are not a member of organization {id}")));
    }
    let teams = call.rows(Query::OrgTeams, &[&id]).await?;
    org["members"] = Value::Array(members);
    org["teams"] = Value::Array(teams);
    Ok(ok(&org))
}

/// `GET /organization/list`: all for admins and viewers, the caller's own for others.
pub async fn list(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let user: Option<String> = if call.principal.can_read_all() {
        None
    } else {
        match call.principal.user_id() {
            Some(u) => Some(u.to_string()),
            None => return Ok(ok(&json!([]))),
        }
    };
    let rows: Vec<Value> = call.rows(Query::ListOrgs, &[&user]).await?;
    Ok(ok(&Value::Array(rows)))
}

fn check_role(field: &str, role: &str) -> Result<(), AdminError> {
    if ORG_ROLES.contains(&role) {
        Ok(())
    } else {
        Err(AdminError::invalid(
            field,
            format!("must be one of {ORG_ROLES:?}, got '{role}'"),
        ))
    }
}

/// `(role, user_id, user_email)` of one member.
type OrgMember = (String, Option<String>, Option<String>);

/// `{role, user_id?, user_email?}` members.
fn members(v: &Value) -> Result<Vec<OrgMember>, AdminError> {
    let list = match v {
        Value::Array(a) => a.clone(),
        Value::Object(_) => vec![v.clone()],
        _ => return Err(AdminError::invalid("member", "must be a member or a list")),
    };
    list.iter()
        .map(|m| {
            let o = m
                .as_object()
                .ok_or_else(|| AdminError::invalid("member", "each member must be an object"))?;
            let s = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
            for k in o.keys() {
                if !["role", "user_id", "user_email"].contains(&k.as_str()) {
                    return Err(AdminError::invalid(
                        &format!("member.{k}"),
                        format!("unknown field `{k}`"),
                    ));
                }
            }
            let role = s("role").unwrap_or_else(|| "internal_user".into());
            check_role("member.role", &role)?;
            if s("user_id").is_none() && s("user_email").is_none() {
                return Err(AdminError::invalid(
                    "member",
                    "each member needs a user_id or a user_email",
                ));
            }
            Ok((role, s("user_id"), s("user_email")))
        })
        .collect()
}

/// Add, change or remove members: one handler, three routes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum MemberOp {
    Add,
    Update,
    Delete,
}

/// `POST /organization/member_add`, `PATCH /organization/member_update`,
/// `DELETE /organization/member_delete`
pub async fn members_change(call: &Call<'_>, op: MemberOp) -> Result<Response<Body>, AdminError> {
    let c = fields::check(MEMBER_FIELDS, call.object()?, false)?;
    let org_id = fields::required_str(&c.own, "organization_id")?;
    let given: Vec<OrgMember> = match op {
        MemberOp::Add => members(
            c.own
                .get("member")
                .ok_or_else(|| AdminError::invalid("member", "`member` is required"))?,
        )?,
        _ => {
            let role = c
                .own
                .get("role")
                .and_then(Value::as_str)
                .map(str::to_string);
            if let Some(r) = &role {
                check_role("role", r)?;
            }
            let s = |k: &str| c.own.get(k).and_then(Value::as_str).map(str::to_string);
            if s("user_id").is_none() && s("user_email").is_none() {
                return Err(AdminError::invalid(
                    "user_id",
                    "pass the member's `user_id` or `user_email`",
                ));
            }
            vec![(role.unwrap_or_default(), s("user_id"), s("user_email"))]
        }
    };
    let mut budget = Map::new();
    if let Some(v) = c.own.get("max_budget_in_organization") {
        budget.insert("max_budget".into(), v.clone());
    }
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    tx.get(Query::GetOrgRows, &org_id, not_found).await?;
    let mut user_ids = Vec::new();
    let mut memberships = Vec::new();
    let mut befores = Vec::new();
    for (role, user_id, email) in &given {
        let found = match email {
            Some(e) if user_id.is_none() => tx
                .strings(Query::UserIdByEmail, &[e])
                .await?
                .into_iter()
                .next(),
            _ => user_id.clone(),
        };
        let uid = match (found, op) {
            (Some(u), _) => u,
            (None, MemberOp::Add) => uuid::Uuid::now_v7().to_string(),
            (None, _) => {
                return Err(AdminError::NotFound {
                    param: "user_email",
                    message: "No user with that user_email".into(),
                });
            }
        };
        let existing = tx.row(Query::GetOrgMembership, &[&org_id, &uid]).await?;
        if op != MemberOp::Add && existing.is_none() {
            return Err(AdminError::NotFound {
                param: "user_id",
                message: format!("User={uid} is not a member of organization={org_id}"),
            });
        }
        befores.push(existing.clone().unwrap_or(Value::Null));
        match op {
            MemberOp::Delete => {
                tx.exec(Query::DeleteOrgMembership, &[&org_id, &uid])
                    .await?;
                tx.exec(Query::SetUserOrg, &[&uid, &None::<String>, &org_id])
                    .await?;
            }
            _ => {
                if op == MemberOp::Add {
                    tx.exec(Query::EnsureUser, &[&uid, email]).await?;
                }
                let old_budget = existing.as_ref().and_then(|m| str_of(m, "budget_id"));
                let b = tx.budget(old_budget, budget.clone()).await?;
                let budget_id = b.as_ref().and_then(|b| str_of(b, "budget_id"));
                let role = (!role.is_empty()).then(|| role.clone());
                let m = tx
                    .row(
                        Query::UpsertOrgMembership,
                        &[&uid, &org_id, &role, &budget_id],
                    )
                    .await?
                    .unwrap_or_default();
                tx.exec(Query::SetUserOrg, &[&uid, &Some(org_id.clone()), &org_id])
                    .await?;
                memberships.push(m);
            }
        }
        user_ids.push(uid);
    }
    let users = tx.rows(Query::GetUserRows, &[&user_ids]).await?;
    let after = json!({"memberships": memberships});
    let before = Value::Array(befores);
    let mut changed = vec![Changed::Org(org_id.clone())];
    changed.extend(user_ids.iter().map(|u| Changed::User(u.clone())));
    let changes = vec![Change::updated(ORGS_TABLE, &org_id, &before, &after)];
    tx.commit(changes, &changed).await?;
    Ok(ok(&json!({
        "organization_id": org_id,
        "updated_users": users,
        "updated_organization_memberships": memberships,
    })))
}
