//! Rate limits (spec US1) against real Redis: parallel requests, RPM with `retry-after`, TPM
//! reservation, limits shared by two instances, slots freed on every outcome, no Redis call
//! without limits, Redis outages (fail-open and fail-closed), cache-control permissions.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::{
    MockUpstream, Recorded, Reply, chat_stream_events, default_reply,
};
use crate::common::redis::TempRedis;
use crate::common::{
    GatewayProcess, MASTER_KEY, Resp, TestGateway, eventually_async, open_stream, send,
};

use super::admin_keys::call;

pub(crate) fn shared_redis() -> String {
    std::env::var("TIANJI_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Default answers after `delay`; streams send 20 events 100 ms apart.
async fn slow_mock(delay: Duration) -> MockUpstream {
    MockUpstream::with(Arc::new(move |r: &Recorded| {
        if String::from_utf8_lossy(&r.body).contains("\"stream\":true") {
            let words: Vec<String> = (0..20).map(|i| format!("w{i} ")).collect();
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            return Reply::Sse {
                events: chat_stream_events("gpt-4o", &words, true),
                gap: Duration::from_millis(100),
            };
        }
        Reply::Delay(delay, Box::new(default_reply(r)))
    }))
    .await
}

async fn db_gateway(
    db: &TestDb,
    up: &MockUpstream,
    redis: Option<&str>,
    extra: &str,
) -> TestGateway {
    let redis = redis
        .map(|u| format!("router_settings:\n  redis_url: \"{u}\"\n"))
        .unwrap_or_default();
    let yaml = format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up}}\n  - model_name: other\n    tianji_params: {{model: openai/gpt-4o-mini, api_base: \"{b}\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n{extra}{redis}",
        b = up.base(),
        u = db.url
    );
    TestGateway::start(&yaml).await
}

pub(crate) async fn admin(gw: &TestGateway, path: &str, body: Value) -> Value {
    let r = call(gw, Method::POST, path, MASTER_KEY, body).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json()
}

pub(crate) async fn new_key(gw: &TestGateway, body: Value) -> String {
    admin(gw, "/key/generate", body).await["key"]
        .as_str()
        .unwrap()
        .to_string()
}

fn hi(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

async fn chat(gw: &TestGateway, key: &str, body: &Value) -> Resp {
    chat_at(&gw.url("/v1/chat/completions"), key, body).await
}

fn statuses(rs: &[Resp]) -> Vec<u16> {
    let mut s: Vec<u16> = rs.iter().map(|r| r.status.as_u16()).collect();
    s.sort();
    s
}

/// The Redis key of descriptor `kind:value`.
pub(crate) fn rl_key(kind_value: &str) -> String {
    format!("tianji:{{rl}}:v2:{kind_value}")
}

/// A descriptor's value on Redis (`src/limits/lua/batch.lua`): window start and end, requests
/// and tokens in it, then per instance its id, slots and lease end.
struct Packed {
    counters: [f64; 4],
    instances: Vec<(String, f64, f64)>,
}

async fn packed_at(redis: &str, base: &str) -> (Option<Packed>, u64) {
    let c = redis::Client::open(redis).unwrap();
    let mut conn = c.get_multiplexed_async_connection().await.unwrap();
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    let now = secs * 1000 + micros / 1000;
    let v: Option<Vec<u8>> = redis::cmd("GET")
        .arg(base)
        .query_async(&mut conn)
        .await
        .unwrap();
    let Some(v) = v else {
        return (None, now);
    };
    let f = |at: usize| f64::from_le_bytes(v[at..at + 8].try_into().unwrap());
    assert!(v.len() >= 32 && (v.len() - 32) % 32 == 0, "{v:?}");
    let counters = [f(0), f(8), f(16), f(24)];
    let instances = (32..v.len())
        .step_by(32)
        .map(|at| {
            let id = String::from_utf8(v[at..at + 16].to_vec()).unwrap();
            (id, f(at + 16), f(at + 24))
        })
        .collect();
    (
        Some(Packed {
            counters,
            instances,
        }),
        now,
    )
}

/// Parallel slots held on descriptor key `base` in `redis`: the counts of the instances whose
/// leases have not ended (by the Redis clock).
pub(crate) async fn in_flight_at(redis: &str, base: &str) -> u64 {
    let (packed, now) = packed_at(redis, base).await;
    packed.map_or(0, |p| {
        p.instances
            .iter()
            .filter(|(_, _, ends)| *ends > now as f64)
            .map(|(_, slots, _)| *slots as u64)
            .sum()
    })
}

/// A counter of descriptor key `base` (`r` requests, `t` tokens in the window).
pub(crate) async fn counter_at(redis: &str, base: &str, field: &str) -> Option<i64> {
    let (packed, _) = packed_at(redis, base).await;
    let i = match field {
        "r" => 2,
        "t" => 3,
        _ => panic!("no counter {field}"),
    };
    packed.map(|p| p.counters[i] as i64)
}

/// Parallel slots of a key in `redis`.
async fn slots_in_redis(redis: &str, key: &str) -> u64 {
    let base = rl_key(&format!("api_key:{}", tianji::auth::token_hex(key)));
    in_flight_at(redis, &base).await
}

async fn wait_no_slots(redis: &str, key: &str) {
    let freed = eventually_async(Duration::from_secs(10), || async {
        slots_in_redis(redis, key).await == 0
    })
    .await;
    assert!(freed, "parallel slots of the key were never freed");
}

#[tokio::test]
async fn max_parallel_requests_on_a_key() {
    let db = TestDb::create().await;
    let up = slow_mock(Duration::from_millis(400)).await;
    let redis = shared_redis();
    let gw = db_gateway(&db, &up, Some(&redis), "").await;
    let key = new_key(&gw, json!({"max_parallel_requests": 2})).await;
    let body = hi("gpt");
    let rs = futures_util::future::join_all((0..3).map(|_| chat(&gw, &key, &body))).await;
    assert_eq!(statuses(&rs), vec![200, 200, 429]);
    let refused = rs.iter().find(|r| r.status == 429).unwrap();
    let e = refused.assert_error(429);
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "Rate limit exceeded for api_key: {}. Limit type: max_parallel_requests. Current limit: 2, Remaining: 0.",
            tianji::auth::token_hex(&key)
        )),
        "{msg}"
    );
    assert_eq!(e["error"]["type"], "throttling_error");
    assert_eq!(
        refused.header("rate_limit_type"),
        Some("max_parallel_requests")
    );
    assert!(refused.header("retry-after").is_some());
    // both slots are free again
    wait_no_slots(&redis, &key).await;
    let again = futures_util::future::join_all((0..2).map(|_| chat(&gw, &key, &body))).await;
    assert_eq!(statuses(&again), vec![200, 200]);
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn rpm_limit_answers_429_with_retry_after() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let gw = db_gateway(&db, &up, Some(&shared_redis()), "").await;
    let key = new_key(&gw, json!({"rpm_limit": 10})).await;
    let body = hi("gpt");
    for i in 0..10u64 {
        let r = chat(&gw, &key, &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.header("x-ratelimit-api_key-remaining-requests"),
            Some((9 - i).to_string().as_str())
        );
        assert_eq!(r.header("x-ratelimit-api_key-limit-requests"), Some("10"));
    }
    let r = chat(&gw, &key, &body).await;
    let e = r.assert_error(429);
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("Limit type: requests. Current limit: 10, Remaining: 0. Limit resets at: "),
        "{msg}"
    );
    assert!(msg.ends_with(" UTC"), "{msg}");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    assert_eq!(r.header("rate_limit_type"), Some("requests"));
    assert!(r.header("reset_at").unwrap().ends_with(" UTC"));
    // other keys are not affected
    let other = new_key(&gw, json!({})).await;
    assert_eq!(chat(&gw, &other, &body).await.status, 200);
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn token_limits_reserve_then_reconcile() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let gw = db_gateway(&db, &up, Some(&shared_redis()), "").await;
    let key = new_key(&gw, json!({"tpm_limit": 100})).await;
    // the reservation alone (input estimate + max_tokens) is over the limit
    let big =
        json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 500});
    let r = chat(&gw, &key, &big).await;
    let e = r.assert_error(429);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Limit type: tokens. Current limit: 100, Remaining: 100."),
        "{e}"
    );
    assert_eq!(r.header("rate_limit_type"), Some("tokens"));
    // a small request reserves its estimate, then the real usage (12 tokens) replaces it
    let small =
        json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20});
    let estimate = small.to_string().len() as u64 / 4 + 20;
    let r = chat(&gw, &key, &small).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("x-ratelimit-api_key-remaining-tokens"),
        Some((100 - estimate).to_string().as_str())
    );
    assert_eq!(r.header("x-ratelimit-api_key-limit-tokens"), Some("100"));
    // the release (with the real usage) runs after the response: wait until the key's token
    // counter holds the real usage instead of the estimate
    let base = rl_key(&format!("api_key:{}", tianji::auth::token_hex(&key)));
    let reconciled = eventually_async(Duration::from_secs(10), || async {
        counter_at(&shared_redis(), &base, "t").await == Some(12)
    })
    .await;
    assert!(reconciled, "the real usage never replaced the reservation");
    let r = chat(&gw, &key, &small).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = r
        .header("x-ratelimit-api_key-remaining-tokens")
        .unwrap()
        .to_string();
    assert_eq!(seen, (100 - 12 - estimate).to_string());
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn team_model_and_end_user_limits() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let gw = db_gateway(&db, &up, Some(&shared_redis()), "").await;
    // a team with rpm 2 shared by its two keys
    let team = admin(&gw, "/team/new", json!({"rpm_limit": 2})).await;
    let team_id = team["team_id"].as_str().unwrap();
    let k1 = new_key(&gw, json!({"team_id": team_id})).await;
    let k2 = new_key(&gw, json!({"team_id": team_id})).await;
    let body = hi("gpt");
    assert_eq!(chat(&gw, &k1, &body).await.status, 200);
    assert_eq!(chat(&gw, &k2, &body).await.status, 200);
    let e = chat(&gw, &k1, &body).await.assert_error(429);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Rate limit exceeded for team: {team_id}.")),
        "{e}"
    );
    // a per-model limit on a key leaves its other models alone
    let k = new_key(&gw, json!({"model_rpm_limit": {"gpt": 1}})).await;
    assert_eq!(chat(&gw, &k, &body).await.status, 200);
    let e = chat(&gw, &k, &body).await.assert_error(429);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model_per_key: "),
        "{e}"
    );
    assert_eq!(chat(&gw, &k, &hi("other")).await.status, 200);
    // an end user whose budget row allows 1 request per minute
    let budget = admin(
        &gw,
        "/budget/new",
        json!({"budget_id": format!("b-{team_id}"), "rpm_limit": 1}),
    )
    .await;
    let customer = format!("cust-{team_id}");
    admin(
        &gw,
        "/end_user/new",
        json!({"user_id": customer, "budget_id": budget["budget_id"]}),
    )
    .await;
    let free = new_key(&gw, json!({})).await;
    let as_customer =
        json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "user": customer});
    assert_eq!(chat(&gw, &free, &as_customer).await.status, 200);
    let e = chat(&gw, &free, &as_customer).await.assert_error(429);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Rate limit exceeded for end_user: {customer}.")),
        "{e}"
    );
    assert_eq!(chat(&gw, &free, &body).await.status, 200);
    gw.gw.shutdown().await;
}

