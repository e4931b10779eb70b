//! `/key/list`, `/v2/key/info`, `/key/aliases`.

use http::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::{AdminError, Call, ok};
use super::to_token;
use crate::body::Body;
use crate::store::Query;

/// `page` (from 1) and `size` (1..=max) from the query string.
fn paging(call: &Call<'_>, default_size: i64, max: i64) -> Result<(i64, i64), AdminError> {
    let num = |name: &str, default: i64| -> Result<i64, AdminError> {
        match call.param(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .map_err(|_| AdminError::invalid(name, format!("must be an integer, got '{v}'"))),
        }
    };
    let page = num("page", 1)?;
    let size = num("size", default_size)?;
    if page < 1 {
        return Err(AdminError::invalid("page", "must be >= 1"));
    }
    if !(1..=max).contains(&size) {
        return Err(AdminError::invalid(
            "size",
            format!("must be between 1 and {max}"),
        ));
    }
    Ok((page, size))
}

fn total_pages(total: i64, size: i64) -> i64 {
    (total + size - 1) / size
}

/// `GET /key/list`
pub async fn list(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let (page, size) = paging(call, 10, 100)?;
    let user_id = call.param("user_id");
    let team_id = call.param("team_id");
    let org_id = call.param("organization_id");
    let alias = call.param("key_alias");
    let hash = call.param("key_hash").map(|h| to_token(&h));
    let full = call
        .param("return_full_object")
        .is_some_and(|v| v == "true");
    let filters: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
        [&user_id, &team_id, &org_id, &alias, &hash];
    let total: i64 = call
        .store
        .query(Query::CountKeys, &filters)
        .await?
        .first()
        .map(|r| r.get(0))
        .unwrap_or(0);
    let offset = (page - 1) * size;
    let rows = call
        .store
        .query(
            Query::ListKeys,
            &[&user_id, &team_id, &org_id, &alias, &hash, &size, &offset],
        )
        .await?;
    let keys: Vec<Value> = rows
        .iter()
        .filter_map(|r| r.try_get::<_, Value>(0).ok())
        .map(|row| {
            if full {
                row
            } else {
                row.get("token").cloned().unwrap_or(Value::Null)
            }
        })
        .collect();
    Ok(ok(&json!({
        "keys": keys,
        "total_count": total,
        "current_page": page,
        "total_pages": total_pages(total, size),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    keys: Vec<String>,
}

/// `POST /v2/key/info`: `{"keys": [...]}` -> `{"key": [...], "info": [rows]}`
pub async fn info_many(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let req: Keys = call.json()?;
    let tokens: Vec<String> = req.keys.iter().map(|k| to_token(k)).collect();
    let rows = call
        .store
        .query(Query::GetKeyRowsByTokens, &[&tokens])
        .await?;
    let info: Vec<Value> = rows
        .iter()
        .filter_map(|r| r.try_get::<_, Value>(0).ok())
        .map(|mut row| {
            if let Value::Object(m) = &mut row {
                let _: Option<Value> = m.remove("token");
            }
            row
        })
        .collect();
    Ok(ok(&json!({"key": req.keys, "info": info})))
}

/// `GET /key/aliases?page&size&search&team_id`
pub async fn aliases(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let (page, size) = paging(call, 50, 100)?;
    let search = call.param("search").filter(|s| !s.is_empty());
    let team_id = call.param("team_id");
    let total: i64 = call
        .store
        .query(Query::CountKeyAliases, &[&search, &team_id])
        .await?
        .first()
        .map(|r| r.get(0))
        .unwrap_or(0);
    let offset = (page - 1) * size;
    let rows = call
        .store
        .query(Query::ListKeyAliases, &[&search, &team_id, &size, &offset])
        .await?;
    let aliases: Vec<String> = rows.iter().filter_map(|r| r.try_get(0).ok()).collect();
    Ok(ok(&json!({
        "aliases": aliases,
        "total_count": total,
        "current_page": page,
        "total_pages": total_pages(total, size),
        "size": size,
    })))
}
