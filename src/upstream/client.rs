//! The one upstream HTTP client: pooled, HTTP/1.1, rustls, `TCP_NODELAY`, idle connections reaped.

use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::Body;

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Body>;

/// Idle connections kept per upstream host: enough for thousands of in-flight LLM calls.
const MAX_IDLE_PER_HOST: usize = 4096;

pub fn build_client() -> Result<HttpClient, rustls::Error> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_keepalive(Some(Duration::from_secs(60)));
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    let tls = tls_config()?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
        .build(https))
}

/// The TLS setup of upstream calls: rustls with the ring provider, the webpki roots, no
/// client certificate (the URL fetcher uses it too).
pub(super) fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    Ok(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .with_no_client_auth(),
    )
}

/// The upstream client as the OTLP exporter's HTTP client (traces go out through the same
/// pool and TLS setup), each export bounded by `timeout` and its answer by 1 MiB.
#[derive(Debug, Clone)]
pub struct OtlpClient {
    pub client: HttpClient,
    pub timeout: Duration,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        use http_body_util::{BodyExt, Limited};
        let (parts, body) = request.into_parts();
        let req = http::Request::from_parts(parts, Body::full(body));
        let call = async {
            let resp = self.client.request(req).await?;
            let (parts, body) = resp.into_parts();
            let bytes = Limited::new(body, 1 << 20).collect().await?.to_bytes();
            Ok::<_, opentelemetry_http::HttpError>(http::Response::from_parts(parts, bytes))
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| "OTLP export timed out")?
    }
}
