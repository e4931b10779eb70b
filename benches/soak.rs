//! Chaos soak: three gateway processes (the release `tianji` binary) on a Redis Cluster of six
//! real `redis-server`s (three primaries, a replica each, started here) and the machine's
//! PostgreSQL, under a steady mixed load from round-robin clients (chat, streams, embeddings,
//! key creation), while faults are injected on a fixed timeline:
//!
//! - `kill -9` of instance 2, restarted 5 s later;
//! - the Redis primary holding the rate limits' slot killed (its replica takes over);
//! - every PostgreSQL connection of the gateways cut (`pg_terminate_backend`).
//!
//! It reports requests sent, answered, failed by class, p99 latency in each phase, SpendLogs
//! rows against answered LLM requests (and the answers the killed instance gave within one
//! flush interval before the kill, the bound on what a `kill -9` may lose), and the admissions
//! of a rate-limited key per limit window against its limit.
//!
//! Run: `cargo bench --bench soak` (`-- --seconds N`, default 90: the timeline scales with it).
//! Needs `redis-server`, `redis-cli` and PostgreSQL (`TIANJI_TEST_DATABASE_URL`, default the
//! local one).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::convert::Infallible;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

#[path = "../tests/common/ports.rs"]
mod ports;
use ports::free_port;
// the Sentinel helper is the tests' alone
#[allow(dead_code)]
#[path = "../tests/common/redis_cluster.rs"]
mod redis_cluster;

const MASTER: &str = "sk-soak-master";
/// The limited key's requests per minute.
const LIMIT: u64 = 120;
/// The gateways' SpendLogs flush interval, seconds.
const FLUSH_SECS: f64 = 1.0;

/// What `redis_cluster` needs from its parent module (as `tests/common` gives it).
pub async fn eventually_async<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const CHAT: &str = r#"{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":5,"total_tokens":25}}"#;
const EMB: &str = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2,0.3]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":3,"total_tokens":3}}"#;
const STREAM: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":5,\"total_tokens\":25}}\n\ndata: [DONE]\n\n";

async fn mock(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let (ct, text) = if path.ends_with("/embeddings") {
        ("application/json", EMB)
    } else if memchr::memmem::find(&body, b"\"stream\":true").is_some() {
        ("text/event-stream", STREAM)
    } else {
        ("application/json", CHAT)
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    r.headers_mut().insert("content-type", ct.parse().unwrap());
    Ok(r)
}

async fn start_mock() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), service_fn(mock))
                    .await;
            });
        }
    });
    port
}

/// One gateway process (restarted on the same port).
struct Instance {
    child: Option<Child>,
}

impl Instance {
    /// Started with its log (warnings and errors) appended to `log`.
    fn start(port: u16, cfg: &std::path::Path, log: &std::path::Path) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tianji"))
            .args([
                "--config",
                cfg.to_str().unwrap(),
                "--host",
                "127.0.0.1",
                "--port",
            ])
            .arg(port.to_string())
            .env("TIANJI_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Instance { child: Some(child) }
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill9();
    }
}

