//! How a native deployment is spoken to: its URLs and how requests are authenticated.
//! `api_base` only ever changes the scheme and host (and path prefix) of these URLs, never the
//! wire format.

use std::sync::Arc;

use http::Uri;

use super::deployment::DeploymentError;
use crate::config::{Env, TianjiParams};
use crate::providers::bedrock::sigv4::Credentials;
use crate::providers::gemini::vertex::{self, ServiceAccount};
use crate::providers::watsonx;

/// The wire format of a deployment.
#[derive(Debug, Clone, Default)]
pub enum Wire {
    /// OpenAI-shaped (OpenAI-compatible providers, Azure): `Deployment::endpoints`.
    #[default]
    OpenAi,
    /// Anthropic Messages API.
    Anthropic { messages: Uri },
    /// Gemini `generateContent` (AI Studio key in `x-goog-api-key`, or Vertex AI).
    Gemini(Gemini),
    /// AWS Bedrock Converse, SigV4-signed.
    Bedrock(Bedrock),
    /// Cohere v2.
    Cohere { chat: Uri, embed: Uri, rerank: Uri },
    /// IBM watsonx.ai `/ml/v1/text/chat`, with an IAM token exchanged for its API key.
    WatsonX(Arc<WatsonX>),
    /// An AWS SageMaker endpoint, SigV4-signed.
    SageMaker(Arc<SageMaker>),
}

/// A watsonx.ai model's endpoints and credentials.
#[derive(Debug)]
pub struct WatsonX {
    pub chat: Uri,
    pub chat_stream: Uri,
    pub embed: Uri,
    /// `model_id` and `project_id`/`space_id` for the body (none for `deployment/<id>`).
    pub scope: watsonx::Scope,
    /// The API key's IAM token, when requests are not authenticated by a static header (a
    /// `token`/`WATSONX_TOKEN` or a `WATSONX_ZENAPIKEY`, among the deployment's headers).
    pub iam: Option<IamAuth>,
}

/// A watsonx.ai API key and its cached IAM access token.
pub struct IamAuth {
    pub api_key: String,
    pub url: Uri,
    /// The token and when it stops being used (a minute before it expires).
    pub token: tokio::sync::Mutex<Option<(String, std::time::Instant)>>,
}

impl std::fmt::Debug for IamAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IamAuth")
            .field("api_key", &"<redacted>")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// A SageMaker endpoint's URLs and signing material.
#[derive(Debug)]
pub struct SageMaker {
    /// `{base}/endpoints/{endpoint}/invocations`.
    pub invoke: Uri,
    /// `{base}/endpoints/{endpoint}/invocations-response-stream`.
    pub stream: Uri,
    /// The endpoint's name (the model of `sagemaker/<endpoint>`).
    pub endpoint: String,
    pub region: String,
    pub credentials: Credentials,
    /// `sagemaker_chat`: the container serves OpenAI's Messages API; else TGI's generate API.
    pub messages_api: bool,
}

/// A Gemini model's endpoints.
#[derive(Debug, Clone)]
pub struct Gemini {
    pub generate: Uri,
    /// `streamGenerateContent?alt=sse`
    pub stream: Uri,
    pub count_tokens: Uri,
    pub embed: Uri,
    /// Vertex AI: the service account whose token authenticates requests.
    pub vertex: Option<Arc<VertexAuth>>,
    /// Vertex AI's Mistral OCR models (`mistral-ocr-...`): the model as Mistral's partner model
    /// (`publishers/mistralai/models/{model}:rawPredict`), where `/v1/ocr` calls go.
    pub mistral_ocr: Option<Uri>,
}

/// A Vertex AI service account and its cached access token.
#[derive(Debug)]
pub struct VertexAuth {
    pub account: ServiceAccount,
    pub token_uri: Uri,
    /// The token and when it stops being used (a minute before it expires).
    pub token: tokio::sync::Mutex<Option<(String, std::time::Instant)>>,
}

/// A Bedrock model's endpoints and signing material.
#[derive(Debug, Clone)]
pub struct Bedrock {
    /// `https://bedrock-runtime.{region}.amazonaws.com` (or `api_base`).
    pub base: String,
    /// The model id as a URL path segment (`:` and `/` percent-encoded).
    pub model_path: String,
    pub region: String,
    pub credentials: Credentials,
}

