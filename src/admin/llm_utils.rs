//! LiteLLM's LLM utility routes: `POST /utils/transform_request` (admins: the request a call
//! would send upstream, built by the call's own code and not sent; `pipeline/preview.rs`),
//! `POST /utils/token_counter` and `GET /utils/supported_openai_params?model=` (any key; a
//! model group the key may not use is refused).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::routes::Live;
use super::{AdminError, ok};
use crate::auth::Principal;
use crate::body::Body;
use crate::error::GatewayError;
use crate::pipeline::parse::read_declared;
use crate::pipeline::preview;
use crate::prices::Price;
use crate::providers::supported_params::{self, Family};
use crate::providers::token_count::{CountError, Counter, Encoding};
use crate::router::wire::Wire;
use crate::router::{Deployment, ModelTable};
use crate::state::AppState;

/// The request's JSON body as `T` (`what` names the shape expected, for the 400).
async fn json_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    req: http::Request<crate::request_body::RequestBody>,
    what: &str,
) -> Result<T, AdminError> {
    let (parts, body) = req.into_parts();
    let raw = read_declared(&parts.headers, body, state.max_body_bytes).await?;
    serde_json::from_slice(&raw)
        .map_err(|e| AdminError::invalid("body", format!("{what} is expected: {e}")))
}

/// The body of `POST /utils/transform_request`.
#[derive(Deserialize)]
struct TransformAsked {
    call_type: String,
    request_body: Map<String, Value>,
}

/// `POST /utils/transform_request`: `{call_type, request_body}` -> `{raw_request_api_base,
/// raw_request_body, raw_request_headers}` (LiteLLM's answer), the chosen deployment's id in
/// `x-tianji-model-id`.
pub async fn transform_request(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let Live {
        state,
        principal,
        req,
        ..
    } = live;
    let asked: TransformAsked =
        json_body(state, req, "a JSON object {call_type, request_body}").await?;
    let expect = preview::expect_of(&asked.call_type).ok_or_else(|| {
        AdminError::invalid(
            "call_type",
            format!(
                "unknown call_type '{}': one of completion, text_completion, embedding, image_generation, speech, moderation, rerank, responses, anthropic_messages (or their a... forms)",
                asked.call_type
            ),
        )
    })?;
    let body = serde_json::to_vec(&asked.request_body)
        .map_err(|e| AdminError::invalid("request_body", e.to_string()))?;
    let p = match preview::preview(
        state,
        &principal,
        expect,
        Bytes::from(body),
        &HeaderMap::new(),
    )
    .await
    {
        Ok(p) => p,
        Err(e) => return Ok(e.into_response_for(principal.is_admin())),
    };
    // the body as its exact bytes (a JSON body is sent as JSON): what the provider gets
    let text = String::from_utf8_lossy(&p.body).into_owned();
    let body = serde_json::value::RawValue::from_string(text.clone()).or_else(|_| {
        serde_json::value::to_raw_value(&text)
            .map_err(|e| AdminError::invalid("request_body", e.to_string()))
    })?;
    let headers: Map<String, Value> = (p.headers.into_iter())
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    #[derive(serde::Serialize)]
    struct Shown {
        raw_request_api_base: String,
        raw_request_body: Box<serde_json::value::RawValue>,
        raw_request_headers: Map<String, Value>,
    }
    let shown = Shown {
        raw_request_api_base: p.url,
        raw_request_body: body,
        raw_request_headers: headers,
    };
    let bytes = serde_json::to_vec(&shown)
        .map_err(|e| AdminError::invalid("request_body", e.to_string()))?;
    let mut resp = crate::error::json_response(http::StatusCode::OK, Bytes::from(bytes));
    if let Ok(id) = HeaderValue::from_str(&p.deployment) {
        resp.headers_mut().insert("x-tianji-model-id", id);
    }
    Ok(resp)
}

/// The deployments of `model` when it is a model group (or alias) the caller may use: `None`
/// for a name that is not one; the refusal when the caller may not use it.
async fn group_of(
    state: &AppState,
    principal: &Principal,
    table: &ModelTable,
    model: &str,
) -> Result<Option<Arc<Deployment>>, GatewayError> {
    let Ok(resolved) = table.resolve(model) else {
        return Ok(None);
    };
    crate::auth::access::authorize(
        state.auth.directory(),
        principal,
        crate::auth::access::Ask {
            model,
            end_user: None,
            groups: table,
        },
    )
    .await?;
    Ok(resolved.group.first().cloned())
}

/// The body of `POST /utils/token_counter` (LiteLLM's `TokenCountRequest`, with the `tools`
/// and `system` its fallback counts).
#[derive(Deserialize)]
struct CountAsked {
    model: String,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    messages: Option<Vec<Value>>,
    #[serde(default)]
    contents: Option<Vec<Value>>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    system: Option<Value>,
}

