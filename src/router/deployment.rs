//! A deployment ready to be called: URLs parsed, auth header built, defaults applied.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Uri};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::{Env, ModelEntry, TianjiParams};
use crate::prices::Price;
use crate::providers::{Catalog, ProviderError, ProviderKind};

/// Defaults for fields a deployment leaves unset.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub timeout: Duration,
    pub stream_timeout: Option<Duration>,
    pub max_retries: u32,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(600),
            stream_timeout: None,
            max_retries: 0,
        }
    }
}

/// Why a model entry cannot become a deployment.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("provider '{0}' needs api_base")]
    NeedsApiBase(String),
    /// The URL is shown redacted (no userinfo, no secret query values).
    #[error("invalid api_base '{}': {}", crate::secrets::redact_url(.0), .1)]
    BadUrl(String, String),
    #[error("invalid header {0}: {1}")]
    BadHeader(String, String),
    #[error("{0}")]
    Credentials(String),
    #[error("tianji_params.model contains `*` but model_name has no `*` to take it from")]
    StarWithoutPattern,
    /// A provider LiteLLM accepts that Tianji does not serve: the config does not load.
    #[error(
        "provider {0} is not served by Tianji: {1} (LiteLLM accepts it; configure this model with a provider Tianji serves)"
    )]
    NotServed(String, std::sync::Arc<str>),
}

/// Upstream endpoints of an OpenAI-compatible deployment.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub chat: Uri,
    pub completions: Uri,
    pub embeddings: Uri,
    pub responses: Uri,
    /// The base URL without a trailing slash, for paths with ids in them.
    pub base: String,
    /// Where the deployment's own paths start (Azure: `.../openai/deployments/<name>`).
    pub scoped: String,
    /// Query every call carries (Azure: `?api-version=...`), or "".
    pub query: String,
}

impl Endpoints {
    /// The URL of another OpenAI path of this deployment (`/images/generations`, ...).
    pub fn at(&self, path: &str) -> Option<Uri> {
        format!("{}{path}{}", self.scoped, self.query).parse().ok()
    }
}

/// A time limit as the `x-tianji-timeout` header: seconds as LiteLLM writes them (Python's
/// float: `600.0`, `0.25`).
pub fn timeout_header(d: std::time::Duration) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("{:?}", d.as_secs_f64())).ok()
}

/// One callable deployment of a model group.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// `model_info.id`, or a stable hash of the entry.
    pub id: String,
    /// Public model group name (what clients send).
    pub model_name: String,
    pub provider: ProviderKind,
    /// The provider's model name.
    pub upstream_model: String,
    /// `upstream_model` as a JSON string literal, spliced into bodies.
    pub upstream_model_json: Bytes,
    /// Base URL as called (userinfo dropped; query secrets kept: they are sent). Never shown:
    /// answers, errors, logs and stored rows use `api_base_shown`.
    pub api_base: String,
    /// `api_base` with secret query values hidden ([`crate::secrets::redact_url`]).
    pub api_base_shown: String,
    /// `api_base_shown` as `x-tianji-model-api-base`.
    pub api_base_header: HeaderValue,
    /// `id` as `x-tianji-model-id` (made once, not per answer).
    pub id_header: Option<HeaderValue>,
    /// `timeout` as `x-tianji-timeout`.
    pub timeout_header: Option<HeaderValue>,
    pub endpoints: Option<Endpoints>,
    /// How OpenAI-shaped bodies are adjusted for this deployment (OpenAI-compatible and Azure).
    pub spec: Option<Arc<crate::providers::ProviderSpec>>,
    /// The wire format and endpoints of native providers.
    pub wire: super::wire::Wire,
    /// Auth and static headers sent upstream (values marked sensitive).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub timeout: Duration,
    pub stream_timeout: Duration,
    pub max_retries: u32,
    pub mock_response: Option<String>,
    /// `use_in_pass_through`: provider pass-through may use its credential.
    pub pass_through: bool,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub max_parallel_requests: Option<u64>,
    pub model_info: Map<String, Value>,
    /// What a call costs (price map plus overrides); `None` when the model is not priced.
    pub price: Option<Arc<Price>>,
    /// `simple-shuffle` weight.
    pub weight: Option<f64>,
    /// Tags for tag routing.
    pub tags: Vec<String>,
    /// Its region (`region_name`, else from its cloud location; [`super::region`]).
    pub region: Option<String>,
    /// Live traffic counters the strategies read.
    pub stats: Arc<super::stats::Stats>,
}

