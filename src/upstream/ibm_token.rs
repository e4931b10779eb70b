//! watsonx.ai IAM access tokens: the deployment's API key exchanged at IBM Cloud's IAM
//! endpoint (`WATSONX_IAM_URL`), cached per deployment and refreshed a minute before it
//! expires ([`super::token_exchange`]).

use bytes::Bytes;
use http::{HeaderValue, StatusCode};

use super::token_exchange::{self, failed};
use super::{HttpClient, UpstreamError};
use crate::providers::watsonx;
use crate::router::wire::IamAuth;

const WHO: &str = "watsonx IAM";

/// `Authorization: Bearer <token>` for a watsonx.ai request.
pub async fn bearer(client: &HttpClient, auth: &IamAuth) -> Result<HeaderValue, UpstreamError> {
    token_exchange::bearer(&auth.token, WHO, || async {
        let body = Bytes::from(watsonx::iam_form(&auth.api_key));
        // IBM's error body names the problem (`BXNIM0415E: Provided API key could not be
        // found`), never the key
        let bytes = token_exchange::post_form(client, &auth.url, body, WHO).await?;
        let now = crate::util::clock::now_whole_secs();
        watsonx::iam_token(&bytes, now).map_err(|e| {
            failed(
                StatusCode::BAD_GATEWAY,
                format!("watsonx IAM token response: {e}"),
            )
        })
    })
    .await
}
