//! Which video API a deployment speaks and the calls that read a video back: OpenAI's (OpenAI,
//! Azure, any OpenAI-compatible server: Sora), Veo's long-running operations (Gemini API,
//! Vertex AI) and RunwayML's tasks.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::VideoError;
use crate::body::Body;
use crate::error::GatewayError;
use crate::providers::video::{self, Kept, Source, State};
use crate::router::Deployment;
use crate::router::wire::Wire;
use crate::state::AppState;
use crate::upstream::{self, UpstreamError};

/// A deployment's video API.
#[derive(Debug, Clone)]
pub enum Family {
    /// `{base}/videos...` in OpenAI's format.
    OpenAi { base: String },
    /// The Gemini API: `{base}/v1beta/models/{model}:predictLongRunning`, operations at
    /// `{base}/v1beta/{name}`.
    Gemini { base: String, model_url: String },
    /// Vertex AI: `{model_url}:predictLongRunning`, `{model_url}:fetchPredictOperation`.
    Vertex { model_url: String },
    /// RunwayML: `{base}/text_to_video`, `/image_to_video`, `/tasks/{id}`.
    Runway,
    /// A deployment with `mock_response`: a finished video at once, no provider called.
    Mock,
}

impl Family {
    pub fn of(dep: &Deployment) -> Result<Family, VideoError> {
        let not_video =
            || VideoError::NotVideo(dep.model_name.clone(), dep.provider.name().to_string());
        if dep.mock_response.is_some() {
            return Ok(Family::Mock);
        }
        if dep.provider.name() == "runwayml" {
            return Ok(Family::Runway);
        }
        match &dep.wire {
            Wire::Gemini(g) => {
                let generate = g.generate.to_string();
                let model_url = generate
                    .strip_suffix(":generateContent")
                    .ok_or_else(not_video)?
                    .to_string();
                if g.vertex.is_some() || dep.provider.name().starts_with("vertex") {
                    return Ok(Family::Vertex { model_url });
                }
                let base = model_url
                    .split_once("/v1beta/")
                    .map(|(b, _)| b.to_string())
                    .ok_or_else(not_video)?;
                Ok(Family::Gemini { base, model_url })
            }
            Wire::OpenAi => {
                let ep = dep.endpoints.as_ref().ok_or_else(not_video)?;
                let base = if dep.provider.name() == "azure" && !ep.base.ends_with("/openai/v1") {
                    // Sora on Azure is served by the v1 API
                    format!("{}/v1", ep.base)
                } else {
                    ep.base.clone()
                };
                Ok(Family::OpenAi { base })
            }
            _ => Err(not_video()),
        }
    }
}

pub fn uri(s: &str) -> Result<Uri, GatewayError> {
    s.parse::<Uri>()
        .map_err(|e| UpstreamError::Body(format!("bad provider URL: {e}")).into())
}

/// Auth headers beyond the deployment's own (Vertex AI's access token).
pub async fn extra_auth(
    state: &AppState,
    dep: &Deployment,
) -> Result<Vec<(HeaderName, HeaderValue)>, GatewayError> {
    match &dep.wire {
        Wire::Gemini(g) => match &g.vertex {
            Some(auth) => {
                let v = upstream::google_token::bearer(&state.client, auth).await?;
                Ok(vec![(header::AUTHORIZATION, v)])
            }
            None => Ok(Vec::new()),
        },
        _ => Ok(Vec::new()),
    }
}

/// The provider's error for a failed answer.
pub async fn failed(dep: &Deployment, resp: Response<Incoming>) -> GatewayError {
    match dep.wire {
        Wire::OpenAi => UpstreamError::from_response(resp).await.into(),
        _ => UpstreamError::from_provider(resp, dep.provider.name())
            .await
            .into(),
    }
}

/// Call `uri` of `dep` and read the whole successful JSON answer.
pub async fn call_json(
    state: &AppState,
    dep: &Deployment,
    method: Method,
    uri: &Uri,
    body: Option<&Value>,
) -> Result<Value, GatewayError> {
    let extra = extra_auth(state, dep).await?;
    let bytes = match body {
        Some(b) => vec![Bytes::from(
            serde_json::to_vec(b).map_err(|e| UpstreamError::Body(e.to_string()))?,
        )],
        None => Vec::new(),
    };
    let call = async {
        let resp =
            upstream::send_with(&state.client, dep, method, uri, &bytes, false, &extra).await?;
        if !resp.status().is_success() {
            return Err(failed(dep, resp).await);
        }
        let status = resp.status();
        let (_, out) = upstream::ok_body(resp).await?;
        if out.is_empty() || status == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&out).map_err(|e| upstream::invalid_json(status, &e).into())
    };
    tokio::time::timeout(dep.timeout, call)
        .await
        .map_err(|_| UpstreamError::Timeout(dep.timeout.as_secs_f64()))?
}

