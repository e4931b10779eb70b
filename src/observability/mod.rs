//! Logging setup. Level from `TIANJI_LOG` (or `RUST_LOG`), default `info`; `tianji::access` at
//! `debug` logs one line per LLM request.

pub mod logs;
pub mod otlp;
pub mod traces;

use tracing_subscriber::EnvFilter;

/// Install the global subscriber (text, or JSON lines when `json` is set).
pub fn init(json: bool) {
    let filter = std::env::var("TIANJI_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|s| EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