impl Bedrock {
    /// `{base}/model/{model}/{action}` (`converse`, `converse-stream`, `invoke`).
    pub fn uri(&self, action: &str) -> Option<Uri> {
        format!("{}/model/{}/{action}", self.base, self.model_path)
            .parse()
            .ok()
    }
}

fn uri(s: &str) -> Result<Uri, DeploymentError> {
    let u: Uri = s
        .parse()
        .map_err(|e: http::uri::InvalidUri| DeploymentError::BadUrl(s.into(), e.to_string()))?;
    match u.scheme_str() {
        Some("http") | Some("https") if u.host().is_some() => Ok(u),
        _ => Err(DeploymentError::BadUrl(
            s.into(),
            "expected an http:// or https:// URL".into(),
        )),
    }
}

fn set(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.is_empty())
}

/// Gemini (AI Studio): key from `api_key` or `GEMINI_API_KEY`.
pub fn gemini(
    p: &TianjiParams,
    model: &str,
    env: &Env,
) -> Result<(Gemini, String, Option<String>), DeploymentError> {
    let base = set(&p.api_base).or_else(|| env.get("GEMINI_API_BASE").filter(|b| !b.is_empty()));
    let url = |method: &str| vertex::gemini_url(base.as_deref(), model, method);
    let g = Gemini {
        generate: uri(&url("generateContent"))?,
        stream: uri(&format!("{}?alt=sse", url("streamGenerateContent")))?,
        count_tokens: uri(&url("countTokens"))?,
        embed: uri(&url("batchEmbedContents"))?,
        vertex: None,
        mistral_ocr: None,
    };
    let key = set(&p.api_key).or_else(|| env.get("GEMINI_API_KEY").filter(|k| !k.is_empty()));
    let shown = base.unwrap_or_else(|| "https://generativelanguage.googleapis.com".into());
    Ok((g, shown, key))
}

/// Vertex AI's location: the deployment's, else `VERTEXAI_LOCATION`, else `us-central1`.
pub fn vertex_location(p: &TianjiParams, env: &Env) -> String {
    set(&p.vertex_location)
        .or_else(|| env.get("VERTEXAI_LOCATION").filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "us-central1".into())
}

/// Vertex AI: project and location from the deployment or `VERTEXAI_PROJECT` /
/// `VERTEXAI_LOCATION`; credentials from `vertex_credentials` (JSON or a path) or
/// `GOOGLE_APPLICATION_CREDENTIALS`.
pub fn vertex(
    p: &TianjiParams,
    model: &str,
    env: &Env,
) -> Result<(Gemini, String), DeploymentError> {
    let creds = set(&p.vertex_credentials)
        .or_else(|| env.get("VERTEXAI_CREDENTIALS").filter(|s| !s.is_empty()))
        .or_else(|| {
            env.get("GOOGLE_APPLICATION_CREDENTIALS")
                .filter(|s| !s.is_empty())
        });
    let account = match creds {
        Some(c) => {
            let json = if c.trim_start().starts_with('{') {
                c
            } else {
                std::fs::read_to_string(&c).map_err(|e| {
                    DeploymentError::Credentials(format!("vertex_credentials file {c}: {e}"))
                })?
            };
            Some(
                ServiceAccount::from_json(&json)
                    .map_err(|e| DeploymentError::Credentials(e.to_string()))?,
            )
        }
        None => None,
    };
    let project = set(&p.vertex_project)
        .or_else(|| env.get("VERTEXAI_PROJECT").filter(|s| !s.is_empty()))
        .or_else(|| account.as_ref().and_then(|a| a.project_id.clone()))
        .ok_or_else(|| {
            DeploymentError::Credentials(
                "vertex_ai needs vertex_project (or VERTEXAI_PROJECT, or a project_id in the credentials)"
                    .into(),
            )
        })?;
    let location = vertex_location(p, env);
    let base = set(&p.api_base);
    let url =
        |method: &str| vertex::vertex_url(&location, &project, model, method, base.as_deref());
    let vertex = match account {
        Some(account) => {
            let token_uri = uri(&account.token_uri)?;
            Some(Arc::new(VertexAuth {
                account,
                token_uri,
                token: tokio::sync::Mutex::new(None),
            }))
        }
        None => None,
    };
    let g = Gemini {
        generate: uri(&url("generateContent"))?,
        stream: uri(&format!("{}?alt=sse", url("streamGenerateContent")))?,
        count_tokens: uri(&url("countTokens"))?,
        embed: uri(&url("predict"))?,
        vertex,
        mistral_ocr: match model.starts_with("mistral-ocr") {
            true => Some(uri(&vertex::publisher_url(
                &location,
                &project,
                "mistralai",
                model,
                "rawPredict",
                base.as_deref(),
            ))?),
            false => None,
        },
    };
    let shown = base.unwrap_or_else(|| format!("https://{location}-aiplatform.googleapis.com"));
    Ok((g, shown))
}

