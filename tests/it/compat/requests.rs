//! Drop-in compatibility: requests (see mod.rs): team `model_aliases` and key `aliases` map the
//! model before access checks (item 9); several comma-separated models in one request, each
//! checked and accounted, or the fastest (item 10); LiteLLM's per-request retry, timeout and
//! testing controls and their `x-tianji-*` headers (item 12).

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply, default_reply};
use crate::common::{MASTER_KEY, Resp, TestGateway, eventually_async, send};
use crate::it::admin_keys::call;

/// The provider: upstream model `slow` answers after 3 s, `down` fails with a 503 (and
/// `Retry-After: 0`), any other at once.
async fn upstream() -> MockUpstream {
    MockUpstream::with(Arc::new(|r: &Recorded| {
        match r.json()["model"].as_str().unwrap_or_default() {
            "slow" => Reply::Delay(Duration::from_secs(3), Box::new(default_reply(r))),
            "down" => Reply::Json {
                status: 503,
                body: json!({"error": {"message": "overloaded", "type": "server_error"}})
                    .to_string(),
                headers: vec![("retry-after", "0".into())],
            },
            _ => default_reply(r),
        }
    }))
    .await
}

/// Model groups `m` (upstream model `x`), `m2` (`y`), `slow`, `down`, and `quick` (`x`, with a
/// 1 s timeout); a database when `db`; `extra` goes on under `general_settings`.
async fn gateway(up: &MockUpstream, db: Option<&TestDb>, extra: &str) -> TestGateway {
    let dep = |name: &str, model: &str, more: &str| {
        format!(
            "  - model_name: {name}\n    tianji_params: {{model: openai/{model}, api_base: \"{}\", api_key: sk-up{more}}}\n",
            up.base()
        )
    };
    let database = db.map_or(String::new(), |d| {
        format!("  database_url: \"{}\"\n", d.url)
    });
    let yaml = format!(
        "model_list:\n{}{}{}{}{}general_settings:\n  master_key: {MASTER_KEY}\n{database}{extra}",
        dep("m", "x", ""),
        dep("m2", "y", ""),
        dep("slow", "slow", ""),
        dep("down", "down", ""),
        dep("quick", "x", ", timeout: 1"),
    );
    TestGateway::start(&yaml).await
}

/// The testing members allowed, `num_retries: 3`, and these fallbacks.
const TESTING: &str = "  dangerously_allow_mock_testing_request_params: true\nrouter_settings:\n  num_retries: 3\n  fallbacks: [{m: [m2]}]\n  context_window_fallbacks: [{m: [quick]}]\n";

async fn post(gw: &TestGateway, key: &str, path: &str, body: Value) -> Resp {
    call(gw, Method::POST, path, key, body).await
}

/// A chat request for `model`, with `extra` members.
async fn chat(gw: &TestGateway, key: &str, model: &str, extra: Value) -> Resp {
    let mut body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    post(gw, key, "/v1/chat/completions", body).await
}

