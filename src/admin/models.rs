//! `/model/new`, `/model/update`, `/model/delete`: models stored in the database join routing at
//! once (on every instance, through the invalidation channel); config models are read-only
//! here (listings are in `listings.rs`).
//! Provider credentials are never returned: secret-looking parameters and header values are
//! masked, URLs redacted. They are stored encrypted with the salt key
//! ([`crate::secrets::at_rest`]); rows stored in plain text are encrypted at startup
//! ([`crate::secrets::at_rest::encrypt_stored`]).

use http::Response;
use serde_json::{Map, Value, json};

use super::audit::{Change, MODELS_TABLE};
use super::crud::{IdBody, Tx, str_of};
use super::{AdminError, Call, ok};
use crate::auth::Changed;
use crate::body::Body;
use crate::config::Config;
use crate::router::ModelTable;
use crate::secrets::at_rest::{self, SecretError};
use crate::store::Query;

/// Parameter names whose values are secrets.
const SECRET_PARTS: &[&str] = &["key", "secret", "token", "password", "credential"];
/// Parameters whose values are header maps: every header value is treated as a secret.
const HEADER_PARAMS: &[&str] = &["headers", "extra_headers"];
/// What a secret is shown as.
const MASK: &str = "********";

/// `params` (decrypted) as shown: secret values and header values replaced (environment
/// references are kept: they are names), URLs redacted.
pub fn masked(params: &Value) -> Value {
    let Some(obj) = params.as_object() else {
        return params.clone();
    };
    let shown = |v: &Value| match v {
        Value::String(s) if s.starts_with(crate::config::env::ENV_PREFIX) => v.clone(),
        Value::String(_) => json!(MASK),
        other => other.clone(),
    };
    let out: Map<String, Value> = obj
        .iter()
        .map(|(k, v)| {
            let name = k.to_ascii_lowercase();
            let v = match v {
                Value::Object(h) if HEADER_PARAMS.contains(&name.as_str()) => {
                    Value::Object(h.iter().map(|(hk, hv)| (hk.clone(), shown(hv))).collect())
                }
                Value::String(_) if SECRET_PARTS.iter().any(|p| name.contains(p)) => shown(v),
                Value::String(s) => json!(crate::secrets::redact_text(s)),
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect();
    Value::Object(out)
}

/// A stored value that cannot be read or written, as the admin's error.
fn secret_error(e: SecretError) -> AdminError {
    AdminError::invalid("tianji_params", e.to_string())
}

fn model_not_found(id: &str) -> AdminError {
    AdminError::NotFound {
        param: "model_id",
        message: format!("Model not found in the database, passed model_id={id}"),
    }
}

fn config_model(call: &Call<'_>, id: &str) -> bool {
    call.state
        .config()
        .model_list
        .iter()
        .any(|e| e.model_info.get("id").and_then(Value::as_str) == Some(id))
        || call
            .state
            .models
            .load()
            .deployments()
            .any(|d| d.id == id && d.model_info.get("db_model") != Some(&json!(true)))
}

/// Check an entry builds (known provider, valid parameters) before it is stored.
fn validate(call: &Call<'_>, name: &str, params: &Value, info: &Value) -> Result<(), AdminError> {
    let entry = crate::state::db_entry(&json!({
        "model_id": "validate", "model_name": name, "tianji_params": params, "model_info": info,
    }))
    .ok_or_else(|| {
        AdminError::invalid(
            "tianji_params",
            "must be an object with a `model` such as openai/gpt-4o",
        )
    })?;
    let config = Config {
        model_list: vec![entry],
        ..Default::default()
    };
    let table = ModelTable::build(&config, call.state.catalog.clone(), call.state.env.clone())
        .map_err(|e| AdminError::invalid("tianji_params", e.to_string()))?;
    // an invalid entry is left out of a table at startup; here it is refused
    match table.unserved().first() {
        Some(u) => Err(AdminError::invalid("tianji_params", u.error.to_string())),
        None => Ok(()),
    }
}

/// `tianji_params` (or LiteLLM's `litellm_params`) from a body.
fn params_of(body: &mut Map<String, Value>) -> Option<Value> {
    body.remove("tianji_params")
        .or_else(|| body.remove("litellm_params"))
}

fn check_fields(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), AdminError> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(AdminError::invalid(k, format!("unknown field `{k}`"))),
        None => Ok(()),
    }
}

/// Commit `change`, then reload this instance's table and tell the others.
async fn commit(tx: Tx<'_>, change: Change<'_>) -> Result<(), AdminError> {
    tx.commit(vec![change], &[Changed::Models]).await
}

/// A stored row as answers and the audit log show it: decrypted, then masked.
fn public(call: &Call<'_>, row: &Value) -> Value {
    let params = masked(&at_rest::open_params_lossy(
        call.state.at_rest.as_deref(),
        &row["tianji_params"],
    ));
    json!({
        "model_name": row["model_name"],
        "tianji_params": params,
        "litellm_params": params,
        "model_info": {
            "id": row["model_id"],
            "db_model": true,
        },
        "model_id": row["model_id"],
    })
}

/// `POST /model/new` `{model_name, tianji_params|litellm_params, model_info?}`
pub async fn new(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let mut body = call.object()?;
    let params = params_of(&mut body)
        .ok_or_else(|| AdminError::invalid("tianji_params", "`tianji_params` is required"))?;
    check_fields(&body, &["model_name", "model_info"])?;
    let name = match body.get("model_name") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(AdminError::invalid(
                "model_name",
                "`model_name` is required",
            ));
        }
    };
    let info = body.get("model_info").cloned().unwrap_or(json!({}));
    if !info.is_object() {
        return Err(AdminError::invalid("model_info", "must be an object"));
    }
    validate(call, &name, &params, &info)?;
    let params =
        at_rest::seal_params(call.state.at_rest.as_deref(), &params).map_err(secret_error)?;
    let id = info.get("id").and_then(Value::as_str).map(str::to_string);
    if let Some(i) = &id
        && config_model(call, i)
    {
        return Err(AdminError::invalid(
            "model_info.id",
            format!("a config model already has id {i}"),
        ));
    }
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    if let Some(i) = &id
        && tx.row(Query::GetProxyModel, &[i]).await?.is_some()
    {
        return Err(AdminError::invalid(
            "model_info.id",
            format!("model id {i} already exists"),
        ));
    }
    let by = call.changed_by();
    let row = tx
        .row(Query::InsertProxyModel, &[&id, &name, &params, &info, &by])
        .await?;
    let row = row.unwrap_or_default();
    let model_id = str_of(&row, "model_id").unwrap_or_default().to_string();
    let shown = public(call, &row);
    commit(tx, Change::created(MODELS_TABLE, &model_id, &shown)).await?;
    Ok(ok(&shown))
}

