//! Issue 19, item 7: what was counted in memory during a Redis outage is added to Redis when it
//! answers again, so a window spanning the outage admits no more than its limit, and parallel
//! slots taken in memory are shared, then freed, on Redis.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::{
    MockUpstream, Recorded, Reply, chat_stream_events, default_reply,
};
use crate::common::redis::TempRedis;
use crate::common::{MASTER_KEY, Resp, TestGateway, eventually_async, open_stream, send};
use crate::it::limits::{counter_at, in_flight_at, new_key, rl_key};

async fn gateway(db: &TestDb, up: &MockUpstream, redis: &TempRedis) -> TestGateway {
    TestGateway::start(&format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\nrouter_settings:\n  redis_url: \"{r}\"\n",
        b = up.base(),
        u = db.url,
        r = redis.url()
    ))
    .await
}

async fn chat(gw: &TestGateway, key: &str) -> Resp {
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]});
    send(
        Method::POST,
        &gw.url("/v1/chat/completions"),
        &[("authorization", &format!("Bearer {key}"))],
        Bytes::from(body.to_string()),
    )
    .await
}

async fn mode(gw: &TestGateway) -> String {
    let r: Value = gw.get("/health/readiness").await.json();
    r["rate_limits"]["mode"].as_str().unwrap_or("").to_string()
}

/// Poll readiness until the limiter counts on Redis again (after folding what it counted in
/// memory).
async fn wait_mode(gw: &TestGateway, want: &str) {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let m = mode(gw).await;
        if m == want {
            return;
        }
        assert!(
            Instant::now() < end,
            "rate limit mode stayed {m}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn base(key: &str) -> String {
    rl_key(&format!("api_key:{}", tianji::auth::token_hex(key)))
}

#[tokio::test]
async fn requests_counted_during_an_outage_count_in_redis_after_it() {
    let mut redis = TempRedis::start().await;
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let gw = gateway(&db, &up, &redis).await;
    let key = new_key(&gw, json!({"rpm_limit": 5})).await;
    redis.down();
    // fail-open: counted in memory
    for i in 0..3 {
        let r = chat(&gw, &key).await;
        assert_eq!(r.status, 200, "request {i} during the outage: {}", r.text());
    }
    assert_eq!(mode(&gw).await, "degraded");
    // Redis comes back (empty); the limiter goes back to it once it answers
    redis.up().await;
    wait_mode(&gw, "redis").await;
    // the same window: only 5 - 3 more
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(chat(&gw, &key).await.status.as_u16());
    }
    assert_eq!(codes, vec![200, 200, 429]);
    assert_eq!(counter_at(&redis.url(), &base(&key), "r").await, Some(5));
    gw.gw.shutdown().await;
}

/// Streams of 200 events, 100 ms apart; plain requests answered at once.
async fn streaming_mock() -> MockUpstream {
    MockUpstream::with(Arc::new(|r: &Recorded| {
        if String::from_utf8_lossy(&r.body).contains("\"stream\":true") {
            let words: Vec<String> = (0..200).map(|i| format!("w{i} ")).collect();
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            return Reply::Sse {
                events: chat_stream_events("gpt-4o", &words, true),
                gap: Duration::from_millis(100),
            };
        }
        default_reply(r)
    }))
    .await
}

#[tokio::test]
async fn slots_taken_during_an_outage_are_shared_then_freed_on_redis() {
    let mut redis = TempRedis::start().await;
    let db = TestDb::create().await;
    let up = streaming_mock().await;
    let gw = gateway(&db, &up, &redis).await;
    let key = new_key(&gw, json!({"max_parallel_requests": 1})).await;
    redis.down();
    // a stream in flight, admitted in memory during the outage
    let stream = open_stream(&gw.url("/v1/chat/completions"), &key).await;
    redis.up().await;
    wait_mode(&gw, "redis").await;
    // its slot is on Redis now: the limit holds for requests counted there
    let slots = base(&key);
    assert_eq!(in_flight_at(&redis.url(), &slots).await, 1);
    let r = chat(&gw, &key).await;
    assert_eq!(r.status, 429, "{}", r.text());
    // the client hangs up: the slot is freed on Redis too
    drop(stream);
    let freed = eventually_async(Duration::from_secs(10), || async {
        in_flight_at(&redis.url(), &slots).await == 0
    })
    .await;
    assert!(freed, "the folded slot was never freed on Redis");
    assert_eq!(chat(&gw, &key).await.status, 200);
    gw.gw.shutdown().await;
}
