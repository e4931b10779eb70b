//! What the access-token caches share (Vertex AI's in `google_token`, watsonx.ai's IAM tokens in
//! `ibm_token`): a form POSTed to a token endpoint, the token kept until a minute before it
//! expires, one exchange at a time (callers waiting meanwhile get the fresh token), and neither
//! the credential nor the token ever logged or put in an error.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::BodyExt;

use super::{HttpClient, UpstreamError};
use crate::body::Body;

/// Tokens are dropped this long before their issuer says they expire.
const MARGIN: Duration = Duration::from_secs(60);

/// A cached token and when it stops being used.
pub type Cached = tokio::sync::Mutex<Option<(String, Instant)>>;

/// An authentication error of the token exchange.
pub fn failed(status: StatusCode, message: String) -> UpstreamError {
    UpstreamError::Status {
        status,
        message,
        kind: Some("authentication_error".into()),
        param: None,
        code: None,
        provider_code: None,
        retry_after: None,
    }
}

/// `Authorization: Bearer <token>` from `cache`, or from `fetch` (the token and its lifetime
/// in seconds) when there is none or it is about to expire.
pub async fn bearer<F, Fut>(
    cache: &Cached,
    who: &str,
    fetch: F,
) -> Result<HeaderValue, UpstreamError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(String, u64), UpstreamError>>,
{
    let mut cached = cache.lock().await;
    if let Some((token, until)) = cached.as_ref()
        && Instant::now() < *until
    {
        return header_value(token, who);
    }
    let (token, expires_in) = fetch().await?;
    let until = Instant::now() + Duration::from_secs(expires_in).saturating_sub(MARGIN);
    let value = header_value(&token, who)?;
    *cached = Some((token, until));
    Ok(value)
}

/// POST the form `body` to `uri`; the successful answer's bytes, or the error (`who` names the
/// issuer; the answer's own text says what was wrong, never the credential).
pub async fn post_form(
    client: &HttpClient,
    uri: &Uri,
    body: Bytes,
    who: &str,
) -> Result<Bytes, UpstreamError> {
    let mut req = Request::new(Body::full(body));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = uri.clone();
    let headers = req.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let resp = client
        .request(req)
        .await
        .map_err(|e| UpstreamError::Connect {
            api_base: uri.to_string(),
            detail: e.to_string(),
        })?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| UpstreamError::Body(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes);
        return Err(failed(
            if status.is_server_error() {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::UNAUTHORIZED
            },
            format!(
                "{who} token exchange failed ({}): {}",
                status.as_u16(),
                text.chars().take(500).collect::<String>()
            ),
        ));
    }
    Ok(bytes)
}

fn header_value(token: &str, who: &str) -> Result<HeaderValue, UpstreamError> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        failed(
            StatusCode::BAD_GATEWAY,
            format!("{who} returned a token that is not a valid header value"),
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}
