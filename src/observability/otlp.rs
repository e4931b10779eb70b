//! OTLP export settings shared by traces and logs (`callbacks: ["otel"]`), from the standard
//! variables (`OTEL_EXPORTER_OTLP_{TRACES,LOGS}_ENDPOINT`, `OTEL_EXPORTER_OTLP_ENDPOINT` + the
//! signal's path, `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_SERVICE_NAME`, `OTEL_BSP_*`) and LiteLLM's
//! (`OTEL_EXPORTER`, `OTEL_ENDPOINT`, `OTEL_HEADERS`).
//!
//! Protocols: `http/protobuf` (default), `http/json` and `grpc` (LiteLLM: `otlp_http`,
//! `otlp_grpc`, `grpc`). gRPC goes over plain HTTP/2 (`http://` endpoints; no TLS is built in),
//! to the endpoint as given (gRPC appends no `/v1/...` path), default `http://localhost:4317`.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry_otlp::Protocol;
use opentelemetry_otlp::tonic_types::metadata::MetadataMap;

/// Why OTLP export could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error(
        "OpenTelemetry protocol `{0}` is not supported (use http/protobuf, http/json or grpc; OTEL_EXPORTER: otlp_http or otlp_grpc)"
    )]
    Protocol(String),
    #[error("OpenTelemetry exporter: {0}")]
    Exporter(String),
}

/// What is exported: the signal's variables and its OTLP/HTTP path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Logs,
}

impl Signal {
    /// `TRACES` or `LOGS`, as in `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
    fn var(self) -> &'static str {
        match self {
            Signal::Traces => "TRACES",
            Signal::Logs => "LOGS",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Logs => "/v1/logs",
        }
    }
}

/// Where and how one signal is exported.
#[derive(Debug, Clone)]
pub struct Settings {
    pub endpoint: String,
    pub protocol: Protocol,
    pub headers: HashMap<String, String>,
    pub service: String,
    pub timeout: Duration,
    pub schedule_delay: Option<Duration>,
    pub max_queue_size: Option<usize>,
    pub max_export_batch_size: Option<usize>,
}

const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318";
const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";

impl Settings {
    /// The settings of `signal` from the environment (`get`: the config's
    /// `environment_variables`, then the process).
    pub fn from_env(
        signal: Signal,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, OtlpError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let own = |k: &str| get(&format!("OTEL_EXPORTER_OTLP_{}_{k}", signal.var()));
        let protocol = protocol(
            own("PROTOCOL")
                .or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"))
                .as_deref(),
            get("OTEL_EXPORTER").as_deref(),
        )?;
        let endpoint = match own("ENDPOINT") {
            Some(e) => e.trim().to_string(),
            None => {
                let base = get("OTEL_EXPORTER_OTLP_ENDPOINT").or_else(|| get("OTEL_ENDPOINT"));
                match protocol {
                    Protocol::Grpc => base
                        .map(|b| b.trim().to_string())
                        .unwrap_or_else(|| DEFAULT_GRPC_ENDPOINT.into()),
                    _ => with_path(
                        &base.unwrap_or_else(|| DEFAULT_HTTP_ENDPOINT.into()),
                        signal.path(),
                    ),
                }
            }
        };
        let headers = own("HEADERS")
            .or_else(|| get("OTEL_EXPORTER_OTLP_HEADERS"))
            .or_else(|| get("OTEL_HEADERS"))
            .map(|h| parse_headers(&h))
            .unwrap_or_default();
        let millis = |v: Option<String>| {
            v.and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_millis)
        };
        let count = |k: &str| get(k).and_then(|v| v.trim().parse::<usize>().ok());
        Ok(Self {
            endpoint,
            protocol,
            headers,
            service: get("OTEL_SERVICE_NAME").unwrap_or_else(|| "tianji".into()),
            timeout: millis(own("TIMEOUT"))
                .or_else(|| millis(get("OTEL_EXPORTER_OTLP_TIMEOUT")))
                .unwrap_or(Duration::from_secs(10)),
            schedule_delay: millis(get("OTEL_BSP_SCHEDULE_DELAY")),
            max_queue_size: count("OTEL_BSP_MAX_QUEUE_SIZE"),
            max_export_batch_size: count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
        })
    }

    /// The headers as gRPC metadata (names lower-cased; invalid ones left out).
    pub fn metadata(&self) -> MetadataMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in &self.headers {
            if let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()),
                http::HeaderValue::from_str(v),
            ) {
                h.insert(k, v);
            }
        }
        MetadataMap::from_headers(h)
    }
}

