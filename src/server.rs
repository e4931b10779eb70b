//! The accept loop: HTTP/1.1 keep-alive and h2c on one port (optionally TLS with ALPN),
//! `TCP_NODELAY`, header-read timeout, graceful drain on shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::pipeline;
use crate::state::AppState;

/// Listener behaviour.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub header_read_timeout: Duration,
    pub graceful_timeout: Duration,
}

/// TLS could not be set up from the configured files.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("ssl_certfile {path}: {detail}")]
    Cert { path: String, detail: String },
    #[error("ssl_keyfile {path}: {detail}")]
    Key { path: String, detail: String },
    #[error("TLS config: {0}")]
    Config(#[from] rustls::Error),
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Build a TLS acceptor (ALPN h2 and http/1.1) from PEM files.
pub fn tls_acceptor(cert: &str, key: &str) -> Result<TlsAcceptor, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert.into(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Cert {
            path: cert.into(),
            detail: "no certificate found".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.into(),
        detail: e.to_string(),
    })?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

fn builder(opts: &ServerOptions) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .keep_alive(true);
    b.http2().timer(TokioTimer::new());
    b
}

/// Serve until `shutdown` resolves, then stop accepting and let in-flight requests and streams
/// finish for up to `graceful_timeout`.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Option<TlsAcceptor>,
    opts: ServerOptions,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let builder = Arc::new(builder(&opts));
    // Keep the timer driver's next wake-up within a second. Otherwise every per-request timer
    // (request timeout, header-read timeout) is the earliest one when registered, and tokio
    // wakes the I/O driver with an eventfd write for each: one syscall per request for nothing.
    let heartbeat = tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                use std::io::ErrorKind as K;
                if !matches!(
                    e.kind(),
                    K::ConnectionRefused | K::ConnectionAborted | K::ConnectionReset
                ) {
                    tracing::error!(error = %e, "accept failed; pausing 1s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let st = state.clone();
        let service = service_fn(move |req| {
            let st = st.clone();
            async move { Ok::<_, Infallible>(pipeline::handle(st, req, peer).await) }
        });
        let b = builder.clone();
        match &tls {
            None => {
                let conn = b.serve_connection_with_upgrades(TokioIo::new(stream), service);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with error");
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                let handshake_timeout = opts.header_read_timeout;
                tokio::spawn(async move {
                    let tls_stream = match tokio::time::timeout(
                        handshake_timeout,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let conn = b.serve_connection_with_upgrades(TokioIo::new(tls_stream), service);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(error = %e, "connection ended with error");
                    }
                });
            }
        }
    }
    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    let _heartbeat = AbortOnDrop(heartbeat);
    let drain = graceful.shutdown();
    tokio::pin!(drain);
    tokio::select! {
        _ = &mut drain => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(opts.graceful_timeout) => {
            tracing::warn!(timeout_s = opts.graceful_timeout.as_secs_f64(), "graceful shutdown timed out; cutting the streams still running");
            cut_streams(&state, drain.as_mut()).await;
        }
    }
}

/// How long streams cut at the shutdown deadline get to send their error event and queue
/// their SpendLogs row.
const CUT_GRACE: Duration = Duration::from_secs(2);

/// End the streams still running (each sends its client an error event and queues its row),
/// then wait a little for their connections to close.
async fn cut_streams(state: &AppState, drain: Pin<&mut impl Future<Output = ()>>) {
    state.streams.cut();
    tokio::select! {
        _ = drain => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(CUT_GRACE) => {
            if !state.streams.settled() {
                tracing::warn!("streams not read by their clients were not cut; their SpendLogs rows may be lost");
            }
            tracing::warn!("closing remaining connections");
        }
    }
}
