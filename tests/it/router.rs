//! The router fed by live traffic: retries on another deployment, cooldowns (shared through
//! Redis) and recovery, least-busy and latency routing, context-window, streaming and
//! run-time (`POST /fallback`) fallbacks, `PATCH /router/settings`. Three mock upstreams: one
//! failing, one slow, one good.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply, default_reply};
use crate::common::{MASTER_KEY, Resp, TestGateway, eventually, eventually_async, send, stream};

fn failing() -> Reply {
    Reply::status(
        503,
        json!({"error": {"message": "upstream overloaded", "type": "server_error"}}),
    )
}

async fn mock_failing() -> MockUpstream {
    MockUpstream::with(Arc::new(|_: &Recorded| failing())).await
}

async fn mock_slow(delay: Duration) -> MockUpstream {
    MockUpstream::with(Arc::new(move |r: &Recorded| {
        Reply::Delay(delay, Box::new(default_reply(r)))
    }))
    .await
}

async fn mock_good() -> MockUpstream {
    MockUpstream::with(Arc::new(default_reply)).await
}

fn dep(name: &str, up: &MockUpstream, id: &str) -> String {
    format!(
        "  - model_name: {name}\n    tianji_params: {{model: openai/gpt-4o-mini, api_base: \"{}\", api_key: sk-up}}\n    model_info: {{id: {id}}}\n",
        up.base()
    )
}

fn ask(model: &str) -> String {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}).to_string()
}

fn header(r: &Resp, name: &str) -> String {
    r.header(name).unwrap_or_default().to_string()
}

/// The live counters (cooldown, usage) `gw` keeps for deployment `id`.
fn stats_of(gw: &TestGateway, id: &str) -> Arc<tianji::router::stats::Stats> {
    gw.gw
        .state()
        .models
        .load()
        .deployments()
        .find(|d| d.id == id)
        .map(|d| d.stats.clone())
        .unwrap_or_else(|| panic!("no deployment {id}"))
}

