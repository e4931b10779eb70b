//! Provider errors classified into the OpenAI error the gateway returns, keeping the provider's
//! message.
//!
//! [`classify`] reads the message out of the provider's error body (OpenAI/Azure
//! `{error: {message, type, param, code}}`, Anthropic `{type: "error", error: {type, message}}`,
//! Gemini/Vertex `{error: {code, message, status}}` (also inside a one-element list), Bedrock
//! `{message}`/`{Message}` with the exception in the `x-amzn-errortype` header or `__type`,
//! Cohere `{message}`, Mistral `{message}` or a `detail` list, watsonx.ai `{errors: [{code,
//! message}]}`, SageMaker `{Message}`) and sorts it into the OpenAI
//! class clients and SDKs act on: context window exceeded and content policy (400 with OpenAI's
//! codes, so `openai.BadRequestError` handlers and LiteLLM-style fallbacks see them), auth,
//! rate limit, not found, server error.
//!
//! The marker strings follow LiteLLM's `exception_mapping_utils.py`
//! (`is_error_str_context_window_exceeded`, `is_azure_content_policy_violation_error`,
//! `is_error_str_rate_limit`, and the per-provider `_map_*_exception` functions).
//!
//! Decisions: Anthropic `529 overloaded_error` becomes **503** `api_error`, not 429: the
//! provider is out of capacity, the client is within its limits, and 503 is what OpenAI SDKs
//! and our router retry as a server error (LiteLLM raises an `InternalServerError`). A status
//! below 400 with an error body becomes 502. 408 keeps its status as `timeout_error`.

use http::StatusCode;
use serde_json::Value;

/// A provider failure as the OpenAI error to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderFailure {
    /// HTTP status to answer with.
    pub status: u16,
    /// The provider's message (or a short description when it sent none).
    pub message: String,
    /// OpenAI error `type`: `invalid_request_error`, `authentication_error`,
    /// `permission_error`, `rate_limit_error`, `not_found_error`, `timeout_error`, `api_error`.
    pub kind: &'static str,
    /// OpenAI error `code` of the class, when it has one (`context_length_exceeded`,
    /// `content_policy_violation`, `rate_limit_exceeded`, `insufficient_quota`): how the
    /// router treats the error (fallbacks), whatever the provider called it.
    pub code: Option<&'static str>,
    /// The request parameter the provider blamed, when it said.
    pub param: Option<String>,
    /// The provider's own OpenAI error `code` (a word such as `context_length_exceeded` or
    /// `content_filter`; numbers are statuses, not codes), when its body had one.
    pub provider_code: Option<String>,
}

impl ProviderFailure {
    /// The `code` of the error body the client gets: the provider's own OpenAI error code when
    /// it sent one, else the status as a string (LiteLLM's `code`).
    pub fn wire_code(&self) -> String {
        wire_code(self.provider_code.as_deref(), self.status)
    }

    /// The OpenAI error object (`message`, `type`, `param`, `code`) of this failure, as a
    /// stream's error event carries it.
    pub fn error_object(&self) -> Value {
        serde_json::json!({"message": self.message, "type": self.kind, "param": self.param,
            "code": self.wire_code()})
    }
}

/// The `code` of an error body: `provider_code` (an OpenAI error code word) when there is one,
/// else `status` as a string.
pub fn wire_code(provider_code: Option<&str>, status: u16) -> String {
    match provider_code {
        Some(c) if is_code_word(c) => c.to_string(),
        _ => status.to_string(),
    }
}

/// An OpenAI-style error code (`rate_limit_exceeded`), not a number (Gemini's `429`,
/// Mistral's `"3505"`).
fn is_code_word(c: &str) -> bool {
    !c.is_empty() && !c.bytes().all(|b| b.is_ascii_digit())
}

/// A failure reported inside a provider's stream (its error event's JSON, with the status it
/// implies, or 500), classified like a whole answer's error.
pub fn in_stream(status: u16, provider: &str, event: &Value) -> ProviderFailure {
    classify(status, provider, event.to_string().as_bytes(), None)
}

/// Longest plain-text body kept as the message.
const MAX_TEXT: usize = 2000;