async fn new_key(gw: &TestGateway, body: Value) -> String {
    let r = post(gw, MASTER_KEY, "/key/generate", body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["key"].as_str().unwrap().to_string()
}

async fn new_team(gw: &TestGateway, body: Value) -> String {
    let r = post(gw, MASTER_KEY, "/team/new", body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["team_id"].as_str().unwrap().to_string()
}

/// The answer's model (the upstream model the mock echoes), asserting a 200.
fn answered_by(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["model"].as_str().unwrap_or_default().to_string()
}

fn header(r: &Resp, name: &str) -> String {
    r.header(name).unwrap_or_default().to_string()
}

/// `r`'s retry headers: attempted retries, max retries, attempted fallbacks.
fn tries(r: &Resp) -> [String; 3] {
    [
        "x-tianji-attempted-retries",
        "x-tianji-max-retries",
        "x-tianji-attempted-fallbacks",
    ]
    .map(|h| header(r, h))
}

/// A chat request for `model` by the admin with the testing member `member` set.
async fn testing(gw: &TestGateway, model: &str, member: &str) -> Resp {
    let mut extra = serde_json::Map::new();
    extra.insert(member.to_string(), Value::Bool(true));
    chat(gw, MASTER_KEY, model, Value::Object(extra)).await
}

#[tokio::test]
async fn team_model_aliases_and_key_aliases_map_the_model_before_access_checks() {
    let (db, up) = (TestDb::create().await, upstream().await);
    let gw = gateway(&up, Some(&db), "").await;
    // LiteLLM's test_team_alias: the alias resolves, the key's models are checked on the model
    let team = new_team(
        &gw,
        json!({"model_aliases": {"cheap-model": "m", "big": "m2"}}),
    )
    .await;
    let k1 = new_key(&gw, json!({"team_id": team, "models": ["m"]})).await;
    assert_eq!(
        answered_by(&chat(&gw, &k1, "cheap-model", json!({})).await),
        "x"
    );
    // an alias reaches no model the key may not call
    for model in ["big", "m2"] {
        chat(&gw, &k1, model, json!({})).await.assert_error(403);
    }
    // team-based routing: the team's list names what its users ask for
    let t2 = json!({"model_aliases": {"gpt-3.5-turbo": "m2"}, "models": ["gpt-3.5-turbo"]});
    let team2 = new_team(&gw, t2).await;
    let k2 = new_key(&gw, json!({"team_id": team2})).await;
    assert_eq!(
        answered_by(&chat(&gw, &k2, "gpt-3.5-turbo", json!({})).await),
        "y"
    );
    chat(&gw, &k2, "m2", json!({})).await.assert_error(403);
    // a key's own aliases
    let k3 = new_key(&gw, json!({"aliases": {"fast": "m2"}})).await;
    assert_eq!(answered_by(&chat(&gw, &k3, "fast", json!({})).await), "y");
    // ... never widen its models
    let k4 = new_key(
        &gw,
        json!({"aliases": {"fast": "m2", "m": "m2"}, "models": ["m"]}),
    )
    .await;
    for model in ["fast", "m"] {
        chat(&gw, &k4, model, json!({})).await.assert_error(403);
    }
    // a changed alias applies to the next request (the cached team is dropped)
    let update = json!({"team_id": team2, "model_aliases": {"gpt-3.5-turbo": "m"}});
    let r = post(&gw, MASTER_KEY, "/team/update", update).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let moved = eventually_async(Duration::from_secs(5), || async {
        chat(&gw, &k2, "gpt-3.5-turbo", json!({})).await.json()["model"] == "x"
    })
    .await;
    assert!(moved, "the team's new alias was not used");
    // the spend is the model group's
    let rows = eventually_async(Duration::from_secs(10), || async {
        let sql =
            "SELECT count(*) FROM \"TianjiLLM_SpendLogs\" WHERE model_group = 'm' AND api_key = $1";
        let n: i64 = (db
            .client()
            .await
            .query_one(sql, &[&tianji::auth::token_hex(&k1)]))
        .await
        .unwrap()
        .get(0);
        n == 1
    })
    .await;
    assert!(rows, "no SpendLogs row for model group m");
    gw.gw.shutdown().await;
}

/// The model groups of `key`'s SpendLogs rows.
async fn logged_groups(db: &TestDb, key: &str) -> Vec<String> {
    let sql =
        "SELECT model_group FROM \"TianjiLLM_SpendLogs\" WHERE api_key = $1 ORDER BY model_group";
    let rows = db
        .client()
        .await
        .query(sql, &[&tianji::auth::token_hex(key)])
        .await;
    rows.unwrap().iter().map(|r| r.get(0)).collect()
}

#[tokio::test]
async fn comma_separated_models_answer_a_list_each_checked_and_accounted() {
    let (db, up) = (TestDb::create().await, upstream().await);
    let gw = gateway(&up, Some(&db), "").await;
    let key = new_key(&gw, json!({"models": ["m", "m2"]})).await;
    let r = chat(&gw, &key, "m, m2", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let list = r.json();
    assert_eq!(list[0]["model"], "x", "{list}");
    assert_eq!(list[1]["model"], "y", "{list}");
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    let mut sent: Vec<String> = (up.requests().iter())
        .map(|q| q.json()["model"].as_str().unwrap().to_string())
        .collect();
    sent.sort();
    assert_eq!(sent, ["x", "y"]);
    // each is a request of its own: its own SpendLogs row
    let logged = eventually_async(Duration::from_secs(10), || async {
        logged_groups(&db, &key).await == ["m", "m2"]
    })
    .await;
    assert!(logged, "{:?}", logged_groups(&db, &key).await);

    // every model is checked before any is called
    let only_m = new_key(&gw, json!({"models": ["m"]})).await;
    chat(&gw, &only_m, "m,m2", json!({}))
        .await
        .assert_error(403);
    assert_eq!(up.requests().len(), 2);
    // each is rate-limited as any request
    let one_a_minute = new_key(&gw, json!({"rpm_limit": 1})).await;
    let r = chat(&gw, &one_a_minute, "m,m2", json!({})).await;
    let list = r.json();
    let limited = (list.as_array().unwrap().iter())
        .filter(|a| a["error"]["code"] == "429")
        .count();
    assert_eq!((r.status.as_u16(), limited), (200, 1), "{list}");
    // one failing: its place holds its error; all failing: the error alone
    let list = chat(&gw, MASTER_KEY, "m,down", json!({})).await.json();
    assert_eq!(
        (&list[0]["model"], &list[1]["error"]["code"]),
        (&json!("x"), &json!("503"))
    );
    chat(&gw, MASTER_KEY, "down,down", json!({}))
        .await
        .assert_error(503);
    // bad asks
    for extra in [json!({"stream": true}), json!({})] {
        let model = if extra.get("stream").is_some() {
            "m,m2"
        } else {
            "m,,m2"
        };
        chat(&gw, MASTER_KEY, model, extra).await.assert_error(400);
    }
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn fastest_response_answers_with_the_first_model_to_answer() {
    let up = upstream().await;
    let gw = gateway(&up, None, "").await;
    let fastest = json!({"fastest_response": true});
    let r = chat(&gw, MASTER_KEY, "slow,m", fastest.clone()).await;
    assert_eq!(answered_by(&r), "x");
    assert_eq!(
        header(&r, "x-tianji-fastest_response_batch_completion"),
        "True"
    );
    // a stream too: the first stream to start
    let r = chat(
        &gw,
        MASTER_KEY,
        "slow,m",
        json!({"fastest_response": true, "stream": true}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("data: [DONE]"), "{}", r.text());
    // none answers: a failure
    chat(&gw, MASTER_KEY, "down,down", fastest)
        .await
        .assert_error(503);
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn testing_members_need_the_admins_opt_in_and_no_control_goes_upstream() {
    let up = upstream().await;
    let gw = gateway(&up, None, "").await;
    for flag in [true, false] {
        let e = chat(
            &gw,
            MASTER_KEY,
            "m",
            json!({"mock_testing_fallbacks": flag}),
        )
        .await;
        let e = e.assert_error(400);
        let message = e["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("dangerously_allow_mock_testing_request_params"),
            "{e}"
        );
    }
    for bad in [json!({"num_retries": -1}), json!({"timeout": "soon"})] {
        chat(&gw, MASTER_KEY, "m", bad).await.assert_error(400);
    }
    assert!(up.requests().is_empty());
    let controls = json!({"num_retries": 1, "timeout": 30});
    let r = chat(&gw, MASTER_KEY, "m", controls).await;
    assert_eq!(answered_by(&r), "x");
    let sent = up.last().json();
    assert_eq!(
        sent,
        json!({"model": "x", "messages": [{"role": "user", "content": "hi"}]})
    );
    gw.gw.shutdown().await;
}

#[tokio::test]
async fn per_request_retries_timeouts_and_made_up_failures_with_their_headers() {
    let up = upstream().await;
    let gw = gateway(&up, None, TESTING).await;
    // LiteLLM's test_chat_completion_with_retries: a made-up 429, retried once
    let r = testing(&gw, "m", "mock_testing_rate_limit_error").await;
    assert_eq!(answered_by(&r), "x");
    assert_eq!(tries(&r), ["1", "3", "0"]);
    assert_eq!(
        up.requests().len(),
        1,
        "the made-up 429 called the provider"
    );
    assert!(!up.last().text().contains("mock_testing"));
    // the request's own num_retries
    let r = chat(&gw, MASTER_KEY, "down", json!({"num_retries": 2})).await;
    r.assert_error(503);
    assert_eq!(tries(&r), ["2", "2", "0"]);
    assert_eq!(up.requests().len(), 4);
    let r = chat(&gw, MASTER_KEY, "down", json!({"num_retries": 0})).await;
    assert_eq!((r.status.as_u16(), up.requests().len()), (503, 5));
    assert_eq!(tries(&r), ["0", "0", "0"]);
    // the timeout in effect: the deployment's, else the default
    let r = chat(&gw, MASTER_KEY, "quick", json!({})).await;
    assert_eq!(header(&r, "x-tianji-timeout"), "1.0");
    let r = chat(&gw, MASTER_KEY, "m", json!({})).await;
    assert_eq!(header(&r, "x-tianji-timeout"), "600.0");
    // the request's own timeout
    let short = json!({"timeout": 0.2, "num_retries": 0});
    let r = chat(&gw, MASTER_KEY, "slow", short).await;
    r.assert_error(408);
    assert_eq!(header(&r, "x-tianji-timeout"), "0.2");
    // LiteLLM's test_chat_completion_with_timeout(_from_request): a made-up timeout
    let calls = up.requests().len();
    let timeout = json!({"mock_timeout": true, "num_retries": 0});
    let r = chat(&gw, MASTER_KEY, "quick", timeout.clone()).await;
    r.assert_error(408);
    assert_eq!(header(&r, "x-tianji-timeout"), "1.0");
    let h = [
        ("authorization", format!("Bearer {MASTER_KEY}")),
        ("x-litellm-timeout", "0.001".to_string()),
    ];
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let body = json!({"model": "quick", "messages": [], "mock_timeout": true, "num_retries": 0});
    let r = send(
        Method::POST,
        &gw.url("/v1/chat/completions"),
        &h,
        body.to_string().into(),
    )
    .await;
    r.assert_error(408);
    assert_eq!(header(&r, "x-tianji-timeout"), "0.001");
    assert_eq!(
        up.requests().len(),
        calls,
        "a made-up timeout called the provider"
    );
    // made-up fallbacks: straight to the fallbacks; none: the made-up error
    let e = testing(&gw, "m2", "mock_testing_fallbacks").await;
    let e = e.assert_error(500);
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("This is a mock exception for model=m2, to trigger a fallback."),
        "{e}"
    );
    let r = testing(&gw, "m", "mock_testing_fallbacks").await;
    assert_eq!(answered_by(&r), "y");
    assert_eq!(tries(&r), ["0", "3", "1"]);
    let r = testing(&gw, "m", "mock_testing_context_fallbacks").await;
    assert_eq!(answered_by(&r), "x");
    assert_eq!(up.requests().len(), calls + 2);
    gw.gw.shutdown().await;
}