pub(super) async fn chat_at(url: &str, key: &str, body: &Value) -> Resp {
    send(
        Method::POST,
        url,
        &[("authorization", &format!("Bearer {key}"))],
        Bytes::from(body.to_string()),
    )
    .await
}

/// Start a stream at `url`, read its first chunk, then hang up.
async fn stream_and_hang_up_at(url: &str, key: &str) {
    drop(open_stream(url, key).await);
}

#[tokio::test]
async fn two_instances_share_limits_and_slots() {
    let db = TestDb::create().await;
    let up = slow_mock(Duration::from_millis(300)).await;
    let redis = shared_redis();
    // instance a in this process, instance b in its own process: they share only Postgres
    // and Redis
    let a = db_gateway(&db, &up, Some(&redis), "").await;
    let b = GatewayProcess::start(&format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{base}\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\nrouter_settings:\n  redis_url: \"{redis}\"\n",
        base = up.base(),
        u = db.url
    ))
    .await;
    let url_a = a.url("/v1/chat/completions");
    let url_b = b.url("/v1/chat/completions");
    let at = |i: usize| {
        if i.is_multiple_of(2) {
            url_a.as_str()
        } else {
            url_b.as_str()
        }
    };
    // rpm 10, 30 requests spread over both instances: exactly 10 succeed
    let key = new_key(&a, json!({"rpm_limit": 10})).await;
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "mock_response": "ok"});
    let rs = futures_util::future::join_all((0..30).map(|i| chat_at(at(i), &key, &body))).await;
    let ok = rs.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 10, "{:?}", statuses(&rs));
    assert!(rs.iter().all(|r| r.status == 200 || r.status == 429));
    // max_parallel_requests 2: six concurrent slow requests over both never exceed 2 upstream
    let key = new_key(&a, json!({"max_parallel_requests": 2})).await;
    let slow = hi("gpt");
    let rs = futures_util::future::join_all((0..6).map(|i| chat_at(at(i), &key, &slow))).await;
    let ok = rs.iter().filter(|r| r.status == 200).count();
    assert!((1..=2).contains(&ok), "{:?}", statuses(&rs));
    assert!(up.flights.max.load(Ordering::SeqCst) <= 2);
    wait_no_slots(&redis, &key).await;
    // streams cut off by their clients free their slots too, on both instances
    stream_and_hang_up_at(&url_a, &key).await;
    stream_and_hang_up_at(&url_b, &key).await;
    assert!(up.flights.max.load(Ordering::SeqCst) <= 2);
    wait_no_slots(&redis, &key).await;
    assert_eq!(chat_at(&url_b, &key, &slow).await.status, 200);
    a.gw.shutdown().await;
}

