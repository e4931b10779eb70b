//! `POST /v1/search/{tool}` (and `/search/{tool}`, or `/v1/search` with `search_tool_name` in
//! the body) and `GET /v1/search/tools`: web search through the providers of the
//! `search_tools` config, answered in one shape ([`providers`]).

pub mod providers;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::body::Body;
pub use crate::config::search::{SearchParams, SearchTool};
use crate::error::GatewayError;
use crate::pipeline::parse::RequestError;
use crate::request_body::RequestBody;
use crate::state::AppState;
use crate::upstream::UpstreamError;

/// The environment variable holding a provider's key, and its base URL override.
fn env_names(provider: &str) -> (&'static str, &'static str) {
    match provider {
        "tavily" => ("TAVILY_API_KEY", "TAVILY_API_BASE"),
        "brave" => ("BRAVE_API_KEY", "BRAVE_API_BASE"),
        "exa_ai" | "exa" => ("EXA_API_KEY", "EXA_API_BASE"),
        "linkup" => ("LINKUP_API_KEY", "LINKUP_API_BASE"),
        "firecrawl" => ("FIRECRAWL_API_KEY", "FIRECRAWL_API_BASE"),
        _ => ("SEARXNG_API_KEY", "SEARXNG_API_BASE"),
    }
}

fn not_found(tool: &str) -> GatewayError {
    GatewayError::NotFound(format!(
        "search tool `{tool}` (configure it under search_tools)"
    ))
}

/// `GET /v1/search/tools`
pub async fn list(
    state: &AppState,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    state.auth.caller_of(&req).await?;
    let data: Vec<Value> = state
        .config()
        .search_tools
        .iter()
        .map(|t| {
            let mut v = json!({"search_tool_name": t.search_tool_name,
                "search_provider": t.tianji_params.search_provider});
            if let Some(d) = t
                .search_tool_info
                .as_ref()
                .and_then(|i| i.get("description"))
            {
                v["description"] = d.clone();
            }
            v
        })
        .collect();
    let body = json!({"object": "list", "data": data}).to_string();
    Ok(crate::error::json_response(
        StatusCode::OK,
        Bytes::from(body),
    ))
}

/// `POST /v1/search/{tool}`
pub async fn search(
    state: &AppState,
    tool: Option<String>,
    req: Request<RequestBody>,
) -> Result<Response<Body>, GatewayError> {
    let (principal, _parts, raw) = crate::pipeline::authenticated_body(state, req).await?;
    let v: Value =
        serde_json::from_slice(&raw).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    if !v.is_object() {
        return Err(RequestError::NotObject.into());
    }
    let name = tool
        .or_else(|| {
            v.get("search_tool_name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .ok_or(RequestError::Missing("search_tool_name"))?;
    let config = state.config();
    let t = config
        .search_tools
        .iter()
        .find(|t| t.search_tool_name == name)
        .ok_or_else(|| not_found(&name))?;
    let p = &t.tianji_params;
    let ask = providers::Ask::from_json(&v).map_err(|e| RequestError::BadValue(e.to_string()))?;
    let (key_env, base_env) = env_names(&p.search_provider);
    let key = p.api_key.clone().or_else(|| state.env.get(key_env));
    let base = p.api_base.clone().or_else(|| state.env.get(base_env));
    let call = providers::call(&p.search_provider, &ask, key.as_deref(), base.as_deref())
        .map_err(|e| RequestError::BadValue(e.to_string()))?;
    let uri: Uri = call
        .url
        .parse()
        .map_err(|_| GatewayError::Internal(format!("bad search URL for {name}")))?;
    let mut out = Request::new(match &call.body {
        Some(b) => Body::full(b.to_string()),
        None => Body::empty(),
    });
    *out.method_mut() = if call.post { Method::POST } else { Method::GET };
    *out.uri_mut() = uri;
    let h = out.headers_mut();
    if call.body.is_some() {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    for (k, v) in &call.headers {
        let mut value = HeaderValue::from_str(v)
            .map_err(|_| GatewayError::Internal(format!("bad {k} header for {name}")))?;
        value.set_sensitive(true);
        h.insert(*k, value);
    }
    let timeout = p
        .timeout
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .unwrap_or(Duration::from_secs(30));
    let answer = async {
        let resp = state
            .client
            .request(out)
            .await
            .map_err(|e| UpstreamError::Connect {
                api_base: call.url.split('?').next().unwrap_or_default().to_string(),
                detail: e.to_string(),
            })?;
        if !resp.status().is_success() {
            return Err(UpstreamError::from_response(resp).await);
        }
        resp.into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .map_err(|e| UpstreamError::Body(e.to_string()))
    };
    let side = crate::pipeline::Side {
        call_type: "asearch",
        endpoint: "/v1/search",
        model: &name,
        dep: None,
        model_access: false,
        rate_limited: true,
    };
    let mut rec = crate::pipeline::side_call(state, &principal, side).await?;
    let bytes = tokio::time::timeout(timeout, answer)
        .await
        .map_err(|_| UpstreamError::Timeout(timeout.as_secs_f64()))??;
    let resp: Value = serde_json::from_slice(&bytes).map_err(|e| {
        UpstreamError::Body(format!("{} sent invalid JSON: {e}", p.search_provider))
    })?;
    let unified = providers::answer(&p.search_provider, &resp, ask.max_results);
    rec.status = 200;
    Ok(crate::error::json_response(
        StatusCode::OK,
        Bytes::from(unified.to_string()),
    ))
}
