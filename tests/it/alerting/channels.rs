//! Alerts to Slack: budget crossed and LLM exceptions (provider key and raw key never in them),
//! slow and hanging requests, the daily report, the test alert; one delivery per window per
//! subject across two instances sharing Redis; a hung Slack never holds a request.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use super::{PROVIDER_KEY, WAIT, admin, assert_no_secrets, gateway, ok_reply, receiver, texts};
use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply, default_reply};
use crate::common::redis::TempRedis;
use crate::common::{MASTER_KEY, Resp, TestGateway, eventually};
use crate::it::admin_keys::call;

/// The model answers; a 500 naming the provider key when the prompt says "fail"; a late answer
/// when it says "slow".
async fn upstream() -> MockUpstream {
    MockUpstream::with(Arc::new(|r: &Recorded| {
        let body = String::from_utf8_lossy(&r.body);
        if body.contains("\"fail\"") {
            Reply::status(
                500,
                json!({"error": {"message": format!("upstream broke; Incorrect API key provided: {PROVIDER_KEY}"), "type": "server_error"}}),
            )
        } else if body.contains("\"slow\"") {
            Reply::Delay(Duration::from_millis(1500), Box::new(default_reply(r)))
        } else {
            default_reply(r)
        }
    }))
    .await
}

async fn chat(gw: &TestGateway, key: &str, model: &str, content: &str) -> Resp {
    let body = json!({"model": model, "messages": [{"role": "user", "content": content}]});
    call(gw, Method::POST, "/v1/chat/completions", key, body).await
}

async fn new_key(gw: &TestGateway, body: Value) -> String {
    let r = admin(gw, Method::POST, "/key/generate", body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["key"].as_str().unwrap().to_string()
}

fn slack_env(slack: &MockUpstream) -> String {
    format!("  SLACK_WEBHOOK_URL: \"http://{}/slack\"", slack.addr)
}

fn has(slack: &MockUpstream, needle: &str) -> bool {
    texts(slack).iter().any(|t| t.contains(needle))
}

#[tokio::test]
async fn slack_gets_budget_crossed_and_llm_exception_alerts() {
    let db = TestDb::create().await;
    let up = upstream().await;
    let slack = receiver(ok_reply).await;
    let gw = gateway(
        &db,
        &up,
        "  alerting: [slack]\n  alert_types: [budget_alerts, llm_exceptions]",
        &slack_env(&slack),
    )
    .await;
    let key = new_key(&gw, json!({"key_alias": "tight", "max_budget": 0.00001})).await;
    assert_eq!(chat(&gw, &key, "gpt", "hello").await.status, 200);
    // the first answer spent the budget: refused, and the budget alert goes out
    let r = chat(&gw, &key, "gpt", "hello again").await;
    assert!(r.status.as_u16() >= 400, "{}", r.text());
    assert!(
        eventually(WAIT, || has(&slack, "Budget Crossed: Key tight")).await,
        "{:?}",
        texts(&slack)
    );
    let other = new_key(&gw, json!({"key_alias": "roomy"})).await;
    assert_eq!(chat(&gw, &other, "gpt", "fail").await.status, 500);
    assert!(
        eventually(WAIT, || has(&slack, "LLM API call failed")).await,
        "{:?}",
        texts(&slack)
    );
    let t = texts(&slack);
    let failed = t
        .iter()
        .find(|t| t.contains("LLM API call failed"))
        .unwrap();
    assert!(
        failed.contains("Model: `gpt`") && failed.contains("upstream broke"),
        "{failed}"
    );
    assert!(failed.starts_with("Level: `High`"), "{failed}");
    assert_no_secrets(&slack, &[PROVIDER_KEY, &key, &other, MASTER_KEY]);
}

#[tokio::test]
async fn two_instances_sharing_redis_deliver_one_alert_per_subject() {
    let db = TestDb::create().await;
    let redis = TempRedis::start().await;
    let up = upstream().await;
    let slack = receiver(ok_reply).await;
    let general = format!(
        "  alerting: [slack]\n  alert_types: [llm_exceptions]\n  alerting_args: {{alert_ttl: 600}}\nrouter_settings:\n  redis_url: \"{}\"",
        redis.url()
    );
    let a = gateway(&db, &up, &general, &slack_env(&slack)).await;
    let b = gateway(&db, &up, &general, &slack_env(&slack)).await;
    // the same alert (gpt failing) on both instances
    assert_eq!(chat(&a, MASTER_KEY, "gpt", "fail").await.status, 500);
    assert_eq!(chat(&b, MASTER_KEY, "gpt", "fail").await.status, 500);
    assert_eq!(chat(&a, MASTER_KEY, "gpt", "fail").await.status, 500);
    // barriers: each instance delivers in order, so once its own later alert arrived, its gpt
    // alert was handled (sent or deduplicated)
    assert_eq!(chat(&a, MASTER_KEY, "gpt2", "fail").await.status, 500);
    assert_eq!(chat(&b, MASTER_KEY, "gpt3", "fail").await.status, 500);
    assert!(
        eventually(WAIT, || has(&slack, "Model: `gpt2`")
            && has(&slack, "Model: `gpt3`"))
        .await,
        "{:?}",
        texts(&slack)
    );
    let n = texts(&slack)
        .iter()
        .filter(|t| t.contains("Model: `gpt`"))
        .count();
    assert_eq!(n, 1, "{:?}", texts(&slack));
}

#[tokio::test]
async fn a_hung_slack_never_holds_a_request() {
    let db = TestDb::create().await;
    let up = upstream().await;
    let slack = receiver(|| Reply::Hang).await;
    let gw = gateway(
        &db,
        &up,
        "  alerting: [slack]\n  alert_types: [llm_exceptions, llm_too_slow, budget_alerts]\n  alerting_args: {alert_ttl: 0}",
        &slack_env(&slack),
    )
    .await;
    for i in 0..40 {
        let content = if i % 2 == 0 { "fail" } else { "hi" };
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            chat(&gw, MASTER_KEY, "gpt", content),
        )
        .await
        .expect("a request waited on the hung Slack receiver");
        assert_eq!(r.status, if i % 2 == 0 { 500 } else { 200 }, "{}", r.text());
    }
    assert!(eventually(WAIT, || !slack.requests().is_empty()).await);
}