/// Messages that mean the prompt does not fit the model's context window.
const CONTEXT_MARKERS: &[&str] = &[
    "context length",
    "context window",
    "maximum context",
    "context limit",
    "prompt is too long",
    "prompt: length",
    "too many tokens",
    "too many input tokens",
    "input is too long",
    "exceeds the maximum number of tokens",
    "input tokens exceed the configured limit",
    "exceeds the available context size",
    "`inputs` tokens + `max_new_tokens` must be",
    "string too long. expected a string with maximum length",
    "request payload size exceeds",
];

/// Messages that mean a safety system refused the request or the answer.
const CONTENT_POLICY_MARKERS: &[&str] = &[
    "content_policy_violation",
    "content policy",
    "content management policy",
    "content filtering policy",
    "content_filter_policy",
    "responsibleaipolicyviolation",
    "safety system",
    "the response was blocked",
    "violating our usage policy",
    "the model produced invalid content",
];

/// Messages that mean the credentials were refused.
const AUTH_MARKERS: &[&str] = &[
    "invalid api key",
    "incorrect api key",
    "invalid x-api-key",
    "api key not valid",
    "invalid api token",
    "no api key provided",
    "the security token included in the request is invalid",
    "unable to locate credentials",
];

/// Messages that mean a rate limit or quota was hit.
const RATE_LIMIT_MARKERS: &[&str] = &[
    "rate limit",
    "rate_limit",
    "rate-limit",
    "too many requests",
    "service tier capacity exceeded",
    "resource exhausted",
    "resource_exhausted",
    "quota exceeded",
];

