//! `/key/list`, `/v2/key/info`, `/key/aliases`.

use http::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::crud::Page;
use super::super::{AdminError, Call, ok};
use super::to_token;
use crate::body::Body;
use crate::store::Query;

/// `?page=` (from 1) and `?size=` (1..=max).
fn paging(call: &Call<'_>, default_size: i64, max: i64) -> Result<Page, AdminError> {
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
    Ok(Page { page, size })
}

/// `GET /key/list`
pub async fn list(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let page = paging(call, 10, 100)?;
    let user_id = call.param("user_id");
    let team_id = call.param("team_id");
    let org_id = call.param("organization_id");
    let alias = call.param("key_alias");
    let hash = call.param("key_hash").map(|h| to_token(&h));
    let full = call
        .param("return_full_object")
        .is_some_and(|v| v == "true");
    let total = call
        .count(
            Query::CountKeys,
            &[&user_id, &team_id, &org_id, &alias, &hash],
        )
        .await?;
    let (size, offset) = (page.size, page.offset());
    let rows = call
        .rows(
            Query::ListKeys,
            &[&user_id, &team_id, &org_id, &alias, &hash, &size, &offset],
        )
        .await?;
    let keys: Vec<Value> = rows
        .into_iter()
        .map(|row| match full {
            true => row,
            false => row.get("token").cloned().unwrap_or(Value::Null),
        })
        .collect();
    Ok(ok(&json!({
        "keys": keys,
        "total_count": total,
        "current_page": page.page,
        "total_pages": page.total_pages(total),
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
    let mut info = call.rows(Query::GetKeyRowsByTokens, &[&tokens]).await?;
    for row in &mut info {
        if let Value::Object(m) = row {
            m.remove("token");
        }
    }
    Ok(ok(&json!({"key": req.keys, "info": info})))
}

/// `GET /key/aliases?page&size&search&team_id`
pub async fn aliases(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let page = paging(call, 50, 100)?;
    let search = call.given("search");
    let team_id = call.param("team_id");
    let total = call
        .count(Query::CountKeyAliases, &[&search, &team_id])
        .await?;
    let (size, offset) = (page.size, page.offset());
    let rows = call
        .store
        .query(Query::ListKeyAliases, &[&search, &team_id, &size, &offset])
        .await?;
    let aliases: Vec<String> = rows.iter().filter_map(|r| r.try_get(0).ok()).collect();
    Ok(ok(&json!({
        "aliases": aliases,
        "total_count": total,
        "current_page": page.page,
        "total_pages": page.total_pages(total),
        "size": size,
    })))
}
