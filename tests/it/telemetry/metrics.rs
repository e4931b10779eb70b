//! Prometheus (`callbacks: ["prometheus"]`): `GET /metrics` scraped over HTTP and parsed by
//! the Python `prometheus_client` OpenMetrics parser; every family is there before the first
//! request; counters move by exactly the requests made; the route needs an admin unless
//! `require_auth_for_metrics_endpoint: false`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply, default_reply};
use crate::common::{MASTER_KEY, Resp, TestGateway, eventually_async, send, stream};
use crate::it::admin_keys::call;

/// gpt-4o as the embedded price map has it.
const COST: f64 = 9.0 * 2.5e-6 + 3.0 * 1e-5;

const FAMILIES: &[(&str, &str)] = &[
    ("tianji_proxy_total_requests_metric", "counter"),
    ("tianji_proxy_failed_requests_metric", "counter"),
    ("tianji_requests_metric", "counter"),
    ("tianji_input_tokens_metric", "counter"),
    ("tianji_output_tokens_metric", "counter"),
    ("tianji_total_tokens_metric", "counter"),
    ("tianji_spend_metric", "counter"),
    ("tianji_request_total_latency_metric", "histogram"),
    ("tianji_llm_api_latency_metric", "histogram"),
    ("tianji_llm_api_time_to_first_token_metric", "histogram"),
    ("tianji_remaining_team_budget_metric", "gauge"),
    ("tianji_remaining_api_key_budget_metric", "gauge"),
    ("tianji_remaining_requests_metric", "gauge"),
    ("tianji_deployment_state", "gauge"),
    ("tianji_cache_hits_metric", "counter"),
    ("tianji_callback_logging_failures_metric", "counter"),
    ("tianji_callback_events_dropped_metric", "counter"),
    ("tianji_in_flight_requests", "gauge"),
];

/// A scrape as the parser read it.
pub(super) struct Scrape(Value);

impl Scrape {
    fn family(&self, name: &str) -> Option<&str> {
        self.0["families"][name].as_str()
    }

    /// The sum of the samples named `name` whose labels include `with`.
    pub(super) fn sum(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        let samples = self.0["samples"].as_array().cloned().unwrap_or_default();
        samples
            .iter()
            .filter(|s| s[0] == name)
            .filter(|s| with.iter().all(|(k, v)| s[1][*k] == *v))
            .map(|s| s[2].as_f64().unwrap())
            .sum()
    }
}

/// Parse an exposition with prometheus_client's OpenMetrics parser (fails on a bad text).
fn parse(text: &str) -> Scrape {
    let py = crate::it::sdk::python();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/prom_parse.py");
    let mut child = Command::new(py)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "parser refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    Scrape(serde_json::from_slice(&out.stdout).unwrap())
}

async fn get(gw: &TestGateway, key: Option<&str>) -> Resp {
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    send(Method::GET, &gw.url("/metrics"), &headers, Bytes::new()).await
}

pub(super) async fn scrape(gw: &TestGateway) -> Scrape {
    let r = get(gw, Some(MASTER_KEY)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/openmetrics-text")),
        "{:?}",
        r.header("content-type")
    );
    parse(&r.text())
}

/// The mock's answers, or a 500 when the request says "fail".
async fn failing_mock() -> MockUpstream {
    MockUpstream::with(Arc::new(move |r: &Recorded| {
        if String::from_utf8_lossy(&r.body).contains("\"fail\"") {
            Reply::status(500, json!({"error": {"message": "upstream broke"}}))
        } else {
            default_reply(r)
        }
    }))
    .await
}

async fn gateway(db: &TestDb, up: &MockUpstream, tianji: &str) -> TestGateway {
    let yaml = format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up}}\n    model_info: {{id: dep-gpt}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\nrouter_settings:\n  num_retries: 0\n  allowed_fails: 5\ntianji_settings:\n{tianji}",
        b = up.base(),
        u = db.url
    );
    TestGateway::start(&yaml).await
}

