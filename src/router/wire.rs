//! How a native deployment is spoken to: its URLs and how requests are authenticated.
//! `api_base` only ever changes the scheme and host (and path prefix) of these URLs, never the
//! wire format.

use std::sync::Arc;

use http::Uri;

use super::deployment::DeploymentError;
use crate::config::{Env, TianjiParams};
use crate::providers::bedrock::sigv4::Credentials;
use crate::providers::gemini::vertex::{self, ServiceAccount};

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
    /// A provider this build has no translation for.
    Unsupported,
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

/// Bedrock: credentials and region from the deployment or the standard AWS variables.
pub fn bedrock(p: &TianjiParams, model: &str, env: &Env) -> Result<Bedrock, DeploymentError> {
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
            return Err(DeploymentError::Credentials(
                "bedrock needs aws_access_key_id and aws_secret_access_key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)".into(),
            ));
        }
    };
    let base = set(&p.api_base)
        .unwrap_or_else(|| format!("https://bedrock-runtime.{region}.amazonaws.com"))
        .trim_end_matches('/')
        .to_string();
    uri(&base)?;
    let model_path = model
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    Ok(Bedrock {
        base,
        model_path,
        region,
        credentials: Credentials {
            access_key_id,
            secret_access_key,
            session_token: session,
        },
    })
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
