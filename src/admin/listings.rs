//! `/model/info` (`/v1/model/info`), `/v2/model/info` and `/model_group/info`: the deployments
//! and model groups the caller may call (the listing of [`crate::models_api`]), from live state
//! (no database needed). Credentials are never shown: parameters are the model and a redacted
//! `api_base`; `model_info` is the configured one over the price map's fields.

use std::collections::HashMap;

use http::Response;
use serde_json::{Map, Value, json};

use super::routes::Live;
use super::{AdminError, ok};
use crate::body::Body;
use crate::config::{ModelEntry, TianjiParams};
use crate::models_api::{Asked, Listed, listing};
use crate::prices::Price;
use crate::router::{Deployment, ModelTable, WildcardEntry};
use crate::state::AppState;

/// `/v2/model/info`'s page size when none is asked (LiteLLM's).
const PAGE_SIZE: usize = 50;

/// `GET /model/info` (`/v1/model/info`) `?litellm_model_id=`: the deployments the caller may
/// call (one id's, when asked).
pub async fn info(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let only = (live
        .param("litellm_model_id")
        .or_else(|| live.param("model_id")))
    .filter(|s| !s.is_empty());
    let table = live.state.models.load();
    let mut data = deployments(live.state, &table, &live.principal);
    if let Some(id) = only {
        data.retain(|d| d["model_info"]["id"] == id.as_str());
    }
    Ok(ok(&json!({"data": data})))
}

/// `GET /v2/model/info` `?model=&modelId=&search=&page=&size=`: the same deployments, filtered
/// (exact model name, id, a case-insensitive part of the name) and paged (LiteLLM's
/// `total_count`, `current_page`, `total_pages`, `size`).
pub async fn info_v2(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let page = positive(&live, "page", 1)?;
    let size = positive(&live, "size", PAGE_SIZE)?;
    let model = live.param("model").filter(|s| !s.is_empty());
    let id = (live.param("modelId").or_else(|| live.param("model_id"))).filter(|s| !s.is_empty());
    let search = (live.param("search").map(|s| s.to_lowercase())).filter(|s| !s.is_empty());
    let table = live.state.models.load();
    let mut data = deployments(live.state, &table, &live.principal);
    data.retain(|d| {
        let name = d["model_name"].as_str().unwrap_or_default();
        model.as_deref().is_none_or(|m| m == name)
            && id.as_deref().is_none_or(|i| d["model_info"]["id"] == i)
            && (search.as_deref()).is_none_or(|s| name.to_lowercase().contains(s))
    });
    let total = data.len();
    let shown: Vec<Value> = data
        .into_iter()
        .skip(page.saturating_sub(1).saturating_mul(size))
        .take(size)
        .collect();
    Ok(ok(&json!({
        "data": shown,
        "total_count": total,
        "current_page": page,
        "total_pages": total.div_ceil(size),
        "size": size,
    })))
}

/// `GET /model_group/info?model_group=`: one entry per model group the caller may call, the
/// models its wildcard routes serve included (from the price map).
pub async fn group_info(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let only = live.param("model_group").filter(|s| !s.is_empty());
    let table = live.state.models.load();
    let data: Vec<Value> = listing(&table, &live.principal, Asked::default())
        .iter()
        .filter(|l| only.as_deref().is_none_or(|o| o == l.name()))
        .filter_map(|l| match l {
            Listed::Group(name, group) => Some(of_group(name, group)),
            Listed::Known(w, name) => Some(of_known(w, name)),
            Listed::Route(w) => Some(of_known(w, &w.pattern)),
            Listed::Alias(_) | Listed::AccessGroup(_) => None,
        })
        .collect();
    Ok(ok(&json!({"data": data})))
}

/// A positive integer query parameter (`default` when absent); anything else is a 400.
fn positive(live: &Live<'_>, name: &'static str, default: usize) -> Result<usize, AdminError> {
    match live.param(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| AdminError::invalid(name, format!("{name} must be an integer >= 1"))),
    }
}

/// The deployments of the groups and wildcard routes the caller may call, in config order.
fn deployments(state: &AppState, table: &ModelTable, p: &crate::auth::Principal) -> Vec<Value> {
    let listed = listing(table, p, Asked::default());
    let loaded = state.config();
    let config: HashMap<String, &ModelEntry> = (loaded.model_list.iter())
        .map(|e| (Deployment::id_of(e, &e.model_name), e))
        .collect();
    let mut out = Vec::new();
    let mut routes: Vec<&WildcardEntry> = Vec::new();
    for l in &listed {
        match l {
            Listed::Group(_, group) => {
                for d in group.iter() {
                    let entry = config.get(&d.id).copied();
                    out.push(of_deployment(d, entry.map(|e| &e.tianji_params)));
                }
            }
            Listed::Route(w) | Listed::Known(w, _) => {
                if !routes.iter().any(|r| std::ptr::eq(*r, *w)) {
                    routes.push(w);
                }
            }
            Listed::Alias(_) | Listed::AccessGroup(_) => {}
        }
    }
    out.extend(routes.into_iter().map(of_route));
    out
}

