//! Vertex AI access tokens: a service-account JWT exchanged at the account's `token_uri`, cached
//! per deployment and refreshed a minute before it expires ([`super::token_exchange`]).

use bytes::Bytes;
use http::{HeaderValue, StatusCode};

use super::token_exchange::{self, failed};
use super::{HttpClient, UpstreamError};
use crate::providers::gemini::vertex;
use crate::router::wire::VertexAuth;

const WHO: &str = "Vertex AI";

/// `Authorization: Bearer <token>` for a Vertex AI request.
pub async fn bearer(client: &HttpClient, auth: &VertexAuth) -> Result<HeaderValue, UpstreamError> {
    token_exchange::bearer(&auth.token, WHO, || async {
        let now = crate::util::clock::now_whole_secs();
        let assertion = auth.account.assertion(now).map_err(|e| {
            failed(
                StatusCode::UNAUTHORIZED,
                format!("Vertex AI credentials: {e}"),
            )
        })?;
        let body = Bytes::from(vertex::token_request_body(&assertion));
        let bytes = token_exchange::post_form(client, &auth.token_uri, body, WHO).await?;
        vertex::parse_token_response(&bytes).map_err(|e| {
            failed(
                StatusCode::BAD_GATEWAY,
                format!("Vertex AI token response: {e}"),
            )
        })
    })
    .await
}
