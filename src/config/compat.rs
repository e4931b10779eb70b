//! LiteLLM config layouts read as Tianji's, on the JSON document before it is typed:
//!
//! - router keys set under `tianji_settings` (`litellm_settings`), which LiteLLM also reads
//!   there, move to `router_settings` unless it sets them (`router_settings` wins, as in
//!   LiteLLM);
//! - `search_tools` under `router_settings` or `general_settings` (where LiteLLM's settings
//!   reference lists them) join the top-level `search_tools`;
//! - `credential_list`: a model entry's `litellm_credential_name` (or `tianji_credential_name`)
//!   fills the parameters it leaves unset from that credential's `credential_values`.

use serde_json::{Map, Value};

use super::ConfigError;

/// `router_settings` keys that may also be set under `tianji_settings`.
const ROUTER_KEYS: &[&str] = &[
    "model_group_alias",
    "timeout",
    "stream_timeout",
    "num_retries",
    "redis_url",
    "redis_host",
    "redis_port",
    "redis_password",
    "provider_budget_config",
    "routing_strategy",
    "routing_strategy_args",
    "retry_policy",
    "model_group_retry_policy",
    "retry_after",
    "allowed_fails",
    "cooldown_time",
    "disable_cooldowns",
    "fallbacks",
    "default_fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "max_fallbacks",
    "enable_pre_call_checks",
    "enable_tag_filtering",
    "ignore_invalid_deployments",
];

/// The names a model entry may name its credential by.
const CREDENTIAL_KEYS: &[&str] = &["tianji_credential_name", "litellm_credential_name"];

/// Apply every layout rule above to `doc` (a map).
pub fn apply(doc: &mut Value) -> Result<(), ConfigError> {
    lift_router_keys(doc);
    lift_search_tools(doc);
    apply_credentials(doc)
}

fn section<'a>(doc: &'a mut Value, names: &[&str]) -> Option<&'a mut Map<String, Value>> {
    let name = names
        .iter()
        .find(|n| doc.get(**n).is_some_and(Value::is_object))?;
    doc.get_mut(*name).and_then(Value::as_object_mut)
}

fn lift_router_keys(doc: &mut Value) {
    let Some(settings) = section(doc, &["tianji_settings", "litellm_settings"]) else {
        return;
    };
    let lifted: Vec<(String, Value)> = ROUTER_KEYS
        .iter()
        .filter_map(|k| settings.remove(*k).map(|v| (k.to_string(), v)))
        .collect();
    if lifted.is_empty() {
        return;
    }
    let router = top_level(doc, "router_settings", Value::Object(Map::new()));
    if let Some(router) = router.and_then(Value::as_object_mut) {
        for (k, v) in lifted {
            router.entry(k).or_insert(v);
        }
    }
}

/// The top-level entry `key` of `doc`, set to `empty` when missing or null.
fn top_level<'a>(doc: &'a mut Value, key: &str, empty: Value) -> Option<&'a mut Value> {
    let entry = doc.as_object_mut()?.entry(key).or_insert(Value::Null);
    if entry.is_null() {
        *entry = empty;
    }
    Some(entry)
}

fn lift_search_tools(doc: &mut Value) {
    for name in ["router_settings", "general_settings"] {
        let Some(settings) = section(doc, &[name]) else {
            continue;
        };
        // anything but a list stays where it is, to be reported
        if !settings.get("search_tools").is_some_and(Value::is_array) {
            continue;
        }
        let Some(Value::Array(more)) = settings.remove("search_tools") else {
            continue;
        };
        if let Some(Value::Array(top)) = top_level(doc, "search_tools", Value::Array(Vec::new())) {
            top.extend(more);
        }
    }
}

fn apply_credentials(doc: &mut Value) -> Result<(), ConfigError> {
    let credentials: Vec<(String, Map<String, Value>)> = doc
        .get("credential_list")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let name = c.get("credential_name")?.as_str()?.to_string();
            let values = c.get("credential_values")?.as_object()?.clone();
            Some((name, values))
        })
        .collect();
    let entries = doc.get_mut("model_list").and_then(Value::as_array_mut);
    for (i, entry) in entries.into_iter().flatten().enumerate() {
        let Some(key) = ["tianji_params", "litellm_params"]
            .into_iter()
            .find(|k| entry.get(*k).is_some_and(Value::is_object))
        else {
            continue;
        };
        let Some(params) = entry.get_mut(key).and_then(Value::as_object_mut) else {
            continue;
        };
        let Some((field, name)) = CREDENTIAL_KEYS.iter().find_map(|f| {
            let name = params.remove(*f)?;
            Some((*f, name))
        }) else {
            continue;
        };
        let path = format!("model_list[{i}].{key}.{field}");
        let name = name.as_str().ok_or_else(|| ConfigError::Invalid {
            path: path.clone(),
            message: "expected the name of a credential_list entry".into(),
        })?;
        let (_, values) =
            credentials
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| ConfigError::Invalid {
                    path,
                    message: format!("no credential_list entry is named `{name}`"),
                })?;
        for (k, v) in values {
            let slot = params.entry(k.clone()).or_insert(Value::Null);
            if slot.is_null() {
                *slot = v.clone();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn router_keys_under_litellm_settings_move_unless_router_settings_has_them() {
        let mut doc = json!({"litellm_settings": {"allowed_fails": 2, "num_retries": 4,
            "json_logs": true}, "router_settings": {"num_retries": 1}});
        apply(&mut doc).unwrap();
        assert_eq!(
            doc,
            json!({"litellm_settings": {"json_logs": true},
                "router_settings": {"num_retries": 1, "allowed_fails": 2}})
        );
        let mut doc = json!({"tianji_settings": {"routing_strategy": "least-busy"}});
        apply(&mut doc).unwrap();
        assert_eq!(doc["router_settings"]["routing_strategy"], "least-busy");
    }

    #[test]
    fn credentials_fill_unset_params() {
        let mut doc = json!({
            "credential_list": [{"credential_name": "az", "credential_values":
                {"api_key": "k1", "api_base": "https://a.example"}, "credential_info": {}}],
            "model_list": [{"model_name": "m", "litellm_params": {"model": "azure/d",
                "api_base": "https://own.example", "litellm_credential_name": "az"}}],
        });
        apply(&mut doc).unwrap();
        assert_eq!(
            doc["model_list"][0]["litellm_params"],
            json!({"model": "azure/d", "api_base": "https://own.example", "api_key": "k1"})
        );
        let mut doc = json!({"model_list": [{"model_name": "m",
            "tianji_params": {"model": "x/y", "tianji_credential_name": "nope"}}]});
        let e = apply(&mut doc).unwrap_err().to_string();
        assert!(
            e.contains("model_list[0].tianji_params.tianji_credential_name") && e.contains("nope"),
            "{e}"
        );
    }

    #[test]
    fn search_tools_under_router_settings_join_the_top_level_list() {
        let mut doc = json!({"search_tools": [{"search_tool_name": "a"}],
            "router_settings": {"search_tools": [{"search_tool_name": "b"}]}});
        apply(&mut doc).unwrap();
        assert_eq!(doc["search_tools"].as_array().unwrap().len(), 2);
        assert!(doc["router_settings"].get("search_tools").is_none());
    }
}
