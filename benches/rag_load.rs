//! RAG end to end (issue 27's acceptance), in one run against the release `tianji` binary with
//! a real PostgreSQL and a zero-latency mock embedding server (this binary's `__mock` role,
//! 768-dimensional vectors around seeded cluster centres):
//!
//! 1. ingest: a 1 MiB text file uploaded to `POST /v1/rag/ingest` (multipart, default chunking
//!    1000/200 characters, default `embedding_batch_size` 64), a few rounds; wall time against
//!    the gateway's CPU time (user + sys of its process, all threads), chunks, embedding calls,
//!    and the mock's and PostgreSQL's CPU;
//! 2. search: 100,000 chunks of 768 dimensions written straight into PostgreSQL (one store, 100
//!    files, `COPY ... BINARY`), a new gateway started (it loads the store into its index in the
//!    background), the time until a search answers, then sequential and concurrent
//!    `POST /v1/vector_stores/{id}/search` calls (the query embedded by the mock near one of
//!    the clusters, the index searched, the chunks' text read from PostgreSQL): latency
//!    percentiles and the gateway's CPU per search.
//!
//! Run: `cargo bench --bench rag_load` (options after `--`: `--ingest` or `--search` for one
//! part only; `--rounds N` ingest rounds, default 20; `--slow-rounds N` more rounds against a
//! mock that answers after `--latency-ms L` (defaults 2 and 50: a provider's latency);
//! `--stored N` chunks, default 100,000; `--searches N` per search phase, default 2,000;
//! `--clients C` of the concurrent phase, default 8). PostgreSQL: `TIANJI_BENCH_DATABASE_URL`
//! (else `TIANJI_TEST_DATABASE_URL`, else `postgres://postgres@127.0.0.1:5432/postgres`); a
//! fresh database per run, dropped after. `RAG_BENCH_DEBUG=1` prints the answers while waiting
//! for the store's load; the gateway's pid is printed (for `perf record -p`). Nothing is pinned
//! to a CPU: gateway, mocks, PostgreSQL and this load generator share the machine's cores as
//! the scheduler places them.

// Bench code: fail loudly; results go to stdout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
#[global_allocator]
static GLOBAL: tianji::util::alloc::Mimalloc = tianji::util::alloc::Mimalloc;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

#[path = "../tests/common/ports.rs"]
mod ports;
use ports::free_port;
#[path = "common/clusters.rs"]
mod clusters;
use clusters::{Clusters, DIMS, Rng};