fn config_gateway_yaml(up: &MockUpstream, redis: &str, rpm: Option<u64>, extra: &str) -> String {
    let rpm = rpm.map(|n| format!(", rpm: {n}")).unwrap_or_default();
    format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up{rpm}}}\nrouter_settings:\n  redis_url: \"{redis}\"\ngeneral_settings:\n  master_key: {MASTER_KEY}\n{extra}",
        b = up.base()
    )
}

#[tokio::test]
async fn no_redis_call_without_limits_and_one_with() {
    let redis = TempRedis::start().await;
    let up = MockUpstream::start().await;
    let free = TestGateway::start(&config_gateway_yaml(&up, &redis.url(), None, "")).await;
    let body = hi("gpt");
    let before = redis.calls("evalsha").await + redis.calls("eval").await;
    for _ in 0..20 {
        assert_eq!(
            free.post("/v1/chat/completions", &body.to_string())
                .await
                .status,
            200
        );
    }
    assert_eq!(
        redis.calls("evalsha").await + redis.calls("eval").await,
        before
    );
    // a deployment rpm limit: exactly one script call per request
    let limited = TestGateway::start(&config_gateway_yaml(&up, &redis.url(), Some(1000), "")).await;
    assert_eq!(
        limited
            .post("/v1/chat/completions", &body.to_string())
            .await
            .status,
        200
    );
    let (sha, eval) = (redis.calls("evalsha").await, redis.calls("eval").await);
    for _ in 0..20 {
        let r = limited
            .post("/v1/chat/completions", &body.to_string())
            .await;
        assert_eq!(r.status, 200);
        assert!(
            r.header("x-ratelimit-deployment-remaining-requests")
                .is_some()
        );
    }
    assert_eq!(redis.calls("evalsha").await - sha, 20);
    assert_eq!(redis.calls("eval").await, eval);
    free.gw.shutdown().await;
    limited.gw.shutdown().await;
}

