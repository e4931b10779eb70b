//! Which prompts a caller may use: a key's `prompts` and its team's (both kept in their
//! `metadata`, as LiteLLM keeps them). A list restricts the holder to the prompt ids in it (an
//! empty list: none); key and team are intersected; a holder without a list is unrestricted.
//! Proxy admins use any prompt.

use serde_json::Value;

use crate::auth::Principal;

/// The ids a `metadata.prompts` list names; `None` without a list.
fn listed(metadata: &Value) -> Option<Vec<&str>> {
    let list = metadata.get("prompts")?.as_array()?;
    Some(list.iter().filter_map(Value::as_str).collect())
}

/// Whether a list admits `id` (version `version`): by its id, or by `id.v{version}`.
fn admits(list: &[&str], id: &str, version: i32) -> bool {
    let versioned = format!("{id}.v{version}");
    list.iter().any(|p| *p == id || *p == versioned)
}

/// Whether `principal` may use version `version` of prompt `id`.
pub fn permits(principal: &Principal, id: &str, version: i32) -> bool {
    if principal.is_admin() {
        return true;
    }
    let Some(k) = principal.key() else {
        return true;
    };
    let lists = [
        listed(&k.key.metadata),
        k.team.as_ref().and_then(|t| listed(&t.metadata)),
    ];
    lists.iter().flatten().all(|l| admits(l, id, version))
}

/// Whether `principal` holds a `prompts` list (key or team) that names `id`: such a caller
/// may read the prompt too.
pub fn granted(principal: &Principal, id: &str, version: i32) -> bool {
    let Some(k) = principal.key() else {
        return false;
    };
    let key = listed(&k.key.metadata);
    let team = k.team.as_ref().and_then(|t| listed(&t.metadata));
    (key.is_some() || team.is_some()) && permits(principal, id, version)
}