const MASTER: &str = "sk-bench-master";
/// The uploaded document's size.
const DOC_BYTES: usize = 1 << 20;
/// Files the stored chunks are spread over.
const FILES: usize = 100;
/// The preloaded store's id.
const STORE: &str = "vs_ragbench";
/// Results asked of each search.
const K: usize = 10;

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    match args.get(1).map(String::as_str) {
        // `__mock PORT LATENCY_MS`
        Some("__mock") => role_mock(args[2].parse().unwrap(), args[3].parse().unwrap()),
        _ => orchestrate(&args[1..]),
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// === vectors ===

// === the mock embedding server ===

struct Mock {
    /// Added before each embedding answer (0: a zero-latency provider).
    latency: Duration,
    /// Embedding calls answered.
    calls: AtomicU64,
    /// Each input's vector: the next point around the clusters.
    points: Mutex<Clusters>,
}

type MockBody = Full<Bytes>;

fn reply(status: u16, body: Vec<u8>) -> Response<MockBody> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

/// `POST /v1/embeddings` (OpenAI's answer, one clustered vector per input, made as it is asked
/// for); `GET /calls`: the embedding calls answered so far.
async fn mock_serve(
    m: Arc<Mock>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, Infallible> {
    if req.uri().path() == "/calls" {
        let n = m.calls.load(Ordering::Relaxed);
        return Ok(reply(200, n.to_string().into_bytes()));
    }
    let path = req.uri().path().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    if !path.ends_with("/embeddings") {
        return Ok(reply(
            404,
            br#"{"error":{"message":"mock: embeddings only"}}"#.to_vec(),
        ));
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = match &v["input"] {
        Value::Array(a) => a.len(),
        _ => 1,
    };
    m.calls.fetch_add(1, Ordering::Relaxed);
    if !m.latency.is_zero() {
        tokio::time::sleep(m.latency).await;
    }
    let base64 = v["encoding_format"] == "base64";
    let data: Vec<Value> = {
        let mut points = m.points.lock().unwrap();
        (0..n)
            .map(|i| {
                let p = points.point();
                let embedding = if base64 {
                    json!(tianji::providers::embedding_list::encode(&p))
                } else {
                    json!(p)
                };
                json!({"object": "embedding", "index": i, "embedding": embedding})
            })
            .collect()
    };
    let answer = json!({"object": "list", "model": v["model"], "data": data,
        "usage": {"prompt_tokens": n * 250, "total_tokens": n * 250}});
    Ok(reply(200, serde_json::to_vec(&answer).unwrap()))
}

fn role_mock(port: u16, latency_ms: u64) {
    current_thread().block_on(async move {
        let m = Arc::new(Mock {
            latency: Duration::from_millis(latency_ms),
            calls: AtomicU64::new(0),
            points: Mutex::new(Clusters::new(2)),
        });
        let l = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        loop {
            let (s, _) = l.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            let m = m.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| mock_serve(m.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
}

// === processes ===

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

/// Wait (up to `limit`) until `port` accepts connections.
fn wait_port(port: u16, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("port {port} never opened");
}

/// CPU time (ns, user + sys) of a process since it started, threads that have ended included
/// (`/proc/<pid>/stat`, in ticks of 10 ms): a phase's total.
fn cpu_ns(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat_ticks(&stat) * 10_000_000
}

/// utime + stime (ticks) of a `/proc/<pid>/stat` line.
fn stat_ticks(stat: &str) -> u64 {
    // after "pid (comm) ": state is field 3; utime and stime are fields 14 and 15
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    ticks(11) + ticks(12)
}

/// CPU time (ns) of a process's live threads (`/proc/<pid>/task/*/schedstat`): precise, for
/// one search's share (a thread that ends meanwhile takes its time with it).
fn live_cpu_ns(pid: u32) -> u64 {
    let mut total = 0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
                total += s
                    .split_whitespace()
                    .next()
                    .and_then(|x| x.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    total
}

/// CPU time (ns, user + sys at 100 ticks a second) of every `postgres` process now running: the
/// server's share of a phase, approximately (backends that exit meanwhile are not counted;
/// other users of the same server are).
fn postgres_cpu_ns() -> u64 {
    let mut total = 0;
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for p in procs.flatten() {
        let path = p.path();
        if !std::fs::read_to_string(path.join("comm")).is_ok_and(|c| c.trim() == "postgres") {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        total += stat_ticks(&stat) * 10_000_000;
    }
    total
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// A mock embedding server answering after `latency_ms`.
fn start_mock(latency_ms: u64) -> (Proc, u16) {
    let me = std::env::current_exe().unwrap();
    let port = free_port();
    let p = Proc(
        Command::new(me)
            .args(["__mock", &port.to_string(), &latency_ms.to_string()])
            .spawn()
            .unwrap(),
    );
    wait_port(port, Duration::from_secs(10));
    (p, port)
}

/// The gateway's config: the embedding models `emb` (the zero-latency mock) and `emb-slow`
/// (the mock with latency), the database.
fn config(mock_port: u16, slow_port: u16, db_url: &str) -> tempfile::NamedTempFile {
    let mut cfg = tempfile::NamedTempFile::new().unwrap();
    let model = |name: &str, port: u16| {
        format!(
            "  - model_name: {name}\n    tianji_params: {{model: openai/emb, api_base: \"http://127.0.0.1:{port}/v1\", api_key: sk-upstream}}\n"
        )
    };
    write!(
        cfg,
        "model_list:\n{}{}general_settings:\n  master_key: {MASTER}\n  database_url: \"{db_url}\"\n",
        model("emb", mock_port),
        model("emb-slow", slow_port)
    )
    .unwrap();
    cfg
}

/// Start the `tianji` binary (`TIANJI_BENCH_BIN` names another build of it) on `cfg`; returns
/// once it listens.
fn start_gateway(cfg: &tempfile::NamedTempFile) -> (Proc, SocketAddr) {
    let bin = std::env::var("TIANJI_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_tianji").to_string());
    let port = free_port();
    let p = Proc(
        Command::new(bin)
            .args([
                "--config",
                cfg.path().to_str().unwrap(),
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .env("TIANJI_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(port, Duration::from_secs(120));
    println!("gateway: pid {} on port {port}", p.pid());
    (p, ([127, 0, 0, 1], port).into())
}

// === HTTP ===

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Sender {
    let s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    tx
}

/// POST `body` to `path` with the master key: the status and the answer.
async fn post(
    tx: &mut Sender,
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    body: Bytes,
) -> (u16, Bytes) {
    tx.ready().await.unwrap();
    let req = Request::post(path)
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {MASTER}"))
        .header("content-type", content_type)
        .body(Full::new(body))
        .unwrap();
    let resp = tx.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

async fn mock_calls(port: u16) -> u64 {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut tx = connect(addr).await;
    let req = Request::get("/calls")
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tx.send_request(req).await.unwrap();
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    std::str::from_utf8(&b).unwrap().parse().unwrap()
}

// === PostgreSQL ===

fn admin_url() -> String {
    std::env::var("TIANJI_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("TIANJI_TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn pg(url: &str) -> Option<tokio_postgres::Client> {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(c)
}

/// A fresh database (name, URL); `None` when PostgreSQL does not answer.
async fn create_database() -> Option<(String, String)> {
    let admin = admin_url();
    let c = pg(&admin).await?;
    let name = format!("tianji_ragbench_{}", std::process::id());
    c.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\""))
        .await
        .ok()?;
    c.batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .ok()?;
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(admin.clone());
    Some((name.clone(), format!("{base}/{name}")))
}

/// The run's database: dropped with this.
struct Scratch(String);

impl Drop for Scratch {
    fn drop(&mut self) {
        current_thread().block_on(drop_database(&self.0));
    }
}

async fn drop_database(name: &str) {
    if let Some(c) = pg(&admin_url()).await {
        let _ = c
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await;
    }
}

// === documents ===

const WORDS: [&str; 24] = [
    "the",
    "policy",
    "grants",
    "employees",
    "vacation",
    "days",
    "per",
    "year",
    "and",
    "expense",
    "reports",
    "are",
    "due",
    "on",
    "fridays",
    "with",
    "receipts",
    "security",
    "requires",
    "a",
    "password",
    "rotation",
    "every",
    "quarter",
];

/// Prose of `bytes` ASCII bytes: sentences of 8 to 19 words, paragraphs of 3 to 8 sentences
/// separated by blank lines (what the splitter cuts first).
fn prose(seed: u64, bytes: usize) -> String {
    let mut rng = Rng(seed | 1);
    let mut s = String::with_capacity(bytes + 200);
    while s.len() < bytes {
        for _ in 0..3 + rng.below(6) {
            let n = 8 + rng.below(12);
            for w in 0..n {
                let word = WORDS[rng.below(WORDS.len())];
                if w == 0 {
                    let mut c = word.chars();
                    if let Some(f) = c.next() {
                        s.push(f.to_ascii_uppercase());
                        s.push_str(c.as_str());
                    }
                } else {
                    s.push(' ');
                    s.push_str(word);
                }
            }
            s.push_str(". ");
        }
        s.pop();
        s.push_str("\n\n");
    }
    s.truncate(bytes);
    s
}

/// A multipart body: `ingest_options`, then the file.
fn multipart(options: &Value, filename: &str, data: &[u8]) -> (String, Bytes) {
    let boundary = "tianjiragbenchboundary";
    let mut b: Vec<u8> = Vec::with_capacity(data.len() + 512);
    b.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"ingest_options\"\r\n\r\n{options}\r\n")
            .as_bytes(),
    );
    b.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: text/plain\r\n\r\n")
            .as_bytes(),
    );
    b.extend_from_slice(data);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/form-data; boundary={boundary}"),
        Bytes::from(b),
    )
}

// === measurements ===

/// The `p` quantile (0..=1) of `v`, in ms.
fn pct_ms(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i] as f64 / 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Opts {
    ingest: bool,
    search: bool,
    rounds: usize,
    slow_rounds: usize,
    latency_ms: u64,
    stored: usize,
    searches: usize,
    clients: usize,
}

fn parse_opts(args: &[String]) -> Opts {
    let mut o = Opts {
        ingest: true,
        search: true,
        rounds: 20,
        slow_rounds: 2,
        latency_ms: 50,
        stored: 100_000,
        searches: 2_000,
        clients: 8,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut v = || {
            it.next()
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or_else(|| panic!("{a} needs a number"))
        };
        match a.as_str() {
            "--ingest" => o.search = false,
            "--search" => o.ingest = false,
            "--rounds" => o.rounds = v(),
            "--slow-rounds" => o.slow_rounds = v(),
            "--latency-ms" => o.latency_ms = v() as u64,
            "--stored" => o.stored = v(),
            "--searches" => o.searches = v(),
            "--clients" => o.clients = v(),
            _ => {}
        }
    }
    o
}

fn orchestrate(args: &[String]) {
    let o = parse_opts(args);
    let rt = current_thread();
    let Some((db_name, db_url)) = rt.block_on(create_database()) else {
        println!("rag_load: skipped (no PostgreSQL; set TIANJI_BENCH_DATABASE_URL)");
        return;
    };
    // dropped last (after the processes), on a panic too
    let _db = Scratch(db_name);
    println!(
        "rag_load: {} CPUs, load average {} at the start",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    let (mock, mock_port) = start_mock(0);
    let (slow, slow_port) = start_mock(o.latency_ms);
    let cfg = config(mock_port, slow_port, &db_url);
    // the first gateway makes the schema (its migrations), then serves the ingests
    let (gw, addr) = start_gateway(&cfg);
    if o.ingest {
        let zero = Ingests {
            model: "emb",
            mock: &mock,
            port: mock_port,
            rounds: o.rounds,
        };
        rt.block_on(ingest_phase(&gw, addr, &zero, &db_url));
        floor_phase(&db_url, &mock, mock_port, o.rounds);
        if o.slow_rounds > 0 {
            println!(
                "\nthe same with {} ms of latency per embedding call:",
                o.latency_ms
            );
            let slow = Ingests {
                model: "emb-slow",
                mock: &slow,
                port: slow_port,
                rounds: o.slow_rounds,
            };
            rt.block_on(ingest_phase(&gw, addr, &slow, &db_url));
        }
    }
    drop(gw);
    if o.search {
        rt.block_on(search_phase(&o, &cfg, &mock, &db_url));
    }
    drop((mock, slow));
    println!("rag_load: load average {} at the end", load_average());
}

/// Ingest rounds with one embedding model.
struct Ingests<'a> {
    model: &'a str,
    mock: &'a Proc,
    port: u16,
    rounds: usize,
}

/// Ingest `i.rounds` documents of 1 MiB, each into a new store.
async fn ingest_phase(gw: &Proc, addr: SocketAddr, i: &Ingests<'_>, db_url: &str) {
    let (mock, mock_port) = (i.mock, i.port);
    let db = pg(db_url).await.unwrap();
    println!(
        "\ningest: {} KiB text uploads to /v1/rag/ingest (chunking 1000/200, embedding batches of 64)",
        DOC_BYTES >> 10
    );
    println!(
        "| round | wall ms | gateway CPU ms | gateway CPU / wall | chunks | embedding calls | gateway CPU µs/chunk | mock CPU ms | postgres CPU ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut tx = connect(addr).await;
    let mut ratios = Vec::new();
    let (mut wall_ns, mut gateway_ns) = (0u128, 0u128);
    for round in 0..i.rounds {
        let doc = prose(round as u64 + 11, DOC_BYTES);
        let options = json!({"embedding": {"model": i.model}, "name": format!("ingest-{round}")});
        let (ct, body) = multipart(&options, &format!("handbook-{round}.txt"), doc.as_bytes());
        let calls0 = mock_calls(mock_port).await;
        let (g0, m0, p0) = (cpu_ns(gw.pid()), cpu_ns(mock.pid()), postgres_cpu_ns());
        let t0 = Instant::now();
        let (status, answer) = post(&mut tx, addr, "/v1/rag/ingest", &ct, body).await;
        let wall = t0.elapsed();
        let (g1, m1, p1) = (cpu_ns(gw.pid()), cpu_ns(mock.pid()), postgres_cpu_ns());
        let calls = mock_calls(mock_port).await - calls0;
        let a: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        assert!(
            status == 200 && a["status"] == "completed",
            "ingest: {status} {}",
            String::from_utf8_lossy(&answer)
        );
        let vs = a["vector_store_id"].as_str().unwrap();
        let chunks: i64 = db
            .query_one(
                "SELECT count(*) FROM \"TianjiLLM_VectorStoreChunkTable\" WHERE vector_store_id = $1",
                &[&vs],
            )
            .await
            .unwrap()
            .get(0);
        wall_ns += wall.as_nanos();
        gateway_ns += u128::from(g1 - g0);
        let gcpu = (g1 - g0) as f64 / 1e6;
        let ratio = gcpu / ms(wall);
        ratios.push(ratio);
        println!(
            "| {round} | {:.0} | {gcpu:.0} | {:.1}% | {chunks} | {calls} | {:.0} | {:.0} | {:.0} |",
            ms(wall),
            ratio * 100.0,
            gcpu * 1e3 / chunks as f64,
            (m1 - m0) as f64 / 1e6,
            (p1.saturating_sub(p0)) as f64 / 1e6,
        );
    }
    summary(
        "ingest: gateway CPU",
        &mut ratios,
        gateway_ns,
        wall_ns,
        " (target <= 10%)",
    );
}

/// The line under an ingest table: CPU over wall for all rounds and the median round's.
fn summary(label: &str, ratios: &mut [f64], cpu_ns: u128, wall_ns: u128, after: &str) {
    ratios.sort_by(f64::total_cmp);
    if let Some(m) = ratios.get(ratios.len() / 2) {
        println!(
            "{label} / wall {:.1}% over all rounds ({:.0} ms of {:.0} ms), median round {:.1}%{after}",
            cpu_ns as f64 / wall_ns as f64 * 100.0,
            cpu_ns as f64 / 1e6,
            wall_ns as f64 / 1e6,
            m * 100.0
        );
    }
}

// === the floor: the ingest's unavoidable work, without a gateway ===

/// A vector of the mock's answer (floats or base64).
#[derive(serde::Deserialize)]
struct FloorItem {
    #[serde(deserialize_with = "tianji::providers::embedding_list::vector")]
    embedding: Vec<f32>,
}

#[derive(serde::Deserialize)]
struct FloorAnswer {
    data: Vec<FloorItem>,
}

/// One floor round's measures.
struct FloorRound {
    wall: Duration,
    cpu: Duration,
    chunks: usize,
}

/// What ingesting `doc` costs at the least, on one thread (a current-thread runtime: the HTTP
/// and PostgreSQL connections' tasks run on it too, so its CPU time is all of it): the text
/// chunked as the gateway does (1000/200), each batch of 64 embedded by the mock over one
/// keep-alive HTTP/1.1 connection in base64 and decoded, the rows written with the gateway's
/// own insert, the vectors normalised into a flat array. What it leaves out is what makes the
/// gateway a gateway: the upload's HTTP and multipart, authentication, routing, limits,
/// SpendLogs rows, the index's bookkeeping.
fn floor_round(db_url: &str, mock_port: u16, doc: &str, round: usize) -> FloorRound {
    let (db_url, doc) = (db_url.to_string(), doc.to_string());
    std::thread::spawn(move || {
        current_thread().block_on(async move {
            let db = pg(&db_url).await.unwrap();
            let mock: SocketAddr = ([127, 0, 0, 1], mock_port).into();
            let mut tx = connect(mock).await;
            let insert = db
                .prepare(
                    "INSERT INTO \"TianjiLLM_VectorStoreChunkTable\" (\"vector_store_id\", \"file_id\", \"seq\", \"content\", \"embedding\")
                     SELECT $1, $2, c.seq, c.content, c.embedding
                     FROM unnest($3::int[], $4::text[], $5::bytea[]) AS c(seq, content, embedding)
                     RETURNING \"chunk_id\"",
                )
                .await
                .unwrap();
            let (vs, fid) = (format!("vs_floor{round}"), format!("file-floor{round}"));
            let t0 = Instant::now();
            let c0 = cpu_time::ThreadTime::now();
            db.execute(
                "INSERT INTO \"TianjiLLM_ManagedVectorStoreTable\" (unified_resource_id, resource_object, model_mappings, created_by, updated_by)
                 VALUES ($1, '{}', '{}', 'floor', 'floor')",
                &[&vs],
            )
            .await
            .unwrap();
            db.execute(
                "INSERT INTO \"TianjiLLM_VectorStoreFileTable\" (vector_store_id, file_id) VALUES ($1, $2)",
                &[&vs, &fid],
            )
            .await
            .unwrap();
            let chunks = tianji::rag::chunk::split(&doc, &Default::default());
            let mut index: Vec<f32> = Vec::new();
            for (b, batch) in chunks.chunks(64).enumerate() {
                let body = json!({"model": "emb", "input": batch, "encoding_format": "base64"});
                tx.ready().await.unwrap();
                let req = Request::post("/v1/embeddings")
                    .header("host", mock.to_string())
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body.to_string())))
                    .unwrap();
                let resp = tx.send_request(req).await.unwrap();
                let bytes = resp.into_body().collect().await.unwrap().to_bytes();
                let answer: FloorAnswer = serde_json::from_slice(&bytes).unwrap();
                let seqs: Vec<i32> = (0..batch.len()).map(|i| (b * 64 + i) as i32).collect();
                let blobs: Vec<Vec<u8>> = answer
                    .data
                    .iter()
                    .map(|i| i.embedding.iter().flat_map(|x| x.to_le_bytes()).collect())
                    .collect();
                let rows = db
                    .query(&insert, &[&vs, &fid, &seqs, &batch, &blobs])
                    .await
                    .unwrap();
                assert_eq!(rows.len(), batch.len());
                for item in &answer.data {
                    let norm = item.embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
                    index.extend(item.embedding.iter().map(|x| x / norm));
                }
            }
            let cpu = c0.elapsed();
            let wall = t0.elapsed();
            assert_eq!(index.len(), chunks.len() * DIMS);
            FloorRound {
                wall,
                cpu,
                chunks: chunks.len(),
            }
        })
    })
    .join()
    .unwrap()
}

/// The floor's rounds on the same documents as the gateway's.
fn floor_phase(db_url: &str, mock: &Proc, mock_port: u16, rounds: usize) {
    println!(
        "\nfloor: the same documents ingested without a gateway (one thread: chunk, embed in base64 over HTTP/1.1, insert, normalise)"
    );
    println!(
        "| round | wall ms | floor CPU ms | floor CPU / wall | chunks | floor CPU µs/chunk | mock CPU ms | postgres CPU ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let (mut wall_ns, mut cpu_ns_sum) = (0u128, 0u128);
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let doc = prose(round as u64 + 11, DOC_BYTES);
        let (m0, p0) = (cpu_ns(mock.pid()), postgres_cpu_ns());
        let r = floor_round(db_url, mock_port, &doc, round);
        let (m1, p1) = (cpu_ns(mock.pid()), postgres_cpu_ns());
        let ratio = r.cpu.as_secs_f64() / r.wall.as_secs_f64();
        ratios.push(ratio);
        wall_ns += r.wall.as_nanos();
        cpu_ns_sum += r.cpu.as_nanos();
        println!(
            "| {round} | {:.0} | {:.1} | {:.1}% | {} | {:.1} | {:.0} | {:.0} |",
            ms(r.wall),
            ms(r.cpu),
            ratio * 100.0,
            r.chunks,
            r.cpu.as_secs_f64() * 1e6 / r.chunks as f64,
            (m1 - m0) as f64 / 1e6,
            (p1.saturating_sub(p0)) as f64 / 1e6,
        );
    }
    summary("floor: CPU", &mut ratios, cpu_ns_sum, wall_ns, "");
}

/// Write `n` chunks of 768 dimensions (clustered) into one completed store of `FILES` files.
async fn preload(db: &tokio_postgres::Client, n: usize) {
    db.batch_execute(&format!(
        "DELETE FROM \"TianjiLLM_ManagedVectorStoreTable\";
         INSERT INTO \"TianjiLLM_ManagedVectorStoreTable\"
             (unified_resource_id, resource_object, model_mappings, created_by, updated_by)
         VALUES ('{STORE}', '{{\"name\": \"ragbench\"}}',
             '{{\"provider\": \"tianji\", \"embedding_model\": \"emb\", \"dimensions\": {DIMS},
               \"owner\": {{\"key\": \"\", \"user_id\": \"\", \"team_id\": \"\"}}}}',
             'default_user_id', 'default_user_id');
         INSERT INTO \"TianjiLLM_VectorStoreFileTable\"
             (vector_store_id, file_id, filename, status, usage_bytes)
         SELECT '{STORE}', 'file-ragbench-' || g, 'doc-' || g || '.txt', 'completed', 1000000
         FROM generate_series(0, {}) g;",
        FILES - 1
    ))
    .await
    .unwrap();
    let sink = db
        .copy_in(
            "COPY \"TianjiLLM_VectorStoreChunkTable\" (vector_store_id, file_id, seq, content, embedding) FROM STDIN BINARY",
        )
        .await
        .unwrap();
    let types = [Type::TEXT, Type::TEXT, Type::INT4, Type::TEXT, Type::BYTEA];
    let mut w = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
    let mut points = Clusters::new(1);
    let per_file = n.div_ceil(FILES);
    for i in 0..n {
        let file = format!("file-ragbench-{}", i / per_file);
        let seq = (i % per_file) as i32;
        let content = prose(i as u64 + 1_000, 1_000);
        let blob: Vec<u8> = points
            .point()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let row: [&(dyn ToSql + Sync); 5] = [&STORE, &file, &seq, &content, &blob];
        w.as_mut().write(&row).await.unwrap();
    }
    w.as_mut().finish().await.unwrap();
}

/// Latencies (ns) of `GET /health/liveliness` every 20 ms until `stop`: how the gateway answers
/// other requests while it loads a store.
async fn liveness_probe(addr: SocketAddr, stop: Arc<std::sync::atomic::AtomicBool>) -> Vec<u64> {
    let mut tx = connect(addr).await;
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        tx.ready().await.unwrap();
        let req = Request::get("/health/liveliness")
            .header("host", addr.to_string())
            .body(Full::new(Bytes::new()))
            .unwrap();
        let t0 = Instant::now();
        let resp = tx.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.into_body().collect().await.unwrap();
        out.push(t0.elapsed().as_nanos() as u64);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out
}

/// Latencies (ns) and the top scores of `count` searches on one connection.
async fn searcher(addr: SocketAddr, first: usize, count: usize, cpu_of: Option<u32>) -> Searched {
    let mut tx = connect(addr).await;
    let path = format!("/v1/vector_stores/{STORE}/search");
    let mut out = Searched::default();
    for i in first..first + count {
        let body = Bytes::from(
            json!({"query": format!("what does the policy say about item {i}?"), "max_num_results": K})
                .to_string(),
        );
        let c0 = cpu_of.map(live_cpu_ns);
        let t0 = Instant::now();
        let (status, answer) = post(&mut tx, addr, &path, "application/json", body).await;
        let took = t0.elapsed().as_nanos() as u64;
        if let (Some(pid), Some(c0)) = (cpu_of, c0) {
            out.cpu.push(live_cpu_ns(pid).saturating_sub(c0));
        }
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
        let a: Value = serde_json::from_slice(&answer).unwrap();
        let data = a["data"].as_array().unwrap();
        assert_eq!(data.len(), K, "{a}");
        out.top.push(data[0]["score"].as_f64().unwrap());
        out.latency.push(took);
    }
    out
}

#[derive(Default)]
struct Searched {
    latency: Vec<u64>,
    cpu: Vec<u64>,
    top: Vec<f64>,
}

impl Searched {
    fn add(&mut self, other: Searched) {
        self.latency.extend(other.latency);
        self.cpu.extend(other.cpu);
        self.top.extend(other.top);
    }
}

async fn search_phase(o: &Opts, cfg: &tempfile::NamedTempFile, mock: &Proc, db_url: &str) {
    let db = pg(db_url).await.unwrap();
    println!(
        "\nsearch: {} chunks of {DIMS} dimensions in one store ({FILES} files), k = {K}",
        o.stored
    );
    let t0 = Instant::now();
    let p0 = postgres_cpu_ns();
    preload(&db, o.stored).await;
    println!(
        "preload: {} chunks written with COPY BINARY in {:.1} s (postgres CPU {:.1} s)",
        o.stored,
        t0.elapsed().as_secs_f64(),
        (postgres_cpu_ns().saturating_sub(p0)) as f64 / 1e9
    );
    let size: i64 = db
        .query_one(
            "SELECT pg_total_relation_size('\"TianjiLLM_VectorStoreChunkTable\"')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    println!("chunk table: {:.0} MiB", size as f64 / 1048576.0);

    // a new gateway loads the store at startup; the first search waits for it
    let t0 = Instant::now();
    let (gw, addr) = start_gateway(cfg);
    let listening = t0.elapsed();
    let deadline = t0 + Duration::from_secs(1_800);
    let path = format!("/v1/vector_stores/{STORE}/search");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = tokio::spawn(liveness_probe(addr, stop.clone()));
    loop {
        let mut tx = connect(addr).await;
        let body = Bytes::from(json!({"query": "first", "max_num_results": K}).to_string());
        let (status, answer) = post(&mut tx, addr, &path, "application/json", body).await;
        if status == 200
            && serde_json::from_slice::<Value>(&answer)
                .is_ok_and(|a| a["data"].as_array().is_some_and(|d| !d.is_empty()))
        {
            break;
        }
        if std::env::var_os("RAG_BENCH_DEBUG").is_some() {
            println!(
                "  {:.1} s: {status} {}",
                t0.elapsed().as_secs_f64(),
                String::from_utf8_lossy(&answer[..answer.len().min(200)])
            );
        }
        assert!(
            Instant::now() < deadline,
            "the store never answered: {status} {}",
            String::from_utf8_lossy(&answer)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let loaded = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut probes = probe.await.unwrap();
    println!(
        "load: listening after {:.1} s, first search answered after {:.1} s; gateway CPU so far {:.1} s; RSS {} MiB",
        listening.as_secs_f64(),
        loaded.as_secs_f64(),
        cpu_ns(gw.pid()) as f64 / 1e9,
        rss_mib(gw.pid())
    );
    println!(
        "during the load: {} liveness probes, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        probes.len(),
        pct_ms(&mut probes, 0.5),
        pct_ms(&mut probes, 0.99),
        pct_ms(&mut probes, 1.0)
    );

    // warm up (connections, pools, caches)
    searcher(addr, 0, 200, None).await;

    println!(
        "| phase | searches | wall p50 ms | wall p90 ms | wall p99 ms | max ms | searches/s | gateway CPU µs/search | gateway CPU p50 ms | gateway CPU p99 ms | mock CPU µs/search | postgres CPU µs/search | mean top score |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");

    // sequential, with each search's gateway CPU time
    let n = o.searches;
    let (g0, m0, p0, t0) = (
        cpu_ns(gw.pid()),
        cpu_ns(mock.pid()),
        postgres_cpu_ns(),
        Instant::now(),
    );
    let seq = searcher(addr, 1_000, n, Some(gw.pid())).await;
    let row = Totals {
        wall: t0.elapsed(),
        gateway: cpu_ns(gw.pid()) - g0,
        mock: cpu_ns(mock.pid()) - m0,
        postgres: postgres_cpu_ns().saturating_sub(p0),
    };
    print_row("sequential (c=1)", seq, &row);

    // concurrent clients
    let clients = o.clients.max(1);
    let (g0, m0, p0, t0) = (
        cpu_ns(gw.pid()),
        cpu_ns(mock.pid()),
        postgres_cpu_ns(),
        Instant::now(),
    );
    let tasks: Vec<_> = (0..clients)
        .map(|c| tokio::spawn(searcher(addr, 100_000 + c * n, n / clients, None)))
        .collect();
    let mut all = Searched::default();
    for t in tasks {
        all.add(t.await.unwrap());
    }
    let row = Totals {
        wall: t0.elapsed(),
        gateway: cpu_ns(gw.pid()) - g0,
        mock: cpu_ns(mock.pid()) - m0,
        postgres: postgres_cpu_ns().saturating_sub(p0),
    };
    print_row(&format!("concurrent (c={clients})"), all, &row);
    drop(gw);
}

/// CPU times of a phase.
struct Totals {
    wall: Duration,
    gateway: u64,
    mock: u64,
    postgres: u64,
}

fn print_row(name: &str, mut s: Searched, t: &Totals) {
    let n = s.latency.len().max(1) as f64;
    let cpu = |v: &mut Vec<u64>, p: f64| {
        if v.is_empty() {
            "n/a".to_string()
        } else {
            format!("{:.2}", pct_ms(v, p))
        }
    };
    println!(
        "| {name} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} | {} | {} | {:.0} | {:.0} | {:.3} |",
        s.latency.len(),
        pct_ms(&mut s.latency, 0.5),
        pct_ms(&mut s.latency, 0.9),
        pct_ms(&mut s.latency, 0.99),
        pct_ms(&mut s.latency, 1.0),
        n / t.wall.as_secs_f64(),
        t.gateway as f64 / 1e3 / n,
        cpu(&mut s.cpu, 0.5),
        cpu(&mut s.cpu, 0.99),
        t.mock as f64 / 1e3 / n,
        t.postgres as f64 / 1e3 / n,
        s.top.iter().sum::<f64>() / n,
    );
}

fn rss_mib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}
