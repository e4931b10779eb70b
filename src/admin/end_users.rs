//! `/end_user/*` and `/customer/*`: the end users (the `user` of a request) a key's owner serves,
//! each with an optional budget row.

use http::Response;
use serde_json::{Map, Value, json};

use super::audit::{self, Change, END_USERS_TABLE};
use super::budgets::{self, BUDGET_FIELDS, BudgetStmts};
use super::db::{self, str_of};
use super::fields::{self, Dest, Field, Kind, f};
use super::{AdminError, Call, ok};
use crate::auth::Changed;
use crate::body::Body;
use crate::store::{Query, StoreError};

fn spec() -> Vec<Field> {
    let mut v = vec![
        f("user_id", Kind::Str, Dest::Own),
        f("alias", Kind::Str, Dest::Column),
        f("blocked", Kind::Bool, Dest::Column),
        f("allowed_model_region", Kind::Str, Dest::Column),
        f("default_model", Kind::Str, Dest::Column),
        f("models", Kind::Strs, Dest::Column),
        f("budget_id", Kind::Str, Dest::Column),
        f("spend", Kind::Money, Dest::Column),
        f("object_permission", Kind::Object, Dest::Own),
    ];
    v.extend_from_slice(BUDGET_FIELDS);
    v
}

fn not_found(id: &str) -> AdminError {
    AdminError::NotFound {
        param: "user_id",
        message: format!("End user not found, passed user_id={id}"),
    }
}

fn check_region(cols: &Map<String, Value>) -> Result<(), AdminError> {
    match cols.get("allowed_model_region").and_then(Value::as_str) {
        Some(r) if r != "eu" && r != "us" => Err(AdminError::invalid(
            "allowed_model_region",
            format!("must be 'eu' or 'us', got '{r}'"),
        )),
        _ => Ok(()),
    }
}

/// `POST /end_user/new` (`/customer/new`)
pub async fn new(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let mut c = fields::check(&spec(), call.object()?, false)?;
    let user_id = fields::required_str(&c.own, "user_id")?;
    check_region(&c.columns)?;
    let budget = budgets::take(&mut c.own);
    let mut conn = call.store.conn().await?;
    let bst = BudgetStmts::new(conn.stmts(BudgetStmts::QUERIES)?);
    let [get, insert, op_insert, audit_insert] = conn.stmts([
        Query::GetEndUserRows,
        Query::InsertEndUser,
        Query::InsertObjectPermission,
        Query::InsertAuditLog,
    ])?;
    let tx = conn.client.transaction().await.map_err(StoreError::from)?;
    if db::row(&tx, &get, &[&vec![user_id.clone()]])
        .await?
        .is_some()
    {
        return Err(AdminError::invalid(
            "user_id",
            format!("End user with user_id={user_id} already exists"),
        ));
    }
    let mut row = c.columns;
    row.insert("user_id".into(), json!(user_id));
    if !row.contains_key("budget_id")
        && let Some(b) = budgets::upsert(&tx, &bst, None, budget, &call.changed_by()).await?
    {
        row.insert("budget_id".into(), b["budget_id"].clone());
    }
    if let Some(op) = c.own.get("object_permission") {
        let p = db::row(&tx, &op_insert, &[op]).await?.unwrap_or_default();
        row.insert(
            "object_permission_id".into(),
            p["object_permission_id"].clone(),
        );
    }
    db::row(&tx, &insert, &[&Value::Object(row)]).await?;
    let after = db::row(&tx, &get, &[&vec![user_id.clone()]])
        .await?
        .unwrap_or_default();
    audit::commit(
        call,
        tx,
        &audit_insert,
        vec![Change {
            action: "created",
            table: END_USERS_TABLE,
            object_id: &user_id,
            before: None,
            after: Some(&after),
        }],
        &[Changed::EndUser(user_id.clone())],
    )
    .await?;
    Ok(ok(&after))
}

/// `POST /end_user/update`: given fields change, an explicit `null` clears.
pub async fn update(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let mut c = fields::check(&spec(), call.object()?, true)?;
    let user_id = fields::required_str(&c.own, "user_id")?;
    check_region(&c.columns)?;
    if c.own.contains_key("object_permission") {
        return Err(AdminError::invalid(
            "object_permission",
            "set object permissions when the end user is created",
        ));
    }
    let budget = budgets::take(&mut c.own);
    let mut conn = call.store.conn().await?;
    let bst = BudgetStmts::new(conn.stmts(BudgetStmts::QUERIES)?);
    let [get, update, audit_insert] = conn.stmts([
        Query::GetEndUserRows,
        Query::UpdateEndUser,
        Query::InsertAuditLog,
    ])?;
    let tx = conn.client.transaction().await.map_err(StoreError::from)?;
    let before = db::row(&tx, &get, &[&vec![user_id.clone()]])
        .await?
        .ok_or_else(|| not_found(&user_id))?;
    let mut cols = c.columns;
    let existing = str_of(&before, "budget_id").map(str::to_string);
    if let Some(b) =
        budgets::upsert(&tx, &bst, existing.as_deref(), budget, &call.changed_by()).await?
        && existing.is_none()
    {
        cols.insert("budget_id".into(), b["budget_id"].clone());
    }
    db::row(&tx, &update, &[&user_id, &Value::Object(cols)]).await?;
    let after = db::row(&tx, &get, &[&vec![user_id.clone()]])
        .await?
        .unwrap_or_default();
    audit::commit(
        call,
        tx,
        &audit_insert,
        vec![Change {
            action: "updated",
            table: END_USERS_TABLE,
            object_id: &user_id,
            before: Some(&before),
            after: Some(&after),
        }],
        &[Changed::EndUser(user_id.clone())],
    )
    .await?;
    Ok(ok(&after))
}