/// Build an opentelemetry-otlp exporter (`SpanExporter`, `LogExporter`) from its `builder()`
/// with `settings`: tonic for gRPC, else HTTP through `client`. Evaluates to
/// `Result<exporter, OtlpError>`; the caller imports `WithExportConfig`, `WithHttpConfig` and
/// `WithTonicConfig`.
macro_rules! exporter {
    ($builder:expr, $settings:expr, $client:expr) => {{
        let settings: &$crate::observability::otlp::Settings = $settings;
        match settings.protocol {
            opentelemetry_otlp::Protocol::Grpc => $builder
                .with_tonic()
                .with_endpoint(settings.endpoint.clone())
                .with_timeout(settings.timeout)
                .with_metadata(settings.metadata())
                .build(),
            _ => $builder
                .with_http()
                .with_http_client($client)
                .with_endpoint(settings.endpoint.clone())
                .with_protocol(settings.protocol)
                .with_timeout(settings.timeout)
                .with_headers(settings.headers.clone())
                .build(),
        }
        .map_err(|e| $crate::observability::otlp::OtlpError::Exporter(e.to_string()))
    }};
}
pub(crate) use exporter;

/// Whether an exporter variable (`OTEL_TRACES_EXPORTER`, `OTEL_LOGS_EXPORTER`) turns its signal
/// off (`none`).
pub fn turned_off(value: Option<String>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("none"))
}

/// The OTLP protocol from `OTEL_EXPORTER_OTLP_PROTOCOL`, else LiteLLM's `OTEL_EXPORTER`.
fn protocol(otlp: Option<&str>, litellm: Option<&str>) -> Result<Protocol, OtlpError> {
    match (otlp.map(str::trim), litellm.map(str::trim)) {
        (Some("http/protobuf"), _) | (None, None | Some("otlp_http")) => Ok(Protocol::HttpBinary),
        (Some("http/json"), _) => Ok(Protocol::HttpJson),
        (Some("grpc"), _) | (None, Some("otlp_grpc" | "grpc")) => Ok(Protocol::Grpc),
        (Some(other), _) | (None, Some(other)) => Err(OtlpError::Protocol(other.to_string())),
    }
}

/// A base endpoint with the signal's path unless it already has it.
fn with_path(base: &str, path: &str) -> String {
    let base = base.trim().trim_end_matches('/');
    if base.ends_with(path) {
        base.to_string()
    } else {
        format!("{base}{path}")
    }
}

/// `k=v,k2=v2` (values percent-encoded, as in `Authorization=Bearer%20...`).
fn parse_headers(text: &str) -> HashMap<String, String> {
    text.split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), percent_decode(v.trim())))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn standard_and_litellm_variables() {
        let s = Settings::from_env(
            Signal::Traces,
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=k,x=Bearer%20y"),
                ("OTEL_SERVICE_NAME", "gw"),
            ]),
        )
        .unwrap();
        assert_eq!(s.endpoint, "http://c:4318/v1/traces");
        assert_eq!(s.headers["x"], "Bearer y");
        assert_eq!(s.service, "gw");
        assert_eq!(s.protocol, Protocol::HttpBinary);
        // LiteLLM's own names
        let litellm = [
            ("OTEL_EXPORTER", "otlp_http"),
            ("OTEL_ENDPOINT", "https://api.example"),
            ("OTEL_HEADERS", "Authorization=Bearer%20t"),
        ];
        let s = Settings::from_env(Signal::Traces, env(&litellm)).unwrap();
        assert_eq!(
            (s.endpoint.as_str(), s.headers["Authorization"].as_str()),
            ("https://api.example/v1/traces", "Bearer t")
        );
        let s = Settings::from_env(
            Signal::Traces,
            env(&[
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c/x"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ]),
        )
        .unwrap();
        assert_eq!(s.endpoint, "http://c/x");
        assert_eq!(s.protocol, Protocol::HttpJson);
        assert!(Settings::from_env(Signal::Traces, env(&[("OTEL_EXPORTER", "console")])).is_err());
    }

    #[test]
    fn logs_and_grpc_endpoints() {
        let base = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")];
        let s = Settings::from_env(Signal::Logs, env(&base)).unwrap();
        assert_eq!(s.endpoint, "http://c:4318/v1/logs");
        let s = Settings::from_env(
            Signal::Logs,
            env(&[
                ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://l/in"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ]),
        )
        .unwrap();
        assert_eq!(s.endpoint, "http://l/in");
        // gRPC: no path appended, its own default port
        let grpc = [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "Api-Key=s"),
        ];
        let s = Settings::from_env(Signal::Traces, env(&grpc)).unwrap();
        assert_eq!(s.protocol, Protocol::Grpc);
        assert_eq!(s.endpoint, "http://c:4317");
        assert_eq!(
            s.metadata().get("api-key").and_then(|v| v.to_str().ok()),
            Some("s")
        );
        for litellm in ["otlp_grpc", "grpc"] {
            let s = Settings::from_env(Signal::Logs, env(&[("OTEL_EXPORTER", litellm)])).unwrap();
            assert_eq!(s.endpoint, "http://localhost:4317");
        }
        assert!(turned_off(Some(" None ".into())));
        assert!(!turned_off(Some("otlp".into())));
    }
}
