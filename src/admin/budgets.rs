//! `/budget/*`: budget rows, shared by organisations, team memberships, end users and keys; and
//! the helper other areas use to keep an entity's budget row in step with its request.

use http::Response;
use serde_json::{Map, Value, json};
use tokio_postgres::{Statement, Transaction};

use super::audit::{self, BUDGETS_TABLE, Change};
use super::db::{self, str_of};
use super::fields::{self, Dest, Field, Kind, f};
use super::{AdminError, Call, ok};
use crate::body::Body;
use crate::store::{Query, StoreError};

/// Budget columns, as request fields.
pub const BUDGET_FIELDS: &[Field] = &[
    f("max_budget", Kind::Money, Dest::Own),
    f("soft_budget", Kind::Money, Dest::Own),
    f("max_parallel_requests", Kind::Count, Dest::Own),
    f("tpm_limit", Kind::Count, Dest::Own),
    f("rpm_limit", Kind::Count, Dest::Own),
    f("tpd_limit", Kind::Count, Dest::Own),
    f("model_max_budget", Kind::Object, Dest::Own),
    f("budget_duration", Kind::Duration, Dest::Own),
    f("allowed_models", Kind::Strs, Dest::Own),
    f("temp_budget_increase", Kind::Money, Dest::Own),
    f("temp_budget_expiry", Kind::Time, Dest::Own),
];

fn spec() -> Vec<Field> {
    let mut v = vec![f("budget_id", Kind::Str, Dest::Own)];
    v.extend_from_slice(BUDGET_FIELDS);
    v
}

/// Move the budget fields out of `own` into budget-table columns (with `budget_reset_at`
/// following `budget_duration`).
pub fn take(own: &mut Map<String, Value>) -> Map<String, Value> {
    let mut cols = Map::new();
    for field in BUDGET_FIELDS {
        if let Some(v) = own.remove(field.name) {
            if field.name == "budget_duration" {
                let reset = v
                    .as_str()
                    .and_then(super::duration::parse)
                    .map(|d| crate::auth::fmt_utc(super::keys::now_secs() + d.as_secs_f64()));
                cols.insert("budget_reset_at".into(), json!(reset));
            }
            let v = if v.is_null() && field.kind == Kind::Strs {
                json!([])
            } else {
                v
            };
            cols.insert(field.name.to_string(), v);
        }
    }
    cols
}

/// Statements to write budget rows.
pub struct BudgetStmts {
    pub insert: Statement,
    pub update: Statement,
}

impl BudgetStmts {
    pub const QUERIES: [Query; 2] = [Query::InsertBudget, Query::UpdateBudget];
    pub fn new([insert, update]: [Statement; 2]) -> Self {
        Self { insert, update }
    }
}

/// Write `cols` to the budget `existing` (or a new budget row when there is none). Returns the
/// row written, or `None` when there was nothing to write.
pub async fn upsert(
    tx: &Transaction<'_>,
    st: &BudgetStmts,
    existing: Option<&str>,
    cols: Map<String, Value>,
    changed_by: &str,
) -> Result<Option<Value>, AdminError> {
    if cols.is_empty() {
        return Ok(None);
    }
    match existing {
        Some(id) => db::row(tx, &st.update, &[&id, &Value::Object(cols), &changed_by]).await,
        None => {
            let mut row = cols;
            row.insert("created_by".into(), json!(changed_by));
            row.insert("updated_by".into(), json!(changed_by));
            db::row(tx, &st.insert, &[&Value::Object(row)]).await
        }
    }
}

fn not_found(id: &str) -> AdminError {
    AdminError::NotFound {
        param: "budget_id",
        message: format!("Budget not found, passed budget_id={id}"),
    }
}