impl Deployment {
    /// The longest prompt this deployment takes: `model_info.max_input_tokens`, else the price
    /// map's.
    pub fn max_input_tokens(&self) -> Option<u64> {
        self.model_info
            .get("max_input_tokens")
            .and_then(Value::as_u64)
            .or_else(|| self.price.as_ref().and_then(|p| p.max_input_tokens))
    }
}

impl Deployment {
    /// Anthropic deployments: the Messages API URL.
    pub fn anthropic_messages(&self) -> Option<&Uri> {
        match &self.wire {
            super::wire::Wire::Anthropic { messages } => Some(messages),
            _ => None,
        }
    }

    /// `base + suffix` of an OpenAI-compatible deployment (`suffix` starts with `/`).
    pub fn uri(&self, suffix: &str) -> Option<Uri> {
        let ep = self.endpoints.as_ref()?;
        format!("{}{suffix}", ep.base).parse().ok()
    }
}

fn secs(v: Option<f64>) -> Option<Duration> {
    v.and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// Anthropic's API when `api_base` and `ANTHROPIC_API_BASE` are unset.
const ANTHROPIC_BASE: &str = "https://api.anthropic.com";
/// `anthropic-version` sent with every Anthropic request.
const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Azure OpenAI `api-version` when neither the deployment nor `AZURE_API_VERSION` sets one.
pub const AZURE_API_VERSION: &str = "2024-10-21";
/// Azure AI Foundry (`*.services.ai.azure.com/models`) `api-version` when none is set.
pub const AZURE_AI_API_VERSION: &str = "2024-05-01-preview";

/// `base + suffix` as an http(s) URL.
fn endpoint(base: &str, suffix: &str) -> Result<Uri, DeploymentError> {
    let s = format!("{base}{suffix}");
    let uri: Uri = s
        .parse()
        .map_err(|e: http::uri::InvalidUri| DeploymentError::BadUrl(base.into(), e.to_string()))?;
    match uri.scheme_str() {
        Some("http") | Some("https") if uri.host().is_some() => Ok(uri),
        _ => Err(DeploymentError::BadUrl(
            base.into(),
            "expected an http:// or https:// URL".into(),
        )),
    }
}

/// Azure OpenAI endpoints: `{base}/openai/deployments/{name}/...?api-version=...`, or the
/// OpenAI-shaped v1 API when `api_base` ends in `/openai/v1`.
fn azure_endpoints(
    base: &str,
    deployment: &str,
    version: &str,
) -> Result<Endpoints, DeploymentError> {
    if base.ends_with("/openai/v1") {
        return Ok(Endpoints {
            chat: endpoint(base, "/chat/completions")?,
            completions: endpoint(base, "/completions")?,
            embeddings: endpoint(base, "/embeddings")?,
            responses: endpoint(base, "/responses")?,
            base: base.to_string(),
            scoped: base.to_string(),
            query: String::new(),
        });
    }
    let dep = format!("{base}/openai/deployments/{deployment}");
    let q = format!("?api-version={version}");
    Ok(Endpoints {
        chat: endpoint(&dep, &format!("/chat/completions{q}"))?,
        completions: endpoint(&dep, &format!("/completions{q}"))?,
        embeddings: endpoint(&dep, &format!("/embeddings{q}"))?,
        responses: endpoint(base, &format!("/openai/responses{q}"))?,
        base: format!("{base}/openai"),
        scoped: dep,
        query: q,
    })
}

/// How Azure bodies are adjusted: as OpenAI's (usage in streams supported); `azure_text` sends
/// chat as text completions.
fn azure_spec(name: &str) -> Arc<crate::providers::ProviderSpec> {
    Arc::new(crate::providers::ProviderSpec {
        name: name.into(),
        base_url: String::new(),
        api_key_env: Some("AZURE_API_KEY".into()),
        api_base_env: Some("AZURE_API_BASE".into()),
        api_key_required: true,
        api_base_required: true,
        auth_header: "api-key".into(),
        auth_prefix: String::new(),
        headers: Default::default(),
        param_mappings: Default::default(),
        content_list_to_string: false,
        stream_options: true,
        chat_via_completions: name == "azure_text",
        videos_only: false,
        aliases: Vec::new(),
    })
}

/// Azure AI's base URL (`api_base` or `AZURE_AI_API_BASE`), key (`api_key` or
/// `AZURE_AI_API_KEY`) and Entra ID token (`azure_ad_token` or `AZURE_AD_TOKEN`, used when there
/// is no key).
fn azure_ai_credentials(
    p: &TianjiParams,
    env: &Env,
) -> Result<(String, Option<String>, Option<String>), DeploymentError> {
    let base = p
        .api_base
        .clone()
        .filter(|b| !b.is_empty())
        .or_else(|| env.get("AZURE_AI_API_BASE").filter(|b| !b.is_empty()));
    let base = match base {
        Some(b) => crate::secrets::strip_userinfo(b.trim_end_matches('/')).into_owned(),
        None if p.mock_response.is_some() => "https://azure-ai.invalid".to_string(),
        None => return Err(DeploymentError::NeedsApiBase("azure_ai".into())),
    };
    let key = p
        .api_key
        .clone()
        .filter(|k| !k.is_empty())
        .or_else(|| env.get("AZURE_AI_API_KEY").filter(|k| !k.is_empty()));
    let ad_token = p
        .azure_ad_token
        .clone()
        .filter(|t| !t.is_empty())
        .or_else(|| env.get("AZURE_AD_TOKEN").filter(|t| !t.is_empty()));
    Ok((base, key, ad_token))
}

/// The host of `url`, lowercased (no port).
fn host_of(url: &str) -> String {
    url.parse::<Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_ascii_lowercase))
        .unwrap_or_default()
}

