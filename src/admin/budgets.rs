//! `/budget/*`: budget rows, shared by organisations, team memberships, end users and keys; and
//! the budget fields other areas accept, turned into budget columns by [`take`] (written by
//! [`super::crud::Tx::budget`]).

use http::Response;
use serde_json::{Map, Value, json};

use super::audit::{BUDGETS_TABLE, Change};
use super::crud::{self, IdBody, Tx, str_of};
use super::fields::{self, Field, Kind, spec};
use super::{AdminError, Call, ok};
use crate::auth::Changed;
use crate::body::Body;
use crate::store::Query;

/// Budget columns, as request fields.
pub const BUDGET_FIELDS: &[Field] = spec! {
    own Money: max_budget soft_budget temp_budget_increase;
    own Count: max_parallel_requests tpm_limit rpm_limit tpd_limit;
    own Object: model_max_budget;
    own Duration: budget_duration;
    own Strs: allowed_models;
    own Time: temp_budget_expiry;
};

fn spec() -> Vec<Field> {
    [spec! { own Str: budget_id; }, BUDGET_FIELDS].concat()
}

/// Move the budget fields out of `own` into budget-table columns (with `budget_reset_at`
/// following `budget_duration`).
pub fn take(own: &mut Map<String, Value>) -> Map<String, Value> {
    let mut cols = Map::new();
    for field in BUDGET_FIELDS {
        if let Some(v) = own.remove(field.name) {
            if field.name == "budget_duration" {
                cols.insert("budget_reset_at".into(), fields::reset_at(&v));
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

/// 404 for a budget that does not exist.
pub fn not_found(id: &str) -> AdminError {
    crud::not_found("Budget", "budget_id", id)
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
    let tx = Tx::begin(call, &mut conn).await?;
    if let Some(id) = cols.get("budget_id").and_then(Value::as_str) {
        let taken = format!("Budget id = {id} already exists");
        tx.absent(Query::GetBudgetRows, id, "budget_id", taken)
            .await?;
    }
    let row = tx.row(Query::InsertBudget, &[&Value::Object(cols)]).await?;
    let row = row.unwrap_or_default();
    let id = str_of(&row, "budget_id").unwrap_or_default().to_string();
    tx.commit(vec![Change::created(BUDGETS_TABLE, &id, &row)], &[])
        .await?;
    Ok(ok(&row))
}

/// `POST /budget/update`: given fields change, an explicit `null` clears.
pub async fn update(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let mut c = fields::check(&spec(), call.object()?, true)?;
    let id = fields::required_str(&c.own, "budget_id")?;
    let cols = take(&mut c.own);
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let before = tx.get(Query::GetBudgetRows, &id, not_found).await?;
    let patch = Value::Object(cols);
    let by = call.changed_by();
    let after = tx.row(Query::UpdateBudget, &[&id, &patch, &by]).await?;
    let after = after.unwrap_or_default();
    // Anything may point at a budget; drop every cached record so the new limits apply now.
    let changes = vec![Change::updated(BUDGETS_TABLE, &id, &before, &after)];
    tx.commit(changes, &[Changed::All]).await?;
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

/// `POST /budget/delete` `{"id": ..}`: refused while an organisation needs the budget.
pub async fn delete(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let req: IdBody = call.json()?;
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let before = tx.get(Query::GetBudgetRows, &req.id, not_found).await?;
    if tx.any(Query::BudgetInUse, &[&req.id]).await? {
        return Err(AdminError::invalid(
            "id",
            "an organization uses this budget; change the organization's budget first",
        ));
    }
    tx.exec(Query::DeleteBudgets, &[&vec![req.id.clone()]])
        .await?;
    let deleted = Change::of("deleted", BUDGETS_TABLE, &req.id, Some(&before), None);
    tx.commit(vec![deleted], &[Changed::All]).await?;
    Ok(ok(&before))
}