/// `POST /budget/new`
pub async fn new(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let mut c = fields::check(&spec(), call.object()?, false)?;
    let mut cols = take(&mut c.own);
    if let Some(id) = c.own.get("budget_id").and_then(Value::as_str) {
        cols.insert("budget_id".into(), json!(id));
    }
    let by = call.changed_by();
    cols.insert("created_by".into(), json!(by));
    cols.insert("updated_by".into(), json!(by));
    let mut conn = call.store.conn().await?;
    let [get, insert, audit_insert] = conn.stmts([
        Query::GetBudgetRows,
        Query::InsertBudget,
        Query::InsertAuditLog,
    ])?;
    let tx = conn.client.transaction().await.map_err(StoreError::from)?;
    if let Some(id) = cols.get("budget_id").and_then(Value::as_str)
        && db::row(&tx, &get, &[&vec![id.to_string()]])
            .await?
            .is_some()
    {
        return Err(AdminError::invalid(
            "budget_id",
            format!("Budget id = {id} already exists"),
        ));
    }
    let row = db::row(&tx, &insert, &[&Value::Object(cols)])
        .await?
        .unwrap_or_default();
    let id = str_of(&row, "budget_id").unwrap_or_default().to_string();
    audit::commit(
        call,
        tx,
        &audit_insert,
        vec![Change {
            action: "created",
            table: BUDGETS_TABLE,
            object_id: &id,
            before: None,
            after: Some(&row),
        }],
        &[],
    )
    .await?;
    Ok(ok(&row))
}

/// `POST /budget/update`: given fields change, an explicit `null` clears.
pub async fn update(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let mut c = fields::check(&spec(), call.object()?, true)?;
    let id = fields::required_str(&c.own, "budget_id")?;
    let cols = take(&mut c.own);
    let mut conn = call.store.conn().await?;
    let [get, update, audit_insert] = conn.stmts([
        Query::GetBudgetRows,
        Query::UpdateBudget,
        Query::InsertAuditLog,
    ])?;
    let tx = conn.client.transaction().await.map_err(StoreError::from)?;
    let before = db::row(&tx, &get, &[&vec![id.clone()]])
        .await?
        .ok_or_else(|| not_found(&id))?;
    let after = db::row(
        &tx,
        &update,
        &[&id, &Value::Object(cols), &call.changed_by()],
    )
    .await?
    .unwrap_or_default();
    // Anything may point at a budget; drop every cached record so the new limits apply now.
    audit::commit(
        call,
        tx,
        &audit_insert,
        vec![Change {
            action: "updated",
            table: BUDGETS_TABLE,
            object_id: &id,
            before: Some(&before),
            after: Some(&after),
        }],
        &[crate::auth::Changed::All],
    )
    .await?;
    Ok(ok(&after))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Ids {
    budgets: Vec<String>,
}

/// `POST /budget/info` `{"budgets": [ids]}`
pub async fn info(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let req: Ids = call.json()?;
    let rows: Vec<Value> = call.rows(Query::GetBudgetRows, &[&req.budgets]).await?;
    Ok(ok(&Value::Array(rows)))
}

/// `GET /budget/list`
pub async fn list(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let rows: Vec<Value> = call.rows(Query::ListBudgets, &[]).await?;
    Ok(ok(&Value::Array(rows)))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Id {
    id: String,
}

/// `POST /budget/delete` `{"id": ..}`: refused while an organisation needs the budget.
pub async fn delete(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let req: Id = call.json()?;
    let mut conn = call.store.conn().await?;
    let [get, in_use, del, audit_insert] = conn.stmts([
        Query::GetBudgetRows,
        Query::BudgetInUse,
        Query::DeleteBudgets,
        Query::InsertAuditLog,
    ])?;
    let tx = conn.client.transaction().await.map_err(StoreError::from)?;
    let before = db::row(&tx, &get, &[&vec![req.id.clone()]])
        .await?
        .ok_or_else(|| not_found(&req.id))?;
    if !tx
        .query(&in_use, &[&req.id])
        .await
        .map_err(StoreError::from)?
        .is_empty()
    {
        return Err(AdminError::invalid(
            "id",
            "an organization uses this budget; change the organization's budget first",
        ));
    }
    db::exec(&tx, &del, &[&vec![req.id.clone()]]).await?;
    audit::commit(
        call,
        tx,
        &audit_insert,
        vec![Change {
            action: "deleted",
            table: BUDGETS_TABLE,
            object_id: &req.id,
            before: Some(&before),
            after: None,
        }],
        &[crate::auth::Changed::All],
    )
    .await?;
    Ok(ok(&before))
}
