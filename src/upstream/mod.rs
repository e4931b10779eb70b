//! Calling providers: one pooled client, timeouts, retries, error mapping, stream relay; and
//! fetching caller-given URLs under an SSRF guard (fetch.rs).

mod client;
pub mod fetch;
pub mod google_token;
pub mod ibm_token;
mod outbound;
pub mod relay;
pub mod sse;
pub mod token_exchange;

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::Value;

pub use client::{HttpClient, OtlpClient, build_client};
pub use outbound::Outbound;

use crate::body::Body;
use crate::router::Deployment;
use crate::util::status::type_for_status;

/// Largest upstream error body kept for the message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Why the upstream call did not produce a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("Request timed out after {0:.1}s waiting for the provider (timeout)")]
    Timeout(f64),
    #[error("Provider sent no response within {0:.1}s (stream_timeout)")]
    StreamTimeout(f64),
    /// The message (and so every log line and stored error) names no upstream address; only
    /// [`UpstreamError::message_for`] an admin shows `api_base`, redacted.
    #[error("Connection error calling the provider: {}", crate::secrets::redact_text(.detail))]
    Connect { api_base: String, detail: String },
    #[error("Error reading the provider response: {0}")]
    Body(String),
    #[error("{message}")]
    Status {
        status: StatusCode,
        message: String,
        kind: Option<Box<str>>,
        param: Option<Box<str>>,
        /// OpenAI error `code` of the error's class (`context_length_exceeded`, ...), when it
        /// has one: how the router treats it.
        code: Option<&'static str>,
        /// The provider's own OpenAI error `code`, when it sent one: the error body's `code`
        /// (else the status).
        provider_code: Option<Box<str>>,
        /// Boxed: rarely set, and it keeps every error small.
        retry_after: Option<Box<HeaderValue>>,
    },
}

impl UpstreamError {
    pub fn status(&self) -> StatusCode {
        match self {
            UpstreamError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            UpstreamError::StreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            UpstreamError::Connect { .. } | UpstreamError::Body(_) => StatusCode::BAD_GATEWAY,
            UpstreamError::Status { status, .. } => *status,
        }
    }
    pub fn error_type(&self) -> Cow<'_, str> {
        match self {
            UpstreamError::Status { kind: Some(k), .. } => Cow::Borrowed(k),
            UpstreamError::Timeout(_) | UpstreamError::StreamTimeout(_) => {
                Cow::Borrowed("timeout_error")
            }
            UpstreamError::Connect { .. } => Cow::Borrowed("api_connection_error"),
            other => Cow::Borrowed(type_for_status(other.status())),
        }
    }
    pub fn param(&self) -> Option<&str> {
        match self {
            UpstreamError::Status { param, .. } => param.as_deref(),
            _ => None,
        }
    }
    pub fn message(&self) -> Cow<'_, str> {
        self.message_for(false)
    }

    /// The message for a caller: an admin (`admin`) also sees which URL a connection error was
    /// for, redacted ([`crate::secrets::redact_url`]); anyone else sees no upstream address.
    pub fn message_for(&self, admin: bool) -> Cow<'_, str> {
        match self {
            UpstreamError::Status { message, .. } => Cow::Borrowed(message),
            UpstreamError::Connect { api_base, detail } if admin => Cow::Owned(format!(
                "Connection error calling {}: {}",
                crate::secrets::redact_url(api_base),
                crate::secrets::redact_text(detail)
            )),
            other => Cow::Owned(other.to_string()),
        }
    }
    pub fn code(&self) -> Option<&'static str> {
        match self {
            UpstreamError::Status { code, .. } => *code,
            _ => None,
        }
    }
    /// The `code` of the error body: the provider's own OpenAI error code, else the status.
    pub fn wire_code(&self) -> String {
        let provider = match self {
            UpstreamError::Status { provider_code, .. } => provider_code.as_deref(),
            _ => None,
        };
        crate::providers::errors::wire_code(provider, self.status().as_u16())
    }
    pub fn retry_after(&self) -> Option<&HeaderValue> {
        match self {
            UpstreamError::Status { retry_after, .. } => retry_after.as_deref(),
            _ => None,
        }
    }
    pub fn reason(&self) -> &'static str {
        match self {
            UpstreamError::Timeout(_) | UpstreamError::StreamTimeout(_) => "upstream_timeout",
            UpstreamError::Connect { .. } => "upstream_connect",
            UpstreamError::Body(_) => "upstream_body",
            UpstreamError::Status { .. } => "upstream_status",
        }
    }

    /// Build from a non-2xx answer of an OpenAI-shaped upstream: status, message and type as
    /// the provider sent them, plus the OpenAI `code` of errors that have one.
    pub async fn from_response(resp: Response<Incoming>) -> Self {
        let status = resp.status();
        let retry_after = retry_after(&resp);
        let body = error_body(resp).await;
        let (message, kind, param) = provider_message(&body, status);
        let (kind, param) = (kind.map(Into::into), param.map(Into::into));
        let f = crate::providers::errors::classify(status.as_u16(), "provider", &body, None);
        UpstreamError::Status {
            status,
            message,
            kind,
            param,
            code: f.code,
            provider_code: f.provider_code.map(Into::into),
            retry_after,
        }
    }

    /// Build from a non-2xx answer of a native provider: mapped to the OpenAI error (status,
    /// type, code) of its class, keeping the provider's message.
    pub async fn from_provider(resp: Response<Incoming>, provider: &str) -> Self {
        let status = resp.status();
        let retry_after = retry_after(&resp);
        let aws_type = resp
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = error_body(resp).await;
        let f = crate::providers::errors::classify(
            status.as_u16(),
            provider,
            &body,
            aws_type.as_deref(),
        );
        UpstreamError::Status {
            status: StatusCode::from_u16(f.status).unwrap_or(StatusCode::BAD_GATEWAY),
            message: f.message,
            kind: Some(f.kind.into()),
            param: f.param.map(Into::into),
            code: f.code,
            provider_code: f.provider_code.map(Into::into),
            retry_after,
        }
    }
}