/// `POST /utils/token_counter`: LiteLLM's `{total_tokens, request_model, model_used,
/// tokenizer_type, ...}`. A model group is counted as its first deployment's model (LiteLLM's
/// `model_used`), any other name as it is; the tokenizer is tiktoken's, chosen as LiteLLM
/// chooses it (`providers/token_count.rs`).
pub async fn token_counter(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let Live {
        state,
        principal,
        req,
        ..
    } = live;
    let asked: CountAsked =
        json_body(state, req, "{model, messages or prompt or contents}").await?;
    if asked.prompt.is_none() && asked.messages.is_none() && asked.contents.is_none() {
        return Err(AdminError::invalid(
            "body",
            "prompt or messages or contents must be provided",
        ));
    }
    let table = state.models.load_full();
    let dep = match group_of(state, &principal, &table, &asked.model).await {
        Ok(d) => d,
        Err(e) => return Ok(e.into_response_for(principal.is_admin())),
    };
    let model_used = dep
        .as_ref()
        .map_or_else(|| asked.model.clone(), |d| d.upstream_model.clone());
    let openai_chat = Price::fields("openai", &model_used).is_some_and(|f| {
        f.get("litellm_provider").and_then(Value::as_str) == Some("openai")
            && f.get("mode").and_then(Value::as_str) == Some("chat")
    });
    let encoding = Encoding::for_model(&model_used, openai_chat);
    let request_model = asked.model.clone();
    let counted = tokio::task::spawn_blocking(move || count(encoding, asked))
        .await
        .map_err(|e| AdminError::invalid("body", format!("counting failed: {e}")))?;
    let total = match counted {
        Ok(n) => n,
        Err(CountError::Invalid(why)) => return Err(AdminError::invalid("messages", why)),
        Err(e) => {
            return Ok(GatewayError::Internal(e.to_string()).into_response_for(false));
        }
    };
    Ok(ok(&json!({
        "total_tokens": total,
        "request_model": request_model,
        "model_used": model_used,
        "tokenizer_type": "openai_tokenizer",
        "original_response": null,
        "error": false,
        "error_message": null,
        "status_code": null,
    })))
}

/// The count of `asked` with `encoding` (on a blocking thread: loading an encoding and
/// encoding a long prompt take CPU time).
fn count(encoding: Encoding, asked: CountAsked) -> Result<u64, CountError> {
    let counter = Counter::new(encoding)?;
    let messages = match (asked.messages, asked.contents) {
        (Some(m), _) => Some(m),
        (None, Some(contents)) => {
            let chat = crate::providers::gemini::native::to_chat(
                &json!({"contents": contents}),
                &asked.model,
                false,
            )
            .map_err(|e| CountError::Invalid(e.to_string()))?;
            Some(chat["messages"].as_array().cloned().unwrap_or_default())
        }
        (None, None) => None,
    };
    match (messages, asked.prompt) {
        (Some(mut messages), _) => {
            if let Some(system) = asked.system.filter(|s| !s.is_null()) {
                messages.insert(0, json!({"role": "system", "content": system}));
            }
            counter.messages(
                &messages,
                asked.tools.as_deref(),
                asked.tool_choice.as_ref(),
            )
        }
        (None, Some(prompt)) => Ok(counter.text(&prompt)),
        (None, None) => Ok(0),
    }
}

/// `GET /utils/supported_openai_params?model=`: `{supported_openai_params: [...]}` for a model
/// group (its deployment's wire) or a `provider/model` name; 400 for a name of no provider.
pub async fn supported_openai_params(live: Live<'_>) -> Result<Response<Body>, AdminError> {
    let Live {
        state,
        principal,
        req,
        ..
    } = live;
    let model = crate::util::query::decoded_param(req.uri().query(), "model")
        .filter(|m| !m.is_empty())
        .ok_or_else(|| AdminError::invalid("model", "the model query parameter is required"))?;
    let table = state.models.load_full();
    let family = match group_of(state, &principal, &table, &model).await {
        Ok(Some(dep)) => Some(family_of_deployment(&dep)),
        Ok(None) => (state.catalog.parse_model(&model).ok())
            .and_then(|pm| supported_params::family_of(&pm.kind)),
        Err(e) => return Ok(e.into_response_for(principal.is_admin())),
    };
    let Some(family) = family else {
        return Err(AdminError::invalid(
            "model",
            format!("Could not map model={model}"),
        ));
    };
    Ok(ok(
        &json!({"supported_openai_params": supported_params::chat(family)}),
    ))
}

/// How a deployment's chat requests are sent.
fn family_of_deployment(dep: &Deployment) -> Family {
    match &dep.wire {
        Wire::OpenAi if dep.spec.as_ref().is_some_and(|s| s.chat_via_completions) => {
            Family::TextCompletion
        }
        Wire::OpenAi => Family::OpenAi,
        Wire::Anthropic { .. } => Family::Anthropic,
        Wire::Gemini(_) => Family::Gemini,
        Wire::Bedrock(_) => Family::Bedrock,
        Wire::Cohere { .. } => Family::Cohere,
        Wire::WatsonX(_) => Family::WatsonX,
        Wire::SageMaker(s) if s.messages_api => Family::OpenAi,
        Wire::SageMaker(_) => Family::SageMakerTgi,
    }
}
