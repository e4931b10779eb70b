//! The one gateway error: every area's error gathered, with one renderer of the OpenAI/LiteLLM
//! error body `{"error":{"message","type","param","code"}}` (`code` = HTTP status as a string,
//! or a provider's own OpenAI error code when it gave one).

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;

use crate::auth::AuthError;
use crate::body::Body;
use crate::request_body::RequestError;
use crate::router::RouteError;
use crate::upstream::UpstreamError;

/// The error of a request cut at the graceful-shutdown deadline before its answer began.
pub const REQUEST_CUT: &str =
    "Request cut: the gateway is shutting down and the graceful_shutdown_timeout has passed";

/// Anything that ends a request with an error response.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Limit(#[from] crate::limits::LimitError),
    /// An error of a feature above this layer (management API, files and batches, stored
    /// responses, ...), rendered through its [`ApiError`] impl.
    #[error("{0}")]
    Feature(Box<dyn ApiError>),
    #[error("Route not found: {0}")]
    NotFound(String),
    #[error("The model '{0}' does not exist or you do not have access to it.")]
    ModelNotFound(String),
    #[error("Method {method} not allowed on {path}. Allowed: {allowed}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: &'static str,
    },
    #[error("{0}")]
    NotImplemented(String),
    /// A request still running at the graceful-shutdown deadline: answered 503.
    #[error("{}", REQUEST_CUT)]
    ShuttingDown,
    /// A gateway fault (never the caller's): logged, answered with 500.
    #[error("Internal error: {0}")]
    Internal(String),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorFields<'a>,
}

#[derive(Serialize)]
struct ErrorFields<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: &'a str,
}

/// The error of a feature module, as the client sees it. Features sit above this module, so
/// they implement this (and `From<TheirError> for GatewayError` with [`GatewayError::feature`])
/// rather than being named here.
pub trait ApiError: std::error::Error + Send + Sync + 'static {
    fn status(&self) -> StatusCode;
    /// The `type` of the error body (default: by status).
    fn error_type(&self) -> &'static str {
        type_for_status(self.status())
    }
    /// The request member at fault, if any.
    fn param(&self) -> Option<&str> {
        None
    }
    /// Low-cardinality label for logs and metrics.
    fn reason(&self) -> &'static str;
}

pub use crate::util::status::type_for_status;

/// [`ApiError`] for a feature's error type (its own `status()`, the `reason` label, any more
/// trait methods given) and `From<$t> for GatewayError`.
macro_rules! feature_error {
    ($t:ty, $reason:literal $(, $extra:item)*) => {
        impl $crate::error::ApiError for $t {
            fn status(&self) -> http::StatusCode {
                <$t>::status(self)
            }
            fn reason(&self) -> &'static str {
                $reason
            }
            $($extra)*
        }

        impl From<$t> for $crate::error::GatewayError {
            fn from(e: $t) -> Self {
                $crate::error::GatewayError::feature(e)
            }
        }
    };
}
pub(crate) use feature_error;

impl GatewayError {
    /// A feature's error.
    pub fn feature(e: impl ApiError) -> Self {
        GatewayError::Feature(Box::new(e))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::Request(e) => e.status(),
            GatewayError::Auth(e) => e.status(),
            GatewayError::Route(RouteError::UnknownModel(_)) => StatusCode::BAD_REQUEST,
            GatewayError::Route(RouteError::Deployment { .. }) => StatusCode::BAD_REQUEST,
            GatewayError::Route(RouteError::ProviderBudget { .. }) => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::Route(RouteError::CoolingDown { .. }) => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::Route(RouteError::NoRegionDeployment { .. }) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            GatewayError::Route(RouteError::NoTaggedDeployment { .. }) => StatusCode::BAD_REQUEST,
            GatewayError::Route(RouteError::ContextWindow { .. }) => StatusCode::BAD_REQUEST,
            GatewayError::Upstream(e) => e.status(),
            GatewayError::Feature(e) => e.status(),
            GatewayError::Limit(e) => e.status(),
            GatewayError::NotFound(_) | GatewayError::ModelNotFound(_) => StatusCode::NOT_FOUND,
            GatewayError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            GatewayError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn error_type(&self) -> Cow<'_, str> {
        match self {
            GatewayError::Auth(e) => Cow::Borrowed(e.error_type()),
            GatewayError::Upstream(e) => e.error_type(),
            GatewayError::Feature(e) => Cow::Borrowed(e.error_type()),
            GatewayError::Limit(e) => Cow::Borrowed(e.error_type()),
            GatewayError::NotImplemented(_) => Cow::Borrowed("not_implemented_error"),
            GatewayError::ShuttingDown => Cow::Borrowed("service_unavailable_error"),
            GatewayError::Route(RouteError::ProviderBudget { .. }) => {
                Cow::Borrowed("budget_exceeded")
            }
            _ => Cow::Borrowed(type_for_status(self.status())),
        }
    }

    pub fn param(&self) -> Option<&str> {
        match self {
            GatewayError::Request(e) => e.param(),
            GatewayError::Auth(e) => e.param(),
            GatewayError::Route(_) | GatewayError::ModelNotFound(_) => Some("model"),
            GatewayError::Upstream(e) => e.param(),
            GatewayError::Feature(e) => e.param(),
            _ => None,
        }
    }

    /// Low-cardinality label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            GatewayError::Request(_) => "bad_request",
            GatewayError::Auth(_) => "auth",
            GatewayError::Route(_) => "route",
            GatewayError::Upstream(e) => e.reason(),
            GatewayError::Feature(e) => e.reason(),
            GatewayError::Limit(_) => "rate_limit",
            GatewayError::NotFound(_) | GatewayError::ModelNotFound(_) => "not_found",
            GatewayError::MethodNotAllowed { .. } => "method",
            GatewayError::NotImplemented(_) => "not_implemented",
            GatewayError::ShuttingDown => "shutdown",
            GatewayError::Internal(_) => "internal",
        }
    }

    /// Render the JSON error response. Logged here, once.
    pub fn into_response(self) -> Response<Body> {
        self.into_response_for(false)
    }

    /// [`GatewayError::into_response`] for a caller who is an admin (`admin`: may see, redacted,
    /// which upstream URL failed) or not (sees no upstream address).
    pub fn into_response_for(self, admin: bool) -> Response<Body> {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), reason = self.reason(), error = %self, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), reason = self.reason(), error = %self, "request rejected");
        }
        let message = match &self {
            GatewayError::Upstream(e) => e.message_for(admin),
            other => Cow::Owned(other.to_string()),
        };
        let kind = self.error_type();
        // the provider's own OpenAI error code where it gave one, else the status (LiteLLM's)
        let code = match &self {
            GatewayError::Upstream(e) => e.wire_code(),
            _ => itoa::Buffer::new().format(status.as_u16()).to_string(),
        };
        let body = ErrorBody {
            error: ErrorFields {
                message: &message,
                kind: &kind,
                param: self.param(),
                code: &code,
            },
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{\"error\":{}}".to_vec());
        let mut resp = json_response(status, Bytes::from(bytes));
        match &self {
            GatewayError::MethodNotAllowed { allowed, .. } => {
                resp.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allowed));
            }
            GatewayError::Limit(e) => {
                for (k, v) in e.headers() {
                    resp.headers_mut().insert(k, v);
                }
            }
            GatewayError::Upstream(e) => {
                if let Some(v) = e.retry_after() {
                    resp.headers_mut().insert(header::RETRY_AFTER, v.clone());
                }
            }
            _ => {}
        }
        resp
    }
}

/// A JSON response with the given status.
pub fn json_response(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Body::full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