async fn readiness(gw: &TestGateway) -> Value {
    gw.get("/health/readiness").await.json()
}

#[tokio::test]
async fn redis_outage_falls_back_per_instance_then_recovers() {
    let mut redis = TempRedis::start().await;
    let up = MockUpstream::start().await;
    let gw = TestGateway::start(&config_gateway_yaml(&up, &redis.url(), Some(3), "")).await;
    let closed = TestGateway::start(&config_gateway_yaml(
        &up,
        &redis.url(),
        Some(1000),
        "  fail_closed_rate_limit_enforcement: true\n",
    ))
    .await;
    let body = hi("gpt").to_string();
    let send_one = |g: &TestGateway| {
        let g = g.url("/v1/chat/completions");
        let body = body.clone();
        async move {
            send(
                Method::POST,
                &g,
                &[("authorization", &format!("Bearer {MASTER_KEY}"))],
                Bytes::from(body),
            )
            .await
        }
    };
    let r = send_one(&gw).await;
    assert_eq!(r.status, 200);
    let dep = r.header("x-tianji-model-id").unwrap().to_string();
    assert_eq!(readiness(&gw).await["rate_limits"]["mode"], "redis");
    redis.down();
    // traffic continues; the limit holds per instance (a fresh in-memory window)
    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(send_one(&gw).await.status.as_u16());
    }
    assert_eq!(codes, vec![200, 200, 200, 429]);
    let ready = readiness(&gw).await;
    assert_eq!(ready["rate_limits"]["mode"], "degraded", "{ready}");
    assert!(ready["rate_limits"]["redis_fallbacks"].as_u64().unwrap() >= 4);
    // fail-closed refuses while Redis cannot verify counters
    let e = send_one(&closed).await.assert_error(503);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Rate limit enforcement unavailable"),
        "{e}"
    );
    // Redis is back (empty): the 3 requests counted in memory go to Redis with it (issue 19),
    // so the window that spans the outage stays full, now in Redis
    redis.up().await;
    for g in [&gw, &closed] {
        let back = eventually_async(Duration::from_secs(20), || async {
            readiness(g).await["rate_limits"]["mode"] == "redis"
        })
        .await;
        assert!(back, "never back on Redis");
    }
    let base = rl_key(&format!("deployment:{dep}"));
    assert_eq!(counter_at(&redis.url(), &base, "r").await, Some(3));
    let codes: Vec<u16> = futures_util::future::join_all((0..3).map(|_| send_one(&gw)))
        .await
        .iter()
        .map(|r| r.status.as_u16())
        .collect();
    assert_eq!(codes, vec![429, 429, 429]);
    assert_eq!(counter_at(&redis.url(), &base, "r").await, Some(3));
    assert_eq!(send_one(&closed).await.status, 200);
    gw.gw.shutdown().await;
    closed.gw.shutdown().await;
}

