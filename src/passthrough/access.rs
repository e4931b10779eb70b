//! Who may make a pass-through call, and at which model it is booked.
//!
//! Routes: the key's and its team's `allowed_passthrough_routes` / `denied_passthrough_routes`
//! (in their metadata; `/openai/*` is a prefix, anything else an exact path; denied wins).
//!
//! Models: a provider pass-through call names its model in the path (Gemini and Vertex
//! `models/{m}:...`, Bedrock `model/{m}/...`, Azure `deployments/{m}/...`) or in the JSON body's
//! top-level `model`. Each model it names must be allowed by the key, team (or the user of a
//! personal key) and organisation model lists, as on the LLM routes, where a list entry grants it
//! when it is the bare name (`gpt-4o`), `provider/name` (`openai/gpt-4o`, wildcards such as
//! `openai/*` too), a model group with a deployment of that provider serving that model (a list
//! `["mock-a"]` where `mock-a` is `openai/gpt-4o-mini` allows `gpt-4o-mini`), or an access group
//! holding one of these. A caller restricted to some models may not make a call that names no
//! model the gateway can see (listing models, files, multipart bodies, bodies over the size
//! limit); callers without a restriction may.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;

use crate::admin::AdminError;
use crate::auth::access::{AccessGroups, Ask, NoGroups, authorize};
use crate::auth::{AuthError, Directory, Principal};
use crate::prices::Price;
use crate::router::{Deployment, ModelTable, wildcard};

/// The model name in the 403 of a restricted caller whose call names no model.
pub const NO_MODEL: &str = "(none named by this pass-through call)";

fn listed<'a>(meta: &'a Value, field: &str) -> impl Iterator<Item = &'a str> {
    meta.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// Whether a route pattern covers `path`: `prefix*`, else the exact path (leading `/`
/// optional).
fn route_matches(pattern: &str, path: &str) -> bool {
    let (pattern, path) = (
        pattern.trim_start_matches('/'),
        path.trim_start_matches('/'),
    );
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

/// 403 unless the key's and its team's pass-through route lists let it call `path`.
pub fn check_routes(principal: &Principal, path: &str) -> Result<(), AdminError> {
    let Some(k) = principal.key() else {
        return Ok(());
    };
    let metas = std::iter::once(("key", &k.key.metadata))
        .chain(k.team.as_ref().map(|t| ("team", &t.metadata)));
    for (who, meta) in metas {
        if let Some(p) = listed(meta, "denied_passthrough_routes").find(|p| route_matches(p, path))
        {
            return Err(AdminError::Forbidden(format!(
                "Pass-through route {path} is denied for this {who} (denied_passthrough_routes: {p})"
            )));
        }
        let mut allowed = listed(meta, "allowed_passthrough_routes").peekable();
        if allowed.peek().is_some() && !allowed.any(|p| route_matches(p, path)) {
            let list: Vec<&str> = listed(meta, "allowed_passthrough_routes").collect();
            return Err(AdminError::Forbidden(format!(
                "Pass-through route {path} is not allowed for this {who}. Allowed pass-through routes: {list:?}"
            )));
        }
    }
    Ok(())
}

/// `None` when the caller's model lists allow every model, else the refusal a call naming no
/// model gets (other refusals, such as a blocked team, come back as errors).
pub async fn restriction(
    dir: Option<&Directory>,
    principal: &Principal,
) -> Result<Option<AuthError>, AuthError> {
    let ask = Ask {
        model: NO_MODEL,
        end_user: None,
        groups: &NoGroups,
    };
    match authorize(dir, principal, ask).await {
        Ok(_) => Ok(None),
        Err(e @ AuthError::ModelDenied { .. }) => Ok(Some(e)),
        Err(e) => Err(e),
    }
}

/// Whether deployment `d` of one of the provider's `names` serves `model`.
fn serves(d: &Deployment, names: &[&str], model: &str) -> bool {
    names.contains(&d.provider.name())
        && (d.upstream_model == model || d.upstream_model.rsplit('/').next() == Some(model))
}

/// The names a model list may grant a pass-through model by (see the module doc).
struct Named<'a> {
    table: &'a ModelTable,
    names: Vec<String>,
}

