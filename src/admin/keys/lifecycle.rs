//! `/key/info`, `/key/delete`, `/key/block`, `/key/unblock`.

use http::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::audit::{self, Change, KEYS_TABLE};
use super::super::crud::Tx;
use super::super::{AdminError, Call, ok};
use super::{row_in_tx, team_key_access, to_token};
use crate::auth::Principal;
use crate::body::Body;
use crate::store::{Query, StoreError};
use crate::util::clock::now_secs;

/// `GET /key/info?key=` (defaults to the caller's own key; a non-admin sees only its own).
pub async fn info(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let asked = call.param("key");
    let token = match (&asked, &call.principal) {
        (Some(k), _) => to_token(k),
        (None, Principal::Key(k)) => k.key.token.clone(),
        (None, _) => return Err(AdminError::invalid("key", "pass ?key=<key or hash>")),
    };
    if let Principal::Key(k) = &call.principal
        && k.key.token != token
    {
        return Err(AdminError::Forbidden(
            "You are not allowed to access this key's info. Your role=internal_user".into(),
        ));
    }
    let tokens = vec![token.clone()];
    let found = call.first(Query::GetKeyRowsByTokens, &[&tokens]).await?;
    let Some(Value::Object(mut info)) = found else {
        return Err(super::key_not_found());
    };
    info.remove("token");
    let expired = info
        .get("expires")
        .and_then(Value::as_str)
        .is_some_and(|e| {
            e < crate::util::clock::fmt_utc(now_secs())
                .replace(' ', "T")
                .as_str()
        });
    let status = if info.get("blocked").and_then(Value::as_bool) == Some(true) {
        "revoked"
    } else if expired {
        "expired"
    } else {
        "active"
    };
    info.insert("status".into(), json!(status));
    Ok(ok(&json!({"key": asked.unwrap_or(token), "info": info})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteKeys {
    keys: Option<Vec<String>>,
    key_aliases: Option<Vec<String>>,
}

/// `POST /key/delete`: copies each key into `TianjiLLM_DeletedVerificationToken`, then deletes.
pub async fn delete(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let req: DeleteKeys = call.json()?;
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let (mut tokens, given) = match (req.keys, req.key_aliases) {
        (Some(keys), None) if !keys.is_empty() => {
            (keys.iter().map(|k| to_token(k)).collect::<Vec<_>>(), keys)
        }
        (None, Some(aliases)) if !aliases.is_empty() => {
            let found = tx.query(Query::GetKeyTokensByAliases, &[&aliases]).await?;
            (found.iter().map(|r| r.get(0)).collect(), aliases)
        }
        _ => {
            return Err(AdminError::invalid(
                "keys",
                "pass a non-empty `keys` or `key_aliases` list (not both)",
            ));
        }
    };
    tokens.sort();
    tokens.dedup();
    let before: Vec<Value> = tx
        .query(Query::GetKeyRowsByTokens, &[&tokens])
        .await?
        .iter()
        .filter_map(|r| r.try_get::<_, Value>(0).ok())
        .collect();
    for row in &before {
        team_key_access(call, row, "/key/delete").await?;
    }
    if before.len() != tokens.len() || tokens.is_empty() {
        return Err(AdminError::NotFound {
            param: "keys",
            message: format!(
                "Failed to delete all keys. Keys passed in: {given:?}. Not all of them exist."
            ),
        });
    }
    super::archive(&tx, &tokens).await?;
    let changes = audit::deleted(KEYS_TABLE, "token", &before);
    tx.commit(changes, &audit::keys_changed(&tokens)).await?;
    Ok(ok(&json!({"deleted_keys": given})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRef {
    key: String,
}

/// `POST /key/block` and `/key/unblock`
pub async fn set_blocked(call: &Call<'_>, blocked: bool) -> Result<Response<Body>, AdminError> {
    let req: KeyRef = call.json()?;
    let token = to_token(&req.key);
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let before = row_in_tx(&tx, &token).await?;
    let route = if blocked {
        "/key/block"
    } else {
        "/key/unblock"
    };
    team_key_access(call, &before, route).await?;
    let by = call.changed_by();
    let after = tx
        .one_plain(Query::SetKeyBlocked, &[&token, &blocked, &by])
        .await?;
    let changes = vec![Change::updated(KEYS_TABLE, &token, &before, &after)];
    tx.commit(changes, &audit::keys_changed(&[&token])).await?;
    let mut out = after;
    if let Value::Object(m) = &mut out {
        m.remove("token");
    }
    Ok(ok(&out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetSpend {
    reset_to: f64,
}

/// `POST /key/{key}/reset_spend` `{"reset_to": x}`
pub async fn reset_spend(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let req: ResetSpend = call.json()?;
    super::non_negative("reset_to", Some(req.reset_to))?;
    let token = to_token(call.path_key.as_deref().unwrap_or(""));
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let rows = tx
        .query(Query::ResetKeySpend, &[&token, &req.reset_to])
        .await?;
    let Some(row) = rows.first() else {
        return Err(super::key_not_found());
    };
    let previous: f64 = row.try_get(0).map_err(StoreError::from)?;
    let after: Value = row.try_get(1).map_err(StoreError::from)?;
    let changes = vec![Change::of(
        "updated",
        KEYS_TABLE,
        &token,
        None,
        Some(&after),
    )];
    tx.commit(changes, &audit::keys_changed(&[&token])).await?;
    call.state
        .spend
        .reset_shared(&audit::keys_changed(&[&token]), req.reset_to)
        .await;
    Ok(ok(&json!({
        "key_hash": token,
        "spend": req.reset_to,
        "previous_spend": previous,
        "max_budget": after.get("max_budget"),
        "budget_reset_at": after.get("budget_reset_at"),
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Regenerate {
    key: Option<String>,
    new_key: Option<String>,
}

/// `POST /key/regenerate` (or `/key/{key}/regenerate`): a new secret for the same key; the old
/// one stops working at once. Returns the new raw key (once).
pub async fn regenerate(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let req: Regenerate = call.json()?;
    let old = match (call.path_key.as_deref(), req.key.as_deref()) {
        (Some(k), _) | (None, Some(k)) if !k.is_empty() => to_token(k),
        _ => {
            return Err(AdminError::invalid(
                "key",
                "the key (or its hash) to regenerate is required",
            ));
        }
    };
    let raw = match req.new_key {
        Some(k) if k.starts_with("sk-") && k.len() >= 16 => k,
        Some(_) => {
            return Err(AdminError::invalid(
                "new_key",
                "must start with 'sk-' and be at least 16 characters",
            ));
        }
        None => super::new_raw_key()?,
    };
    let new = crate::auth::token_hex(&raw);
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let before = row_in_tx(&tx, &old).await?;
    team_key_access(call, &before, "/key/regenerate").await?;
    let masked = super::masked(&raw);
    let by = call.changed_by();
    let after = tx
        .one_plain(Query::RotateKey, &[&old, &new, &masked, &by])
        .await?;
    let rotated = Change::of("rotated", KEYS_TABLE, &new, Some(&before), Some(&after));
    tx.commit(vec![rotated], &audit::keys_changed(&[&old, &new]))
        .await?;
    let mut out = match after {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    out.insert("key".into(), json!(raw));
    out.insert("token_id".into(), json!(new));
    Ok(ok(&Value::Object(out)))
}