#[tokio::test]
async fn cache_controls_need_permission() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let gw = db_gateway(&db, &up, None, "").await;
    let key = new_key(&gw, json!({"allowed_cache_controls": ["no-cache"]})).await;
    let with = |cache: Value| json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "cache": cache});
    assert_eq!(
        chat(&gw, &key, &with(json!({"no-cache": true})))
            .await
            .status,
        200
    );
    let e = chat(&gw, &key, &with(json!({"s-maxage": 10})))
        .await
        .assert_error(403);
    assert_eq!(
        e["error"]["message"],
        "Not allowed to set s-maxage as a cache control. Contact admin to change permissions."
    );
    // no list: any control
    let open = new_key(&gw, json!({})).await;
    assert_eq!(
        chat(&gw, &open, &with(json!({"s-maxage": 10})))
            .await
            .status,
        200
    );
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn limits_without_redis_and_global_parallel() {
    let up = slow_mock(Duration::from_millis(300)).await;
    let yaml = format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up, rpm: 5}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  global_max_parallel_requests: 2\n",
        b = up.base()
    );
    let gw = TestGateway::start(&yaml).await;
    assert_eq!(readiness(&gw).await["rate_limits"]["mode"], "local");
    let body = hi("gpt").to_string();
    let rs = futures_util::future::join_all((0..3).map(|_| gw.post("/v1/chat/completions", &body)))
        .await;
    assert_eq!(statuses(&rs), vec![200, 200, 429]);
    let refused = rs.iter().find(|r| r.status == 429).unwrap();
    assert!(
        refused.text().contains("global: max_parallel_requests"),
        "{}",
        refused.text()
    );
    // the refused request still counted against the deployment's rpm? no: refusals count nothing
    assert_eq!(gw.post("/v1/chat/completions", &body).await.status, 200);
    assert_eq!(gw.post("/v1/chat/completions", &body).await.status, 200);
    assert_eq!(gw.post("/v1/chat/completions", &body).await.status, 200);
    let e = gw
        .post("/v1/chat/completions", &body)
        .await
        .assert_error(429);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deployment: "),
        "{e}"
    );
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn model_max_budget_and_budget_fallbacks() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let gw = db_gateway(&db, &up, None, "").await;
    // gpt-4o as priced: 9 prompt and 3 completion tokens per mock answer
    let one = 9.0 * 2.5e-6 + 3.0 * 1e-5;
    let budget = json!({"gpt": {"budget_limit": 1.5 * one, "time_period": "1d"}});
    let key = new_key(
        &gw,
        json!({"model_max_budget": budget, "key_alias": "capped"}),
    )
    .await;
    let body = hi("gpt");
    assert_eq!(chat(&gw, &key, &body).await.status, 200);
    assert_eq!(chat(&gw, &key, &body).await.status, 200);
    let e = chat(&gw, &key, &body).await.assert_error(429);
    assert_eq!(e["error"]["type"], "budget_exceeded");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "TianjiLLM Virtual Key: {}, key_alias: capped, exceeded budget for model=gpt.",
            tianji::auth::token_hex(&key)
        )),
        "{msg}"
    );
    // other models of the key are not capped
    assert_eq!(chat(&gw, &key, &hi("other")).await.status, 200);
    // with a budget fallback the spent model is replaced by the fallback
    let key = new_key(
        &gw,
        json!({"model_max_budget": budget, "budget_fallbacks": {"gpt": ["missing", "other"]}}),
    )
    .await;
    assert_eq!(chat(&gw, &key, &body).await.status, 200);
    assert_eq!(chat(&gw, &key, &body).await.status, 200);
    let r = chat(&gw, &key, &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.last().json()["model"], "gpt-4o-mini");
    // a team's model budget applies to all its keys
    let team = admin(
        &gw,
        "/team/new",
        json!({"model_max_budget": {"gpt*": {"max_budget": 0.5 * one}}}),
    )
    .await;
    let tk = new_key(&gw, json!({"team_id": team["team_id"]})).await;
    assert_eq!(chat(&gw, &tk, &body).await.status, 200);
    let e = chat(&gw, &tk, &body).await.assert_error(429);
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("exceeded budget for model=gpt, budget_model=gpt*"),
        "{msg}"
    );
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn dynamic_limiter_throttles_low_priority_when_saturated() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    // a model name of its own: the saturation counters live in the shared Redis
    let model = format!("dyn-{}", &db.name);
    let yaml = format!(
        "model_list:\n  - model_name: {model}\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up, rpm: 10}}\ntianji_settings:\n  callbacks: [dynamic_rate_limiter_v3]\n  priority_reservation: {{prod: 0.9, dev: 0.1}}\n  priority_reservation_settings: {{saturation_threshold: 0.5}}\nrouter_settings:\n  redis_url: \"{r}\"\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n",
        b = up.base(),
        r = shared_redis(),
        u = db.url
    );
    let gw = TestGateway::start(&yaml).await;
    let prod = new_key(&gw, json!({"metadata": {"priority": "prod"}})).await;
    let dev = new_key(&gw, json!({"metadata": {"priority": "dev"}})).await;
    let body = hi(&model);
    // below the saturation threshold dev borrows freely beyond its 10% share (1 rpm)
    for _ in 0..5 {
        let r = chat(&gw, &dev, &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-tianji-priority"), Some("dev"));
        assert_eq!(r.header("x-tianji-rate-limiter-version"), Some("v3"));
    }
    // at 50% saturation dev is held to its share; prod still gets through
    let r = chat(&gw, &dev, &body).await;
    let e = r.assert_error(429);
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "Priority-based rate limit exceeded. Model: {model}, Priority: dev, Rate limit type: requests, Model TPM: not configured, Model RPM: 10, Remaining: 0, Model saturation: 50.0%"
        )),
        "{msg}"
    );
    assert_eq!(r.header("x-tianji-saturation"), Some("50.00%"));
    for _ in 0..5 {
        let r = chat(&gw, &prod, &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-tianji-priority"), Some("prod"));
    }
    // the model's own capacity (10 rpm) holds for every priority
    let e = chat(&gw, &prod, &body).await.assert_error(429);
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "Model capacity reached for {model}. Priority: prod, Rate limit type: requests"
        )),
        "{msg}"
    );
    gw.gw.shutdown().await;
}