impl<'a> Named<'a> {
    fn new(table: &'a ModelTable, providers: &[&str], model: &str) -> Self {
        let mut names = vec![model.to_string()];
        names.extend(providers.iter().map(|p| format!("{p}/{model}")));
        for d in table.deployments().filter(|d| serves(d, providers, model)) {
            if !names.contains(&d.model_name) {
                names.push(d.model_name.clone());
            }
        }
        Self { table, names }
    }
}

impl AccessGroups for Named<'_> {
    fn grants(&self, entry: &str, _: &str) -> bool {
        self.names.iter().any(|n| {
            entry == n
                || (entry.contains('*') && wildcard::captures(entry, n).is_some())
                || self.table.access_group_has(entry, n)
        })
    }
}

/// 403 unless the caller may use `model` of the provider (`providers`: its price-map names).
pub async fn check_model(
    dir: Option<&Directory>,
    principal: &Principal,
    table: &ModelTable,
    providers: &[&str],
    model: &str,
) -> Result<(), AuthError> {
    let named = Named::new(table, providers, model);
    let ask = Ask {
        model,
        end_user: None,
        groups: &named,
    };
    authorize(dir, principal, ask).await.map(|_| ())
}

/// The price of `model` at the provider: a deployment's of the provider serving it (with its
/// overrides), else the price map's.
pub fn price(table: &ModelTable, providers: &[&str], model: &str) -> Option<Arc<Price>> {
    table
        .deployments()
        .find(|d| serves(d, providers, model) && d.price.is_some())
        .and_then(|d| d.price.clone())
        .or_else(|| Price::lookup(providers.first().copied().unwrap_or_default(), model))
}

/// The top-level `model` of a whole JSON body (`None` when it is not a JSON object, names no
/// model, or names it twice).
pub fn body_model(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Top<'a> {
        #[serde(borrow)]
        model: Option<Cow<'a, str>>,
    }
    let top: Top<'_> = serde_json::from_slice(body).ok()?;
    top.model.filter(|m| !m.is_empty()).map(Cow::into_owned)
}

/// Whether `path` has a `.` or `..` segment (also percent-encoded), which a provider may
/// resolve to another path than the one whose model was checked.
pub fn dot_segments(path: &str) -> bool {
    path.split('/').any(|seg| {
        let s = seg.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".."
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_patterns() {
        assert!(route_matches("/openai/*", "/openai/v1/chat/completions"));
        assert!(route_matches("openai/*", "/openai/v1/models"));
        assert!(!route_matches("/openai/*", "/anthropic/v1/messages"));
        assert!(route_matches("/openai/v1/models", "/openai/v1/models"));
        assert!(!route_matches("/openai/v1/models", "/openai/v1/models/x"));
    }

    #[test]
    fn body_models() {
        assert_eq!(
            body_model(br#"{"messages":[{"model":"x"}],"model":"gpt-4o"}"#).as_deref(),
            Some("gpt-4o")
        );
        assert_eq!(
            body_model(br#"{"model":"gpt\u002d4o"}"#).as_deref(),
            Some("gpt-4o")
        );
        assert_eq!(body_model(br#"{"model":"a","model":"b"}"#), None);
        assert_eq!(body_model(br#"{"metadata":{"model":"a"}}"#), None);
        assert_eq!(body_model(br#"[{"model":"a"}]"#), None);
        assert_eq!(body_model(b"model=a"), None);
        assert_eq!(body_model(br#"{"model":""}"#), None);
    }

    #[test]
    fn dots() {
        assert!(dot_segments("v1/models/x/../../chat/completions"));
        assert!(dot_segments("v1/%2E%2e/chat"));
        assert!(dot_segments("v1/./chat"));
        assert!(!dot_segments("v1/models/amazon.nova-pro-v1:0/converse"));
    }
}
