//! `/key/update`.

use http::Response;
use serde_json::{Map, Value, json};

use super::super::audit::{self, Change, KEYS_TABLE};
use super::super::crud::{Tx, str_of};
use super::super::fields;
use super::super::{AdminError, Call, ok};
use super::{GenerateKey, METADATA_FIELDS, non_negative, to_token};
use crate::body::Body;
use crate::store::Query;

/// What a cleared (JSON null) field becomes in its column.
fn cleared(column: &str) -> Value {
    match column {
        "aliases" | "config" | "permissions" | "model_max_budget" | "budget_fallbacks"
        | "metadata" | "router_settings" => json!({}),
        "models"
        | "allowed_cache_controls"
        | "allowed_routes"
        | "policies"
        | "access_group_ids" => json!([]),
        _ => Value::Null,
    }
}

/// `POST /key/update`: the fields given change, an explicit `null` clears, the rest stay.
pub async fn update(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let mut body: Map<String, Value> = call.json()?;
    let key = match body.remove("key") {
        Some(Value::String(k)) if !k.is_empty() => k,
        _ => {
            return Err(AdminError::invalid(
                "key",
                "the key (or its hash) to update is required",
            ));
        }
    };
    let token = to_token(&key);
    let temp: Vec<(String, Value)> = ["temp_budget_increase", "temp_budget_expiry"]
        .iter()
        .filter_map(|f| body.remove(*f).map(|v| (f.to_string(), v)))
        .collect();
    if let Some((_, v)) = temp.iter().find(|(f, _)| f == "temp_budget_increase") {
        non_negative(
            "temp_budget_increase",
            v.as_f64().or(if v.is_null() { None } else { Some(-1.0) }),
        )?;
    }
    // Type-check what was given (nulls removed) with the same rules as /key/generate.
    let given: Map<String, Value> = body
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let req: GenerateKey = {
        serde_path_to_error::deserialize(Value::Object(given)).map_err(|e| {
            let path = e.path().to_string();
            let msg = e.into_inner().to_string();
            let field = if path == "." {
                msg.split('`').nth(1).unwrap_or("").to_string()
            } else {
                path
            };
            AdminError::invalid(&field, msg)
        })?
    };
    req.validate()?;
    let changed_by = call.changed_by();
    let full = req.row(&token, &key, &changed_by)?;

    let mut conn = call.store.conn().await?;
    let tx = Tx::begin(call, &mut conn).await?;
    let before = super::row_in_tx(&tx, &token).await?;
    if !call.principal.is_admin() {
        let team = super::team_key_access(call, &before, "/key/update").await?;
        if let Some(f) = ["team_id", "organization_id", "user_id"]
            .iter()
            .find(|f| body.contains_key(**f))
        {
            return Err(AdminError::Forbidden(format!(
                "Only proxy admins can change a key's {f}"
            )));
        }
        if let Some(team) = team {
            limits_within_team(call, &body, &temp, &before, &team)?;
        }
    }
    if let Some(Value::String(alias)) = body.get("key_alias")
        && str_of(&before, "key_alias") != Some(alias.as_str())
    {
        super::ensure_alias_free(&tx, alias).await?;
    }
    let mut patch = Map::new();
    // soft_budget lives in the key's budget row, object_permission in its own table.
    if let Some(v) = body.get("soft_budget") {
        let soft = Map::from_iter([("soft_budget".to_string(), v.clone())]);
        match str_of(&before, "budget_id") {
            Some(id) => {
                tx.budget(Some(id), soft).await?;
            }
            None if !v.is_null() => {
                let b = tx.budget(None, soft).await?.unwrap_or_default();
                patch.insert("budget_id".into(), b["budget_id"].clone());
            }
            None => {}
        }
    }
    match body.get("object_permission") {
        Some(Value::Null) => {
            patch.insert("object_permission_id".into(), Value::Null);
        }
        given => tx.object_permission(given, &mut patch).await?,
    }
    let mut touch_metadata = false;
    for (field, v) in &body {
        let columns: Vec<&str> = match field.as_str() {
            "soft_budget" | "object_permission" => continue,
            "duration" => vec!["expires"],
            "budget_duration" => vec!["budget_duration", "budget_reset_at"],
            "rotation_interval" => vec!["rotation_interval", "key_rotation_at"],
            "metadata" => {
                touch_metadata = true;
                continue;
            }
            f if METADATA_FIELDS.contains(&f) => {
                touch_metadata = true;
                continue;
            }
            f => vec![f],
        };
        for c in columns {
            let value = if v.is_null() {
                cleared(c)
            } else {
                full.get(c).cloned().unwrap_or(Value::Null)
            };
            patch.insert(c.to_string(), value);
        }
    }
    if touch_metadata || !temp.is_empty() {
        let mut meta = fields::metadata_base(body.get("metadata").cloned(), &before);
        let from_request = full
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for f in METADATA_FIELDS {
            match body.get(*f) {
                Some(Value::Null) => {
                    meta.remove(*f);
                }
                Some(_) => {
                    if let Some(v) = from_request.get(*f) {
                        meta.insert((*f).to_string(), v.clone());
                    }
                }
                None => {}
            }
        }
        for (f, v) in &temp {
            if v.is_null() {
                meta.remove(f);
            } else {
                meta.insert(f.clone(), v.clone());
            }
        }
        // The creator's grant stays unless a proxy admin sets it.
        let cap = crate::auth::ROLE_CAP;
        let set_by_admin = call.principal.is_admin()
            && body
                .get("metadata")
                .and_then(Value::as_object)
                .is_some_and(|m| m.contains_key(cap));
        if set_by_admin {
            if meta
                .get(cap)
                .and_then(Value::as_str)
                .and_then(crate::auth::UserRole::parse)
                .is_none()
            {
                return Err(AdminError::invalid(
                    &format!("metadata.{cap}"),
                    format!("must be one of {:?}", crate::auth::UserRole::NAMES),
                ));
            }
        } else {
            match before.get("metadata").and_then(|m| m.get(cap)) {
                Some(v) => meta.insert(cap.to_string(), v.clone()),
                None => meta.remove(cap),
            };
        }
        patch.insert("metadata".into(), Value::Object(meta));
    }
    let patch = Value::Object(patch);
    let after = tx
        .one(Query::UpdateKey, &[&token, &patch, &changed_by])
        .await?;
    let changes = vec![Change::updated(KEYS_TABLE, &token, &before, &after)];
    tx.commit(changes, &audit::keys_changed(&[&token])).await?;
    let mut out = match after {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    out.remove("token");
    out.insert("key".into(), json!(key));
    Ok(ok(&Value::Object(out)))
}

/// A non-admin's change to a key's limits: within the team's limits, and — on its own key —
/// never above the current ones where the team sets none.
fn limits_within_team(
    call: &Call<'_>,
    body: &Map<String, Value>,
    temp: &[(String, Value)],
    before: &Value,
    team: &crate::auth::TeamRecord,
) -> Result<(), AdminError> {
    use super::{models_within, num, within_ceiling};
    let own = call.principal.user_id().is_some()
        && before.get("user_id").and_then(Value::as_str) == call.principal.user_id();
    let as_f = |v: Option<i64>| v.map(|x| x as f64);
    for (field, cap) in [
        ("max_budget", team.limits.max_budget),
        ("rpm_limit", as_f(team.limits.rpm_limit)),
        ("tpm_limit", as_f(team.limits.tpm_limit)),
        ("tpd_limit", as_f(team.tpd_limit)),
        (
            "max_parallel_requests",
            as_f(team.limits.max_parallel_requests),
        ),
    ] {
        if let Some(v) = body.get(field) {
            within_ceiling(field, num(Some(v)), cap, num(before.get(field)), own)?;
        }
    }
    if let Some((_, v)) = temp.iter().find(|(f, _)| f == "temp_budget_increase")
        && let Some(extra) = v.as_f64().filter(|x| *x > 0.0)
    {
        // Over an unlimited key it changes nothing.
        if let Some(now) = num(body.get("max_budget")).or(num(before.get("max_budget"))) {
            within_ceiling(
                "temp_budget_increase",
                Some(now + extra),
                team.limits.max_budget,
                Some(now),
                own,
            )?;
        }
    }
    if let Some(v) = body.get("models") {
        let asked: Option<Vec<String>> = serde_json::from_value(v.clone()).ok();
        let now: Option<Vec<String>> = before
            .get("models")
            .and_then(|m| serde_json::from_value(m.clone()).ok());
        models_within(
            "models",
            asked.as_deref(),
            team.models.as_deref(),
            now.as_deref(),
            own,
        )?;
    }
    Ok(())
}