#[tokio::test]
async fn slow_and_hanging_requests_alert() {
    let db = TestDb::create().await;
    let up = upstream().await;
    let slack = receiver(ok_reply).await;
    let gw = gateway(
        &db,
        &up,
        "  alerting: [slack]\n  alerting_threshold: 0.5\n  alert_types: [llm_too_slow, llm_requests_hanging]",
        &slack_env(&slack),
    )
    .await;
    let key = new_key(&gw, json!({"key_alias": "patient"})).await;
    assert_eq!(chat(&gw, &key, "gpt", "slow").await.status, 200);
    assert!(
        eventually(WAIT, || has(&slack, "Requests are hanging")
            && has(&slack, "Responses are slow"))
        .await,
        "{:?}",
        texts(&slack)
    );
    let t = texts(&slack);
    let hanging = t.iter().find(|t| t.contains("hanging")).unwrap();
    assert!(
        hanging.contains("Model: `gpt`") && hanging.contains("`patient`"),
        "{hanging}"
    );
    // a fast request alerts nothing more
    let before = texts(&slack).len();
    assert_eq!(chat(&gw, &key, "gpt2", "quick").await.status, 200);
    assert_eq!(chat(&gw, &key, "gpt2", "slow").await.status, 200);
    assert!(eventually(WAIT, || has(&slack, "Model: `gpt2`")).await);
    assert!(texts(&slack).len() <= before + 2, "{:?}", texts(&slack));
    assert_no_secrets(&slack, &[PROVIDER_KEY, &key]);
}

