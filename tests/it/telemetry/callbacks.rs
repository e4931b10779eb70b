//! Logging callbacks against our own HTTP receivers: one StandardLoggingPayload per request
//! (`generic_api`), Langfuse's ingestion batches, Datadog's logs intake, success/failure
//! selection, message logging turned off and key info redacted, secrets never sent, team
//! sinks isolated, hung and failing sinks never holding a request, unknown callback names
//! refused at startup.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply, default_reply};
use crate::common::{MASTER_KEY, Resp, TestGateway, eventually};

use crate::it::admin_keys::call;

const WAIT: Duration = Duration::from_secs(20);
pub(super) const PROVIDER_KEY: &str = "sk-provider-secret-xyz";

/// The model answers; a 500 when the prompt says "fail", a 429 when it says "slow down".
pub(super) async fn upstream() -> MockUpstream {
    MockUpstream::with(Arc::new(|r: &Recorded| {
        let body = String::from_utf8_lossy(&r.body);
        if body.contains("\"fail\"") {
            Reply::status(
                500,
                json!({"error": {"message": "upstream broke", "type": "server_error"}}),
            )
        } else if body.contains("\"slow down\"") {
            Reply::status(
                429,
                json!({"error": {"message": "too many", "type": "rate_limit"}}),
            )
        } else {
            default_reply(r)
        }
    }))
    .await
}

/// A receiver answering `reply` to every request.
pub(super) async fn receiver(reply: impl Fn() -> Reply + Send + Sync + 'static) -> MockUpstream {
    MockUpstream::with(Arc::new(move |_: &Recorded| reply())).await
}

fn ok_reply() -> Reply {
    Reply::status(200, json!({"ok": true}))
}

pub(super) async fn gateway(
    db: &TestDb,
    up: &MockUpstream,
    tianji: &str,
    env: &str,
) -> TestGateway {
    let yaml = format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: {PROVIDER_KEY}}}\ntianji_settings:\n{tianji}\nenvironment_variables:\n{env}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n",
        b = up.base(),
        u = db.url
    );
    TestGateway::start(&yaml).await
}

pub(super) async fn chat(gw: &TestGateway, key: &str, content: &str) -> Resp {
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": content}]});
    call(gw, Method::POST, "/v1/chat/completions", key, body).await
}

