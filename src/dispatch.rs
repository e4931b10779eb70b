//! The top of the request path: one lookup in the route table ([`crate::routes`]), the method
//! check (405 with `Allow`), then the area that serves the route. LLM calls run the pipeline
//! ([`crate::pipeline::serve`]); the management API, models, responses, files and batches,
//! search, pass-through and health go to their own modules. Paths the table does not know may
//! still be configured pass-through endpoints; else 404.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use http::{Request, Response};

use crate::body::Body;
use crate::error::GatewayError;
use crate::pipeline::parse::Expect;
use crate::request_body::RequestBody;
use crate::routes::{Route, RouteTable, RouteTableError};
use crate::state::AppState;

/// The route table, built once: by [`init`] at startup (so a broken table stops the gateway
/// there), else on first use.
static ROUTES: OnceLock<RouteTable> = OnceLock::new();

/// Build the route table, once.
pub fn init() -> Result<&'static RouteTable, RouteTableError> {
    if let Some(t) = ROUTES.get() {
        return Ok(t);
    }
    let t = RouteTable::new()?;
    Ok(ROUTES.get_or_init(|| t))
}

/// Serve one HTTP request. Never fails: errors become JSON error responses.
pub async fn handle(
    state: Arc<AppState>,
    req: Request<RequestBody>,
    peer: SocketAddr,
) -> Response<Body> {
    let path = req.uri().path();
    let table = match init() {
        Ok(t) => t,
        Err(e) => return GatewayError::Internal(e.to_string()).into_response(),
    };
    let Some(m) = table.at(path) else {
        if let Some((ep, sub)) = crate::passthrough::configured(&state, path) {
            let sub = sub.to_string();
            return crate::passthrough::endpoint(&state, ep, &sub, req)
                .await
                .unwrap_or_else(GatewayError::into_response);
        }
        return GatewayError::NotFound(path.to_string()).into_response();
    };
    let mut route = m.route;
    let method = req.method();
    // Gemini's v1 API (`POST /v1/models/{model}:generateContent`) shares its prefix with
    // OpenAI's model lookup
    if route == Route::ModelInfo
        && method == http::Method::POST
        && m.model.is_some_and(|p| p.contains(':'))
    {
        route = Route::Gemini;
    } else if !m.methods.allows(method) {
        return GatewayError::MethodNotAllowed {
            method: method.to_string(),
            path: path.to_string(),
            allowed: m.methods.allow(),
        }
        .into_response();
    }
    let path_model = m.model.map(str::to_string);
    let path_key = m.key.map(str::to_string);
    let path_rest = m.rest.map(str::to_string);
    match route {
        Route::Llm {
            expect,
            path_model: from_path,
        } => {
            let model = if from_path { path_model } else { None };
            crate::pipeline::serve(&state, req, expect, model, peer).await
        }
        Route::Models | Route::ModelInfo => match state
            .auth
            .authenticate(req.headers())
            .await
            .and_then(|p| crate::auth::access::check_route(&p, path).map(|()| p))
        {
            Ok(p) => crate::models_api::respond(&state, &p, path_model.as_deref()),
            Err(e) => GatewayError::from(e).into_response(),
        },
        Route::Admin(a) => crate::admin::handle(&state, a, path_key, req)
            .await
            .unwrap_or_else(|e| GatewayError::from(e).into_response()),
        Route::ResponseItem | Route::ResponseCancel | Route::ResponseInputItems => {
            use crate::managed::responses::Action;
            let action = match route {
                Route::ResponseCancel => Action::Cancel,
                Route::ResponseInputItems => Action::InputItems,
                _ if req.method() == http::Method::DELETE => Action::Delete,
                _ => Action::Get,
            };
            let id = path_key.unwrap_or_default();
            crate::managed::responses::by_id(&state, action, &id, req)
                .await
                .unwrap_or_else(GatewayError::into_response)
        }
        Route::Gemini => {
            let rest = path_model.unwrap_or_default();
            let (model, method) = rest.rsplit_once(':').unwrap_or((rest.as_str(), ""));
            let expect = match method {
                "generateContent" => Expect::Gemini { stream: false },
                "streamGenerateContent" => Expect::Gemini { stream: true },
                "countTokens" => {
                    let req = with_query_key(req);
                    return crate::pipeline::gemini_count_tokens(&state, model, req)
                        .await
                        .unwrap_or_else(GatewayError::into_response);
                }
                _ => {
                    return GatewayError::NotFound(format!("/v1beta/models/{rest}"))
                        .into_response();
                }
            };
            let model = Some(model.to_string());
            crate::pipeline::serve(&state, with_query_key(req), expect, model, peer).await
        }
        Route::CountTokens => crate::pipeline::count_tokens(&state, req)
            .await
            .unwrap_or_else(GatewayError::into_response),
        Route::Search => crate::search::search(&state, path_model, req)
            .await
            .unwrap_or_else(GatewayError::into_response),
        Route::SearchTools => crate::search::list(&state, req)
            .await
            .unwrap_or_else(GatewayError::into_response),
        Route::PassThrough => {
            let prefix = provider_prefix(req.uri().path()).to_string();
            let rest = path_rest.unwrap_or_default();
            crate::passthrough::handle(&state, &prefix, &rest, with_query_key(req))
                .await
                .unwrap_or_else(GatewayError::into_response)
        }
        Route::Managed(kind, at) => crate::managed::handle(&state, kind, at, path_key, req)
            .await
            .unwrap_or_else(GatewayError::into_response),
        Route::Health | Route::HealthHistory => {
            crate::health::deployments(&state, route == Route::Health, req)
                .await
                .unwrap_or_else(GatewayError::into_response)
        }
        Route::Liveliness => crate::health::liveliness(),
        Route::Readiness => crate::health::readiness(&state).await,
    }
}

/// The provider of a pass-through path: its first segment (`/{provider}/{*path}`).
fn provider_prefix(path: &str) -> &str {
    let path = path.strip_prefix('/').unwrap_or(path);
    path.split_once('/').map_or(path, |(first, _)| first)
}

/// Gemini clients may put their key in `?key=`: moved to `x-goog-api-key` when no key header
/// is present, so authentication reads it like any other.
pub fn with_query_key(mut req: Request<RequestBody>) -> Request<RequestBody> {
    if crate::auth::presented_key(req.headers())
        .ok()
        .flatten()
        .is_none()
        && let Some(k) = crate::pipeline::query_param(req.uri().query(), "key")
        && let Ok(v) = http::HeaderValue::from_str(&k)
    {
        req.headers_mut().insert("x-goog-api-key", v);
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_is_the_first_segment() {
        assert_eq!(provider_prefix("/anthropic/v1/messages"), "anthropic");
        assert_eq!(provider_prefix("/vertex-ai/x"), "vertex-ai");
    }
}
