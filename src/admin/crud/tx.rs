//! [`Tx`]: one management write.

use serde_json::{Map, Value, json};
use tokio_postgres::types::{FromSqlOwned, ToSql};
use tokio_postgres::{Row, Statement, Transaction};

use super::super::audit::{self, Change};
use super::super::keys::map_db;
use super::super::{AdminError, Call};
use super::str_of;
use crate::auth::Changed;
use crate::store::{PgConn, Prepared, Query, StoreError};

/// Parameters of a statement.
pub type Params<'a> = [&'a (dyn ToSql + Sync)];

/// One management write: a transaction on a pooled connection, its prepared statements, and the
/// call it serves (who changes what, for the audit rows). Dropped without [`Tx::commit`], it
/// rolls back.
///
/// `rows`, `row`, `one`, `strings` and `exec` report a write the database refuses as a 400 that
/// names the column or constraint ([`map_db`]); `query`, `any` and `one_plain` pass database
/// errors on as they are.
pub struct Tx<'c> {
    call: &'c Call<'c>,
    tx: Transaction<'c>,
    prepared: Prepared<'c>,
}

impl<'c> Tx<'c> {
    /// Open a transaction on `conn` for `call`.
    pub async fn begin(call: &'c Call<'c>, conn: &'c mut PgConn) -> Result<Self, AdminError> {
        let (client, prepared) = conn.parts();
        let tx = client.transaction().await.map_err(StoreError::from)?;
        Ok(Self { call, tx, prepared })
    }

    /// The call this write serves.
    pub fn call(&self) -> &'c Call<'c> {
        self.call
    }