pub(super) async fn new_key(gw: &TestGateway, body: Value) -> String {
    let r = call(gw, Method::POST, "/key/generate", MASTER_KEY, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["key"].as_str().unwrap().to_string()
}

/// Every event a generic receiver got (each request's body is a JSON array of events).
fn events(sink: &MockUpstream) -> Vec<Value> {
    sink.requests()
        .iter()
        .flat_map(|r| r.json().as_array().cloned().unwrap_or_default())
        .collect()
}

fn assert_no_secrets(sink: &MockUpstream, secrets: &[&str]) {
    for r in sink.requests() {
        let text = r.text();
        for s in secrets {
            assert!(!text.contains(s), "a sink got the secret {s}: {text}");
        }
    }
}

#[tokio::test]
async fn generic_api_gets_one_standard_payload_per_request() {
    let db = TestDb::create().await;
    let up = upstream().await;
    let sink = receiver(ok_reply).await;
    let gw = gateway(
        &db,
        &up,
        "  callbacks: [generic_api]",
        &format!(
            "  GENERIC_LOGGER_ENDPOINT: \"http://{}/log\"\n  GENERIC_LOGGER_HEADERS: \"X-Sink-Token=tok-1,X-Other=2\"",
            sink.addr
        ),
    )
    .await;
    let key = new_key(&gw, json!({"key_alias": "k-alias", "user_id": "u-1"})).await;
    assert_eq!(chat(&gw, &key, "hello there").await.status, 200);
    assert_eq!(chat(&gw, &key, "fail").await.status, 500);
    assert!(
        eventually(WAIT, || events(&sink).len() == 2).await,
        "{:?}",
        events(&sink)
    );
    let evs = events(&sink);
    let ok = evs
        .iter()
        .find(|e| e["status"] == "success")
        .expect("a success");
    let bad = evs
        .iter()
        .find(|e| e["status"] == "failure")
        .expect("a failure");
    assert_eq!(ok["model_group"], "gpt");
    assert_eq!(ok["model"], "gpt-4o");
    assert_eq!(ok["call_type"], "acompletion");
    assert_eq!(ok["custom_llm_provider"], "openai");
    assert!(ok["total_tokens"].as_u64().unwrap() > 0);
    assert!(ok["response_cost"].as_f64().unwrap() > 0.0);
    assert_eq!(ok["metadata"]["user_api_key_alias"], "k-alias");
    assert_eq!(ok["metadata"]["user_api_key_user_id"], "u-1");
    assert_eq!(
        ok["metadata"]["user_api_key_hash"].as_str().unwrap().len(),
        64
    );
    assert_eq!(ok["messages"][0]["content"], "hello there");
    assert!(ok["endTime"].as_f64().unwrap() >= ok["startTime"].as_f64().unwrap());
    assert_eq!(bad["error_information"]["error_code"], "500");
    assert_eq!(
        bad["error_information"]["error_class"],
        "InternalServerError"
    );
    assert!(
        bad["error_str"]
            .as_str()
            .unwrap()
            .contains("upstream broke")
    );
    let r = &sink.requests()[0];
    assert_eq!(r.path, "/log");
    assert_eq!(r.headers["x-sink-token"], "tok-1");
    assert_no_secrets(&sink, &[&key, PROVIDER_KEY, MASTER_KEY]);
    // SpendLogs does not store the prompts the sink got (store_prompts_in_spend_logs is off)
    let c = db.client().await;
    let rows = c
        .query(r#"SELECT "messages"::text FROM "TianjiLLM_SpendLogs""#, &[])
        .await
        .unwrap();
    assert!(
        rows.iter()
            .all(|r| !r.get::<_, String>(0).contains("hello there"))
    );
}

#[tokio::test]
async fn langfuse_gets_successes_and_datadog_failures_redacted() {
    let db = TestDb::create().await;
    let up = upstream().await;
    let lf = receiver(ok_reply).await;
    let dd = receiver(|| Reply::status(202, json!({}))).await;
    let gw = gateway(
        &db,
        &up,
        "  success_callback: [langfuse]\n  failure_callback: [datadog]\n  turn_off_message_logging: true\n  redact_user_api_key_info: true",
        &format!(
            "  LANGFUSE_PUBLIC_KEY: pk-lf\n  LANGFUSE_SECRET_KEY: sk-lf\n  LANGFUSE_HOST: \"http://{}\"\n  DD_API_KEY: dd-key\n  DD_BASE_URL: \"http://{}\"",
            lf.addr, dd.addr
        ),
    )
    .await;
    let key = new_key(&gw, json!({"key_alias": "secret-alias"})).await;
    assert_eq!(chat(&gw, &key, "private words").await.status, 200);
    assert_eq!(chat(&gw, &key, "fail").await.status, 500);
    assert!(
        eventually(WAIT, || !lf.requests().is_empty()
            && !dd.requests().is_empty())
        .await
    );
    // langfuse: one trace and one generation, for the success only
    let r = &lf.requests()[0];
    assert_eq!(r.path, "/api/public/ingestion");
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("pk-lf:sk-lf");
    assert_eq!(
        r.headers["authorization"],
        format!("Basic {basic}").as_str()
    );
    let batch = r.json()["batch"].as_array().unwrap().clone();
    assert_eq!(batch.len(), 2, "{batch:?}");
    assert_eq!(batch[0]["type"], "trace-create");
    assert_eq!(batch[1]["type"], "generation-create");
    let g = &batch[1]["body"];
    assert_eq!(g["traceId"], batch[0]["body"]["id"]);
    assert_eq!(g["model"], "gpt-4o");
    assert!(g["usage"]["total"].as_u64().unwrap() > 0);
    assert_eq!(g["level"], "DEFAULT");
    // datadog: the failure only, its payload in `message`
    let r = &dd.requests()[0];
    assert_eq!(r.path, "/api/v2/logs");
    assert_eq!(r.headers["dd-api-key"], "dd-key");
    let logs = r.json();
    assert_eq!(logs.as_array().unwrap().len(), 1);
    assert_eq!(logs[0]["status"], "error");
    let p: Value = serde_json::from_str(logs[0]["message"].as_str().unwrap()).unwrap();
    assert_eq!(p["status"], "failure");
    assert_eq!(p["messages"], "redacted-by-litellm");
    assert!(p["metadata"].get("user_api_key_hash").is_none(), "{p}");
    for sink in [&lf, &dd] {
        assert_no_secrets(sink, &[&key, PROVIDER_KEY, "private words", "secret-alias"]);
    }
}

#[tokio::test]
async fn hung_and_failing_sinks_never_hold_requests() {
    let db = TestDb::create().await;
    let up = upstream().await;
    let hung = receiver(|| Reply::Delay(Duration::from_secs(300), Box::new(ok_reply()))).await;
    let broken = receiver(|| Reply::status(500, json!({"error": "down"}))).await;
    let gw = gateway(
        &db,
        &up,
        "  callbacks: [generic_api, datadog]",
        &format!(
            "  GENERIC_LOGGER_ENDPOINT: \"http://{}/log\"\n  DD_API_KEY: dd\n  DD_BASE_URL: \"http://{}\"",
            hung.addr, broken.addr
        ),
    )
    .await;
    let calls = (0..40).map(|i| {
        let gw = &gw;
        async move { chat(gw, MASTER_KEY, &format!("burst {i}")).await.status }
    });
    let statuses = futures_util::future::join_all(calls).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // the hung sink holds its first batch and has answered nothing
    assert!(eventually(WAIT, || !hung.requests().is_empty()).await);
    assert_eq!(
        gw.gw.state().callbacks.load().totals().0,
        0,
        "nothing delivered"
    );
    // the failing sink's events are counted as failed
    assert!(eventually(WAIT, || gw.gw.state().callbacks.load().totals().2 >= 40).await);
    // requests still answer while the sink hangs
    assert_eq!(chat(&gw, MASTER_KEY, "after").await.status, 200);
}

#[tokio::test]
async fn team_sinks_get_only_their_teams_requests() {
    let db = TestDb::create().await;
    let up = upstream().await;
    let (sink_a, sink_b) = (receiver(ok_reply).await, receiver(ok_reply).await);
    let gw = gateway(&db, &up, "  callbacks: []", "  UNUSED: x").await;
    let mut keys = Vec::new();
    for (team, sink) in [("team-a", &sink_a), ("team-b", &sink_b)] {
        let logging = json!([{
            "callback_name": "generic_api",
            "callback_type": "success_and_failure",
            "callback_vars": {"generic_logger_endpoint": format!("http://{}/{team}", sink.addr)},
        }]);
        let r = call(
            &gw,
            Method::POST,
            "/team/new",
            MASTER_KEY,
            json!({"team_id": team, "metadata": {"logging": logging}}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        keys.push(new_key(&gw, json!({"team_id": team})).await);
    }
    for _ in 0..3 {
        assert_eq!(chat(&gw, &keys[0], "from a").await.status, 200);
    }
    assert_eq!(chat(&gw, &keys[1], "from b").await.status, 200);
    assert!(
        eventually(WAIT, || events(&sink_a).len() == 3
            && events(&sink_b).len() == 1)
        .await
    );
    assert!(
        events(&sink_a)
            .iter()
            .all(|e| e["metadata"]["user_api_key_team_id"] == "team-a")
    );
    assert!(
        events(&sink_b)
            .iter()
            .all(|e| e["metadata"]["user_api_key_team_id"] == "team-b")
    );
    // a request of no team reaches neither
    assert_eq!(chat(&gw, MASTER_KEY, "admin").await.status, 200);
    assert_eq!(chat(&gw, &keys[1], "b again").await.status, 200);
    assert!(eventually(WAIT, || events(&sink_b).len() == 2).await);
    assert_eq!(events(&sink_a).len(), 3);
}

#[test]
fn callbacks_not_implemented_stop_startup() {
    let base = "model_list: []\ntianji_settings:\n";
    for (list, name) in [
        ("  callbacks: [langfuse, sentry]\n", "sentry"),
        ("  success_callback: [lunary]\n", "lunary"),
        ("  failure_callback: [nonsense_logger]\n", "nonsense_logger"),
    ] {
        let e = tianji::Loaded::from_yaml(&format!("{base}{list}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(name), "{e}");
    }
    let ok = format!(
        "{base}  callbacks: [sentry, prometheus, otel, generic_api, datadog]\n  ignore_unknown_callbacks: true\n"
    );
    assert!(tianji::Loaded::from_yaml(&ok).is_ok());
}

#[tokio::test]
async fn team_callback_routes_add_show_and_disable() {
    let db = TestDb::create().await;
    let up = upstream().await;
    let (global, team_sink) = (receiver(ok_reply).await, receiver(ok_reply).await);
    let gw = gateway(
        &db,
        &up,
        "  success_callback: [generic_api]",
        &format!(
            "  GENERIC_LOGGER_ENDPOINT: \"http://{}/global\"",
            global.addr
        ),
    )
    .await;
    let r = call(
        &gw,
        Method::POST,
        "/team/new",
        MASTER_KEY,
        json!({"team_id": "t-cb", "members_with_roles": [{"role": "admin", "user_id": "boss"}, {"role": "user", "user_id": "worker"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let boss = new_key(&gw, json!({"user_id": "boss"})).await;
    let worker = new_key(&gw, json!({"user_id": "worker", "team_id": "t-cb"})).await;
    let endpoint = format!("http://{}/team", team_sink.addr);
    let body = json!({
        "callback_name": "generic_api",
        "callback_type": "success",
        "callback_vars": {"generic_logger_endpoint": endpoint, "generic_logger_headers": "X-Team-Token=team-secret-123"},
    });
    // a plain member may not add one; bad input is a 400
    let r = call(
        &gw,
        Method::POST,
        "/team/t-cb/callback",
        &worker,
        body.clone(),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = call(
        &gw,
        Method::POST,
        "/team/t-cb/callback",
        &boss,
        json!({"callback_name": "sentry"}),
    )
    .await;
    r.assert_error(400);
    let r = call(&gw, Method::POST, "/team/t-cb/callback", &boss, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"]["success_callbacks"],
        json!(["generic_api"])
    );
    // the team admin sees the settings masked; the proxy admin sees them
    let r = call(&gw, Method::GET, "/team/t-cb/callback", &boss, Value::Null).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains("team-secret-123"), "{}", r.text());
    assert_eq!(
        r.json()["data"]["callback_vars"]["generic_logger_headers"],
        "****-123"
    );
    let r = call(
        &gw,
        Method::GET,
        "/team/t-cb/callback",
        MASTER_KEY,
        Value::Null,
    )
    .await;
    assert_eq!(
        r.json()["data"]["callback_vars"]["generic_logger_endpoint"],
        endpoint.as_str()
    );
    let r = call(
        &gw,
        Method::GET,
        "/team/t-cb/callback",
        &worker,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // the team's requests reach its sink (with its header) and the global one
    assert_eq!(chat(&gw, &worker, "team call").await.status, 200);
    assert!(
        eventually(WAIT, || events(&team_sink).len() == 1
            && events(&global).len() == 1)
        .await
    );
    assert_eq!(
        team_sink.requests()[0].headers["x-team-token"],
        "team-secret-123"
    );
    // disabled: no sink gets the team's requests, other requests still go to the global sink
    let r = call(
        &gw,
        Method::POST,
        "/team/t-cb/disable_logging",
        &boss,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(chat(&gw, &worker, "quiet").await.status, 200);
    assert_eq!(chat(&gw, MASTER_KEY, "loud").await.status, 200);
    assert!(eventually(WAIT, || events(&global).len() == 2).await);
    let evs = events(&global);
    assert!(
        evs.iter().all(|e| e["messages"][0]["content"] != "quiet"),
        "{evs:?}"
    );
    assert_eq!(events(&team_sink).len(), 1);
}

#[tokio::test]
async fn shutdown_sends_what_sinks_still_hold() {
    let db = TestDb::create().await;
    let up = upstream().await;
    let slow = receiver(|| Reply::Delay(Duration::from_millis(300), Box::new(ok_reply()))).await;
    let gw = gateway(
        &db,
        &up,
        "  callbacks: [generic_api]",
        &format!("  GENERIC_LOGGER_ENDPOINT: \"http://{}/log\"", slow.addr),
    )
    .await;
    let calls = (0..20).map(|i| {
        let gw = &gw;
        async move { chat(gw, MASTER_KEY, &format!("n{i}")).await.status }
    });
    let statuses = futures_util::future::join_all(calls).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let TestGateway { gw } = gw;
    gw.shutdown().await;
    assert_eq!(events(&slow).len(), 20);
}
