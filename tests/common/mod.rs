//! Test harness: a gateway started in-process on a free port, and a small HTTP client.

pub mod anthropic_account;
pub mod db;
pub mod fixtures;
pub mod mock_upstream;
pub mod pg_cluster;
pub mod ports;
pub mod providers;
pub mod redis;
pub mod redis_cluster;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub use ports::free_port;

pub const MASTER_KEY: &str = "sk-test-master";

/// A gateway running in the test process.
pub struct TestGateway {
    pub gw: tianji::Gateway,
}

impl TestGateway {
    /// Start with `yaml` (the master key is added unless the yaml sets general_settings).
    pub async fn start(yaml: &str) -> Self {
        let yaml = if yaml.contains("general_settings") {
            yaml.to_string()
        } else {
            format!("{yaml}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n")
        };
        let loaded = tianji::Loaded::from_yaml(&yaml).expect("config");
        let gw = tianji::Gateway::start(&loaded, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("gateway start");
        Self { gw }
    }

    pub fn addr(&self) -> SocketAddr {
        self.gw.addr
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.gw.addr, path)
    }

    /// POST JSON with the master key.
    pub async fn post(&self, path: &str, body: &str) -> Resp {
        send(
            Method::POST,
            &self.url(path),
            &[("authorization", &format!("Bearer {MASTER_KEY}"))],
            Bytes::from(body.to_string()),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Resp {
        send(
            Method::GET,
            &self.url(path),
            &[("authorization", &format!("Bearer {MASTER_KEY}"))],
            Bytes::new(),
        )
        .await
    }
}

/// A response read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Assert an OpenAI/LiteLLM error body with this status.
    pub fn assert_error(&self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text());
        assert_eq!(self.header("content-type"), Some("application/json"));
        let v = self.json();
        assert!(v["error"]["message"].is_string(), "{v}");
        assert!(v["error"]["type"].is_string(), "{v}");
        // the status as a string, or an OpenAI code such as `context_length_exceeded`
        let code = v["error"]["code"].as_str().unwrap_or_default();
        assert!(
            code == status.to_string() || (!code.is_empty() && code.parse::<u16>().is_err()),
            "{v}"
        );
        v
    }
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// Start a chat stream (model `gpt`) at `url` with `key` and read its first chunk; the stream
/// stays open while the returned body lives.
pub async fn open_stream(url: &str, key: &str) -> hyper::body::Incoming {
    let body = serde_json::json!({"model": "gpt", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let req = Request::builder()
        .method(Method::POST)
        .uri(url)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = client().request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut b = resp.into_body();
    assert!(b.frame().await.unwrap().unwrap().is_data());
    b
}

/// The status of a small chat request to `url` (model `m`) with the master key.
pub async fn chat_status(url: &str) -> u16 {
    send(
        Method::POST,
        url,
        &[("authorization", &format!("Bearer {MASTER_KEY}"))],
        Bytes::from_static(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#),
    )
    .await
    .status
    .as_u16()
}

pub async fn send(method: Method, url: &str, headers: &[(&str, &str)], body: Bytes) -> Resp {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        req = req.header("content-type", "application/json");
    }
    let resp = client()
        .request(req.body(Full::new(body)).unwrap())
        .await
        .expect("request");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Resp {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// A streamed response: each chunk with the time it arrived.
pub struct Streamed {
    pub status: StatusCode,
    pub chunks: Vec<(Instant, Bytes)>,
}

impl Streamed {
    pub fn text(&self) -> String {
        self.chunks
            .iter()
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .collect()
    }
}

pub async fn stream(url: &str, body: &str) -> Streamed {
    let req = Request::builder()
        .method(Method::POST)
        .uri(url)
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = client().request(req).await.expect("request");
    let (parts, mut body) = resp.into_parts();
    let mut chunks = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("frame").into_data() {
            chunks.push((Instant::now(), data));
        }
    }
    Streamed {
        status: parts.status,
        chunks,
    }
}

/// How often [`eventually`] and [`eventually_async`] look at their condition again.
pub const POLL: Duration = Duration::from_millis(20);

/// Poll `f` until it holds or `timeout` passes.
pub async fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(POLL).await;
    }
    f()
}

/// Poll the asynchronous condition `f` until it holds or `timeout` passes (a condition that
/// asks the gateway, PostgreSQL or Redis).
pub async fn eventually_async<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// YAML for one deployment `name` -> `provider/model` at the mock.
pub fn one_model(name: &str, model: &str, base: &str, extra: &str) -> String {
    format!(
        "model_list:\n  - model_name: \"{name}\"\n    tianji_params:\n      model: \"{model}\"\n      api_base: \"{base}\"\n      api_key: sk-provider-secret\n{extra}"
    )
}

/// Start the `tianji` binary with the config at `config` on a port the system picks
/// (`--port 0`), logging at `log` (stderr read for the address it bound, then drained): no other
/// test can take the port between its choice and the bind. The process and its port.
pub fn spawn_tianji(config: &std::path::Path, log: &str) -> (std::process::Child, u16) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tianji"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ])
        .env("TIANJI_LOG", format!("{log},tianji::listen=info"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let port = line
                .split_once("listening on http://")
                .and_then(|(_, rest)| rest.split(|c: char| c.is_whitespace() || c == '"').next())
                .and_then(|addr| addr.rsplit_once(':'))
                .and_then(|(_, p)| p.parse::<u16>().ok());
            match (port, tx.take()) {
                (Some(p), Some(t)) => {
                    let _ = t.send(p);
                }
                (None, t) => {
                    // the process's own log, as when its stderr was inherited
                    eprintln!("{line}");
                    tx = t;
                }
                (Some(_), None) => {}
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| {
            panic!(
                "the gateway process did not start (exit: {:?})",
                child.try_wait()
            )
        });
    (child, port)
}

/// A gateway in its own OS process (the release or debug `tianji` binary), for tests where
/// instances must share nothing but Postgres and Redis.
pub struct GatewayProcess {
    child: std::process::Child,
    pub port: u16,
    _config: tempfile::NamedTempFile,
}

impl GatewayProcess {
    pub async fn start(yaml: &str) -> Self {
        use std::io::Write;
        let mut cfg = tempfile::NamedTempFile::new().unwrap();
        cfg.write_all(yaml.as_bytes()).unwrap();
        let (child, port) = spawn_tianji(cfg.path(), "warn");
        Self {
            child,
            port,
            _config: cfg,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// The config file the process was started with.
    pub fn config_path(&self) -> &std::path::Path {
        self._config.path()
    }

    /// Send the process a signal by name (`HUP`, ...).
    pub fn signal(&self, sig: &str) {
        let st = std::process::Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "kill -{sig} failed");
    }

    /// CPU time (user + system) the process has used so far, in milliseconds.
    pub fn cpu_ms(&self) -> u64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // fields after the command name (which may hold spaces): state is field 3, utime 14,
        // stime 15, in clock ticks (USER_HZ, 100 on Linux)
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<u64> = rest
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        (f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0)) * 10
    }

    /// The most resident memory the process has used so far (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
