//! `GET /v1/models` and `GET /v1/models/{model}` (OpenAI shapes).

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::auth::access::{AccessGroups, model_allowed};
use crate::body::Body;
use crate::error::{GatewayError, json_response};
use crate::state::AppState;

/// LiteLLM reports this fixed `created` for proxy models.
const CREATED: u64 = 1_677_610_602;

fn entry(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": CREATED, "owned_by": "openai"})
}

/// Models the caller may use (a key with a `models` list sees only those).
pub(crate) fn visible(p: &Principal, name: &str, groups: &dyn AccessGroups) -> bool {
    match p {
        Principal::Key(k) => {
            k.key
                .models
                .as_deref()
                .is_none_or(|m| model_allowed(m, name, groups))
                && k.team
                    .as_ref()
                    .and_then(|t| t.models.as_deref())
                    .is_none_or(|m| model_allowed(m, name, groups))
        }
        _ => true,
    }
}

pub fn respond(state: &AppState, principal: &Principal, model: Option<&str>) -> Response<Body> {
    let table = state.models.load();
    let body = match model {
        None => {
            let data: Vec<Value> = table
                .public_names()
                .iter()
                .filter(|n| visible(principal, n, &**table))
                .map(|n| entry(n))
                .collect();
            json!({"object": "list", "data": data})
        }
        Some(m) if table.is_public(m) && visible(principal, m, &**table) => entry(m),
        Some(m) => {
            return GatewayError::ModelNotFound(m.to_string()).into_response();
        }
    };
    json_response(
        StatusCode::OK,
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
    )
}