async fn ready(port: u16) -> bool {
    let c = client();
    eventually_async(Duration::from_secs(60), || {
        let c = c.clone();
        async move {
            let req = Request::get(format!("http://127.0.0.1:{port}/health/readiness"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            matches!(c.request(req).await, Ok(r) if r.status() == 200)
        }
    })
    .await
}

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

fn client() -> Client {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(64)
        .build_http()
}

/// How a request ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    Ok,
    Limited,
    Client4xx,
    Server5xx,
    Transport,
}

#[derive(Clone, Copy)]
enum Kind {
    Chat,
    Stream,
    Embed,
    Manage,
    Limited,
}

struct Sample {
    at: f64,
    ms: f64,
    class: Class,
    kind: Kind,
    instance: usize,
    /// `x-tianji-call-id` of an answer (its SpendLogs row's `litellm_call_id`).
    call: Option<String>,
}

async fn send(c: &Client, port: u16, kind: Kind, key: &str) -> (Class, Option<String>) {
    let (path, body, auth) = match kind {
        Kind::Chat | Kind::Limited => (
            "/v1/chat/completions",
            r#"{"model":"gpt","messages":[{"role":"user","content":"hi"}]}"#.to_string(),
            key,
        ),
        Kind::Stream => (
            "/v1/chat/completions",
            r#"{"model":"gpt","stream":true,"messages":[{"role":"user","content":"hi"}]}"#
                .to_string(),
            key,
        ),
        Kind::Embed => (
            "/v1/embeddings",
            r#"{"model":"emb","input":"hello"}"#.to_string(),
            key,
        ),
        Kind::Manage => ("/key/generate", "{}".to_string(), MASTER),
    };
    let req = Request::post(format!("http://127.0.0.1:{port}{path}"))
        .header("authorization", format!("Bearer {auth}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let fut = async {
        let r = c.request(req).await.map_err(|e| transport(&e))?;
        let status = r.status().as_u16();
        let call = (r.headers().get("x-tianji-call-id"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // the whole body (a stream to its end)
        r.into_body().collect().await.map_err(|e| transport(&e))?;
        Ok::<(u16, Option<String>), Class>((status, call))
    };
    let (status, call) = match tokio::time::timeout(Duration::from_secs(30), fut).await {
        Err(_) => {
            transport(&"no answer within 30 s");
            return (Class::Transport, None);
        }
        Ok(Err(_)) => return (Class::Transport, None),
        Ok(Ok(r)) => r,
    };
    let class = match status {
        s if s < 300 => Class::Ok,
        429 => Class::Limited,
        s if s < 500 => Class::Client4xx,
        _ => Class::Server5xx,
    };
    (class, call)
}

/// `text` without its terminal colour sequences.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The transport errors seen (each kind once, with how often), for the report.
static TRANSPORT: Mutex<Vec<(String, usize)>> = Mutex::new(Vec::new());

fn transport(e: &dyn std::fmt::Debug) -> Class {
    let text = format!("{e:?}");
    // the kind, not the addresses
    let kind: String = text.chars().take(120).collect();
    let mut t = TRANSPORT.lock().unwrap();
    match t.iter_mut().find(|(k, _)| *k == kind) {
        Some((_, n)) => *n += 1,
        None => t.push((kind, 1)),
    }
    Class::Transport
}

async fn admin_db(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c
}

async fn new_key(port: u16, body: &str) -> String {
    let c = client();
    let req = Request::post(format!("http://127.0.0.1:{port}/key/generate"))
        .header("authorization", format!("Bearer {MASTER}"))
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let r = c.request(req).await.unwrap();
    let b = r.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    v["key"].as_str().unwrap().to_string()
}

fn p99(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * 0.99) as usize).min(v.len() - 1)]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: f64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(90.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(soak(seconds));
}

async fn soak(total: f64) {
    // the timeline, as fractions of the run
    let t_kill = total * 0.17;
    let t_restart = t_kill + 5.0;
    let t_redis = total * 0.40;
    let t_pg = total * 0.70;
    println!("# Tianji chaos soak: {total:.0} s, 3 instances, Redis Cluster 3x2, PostgreSQL");

    let mut cluster = redis_cluster::RedisCluster::start(3).await;
    let admin_url = std::env::var("TIANJI_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let db_name = format!("tianji_soak_{}", std::process::id());
    let admin = admin_db(&admin_url).await;
    for sql in [
        format!("DROP DATABASE IF EXISTS \"{db_name}\""),
        format!("CREATE DATABASE \"{db_name}\""),
    ] {
        admin.batch_execute(&sql).await.unwrap();
    }
    let db_url = format!(
        "{}/{db_name}",
        admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&admin_url)
    );
    let mock = start_mock().await;
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        cfg.path(),
        format!(
            "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"http://127.0.0.1:{mock}/v1\", api_key: sk-up}}\n  - model_name: emb\n    tianji_params: {{model: openai/text-embedding-3-small, api_base: \"http://127.0.0.1:{mock}/v1\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {MASTER}\n  database_url: \"{db_url}\"\n  proxy_batch_write_at: {FLUSH_SECS}\n  graceful_shutdown_timeout: 5\nrouter_settings:\n{}",
            cluster.startup_nodes_yaml()
        ),
    )
    .unwrap();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let logs = tempfile::tempdir().unwrap();
    let mut instances: Vec<Instance> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| Instance::start(*p, cfg.path(), &logs.path().join(format!("{i}.log"))))
        .collect();
    for p in &ports {
        assert!(ready(*p).await, "instance on {p} did not start");
    }
    let key = new_key(ports[0], "{}").await;
    let limited = new_key(ports[0], &format!("{{\"rpm_limit\": {LIMIT}}}")).await;

    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let start = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    // 12 closed-loop clients, each on its own mix, round-robin over the instances
    for w in 0..12usize {
        let (samples, stop, key, ports) =
            (samples.clone(), stop.clone(), key.clone(), ports.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut i = w;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let kind = match i % 20 {
                    0..=11 => Kind::Chat,
                    12..=15 => Kind::Stream,
                    16..=18 => Kind::Embed,
                    _ => Kind::Manage,
                };
                let inst = i % 3;
                let t0 = Instant::now();
                let (class, call) = send(&c, ports[inst], kind, &key).await;
                let s = Sample {
                    at: t0.duration_since(start).as_secs_f64(),
                    ms: t0.elapsed().as_secs_f64() * 1000.0,
                    class,
                    kind,
                    instance: inst,
                    call,
                };
                samples.lock().unwrap().push(s);
                if class == Class::Transport {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                i += 1;
            }
        }));
    }
    // the limited key: 5 requests a second (300 a minute against 120), round-robin
    {
        let (samples, stop, limited, ports) = (
            samples.clone(),
            stop.clone(),
            limited.clone(),
            ports.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            let mut i = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tick.tick().await;
                let inst = i % 3;
                let t0 = Instant::now();
                let (class, call) = send(&c, ports[inst], Kind::Limited, &limited).await;
                samples.lock().unwrap().push(Sample {
                    at: t0.duration_since(start).as_secs_f64(),
                    ms: t0.elapsed().as_secs_f64() * 1000.0,
                    class,
                    kind: Kind::Limited,
                    instance: inst,
                    call,
                });
                i += 1;
            }
        }));
    }

    let at = |t: f64| start + Duration::from_secs_f64(t);
    tokio::time::sleep_until(at(t_kill).into()).await;
    instances[1].kill9();
    println!("- {t_kill:.1} s: kill -9 instance 2");
    tokio::time::sleep_until(at(t_restart).into()).await;
    instances[1] = Instance::start(ports[1], cfg.path(), &logs.path().join("1.log"));
    let back = ready(ports[1]).await;
    println!(
        "- {t_restart:.1} s: instance 2 restarted (ready after {:.1} s: {back})",
        start.elapsed().as_secs_f64() - t_restart
    );
    tokio::time::sleep_until(at(t_redis).into()).await;
    let holder = cluster.primary_of("tianji:{rl}:v2:x").await;
    let failed_over = Instant::now();
    cluster.fail_over(holder).await;
    println!(
        "- {t_redis:.1} s: Redis primary of the limits' slot (port {holder}) killed; replica promoted after {:.1} s",
        failed_over.elapsed().as_secs_f64()
    );
    tokio::time::sleep_until(at(t_pg).into()).await;
    let cut = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db_name],
        )
        .await
        .unwrap()
        .len();
    println!("- {t_pg:.1} s: {cut} PostgreSQL connections of the gateways cut");
    tokio::time::sleep_until(at(total).into()).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    // graceful stop of every instance (SIGTERM): their queued rows are written
    for inst in &mut instances {
        if let Some(c) = &inst.child {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
        }
    }
    for inst in &mut instances {
        if let Some(mut c) = inst.child.take() {
            let _ = c.wait();
        }
    }
    let db = admin_db(&db_url).await;
    let written: std::collections::HashSet<String> = db
        .query(
            "SELECT litellm_call_id FROM \"TianjiLLM_SpendLogs\" WHERE status = 'success'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .filter_map(|r| r.get::<_, Option<String>>(0))
        .collect();
    let rows = written.len() as i64;

    let samples = std::mem::take(&mut *samples.lock().unwrap());
    let llm = |s: &&Sample| {
        matches!(
            s.kind,
            Kind::Chat | Kind::Stream | Kind::Embed | Kind::Limited
        )
    };
    let answered_llm = samples
        .iter()
        .filter(llm)
        .filter(|s| s.class == Class::Ok)
        .count() as i64;
    let near_kill = samples
        .iter()
        .filter(llm)
        .filter(|s| s.class == Class::Ok && s.instance == 1)
        .filter(|s| s.at + s.ms / 1000.0 > t_kill - FLUSH_SECS && s.at < t_kill)
        .count();
    let count = |c: Class| samples.iter().filter(|s| s.class == c).count();
    println!();
    println!(
        "| requests | sent | answered 2xx | 429 | other 4xx | 5xx | transport (refused/reset/timeout) |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| all | {} | {} | {} | {} | {} | {} |",
        samples.len(),
        count(Class::Ok),
        count(Class::Limited),
        count(Class::Client4xx),
        count(Class::Server5xx),
        count(Class::Transport)
    );
    for (kind, n) in TRANSPORT.lock().unwrap().iter() {
        println!("- transport error x{n}: {kind}");
    }
    // what the gateways logged: panics (none expected) and warnings/errors by kind
    let mut logged: Vec<(String, usize)> = Vec::new();
    for i in 0..3 {
        let text =
            std::fs::read_to_string(logs.path().join(format!("{i}.log"))).unwrap_or_default();
        for line in text.lines() {
            let line = strip_ansi(line);
            // the level, target and message's start, without the timestamp
            let kind = if line.contains("panicked") {
                format!("PANIC: {line}")
            } else {
                let rest = line
                    .split_once(' ')
                    .map_or(line.as_str(), |(_, r)| r.trim_start());
                rest.chars().take(110).collect()
            };
            match logged.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => *n += 1,
                None => logged.push((kind, 1)),
            }
        }
    }
    logged.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    for (kind, n) in logged.iter().take(12) {
        println!("- gateway log x{n}: {kind}");
    }
    let odd: Vec<String> = samples
        .iter()
        .filter(|s| s.class == Class::Transport && !(s.at >= t_kill && s.at < t_restart + 2.0))
        .map(|s| {
            format!(
                "{:.2} s on instance {} ({:?})",
                s.at,
                s.instance + 1,
                s.kind as u8
            )
        })
        .collect();
    if !odd.is_empty() {
        println!(
            "- transport errors outside the kill window: {}",
            odd.join(", ")
        );
    }
    println!();
    let phases = [
        ("steady", 2.0, t_kill),
        ("instance killed -> restarted", t_kill, t_restart + 5.0),
        ("Redis primary failover", t_redis, t_redis + 10.0),
        ("PostgreSQL connections cut", t_pg, t_pg + 10.0),
        ("after", t_pg + 10.0, total),
    ];
    println!("| phase | requests | 2xx | 5xx | transport | p99 ms (all answered) |");
    println!("|---|---|---|---|---|---|");
    for (name, a, b) in phases {
        let in_phase: Vec<&Sample> = samples.iter().filter(|s| s.at >= a && s.at < b).collect();
        let lat: Vec<f64> = in_phase
            .iter()
            .filter(|s| s.class != Class::Transport)
            .map(|s| s.ms)
            .collect();
        println!(
            "| {name} ({a:.0}-{b:.0} s) | {} | {} | {} | {} | {:.1} |",
            in_phase.len(),
            in_phase.iter().filter(|s| s.class == Class::Ok).count(),
            in_phase
                .iter()
                .filter(|s| s.class == Class::Server5xx)
                .count(),
            in_phase
                .iter()
                .filter(|s| s.class == Class::Transport)
                .count(),
            p99(lat)
        );
    }
    println!();
    println!(
        "SpendLogs rows (success): {rows}; answered LLM requests: {answered_llm}; answers of the killed instance within one flush interval ({FLUSH_SECS} s) before the kill: {near_kill}"
    );
    println!();
    println!(
        "| answered LLM requests without a SpendLogs row | instance 1 | instance 2 | instance 3 |"
    );
    println!("|---|---|---|---|");
    let missing = |f: &dyn Fn(&Sample) -> bool| -> [usize; 3] {
        let mut m = [0; 3];
        for s in samples
            .iter()
            .filter(llm)
            .filter(|s| s.class == Class::Ok && f(s))
        {
            if s.call.as_ref().is_none_or(|c| !written.contains(c)) {
                m[s.instance] += 1;
            }
        }
        m
    };
    let killed_window = |s: &Sample| s.at < t_kill && s.at + s.ms / 1000.0 > t_kill - FLUSH_SECS;
    let w = missing(&killed_window);
    let o = missing(&|s: &Sample| !killed_window(s));
    println!(
        "| answered in the flush interval before the kill -9 | {} | {} | {} |",
        w[0], w[1], w[2]
    );
    println!(
        "| answered at any other time (graceful paths) | {} | {} | {} |",
        o[0], o[1], o[2]
    );
    // the limited key: admissions per limit window (windows start at its first request)
    let lim: Vec<&Sample> = samples
        .iter()
        .filter(|s| matches!(s.kind, Kind::Limited))
        .collect();
    let first = lim
        .iter()
        .filter(|s| s.class == Class::Ok)
        .map(|s| s.at)
        .fold(f64::MAX, f64::min);
    let mut windows: Vec<(u64, u64)> = Vec::new();
    for s in lim.iter().filter(|s| s.class == Class::Ok) {
        let w = ((s.at - first) / 60.0) as usize;
        if windows.len() <= w {
            windows.resize(w + 1, (0, 0));
        }
        windows[w].0 += 1;
    }
    for s in lim.iter().filter(|s| s.class == Class::Limited) {
        let w = ((s.at - first).max(0.0) / 60.0) as usize;
        if windows.len() <= w {
            windows.resize(w + 1, (0, 0));
        }
        windows[w].1 += 1;
    }
    println!();
    println!("| limit window (rpm {LIMIT}) | admitted | refused 429 | over the limit |");
    println!("|---|---|---|---|");
    for (i, (ok, refused)) in windows.iter().enumerate() {
        println!(
            "| {}-{} s | {ok} | {refused} | {} |",
            (first + i as f64 * 60.0) as u64,
            (first + (i + 1) as f64 * 60.0) as u64,
            ok.saturating_sub(LIMIT)
        );
    }
    drop(db);
    let _ = admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS \"{db_name}\" WITH (FORCE)"
        ))
        .await;
}
