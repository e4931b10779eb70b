//! HTTP statuses as error bodies name them.

use http::StatusCode;

/// LiteLLM's exception class of an HTTP status: "" for a success; ErrorLogs
/// `exception_type`, callbacks' `error_information.error_class`, the failure metrics' label.
pub fn exception_class(status: u16) -> &'static str {
    match status {
        0..400 => "",
        400 => "BadRequestError",
        401 => "AuthenticationError",
        403 => "PermissionDeniedError",
        404 => "NotFoundError",
        408 => "Timeout",
        422 => "UnprocessableEntityError",
        429 => "RateLimitError",
        503 => "ServiceUnavailableError",
        s if s < 500 => "BadRequestError",
        500..=599 => "InternalServerError",
        _ => "APIError",
    }
}

/// Default `type` for a status, as LiteLLM 1.109 picks it.
pub fn type_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 => "timeout_error",
        429 => "rate_limit_error",
        s if s < 500 => "invalid_request_error",
        _ => "internal_server_error",
    }
}
