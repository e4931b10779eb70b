//! A team's own logging callbacks (LiteLLM's team callback routes), kept in the team's
//! `metadata.callback_settings` (`success_callback`, `failure_callback`, `callback_vars`):
//! `POST /team/{team_id}/callback` adds one, `GET /team/{team_id}/callback` shows them (secrets
//! masked for non-admins), `POST /team/{team_id}/disable_logging` turns every callback off for
//! the team. Proxy admins and the team's admins only. The request path reads the settings from
//! the cached team record.

use http::Response;
use serde_json::{Map, Value, json};

use super::patch_team;
use crate::admin::{AdminError, Call, ok};
use crate::body::Body;
use crate::config::callbacks::sink_name;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AddCallback {
    callback_name: String,
    #[serde(default = "both")]
    callback_type: String,
    #[serde(default)]
    callback_vars: Map<String, Value>,
}

fn both() -> String {
    "success_and_failure".into()
}

fn team_id(call: &Call<'_>) -> Result<String, AdminError> {
    call.path_key
        .clone()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AdminError::invalid("team_id", "missing in the path"))
}

/// `GET` and `POST /team/{team_id}/callback`
pub async fn callback(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    if call.method == http::Method::POST {
        add(call).await
    } else {
        get(call).await
    }
}

/// `POST /team/{team_id}/callback`
async fn add(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let team_id = team_id(call)?;
    let req: AddCallback = call.json()?;
    let Some(name) = sink_name(&req.callback_name) else {
        return Err(AdminError::invalid(
            "callback_name",
            format!(
                "'{}' is not a logging callback Tianji implements (generic_api, langfuse, datadog, s3, otel)",
                req.callback_name
            ),
        ));
    };
    let (success, failure) = match req.callback_type.as_str() {
        "success" => (true, false),
        "failure" => (false, true),
        "success_and_failure" => (true, true),
        other => {
            return Err(AdminError::invalid(
                "callback_type",
                format!("must be success, failure or success_and_failure, got '{other}'"),
            ));
        }
    };
    if let Some((k, _)) = req.callback_vars.iter().find(|(_, v)| !v.is_string()) {
        return Err(AdminError::invalid(
            "callback_vars",
            format!("'{k}' must be a string"),
        ));
    }
    let after = patch_team(
        call,
        &team_id,
        |before| {
            let mut meta = before["metadata"].as_object().cloned().unwrap_or_default();
            let mut cs = settings(&meta);
            for (field, on) in [("success_callback", success), ("failure_callback", failure)] {
                let list = cs[field].as_array_mut();
                if let Some(list) = list.filter(|l| on && !l.iter().any(|n| n == name)) {
                    list.push(json!(name));
                }
            }
            if let Some(vars) = cs["callback_vars"].as_object_mut() {
                vars.extend(req.callback_vars);
            }
            meta.insert("callback_settings".into(), cs);
            Ok(Map::from_iter([("metadata".into(), Value::Object(meta))]))
        },
        false,
    )
    .await?;
    Ok(ok(&answer(call, &team_id, &after)))
}

/// `GET /team/{team_id}/callback`
async fn get(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let team_id = team_id(call)?;
    let team = super::read::team(call, &team_id).await?;
    call.require_team_admin(&team)?;
    Ok(ok(&answer(call, &team_id, &team)))
}

/// `POST /team/{team_id}/disable_logging`
pub async fn disable(call: &Call<'_>) -> Result<Response<Body>, AdminError> {
    let team_id = team_id(call)?;
    patch_team(
        call,
        &team_id,
        |before| {
            let mut meta = before["metadata"].as_object().cloned().unwrap_or_default();
            meta.insert(
                "callback_settings".into(),
                json!({"success_callback": [], "failure_callback": [], "callback_vars": {}}),
            );
            Ok(Map::from_iter([("metadata".into(), Value::Object(meta))]))
        },
        false,
    )
    .await?;
    Ok(ok(&json!({
        "status": "success",
        "message": format!("Logging disabled for team {team_id}"),
        "data": {"team_id": team_id, "success_callbacks": [], "failure_callbacks": []},
    })))
}

/// The team's `callback_settings`, with every field present.
fn settings(meta: &Map<String, Value>) -> Value {
    let cs = meta.get("callback_settings");
    let field = |k: &str, empty: Value| {
        cs.and_then(|c| c.get(k))
            .filter(|v| v.is_array() || v.is_object())
            .cloned()
            .unwrap_or(empty)
    };
    json!({
        "success_callback": field("success_callback", json!([])),
        "failure_callback": field("failure_callback", json!([])),
        "callback_vars": field("callback_vars", json!({})),
    })
}

/// LiteLLM's answer: the team's callbacks and their settings (masked for non-admins).
fn answer(call: &Call<'_>, team_id: &str, team: &Value) -> Value {
    let meta = team["metadata"].as_object().cloned().unwrap_or_default();
    let mut cs = settings(&meta);
    if !call.principal.is_admin() {
        mask_vars(&mut cs["callback_vars"]);
    }
    json!({
        "status": "success",
        "data": {
            "team_id": team_id,
            "success_callbacks": cs["success_callback"],
            "failure_callbacks": cs["failure_callback"],
            "callback_vars": cs["callback_vars"],
        },
    })
}

/// Every callback setting of a team row's metadata masked (`callback_settings.callback_vars`,
/// `logging[].callback_vars`), for callers who are not proxy admins.
pub fn mask_team(team: &mut Value) {
    let meta = &mut team["metadata"];
    if let Some(vars) = meta
        .get_mut("callback_settings")
        .and_then(|c| c.get_mut("callback_vars"))
    {
        mask_vars(vars);
    }
    if let Some(list) = meta.get_mut("logging").and_then(Value::as_array_mut) {
        for e in list {
            if let Some(vars) = e.get_mut("callback_vars") {
                mask_vars(vars);
            }
        }
    }
}

/// Values kept to their last 4 characters (`****abcd`), shorter ones wholly hidden.
fn mask_vars(vars: &mut Value) {
    if let Some(m) = vars.as_object_mut() {
        for v in m.values_mut() {
            let s = v.as_str().unwrap_or_default();
            let n = s.chars().count();
            let tail: String = if n > 8 {
                s.chars().skip(n - 4).collect()
            } else {
                String::new()
            };
            *v = Value::String(format!("****{tail}"));
        }
    }
}
