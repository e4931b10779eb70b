//! watsonx.ai IAM access tokens: the deployment's API key exchanged at IBM Cloud's IAM
//! endpoint (`WATSONX_IAM_URL`), cached per deployment and refreshed a minute before it
//! expires. One exchange at a time per deployment; callers waiting meanwhile get the fresh
//! token. Neither the key nor the token is ever logged or put in an error.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::BodyExt;

use super::{HttpClient, UpstreamError};
use crate::body::Body;
use crate::providers::watsonx;
use crate::router::wire::IamAuth;

/// Tokens are dropped this long before IBM says they expire.
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

/// `Authorization: Bearer <token>` for a watsonx.ai request.
pub async fn bearer(client: &HttpClient, auth: &IamAuth) -> Result<HeaderValue, UpstreamError> {
    let mut cached = auth.token.lock().await;
    if let Some((token, until)) = cached.as_ref()
        && Instant::now() < *until
    {
        return header_value(token);
    }
    let body = Bytes::from(watsonx::iam_form(&auth.api_key));
    let mut req = Request::new(Body::full(body));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = auth.url.clone();
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
            api_base: auth.url.to_string(),
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
        // IBM's error body names the problem (`BXNIM0415E: Provided API key could not be
        // found`), never the key
        let text = String::from_utf8_lossy(&bytes);
        return Err(failed(
            if status.is_server_error() {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::UNAUTHORIZED
            },
            format!(
                "watsonx IAM token exchange failed ({}): {}",
                status.as_u16(),
                text.chars().take(500).collect::<String>()
            ),
        ));
    }
    let now = crate::util::clock::now_whole_secs();
    let (token, expires_in) = watsonx::iam_token(&bytes, now).map_err(|e| {
        failed(
            StatusCode::BAD_GATEWAY,
            format!("watsonx IAM token response: {e}"),
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
            "IBM IAM returned a token that is not a valid header value".into(),
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}