/// Now, in Unix milliseconds (the clock cooldowns are kept in).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn retries_land_on_the_good_one_and_the_failing_one_cools_down_then_returns() {
    let (bad, slow, good) = (
        mock_failing().await,
        mock_slow(Duration::from_millis(30)).await,
        mock_good().await,
    );
    let yaml = format!(
        "model_list:\n{}{}{}router_settings:\n  num_retries: 2\n  allowed_fails: 0\n  cooldown_time: 3\n",
        dep("m", &bad, "bad"),
        dep("m", &slow, "slow"),
        dep("m", &good, "good")
    );
    let gw = TestGateway::start(&yaml).await;
    // until the failing one was tried once, every answer is still a success
    let mut retried = 0;
    for _ in 0..30 {
        let r = gw.post("/v1/chat/completions", &ask("m")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_ne!(header(&r, "x-tianji-model-id"), "bad");
        if header(&r, "x-tianji-attempted-retries") != "0" {
            retried += 1;
        }
        assert_eq!(header(&r, "x-tianji-attempted-fallbacks"), "0");
    }
    let hits = bad.requests().len();
    assert!(hits >= 1, "the failing deployment was never tried");
    assert_eq!(retried, hits, "every failure was retried elsewhere");
    // cooling down: no traffic for cooldown_time
    for _ in 0..20 {
        let r = gw.post("/v1/chat/completions", &ask("m")).await;
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "x-tianji-attempted-retries"), "0");
    }
    assert_eq!(
        bad.requests().len(),
        hits,
        "a cooled-down deployment got traffic"
    );
    // after cooldown_time it is tried again (the 3 s cooldown must really pass)
    let cooling = stats_of(&gw, "bad");
    assert!(
        eventually(Duration::from_secs(10), || !cooling.cooling(now_ms())).await,
        "the cooldown never ended"
    );
    for _ in 0..40 {
        let r = gw.post("/v1/chat/completions", &ask("m")).await;
        assert_eq!(r.status, 200);
        if bad.requests().len() > hits {
            break;
        }
    }
    assert!(
        bad.requests().len() > hits,
        "the deployment never came back"
    );
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn least_busy_spreads_concurrent_slow_requests() {
    let ups = [
        mock_slow(Duration::from_millis(1000)).await,
        mock_slow(Duration::from_millis(1000)).await,
        mock_slow(Duration::from_millis(1000)).await,
    ];
    let yaml = format!(
        "model_list:\n{}{}{}router_settings:\n  routing_strategy: least-busy\n",
        dep("m", &ups[0], "a"),
        dep("m", &ups[1], "b"),
        dep("m", &ups[2], "c")
    );
    let gw = TestGateway::start(&yaml).await;
    let url = gw.url("/v1/chat/completions");
    let mut tasks = Vec::new();
    for i in 0..9 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            send(
                http::Method::POST,
                &url,
                &[("authorization", &format!("Bearer {MASTER_KEY}"))],
                bytes::Bytes::from(ask("m")),
            )
            .await
        }));
        // one after the other: each is at its upstream (in flight there for a second) before
        // the next is sent, so all are still in flight when the last one comes
        let arrived = || ups.iter().map(|u| u.requests().len()).sum::<usize>() > i;
        assert!(
            eventually(Duration::from_secs(10), arrived).await,
            "request {i} never reached an upstream"
        );
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().status, 200);
    }
    let counts: Vec<usize> = ups.iter().map(|u| u.requests().len()).collect();
    assert_eq!(
        counts,
        vec![3, 3, 3],
        "least-busy did not spread: {counts:?}"
    );
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn latency_routing_prefers_the_fast_one_after_warm_up() {
    let (slow, fast) = (
        mock_slow(Duration::from_millis(150)).await,
        mock_good().await,
    );
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  routing_strategy: latency-based-routing\n",
        dep("m", &slow, "slow"),
        dep("m", &fast, "fast")
    );
    let gw = TestGateway::start(&yaml).await;
    // warm-up: deployments never measured go first, so each is tried once
    for _ in 0..2 {
        assert_eq!(gw.post("/v1/chat/completions", &ask("m")).await.status, 200);
    }
    assert_eq!((slow.requests().len(), fast.requests().len()), (1, 1));
    for _ in 0..20 {
        let r = gw.post("/v1/chat/completions", &ask("m")).await;
        assert_eq!(header(&r, "x-tianji-model-id"), "fast");
    }
    assert_eq!(slow.requests().len(), 1);
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn context_window_and_streaming_fallbacks() {
    let small = MockUpstream::with(Arc::new(|_: &Recorded| {
        Reply::status(
            400,
            json!({"error": {"message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
                "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}),
        )
    }))
    .await;
    let (big, bad, good) = (mock_good().await, mock_failing().await, mock_good().await);
    let yaml = format!(
        "model_list:\n{}{}{}{}router_settings:\n  context_window_fallbacks: [{{small: [big]}}]\n  fallbacks: [{{flaky: [steady]}}]\n",
        dep("small", &small, "small-1"),
        dep("big", &big, "big-1"),
        dep("flaky", &bad, "flaky-1"),
        dep("steady", &good, "steady-1")
    );
    let gw = TestGateway::start(&yaml).await;
    let r = gw.post("/v1/chat/completions", &ask("small")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(header(&r, "x-tianji-model-id"), "big-1");
    assert_eq!(header(&r, "x-tianji-attempted-fallbacks"), "1");
    assert_eq!(small.requests().len(), 1);
    // a plain bad request is not a reason to fall back
    let r = gw.post("/v1/chat/completions", &ask("big")).await;
    assert_eq!(r.status, 200);

    // a stream whose deployment fails before the first byte succeeds on the fallback
    let body =
        json!({"model": "flaky", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let s = stream(&gw.url("/v1/chat/completions"), &body.to_string()).await;
    assert_eq!(s.status.as_u16(), 200, "{}", s.text());
    let text = s.text();
    assert!(text.contains("data: [DONE]"), "{text}");
    assert_eq!(bad.requests().len(), 1);
    assert_eq!(good.requests().len(), 1);
    gw.gw.shutdown().await;
}

async fn fallback_api(gw: &TestGateway, method: http::Method, path: &str, body: Value) -> Resp {
    send(
        method,
        &gw.url(path),
        &[("authorization", &format!("Bearer {MASTER_KEY}"))],
        bytes::Bytes::from(body.to_string()),
    )
    .await
}

#[tokio::test]
async fn fallbacks_created_at_run_time_apply_at_once_and_persist() {
    let db = TestDb::create().await;
    let (bad, good) = (mock_failing().await, mock_good().await);
    let yaml = format!(
        "model_list:\n{}{}general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{}\"\n",
        dep("flaky", &bad, "flaky-1"),
        dep("steady", &good, "steady-1"),
        db.url
    );
    let gw = TestGateway::start(&yaml).await;
    gw.post("/v1/chat/completions", &ask("flaky"))
        .await
        .assert_error(503);
    // bad input
    for bad_body in [
        json!({"model": "flaky", "fallback_models": []}),
        json!({"model": "flaky", "fallback_models": ["nope"]}),
        json!({"model": "flaky", "fallback_models": ["flaky"]}),
        json!({"model": "nope", "fallback_models": ["steady"]}),
        json!({"model": "flaky", "fallback_models": ["steady"], "fallback_type": "odd"}),
    ] {
        fallback_api(&gw, http::Method::POST, "/fallback", bad_body)
            .await
            .assert_error(400);
    }
    let r = fallback_api(
        &gw,
        http::Method::POST,
        "/fallback",
        json!({"model": "flaky", "fallback_models": ["steady"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        "Fallback configuration created successfully"
    );
    let r = gw.post("/v1/chat/completions", &ask("flaky")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(header(&r, "x-tianji-model-id"), "steady-1");
    let r = gw.get("/fallback/flaky").await;
    assert_eq!(r.json()["fallback_models"], json!(["steady"]));
    gw.get("/fallback/steady").await.assert_error(404);
    let r = gw.get("/router/settings").await;
    assert_eq!(
        r.json()["current_values"]["fallbacks"],
        json!([{"flaky": ["steady"]}])
    );
    gw.gw.shutdown().await;

    // stored: a restart keeps it; deleting it restores the failure
    let gw = TestGateway::start(&yaml).await;
    assert_eq!(
        gw.post("/v1/chat/completions", &ask("flaky")).await.status,
        200
    );
    let r = fallback_api(&gw, http::Method::DELETE, "/fallback/flaky", Value::Null).await;
    assert_eq!(r.status, 200, "{}", r.text());
    gw.post("/v1/chat/completions", &ask("flaky"))
        .await
        .assert_error(503);
    fallback_api(&gw, http::Method::DELETE, "/fallback/flaky", Value::Null)
        .await
        .assert_error(404);

    // router settings: changed live, checked
    let r = fallback_api(
        &gw,
        http::Method::PATCH,
        "/router/settings",
        json!({"routing_strategy": "least-busy", "num_retries": 1}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["current_values"]["routing_strategy"], "least-busy");
    for bad_body in [
        json!({"routing_strategy": "dice"}),
        json!({"cooldown_time": -1}),
        json!({"nope": 1}),
    ] {
        fallback_api(&gw, http::Method::PATCH, "/router/settings", bad_body)
            .await
            .assert_error(400);
    }
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn two_instances_sharing_redis_see_each_others_cooldowns() {
    let (bad, good) = (mock_failing().await, mock_good().await);
    let redis =
        std::env::var("TIANJI_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let id = format!("bad-{}", uuid::Uuid::now_v7().simple());
    let yaml = format!(
        "model_list:\n{}{}router_settings:\n  redis_url: \"{redis}\"\n  num_retries: 1\n  allowed_fails: 0\n  cooldown_time: 30\n",
        dep("m", &bad, &id),
        dep("m", &good, "good")
    );
    let one = TestGateway::start(&yaml).await;
    let two = TestGateway::start(&yaml).await;
    // instance one meets the failure and cools the deployment down
    for _ in 0..40 {
        assert_eq!(
            one.post("/v1/chat/completions", &ask("m")).await.status,
            200
        );
        if !bad.requests().is_empty() {
            break;
        }
    }
    assert_eq!(bad.requests().len(), 1);
    // instance two hears of it within its sync period and sends it nothing
    let on_two = stats_of(&two, &id);
    assert!(
        eventually(Duration::from_secs(10), || on_two.cooling(now_ms())).await,
        "instance two never heard of the cooldown"
    );
    for _ in 0..30 {
        assert_eq!(
            two.post("/v1/chat/completions", &ask("m")).await.status,
            200
        );
    }
    assert_eq!(
        bad.requests().len(),
        1,
        "instance two used a cooled-down deployment"
    );
    one.gw.shutdown().await;
    two.gw.shutdown().await;
}

#[tokio::test]
async fn weighted_shuffle_and_tag_routing() {
    let (heavy, light) = (mock_good().await, mock_good().await);
    let yaml = format!(
        "model_list:
  - model_name: m
    tianji_params: {{model: openai/gpt-4o-mini, api_base: \"{}\", api_key: sk-up, weight: 9, tags: [paid]}}
  - model_name: m
    tianji_params: {{model: openai/gpt-4o-mini, api_base: \"{}\", api_key: sk-up, weight: 1, tags: [free, default]}}
router_settings:
  enable_tag_filtering: true
",
        heavy.base(),
        light.base()
    );
    let gw = TestGateway::start(&yaml).await;
    // tags pick the deployment; untagged requests go to the default one
    for (tags, want) in [(json!(["paid"]), &heavy), (json!(["free"]), &light)] {
        let before = want.requests().len();
        let body =
            json!({"model": "m", "tags": tags, "messages": [{"role": "user", "content": "hi"}]});
        for _ in 0..5 {
            assert_eq!(
                gw.post("/v1/chat/completions", &body.to_string())
                    .await
                    .status,
                200
            );
        }
        assert_eq!(want.requests().len(), before + 5);
    }
    let before = light.requests().len();
    assert_eq!(gw.post("/v1/chat/completions", &ask("m")).await.status, 200);
    assert_eq!(light.requests().len(), before + 1);
    // weights: without tag filtering, 9:1
    let r = fallback_api(
        &gw,
        http::Method::PATCH,
        "/router/settings",
        json!({"enable_tag_filtering": false}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (h0, l0) = (heavy.requests().len(), light.requests().len());
    for _ in 0..200 {
        assert_eq!(gw.post("/v1/chat/completions", &ask("m")).await.status, 200);
    }
    let (h, l) = (heavy.requests().len() - h0, light.requests().len() - l0);
    assert!(h > 150 && l > 5, "weights 9:1 gave {h}:{l}");
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn health_checks_are_stored_and_run_in_the_background() {
    let db = TestDb::create().await;
    let (bad, good) = (mock_failing().await, mock_good().await);
    let redis =
        std::env::var("TIANJI_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let models = format!(
        "model_list:\n{}{}  - model_name: emb\n    tianji_params: {{model: openai/text-embedding-3-small, api_base: \"{}\", api_key: sk-up}}\n    model_info: {{id: emb-1, mode: embedding}}\n",
        dep("m", &good, "good-1"),
        dep("broken", &bad, "bad-1"),
        good.base()
    );
    let yaml = format!(
        "{models}router_settings:\n  redis_url: \"{redis}\"\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{}\"\n",
        db.url
    );
    let gw = TestGateway::start(&yaml).await;
    let r = gw.get("/health").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (v["healthy_count"].as_u64(), v["unhealthy_count"].as_u64()),
        (Some(2), Some(1)),
        "{v}"
    );
    assert_eq!(v["unhealthy_endpoints"][0]["model_id"], "bad-1");
    assert!(
        v["unhealthy_endpoints"][0]["error"]
            .as_str()
            .unwrap()
            .contains("overloaded")
    );
    assert!(
        !r.text().contains("sk-up"),
        "a provider key in the health answer"
    );
    assert!(
        good.requests()
            .iter()
            .any(|q| q.path.ends_with("/embeddings"))
    );
    let r = gw.get("/health?model=m").await;
    assert_eq!(r.json()["healthy_count"], 1);
    assert_eq!(r.json()["unhealthy_count"], 0);
    let r = gw.get("/health/history").await;
    assert_eq!(r.json()["total"], 4, "{}", r.text());
    let r = gw.get("/health/history?status=unhealthy").await;
    assert_eq!(r.json()["total"], 1);
    assert_eq!(r.json()["health_checks"][0]["model_name"], "broken");
    // only admins
    let key = fallback_api(&gw, http::Method::POST, "/key/generate", json!({}))
        .await
        .json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    send(
        http::Method::GET,
        &gw.url("/health"),
        &[("authorization", &format!("Bearer {key}"))],
        bytes::Bytes::new(),
    )
    .await
    .assert_error(403);
    let r = gw.get("/health/readiness").await;
    assert_eq!(
        (r.json()["db"].as_str(), r.json()["redis"].as_str()),
        (Some("connected"), Some("connected"))
    );
    gw.gw.shutdown().await;

    // background checks: stored every interval; /health answers with the latest, calling nobody
    let yaml = format!(
        "{models}general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{}\"\n  background_health_checks: true\n  health_check_interval: 1\n",
        db.url
    );
    let gw = TestGateway::start(&yaml).await;
    let repeated = eventually_async(Duration::from_secs(20), || async {
        let r = gw.get("/health/history?model=m").await;
        let rows = r.json()["health_checks"].as_array().unwrap().clone();
        let background = rows
            .iter()
            .filter(|h| h["checked_by"] == "background_health_check")
            .count();
        background >= 2
    })
    .await;
    assert!(repeated, "background checks did not repeat");
    let calls = good.requests().len();
    let r = gw.get("/health").await;
    assert_eq!(r.json()["healthy_count"], 2, "{}", r.text());
    assert!(
        good.requests().len() <= calls + 2,
        "GET /health called the providers"
    );
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn a_request_may_shorten_its_timeout() {
    let slow = mock_slow(Duration::from_millis(400)).await;
    let gw = TestGateway::start(&format!("model_list:\n{}", dep("m", &slow, "slow-1"))).await;
    let call = |timeout: Option<&'static str>| {
        let url = gw.url("/v1/chat/completions");
        async move {
            let auth = format!("Bearer {MASTER_KEY}");
            let mut h = vec![("authorization", auth.as_str())];
            if let Some(t) = timeout {
                h.push(("x-tianji-timeout", t));
            }
            send(http::Method::POST, &url, &h, bytes::Bytes::from(ask("m"))).await
        }
    };
    let e = call(Some("0.1")).await.assert_error(408);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("0.1s"),
        "{e}"
    );
    assert_eq!(call(None).await.status, 200);
    assert_eq!(call(Some("5")).await.status, 200);
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn usage_based_routing_shares_usage_and_rpm_across_instances() {
    // counts are per minute: do not start just before one turns
    let into_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if into_minute > 52 {
        // a window: the next minute must really begin
        tokio::time::sleep(Duration::from_secs(61 - into_minute)).await;
    }
    let (a, b) = (mock_good().await, mock_good().await);
    let redis =
        std::env::var("TIANJI_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let yaml = format!(
        "model_list:
  - model_name: m
    tianji_params: {{model: openai/gpt-4o-mini, api_base: \"{}\", api_key: sk-up, rpm: 3}}
    model_info: {{id: a-{tag}}}
  - model_name: m
    tianji_params: {{model: openai/gpt-4o-mini, api_base: \"{}\", api_key: sk-up}}
    model_info: {{id: b-{tag}}}
router_settings:
  redis_url: \"{redis}\"
  routing_strategy: usage-based-routing-v2
",
        a.base(),
        b.base()
    );
    let one = TestGateway::start(&yaml).await;
    let two = TestGateway::start(&yaml).await;
    for _ in 0..20 {
        assert_eq!(
            one.post("/v1/chat/completions", &ask("m")).await.status,
            200
        );
    }
    // the least used first, and `a` no more once at its rpm
    assert_eq!((a.requests().len(), b.requests().len()), (3, 17));
    // instance two learns one's usage of the minute through Redis
    let a_on_two = stats_of(&two, &format!("a-{tag}"));
    assert!(
        eventually(Duration::from_secs(10), || a_on_two.usage().0 >= 3).await,
        "instance two never heard of instance one's usage"
    );
    for _ in 0..10 {
        assert_eq!(
            two.post("/v1/chat/completions", &ask("m")).await.status,
            200
        );
    }
    assert_eq!(
        a.requests().len(),
        3,
        "instance two did not see instance one's usage"
    );
    one.gw.shutdown().await;
    two.gw.shutdown().await;
}

#[tokio::test]
async fn content_policy_default_fallbacks_retry_policy_and_pre_call_checks() {
    let policy = MockUpstream::with(Arc::new(|_: &Recorded| {
        Reply::status(
            400,
            json!({"error": {"message": "Your request was rejected as a result of our safety system.",
                "type": "invalid_request_error", "code": "content_policy_violation"}}),
        )
    }))
    .await;
    let limited = MockUpstream::with(Arc::new(|_: &Recorded| {
        Reply::status(
            429,
            json!({"error": {"message": "slow down", "type": "requests"}}),
        )
    }))
    .await;
    let (safe, spare, big, bad) = (
        mock_good().await,
        mock_good().await,
        mock_good().await,
        mock_failing().await,
    );
    let yaml = format!(
        "model_list:\n{}{}{}{}{}  - model_name: tiny\n    tianji_params: {{model: openai/gpt-4o-mini, api_base: \"{}\", api_key: sk-up}}\n    model_info: {{id: tiny-1, max_input_tokens: 10}}\n{}router_settings:
  content_policy_fallbacks: [{{strict: [safe]}}]
  default_fallbacks: [spare]
  context_window_fallbacks: [{{tiny: [big]}}]
  enable_pre_call_checks: true
  num_retries: 0
  retry_policy: {{RateLimitErrorRetries: 1}}
",
        dep("strict", &policy, "strict-1"),
        dep("safe", &safe, "safe-1"),
        dep("spare", &spare, "spare-1"),
        dep("flaky", &bad, "flaky-1"),
        dep("busy", &limited, "busy-1"),
        big.base(),
        dep("big", &big, "big-1"),
    );
    let gw = TestGateway::start(&yaml).await;
    // content policy: its own fallbacks
    let r = gw.post("/v1/chat/completions", &ask("strict")).await;
    assert_eq!(header(&r, "x-tianji-model-id"), "safe-1", "{}", r.text());
    // a group without fallbacks of its own: default_fallbacks (num_retries 0: no retry first)
    let r = gw.post("/v1/chat/completions", &ask("flaky")).await;
    assert_eq!(header(&r, "x-tianji-model-id"), "spare-1", "{}", r.text());
    assert_eq!(header(&r, "x-tianji-attempted-retries"), "0");
    assert_eq!(bad.requests().len(), 1);
    // retry_policy: one retry for rate limits (the only deployment, so the same one), then
    // the default fallback
    let r = gw.post("/v1/chat/completions", &ask("busy")).await;
    assert_eq!(header(&r, "x-tianji-model-id"), "spare-1", "{}", r.text());
    assert_eq!(header(&r, "x-tianji-attempted-retries"), "1");
    assert_eq!(limited.requests().len(), 2);
    // pre-call check: a prompt over tiny's max_input_tokens never reaches it
    let long = json!({"model": "tiny", "messages": [{"role": "user", "content": "x".repeat(400)}]});
    let before = big.requests().len();
    let r = gw.post("/v1/chat/completions", &long.to_string()).await;
    assert_eq!(header(&r, "x-tianji-model-id"), "big-1", "{}", r.text());
    assert_eq!(big.requests().len(), before + 1);
    gw.gw.shutdown().await;
}
