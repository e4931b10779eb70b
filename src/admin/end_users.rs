//! `/end_user/*` and `/customer/*`: the end users (the `user` of a request) a key's owner serves,
//! each with an optional budget row.

use http::Response;
use serde_json::{Map, Value, json};

use super::audit::{self, Change, END_USERS_TABLE};
use super::budgets::{self, BUDGET_FIELDS};
use super::crud::{self, Tx, str_of};
use super::fields::{self, Field, spec};
use super::{AdminError, Call, ok};
use crate::auth::Changed;
use crate::body::Body;
use crate::store::Query;

const END_USER_FIELDS: &[Field] = spec! {
    own Str: user_id;
    own Object: object_permission;
    column Str: alias allowed_model_region default_model budget_id;
    column Bool: blocked;
    column Strs: models;
    column Money: spend;
};

fn not_found(id: &str) -> AdminError {
    crud::not_found("End user", "user_id", id)
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

/// `Changed::EndUser` for each id.
fn changed(ids: &[String]) -> Vec<Changed> {
    ids.iter().map(|u| Changed::EndUser(u.clone())).collect()
}

/// `POST /end_user/new` (`/customer/new`)
pub async fn new(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let spec = [END_USER_FIELDS, BUDGET_FIELDS].concat();
    let mut c = fields::check(&spec, call.object()?, false)?;
    let user_id = fields::required_str(&c.own, "user_id")?;
    check_region(&c.columns)?;
    let budget = budgets::take(&mut c.own);
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let taken = format!("End user with user_id={user_id} already exists");
    tx.absent(Query::GetEndUserRows, &user_id, "user_id", taken)
        .await?;
    let mut row = c.columns;
    row.insert("user_id".into(), json!(user_id));
    if !row.contains_key("budget_id")
        && let Some(b) = tx.budget(None, budget).await?
    {
        row.insert("budget_id".into(), b["budget_id"].clone());
    }
    tx.object_permission(c.own.get("object_permission"), &mut row)
        .await?;
    tx.row(Query::InsertEndUser, &[&Value::Object(row)]).await?;
    let after = tx.find(Query::GetEndUserRows, &user_id).await?;
    let after = after.unwrap_or_default();
    let changes = vec![Change::created(END_USERS_TABLE, &user_id, &after)];
    tx.commit(changes, &[Changed::EndUser(user_id.clone())])
        .await?;
    Ok(ok(&after))
}

/// `POST /end_user/update`: given fields change, an explicit `null` clears.
pub async fn update(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let spec = [END_USER_FIELDS, BUDGET_FIELDS].concat();
    let mut c = fields::check(&spec, call.object()?, true)?;
    let user_id = fields::required_str(&c.own, "user_id")?;
    check_region(&c.columns)?;
    c.refuse(
        "object_permission",
        "set object permissions when the end user is created",
    )?;
    let budget = budgets::take(&mut c.own);
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let before = tx.get(Query::GetEndUserRows, &user_id, not_found).await?;
    let mut cols = c.columns;
    let existing = str_of(&before, "budget_id");
    if let Some(b) = tx.budget(existing, budget).await?
        && existing.is_none()
    {
        cols.insert("budget_id".into(), b["budget_id"].clone());
    }
    tx.row(Query::UpdateEndUser, &[&user_id, &Value::Object(cols)])
        .await?;
    let after = tx.find(Query::GetEndUserRows, &user_id).await?;
    let after = after.unwrap_or_default();
    let changes = vec![Change::updated(END_USERS_TABLE, &user_id, &before, &after)];
    tx.commit(changes, &[Changed::EndUser(user_id.clone())])
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
        .first(Query::GetEndUserRows, &[&vec![id.clone()]])
        .await?
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
    let tx = Tx::begin(call, &mut conn).await?;
    let before = tx
        .get_all(Query::GetEndUserRows, &req.user_ids, "user_id", not_found)
        .await?;
    tx.exec(Query::DeleteEndUsers, &[&req.user_ids]).await?;
    let changes = audit::deleted(END_USERS_TABLE, "user_id", &before);
    tx.commit(changes, &changed(&req.user_ids)).await?;
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
    let tx = Tx::begin(call, &mut conn).await?;
    let mut befores = Vec::new();
    let mut afters = Vec::new();
    for id in &req.user_ids {
        let before = tx.find(Query::GetEndUserRows, id).await?;
        let after = match &before {
            Some(_) => {
                let patch = json!({"blocked": blocked});
                tx.row(Query::UpdateEndUser, &[id, &patch]).await?
            }
            None => {
                let row = json!({"user_id": id, "blocked": blocked});
                tx.row(Query::InsertEndUser, &[&row]).await?
            }
        };
        befores.push(before);
        afters.push(after.unwrap_or_default());
    }
    let changes = req
        .user_ids
        .iter()
        .zip(befores.iter().zip(afters.iter()))
        .map(|(id, (b, a))| {
            let action = if b.is_some() { "updated" } else { "created" };
            Change::of(action, END_USERS_TABLE, id, b.as_ref(), Some(a))
        })
        .collect();
    tx.commit(changes, &changed(&req.user_ids)).await?;
    let key = if blocked {
        "blocked_users"
    } else {
        "unblocked_users"
    };
    Ok(ok(&json!({ key: req.user_ids })))
}