/// AWS region and credentials from the deployment or the standard AWS variables (`service`
/// names the provider in the error).
fn aws(
    p: &TianjiParams,
    env: &Env,
    service: &str,
) -> Result<(String, Credentials), DeploymentError> {
    let region = set(&p.aws_region_name)
        .or_else(|| env.get("AWS_REGION_NAME").filter(|s| !s.is_empty()))
        .or_else(|| env.get("AWS_REGION").filter(|s| !s.is_empty()))
        .or_else(|| env.get("AWS_DEFAULT_REGION").filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "us-east-1".into());
    let access = set(&p.aws_access_key_id)
        .or_else(|| env.get("AWS_ACCESS_KEY_ID").filter(|s| !s.is_empty()));
    let secret = set(&p.aws_secret_access_key)
        .or_else(|| env.get("AWS_SECRET_ACCESS_KEY").filter(|s| !s.is_empty()));
    let session = set(&p.aws_session_token)
        .or_else(|| env.get("AWS_SESSION_TOKEN").filter(|s| !s.is_empty()));
    let (access_key_id, secret_access_key) = match (access, secret) {
        (Some(a), Some(s)) => (a, s),
        _ if p.mock_response.is_some() => (String::new(), String::new()),
        _ => {
            return Err(DeploymentError::Credentials(format!(
                "{service} needs aws_access_key_id and aws_secret_access_key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
            )));
        }
    };
    Ok((
        region,
        Credentials {
            access_key_id,
            secret_access_key,
            session_token: session,
        },
    ))
}

/// `s` as one URL path segment (everything but unreserved characters percent-encoded).
fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Bedrock: credentials and region from the deployment or the standard AWS variables.
pub fn bedrock(p: &TianjiParams, model: &str, env: &Env) -> Result<Bedrock, DeploymentError> {
    let (region, credentials) = aws(p, env, "bedrock")?;
    let base = set(&p.api_base)
        .unwrap_or_else(|| format!("https://bedrock-runtime.{region}.amazonaws.com"))
        .trim_end_matches('/')
        .to_string();
    uri(&base)?;
    Ok(Bedrock {
        base,
        model_path: path_segment(model),
        region,
        credentials,
    })
}

/// SageMaker: `https://runtime.sagemaker.{region}.amazonaws.com/endpoints/{endpoint}/...` (or
/// `api_base`), signed with the deployment's or the standard AWS credentials.
pub fn sagemaker(
    p: &TianjiParams,
    endpoint: &str,
    env: &Env,
    messages_api: bool,
) -> Result<SageMaker, DeploymentError> {
    let service = if messages_api {
        "sagemaker_chat"
    } else {
        "sagemaker"
    };
    let (region, credentials) = aws(p, env, service)?;
    let base = set(&p.api_base)
        .unwrap_or_else(|| format!("https://runtime.sagemaker.{region}.amazonaws.com"))
        .trim_end_matches('/')
        .to_string();
    let at = format!("{base}/endpoints/{}", path_segment(endpoint));
    Ok(SageMaker {
        invoke: uri(&format!("{at}/invocations"))?,
        stream: uri(&format!("{at}/invocations-response-stream"))?,
        endpoint: endpoint.to_string(),
        region,
        credentials,
        messages_api,
    })
}

