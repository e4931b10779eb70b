//! `POST /config/reload` and `GET /config/yaml`: the config file put in force again without a
//! restart ([`crate::reload`]), and the config in force as it may be shown (secrets hidden).

use http::Response;
use serde_json::json;

use super::routes::Live;
use super::{AdminError, ok};
use crate::body::Body;

/// `POST /config/reload`: read the config file again; 400 with the reason when it is rejected
/// (the config in force stays).
pub async fn reload(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let attempt = crate::reload::reload(live.state).await;
    match attempt.error {
        Some(e) => Err(AdminError::invalid("config", e)),
        None => Ok(ok(&json!(attempt))),
    }
}

/// `GET /config/yaml`: the config in force (redacted), its file, and the last reload.
pub async fn yaml(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let r = &live.state.reloads;
    let mut config = r.raw();
    crate::secrets::redact_config(&mut config);
    Ok(ok(&json!({
        "config": config,
        "path": r.path.as_ref().map(|p| p.display().to_string()),
        "reloads_applied": r.applied(),
        "last_reload": r.last(),
    })))
}
