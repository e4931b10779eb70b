//! Part of stage 2 (`model`): a request naming custom skills in `container.skills` (Anthropic's
//! Messages API, also accepted on chat) is pinned to a deployment of its model group on the
//! account holding those skills (`crate::skills::Homes`: no database call). A group with no
//! deployment on that account is a 400 naming the skill; skills the gateway keeps itself, or
//! Anthropic's own (`type: anthropic`), pin nothing.

use serde::Deserialize;
use serde_json::Value;

use super::RequestCtx;
use super::read::Call;
use crate::error::GatewayError;
use crate::pipeline::parse::RequestError;
use crate::router::Deployment;
use crate::state::AppState;

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    container: Option<Value>,
}

/// The custom skill ids of `container.skills` (`container` may also be a container id).
fn named_skills(raw: &[u8]) -> Vec<String> {
    let Ok(p) = serde_json::from_slice::<Probe>(raw) else {
        return Vec::new();
    };
    let Some(list) = p
        .container
        .as_ref()
        .and_then(|c| c.get("skills"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .filter(|s| s.get("type").and_then(Value::as_str) != Some("anthropic"))
        .filter_map(|s| {
            s.get("skill_id")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect()
}

/// Whether two deployments call the same account (base URL and credential headers).
fn same_account(a: &Deployment, b: &Deployment) -> bool {
    a.api_base == b.api_base && a.headers == b.headers
}

/// Pin `ctx` to the deployment of `ctx.model` holding the skills the request names.
pub fn pin(state: &AppState, call: &Call, ctx: &mut RequestCtx) -> Result<(), GatewayError> {
    let raw = &call.parsed.raw;
    if state.skill_homes.is_empty()
        || !crate::holds!(raw, b"\"skills\"")
        || !crate::holds!(raw, b"\"container\"")
    {
        return Ok(());
    }
    for id in named_skills(raw) {
        let Some(home_id) = state.skill_homes.of(&id) else {
            continue;
        };
        let Some(home) = call.models.deployments().find(|d| d.id == home_id) else {
            continue;
        };
        let Ok(resolved) = call.models.resolve(&ctx.model) else {
            return Ok(());
        };
        let on_account = resolved.group.iter().find(|d| same_account(d, home));
        match on_account {
            Some(d) => {
                ctx.pinned = Some(d.id.clone());
                return Ok(());
            }
            None => {
                return Err(RequestError::BadValue(format!(
                    "skill {id} is held by the account of model {}, and model {} has no deployment on that account",
                    home.model_name, ctx.model
                ))
                .into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_skills_are_read_from_the_container() {
        let raw = br#"{"model":"m","container":{"skills":[{"type":"custom","skill_id":"skill_1"},{"type":"anthropic","skill_id":"xlsx"}]}}"#;
        assert_eq!(named_skills(raw), vec!["skill_1".to_string()]);
        assert!(named_skills(br#"{"container":"cntr_1"}"#).is_empty());
        assert!(named_skills(b"not json").is_empty());
    }
}