async fn ok(r: Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// A team `ops` (alias "Ops") and a key of it with a budget: (key, hashed key).
async fn team_key(gw: &TestGateway) -> (String, String) {
    let t = ok(call(
        gw,
        Method::POST,
        "/team/new",
        MASTER_KEY,
        json!({"team_alias": "Ops", "team_id": "ops", "max_budget": 5.0}),
    )
    .await)
    .await;
    assert_eq!(t["team_id"], "ops");
    let k = ok(call(
        gw,
        Method::POST,
        "/key/generate",
        MASTER_KEY,
        json!({"team_id": "ops", "key_alias": "ci", "max_budget": 1.0, "rpm_limit": 100}),
    )
    .await)
    .await;
    (
        k["key"].as_str().unwrap().to_string(),
        k["token"].as_str().unwrap().to_string(),
    )
}

fn chat(fail: bool) -> Value {
    let content = if fail { "fail" } else { "hi" };
    json!({"model": "gpt", "messages": [{"role": "user", "content": content}]})
}

#[tokio::test]
async fn every_family_from_startup_and_counters_move_by_the_requests_made() {
    let db = TestDb::create().await;
    let up = failing_mock().await;
    let gw = gateway(&db, &up, "  callbacks: [prometheus]\n").await;

    // before any request: every family, with its type; the unlabeled gauge at 0
    let s = scrape(&gw).await;
    for (name, kind) in FAMILIES {
        assert_eq!(s.family(name), Some(*kind), "{name}: {}", s.0["families"]);
    }
    assert_eq!(s.sum("tianji_in_flight_requests", &[]), 0.0);

    let (key, hash) = team_key(&gw).await;
    let mut failed_status = 0;
    for fail in [false, false, false, true, true] {
        let r = call(&gw, Method::POST, "/v1/chat/completions", &key, chat(fail)).await;
        if fail {
            assert!(r.status.as_u16() >= 500, "{}", r.text());
            failed_status = r.status.as_u16();
        } else {
            assert_eq!(r.status, 200, "{}", r.text());
        }
    }
    let failed = failed_status.to_string();
    let me = [("hashed_api_key", hash.as_str())];
    let s = scrape(&gw).await;
    let ok_labels = [
        ("hashed_api_key", hash.as_str()),
        ("api_key_alias", "ci"),
        ("team", "ops"),
        ("team_alias", "Ops"),
        ("requested_model", "gpt"),
        ("status_code", "200"),
    ];
    assert_eq!(
        s.sum("tianji_proxy_total_requests_metric_total", &ok_labels),
        3.0
    );
    let by_status = [
        ("hashed_api_key", hash.as_str()),
        ("status_code", failed.as_str()),
    ];
    assert_eq!(
        s.sum("tianji_proxy_total_requests_metric_total", &by_status),
        2.0
    );
    let class = [
        ("hashed_api_key", hash.as_str()),
        ("exception_status", failed.as_str()),
    ];
    assert_eq!(
        s.sum("tianji_proxy_failed_requests_metric_total", &class),
        2.0
    );
    assert_eq!(s.sum("tianji_requests_metric_total", &me), 5.0);
    assert_eq!(s.sum("tianji_input_tokens_metric_total", &me), 27.0);
    assert_eq!(s.sum("tianji_output_tokens_metric_total", &me), 9.0);
    assert_eq!(s.sum("tianji_total_tokens_metric_total", &me), 36.0);
    let spend = s.sum("tianji_spend_metric_total", &me);
    assert!((spend - 3.0 * COST).abs() < 1e-12, "{spend}");
    assert_eq!(s.sum("tianji_request_total_latency_metric_count", &me), 5.0);
    let inf = [("hashed_api_key", hash.as_str()), ("le", "+Inf")];
    assert_eq!(
        s.sum("tianji_request_total_latency_metric_bucket", &inf),
        5.0
    );
    let api = s.sum("tianji_llm_api_latency_metric_count", &me);
    assert!((3.0..=5.0).contains(&api), "{api}");
    assert_eq!(s.sum("tianji_in_flight_requests", &[]), 0.0);
    // the budgets as the last request found them (three successes booked)
    let left = s.sum(
        "tianji_remaining_api_key_budget_metric",
        &[("hashed_api_key", &hash), ("api_key_alias", "ci")],
    );
    assert!((left - (1.0 - 3.0 * COST)).abs() < 1e-9, "{left}");
    let team_left = s.sum(
        "tianji_remaining_team_budget_metric",
        &[("team", "ops"), ("team_alias", "Ops")],
    );
    assert!((team_left - (5.0 - 3.0 * COST)).abs() < 1e-9, "{team_left}");
    // rate-limit headroom as the last request left it (5 of the key's 100 a minute used)
    let rl = [
        ("hashed_api_key", hash.as_str()),
        ("model_group", "gpt"),
        ("model_id", "dep-gpt"),
    ];
    assert_eq!(s.sum("tianji_remaining_requests_metric", &rl), 95.0);
    // failures this minute, not cooling down: partial outage
    let dep = [
        ("model_id", "dep-gpt"),
        ("litellm_model_name", "gpt-4o"),
        ("api_provider", "openai"),
    ];
    assert_eq!(s.sum("tianji_deployment_state", &dep), 1.0);

    // a stream: time to first token counted once
    let body =
        json!({"model": "gpt", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let r = stream(&gw.url("/v1/chat/completions"), &body.to_string()).await;
    assert_eq!(r.status, 200);
    let counted = eventually_async(Duration::from_secs(5), || async {
        let s = scrape(&gw).await;
        s.sum("tianji_llm_api_time_to_first_token_metric_count", &[]) == 1.0
            && s.sum("tianji_proxy_total_requests_metric_total", &[]) == 6.0
    })
    .await;
    assert!(counted, "the stream was not counted once");
}

#[tokio::test]
async fn metrics_need_an_admin_unless_the_flag_opens_them() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let gw = gateway(&db, &up, "  callbacks: [prometheus]\n").await;
    assert_eq!(get(&gw, None).await.status, 401);
    let k = ok(call(&gw, Method::POST, "/key/generate", MASTER_KEY, json!({})).await).await;
    let key = k["key"].as_str().unwrap();
    let r = get(&gw, Some(key)).await;
    assert!(
        r.status == 401 || r.status == 403,
        "{} {}",
        r.status,
        r.text()
    );
    assert!(!r.text().contains("tianji_"), "{}", r.text());
    assert_eq!(get(&gw, Some(MASTER_KEY)).await.status, 200);

    let open = gateway(
        &db,
        &up,
        "  callbacks: [prometheus]\n  require_auth_for_metrics_endpoint: false\n",
    )
    .await;
    let r = get(&open, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    parse(&r.text());

    // without the callback there is no /metrics
    let off = gateway(&db, &up, "  json_logs: false\n").await;
    assert_eq!(get(&off, Some(MASTER_KEY)).await.status, 404);
}

#[tokio::test]
async fn a_cache_hit_counts_once_and_spends_nothing() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let tianji = "  callbacks: [prometheus]\n  cache: true\n  cache_params: {type: local}\n";
    let gw = gateway(&db, &up, tianji).await;
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "cache me"}]});
    let mut sent = 0.0;
    let hit = eventually_async(Duration::from_secs(5), || {
        sent += 1.0;
        let gw = &gw;
        let body = body.clone();
        async move {
            let r = call(gw, Method::POST, "/v1/chat/completions", MASTER_KEY, body).await;
            assert_eq!(r.status, 200, "{}", r.text());
            r.header("x-tianji-cache-hit") == Some("True")
        }
    })
    .await;
    assert!(hit, "never a cache hit");
    let s = scrape(&gw).await;
    assert_eq!(
        s.sum(
            "tianji_cache_hits_metric_total",
            &[("requested_model", "gpt")]
        ),
        1.0
    );
    assert_eq!(s.sum("tianji_proxy_total_requests_metric_total", &[]), sent);
    let spend = s.sum("tianji_spend_metric_total", &[]);
    assert!((spend - (sent - 1.0) * COST).abs() < 1e-12, "{spend}");
}
