//! Tianji: a high-throughput, LiteLLM-compatible LLM gateway.
//!
//! `main.rs` is thin; everything lives here so tests, benches and fuzz targets link the same code.
//! Start at [`dispatch`] for how a request is routed, [`pipeline`] for the LLM request path and
//! docs/architecture.md for the architecture.

#![recursion_limit = "256"]

pub mod admin;
pub mod agents;
pub mod alerting;
pub mod auth;
pub mod body;
pub mod cache;
pub mod callbacks;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod guardrails;
pub mod health;
pub mod jobs;
pub mod limits;
pub mod managed;
pub mod mcp;
pub mod mcp_api;
pub mod metrics;
pub mod models_api;
pub mod observability;
pub mod passthrough;
pub mod pipeline;
pub mod prices;
pub mod prompts;
pub mod providers;
pub mod rag;
pub mod rag_api;
pub mod reload;
pub mod request_body;
pub mod responses;
pub mod router;
pub mod routes;
pub mod search;
pub mod secrets;
pub mod server;
pub mod skills;
pub mod skills_api;
pub mod spend;
pub mod state;
pub mod store;
pub mod upstream;
pub mod util;
pub mod vector_index;
pub mod vector_stores;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{ConfigError, Loaded};
pub use state::{AppState, StateError};

/// Why the gateway did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Tls(#[from] server::TlsError),
    #[error(transparent)]
    Routes(#[from] routes::RouteTableError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

impl StartError {
    /// Whether the config itself is wrong (rather than something it points at being down or
    /// refusing, or the machine).
    pub fn is_config(&self) -> bool {
        match self {
            StartError::Config(_) | StartError::Tls(_) => true,
            StartError::Routes(_) => false,
            StartError::State(e) => e.is_config(),
            StartError::Bind { .. } => false,
        }
    }
}

/// Everything needed to serve, checked: `--check-config` stops here.
pub struct Prepared {
    pub state: Arc<AppState>,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub options: server::ServerOptions,
}

fn secs(v: Option<f64>, default: u64) -> Duration {
    v.and_then(|s| Duration::try_from_secs_f64(s).ok())
        .unwrap_or(Duration::from_secs(default))
}

/// Build state (connecting to the database when configured) and TLS from a loaded config.
pub async fn prepare(loaded: &Loaded) -> Result<Prepared, StartError> {
    prepare_with(loaded, true).await
}

/// [`prepare`], optionally without connecting to the database (`--check-config`).
pub async fn prepare_with(loaded: &Loaded, connect_database: bool) -> Result<Prepared, StartError> {
    dispatch::init()?;
    let state = Arc::new(AppState::build_with(loaded, connect_database).await?);
    if let Some(bus) = state.bus.clone() {
        bus.listen(Arc::downgrade(&state));
    }
    let g = &loaded.config.general_settings;
    if connect_database && g.watch_config_file {
        reload::watch(Arc::downgrade(&state));
    }
    let jobs = jobs::planned(g, &state.alerts)?;
    if connect_database {
        jobs::start(&state, g, jobs);
    }
    let tls = match (&g.ssl_certfile, &g.ssl_keyfile) {
        (Some(c), Some(k)) => Some(server::tls_acceptor(c, k)?),
        _ => None,
    };
    let options = server::ServerOptions {
        header_read_timeout: secs(g.header_read_timeout, 30),
        graceful_timeout: secs(g.graceful_shutdown_timeout, 30),
        body_deadline: request_body::BodyDeadline {
            timeout: secs(g.request_body_timeout, request_body::DEFAULT_TIMEOUT_SECS),
            min_rate: g
                .request_body_min_bytes_per_second
                .unwrap_or(request_body::DEFAULT_MIN_RATE),
        },
        max_connections_per_ip: g
            .max_connections_per_ip
            .unwrap_or(server::DEFAULT_MAX_CONNECTIONS_PER_IP),
    };
    Ok(Prepared {
        state,
        tls,
        options,
    })
}

/// Serve `prepared` on `listener` until `shutdown` resolves, then drain.
pub async fn serve(prepared: Prepared, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let state = prepared.state.clone();
    server::serve(
        listener,
        prepared.state,
        prepared.tls,
        prepared.options,
        shutdown,
    )
    .await;
    // Every request has finished: store the spend still queued.
    state.spend.shutdown().await;
    // and export the spans still queued (a dead collector delays the exit by 5 s at most)
    if let Some(t) = &state.traces {
        t.shutdown(Duration::from_secs(5)).await;
    }
    state.callbacks.load_full().shutdown().await;
    state.alerts.shutdown().await;
}

/// A gateway running in this process (tests, embedding).
pub struct Gateway {
    pub addr: SocketAddr,
    state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Gateway {
    /// Start on `addr` (port 0 picks a free port).
    pub async fn start(loaded: &Loaded, addr: SocketAddr) -> Result<Self, StartError> {
        let prepared = prepare(loaded).await?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let (tx, rx) = oneshot::channel::<()>();
        let state = prepared.state.clone();
        let task = tokio::spawn(serve(prepared, listener, async move {
            let _ = rx.await;
        }));
        Ok(Self {
            addr,
            state,
            stop: Some(tx),
            task,
        })
    }

    /// The shared state (tests read counters from it).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Stop accepting, drain, and wait until the server has stopped.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}
