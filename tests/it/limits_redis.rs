//! The limiter on Redis: slot leases (the slots of a killed instance come back, a live one's
//! are renewed) and Redis commands per governed request (measured with `INFO commandstats`,
//! printed, bounded by call counts only, never by timings).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::{
    MockUpstream, Recorded, Reply, chat_stream_events, default_reply,
};
use crate::common::redis::TempRedis;
use crate::common::{GatewayProcess, MASTER_KEY, Resp, TestGateway, eventually_async, open_stream};

use super::limits::{admin, chat_at, in_flight_at, new_key, rl_key, shared_redis};

/// `INFO <section>` of `redis` as `(field, value)` lines.
async fn info(redis: &TempRedis, section: &str) -> String {
    let mut c = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("INFO")
        .arg(section)
        .query_async(&mut c)
        .await
        .unwrap()
}

/// Calls and microseconds per command since the last `CONFIG RESETSTAT`.
async fn command_stats(redis: &TempRedis) -> Vec<(String, u64, u64)> {
    let text = info(redis, "commandstats").await;
    text.lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let field = |f: &str| {
                rest.split(',')
                    .find_map(|kv| kv.strip_prefix(f))
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0) as u64
            };
            Some((name.to_string(), field("calls="), field("usec=")))
        })
        .collect()
}

/// Redis's own CPU (user + system) so far, in microseconds.
async fn redis_cpu_us(redis: &TempRedis) -> u64 {
    let text = info(redis, "cpu").await;
    let field = |f: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(f))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    ((field("used_cpu_user:") + field("used_cpu_sys:")) * 1e6) as u64
}

/// Parallel slots held on descriptor `base` (`kind:value`).
async fn in_flight(redis: &TempRedis, base: &str) -> u64 {
    in_flight_at(&redis.url(), &rl_key(base)).await
}

/// A small chat request (model `gpt`) to `url` with `key`.
async fn hi_at(url: &str, key: &str) -> Resp {
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]});
    chat_at(url, key, &body).await
}

/// 200 requests of a key whose key, user and team have rpm, tpm and max_parallel_requests
/// limits, 16 at a time, through one gateway process on a Redis of its own: the Redis commands
/// per request, Redis CPU and the gateway's CPU per request are printed.
#[tokio::test]
async fn redis_commands_per_governed_request() {
    let redis = TempRedis::start().await;
    let db = TestDb::create().await;
    let up = MockUpstream::with(Arc::new(|r: &Recorded| {
        Reply::Delay(Duration::from_millis(20), Box::new(default_reply(r)))
    }))
    .await;
    // keys, users and teams are made through an instance without Redis (nothing of it in the
    // counts); the measured instance reads them from the database
    let admin_gw = TestGateway::start(&format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n",
        b = up.base(),
        u = db.url
    ))
    .await;
    let limits =
        json!({"rpm_limit": 100_000, "tpm_limit": 100_000_000, "max_parallel_requests": 64});
    let mut user = limits.clone();
    user["user_id"] = json!(format!("u-{}", db.name));
    admin(&admin_gw, "/user/new", user.clone()).await;
    let team: Value = admin(&admin_gw, "/team/new", limits.clone()).await;
    let mut k = limits.clone();
    k["user_id"] = user["user_id"].clone();
    k["team_id"] = team["team_id"].clone();
    let key = new_key(&admin_gw, k).await;
    let gw = GatewayProcess::start(&format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\nrouter_settings:\n  redis_url: \"{r}\"\n",
        b = up.base(),
        u = db.url,
        r = redis.url()
    ))
    .await;
    let url = gw.url("/v1/chat/completions");
    // warm up (records loaded, script loaded), then count from zero
    let r = hi_at(&url, &key).await;
    assert_eq!(r.status, 200, "{}", r.text());
    for h in ["user", "team", "api_key"] {
        assert!(
            r.header(&format!("x-ratelimit-{h}-remaining-requests"))
                .is_some(),
            "no {h} limit applied"
        );
    }
    let mut c = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut c)
        .await
        .unwrap();
    let cpu0 = redis_cpu_us(&redis).await;
    let gw_cpu0 = gw.cpu_ms();
    const N: usize = 200;
    let statuses: Vec<u16> = futures_util::stream::iter(0..N)
        .map(|_| hi_at(&url, &key))
        .buffer_unordered(16)
        .map(|r| r.status.as_u16())
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // releases are queued after the answers: wait until they landed
    let bases = [
        format!("api_key:{}", tianji::auth::token_hex(&key)),
        format!("user:{}", user["user_id"].as_str().unwrap()),
        format!("team:{}", team["team_id"].as_str().unwrap()),
    ];
    // (each look is a TIME and a GET of this test's own, taken out of the counts below)
    let looks = std::sync::atomic::AtomicU64::new(0);
    let free = eventually_async(Duration::from_secs(10), || async {
        let mut n = 0;
        for b in &bases {
            looks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            n += in_flight(&redis, b).await;
        }
        n == 0
    })
    .await;
    assert!(free);
    let looks = looks.into_inner();
    let gw_cpu = gw.cpu_ms() - gw_cpu0;
    let cpu = redis_cpu_us(&redis).await - cpu0;
    let stats = command_stats(&redis).await;
    let per = |n: u64| n as f64 / N as f64;
    let mut report = format!(
        "redis commands per governed request (key+user+team, rpm+tpm+max_parallel, {N} requests, concurrency 16):\n"
    );
    for (name, calls, usec) in &stats {
        if matches!(
            name.as_str(),
            "info" | "config" | "ping" | "client|setinfo" | "hello"
        ) {
            continue;
        }
        report.push_str(&format!(
            "  {name:<18} {:>6.2} calls/request {:>7.2} us/request\n",
            per(*calls),
            per(*usec)
        ));
    }
    report.push_str(&format!(
        "  redis cpu (INFO cpu) {:.2} us/request; gateway process cpu {:.3} ms/request\n",
        per(cpu),
        gw_cpu as f64 / N as f64
    ));
    report.push_str(&format!(
        "  (time and get include this test's {looks} looks at the slots, one of each per look)\n"
    ));
    eprintln!("{report}");
    // calls, not timings: each descriptor's value is read (GET) and written (SET, or DEL when
    // nothing in it lives on) at most once per call (3 descriptors here, plus TIME), and a
    // request takes at most an admission call and a release call (most share theirs)
    let calls = |n: &str| {
        let c = stats.iter().find(|s| s.0 == n).map_or(0, |s| s.1);
        if matches!(n, "time" | "get") {
            c.saturating_sub(looks)
        } else {
            c
        }
    };
    let scripts = calls("evalsha") + calls("eval");
    let inside: u64 = stats
        .iter()
        .filter(|s| {
            !matches!(
                s.0.as_str(),
                "evalsha" | "eval" | "config|resetstat" | "mget" | "info"
            )
        })
        .map(|s| calls(&s.0))
        .sum();
    assert!(scripts <= 2 * N as u64, "{report}");
    assert!(calls("time") <= scripts, "{report}");
    assert!(calls("get") <= 3 * scripts, "{report}");
    assert!(calls("set") + calls("del") <= 3 * scripts, "{report}");
    assert!(inside <= 7 * scripts, "{report}");
    assert!(inside <= 14 * N as u64, "{report}");
    // nothing of the earlier layouts (a hash per descriptor; keys per counter and a sorted set
    // per descriptor's requests)
    assert_eq!(
        calls("hgetall")
            + calls("hset")
            + calls("pexpire")
            + calls("zadd")
            + calls("zcard")
            + calls("incrby"),
        0,
        "{report}"
    );
    drop(gw);
}