/// `POST /model/update` `{model_id | model_info.id, model_name?, tianji_params?, model_info?}`:
/// parameters merge into the stored ones (a `null` removes one).
pub async fn update(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let mut body = call.object()?;
    let params = params_of(&mut body);
    check_fields(&body, &["model_id", "model_name", "model_info"])?;
    let id = body
        .get("model_id")
        .and_then(Value::as_str)
        .or_else(|| {
            body.get("model_info")
                .and_then(|i| i.get("id"))
                .and_then(Value::as_str)
        })
        .map(str::to_string)
        .ok_or_else(|| AdminError::invalid("model_id", "`model_id` is required"))?;
    if config_model(call, &id) {
        return Err(AdminError::invalid(
            "model_id",
            "this model is defined in the config file; change it there",
        ));
    }
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let before = tx.row(Query::GetProxyModel, &[&id]).await?;
    let before = before.ok_or_else(|| model_not_found(&id))?;
    let name = match body.get("model_name") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        None => str_of(&before, "model_name")
            .unwrap_or_default()
            .to_string(),
        Some(_) => {
            return Err(AdminError::invalid(
                "model_name",
                "must be a non-empty string",
            ));
        }
    };
    let mut merged = before["tianji_params"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    match params {
        Some(Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    merged.remove(&k);
                } else {
                    merged.insert(k, v);
                }
            }
        }
        Some(_) => return Err(AdminError::invalid("tianji_params", "must be an object")),
        None => {}
    }
    let mut info = before["model_info"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    if let Some(Value::Object(i)) = body.get("model_info") {
        for (k, v) in i {
            if k != "id" {
                info.insert(k.clone(), v.clone());
            }
        }
    }
    // stored values are decrypted after the merge, so one that can no longer be read (the salt
    // key changed) can be replaced by sending it again
    let cipher = call.state.at_rest.as_deref();
    let params = at_rest::open_params(cipher, &Value::Object(merged)).map_err(secret_error)?;
    let info = Value::Object(info);
    validate(call, &name, &params, &info)?;
    let params = at_rest::seal_params(cipher, &params).map_err(secret_error)?;
    let by = call.changed_by();
    let after = tx
        .row(Query::UpdateProxyModel, &[&id, &name, &params, &info, &by])
        .await?;
    let after = after.unwrap_or_default();
    let shown = public(call, &after);
    let was = public(call, &before);
    commit(tx, Change::updated(MODELS_TABLE, &id, &was, &shown)).await?;
    Ok(ok(&shown))
}

/// `POST /model/delete` `{"id": ..}`
pub async fn delete(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let req: IdBody = call.json()?;
    if config_model(call, &req.id) {
        return Err(AdminError::invalid(
            "id",
            "this model is defined in the config file; remove it there",
        ));
    }
    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let before = tx.row(Query::GetProxyModel, &[&req.id]).await?;
    let before = before.ok_or_else(|| model_not_found(&req.id))?;
    tx.exec(Query::DeleteProxyModel, &[&req.id]).await?;
    let was = public(call, &before);
    let deleted = Change::of("deleted", MODELS_TABLE, &req.id, Some(&was), None);
    commit(tx, deleted).await?;
    Ok(ok(
        &json!({"message": format!("Model: {} deleted successfully", req.id)}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked() {
        let m = masked(&json!({
            "model": "openai/x", "api_key": "sk-real", "aws_secret_access_key": "s",
            "vertex_credentials": "{}", "api_base": "http://h", "other_key": "os.environ/K"
        }));
        assert_eq!(m["api_key"], "********");
        assert_eq!(m["aws_secret_access_key"], "********");
        assert_eq!(m["vertex_credentials"], "********");
        assert_eq!(m["api_base"], "http://h");
        assert_eq!(m["other_key"], "os.environ/K");
        let m = masked(&json!({
            "model": "openai/x", "api_base": "http://u:p@h/v1?api_key=k&v=1",
            "extra_headers": {"x-token": "t", "x-env": "os.environ/T", "n": 1},
            "headers": {"anything": "h"}, "rpm": 3,
        }));
        assert_eq!(m["api_base"], "http://***@h/v1?api_key=***&v=1");
        assert_eq!(
            m["extra_headers"],
            json!({"x-token": "********", "x-env": "os.environ/T", "n": 1})
        );
        assert_eq!(m["headers"]["anything"], "********");
        assert_eq!(m["rpm"], 3);
        assert_eq!(m["model"], "openai/x");
    }
}
