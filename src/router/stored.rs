//! The run-time router settings (`PATCH /router/settings`, the `/fallback` routes) stored in
//! `TianjiLLM_Config`, so they survive restarts and reach every instance.

use serde_json::{Map, Value};

use super::balancer::Balancer;
use crate::store::{Query, Store, StoreError};

/// The `TianjiLLM_Config` row holding the run-time router settings.
pub const PARAM: &str = "router_settings";

/// Read the stored run-time router settings and put them in force (at startup, and when
/// another instance changed them).
pub async fn reload(router: &Balancer, store: Option<&Store>) -> Result<(), StoreError> {
    let Some(store) = store else {
        return Ok(());
    };
    let rows = store.query(Query::GetConfigParam, &[&PARAM]).await?;
    let stored = rows
        .first()
        .and_then(|r| r.try_get::<_, Option<Value>>(0).ok().flatten());
    let overrides = match stored {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    match router.with_overrides(&overrides) {
        Ok(p) => router.apply(p, overrides),
        Err(e) => tracing::error!(error = %e, "ignoring unreadable stored router settings"),
    }
    Ok(())
}