/// Whether an Azure AI key goes in `api-key` (Azure AI Foundry resources,
/// `*.services.ai.azure.com` and `*.openai.azure.com`) rather than `Authorization: Bearer`
/// (serverless endpoints, `*.models.ai.azure.com`, and others), as LiteLLM decides.
fn azure_ai_api_key_header(base: &str) -> bool {
    let host = host_of(base);
    host.ends_with(".services.ai.azure.com") || host.ends_with(".openai.azure.com")
}

/// `base` split into the URL without its query and the query (without `?`).
fn split_query(base: &str) -> (&str, &str) {
    match base.split_once('?') {
        Some((b, q)) => (b.trim_end_matches('/'), q),
        None => (base, ""),
    }
}

/// Azure AI's OpenAI-shaped endpoints: `{base}/models/chat/completions` on an Azure AI Foundry
/// resource (`*.services.ai.azure.com`), else `{base}/chat/completions` (serverless
/// endpoints), `/embeddings` alike; `?api-version=` when the deployment (or `api_base`, or
/// `AZURE_API_VERSION`) sets one, and `2024-05-01-preview` on a Foundry resource without one.
fn azure_ai_endpoints(base: &str, version: Option<&str>) -> Result<Endpoints, DeploymentError> {
    let (url, query) = split_query(base);
    let foundry = host_of(url).ends_with(".services.ai.azure.com");
    let mut root = url
        .strip_suffix("/chat/completions")
        .unwrap_or(url)
        .trim_end_matches('/')
        .to_string();
    if foundry && !root.ends_with("/models") {
        root.push_str("/models");
    }
    let mut params: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    if !params.iter().any(|p| p.starts_with("api-version=")) {
        match version {
            Some(v) => params.push(format!("api-version={v}")),
            None if foundry => params.push(format!("api-version={AZURE_AI_API_VERSION}")),
            None => {}
        }
    }
    let q = if params.is_empty() {
        String::new()
    } else {
        format!("?{}", params.join("&"))
    };
    Ok(Endpoints {
        chat: endpoint(&root, &format!("/chat/completions{q}"))?,
        completions: endpoint(&root, &format!("/completions{q}"))?,
        embeddings: endpoint(&root, &format!("/embeddings{q}"))?,
        responses: endpoint(&root, &format!("/responses{q}"))?,
        base: root.clone(),
        scoped: root,
        query: q,
    })
}

