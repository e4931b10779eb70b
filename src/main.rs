//! `tianji` binary: CLI, allocator, runtime, then `tianji::serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
#[global_allocator]
static GLOBAL: tianji::util::alloc::Mimalloc = tianji::util::alloc::Mimalloc;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Tianji: an OpenAI-compatible LLM gateway (LiteLLM-compatible config and API).
#[derive(Parser, Debug)]
#[command(name = "tianji", version, about)]
struct Cli {
    /// Config file (LiteLLM layout: model_list, general_settings, router_settings, tianji_settings).
    #[arg(long, short = 'c', env = "TIANJI_CONFIG")]
    config: Option<PathBuf>,
    /// Listen address [default: general_settings.host or 0.0.0.0].
    #[arg(long)]
    host: Option<String>,
    /// Listen port [default: general_settings.port or 4000].
    #[arg(long, short = 'p')]
    port: Option<u16>,
    /// Validate the config and exit (non-zero with the reason when invalid).
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let loaded = match &cli.config {
        Some(path) => tianji::Loaded::from_file(path),
        None => tianji::Loaded::from_yaml(""),
    };
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tianji: invalid config: {e}");
            return ExitCode::from(2);
        }
    };
    tianji::observability::init(loaded.config.tianji_settings.json_logs);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tianji: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli, loaded))
}

async fn run(cli: Cli, loaded: tianji::Loaded) -> ExitCode {
    let prepared = match tianji::prepare_with(&loaded, !cli.check_config).await {
        Ok(p) => p,
        Err(e) if e.is_config() => {
            eprintln!("tianji: invalid config: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("tianji: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let g = &loaded.config.general_settings;
    if cli.check_config {
        eprintln!(
            "tianji: config OK ({} model entries, {} warnings)",
            loaded.config.model_list.len(),
            loaded.warnings.len()
        );
        return ExitCode::SUCCESS;
    }
    if prepared.state.auth.is_open() {
        tracing::warn!(
            "no master key configured (general_settings.master_key or TIANJI_MASTER_KEY): every caller is admin"
        );
    }
    let host = cli
        .host
        .or_else(|| g.host.clone())
        .unwrap_or_else(|| "0.0.0.0".into());
    let port = cli.port.or(g.port).unwrap_or(4000);
    let addr: SocketAddr = match format!("{host}:{port}")
        .parse()
        .or_else(|_| format!("[{host}]:{port}").parse())
    {
        Ok(a) => a,
        Err(_) => {
            eprintln!("tianji: invalid listen address {host}:{port}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tianji: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let scheme = if prepared.tls.is_some() {
        "https"
    } else {
        "http"
    };
    // the address bound (with --port 0, the port the system chose)
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!(
        target: "tianji::listen",
        version = env!("CARGO_PKG_VERSION"),
        "tianji listening on {scheme}://{bound}"
    );
    #[cfg(unix)]
    tianji::reload::on_sighup(std::sync::Arc::downgrade(&prepared.state));
    tianji::serve(prepared, listener, shutdown_signal()).await;
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("signal received");
}
