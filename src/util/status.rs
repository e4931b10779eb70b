//! HTTP statuses as error bodies name them.

use http::StatusCode;

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