/// The Messages API URL of a Claude model on Azure AI: `api_base` when it ends in
/// `/v1/messages`, `{api_base}/v1/messages` when it ends in `/anthropic`, else
/// `{api_base}/anthropic/v1/messages`.
fn azure_ai_messages_url(base: &str) -> String {
    let (url, _) = split_query(base);
    let url = url.trim_end_matches('/');
    if url.ends_with("/v1/messages") {
        url.to_string()
    } else if url.ends_with("/anthropic") {
        format!("{url}/v1/messages")
    } else {
        format!("{url}/anthropic/v1/messages")
    }
}

/// How Azure AI bodies are adjusted: as OpenAI's, usage asked for in streams.
fn azure_ai_spec() -> Arc<crate::providers::ProviderSpec> {
    Arc::new(crate::providers::ProviderSpec {
        name: "azure_ai".into(),
        base_url: String::new(),
        api_key_env: Some("AZURE_AI_API_KEY".into()),
        api_base_env: Some("AZURE_AI_API_BASE".into()),
        api_key_required: true,
        api_base_required: true,
        auth_header: "api-key".into(),
        auth_prefix: String::new(),
        headers: Default::default(),
        param_mappings: Default::default(),
        content_list_to_string: false,
        stream_options: true,
        chat_via_completions: false,
        videos_only: false,
        aliases: Vec::new(),
    })
}

