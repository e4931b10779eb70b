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
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments in its future beside the copies its body moves them into"
)]
pub fn handle(
    state: Arc<AppState>,
    req: Request<RequestBody>,
    peer: SocketAddr,
) -> impl std::future::Future<Output = Response<Body>> {
    async move {
        let path = req.uri().path();
        let table = match init() {
            Ok(t) => t,
            Err(e) => return GatewayError::Internal(e.to_string()).into_response(),
        };
        let Some(m) = table.at(path) else {
            return Box::pin(unrouted(&state, req)).await;
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
        let found = Found {
            model: m.model.map(str::to_string),
            key: m.key.map(str::to_string),
            rest: m.rest.map(str::to_string),
        };
        serve(&state, route, found, req, peer).await
    }
}

/// What the path said beside its route.
struct Found {
    /// `{model}` (also a Gemini `model:method`).
    model: Option<String>,
    /// `{key}`: an object id.
    key: Option<String>,
    /// `{*path}` of a pass-through route.
    rest: Option<String>,
}

/// A path the route table does not know: a configured pass-through endpoint, else 404.
async fn unrouted(state: &AppState, req: Request<RequestBody>) -> Response<Body> {
    let path = req.uri().path();
    let config = state.config.load_full();
    match crate::passthrough::configured(&config, path) {
        Some((ep, sub)) => {
            let sub = sub.to_string();
            crate::passthrough::endpoint(state, ep, &sub, req)
                .await
                .unwrap_or_else(GatewayError::into_response)
        }
        None => GatewayError::NotFound(path.to_string()).into_response(),
    }
}

/// Hand the request to the module serving `route`. Every route's future is boxed: a request's
/// state machine would otherwise be as large as the largest route's, and async code moves it
/// (memcpy) at every level it is awaited through.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments in its future beside the copies its body moves them into"
)]
fn serve(
    state: &Arc<AppState>,
    route: Route,
    found: Found,
    req: Request<RequestBody>,
    peer: SocketAddr,
) -> impl std::future::Future<Output = Response<Body>> {
    async move {
        let answer =
            |r: Result<Response<Body>, GatewayError>| r.unwrap_or_else(GatewayError::into_response);
        match route {
            Route::Llm {
                expect,
                path_model: from_path,
            } => {
                let model = if from_path { found.model } else { None };
                Box::pin(crate::pipeline::serve(state, req, expect, model, peer)).await
            }
            Route::Models | Route::ModelInfo => {
                Box::pin(models(state, found.model.as_deref(), &req)).await
            }
            Route::Admin(a) => {
                // the client's address, for the management routes that make LLM calls (A2A agents)
                let mut req = req;
                req.extensions_mut().insert(peer);
                Box::pin(crate::admin::handle(state, a, found.key, req))
                    .await
                    .unwrap_or_else(|e| GatewayError::from(e).into_response())
            }
            Route::ResponseItem | Route::ResponseCancel | Route::ResponseInputItems => {
                answer(Box::pin(response_by_id(state, route, found.key, req)).await)
            }
            Route::Gemini => {
                Box::pin(gemini(state, found.model.unwrap_or_default(), req, peer)).await
            }
            Route::CountTokens => answer(Box::pin(crate::pipeline::count_tokens(state, req)).await),
            Route::Search => answer(Box::pin(crate::search::search(state, found.model, req)).await),
            Route::SearchTools => answer(Box::pin(crate::search::list(state, req)).await),
            Route::GuardrailsList | Route::GuardrailsListV2 => answer(
                Box::pin(guardrails_list(
                    state,
                    route == Route::GuardrailsListV2,
                    req,
                ))
                .await,
            ),
            Route::ApplyGuardrail => answer(Box::pin(apply_guardrail(state, req)).await),
            Route::PassThrough => {
                let prefix = provider_prefix(req.uri().path()).to_string();
                let rest = found.rest.unwrap_or_default();
                answer(
                    Box::pin(crate::passthrough::handle(
                        state,
                        &prefix,
                        &rest,
                        with_query_key(req),
                    ))
                    .await,
                )
            }
            Route::Managed(kind, at) => {
                answer(Box::pin(crate::managed::handle(state, kind, at, found.key, req)).await)
            }
            Route::Health | Route::HealthHistory => answer(
                Box::pin(crate::health::deployments(
                    state,
                    route == Route::Health,
                    req,
                ))
                .await,
            ),
            Route::Marketplace => {
                Box::pin(crate::admin::plugins::marketplace(
                    state,
                    with_query_key(req),
                ))
                .await
            }
            Route::Liveliness => crate::health::liveliness(),
            Route::Readiness => Box::pin(crate::health::readiness(state)).await,
            Route::Metrics => answer(Box::pin(crate::health::metrics::scrape(state, req)).await),
            Route::Mcp => answer(Box::pin(crate::mcp_api::serve(state, found.key, req)).await),
            Route::Skills(at) => {
                answer(Box::pin(crate::skills_api::serve(state, at, found.key, req)).await)
            }
            Route::Rag(at) => {
                answer(Box::pin(crate::rag_api::serve(state, at, found.key, req, peer)).await)
            }
            Route::McpSse => {
                answer(Box::pin(crate::mcp_api::sse::open(state, found.key, req)).await)
            }
            Route::McpSseMessages => answer(Box::pin(crate::mcp_api::sse::post(state, req)).await),
            Route::Routes => answer(Box::pin(routes_list(state, &req)).await),
        }
    }
}