/// The answer's `Retry-After`, boxed as [`UpstreamError::Status`] keeps it.
fn retry_after(resp: &Response<Incoming>) -> Option<Box<HeaderValue>> {
    resp.headers()
        .get(header::RETRY_AFTER)
        .cloned()
        .map(Box::new)
}

async fn error_body(resp: Response<Incoming>) -> Bytes {
    match http_body_util::Limited::new(resp.into_body(), MAX_ERROR_BODY)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => Bytes::new(),
    }
}

/// Pull `message`, `type`, `param` out of a provider error body (OpenAI and common variants).
fn provider_message(body: &[u8], status: StatusCode) -> (String, Option<String>, Option<String>) {
    let text = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    };
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let err = v.get("error").unwrap_or(&v);
        let message = err
            .get("message")
            .and_then(text)
            .or_else(|| v.get("message").and_then(text))
            .or_else(|| v.get("detail").and_then(text))
            .or_else(|| err.as_str().map(str::to_string));
        let kind = err.get("type").and_then(Value::as_str).map(str::to_string);
        let param = err.get("param").and_then(Value::as_str).map(str::to_string);
        if let Some(m) = message {
            return (m, kind, param);
        }
    }
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    if s.is_empty() {
        let reason = status.canonical_reason().unwrap_or("error");
        return (
            format!("Provider returned {} {reason}", status.as_u16()),
            None,
            None,
        );
    }
    (s.chars().take(2000).collect(), None, None)
}

/// Whether a failed attempt may be retried.
fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

fn backoff(attempt: u32, retry_after: Option<&HeaderValue>) -> Duration {
    let hinted = retry_after
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok());
    let base = Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6)));
    hinted.unwrap_or(base).min(Duration::from_secs(10))
}

/// POST `body` to `uri` of `dep`, retrying connection failures, 429 and 5xx up to
/// `dep.max_retries` times. Returns the last response (any status) or the connection error.
pub async fn post(
    client: &HttpClient,
    dep: &Deployment,
    uri: &Uri,
    body: &[Bytes],
    stream: bool,
) -> Result<Response<Incoming>, UpstreamError> {
    send_with(client, dep, Method::POST, uri, body, stream, &[]).await
}