/// What an error body says, whatever its provider's shape.
#[derive(Debug, Default)]
struct Fields {
    message: Option<String>,
    /// Provider error type (`error.type`, Bedrock `__type`).
    kind: Option<String>,
    /// `error.code` as text (OpenAI strings, Gemini numbers).
    code: Option<String>,
    /// Gemini/Vertex `error.status` (`INVALID_ARGUMENT`, `RESOURCE_EXHAUSTED`, ...).
    status: Option<String>,
    /// Azure `innererror.code`.
    inner: Option<String>,
    param: Option<String>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A FastAPI/pydantic `detail` list (Mistral 422s) as `loc: msg; ...`.
fn detail(v: &Value) -> Option<String> {
    let Value::Array(items) = v else {
        return text(v);
    };
    let parts: Vec<String> = items
        .iter()
        .map(|d| {
            let msg = d.get("msg").and_then(Value::as_str).unwrap_or("invalid");
            let loc: Vec<String> = d
                .get("loc")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(text)
                .collect();
            if loc.is_empty() {
                msg.to_string()
            } else {
                format!("{}: {msg}", loc.join("."))
            }
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn message_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o
            .get("detail")
            .and_then(detail)
            .or_else(|| Some(v.to_string())),
        Value::Array(_) => detail(v),
        _ => None,
    }
}

fn fields(body: &[u8]) -> Option<Fields> {
    let v: Value = serde_json::from_slice(body).ok()?;
    // Vertex sends some errors as a one-element list
    let v = match v {
        Value::Array(mut a) if !a.is_empty() => a.swap_remove(0),
        other => other,
    };
    // watsonx.ai: `{"errors": [{"code", "message"}], "status_code": 400}`
    let first_of_errors = v
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|a| a.first());
    let err = match (v.get("error"), first_of_errors) {
        (Some(e @ Value::Object(_)), _) => e,
        (_, Some(e @ Value::Object(_))) => e,
        _ => &v,
    };
    let message = err
        .get("message")
        .and_then(message_of)
        .or_else(|| v.get("error").and_then(Value::as_str).map(str::to_string))
        .or_else(|| v.get("Message").and_then(text))
        .or_else(|| v.get("detail").and_then(detail));
    let inner = err
        .get("innererror")
        .or_else(|| err.get("inner_error"))
        .and_then(|i| i.get("code"))
        .and_then(text);
    Some(Fields {
        message,
        kind: err
            .get("type")
            .and_then(text)
            .or_else(|| v.get("__type").and_then(text)),
        code: err.get("code").and_then(text),
        status: err
            .get("status")
            .and_then(Value::as_str)
            .map(str::to_string),
        inner,
        param: err.get("param").and_then(Value::as_str).map(str::to_string),
    })
}

/// The AWS exception name from `x-amzn-errortype` (`ValidationException:http://...`) or
/// `__type` (`com.amazon...#ValidationException`).
fn aws_type(raw: &str) -> &str {
    let name = raw.split(':').next().unwrap_or(raw);
    name.rsplit('#').next().unwrap_or(name).trim()
}

fn any(haystack: &str, markers: &[&str]) -> bool {
    markers.iter().any(|m| haystack.contains(m))
}

/// Which OpenAI class an error belongs to.
enum Class {
    Auth,
    Permission,
    Overloaded,
    RateLimit,
    Context,
    ContentPolicy,
    NotFound,
    Timeout,
    Other,
}

fn is_context(lower: &str, code: &str) -> bool {
    // a parameter over its length limit (OpenAI `user`, a 10 MB content string) is not the
    // context window
    if code == "string_above_max_length"
        || lower.contains("string_above_max_length")
        || (lower.contains("invalid 'user'") && lower.contains("string too long"))
    {
        return false;
    }
    any(lower, CONTEXT_MARKERS)
        || (lower.contains("maximum input length is") && lower.contains("tokens"))
        || (lower.contains("current length is") && lower.contains("while limit is"))
}

fn class(status: u16, f: &Fields, aws: Option<&str>, lower: &str) -> Class {
    let kind = f.kind.as_deref().map(aws_type).unwrap_or("");
    let code = f.code.as_deref().unwrap_or("");
    match aws.unwrap_or(kind) {
        "UnrecognizedClientException" | "InvalidSignatureException" | "ExpiredTokenException" => {
            return Class::Auth;
        }
        "AccessDeniedException" => return Class::Permission,
        "ThrottlingException"
        | "TooManyRequestsException"
        | "ServiceQuotaExceededException"
        | "ModelNotReadyException" => return Class::RateLimit,
        "ResourceNotFoundException" => return Class::NotFound,
        "ModelTimeoutException" => return Class::Timeout,
        _ => {}
    }
    match f.status.as_deref() {
        Some("UNAUTHENTICATED") => return Class::Auth,
        Some("PERMISSION_DENIED") => return Class::Permission,
        Some("RESOURCE_EXHAUSTED") => return Class::RateLimit,
        Some("NOT_FOUND") => return Class::NotFound,
        _ => {}
    }
    if matches!(status, 401 | 498) || kind == "authentication_error" || code == "invalid_api_key" {
        return Class::Auth;
    }
    if status == 403 || kind == "permission_error" {
        return Class::Permission;
    }
    if any(lower, AUTH_MARKERS) {
        return Class::Auth;
    }
    if status == 529 || kind == "overloaded_error" {
        return Class::Overloaded;
    }
    if status == 429
        || kind == "rate_limit_error"
        || matches!(code, "rate_limit_exceeded" | "insufficient_quota" | "429")
        || any(lower, RATE_LIMIT_MARKERS)
    {
        return Class::RateLimit;
    }
    if code == "context_length_exceeded" || is_context(lower, code) {
        return Class::Context;
    }
    if matches!(code, "content_filter" | "content_policy_violation")
        || f.inner.as_deref() == Some("ResponsibleAIPolicyViolation")
        || any(lower, CONTENT_POLICY_MARKERS)
    {
        return Class::ContentPolicy;
    }
    if status == 404
        || kind == "not_found_error"
        || matches!(code, "model_not_found" | "DeploymentNotFound")
    {
        return Class::NotFound;
    }
    if status == 408 {
        return Class::Timeout;
    }
    Class::Other
}

/// Classify a provider's error answer: `status` as received, `provider` the provider's name
/// (used when the body says nothing), `body` the raw error body, `error_type_header` the
/// `x-amzn-errortype` header for Bedrock/SageMaker.
pub fn classify(
    status: u16,
    provider: &str,
    body: &[u8],
    error_type_header: Option<&str>,
) -> ProviderFailure {
    let f = fields(body).unwrap_or_default();
    let message = match &f.message {
        Some(m) if !m.trim().is_empty() => m.clone(),
        _ => {
            let raw = String::from_utf8_lossy(body);
            let raw = raw.trim();
            if raw.is_empty() {
                let reason = StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("error");
                format!("{provider} returned {status} {reason}")
            } else {
                raw.chars().take(MAX_TEXT).collect()
            }
        }
    };
    let aws = error_type_header.map(aws_type).filter(|t| !t.is_empty());
    let lower = message.to_lowercase();
    let (status, kind, code) = match class(status, &f, aws, &lower) {
        Class::Auth => (401, "authentication_error", None),
        Class::Permission => (403, "permission_error", None),
        Class::Overloaded => (503, "api_error", None),
        Class::RateLimit => {
            let code = if f.code.as_deref() == Some("insufficient_quota") {
                "insufficient_quota"
            } else {
                "rate_limit_exceeded"
            };
            (429, "rate_limit_error", Some(code))
        }
        Class::Context => (
            400,
            "invalid_request_error",
            Some("context_length_exceeded"),
        ),
        Class::ContentPolicy => (
            400,
            "invalid_request_error",
            Some("content_policy_violation"),
        ),
        Class::NotFound => (404, "not_found_error", None),
        Class::Timeout => (408, "timeout_error", None),
        Class::Other if status >= 500 => (status, "api_error", None),
        Class::Other if status >= 400 => (status, "invalid_request_error", None),
        Class::Other => (502, "api_error", None),
    };
    ProviderFailure {
        status,
        message,
        kind,
        code,
        param: f.param,
        provider_code: f.code.filter(|c| is_code_word(c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(status: u16, provider: &str, body: &str) -> ProviderFailure {
        classify(status, provider, body.as_bytes(), None)
    }

    #[test]
    fn openai_context_window() {
        let f = c(
            400,
            "openai",
            r#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
        );
        assert_eq!(
            (f.status, f.kind, f.code, f.param.as_deref()),
            (
                400,
                "invalid_request_error",
                Some("context_length_exceeded"),
                Some("messages")
            )
        );
        assert!(f.message.starts_with("This model's maximum context length"));
    }

    #[test]
    fn anthropic_prompt_too_long_and_overloaded() {
        let f = c(
            400,
            "anthropic",
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 215000 tokens > 200000 maximum"}}"#,
        );
        assert_eq!((f.status, f.code), (400, Some("context_length_exceeded")));
        assert_eq!(
            f.message,
            "prompt is too long: 215000 tokens > 200000 maximum"
        );
        let f = c(
            529,
            "anthropic",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!(
            (f.status, f.kind, f.message.as_str()),
            (503, "api_error", "Overloaded")
        );
        let f = c(
            401,
            "anthropic",
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        );
        assert_eq!((f.status, f.kind), (401, "authentication_error"));
        let f = c(
            429,
            "anthropic",
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization of 50,000 input tokens per minute."}}"#,
        );
        assert_eq!(
            (f.status, f.kind, f.code),
            (429, "rate_limit_error", Some("rate_limit_exceeded"))
        );
    }

    #[test]
    fn gemini_statuses() {
        let f = c(
            400,
            "gemini",
            r#"{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#,
        );
        assert_eq!((f.status, f.code), (400, Some("context_length_exceeded")));
        let f = c(
            429,
            "gemini",
            r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#,
        );
        assert_eq!((f.status, f.kind), (429, "rate_limit_error"));
        let f = c(
            400,
            "gemini",
            r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}"#,
        );
        assert_eq!((f.status, f.kind), (401, "authentication_error"));
        let f = c(
            403,
            "vertex_ai",
            r#"[{"error":{"code":403,"message":"Permission 'aiplatform.endpoints.predict' denied","status":"PERMISSION_DENIED"}}]"#,
        );
        assert_eq!((f.status, f.kind), (403, "permission_error"));
        let f = c(
            401,
            "vertex_ai",
            r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#,
        );
        assert_eq!((f.status, f.kind), (401, "authentication_error"));
        // a 429 wrapped in a 5xx envelope
        let f = c(
            503,
            "vertex_ai",
            r#"{"error":{"code":429,"message":"Try again later.","status":"UNAVAILABLE"}}"#,
        );
        assert_eq!(f.status, 429);
    }

    #[test]
    fn bedrock_exception_header() {
        let b = br#"{"message":"Input is too long for requested model."}"#;
        let f = classify(
            400,
            "bedrock",
            b,
            Some("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        );
        assert_eq!((f.status, f.code), (400, Some("context_length_exceeded")));
        let f = classify(
            400,
            "bedrock",
            br#"{"message":"Too many requests, please wait before trying again."}"#,
            Some("ThrottlingException"),
        );
        assert_eq!((f.status, f.kind), (429, "rate_limit_error"));
        let f = classify(
            403,
            "bedrock",
            br#"{"Message":"The security token included in the request is invalid."}"#,
            Some("UnrecognizedClientException"),
        );
        assert_eq!(
            (f.status, f.kind, f.message.as_str()),
            (
                401,
                "authentication_error",
                "The security token included in the request is invalid."
            )
        );
        let f = classify(
            403,
            "bedrock",
            br#"{"message":"You don't have access to the model with the specified model ID."}"#,
            Some("AccessDeniedException"),
        );
        assert_eq!((f.status, f.kind), (403, "permission_error"));
        let f = classify(
            404,
            "bedrock",
            br#"{"__type":"com.amazon.coral.service#ResourceNotFoundException","message":"Could not resolve the foundation model"}"#,
            None,
        );
        assert_eq!((f.status, f.kind), (404, "not_found_error"));
        let f = classify(
            400,
            "bedrock",
            br#"{"message":"Malformed input request"}"#,
            Some("ValidationException"),
        );
        assert_eq!(
            (f.status, f.kind, f.code),
            (400, "invalid_request_error", None)
        );
    }

    #[test]
    fn azure_content_filter() {
        let f = c(
            400,
            "azure",
            r#"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":true,"severity":"high"}}}}}"#,
        );
        assert_eq!(
            (f.status, f.code, f.param.as_deref()),
            (400, Some("content_policy_violation"), Some("prompt"))
        );
        let f = c(
            400,
            "openai",
            r#"{"error":{"message":"Your request was rejected as a result of our safety system.","type":"invalid_request_error","param":null,"code":"content_policy_violation"}}"#,
        );
        assert_eq!(f.code, Some("content_policy_violation"));
    }

    #[test]
    fn cohere_and_mistral() {
        let f = c(
            400,
            "cohere",
            r#"{"id":"0b1","message":"too many tokens: total number of tokens in the prompt cannot exceed 128000 - received 130001. Try using a shorter prompt"}"#,
        );
        assert_eq!((f.status, f.code), (400, Some("context_length_exceeded")));
        let f = c(
            401,
            "cohere",
            r#"{"id":"0b2","message":"invalid api token"}"#,
        );
        assert_eq!((f.status, f.kind), (401, "authentication_error"));
        let f = c(
            422,
            "mistral",
            r#"{"object":"error","message":{"detail":[{"type":"extra_forbidden","loc":["body","user"],"msg":"Extra inputs are not permitted","input":"u"}]},"type":"invalid_request_error","param":null,"code":null}"#,
        );
        assert_eq!(
            (f.status, f.kind, f.message.as_str()),
            (
                422,
                "invalid_request_error",
                "body.user: Extra inputs are not permitted"
            )
        );
        let f = c(
            429,
            "mistral",
            r#"{"object":"error","message":"Service tier capacity exceeded for this model.","type":"service_tier_capacity_exceeded","param":null,"code":"3505"}"#,
        );
        assert_eq!((f.status, f.kind), (429, "rate_limit_error"));
    }

    #[test]
    fn plain_statuses() {
        let f = c(
            500,
            "openai",
            r#"{"error":{"message":"The server had an error","type":"server_error"}}"#,
        );
        assert_eq!((f.status, f.kind, f.code), (500, "api_error", None));
        let f = c(
            404,
            "openai",
            r#"{"error":{"message":"The model `gpt-9` does not exist","type":"invalid_request_error","code":"model_not_found"}}"#,
        );
        assert_eq!((f.status, f.kind), (404, "not_found_error"));
        let f = c(
            413,
            "anthropic",
            r#"{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}"#,
        );
        assert_eq!((f.status, f.kind), (413, "invalid_request_error"));
        let f = c(502, "groq", "<html>Bad gateway</html>");
        assert_eq!(
            (f.status, f.kind, f.message.as_str()),
            (502, "api_error", "<html>Bad gateway</html>")
        );
        let f = c(503, "groq", "");
        assert_eq!(f.message, "groq returned 503 Service Unavailable");
        // OpenAI's user param validation is not a context window error
        let f = c(
            400,
            "openai",
            r#"{"error":{"message":"Invalid 'user': string too long. Expected a string with maximum length 64, but got a string with length 80 instead.","type":"invalid_request_error","param":"user","code":"string_above_max_length"}}"#,
        );
        assert_eq!((f.status, f.code), (400, None));
        // an OpenAI TPM limit mentions tokens but is a rate limit
        let f = c(
            429,
            "openai",
            r#"{"error":{"message":"Request too large for gpt-4o on tokens per min (TPM): Limit 30000, Requested 50000.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!((f.status, f.code), (429, Some("rate_limit_exceeded")));
        let f = c(
            429,
            "openai",
            r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        );
        assert_eq!(f.code, Some("insufficient_quota"));
    }
}
