//! Issue 19 item 10: starting with PostgreSQL or Redis unreachable. Redis: the gateway serves
//! (degraded, readiness says Redis is down) and uses Redis once it is back. PostgreSQL: retried
//! with backoff for `database_connect_retry_seconds`, used if it comes up meanwhile, else the
//! gateway exits naming the unreachable database (not "invalid config").

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde_json::Value;

use crate::common::db::TestDb;
use crate::common::mock_upstream::MockUpstream;
use crate::common::redis::TempRedis;
use crate::common::{MASTER_KEY, Resp, TestGateway, eventually, free_port, send};

async fn get(url: &str) -> Resp {
    send(Method::GET, url, &[], Bytes::new()).await
}

#[tokio::test]
async fn an_unreachable_redis_at_startup_serves_degraded_then_uses_redis_when_back() {
    let mut redis = TempRedis::start().await;
    redis.down();
    let up = MockUpstream::start().await;
    // a global parallel limit: every request counts on Redis when it answers
    let yaml = format!(
        "model_list:
  - model_name: m
    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up}}
router_settings:
  redis_url: \"{r}\"
general_settings:
  master_key: {MASTER_KEY}
  global_max_parallel_requests: 1000
",
        b = up.base(),
        r = redis.url()
    );
    let t0 = Instant::now();
    let gw = TestGateway::start(&yaml).await;
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "not serving within 30 s"
    );
    let chat_url = gw.url("/v1/chat/completions");
    assert_eq!(crate::common::chat_status(&chat_url).await, 200);
    let ready = get(&gw.url("/health/readiness")).await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    let v = ready.json();
    assert_eq!(v["redis"], "unreachable", "{v}");
    // the same degraded mode as an outage later: counted per instance
    assert!(
        v["rate_limits"]["redis_fallbacks"].as_u64() >= Some(1),
        "{v}"
    );

    redis.up().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        last = get(&gw.url("/health/readiness")).await.json();
        if last["redis"] == "connected" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["redis"], "connected", "{last}");
    // rate limits count on Redis again (the mode turns back a second after the last failure)
    let mut back = false;
    while !back && Instant::now() < deadline {
        assert_eq!(crate::common::chat_status(&chat_url).await, 200);
        last = get(&gw.url("/health/readiness")).await.json();
        back = last["rate_limits"]["mode"] == "redis" && redis.calls("evalsha").await > 0;
        if !back {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(back, "rate limits never went back to Redis: {last}");
}

/// The `tianji` binary, its stderr collected as it comes.
struct Process {
    child: Child,
    stderr: Arc<Mutex<String>>,
    /// The reader has taken everything up to the pipe's end.
    drained: Arc<AtomicBool>,
    port: u16,
    _config: tempfile::NamedTempFile,
}

impl Process {
    fn start(yaml: &str) -> Self {
        let port = free_port();
        let mut config = tempfile::NamedTempFile::new().unwrap();
        config.write_all(yaml.as_bytes()).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tianji"))
            .args(["--config", config.path().to_str().unwrap()])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .env("TIANJI_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        let drained = Arc::new(AtomicBool::new(false));
        let done = drained.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
            done.store(true, Ordering::SeqCst);
        });
        Self {
            child,
            stderr,
            drained,
            port,
            _config: config,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait for `cond` on stderr (or the process's end) until `within` passes.
    async fn wait_stderr(&mut self, within: Duration, cond: impl Fn(&str) -> bool) -> bool {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if cond(&self.stderr()) {
                return true;
            }
            if self.child.try_wait().unwrap().is_some() {
                // the reader thread takes the last lines, up to the pipe's end
                let drained = self.drained.clone();
                eventually(Duration::from_secs(5), || drained.load(Ordering::SeqCst)).await;
                return cond(&self.stderr());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn an_unreachable_database_is_retried_then_named_on_exit() {
    let port = free_port();
    let mut p = Process::start(&format!(
        "model_list: []
general_settings:
  master_key: {MASTER_KEY}
  database_url: \"postgres://tianji:hunter2@127.0.0.1:{port}/tianji\"
  database_connect_retry_seconds: 2
  database_connection_timeout: 1
"
    ));
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = p.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "still running: {}",
            p.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success());
    assert!(
        p.wait_stderr(Duration::from_secs(5), |s| s
            .contains("tianji: cannot start"))
            .await
    );
    let err = p.stderr();
    assert!(
        err.contains(&format!("PostgreSQL at 127.0.0.1:{port} is unreachable")),
        "{err}"
    );
    assert!(!err.contains("invalid config"), "{err}");
    assert!(!err.contains("hunter2"), "the password was printed: {err}");
    // it retried (each failure logged with the address) for the configured time before giving up
    assert!(err.contains("PostgreSQL is unreachable; retrying"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(t0.elapsed() >= Duration::from_secs(2));
}

#[tokio::test]
async fn a_database_that_comes_up_during_the_retry_window_is_used() {
    let db = TestDb::create().await;
    let real: tokio_postgres::Config = db.url.parse().unwrap();
    let host = match &real.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    let real_addr = format!(
        "{host}:{}",
        real.get_ports().first().copied().unwrap_or(5432)
    );
    let user = real.get_user().unwrap_or("postgres");
    let auth = match real.get_password() {
        Some(pw) => format!("{user}:{}", String::from_utf8_lossy(pw)),
        None => user.to_string(),
    };
    // the gateway is pointed at a port where nothing listens yet
    let port = free_port();
    let mut p = Process::start(&format!(
        "model_list: []
general_settings:
  master_key: {MASTER_KEY}
  database_url: \"postgres://{auth}@127.0.0.1:{port}/{name}\"
  database_connect_retry_seconds: 60
  database_connection_timeout: 1
",
        name = db.name
    ));
    assert!(
        p.wait_stderr(Duration::from_secs(20), |s| s
            .contains("PostgreSQL is unreachable; retrying"))
            .await,
        "no retry: {}",
        p.stderr()
    );
    assert!(p.child.try_wait().unwrap().is_none(), "{}", p.stderr());
    // now the real PostgreSQL answers on that port
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let forward = tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            let real_addr = real_addr.clone();
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(real_addr).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    let url = format!("http://127.0.0.1:{}/health/readiness", p.port);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut db_state = String::new();
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", p.port)).is_ok() {
            let v = get(&url).await.json();
            db_state = v["db"].as_str().unwrap_or_default().to_string();
            if db_state == "connected" {
                break;
            }
        }
        assert!(p.child.try_wait().unwrap().is_none(), "{}", p.stderr());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(db_state, "connected", "{}", p.stderr());
    // and it migrated the database it reached
    let n: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM tianji_schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert!(n > 0);
    forward.abort();
}