/// Stable id: first 16 bytes of sha256 over the entry's identifying fields.
fn stable_id(model_name: &str, p: &TianjiParams) -> String {
    let mut h = Sha256::new();
    for part in [
        model_name,
        &p.model,
        p.api_base.as_deref().unwrap_or(""),
        p.api_version.as_deref().unwrap_or(""),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let d = h.finalize();
    let mut s = String::with_capacity(32);
    for b in &d[..16] {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

impl Deployment {
    /// The id of `entry`'s deployment serving `model_name`: its `model_info.id` (with the name
    /// for a wildcard's models), else a stable hash of the entry.
    pub fn id_of(entry: &ModelEntry, model_name: &str) -> String {
        match entry.model_info.get("id") {
            Some(Value::String(s)) if !s.is_empty() => {
                if model_name == entry.model_name {
                    s.clone()
                } else {
                    format!("{s}:{model_name}")
                }
            }
            _ => stable_id(model_name, &entry.tianji_params),
        }
    }

    /// Build from a config entry. `model` is the concrete `provider/name` (wildcards substituted).
    pub fn build(
        entry: &ModelEntry,
        model_name: &str,
        model: &str,
        catalog: &Catalog,
        env: &Env,
        defaults: &Defaults,
    ) -> Result<Self, DeploymentError> {
        let original = &entry.tianji_params;
        // userinfo is never sent upstream: drop it before any URL is built
        let stripped;
        let p = match original
            .api_base
            .as_deref()
            .map(crate::secrets::strip_userinfo)
        {
            Some(std::borrow::Cow::Owned(base)) => {
                stripped = TianjiParams {
                    api_base: Some(base),
                    ..original.clone()
                };
                &stripped
            }
            _ => original,
        };
        let pm = catalog.parse_model(model)?;
        let id = Self::id_of(entry, model_name);
        let mut headers = Vec::new();
        let mut wire = super::wire::Wire::OpenAi;
        let mut wire_spec = None;
        let mut location = None;
        let (api_base, endpoints) = match &pm.kind {
            ProviderKind::OpenAiCompatible(spec_arc) => {
                let spec = spec_arc.as_ref();
                let base = match &p.api_base {
                    Some(b) if !b.is_empty() => b.clone(),
                    _ => {
                        let from_env = spec
                            .api_base_env
                            .as_deref()
                            .and_then(|n| env.get(n))
                            .filter(|s| !s.is_empty());
                        match from_env {
                            Some(b) => b,
                            None if spec.api_base_required && p.mock_response.is_none() => {
                                return Err(DeploymentError::NeedsApiBase(spec.name.clone()));
                            }
                            None => spec.base_url.clone(),
                        }
                    }
                };
                let base = crate::secrets::strip_userinfo(base.trim_end_matches('/')).into_owned();
                let ep = |suffix: &str| endpoint(&base, suffix);
                wire_spec = Some(spec_arc.clone());
                let endpoints = Endpoints {
                    chat: ep("/chat/completions")?,
                    completions: ep("/completions")?,
                    embeddings: ep("/embeddings")?,
                    responses: ep("/responses")?,
                    base: base.clone(),
                    scoped: base.clone(),
                    query: String::new(),
                };
                let key = p
                    .api_key
                    .clone()
                    .filter(|k| !k.is_empty())
                    .or_else(|| spec.api_key_env.as_deref().and_then(|n| env.get(n)));
                if let Some(key) = &key {
                    let v = format!("{}{}", spec.auth_prefix, key);
                    headers.push(header(&spec.auth_header, &v, true)?);
                }
                for (k, v) in &spec.headers {
                    let val = v.replace("{api_key}", key.as_deref().unwrap_or(""));
                    headers.push(header(k, &val, v.contains("{api_key}"))?);
                }
                (base, Some(endpoints))
            }
            ProviderKind::Native("anthropic") => {
                let base = p
                    .api_base
                    .clone()
                    .filter(|b| !b.is_empty())
                    .or_else(|| env.get("ANTHROPIC_API_BASE").filter(|b| !b.is_empty()))
                    .unwrap_or_else(|| ANTHROPIC_BASE.to_string());
                let base = crate::secrets::strip_userinfo(base.trim_end_matches('/')).into_owned();
                let url = match base.strip_suffix("/v1") {
                    Some(_) => format!("{base}/messages"),
                    None => format!("{base}/v1/messages"),
                };
                let uri: Uri = url.parse().map_err(|e: http::uri::InvalidUri| {
                    DeploymentError::BadUrl(base.clone(), e.to_string())
                })?;
                wire = super::wire::Wire::Anthropic { messages: uri };
                let key = p
                    .api_key
                    .clone()
                    .filter(|k| !k.is_empty())
                    .or_else(|| env.get("ANTHROPIC_API_KEY"));
                if let Some(key) = &key {
                    headers.push(header("x-api-key", key, true)?);
                }
                headers.push(header("anthropic-version", ANTHROPIC_VERSION, false)?);
                (base, None)
            }
            ProviderKind::Native(name @ ("azure" | "azure_text")) => {
                let base = p
                    .api_base
                    .clone()
                    .filter(|b| !b.is_empty())
                    .or_else(|| env.get("AZURE_API_BASE").filter(|b| !b.is_empty()));
                let base = match base {
                    Some(b) => crate::secrets::strip_userinfo(b.trim_end_matches('/')).into_owned(),
                    None if p.mock_response.is_some() => "https://azure.invalid".to_string(),
                    None => return Err(DeploymentError::NeedsApiBase("azure".into())),
                };
                let version = p
                    .api_version
                    .clone()
                    .filter(|v| !v.is_empty())
                    .or_else(|| env.get("AZURE_API_VERSION").filter(|v| !v.is_empty()))
                    .unwrap_or_else(|| AZURE_API_VERSION.to_string());
                let endpoints = azure_endpoints(&base, &pm.model, &version)?;
                let ad_token = p
                    .azure_ad_token
                    .clone()
                    .filter(|t| !t.is_empty())
                    .or_else(|| env.get("AZURE_AD_TOKEN").filter(|t| !t.is_empty()));
                let key = p
                    .api_key
                    .clone()
                    .filter(|k| !k.is_empty())
                    .or_else(|| env.get("AZURE_API_KEY").filter(|k| !k.is_empty()));
                match (ad_token, key) {
                    (Some(t), _) => {
                        headers.push(header("authorization", &format!("Bearer {t}"), true)?)
                    }
                    (None, Some(k)) => headers.push(header("api-key", &k, true)?),
                    (None, None) => {}
                }
                wire_spec = Some(azure_spec(name));
                (base, Some(endpoints))
            }
            ProviderKind::Native("gemini") => {
                let (g, shown, key) = super::wire::gemini(p, &pm.model, env)?;
                if let Some(key) = &key {
                    headers.push(header("x-goog-api-key", key, true)?);
                }
                wire = super::wire::Wire::Gemini(g);
                (shown, None)
            }
            ProviderKind::Native("vertex_ai" | "vertex_ai_beta") => {
                location = Some(super::wire::vertex_location(p, env));
                let (g, shown) = super::wire::vertex(p, &pm.model, env)?;
                wire = super::wire::Wire::Gemini(g);
                (shown, None)
            }
            ProviderKind::Native("bedrock" | "bedrock_converse") => {
                let b = super::wire::bedrock(p, &pm.model, env)?;
                location = Some(b.region.clone());
                let shown = b.base.clone();
                wire = super::wire::Wire::Bedrock(b);
                (shown, None)
            }
            ProviderKind::Native("cohere" | "cohere_chat") => {
                let (w, shown, key) = super::wire::cohere(p, env)?;
                if let Some(key) = &key {
                    headers.push(header("authorization", &format!("Bearer {key}"), true)?);
                }
                wire = w;
                (shown, None)
            }
            ProviderKind::Native("azure_ai") => {
                let (base, key, ad_token) = azure_ai_credentials(p, env)?;
                let version = p
                    .api_version
                    .clone()
                    .filter(|v| !v.is_empty())
                    .or_else(|| env.get("AZURE_API_VERSION").filter(|v| !v.is_empty()));
                let claude = pm.model.to_ascii_lowercase().contains("claude");
                let auth = match (key, ad_token) {
                    // Claude's Messages API on Azure takes the key as `api-key` whatever the host
                    (Some(k), _) if claude || azure_ai_api_key_header(&base) => {
                        Some(("api-key", k))
                    }
                    (Some(k), _) => Some(("authorization", format!("Bearer {k}"))),
                    (None, Some(t)) => Some(("authorization", format!("Bearer {t}"))),
                    (None, None) => None,
                };
                if let Some((h, v)) = auth {
                    headers.push(header(h, &v, true)?);
                }
                if claude {
                    let messages = endpoint(&azure_ai_messages_url(&base), "")?;
                    wire = super::wire::Wire::Anthropic { messages };
                    headers.push(header("anthropic-version", ANTHROPIC_VERSION, false)?);
                    (base, None)
                } else {
                    let endpoints = azure_ai_endpoints(&base, version.as_deref())?;
                    wire_spec = Some(azure_ai_spec());
                    (base, Some(endpoints))
                }
            }
            ProviderKind::Native("watsonx") => {
                let (w, shown, auth) = super::wire::watsonx(p, &pm.model, env)?;
                if let Some(v) = &auth {
                    headers.push(header("authorization", v, true)?);
                }
                wire = super::wire::Wire::WatsonX(Arc::new(w));
                (shown, None)
            }
            ProviderKind::Native(name @ ("sagemaker" | "sagemaker_chat")) => {
                let s = super::wire::sagemaker(p, &pm.model, env, *name == "sagemaker_chat")?;
                location = Some(s.region.clone());
                let shown = s
                    .invoke
                    .to_string()
                    .split("/endpoints/")
                    .next()
                    .unwrap_or_default()
                    .to_string();
                wire = super::wire::Wire::SageMaker(Arc::new(s));
                (shown, None)
            }
            ProviderKind::Native(name) => {
                return Err(DeploymentError::NotServed(
                    name.to_string(),
                    "this build has no wire for it".into(),
                ));
            }
            ProviderKind::NotServed { name, reason } => {
                return Err(DeploymentError::NotServed(name.to_string(), reason.clone()));
            }
        };
        for (k, v) in p.headers.iter().chain(p.extra_headers.iter()) {
            headers.push(header(k, v, false)?);
        }
        let timeout = secs(p.timeout).unwrap_or(defaults.timeout);
        let stream_timeout = secs(p.stream_timeout)
            .or(defaults.stream_timeout)
            .unwrap_or(timeout);
        let upstream_model_json = Bytes::from(
            serde_json::to_vec(&pm.model)
                .map_err(|e| DeploymentError::BadUrl(model.into(), e.to_string()))?,
        );
        let api_base_shown = crate::secrets::redact_url(&api_base).into_owned();
        let api_base_header = HeaderValue::from_str(&api_base_shown)
            .map_err(|e| DeploymentError::BadUrl(api_base.clone(), e.to_string()))?;
        let id_header = HeaderValue::from_str(&id).ok();
        let timeout_header = timeout_header(timeout);
        let price = Price::for_deployment(
            pm.kind.name(),
            &pm.model,
            &entry.model_info,
            &p.cost_overrides(),
        );
        Ok(Deployment {
            price,
            id,
            model_name: model_name.to_string(),
            provider: pm.kind,
            upstream_model: pm.model,
            upstream_model_json,
            api_base,
            api_base_shown,
            api_base_header,
            id_header,
            timeout_header,
            endpoints,
            spec: wire_spec,
            wire,
            headers,
            timeout,
            stream_timeout,
            max_retries: p.max_retries.unwrap_or(defaults.max_retries),
            mock_response: p.mock_response.clone(),
            pass_through: p.use_in_pass_through,
            rpm: p.rpm,
            tpm: p.tpm,
            max_parallel_requests: p.max_parallel_requests,
            model_info: entry.model_info.clone(),
            weight: p.weight,
            tags: p.tags.clone(),
            region: super::region::of(p.region_name.as_deref(), location.as_deref()),
            stats: Arc::default(),
        })
    }
}

fn header(
    name: &str,
    value: &str,
    sensitive: bool,
) -> Result<(HeaderName, HeaderValue), DeploymentError> {
    let n = HeaderName::from_bytes(name.as_bytes())
        .map_err(|e| DeploymentError::BadHeader(name.into(), e.to_string()))?;
    let mut v = HeaderValue::from_str(value)
        .map_err(|e| DeploymentError::BadHeader(name.into(), e.to_string()))?;
    v.set_sensitive(sensitive);
    Ok((n, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(yaml_params: &str) -> Deployment {
        let yaml = format!("model_list:\n  - model_name: m\n    tianji_params: {yaml_params}\n");
        let l = crate::Loaded::from_yaml(&yaml).unwrap();
        let entry = &l.config.model_list[0];
        let catalog = Catalog::builtin().unwrap();
        Deployment::build(
            entry,
            "m",
            &entry.tianji_params.model,
            &catalog,
            &Env::default(),
            &Defaults::default(),
        )
        .unwrap()
    }

    fn auth(d: &Deployment) -> Vec<(String, String)> {
        d.headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect()
    }

    #[test]
    fn azure_ai_foundry_and_serverless_urls_and_auth() {
        let d = build(
            "{model: azure_ai/mistral-large, api_base: \"https://res.services.ai.azure.com\", api_key: k1}",
        );
        let ep = d.endpoints.as_ref().unwrap();
        assert_eq!(
            ep.chat.to_string(),
            "https://res.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview"
        );
        assert_eq!(
            ep.embeddings.to_string(),
            "https://res.services.ai.azure.com/models/embeddings?api-version=2024-05-01-preview"
        );
        assert_eq!(auth(&d), vec![("api-key".into(), "k1".into())]);
        assert!(d.headers[0].1.is_sensitive());

        let d = build(
            "{model: azure_ai/x, api_base: \"https://res.services.ai.azure.com/models/chat/completions?api-version=2025-01-01\", api_key: k1}",
        );
        assert_eq!(
            d.endpoints.as_ref().unwrap().chat.to_string(),
            "https://res.services.ai.azure.com/models/chat/completions?api-version=2025-01-01"
        );

        let d = build(
            "{model: azure_ai/llama, api_base: \"https://llama-serverless.eastus2.models.ai.azure.com/\", api_key: k2}",
        );
        assert_eq!(
            d.endpoints.as_ref().unwrap().chat.to_string(),
            "https://llama-serverless.eastus2.models.ai.azure.com/chat/completions"
        );
        assert_eq!(auth(&d), vec![("authorization".into(), "Bearer k2".into())]);

        let d = build(
            "{model: azure_ai/gpt, api_base: \"https://r.openai.azure.com\", api_key: k3, api_version: \"2024-10-21\"}",
        );
        assert_eq!(
            d.endpoints.as_ref().unwrap().chat.to_string(),
            "https://r.openai.azure.com/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(auth(&d), vec![("api-key".into(), "k3".into())]);
    }

    #[test]
    fn azure_ai_claude_is_anthropic_on_azure() {
        for (base, want) in [
            (
                "https://res.services.ai.azure.com",
                "https://res.services.ai.azure.com/anthropic/v1/messages",
            ),
            (
                "https://res.services.ai.azure.com/anthropic/",
                "https://res.services.ai.azure.com/anthropic/v1/messages",
            ),
            (
                "https://res.services.ai.azure.com/anthropic/v1/messages",
                "https://res.services.ai.azure.com/anthropic/v1/messages",
            ),
        ] {
            let d = build(&format!(
                "{{model: azure_ai/claude-sonnet-4-5, api_base: \"{base}\", api_key: k}}"
            ));
            assert_eq!(d.anthropic_messages().unwrap().to_string(), want);
            assert!(d.endpoints.is_none());
            let h = auth(&d);
            assert!(h.contains(&("api-key".into(), "k".into())), "{h:?}");
            assert!(
                h.contains(&("anthropic-version".into(), ANTHROPIC_VERSION.into())),
                "{h:?}"
            );
        }
        let d = build(
            "{model: azure_ai/claude-opus-4-1, api_base: \"https://res.services.ai.azure.com/anthropic\", azure_ad_token: t}",
        );
        assert!(auth(&d).contains(&("authorization".into(), "Bearer t".into())));
    }

    #[test]
    fn watsonx_and_sagemaker_wires() {
        let d = build(
            "{model: watsonx/ibm/granite, api_base: \"https://us-south.ml.cloud.ibm.com\", api_key: k, project_id: p}",
        );
        let super::super::wire::Wire::WatsonX(w) = &d.wire else {
            panic!("{:?}", d.wire)
        };
        assert_eq!(
            w.chat.to_string(),
            "https://us-south.ml.cloud.ibm.com/ml/v1/text/chat?version=2024-03-13"
        );
        let iam = w.iam.as_ref().unwrap();
        assert_eq!(
            iam.url.to_string(),
            "https://iam.cloud.ibm.com/identity/token"
        );
        assert!(!format!("{:?}", d.wire).contains("\"k\""));
        let d = build(
            "{model: sagemaker_chat/my-ep, aws_access_key_id: a, aws_secret_access_key: s, aws_region_name: eu-west-1}",
        );
        let super::super::wire::Wire::SageMaker(s) = &d.wire else {
            panic!("{:?}", d.wire)
        };
        assert_eq!(
            s.stream.to_string(),
            "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/my-ep/invocations-response-stream"
        );
        assert!(s.messages_api);
        assert_eq!(d.region.as_deref(), Some("eu"));
        assert!(!format!("{:?}", d.wire).contains("\"s\""));
    }
}
