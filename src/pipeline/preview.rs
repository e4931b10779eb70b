//! `/utils/transform_request`: the request an LLM call would send upstream, built by the code
//! that builds it for the call ([`super::call::way`], then the wire's outbound function, then
//! [`crate::upstream::request`]), and shown instead of sent: URL and credential headers
//! redacted ([`crate::secrets`]). The deployment is the one the router would choose for the
//! body's `model` (fallback groups included); nothing is counted: no in-flight slot, rate
//! limit, budget or spend row. Guardrails do not run.

use bytes::Bytes;
use http::HeaderMap;

use super::call::{self, Attempt, Way};
use super::parse::{self, Expect, RequestError};
use super::{compatible, native, rerank, route, translated};
use crate::auth::Principal;
use crate::error::GatewayError;
use crate::router::balancer::Ask;
use crate::state::AppState;

/// A request as it would be sent, credentials hidden.
#[derive(Debug)]
pub struct Preview {
    /// The full URL, secret query values hidden.
    pub url: String,
    /// Every header the gateway sets, in order, credential values hidden.
    pub headers: Vec<(String, String)>,
    /// The body's bytes as they would be sent.
    pub body: Bytes,
    /// The model group and deployment id chosen.
    pub model_group: String,
    pub deployment: String,
}

/// The LLM call of a LiteLLM `call_type` (`completion`/`acompletion`: chat, `embedding`,
/// `text_completion`, `image_generation`, `speech`, `moderation`, `rerank`, `responses`,
/// `anthropic_messages`, and their `a...` forms; `transcription` and `image_edit`, uploads,
/// too, to be refused by [`preview`]).
pub fn expect_of(call_type: &str) -> Option<Expect> {
    let base = match call_type {
        "anthropic_messages" | "aanthropic_messages" => return Some(Expect::Messages),
        t => t
            .strip_prefix('a')
            .filter(|rest| expect_named(rest).is_some())
            .unwrap_or(t),
    };
    expect_named(base)
}

fn expect_named(name: &str) -> Option<Expect> {
    Some(match name {
        "completion" => Expect::Chat,
        "text_completion" => Expect::Completion,
        "embedding" => Expect::Embedding,
        "image_generation" => Expect::ImageGeneration,
        "speech" => Expect::Speech,
        "moderation" => Expect::Moderation,
        "rerank" => Expect::Rerank,
        "responses" => Expect::Responses,
        "transcription" => Expect::Transcription,
        "image_edit" => Expect::ImageEdit,
        _ => return None,
    })
}

fn refused(why: String) -> GatewayError {
    RequestError::BadValue(why).into()
}

/// The request a call of kind `expect` with the JSON `body` would send upstream.
pub async fn preview(
    state: &AppState,
    principal: &Principal,
    expect: Expect,
    body: Bytes,
    headers: &HeaderMap,
) -> Result<Preview, GatewayError> {
    if expect.is_multipart() {
        return Err(refused(
            "this call_type sends a multipart upload, which is not previewed".into(),
        ));
    }
    let parsed = parse::parse_with(body, expect, false)?;
    let model = (parsed.model.clone())
        .filter(|m| !m.is_empty())
        .ok_or(RequestError::Missing("model"))?;
    let table = state.models.load_full();
    let resolved = table.resolve(&model)?;
    let policy = state.router.policy();
    let tags = route::request_tags(&policy, &parsed, headers);
    let ask = Ask {
        tags: &tags,
        prompt_tokens: parsed.raw.len() as u64 / 4,
    };
    let (group, _, dep, _) = route::first(
        state,
        &policy,
        principal,
        None,
        &model,
        &resolved.group,
        None,
        ask,
    )
    .await?;
    let mut a = Attempt {
        parsed,
        expect,
        model: &group,
        principal,
        headers,
        upload: None,
    };
    let mut outward = None;
    let out = match call::way(&dep, &mut a, &mut outward)? {
        Way::AnthropicMessages(uri) => {
            native::anthropic_outbound(&dep, std::borrow::Cow::Borrowed(uri), &a.parsed, headers)?
        }
        Way::GeminiGenerate(g) => native::gemini_outbound(state, &dep, g, &a.parsed).await?,
        Way::Mock => {
            return Err(refused(format!(
                "model {group} answers with mock_response: nothing is sent upstream"
            )));
        }
        Way::Ocr => return Err(refused("OCR requests are not previewed".into())),
        Way::Rerank => rerank::outbound(state, &dep, &a.parsed.json()?).await?.0,
        Way::TranslatedChat => {
            translated::chat_outbound(state, &dep, &a.parsed.json()?, a.parsed.stream).await?
        }
        Way::TranslatedEmbedding => {
            let req = a.parsed.json()?;
            let sent = translated::embedding_outbounds(state, &dep, &req).await?;
            // Bedrock models that embed one input a call: the first input's request
            match sent.into_iter().next() {
                Some((out, _)) => out,
                None => return Err(refused("the request has no input to embed".into())),
            }
        }
        Way::Compatible => compatible::outbound(&dep, &a.parsed, a.expect, a.model)?.0,
    };
    let req = out.request(&dep);
    let url = crate::secrets::redact_url(&req.uri().to_string()).into_owned();
    let headers = req
        .headers()
        .iter()
        .map(|(name, value)| {
            let v = String::from_utf8_lossy(value.as_bytes());
            let shown = crate::secrets::redact_header(name.as_str(), &v).into_owned();
            (name.as_str().to_string(), shown)
        })
        .collect();
    Ok(Preview {
        url,
        headers,
        body: out.body_bytes(),
        model_group: group.clone(),
        deployment: dep.id.clone(),
    })
}
