//! Vertex AI access tokens: a service-account JWT exchanged at the account's `token_uri`, cached
//! per deployment and refreshed a minute before it expires. One exchange at a time per account;
//! callers waiting meanwhile get the fresh token.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::BodyExt;

use super::{HttpClient, UpstreamError};
use crate::body::Body;
use crate::providers::gemini::vertex;
use crate::router::wire::VertexAuth;

/// Tokens are dropped this long before Google says they expire.
const MARGIN: Duration = Duration::from_secs(60);

fn failed(status: StatusCode, message: String) -> UpstreamError {
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

/// `Authorization: Bearer <token>` for a Vertex AI request.
pub async fn bearer(client: &HttpClient, auth: &VertexAuth) -> Result<HeaderValue, UpstreamError> {
    let mut cached = auth.token.lock().await;
    if let Some((token, until)) = cached.as_ref()
        && Instant::now() < *until
    {
        return header_value(token);
    }
    let now = crate::util::clock::now_whole_secs();
    let assertion = auth.account.assertion(now).map_err(|e| {
        failed(
            StatusCode::UNAUTHORIZED,
            format!("Vertex AI credentials: {e}"),
        )
    })?;
    let body = Bytes::from(vertex::token_request_body(&assertion));
    let mut req = Request::new(Body::full(body));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = auth.token_uri.clone();
    req.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let resp = client
        .request(req)
        .await
        .map_err(|e| UpstreamError::Connect {
            api_base: auth.token_uri.to_string(),
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
                "Vertex AI token exchange failed ({}): {}",
                status.as_u16(),
                text.chars().take(500).collect::<String>()
            ),
        ));
    }
    let (token, expires_in) = vertex::parse_token_response(&bytes).map_err(|e| {
        failed(
            StatusCode::BAD_GATEWAY,
            format!("Vertex AI token response: {e}"),
        )
    })?;
    let until = Instant::now() + Duration::from_secs(expires_in).saturating_sub(MARGIN);
    let value = header_value(&token)?;
    *cached = Some((token, until));
    Ok(value)
}

fn header_value(token: &str) -> Result<HeaderValue, UpstreamError> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        failed(
            StatusCode::BAD_GATEWAY,
            "Vertex AI returned a token that is not a valid header value".into(),
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}