/// Parameters as shown: the model as configured and a redacted `api_base`.
fn shown_params(model: String, api_base: Option<&str>) -> Value {
    let mut p = Map::new();
    p.insert("model".into(), json!(model));
    if let Some(b) = api_base.filter(|b| !b.is_empty()) {
        p.insert("api_base".into(), json!(crate::secrets::redact_url(b)));
    }
    Value::Object(p)
}

/// `info` over the price map's fields for `provider/model` (the configured ones win).
fn with_prices(mut info: Map<String, Value>, provider: &str, model: &str) -> Map<String, Value> {
    for (k, v) in Price::fields(provider, model).unwrap_or_default() {
        info.entry(k).or_insert(v);
    }
    info
}

/// One `/model/info` entry.
fn entry(name: &str, params: Value, info: Map<String, Value>) -> Value {
    json!({
        "model_name": name,
        "tianji_params": params,
        "litellm_params": params,
        "model_info": info,
    })
}

/// A deployment of a group (`config`: its entry in the config file; database models have none).
fn of_deployment(d: &Deployment, config: Option<&TianjiParams>) -> Value {
    let db_model = d.model_info.get("db_model") == Some(&json!(true));
    let params = match config {
        Some(c) => shown_params(c.model.clone(), c.api_base.as_deref()),
        None => shown_params(format!("{}/{}", d.provider.name(), d.upstream_model), None),
    };
    let mut info = with_prices(d.model_info.clone(), d.provider.name(), &d.upstream_model);
    info.insert("id".into(), json!(d.id));
    info.insert("db_model".into(), json!(db_model));
    entry(&d.model_name, params, info)
}

/// A wildcard route's entry.
fn of_route(w: &WildcardEntry) -> Value {
    let p = &w.entry.tianji_params;
    let mut info = w.entry.model_info.clone();
    let db_model = info.get("db_model") == Some(&json!(true));
    info.insert("id".into(), json!(Deployment::id_of(&w.entry, &w.pattern)));
    info.insert("db_model".into(), json!(db_model));
    entry(
        &w.pattern,
        shown_params(p.model.clone(), p.api_base.as_deref()),
        info,
    )
}

/// A `/model_group/info` entry (LiteLLM's `ModelGroupInfo` fields).
fn group_entry(
    name: &str,
    providers: Vec<String>,
    info: &Map<String, Value>,
    rpm_tpm: (Option<u64>, Option<u64>),
) -> Value {
    let get = |k: &str| info.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "model_group": name,
        "providers": providers,
        "mode": info.get("mode").cloned().unwrap_or(json!("chat")),
        "max_input_tokens": get("max_input_tokens"),
        "max_output_tokens": get("max_output_tokens"),
        "input_cost_per_token": get("input_cost_per_token"),
        "output_cost_per_token": get("output_cost_per_token"),
        "rpm": rpm_tpm.0,
        "tpm": rpm_tpm.1,
        "supports_function_calling": get("supports_function_calling"),
        "supports_vision": get("supports_vision"),
    })
}

/// A model group: its deployments' providers, its first deployment's `model_info` over the
/// price map's, the sum of its deployments' `rpm`/`tpm` (when any has one).
fn of_group(name: &str, group: &crate::router::Group) -> Value {
    let mut providers: Vec<String> = Vec::new();
    for d in group.iter() {
        let p = d.provider.name();
        if !providers.iter().any(|x| x == p) {
            providers.push(p.to_string());
        }
    }
    let sum = |f: fn(&Deployment) -> Option<u64>| {
        group
            .iter()
            .filter_map(|d| f(d))
            .reduce(u64::saturating_add)
    };
    let info = match group.first() {
        Some(d) => with_prices(d.model_info.clone(), d.provider.name(), &d.upstream_model),
        None => Map::new(),
    };
    group_entry(name, providers, &info, (sum(|d| d.rpm), sum(|d| d.tpm)))
}

/// A model a wildcard route serves (or the route itself): the route's provider, its
/// `model_info` over the price map's fields for that model.
fn of_known(w: &WildcardEntry, name: &str) -> Value {
    let p = &w.entry.tianji_params;
    let prefix = w.pattern.split_once('/').map_or("", |(prefix, _)| prefix);
    // the provider the route calls, else (a `*` route) the one the name starts with
    let provider = match p.model.split_once('/') {
        Some((provider, _)) if !provider.contains('*') => provider,
        _ => name.split_once('/').map_or("", |(provider, _)| provider),
    };
    let model = name
        .strip_prefix(prefix)
        .and_then(|m| m.strip_prefix('/'))
        .unwrap_or(name);
    let info = with_prices(w.entry.model_info.clone(), provider, model);
    let providers = if provider.is_empty() {
        Vec::new()
    } else {
        vec![provider.to_string()]
    };
    group_entry(name, providers, &info, (p.rpm, p.tpm))
}
