//! Small helpers for handlers: JSON rows out of prepared statements inside a transaction.

use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Statement, Transaction};

use super::AdminError;
use super::keys::map_db;
use crate::store::StoreError;

/// Parameters of a prepared statement.
pub type Params<'a> = [&'a (dyn ToSql + Sync)];

/// Every row's first column as JSON.
pub async fn rows(
    tx: &Transaction<'_>,
    st: &Statement,
    params: &Params<'_>,
) -> Result<Vec<Value>, AdminError> {
    tx.query(st, params)
        .await
        .map_err(map_db)?
        .iter()
        .map(|r| {
            r.try_get::<_, Value>(0)
                .map_err(|e| StoreError::from(e).into())
        })
        .collect()
}

/// The first row's first column as JSON, if there is a row.
pub async fn row(
    tx: &Transaction<'_>,
    st: &Statement,
    params: &Params<'_>,
) -> Result<Option<Value>, AdminError> {
    Ok(rows(tx, st, params).await?.into_iter().next())
}

/// Every row's first column as text.
pub async fn strings(
    tx: &Transaction<'_>,
    st: &Statement,
    params: &Params<'_>,
) -> Result<Vec<String>, AdminError> {
    tx.query(st, params)
        .await
        .map_err(map_db)?
        .iter()
        .map(|r| {
            r.try_get::<_, String>(0)
                .map_err(|e| StoreError::from(e).into())
        })
        .collect()
}

/// Run a statement for its effect.
pub async fn exec(
    tx: &Transaction<'_>,
    st: &Statement,
    params: &Params<'_>,
) -> Result<u64, AdminError> {
    tx.execute(st, params).await.map_err(map_db)
}

/// A string member of a JSON row.
pub fn str_of<'v>(row: &'v Value, name: &str) -> Option<&'v str> {
    row.get(name).and_then(Value::as_str)
}