/// `GET /end_user/info?end_user_id=`
pub async fn info(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let id = call
        .param("end_user_id")
        .or_else(|| call.param("user_id"))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AdminError::invalid("end_user_id", "pass ?end_user_id="))?;
    let row = call
        .store
        .query(Query::GetEndUserRows, &[&vec![id.clone()]])
        .await?
        .first()
        .and_then(|r| r.try_get::<_, Value>(0).ok())
        .ok_or_else(|| not_found(&id))?;
    Ok(ok(&row))
}

/// `GET /end_user/list`
pub async fn list(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let rows: Vec<Value> = call.rows(Query::ListEndUsers, &[]).await?;
    Ok(ok(&Value::Array(rows)))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Ids {
    user_ids: Vec<String>,
}

/// `POST /end_user/delete` `{"user_ids": [..]}`
pub async fn delete(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let req: Ids = call.json()?;
    let mut conn = call.store.conn().await?;
    let [get, del, audit_insert] = conn.stmts([
        Query::GetEndUserRows,
        Query::DeleteEndUsers,
        Query::InsertAuditLog,
    ])?;
    let tx = conn.client.transaction().await.map_err(StoreError::from)?;
    let before = db::rows(&tx, &get, &[&req.user_ids]).await?;
    if before.len() != req.user_ids.len() || before.is_empty() {
        let missing: Vec<&str> = req
            .user_ids
            .iter()
            .map(String::as_str)
            .filter(|id| !before.iter().any(|u| str_of(u, "user_id") == Some(id)))
            .collect();
        return Err(not_found(&missing.join(",")));
    }
    db::exec(&tx, &del, &[&req.user_ids]).await?;
    let changes = audit::deleted(END_USERS_TABLE, "user_id", &before);
    let changed: Vec<Changed> = req
        .user_ids
        .iter()
        .map(|u| Changed::EndUser(u.clone()))
        .collect();
    audit::commit(call, tx, &audit_insert, changes, &changed).await?;
    Ok(ok(&json!({"deleted_customers": req.user_ids.len()})))
}

/// `POST /end_user/block` and `/end_user/unblock` `{"user_ids": [..]}`: unknown end users are
/// created blocked, so a block holds even before their first request.
pub async fn set_blocked(call: &Call<'_>, blocked: bool) -> Result<Response<Body>, AdminError> {
    let req: Ids = call.json()?;
    if req.user_ids.is_empty() {
        return Err(AdminError::invalid("user_ids", "must not be empty"));
    }
    let mut conn = call.store.conn().await?;
    let [get, insert, update, audit_insert] = conn.stmts([
        Query::GetEndUserRows,
        Query::InsertEndUser,
        Query::UpdateEndUser,
        Query::InsertAuditLog,
    ])?;
    let tx = conn.client.transaction().await.map_err(StoreError::from)?;
    let mut befores = Vec::new();
    let mut afters = Vec::new();
    for id in &req.user_ids {
        let before = db::row(&tx, &get, &[&vec![id.clone()]]).await?;
        let after = match &before {
            Some(_) => db::row(&tx, &update, &[id, &json!({"blocked": blocked})]).await?,
            None => db::row(&tx, &insert, &[&json!({"user_id": id, "blocked": blocked})]).await?,
        };
        befores.push(before);
        afters.push(after.unwrap_or_default());
    }
    let changes = req
        .user_ids
        .iter()
        .zip(befores.iter().zip(afters.iter()))
        .map(|(id, (b, a))| Change {
            action: if b.is_some() { "updated" } else { "created" },
            table: END_USERS_TABLE,
            object_id: id,
            before: b.as_ref(),
            after: Some(a),
        })
        .collect();
    let changed: Vec<Changed> = req
        .user_ids
        .iter()
        .map(|u| Changed::EndUser(u.clone()))
        .collect();
    audit::commit(call, tx, &audit_insert, changes, &changed).await?;
    let key = if blocked {
        "blocked_users"
    } else {
        "unblocked_users"
    };
    Ok(ok(&json!({ key: req.user_ids })))
}
