//! `GET /v1/models` and `GET /v1/models/{model}` (OpenAI shapes), and the listing they share
//! with `/model/info`, `/v2/model/info` and `/model_group/info`: only what the caller's key, its
//! team (a personal key: its user) and its organisation may call, as LiteLLM lists it.

use std::borrow::Cow;
use std::collections::HashSet;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::auth::access::{may_call, wildcard_grants};
use crate::body::Body;
use crate::error::{GatewayError, json_response};
use crate::router::{Group, ModelTable, WildcardEntry, wildcard};
use crate::state::AppState;
use crate::util::query::query_param;

/// LiteLLM reports this fixed `created` for proxy models.
const CREATED: u64 = 1_677_610_602;

fn entry(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": CREATED, "owned_by": "openai"})
}

/// What a listing asks for (`/v1/models`' query parameters).
#[derive(Debug, Default, Clone, Copy)]
pub struct Asked {
    /// `return_wildcard_routes`: list wildcard routes (`anthropic/*`) themselves too.
    pub wildcard_routes: bool,
    /// `include_model_access_groups`: list the model access groups the caller may use too.
    pub access_groups: bool,
    /// `only_model_access_groups`: list only those.
    pub only_access_groups: bool,
}

impl Asked {
    /// From a query string (`true`, `True`, `1`, `yes`, `on`).
    pub fn of_query(q: Option<&str>) -> Self {
        let on = |name: &str| {
            query_param(q, name).is_some_and(|v| {
                matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on")
            })
        };
        Self {
            wildcard_routes: on("return_wildcard_routes"),
            access_groups: on("include_model_access_groups"),
            only_access_groups: on("only_model_access_groups"),
        }
    }
}

/// One name a listing shows.
pub enum Listed<'t> {
    /// A model group and its deployments.
    Group(&'t str, &'t Group),
    /// A visible alias (`model_group_alias`).
    Alias(&'t str),
    /// A wildcard route itself (asked for, or when the price map knows none of its models).
    Route(&'t WildcardEntry),
    /// A model of the price map a wildcard route serves (`anthropic/claude-...`).
    Known(&'t WildcardEntry, Cow<'t, str>),
    /// A model access group.
    AccessGroup(&'t str),
}

impl Listed<'_> {
    pub fn name(&self) -> &str {
        match self {
            Listed::Group(n, _) | Listed::Alias(n) | Listed::AccessGroup(n) => n,
            Listed::Known(_, n) => n,
            Listed::Route(w) => &w.pattern,
        }
    }
}

/// Every name `p` may call, as LiteLLM lists them: model groups in config order, visible
/// aliases, then the models wildcard routes serve ([`known`]), then, when asked, the model
/// access groups the caller may use.
pub fn listing<'t>(table: &'t ModelTable, p: &Principal, asked: Asked) -> Vec<Listed<'t>> {
    let may = |name: &str| may_call(p, name, table);
    let mut out = Vec::new();
    if !asked.only_access_groups {
        let mut seen: HashSet<String> = HashSet::new();
        for (name, group) in table.groups_in_order() {
            if seen.insert(name.to_string()) && may(name) {
                out.push(Listed::Group(name, group));
            }
        }
        for name in table.visible_aliases() {
            if seen.insert(name.to_string()) && may(name) {
                out.push(Listed::Alias(name));
            }
        }
        known(table, p, asked, &mut seen, &mut out);
    }
    if asked.access_groups || asked.only_access_groups {
        for g in table.access_group_names() {
            if may(g) {
                out.push(Listed::AccessGroup(g));
            }
        }
    }
    out
}

/// Each wildcard route's models from the price map (the route itself when it knows none, or
/// when asked), then the price map's models of the wildcard patterns in the caller's own
/// `models` lists that a route serves (a key for `anthropic/*` behind a catch-all `*`).
fn known<'t>(
    table: &'t ModelTable,
    p: &Principal,
    asked: Asked,
    seen: &mut HashSet<String>,
    out: &mut Vec<Listed<'t>>,
) {
    let may = |name: &str| may_call(p, name, table);
    let routes = table.wildcards();
    for w in routes {
        let known = w.known_models();
        if (asked.wildcard_routes || known.is_empty()) && may(&w.pattern) {
            out.push(Listed::Route(w));
        }
        for name in known {
            if may(name) && seen.insert(name.clone()) {
                out.push(Listed::Known(w, Cow::Borrowed(name)));
            }
        }
    }
    for pattern in wildcard_grants(p) {
        if routes.iter().any(|w| w.pattern == pattern) {
            continue;
        }
        for name in wildcard::known_models(pattern, pattern) {
            let route = routes
                .iter()
                .find(|w| wildcard::captures(&w.pattern, &name).is_some());
            if let Some(w) = route
                && may(&name)
                && seen.insert(name.clone())
            {
                out.push(Listed::Known(w, Cow::Owned(name)));
            }
        }
    }
}

pub fn respond(
    state: &AppState,
    principal: &Principal,
    model: Option<&str>,
    query: Option<&str>,
) -> Response<Body> {
    let table = state.models.load();
    let body = match model {
        None => {
            let listed = listing(&table, principal, Asked::of_query(query));
            let data: Vec<Value> = listed.iter().map(|l| entry(l.name())).collect();
            json!({"object": "list", "data": data})
        }
        Some(m) => {
            let listed = listing(&table, principal, Asked::default());
            match listed.iter().find(|l| l.name() == m) {
                Some(l) if !matches!(l, Listed::AccessGroup(_)) => entry(m),
                _ => return GatewayError::ModelNotFound(m.to_string()).into_response(),
            }
        }
    };
    json_response(
        StatusCode::OK,
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
    )
}