/// The request [`send_with`] sends: `method` to `uri`, the JSON `body` (as its parts, not
/// copied), and every header the gateway sets: content type, accept (`stream`: an SSE stream),
/// user agent, the deployment's own (auth and static headers), then `extra` (client headers
/// passed through, tokens, signatures). `/utils/transform_request` shows this same request
/// without sending it.
pub fn request(
    dep: &Deployment,
    method: Method,
    uri: &Uri,
    body: &[Bytes],
    stream: bool,
    extra: &[(http::HeaderName, HeaderValue)],
) -> Request<Body> {
    let mut req = Request::new(Body::chunks(body.iter().cloned()));
    *req.method_mut() = method;
    *req.uri_mut() = uri.clone();
    let h = req.headers_mut();
    if !body.is_empty() {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    h.insert(
        header::ACCEPT,
        HeaderValue::from_static(if stream {
            "text/event-stream"
        } else {
            "application/json"
        }),
    );
    h.insert(
        header::USER_AGENT,
        HeaderValue::from_static(concat!("tianji/", env!("CARGO_PKG_VERSION"))),
    );
    for (k, v) in dep.headers.iter().chain(extra) {
        h.insert(k.clone(), v.clone());
    }
    req
}

/// [`post`] with any method (a body only when `body` is not empty) and `extra` headers after
/// the deployment's own (client headers that are passed through, request signatures).
pub async fn send_with(
    client: &HttpClient,
    dep: &Deployment,
    method: Method,
    uri: &Uri,
    body: &[Bytes],
    stream: bool,
    extra: &[(http::HeaderName, HeaderValue)],
) -> Result<Response<Incoming>, UpstreamError> {
    let mut attempt = 0;
    loop {
        // The request is built in its own scope and only the client's future is held while it
        // waits (a local whose storage lives across an await stays in the future's state, and
        // this future sits inside every upstream call's); the retry's wait likewise holds
        // nothing but its timer.
        let sent = {
            let mut req = request(dep, method.clone(), uri, body, stream, extra);
            crate::observability::traces::upstream_headers(req.headers_mut());
            client.request(req)
        };
        let last = attempt >= dep.max_retries;
        let wait = match sent.await {
            Ok(resp) if !last && retryable(resp.status()) => {
                tracing::debug!(deployment = %dep.id, attempt, "retrying after upstream status");
                backoff(attempt, resp.headers().get(header::RETRY_AFTER))
            }
            Ok(resp) => return Ok(resp),
            Err(e) if !last => {
                tracing::debug!(deployment = %dep.id, attempt, error = %e, "retrying after connection error");
                backoff(attempt, None)
            }
            Err(e) => {
                return Err(UpstreamError::Connect {
                    api_base: dep.api_base_shown.clone(),
                    detail: error_chain(&e),
                });
            }
        };
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// Send a streamed `body` (an upload) once: it cannot be replayed, so no retries.
/// `content_type` and `content_length` describe it as the client did.
pub async fn send_once(
    client: &HttpClient,
    dep: &Deployment,
    uri: &Uri,
    body: Body,
    content_type: HeaderValue,
    content_length: Option<u64>,
) -> Result<Response<Incoming>, UpstreamError> {
    let mut req = Request::new(body);
    *req.method_mut() = Method::POST;
    *req.uri_mut() = uri.clone();
    let h = req.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    if let Some(n) = content_length {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    h.insert(
        header::USER_AGENT,
        HeaderValue::from_static(concat!("tianji/", env!("CARGO_PKG_VERSION"))),
    );
    for (k, v) in dep.headers.iter() {
        h.insert(k.clone(), v.clone());
    }
    crate::observability::traces::upstream_headers(h);
    client
        .request(req)
        .await
        .map_err(|e| UpstreamError::Connect {
            api_base: dep.api_base_shown.clone(),
            detail: error_chain(&e),
        })
}

/// The whole body of a successful response, or the provider's error.
pub async fn ok_body(
    resp: Response<Incoming>,
) -> Result<(http::response::Parts, Bytes), UpstreamError> {
    if !resp.status().is_success() {
        // boxed: a successful answer's read does not carry (or copy) the error's state
        return Err(Box::pin(UpstreamError::from_response(resp)).await);
    }
    let (head, incoming) = resp.into_parts();
    let bytes = incoming
        .collect()
        .await
        .map_err(|e| UpstreamError::Body(e.to_string()))?
        .to_bytes();
    Ok((head, bytes))
}

/// The error for a successful answer whose body is not the JSON it must be (the parser's
/// message says where; the body itself is not repeated).
pub fn invalid_json(status: StatusCode, e: &serde_json::Error) -> UpstreamError {
    UpstreamError::Body(format!(
        "the provider answered {} with a body that is not valid JSON ({e})",
        status.as_u16()
    ))
}

/// How a failed answer becomes an error: as sent (OpenAI-shaped upstreams) or classified for a
/// native provider named here.
#[derive(Debug, Clone, Copy)]
pub enum Errors<'a> {
    AsSent,
    Native(&'a str),
}

impl Errors<'_> {
    /// The error of the failed answer `resp` (boxed: the calls that await this on their
    /// failure path do not carry, or copy, its state on their way to a success).
    async fn of(self, resp: Response<Incoming>) -> UpstreamError {
        match self {
            Errors::AsSent => Box::pin(UpstreamError::from_response(resp)).await,
            Errors::Native(p) => Box::pin(UpstreamError::from_provider(resp, p)).await,
        }
    }
}

/// POST `body` to `uri` of `dep` and read the whole successful answer within `dep.timeout`.
pub async fn call_whole(
    client: &HttpClient,
    dep: &Deployment,
    uri: &Uri,
    body: &[Bytes],
    extra: &[(http::HeaderName, HeaderValue)],
    errors: Errors<'_>,
) -> Result<(http::response::Parts, Bytes), UpstreamError> {
    let call = async {
        let resp = send_with(client, dep, Method::POST, uri, body, false, extra).await?;
        if !resp.status().is_success() {
            return Err(errors.of(resp).await);
        }
        ok_body(resp).await
    };
    tokio::time::timeout(dep.timeout, call)
        .await
        .map_err(|_| UpstreamError::Timeout(dep.timeout.as_secs_f64()))?
}

/// How long the head of an answer whose body is read as it comes may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadWithin {
    /// `dep.stream_timeout` (an SSE stream).
    StreamTimeout,
    /// `dep.timeout` (audio and other bodies passed on as they come).
    Timeout,
}

/// POST `body` to `uri` of `dep`: the successful head within `within`, its body read after as
/// it comes (a stream, audio).
pub async fn call_head(
    client: &HttpClient,
    dep: &Deployment,
    within: HeadWithin,
    uri: &Uri,
    body: &[Bytes],
    extra: &[(http::HeaderName, HeaderValue)],
    errors: Errors<'_>,
) -> Result<Response<Incoming>, UpstreamError> {
    let stream = within == HeadWithin::StreamTimeout;
    let call = send_with(client, dep, Method::POST, uri, body, stream, extra);
    let limit = if stream {
        dep.stream_timeout
    } else {
        dep.timeout
    };
    let resp = tokio::time::timeout(limit, call).await.map_err(|_| {
        let secs = limit.as_secs_f64();
        if stream {
            UpstreamError::StreamTimeout(secs)
        } else {
            UpstreamError::Timeout(secs)
        }
    })??;
    if !resp.status().is_success() {
        return Err(errors.of(resp).await);
    }
    Ok(resp)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_provider_messages() {
        let (m, k, p) = provider_message(
            br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
            StatusCode::TOO_MANY_REQUESTS,
        );
        assert_eq!(
            (m.as_str(), k.as_deref(), p),
            ("Rate limit reached", Some("requests"), None)
        );
        assert_eq!(
            provider_message(br#"{"detail":"nope"}"#, StatusCode::BAD_REQUEST).0,
            "nope"
        );
        assert_eq!(
            provider_message(b"plain text", StatusCode::BAD_GATEWAY).0,
            "plain text"
        );
        assert_eq!(
            provider_message(b"", StatusCode::SERVICE_UNAVAILABLE).0,
            "Provider returned 503 Service Unavailable"
        );
    }

    #[test]
    fn backoff_honours_retry_after_with_a_cap() {
        assert_eq!(
            backoff(0, Some(&HeaderValue::from_static("2"))),
            Duration::from_secs(2)
        );
        assert_eq!(
            backoff(0, Some(&HeaderValue::from_static("999"))),
            Duration::from_secs(10)
        );
        assert_eq!(backoff(1, None), Duration::from_millis(200));
    }
}