/// `GET /routes` (any valid key).
async fn routes_list(
    state: &AppState,
    req: &Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let p = state.auth.authenticate(req.headers()).await?;
    crate::auth::access::check_route(&p, req.uri().path())?;
    let body = serde_json::to_vec(&crate::routes::listing())
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    Ok(crate::error::json_response(
        http::StatusCode::OK,
        bytes::Bytes::from(body),
    ))
}

/// `GET /v1/models`, `/v1/models/{model}`.
async fn models(
    state: &AppState,
    model: Option<&str>,
    req: &Request<RequestBody>,
) -> Response<Body> {
    match state
        .auth
        .authenticate(req.headers())
        .await
        .and_then(|p| crate::auth::access::check_route(&p, req.uri().path()).map(|()| p))
    {
        Ok(p) => crate::models_api::respond(state, &p, model, req.uri().query()),
        Err(e) => GatewayError::from(e).into_response(),
    }
}

/// A stored response by id: get, delete, cancel, input items.
async fn response_by_id(
    state: &AppState,
    route: Route,
    key: Option<String>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    use crate::managed::responses::Action;
    let action = match route {
        Route::ResponseCancel => Action::Cancel,
        Route::ResponseInputItems => Action::InputItems,
        _ if req.method() == http::Method::DELETE => Action::Delete,
        _ => Action::Get,
    };
    let id = key.unwrap_or_default();
    crate::managed::responses::by_id(state, action, &id, req).await
}

/// Gemini's own API: `{model}:generateContent`, `:streamGenerateContent` (the LLM pipeline),
/// `:countTokens`.
async fn gemini(
    state: &AppState,
    rest: String,
    req: Request<RequestBody>,
    peer: SocketAddr,
) -> Response<Body> {
    let (model, method) = rest.rsplit_once(':').unwrap_or((rest.as_str(), ""));
    let expect = match method {
        "generateContent" => Expect::Gemini { stream: false },
        "streamGenerateContent" => Expect::Gemini { stream: true },
        "countTokens" => {
            return crate::pipeline::gemini_count_tokens(state, model, with_query_key(req))
                .await
                .unwrap_or_else(GatewayError::into_response);
        }
        _ => return GatewayError::NotFound(format!("/v1beta/models/{rest}")).into_response(),
    };
    let model = Some(model.to_string());
    crate::pipeline::serve(state, with_query_key(req), expect, model, peer).await
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
        && let Some(k) = crate::util::query::query_param(req.uri().query(), "key")
        && let Ok(v) = http::HeaderValue::from_str(&k)
    {
        req.headers_mut().insert("x-goog-api-key", v);
    }
    req
}

/// `GET /guardrails/list`, `GET /v2/guardrails/list`: any valid key.
async fn guardrails_list(
    state: &AppState,
    v2: bool,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    state.auth.caller_of(&req).await?;
    let body = crate::guardrails::api::list(&state.guardrails.load(), v2).to_string();
    Ok(crate::error::json_response(
        http::StatusCode::OK,
        bytes::Bytes::from(body),
    ))
}

/// `POST /guardrails/apply_guardrail`: any valid key runs one guardrail on a text.
async fn apply_guardrail(
    state: &AppState,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let (principal, _, raw) = crate::pipeline::authenticated_body(state, req).await?;
    let body: crate::guardrails::api::ApplyBody = serde_json::from_slice(&raw)
        .map_err(|e| crate::request_body::RequestError::InvalidJson(e.to_string()))?;
    let set = (state.guardrails.load_full(), 0);
    let run = crate::guardrails::Run::new(set, state.client.clone(), state.models.load_full())
        .about(
            uuid::Uuid::now_v7().to_string(),
            String::new(),
            None,
            Some(principal),
        );
    let out = crate::guardrails::api::apply(&run, &body).await?;
    Ok(crate::error::json_response(
        http::StatusCode::OK,
        bytes::Bytes::from(out.to_string()),
    ))
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