/// What the provider says of the video `kept` now (Veo, RunwayML).
pub async fn state_of(
    state: &AppState,
    dep: &Deployment,
    family: &Family,
    kept: &Kept,
) -> Result<State, GatewayError> {
    match family {
        Family::Gemini { base, .. } => {
            let op = call_json(
                state,
                dep,
                Method::GET,
                &uri(&format!("{base}/v1beta/{}", kept.op))?,
                None,
            )
            .await?;
            Ok(video::veo::state(&op))
        }
        Family::Vertex { model_url } => {
            let body = json!({"operationName": kept.op});
            let op = call_json(
                state,
                dep,
                Method::POST,
                &uri(&format!("{model_url}:fetchPredictOperation"))?,
                Some(&body),
            )
            .await?;
            Ok(video::veo::state(&op))
        }
        Family::Runway => {
            let u = runway_uri(dep, &format!("/tasks/{}", kept.op))?;
            let task = call_json(state, dep, Method::GET, &u, None).await?;
            Ok(video::runway::state(&task))
        }
        Family::Mock => Ok(mock_state()),
        Family::OpenAi { .. } => Err(VideoError::BadId.into()),
    }
}

/// A mock deployment's video: finished, its bytes a short text.
pub fn mock_state() -> State {
    State {
        status: video::Status::Completed,
        progress: 100,
        completed_at: Some(crate::util::clock::now_whole_secs()),
        error: None,
        source: Some(Source::Inline {
            mime: "video/mp4".into(),
            // "tianji mock video"
            base64: "dGlhbmppIG1vY2sgdmlkZW8=".into(),
        }),
    }
}

pub fn runway_uri(dep: &Deployment, path: &str) -> Result<Uri, GatewayError> {
    dep.uri(path)
        .ok_or_else(|| VideoError::NotVideo(dep.model_name.clone(), "runwayml".into()).into())
}

/// A finished video's bytes from where the provider put them, streamed (Vertex AI's inline
/// answer is already whole).
pub async fn download(
    state: &AppState,
    dep: &Deployment,
    family: &Family,
    source: Source,
) -> Result<Response<Body>, GatewayError> {
    match source {
        Source::Inline { mime, base64 } => {
            let data = base64_simd::STANDARD
                .decode_to_vec(base64.as_bytes())
                .map_err(|e| UpstreamError::Body(format!("the video is not base64: {e}")))?;
            let mut out = Response::new(Body::full(data));
            if let Ok(v) = HeaderValue::from_str(&mime) {
                out.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            Ok(out)
        }
        Source::Gcs(gs) => {
            let url = video::veo::gcs_media_url(&gs)
                .ok_or_else(|| UpstreamError::Body(format!("bad Cloud Storage URI {gs}")))?;
            let auth = extra_auth(state, dep).await?;
            get_stream(state, dep, &url, &auth).await
        }
        Source::Url(url) => {
            // the provider's own host gets the deployment's key (the Gemini API's files); a CDN
            // gets no credentials
            let same_host = match family {
                Family::Gemini { base, .. } => host_of(&url) == host_of(base),
                _ => false,
            };
            let auth: Vec<(HeaderName, HeaderValue)> = if same_host {
                dep.headers.clone()
            } else {
                Vec::new()
            };
            get_stream(state, dep, &url, &auth).await
        }
    }
}

fn host_of(url: &str) -> Option<String> {
    url.parse::<Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.as_str().to_string()))
}

/// Redirects followed when downloading (without credentials after the first hop).
const MAX_REDIRECTS: usize = 3;

/// GET `url` and pass its body on as it comes.
pub async fn get_stream(
    state: &AppState,
    dep: &Deployment,
    url: &str,
    auth: &[(HeaderName, HeaderValue)],
) -> Result<Response<Body>, GatewayError> {
    let mut url = url.to_string();
    let mut headers = auth.to_vec();
    for _ in 0..=MAX_REDIRECTS {
        let mut req = Request::new(Body::empty());
        *req.uri_mut() = uri(&url)?;
        for (k, v) in &headers {
            req.headers_mut().insert(k.clone(), v.clone());
        }
        let resp = tokio::time::timeout(dep.timeout, state.client.request(req))
            .await
            .map_err(|_| UpstreamError::Timeout(dep.timeout.as_secs_f64()))?
            .map_err(|e| UpstreamError::Connect {
                api_base: dep.api_base_shown.clone(),
                detail: e.to_string(),
            })?;
        if resp.status().is_redirection()
            && let Some(next) = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
        {
            url = next.to_string();
            headers.clear();
            continue;
        }
        if !resp.status().is_success() {
            return Err(failed(dep, resp).await);
        }
        return Ok(crate::managed::streamed(resp));
    }
    Err(UpstreamError::Body(format!(
        "more than {MAX_REDIRECTS} redirects downloading the video"
    ))
    .into())
}
