//! Run-time router changes: `POST /fallback`, `GET`/`DELETE /fallback/{model}` (LiteLLM's
//! fallback management endpoints) and `GET`/`PATCH /router/settings`. Changes apply to the live
//! router at once; with a database they are stored (`TianjiLLM_Config`, `router_settings`), so
//! they survive restarts, and other instances sharing Redis reload them.

use http::{Method, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::routes::Live;
use super::{AdminError, ok};
use crate::auth::Changed;
use crate::body::Body;
use crate::pipeline::parse::read_declared;
use crate::router::policy::Fallbacks;
use crate::state::AppState;
use crate::store::Query;

use crate::router::stored::PARAM;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum FallbackType {
    #[default]
    General,
    ContextWindow,
    ContentPolicy,
}

impl FallbackType {
    fn field(self) -> &'static str {
        match self {
            FallbackType::General => "fallbacks",
            FallbackType::ContextWindow => "context_window_fallbacks",
            FallbackType::ContentPolicy => "content_policy_fallbacks",
        }
    }
    fn name(self) -> &'static str {
        match self {
            FallbackType::General => "general",
            FallbackType::ContextWindow => "context_window",
            FallbackType::ContentPolicy => "content_policy",
        }
    }
    fn of(self, p: &crate::router::policy::Policy) -> &Fallbacks {
        match self {
            FallbackType::General => &p.fallbacks,
            FallbackType::ContextWindow => &p.context_window_fallbacks,
            FallbackType::ContentPolicy => &p.content_policy_fallbacks,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateFallback {
    model: String,
    fallback_models: Vec<String>,
    #[serde(default)]
    fallback_type: FallbackType,
}

fn fallback_type(query: Option<&str>) -> Result<FallbackType, AdminError> {
    match crate::util::query::query_param(query, "fallback_type") {
        None => Ok(FallbackType::General),
        Some(t) => serde_json::from_value(Value::String(t.clone())).map_err(|_| {
            AdminError::invalid(
                "fallback_type",
                format!("must be general, context_window or content_policy, not {t}"),
            )
        }),
    }
}

/// A router route's request: changes (any method but GET and HEAD) are for proxy admins only.
struct Asked<'a> {
    state: &'a AppState,
    method: Method,
    query: Option<String>,
    body: bytes::Bytes,
    /// The `{model}` path segment (`/fallback/{model}`).
    model: String,
}

async fn asked(live: Live<'_>) -> Result<Asked<'_>, AdminError> {
    let Live {
        state,
        principal,
        path_key,
        req,
    } = live;
    let method = req.method().clone();
    let changes = method != Method::GET && method != Method::HEAD;
    if changes && !principal.is_admin() {
        return Err(AdminError::Forbidden(format!(
            "Only proxy admins can change {}. Your role={}",
            req.uri().path(),
            principal.role().name()
        )));
    }
    let query = req.uri().query().map(str::to_string);
    let (parts, body) = req.into_parts();
    let body = read_declared(&parts.headers, body, state.max_body_bytes).await?;
    Ok(Asked {
        state,
        method,
        query,
        body,
        model: path_key.unwrap_or_default(),
    })
}

/// `POST /fallback`
pub async fn post_fallback(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let a = asked(live).await?;
    create(a.state, &a.body).await
}

/// `GET`, `DELETE /fallback/{model}`
pub async fn fallback(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let a = asked(live).await?;
    let (state, model) = (a.state, a.model);
    let t = fallback_type(a.query.as_deref())?;
    if a.method == Method::DELETE {
        return delete(state, &model, t).await;
    }
    let policy = state.router.policy();
    let list = t
        .of(&policy)
        .0
        .get(&model)
        .ok_or_else(|| not_found(&model, t))?;
    Ok(ok(
        &json!({"model": model, "fallback_models": list, "fallback_type": t.name()}),
    ))
}

/// `GET`, `PATCH /router/settings`
pub async fn settings_route(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let a = asked(live).await?;
    let state = a.state;
    if a.method == Method::PATCH {
        let patch: Map<String, Value> = serde_json::from_slice(&a.body)
            .map_err(|e| AdminError::invalid("body", format!("a JSON object: {e}")))?;
        let _guard = state.router.changing.lock().await;
        let mut overrides = state.router.overrides();
        overrides.extend(patch);
        change(state, overrides).await?;
        return settings(state);
    }
    settings(state)
}

fn not_found(model: &str, t: FallbackType) -> AdminError {
    AdminError::NotFound {
        param: "model",
        message: format!("No {} fallbacks configured for model {model}", t.name()),
    }
}

fn settings(state: &AppState) -> Result<Response<Body>, AdminError> {
    let policy = state.router.policy();
    let current = serde_json::to_value(&*policy)
        .map_err(|e| AdminError::invalid("router_settings", e.to_string()))?;
    Ok(ok(&json!({
        "current_values": current,
        "changed_at_run_time": Value::Object(state.router.overrides()),
    })))
}

async fn create(state: &AppState, body: &[u8]) -> Result<Response<Body>, AdminError> {
    let c: CreateFallback =
        serde_json::from_slice(body).map_err(|e| AdminError::invalid("body", e.to_string()))?;
    if c.fallback_models.is_empty() {
        return Err(AdminError::invalid(
            "fallback_models",
            "give at least one model",
        ));
    }
    let table = state.models.load_full();
    if table.resolve(&c.model).is_err() {
        return Err(AdminError::invalid(
            "model",
            format!("model {} is not served by this gateway", c.model),
        ));
    }
    for m in &c.fallback_models {
        if *m == c.model {
            return Err(AdminError::invalid(
                "fallback_models",
                "a model cannot fall back to itself",
            ));
        }
        if table.resolve(m).is_err() {
            return Err(AdminError::invalid(
                "fallback_models",
                format!("model {m} is not served by this gateway"),
            ));
        }
    }
    let _guard = state.router.changing.lock().await;
    let policy = state.router.policy();
    let mut list = c.fallback_type.of(&policy).clone();
    list.0.insert(c.model.clone(), c.fallback_models.clone());
    let mut overrides = state.router.overrides();
    overrides.insert(
        c.fallback_type.field().to_string(),
        serde_json::to_value(&list).map_err(|e| AdminError::invalid("fallbacks", e.to_string()))?,
    );
    change(state, overrides).await?;
    Ok(ok(&json!({
        "model": c.model,
        "fallback_models": c.fallback_models,
        "fallback_type": c.fallback_type.name(),
        "message": "Fallback configuration created successfully",
    })))
}

async fn delete(
    state: &AppState,
    model: &str,
    t: FallbackType,
) -> Result<Response<Body>, AdminError> {
    let _guard = state.router.changing.lock().await;
    let policy = state.router.policy();
    let mut list = t.of(&policy).clone();
    if list.0.remove(model).is_none() {
        return Err(not_found(model, t));
    }
    let mut overrides = state.router.overrides();
    overrides.insert(
        t.field().to_string(),
        serde_json::to_value(&list).map_err(|e| AdminError::invalid("fallbacks", e.to_string()))?,
    );
    change(state, overrides).await?;
    Ok(ok(&json!({
        "model": model,
        "fallback_type": t.name(),
        "message": "Fallback configuration deleted successfully",
    })))
}

/// Check `overrides`, store them (with a database), put them in force and tell the other
/// instances.
async fn change(state: &AppState, overrides: Map<String, Value>) -> Result<(), AdminError> {
    let policy = state
        .router
        .with_overrides(&overrides)
        .map_err(|e| AdminError::invalid("router_settings", e.to_string()))?;
    if let Some(store) = &state.store {
        let value = Value::Object(overrides.clone());
        store
            .query(Query::PutConfigParam, &[&PARAM, &value])
            .await?;
    }
    state.router.apply(policy, overrides);
    if let Some(bus) = &state.bus {
        bus.publish(&[Changed::RouterSettings]).await;
    }
    Ok(())
}