    fn stmt(&self, q: Query) -> Result<&'c Statement, AdminError> {
        Ok(self.prepared.get(q)?)
    }

    /// The rows of `q` as they are.
    pub async fn query(&self, q: Query, params: &Params<'_>) -> Result<Vec<Row>, AdminError> {
        let rows = self.tx.query(self.stmt(q)?, params).await;
        Ok(rows.map_err(StoreError::from)?)
    }

    /// Whether `q` returns a row: "taken" and "in use" checks.
    pub async fn any(&self, q: Query, params: &Params<'_>) -> Result<bool, AdminError> {
        Ok(!self.query(q, params).await?.is_empty())
    }

    async fn column<T: FromSqlOwned>(
        &self,
        q: Query,
        params: &Params<'_>,
    ) -> Result<Vec<T>, AdminError> {
        let rows = self.tx.query(self.stmt(q)?, params).await.map_err(map_db)?;
        rows.iter()
            .map(|r| r.try_get::<_, T>(0).map_err(|e| StoreError::from(e).into()))
            .collect()
    }

    /// Every row's first column as JSON.
    pub async fn rows(&self, q: Query, params: &Params<'_>) -> Result<Vec<Value>, AdminError> {
        self.column(q, params).await
    }

    /// Every row's first column as text.
    pub async fn strings(&self, q: Query, params: &Params<'_>) -> Result<Vec<String>, AdminError> {
        self.column(q, params).await
    }

    /// The first row's first column as JSON, if there is a row.
    pub async fn row(&self, q: Query, params: &Params<'_>) -> Result<Option<Value>, AdminError> {
        Ok(self.rows(q, params).await?.into_iter().next())
    }

    /// The one row `q` must return, as JSON (none, or more, is an error).
    pub async fn one(&self, q: Query, params: &Params<'_>) -> Result<Value, AdminError> {
        self.only(q, params, map_db).await
    }

    /// [`Tx::one`] with database errors passed on as they are.
    pub async fn one_plain(&self, q: Query, params: &Params<'_>) -> Result<Value, AdminError> {
        self.only(q, params, |e| StoreError::from(e).into()).await
    }

    async fn only(
        &self,
        q: Query,
        params: &Params<'_>,
        refused: fn(tokio_postgres::Error) -> AdminError,
    ) -> Result<Value, AdminError> {
        let row = self.tx.query_one(self.stmt(q)?, params).await;
        Ok(row.map_err(refused)?.try_get(0).map_err(StoreError::from)?)
    }

    /// Run `q` for its effect.
    pub async fn exec(&self, q: Query, params: &Params<'_>) -> Result<u64, AdminError> {
        self.tx.execute(self.stmt(q)?, params).await.map_err(map_db)
    }

    /// The row of `id` (`q` takes a list of ids), if there is one.
    pub async fn find(&self, q: Query, id: &str) -> Result<Option<Value>, AdminError> {
        self.row(q, &[&vec![id.to_string()]]).await
    }

    /// The row of `id`, or `missing(id)`.
    pub async fn get(
        &self,
        q: Query,
        id: &str,
        missing: fn(&str) -> AdminError,
    ) -> Result<Value, AdminError> {
        self.find(q, id).await?.ok_or_else(|| missing(id))
    }

    /// The rows of all `ids` (`column` is their id column), or `missing` of the ids not found,
    /// comma-separated.
    pub async fn get_all(
        &self,
        q: Query,
        ids: &[String],
        column: &str,
        missing: fn(&str) -> AdminError,
    ) -> Result<Vec<Value>, AdminError> {
        let rows = self.rows(q, &[&ids]).await?;
        if rows.len() == ids.len() && !rows.is_empty() {
            return Ok(rows);
        }
        let gone: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| !rows.iter().any(|r| str_of(r, column) == Some(id)))
            .collect();
        Err(missing(&gone.join(",")))
    }

    /// `Ok` when `id` has no row yet, else a 400 on `field` saying `taken`.
    pub async fn absent(
        &self,
        q: Query,
        id: &str,
        field: &str,
        taken: String,
    ) -> Result<(), AdminError> {
        match self.find(q, id).await? {
            Some(_) => Err(AdminError::invalid(field, taken)),
            None => Ok(()),
        }
    }

    /// With `given` (a request's `object_permission`), insert an object-permission row and
    /// point `row` at it (`object_permission_id`).
    pub async fn object_permission(
        &self,
        given: Option<&Value>,
        row: &mut Map<String, Value>,
    ) -> Result<(), AdminError> {
        if let Some(v) = given {
            let p = self.row(Query::InsertObjectPermission, &[v]).await?;
            let id = p.unwrap_or_default()["object_permission_id"].clone();
            row.insert("object_permission_id".into(), id);
        }
        Ok(())
    }

    /// Write `cols` to the budget row `existing` (a new row when there is none), as changed by
    /// the caller. Returns the row written, or `None` when there was nothing to write.
    pub async fn budget(
        &self,
        existing: Option<&str>,
        cols: Map<String, Value>,
    ) -> Result<Option<Value>, AdminError> {
        if cols.is_empty() {
            return Ok(None);
        }
        let by = self.call.changed_by();
        match existing {
            Some(id) => {
                self.row(Query::UpdateBudget, &[&id, &Value::Object(cols), &by])
                    .await
            }
            None => {
                let mut row = cols;
                row.insert("created_by".into(), json!(by));
                row.insert("updated_by".into(), json!(by));
                self.row(Query::InsertBudget, &[&Value::Object(row)]).await
            }
        }
    }

    /// Finish the write: record `changes` (when auditing is on), commit, then drop what
    /// `changed` names from the governance caches here and on every other instance.
    pub async fn commit(
        self,
        changes: Vec<Change<'_>>,
        changed: &[Changed],
    ) -> Result<(), AdminError> {
        let events = management_events(self.call, &changes);
        for change in changes {
            audit::record(&self, change).await?;
        }
        self.tx.commit().await.map_err(StoreError::from)?;
        self.call.state.invalidate(changed).await;
        events
            .into_iter()
            .for_each(|e| self.call.state.alerts.send(e));
        Ok(())
    }
}

/// The management events (`new_virtual_key_created`, `team_updated`, ...) of `changes` that
/// someone wants, sent once the transaction has committed.
fn management_events(call: &Call<'_>, changes: &[Change<'_>]) -> Vec<crate::alerting::Alert> {
    use crate::alerting::Managed;
    changes
        .iter()
        .filter_map(|c| {
            let what = match c.table {
                audit::KEYS_TABLE => Managed::Key,
                audit::TEAMS_TABLE => Managed::Team,
                audit::USERS_TABLE => Managed::User,
                audit::MODELS_TABLE => Managed::Model,
                _ => return None,
            };
            let row = c.after.or(c.before)?;
            (call.state.alerts).management(what, c.action, row, &call.changed_by())
        })
        .collect()
}