/// A Files/Batches API upstream: `file-big` has 1000 requests, `file-small` 3, others 404.
fn batch_upstream(r: &Recorded) -> Reply {
    let lines = |n: usize| {
        (0..n)
            .map(|i| {
                json!({"custom_id": format!("r{i}"), "method": "POST", "url": "/v1/chat/completions",
                       "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}})
                .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let file = |n: usize| Reply::Json {
        status: 200,
        body: lines(n),
        headers: vec![],
    };
    match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/v1/files/file-big/content") => file(1000),
        ("GET", "/v1/files/file-small/content") => file(3),
        ("GET", _) => Reply::status(404, json!({"error": {"message": "No such File object"}})),
        ("POST", "/v1/batches") => Reply::status(
            200,
            json!({"id": "batch_1", "object": "batch", "status": "validating", "input_file_id": r.json()["input_file_id"]}),
        ),
        _ => default_reply(r),
    }
}

#[tokio::test]
async fn batch_limiter_reserves_whole_batches() {
    let db = TestDb::create().await;
    let up = MockUpstream::with(Arc::new(batch_upstream)).await;
    let gw = db_gateway(&db, &up, Some(&shared_redis()), "").await;
    let batch = |file: &str| json!({"input_file_id": file, "endpoint": "/v1/chat/completions", "completion_window": "24h", "model": "gpt"});
    let create = |key: String, body: Value| {
        let url = gw.url("/v1/batches");
        async move {
            send(
                Method::POST,
                &url,
                &[("authorization", &format!("Bearer {key}"))],
                Bytes::from(body.to_string()),
            )
            .await
        }
    };
    // 1000 requests against 500 rpm: refused, nothing reserved
    let small = new_key(&gw, json!({"rpm_limit": 500})).await;
    let r = create(small.clone(), batch("file-big")).await;
    let e = r.assert_error(429);
    assert_eq!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .split(". Limit resets at")
            .next()
            .unwrap(),
        format!(
            "Batch rate limit exceeded for api_key: {}. Batch contains 1000 requests but only 500 requests remaining out of 500 RPM limit",
            tianji::auth::token_hex(&small)
        )
    );
    assert_eq!(r.header("rate_limit_type"), Some("requests"));
    assert!(!up.requests().iter().any(|q| q.path == "/v1/batches"));
    let r = chat(&gw, &small, &hi("gpt")).await;
    assert_eq!(
        r.header("x-ratelimit-api_key-remaining-requests"),
        Some("499")
    );
    // enough room: the batch is created and its 1000 requests are taken
    let big = new_key(&gw, json!({"rpm_limit": 2000})).await;
    let r = create(big.clone(), batch("file-big")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // the provider's id, sealed for the caller
    assert!(
        r.json()["id"]
            .as_str()
            .unwrap()
            .starts_with("batch_v2:gcm:"),
        "{}",
        r.text()
    );
    let sent = up.last();
    assert_eq!(sent.path, "/v1/batches");
    assert!(sent.json().get("model").is_none());
    let r = chat(&gw, &big, &hi("gpt")).await;
    assert_eq!(
        r.header("x-ratelimit-api_key-remaining-requests"),
        Some("999")
    );
    // a missing input file: 400, nothing reserved
    let fresh = new_key(&gw, json!({"rpm_limit": 10})).await;
    let e = create(fresh.clone(), batch("file-nope"))
        .await
        .assert_error(400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("file-nope"),
        "{e}"
    );
    let r = chat(&gw, &fresh, &hi("gpt")).await;
    assert_eq!(
        r.header("x-ratelimit-api_key-remaining-requests"),
        Some("9")
    );
    // tokens per day
    let tpd = new_key(&gw, json!({"tpd_limit": 20})).await;
    let e = create(tpd, batch("file-small")).await.assert_error(429);
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("Batch contains ")
            && msg.contains(" tokens but only 20 tokens remaining out of 20 TPD limit"),
        "{msg}"
    );
    gw.gw.shutdown().await;
}

/// Random interleavings of admissions and releases against Redis (batched by the courier)
/// never leave a slot behind and never admit more than the limit.
#[tokio::test]
async fn random_interleavings_leave_no_slot_in_redis() {
    use tianji::limits::{Descriptor, Limits, Options};
    let redis = shared_redis();
    let conn = redis::aio::ConnectionManager::new(redis::Client::open(redis.as_str()).unwrap())
        .await
        .unwrap();
    let limits = Arc::new(Limits::new(
        Some(tianji::util::redis_conn::Conn::Single(conn)),
        Options::default(),
    ));
    let value = format!("prop-{}", uuid::Uuid::now_v7().simple());
    let d = Descriptor::plain("api_key", value.clone(), None, Some(1_000_000_000), Some(3));
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut held = Vec::new();
    for _ in 0..400 {
        // a few admissions at once, so some share a call
        let n = (next() % 3 + 1) as usize;
        let tries = futures_util::future::join_all(
            (0..n).map(|i| limits.acquire(vec![d.clone()], next() % 50 + i as u64)),
        )
        .await;
        for t in tries {
            match t {
                Ok(Some(h)) => held.push(h),
                Ok(None) => unreachable!(),
                Err(e) => assert!(e.to_string().contains("max_parallel_requests"), "{e}"),
            }
        }
        assert!(held.len() <= 3, "{} admitted at once", held.len());
        let drop_n = (next() as usize) % (held.len() + 1);
        for _ in 0..drop_n {
            let i = (next() as usize) % held.len();
            let mut h = held.swap_remove(i);
            if next() % 2 == 0 {
                h.used(next() % 40, next() % 40);
            }
            drop(h);
        }
        // releases are queued: let them land before counting
        let live = held.len();
        let mut seen = usize::MAX;
        for _ in 0..100 {
            seen = slots_of(&redis, &value).await;
            if seen == live {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(seen, live);
    }
    held.clear();
    for _ in 0..100 {
        if slots_of(&redis, &value).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("slots left in Redis");
}

async fn slots_of(redis: &str, value: &str) -> usize {
    in_flight_at(redis, &rl_key(&format!("api_key:{value}"))).await as usize
}