/// The slots of an instance killed with SIGKILL free themselves when its lease ends (2 s
/// here), while a live instance's slot held longer than that (a stream) is kept: its lease is
/// renewed.
#[tokio::test]
async fn slots_of_a_killed_instance_come_back_after_their_lease() {
    const LEASE: Duration = Duration::from_secs(2);
    let db = TestDb::create().await;
    // streams: 200 events 100 ms apart; other requests answered after 300 ms
    let up = MockUpstream::with(Arc::new(|r: &Recorded| {
        if String::from_utf8_lossy(&r.body).contains("\"stream\":true") {
            let words: Vec<String> = (0..200).map(|i| format!("w{i} ")).collect();
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            return Reply::Sse {
                events: chat_stream_events("gpt-4o", &words, true),
                gap: Duration::from_millis(100),
            };
        }
        Reply::Delay(Duration::from_millis(300), Box::new(default_reply(r)))
    }))
    .await;
    let redis = shared_redis();
    let yaml = format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\nrouter_settings:\n  redis_url: \"{redis}\"\nenvironment_variables:\n  TIANJI_PARALLEL_REQUEST_SLOT_TTL_SECONDS: \"{l}\"\n",
        b = up.base(),
        u = db.url,
        l = LEASE.as_secs()
    );
    let a = TestGateway::start(&yaml).await;
    let b = GatewayProcess::start(&yaml).await;
    let key = new_key(&a, json!({"max_parallel_requests": 2})).await;
    let base = rl_key(&format!("api_key:{}", tianji::auth::token_hex(&key)));
    let url_a = a.url("/v1/chat/completions");
    // one stream on each instance: both slots taken
    let held = open_stream(&url_a, &key).await;
    let started = Instant::now();
    let on_b = open_stream(&b.url("/v1/chat/completions"), &key).await;
    assert_eq!(in_flight_at(&redis, &base).await, 2);
    assert_eq!(hi_at(&url_a, &key).await.status, 429);
    // b dies without releasing anything
    drop(b);
    drop(on_b);
    // its slot comes back once its lease ended; a's stays all along
    let freed = eventually_async(Duration::from_secs(20), || async {
        let n = in_flight_at(&redis, &base).await;
        assert!(n >= 1, "the live instance's slot was lost");
        n == 1
    })
    .await;
    assert!(freed, "the killed instance's slot never came back");
    // a's stream outlives several leases and keeps its slot
    let kept = eventually_async(Duration::from_secs(20), || async {
        assert_eq!(
            in_flight_at(&redis, &base).await,
            1,
            "the live instance's slot was lost"
        );
        started.elapsed() > 3 * LEASE
    })
    .await;
    assert!(kept);
    // one slot left: of three requests at once, one gets through
    let rs = futures_util::future::join_all((0..3).map(|_| hi_at(&url_a, &key))).await;
    let mut codes: Vec<u16> = rs.iter().map(|r| r.status.as_u16()).collect();
    codes.sort();
    assert_eq!(codes, vec![200, 429, 429]);
    drop(held);
    let free = eventually_async(Duration::from_secs(10), || async {
        in_flight_at(&redis, &base).await == 0
    })
    .await;
    assert!(free, "the stream's slot was never freed");
    a.gw.shutdown().await;
}