#[tokio::test]
async fn daily_report_and_test_alert_reach_slack() {
    let db = TestDb::create().await;
    let up = upstream().await;
    let slack = receiver(ok_reply).await;
    let gw = gateway(
        &db,
        &up,
        "  alerting: [slack]\n  alert_types: [daily_reports]\n  alerting_args: {report_check_interval: 0.2, daily_report_frequency: 3600}",
        &slack_env(&slack),
    )
    .await;
    assert!(
        eventually(WAIT, || has(&slack, "Daily report")).await,
        "{:?}",
        texts(&slack)
    );
    let report = texts(&slack)
        .into_iter()
        .find(|t| t.contains("Daily report"))
        .unwrap();
    assert!(
        report.contains("Top keys by spend") && report.contains("Spend: $"),
        "{report}"
    );

    let r = admin(
        &gw,
        Method::GET,
        "/health/services?service=slack",
        Value::Null,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        eventually(WAIT, || has(&slack, "test alert")).await,
        "{:?}",
        texts(&slack)
    );
    let r = admin(
        &gw,
        Method::GET,
        "/health/services?service=pagerduty",
        Value::Null,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let key = new_key(&gw, json!({})).await;
    let r = call(
        &gw,
        Method::GET,
        "/health/services?service=slack",
        &key,
        Value::Null,
    )
    .await;
    assert!(matches!(r.status.as_u16(), 401 | 403), "{}", r.text());
    // the report went out once (one per daily_report_frequency)
    let n = texts(&slack)
        .iter()
        .filter(|t| t.contains("Daily report"))
        .count();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn soft_budget_and_cooldown_alerts() {
    let db = TestDb::create().await;
    let up = upstream().await;
    let limited = receiver(|| {
        Reply::status(
            429,
            json!({"error": {"message": "rate limited", "type": "rate_limit_error"}}),
        )
    })
    .await;
    let slack = receiver(ok_reply).await;
    let yaml = format!(
        "model_list:\n  - model_name: pair\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{ok}\", api_key: {PROVIDER_KEY}}}\n  - model_name: pair\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{bad}\", api_key: {PROVIDER_KEY}}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n  alerting: [slack]\n  alert_types: [budget_alerts, cooldown_deployment]\nrouter_settings:\n  num_retries: 2\nenvironment_variables:\n{env}\n",
        ok = up.base(),
        bad = limited.base(),
        u = db.url,
        env = slack_env(&slack)
    );
    let gw = TestGateway::start(&yaml).await;
    let key = new_key(
        &gw,
        json!({"key_alias": "soft", "max_budget": 100.0, "soft_budget": 0.00001}),
    )
    .await;
    let mut answered = 0;
    for _ in 0..12 {
        if chat(&gw, &key, "pair", "hello").await.status == 200 {
            answered += 1;
        }
        if has(&slack, "Deployment cooled down") && has(&slack, "Soft Budget Crossed") {
            break;
        }
    }
    assert!(answered > 0);
    assert!(
        eventually(WAIT, || has(&slack, "Deployment cooled down")
            && has(&slack, "Soft Budget Crossed: Key soft"))
        .await,
        "{:?}",
        texts(&slack)
    );
    let cooled = texts(&slack)
        .into_iter()
        .find(|t| t.contains("cooled down"))
        .unwrap();
    assert!(cooled.contains("model group `pair`"), "{cooled}");
    assert_no_secrets(&slack, &[PROVIDER_KEY, &key]);
}

#[tokio::test]
async fn end_user_budgets_alert_and_key_users_get_budget_mail() {
    let smtp = super::SmtpSink::start();
    let db = TestDb::create().await;
    let up = upstream().await;
    let hook = receiver(ok_reply).await;
    let gw = gateway(
        &db,
        &up,
        "  alerting: [webhook, email]\n  alert_types: [budget_alerts]",
        &format!(
            "  WEBHOOK_URL: \"http://{}/hook\"\n{}",
            hook.addr,
            smtp.env("smtp-secret-pw")
        ),
    )
    .await;
    // an end user with a tiny budget
    let r = admin(
        &gw,
        Method::POST,
        "/end_user/new",
        json!({"user_id": "cust-1", "max_budget": 0.00001}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body =
        json!({"model": "gpt", "user": "cust-1", "messages": [{"role": "user", "content": "hi"}]});
    let r = call(
        &gw,
        Method::POST,
        "/v1/chat/completions",
        MASTER_KEY,
        body.clone(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(&gw, Method::POST, "/v1/chat/completions", MASTER_KEY, body).await;
    assert!(r.status.as_u16() >= 400, "{}", r.text());
    let crossed = |group: &str| {
        super::bodies(&hook)
            .into_iter()
            .find(|b| b["event"] == "budget_crossed" && b["event_group"] == group)
    };
    assert!(
        eventually(WAIT, || crossed("customer").is_some()).await,
        "{:?}",
        super::bodies(&hook)
    );
    let e = crossed("customer").unwrap();
    assert_eq!(e["customer_id"], "cust-1", "{e}");
    assert_eq!(e["max_budget"].as_f64(), Some(0.00001), "{e}");
    assert!(e["spend"].as_f64().unwrap() > 0.0, "{e}");

    // a key of a user with an e-mail address: the budget mail goes to the user
    let r = admin(
        &gw,
        Method::POST,
        "/user/new",
        json!({"user_id": "u-budget", "user_email": "budget.owner@example.com", "auto_create_key": false}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let key = new_key(
        &gw,
        json!({"user_id": "u-budget", "key_alias": "mailed", "max_budget": 0.00001}),
    )
    .await;
    assert_eq!(chat(&gw, &key, "gpt", "hi").await.status, 200);
    assert!(chat(&gw, &key, "gpt", "hi").await.status.as_u16() >= 400);
    assert!(
        eventually(WAIT, || !smtp.messages().is_empty()
            && crossed("key").is_some())
        .await
    );
    let m = &smtp.messages()[0];
    assert_eq!(m["rcpt_tos"], json!(["budget.owner@example.com"]), "{m}");
    assert_eq!(m["subject"], "Tianji: Budget Crossed", "{m}");
    assert!(m["body"].as_str().unwrap().contains("Key mailed"), "{m}");
    let k = crossed("key").unwrap();
    assert_eq!(k["key_alias"], "mailed", "{k}");
    assert_eq!(k["user_email"], "budget.owner@example.com", "{k}");
    assert!(k["token"].is_null(), "{k}");
    for part in ["data", "body"] {
        let text = m[part].as_str().unwrap();
        assert!(
            !text.contains(&key) && !text.contains("smtp-secret-pw"),
            "{text}"
        );
    }
    assert_no_secrets(&hook, &[&key, PROVIDER_KEY]);
}

#[tokio::test]
async fn fallback_and_new_model_alerts() {
    let db = TestDb::create().await;
    let up = upstream().await;
    let broken = receiver(|| {
        Reply::status(
            503,
            json!({"error": {"message": "overloaded", "type": "server_error"}}),
        )
    })
    .await;
    let slack = receiver(ok_reply).await;
    let yaml = format!(
        "model_list:\n  - model_name: flaky\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{bad}\", api_key: {PROVIDER_KEY}}}\n  - model_name: steady\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{ok}\", api_key: {PROVIDER_KEY}}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n  alerting: [slack]\n  alert_types: [fallback_reports, new_model_added]\nrouter_settings:\n  num_retries: 0\n  fallbacks: [{{flaky: [steady]}}]\nenvironment_variables:\n{env}\n",
        ok = up.base(),
        bad = broken.base(),
        u = db.url,
        env = slack_env(&slack)
    );
    let gw = TestGateway::start(&yaml).await;
    assert_eq!(chat(&gw, MASTER_KEY, "flaky", "hello").await.status, 200);
    assert!(
        eventually(WAIT, || has(
            &slack,
            "Fallback used: model group `flaky` -> `steady`"
        ))
        .await,
        "{:?}",
        texts(&slack)
    );
    let body = json!({"model_name": "added", "litellm_params": {"model": "openai/z", "api_base": up.base(), "api_key": "sk-added-model-secret"}});
    let r = admin(&gw, Method::POST, "/model/new", body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        eventually(WAIT, || has(&slack, "`new_model_added` added")).await,
        "{:?}",
        texts(&slack)
    );
    assert_no_secrets(&slack, &[PROVIDER_KEY, "sk-added-model-secret"]);
}

#[tokio::test]
async fn deployment_and_region_outages_alert() {
    let db = TestDb::create().await;
    let broken = receiver(|| {
        Reply::status(
            503,
            json!({"error": {"message": "overloaded", "type": "server_error"}}),
        )
    })
    .await;
    let slack = receiver(ok_reply).await;
    let dep = |id: &str| {
        format!(
            "  - model_name: eu-group\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{}/{id}\", api_key: {PROVIDER_KEY}, region_name: eu}}\n    model_info: {{id: {id}}}\n",
            broken.base()
        )
    };
    let yaml = format!(
        "model_list:\n{}{}general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n  alerting: [slack]\n  alert_types: [outage_alerts, region_outage_alerts]\n  alerting_args: {{minor_outage_alert_threshold: 2, major_outage_alert_threshold: 3, outage_alert_ttl: 600, region_outage_alert_ttl: 600}}\nrouter_settings:\n  num_retries: 0\n  allowed_fails: 1000\nenvironment_variables:\n{env}\n",
        dep("eu-one"),
        dep("eu-two"),
        u = db.url,
        env = slack_env(&slack)
    );
    let gw = TestGateway::start(&yaml).await;
    for _ in 0..30 {
        assert!(
            chat(&gw, MASTER_KEY, "eu-group", "hello")
                .await
                .status
                .as_u16()
                >= 500
        );
        if has(&slack, "in region `eu`") && has(&slack, "in deployment `") {
            break;
        }
    }
    assert!(
        eventually(WAIT, || has(&slack, "Minor Service Outage")
            && has(&slack, "in region `eu`")
            && has(&slack, "in deployment `eu-"))
        .await,
        "{:?}",
        texts(&slack)
    );
    assert_no_secrets(&slack, &[PROVIDER_KEY]);
}

#[tokio::test]
async fn spend_reports_show_spend_per_team_and_tag() {
    let db = TestDb::create().await;
    let up = upstream().await;
    // traffic first, through a gateway without alerts
    let quiet = gateway(&db, &up, "", "").await;
    let r = admin(
        &quiet,
        Method::POST,
        "/team/new",
        json!({"team_alias": "finance"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let team_id = r.json()["team_id"].as_str().unwrap().to_string();
    let key = new_key(&quiet, json!({"team_id": team_id})).await;
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "metadata": {"tags": ["proj-x"]}});
    let r = call(&quiet, Method::POST, "/v1/chat/completions", &key, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let client = db.client().await;
    let stored = || async {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM \"TianjiLLM_SpendLogs\" WHERE spend > 0",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        n == 1
    };
    assert!(crate::common::eventually_async(WAIT, stored).await);
    // then a gateway with spend reports: its first check sends the weekly and monthly report
    let slack = receiver(ok_reply).await;
    let _gw = gateway(
        &db,
        &up,
        "  alerting: [slack]\n  alert_types: [spend_reports]\n  alerting_args: {report_check_interval: 0.2}",
        &slack_env(&slack),
    )
    .await;
    assert!(
        eventually(WAIT, || has(&slack, "Weekly spend report")
            && has(&slack, "Monthly spend report"))
        .await,
        "{:?}",
        texts(&slack)
    );
    let weekly = texts(&slack)
        .into_iter()
        .find(|t| t.contains("Weekly spend report"))
        .unwrap();
    assert!(
        weekly.contains("- finance: $") && weekly.contains("- proj-x: $"),
        "{weekly}"
    );
    assert_no_secrets(&slack, &[&key, PROVIDER_KEY]);
}