/// watsonx.ai: `{base}/ml/v1/text/chat?version=...` (`chat_stream`, `embeddings`; a
/// `deployment/<id>` model under `/ml/v1/deployments/<id>/`), authenticated by a `token` (or
/// `WATSONX_TOKEN`), a `WATSONX_ZENAPIKEY`, or the API key's IAM token. Returns the wire, the
/// base shown and the static `Authorization` value when there is one.
pub fn watsonx(
    p: &TianjiParams,
    model: &str,
    env: &Env,
) -> Result<(WatsonX, String, Option<String>), DeploymentError> {
    let get = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| env.get(n).filter(|v| !v.is_empty()))
    };
    let base =
        set(&p.api_base).or_else(|| get(&["WATSONX_API_BASE", "WATSONX_URL", "WX_URL", "WML_URL"]));
    let base = match base {
        Some(b) => b.trim_end_matches('/').to_string(),
        None if p.mock_response.is_some() => "https://watsonx.invalid".into(),
        None => return Err(DeploymentError::NeedsApiBase("watsonx".into())),
    };
    let version = set(&p.api_version).unwrap_or_else(|| watsonx::DEFAULT_API_VERSION.into());
    let q = format!("?version={version}");
    let (chat, chat_stream, scope) = match model.strip_prefix("deployment/") {
        Some(id) => {
            let at = format!("{base}/ml/v1/deployments/{}/text", path_segment(id));
            (
                format!("{at}/chat{q}"),
                format!("{at}/chat_stream{q}"),
                watsonx::Scope::default(),
            )
        }
        None => {
            let project = set(&p.project_id)
                .or_else(|| set(&p.watsonx_project))
                .or_else(|| get(&["WATSONX_PROJECT_ID", "WX_PROJECT_ID", "PROJECT_ID"]));
            let space = set(&p.space_id).or_else(|| {
                get(&[
                    "WATSONX_DEPLOYMENT_SPACE_ID",
                    "WATSONX_SPACE_ID",
                    "WX_SPACE_ID",
                    "SPACE_ID",
                ])
            });
            if project.is_none() && space.is_none() && p.mock_response.is_none() {
                return Err(DeploymentError::Credentials(
                    "watsonx needs project_id or space_id (or WATSONX_PROJECT_ID / WATSONX_SPACE_ID)"
                        .into(),
                ));
            }
            (
                format!("{base}/ml/v1/text/chat{q}"),
                format!("{base}/ml/v1/text/chat_stream{q}"),
                watsonx::Scope {
                    model_id: Some(model.to_string()),
                    project_id: project,
                    space_id: space,
                },
            )
        }
    };
    let embed = format!("{base}/ml/v1/text/embeddings{q}");
    let token = set(&p.token).or_else(|| get(&["WATSONX_TOKEN"]));
    let zen = get(&["WATSONX_ZENAPIKEY"]);
    let key = set(&p.api_key).or_else(|| get(&["WATSONX_APIKEY", "WATSONX_API_KEY", "WX_API_KEY"]));
    let (header, iam) = match (token, zen, key) {
        (Some(t), _, _) => (Some(format!("Bearer {t}")), None),
        (None, Some(z), _) => (Some(format!("ZenApiKey {z}")), None),
        (None, None, Some(k)) => {
            let url = get(&["WATSONX_IAM_URL"]).unwrap_or_else(|| watsonx::DEFAULT_IAM_URL.into());
            let iam = IamAuth {
                api_key: k,
                url: uri(&url)?,
                token: tokio::sync::Mutex::new(None),
            };
            (None, Some(iam))
        }
        (None, None, None) if p.mock_response.is_some() => (None, None),
        (None, None, None) => {
            return Err(DeploymentError::Credentials(
                "watsonx needs api_key (or WATSONX_APIKEY / WATSONX_API_KEY), a token (or WATSONX_TOKEN) or WATSONX_ZENAPIKEY"
                    .into(),
            ));
        }
    };
    let w = WatsonX {
        chat: uri(&chat)?,
        chat_stream: uri(&chat_stream)?,
        embed: uri(&embed)?,
        scope,
        iam,
    };
    Ok((w, base, header))
}

/// Cohere v2: `{base}/v2/chat` and `{base}/v2/embed`; key from `api_key` or `COHERE_API_KEY`.
pub fn cohere(
    p: &TianjiParams,
    env: &Env,
) -> Result<(Wire, String, Option<String>), DeploymentError> {
    let base = set(&p.api_base)
        .or_else(|| env.get("COHERE_API_BASE").filter(|b| !b.is_empty()))
        .unwrap_or_else(|| "https://api.cohere.com".into());
    let base = base.trim_end_matches('/').to_string();
    let root = base.strip_suffix("/v2").unwrap_or(&base).to_string();
    let w = Wire::Cohere {
        chat: uri(&format!("{root}/v2/chat"))?,
        embed: uri(&format!("{root}/v2/embed"))?,
        rerank: uri(&format!("{root}/v2/rerank"))?,
    };
    let key = set(&p.api_key).or_else(|| env.get("COHERE_API_KEY").filter(|k| !k.is_empty()));
    Ok((w, base, key))
}
