//! The accept loop: HTTP/1.1 keep-alive and h2c on one port (optionally TLS with ALPN),
//! `TCP_NODELAY`, header-read and body-read timeouts, a cap on connections per client address,
//! graceful drain on shutdown.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::body::Body;
use crate::dispatch;
use crate::error::GatewayError;
use crate::pipeline;
use crate::pipeline::parse::RequestError;
use crate::request_body::{BodyDeadline, RequestBody};
use crate::state::AppState;

/// Default `general_settings.max_connections_per_ip`.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: u32 = 256;

/// Listener behaviour.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub header_read_timeout: Duration,
    pub graceful_timeout: Duration,
    /// How long a client may take to send a request body.
    pub body_deadline: BodyDeadline,
    /// Open connections allowed from one client address (0: no limit).
    pub max_connections_per_ip: u32,
}

/// Open connections per client address, when capped.
struct PerIp {
    max: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
    /// When a refusal was last logged at warn (ms since the Unix epoch): at most one every 10 s.
    warned_ms: AtomicU64,
}

/// One open connection of an address; dropping it frees the place.
struct IpSlot {
    of: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn new(max: u32) -> Option<Arc<Self>> {
        (max > 0).then(|| {
            Arc::new(Self {
                max,
                open: Mutex::new(HashMap::new()),
                warned_ms: AtomicU64::new(0),
            })
        })
    }

    /// A place for a connection from `ip`, or None when it already has `max` open.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let n = open.entry(ip).or_insert(0);
            if *n < self.max {
                *n += 1;
                return Some(IpSlot {
                    of: self.clone(),
                    ip,
                });
            }
        }
        let now = crate::util::clock::now_ms();
        let last = self.warned_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 10_000
            && self
                .warned_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                peer = %ip,
                max = self.max,
                "refusing connections: too many open from one address (general_settings.max_connections_per_ip)"
            );
        } else {
            tracing::debug!(peer = %ip, "connection refused: too many open from this address");
        }
        None
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.of.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serve one request, its body bounded by `deadline`. A body cut for slowness is answered 408
/// (whatever the route made of the failed read) and the connection is closed.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn keeps its arguments in its future beside the copies its body moves them into"
)]
fn serve_one(
    state: Arc<AppState>,
    req: http::Request<hyper::body::Incoming>,
    peer: std::net::SocketAddr,
    deadline: BodyDeadline,
) -> impl std::future::Future<Output = http::Response<Body>> {
    async move {
        let version = req.version();
        let (parts, body) = req.into_parts();
        let (body, cut) = RequestBody::new(body, deadline);
        let shutdown = state.streams.wait();
        // pinned here, once: passed by value, the handler's state would be held twice
        let handling = std::pin::pin!(Some(dispatch::handle(
            state,
            http::Request::from_parts(parts, body),
            peer
        )));
        let resp = match until_cut(handling, shutdown).await {
            Some(resp) => resp,
            None => return GatewayError::ShuttingDown.into_response(),
        };
        match cut {
            Some(cut) if cut.happened() => {
                tracing::debug!(peer = %peer, "request body too slow: cut");
                let mut resp = GatewayError::from(RequestError::BodyTimeout {
                    secs: deadline.timeout.as_secs_f64(),
                })
                .into_response();
                if version < http::Version::HTTP_2 {
                    resp.headers_mut().insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                }
                resp
            }
            _ => resp,
        }
    }
}

/// Run `handling` until it answers or `shutdown` (the graceful-shutdown deadline) comes first:
/// then it is dropped there, its record saying it was cut ([`pipeline::post::cutting`]).
async fn until_cut<T, F: Future<Output = T>>(
    mut handling: Pin<&mut Option<F>>,
    shutdown: impl Future<Output = ()>,
) -> Option<T> {
    let mut shutdown = std::pin::pin!(shutdown);
    std::future::poll_fn(|cx| {
        if let Some(h) = handling.as_mut().as_pin_mut()
            && let std::task::Poll::Ready(r) = h.poll(cx)
        {
            return std::task::Poll::Ready(Some(r));
        }
        if shutdown.as_mut().poll(cx).is_ready() {
            pipeline::post::cutting(|| handling.set(None));
            return std::task::Poll::Ready(None);
        }
        std::task::Poll::Pending
    })
    .await
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
    let per_ip = PerIp::new(opts.max_connections_per_ip);
    // Keep the timer driver's next wake-up within a second. Otherwise every per-request timer
    // (request timeout, header-read timeout) is the earliest one when registered, and tokio
    // wakes the I/O driver with an eventfd write for each: one syscall per request for nothing.
    let heartbeat = tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    tokio::pin!(shutdown);
    // every connection's task, so those still open after the cut can be closed (and their
    // requests' records finished) before the spend writer's last flush
    let mut conns = tokio::task::JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                accept_failed(e).await;
                continue;
            }
        };
        let slot = match &per_ip {
            Some(p) => match p.admit(peer.ip()) {
                Some(slot) => Some(slot),
                None => continue,
            },
            None => None,
        };
        let _ = stream.set_nodelay(true);
        conns.spawn(connection(
            Connection {
                state: state.clone(),
                peer,
                deadline: opts.body_deadline,
                builder: builder.clone(),
                tls: tls.clone().map(|a| (a, opts.header_read_timeout)),
                watcher: graceful.watcher(),
                _slot: slot,
            },
            stream,
        ));
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
    // connections still open (clients not reading their streams): closed now, which finishes
    // their requests' records
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

/// A failed accept: transient ones (the client gave up) are skipped; others (out of file
/// descriptors, say) are logged and accepting pauses for a second.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind as K;
    if !matches!(
        e.kind(),
        K::ConnectionRefused | K::ConnectionAborted | K::ConnectionReset
    ) {
        tracing::error!(error = %e, "accept failed; pausing 1s");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// What one connection's task holds.
struct Connection {
    state: Arc<AppState>,
    peer: std::net::SocketAddr,
    deadline: BodyDeadline,
    builder: Arc<auto::Builder<TokioExecutor>>,
    /// The TLS acceptor and the handshake's time limit.
    tls: Option<(TlsAcceptor, Duration)>,
    /// Counts the connection in the graceful drain.
    watcher: hyper_util::server::graceful::Watcher,
    /// The client address's place, freed when the connection ends.
    _slot: Option<IpSlot>,
}

/// Serve one connection (after its TLS handshake) until it closes.
async fn connection(c: Connection, stream: tokio::net::TcpStream) {
    let Connection {
        state,
        peer,
        deadline,
        builder,
        tls,
        watcher,
        _slot,
    } = c;
    let service = service_fn(move |req| {
        // Boxed: the request's state machine is large, and hyper moves the future it gets into
        // its dispatcher; a box moves as a pointer instead of copying the whole state per request.
        // (The request goes into `serve_one` here, not into the async block: the block would
        // keep its own copy of the request's head beside the one `serve_one` holds.)
        let serving = serve_one(state.clone(), req, peer, deadline);
        Box::pin(async move { Ok::<_, Infallible>(serving.await) })
    });
    let ended = match tls {
        None => {
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            watcher.watch(conn.into_owned()).await
        }
        Some((acceptor, handshake_timeout)) => {
            let tls_stream =
                match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls_stream), service);
            watcher.watch(conn.into_owned()).await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "connection ended with error");
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
                tracing::warn!("closing connections whose clients stopped reading their streams");
            }
            tracing::warn!("closing remaining connections");
        }
    }
}
