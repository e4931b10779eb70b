//! What agent calls count and cost: the agent's rpm limit and per-session limits (429 as a
//! JSON-RPC error with the limiter's message and headers), the caller's budget, one SpendLogs
//! row per call (model-backed and remote) with model `a2a_agent/{name}` and the agent id,
//! `TianjiLLM_DailyAgentSpend`, and `/agent/daily/activity` with its filters and totals.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::model::{events, message, model_agent, model_gateway, rpc_as};
use super::*;
use crate::common::MASTER_KEY;
use crate::common::db::TestDb;
use crate::common::eventually_async;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};

#[tokio::test]
async fn agent_and_session_rate_limits() {
    let (_db, _up, gw) = model_gateway("").await;
    let id = model_agent(&gw, "limited", "gpt", json!({"rpm_limit": 2})).await;
    let user = key(&gw, json!({})).await;
    for _ in 0..2 {
        let r = rpc_as(&gw, &id, &user, message("message/send", "hi", None)).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = rpc_as(&gw, &id, &user, message("message/send", "hi", None)).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    let v = r.json();
    assert_eq!(
        (v["jsonrpc"].as_str(), v["id"].as_str()),
        (Some("2.0"), Some("r1"))
    );
    let m = v["error"]["message"].as_str().unwrap();
    assert!(
        m.starts_with(&format!(
            "Rate limit exceeded for agent: {id}. Limit type: requests"
        )),
        "{m}"
    );
    assert_eq!(v["error"]["data"]["type"], "throttling_error");

    // one request per session (contextId) and window; sessions are apart
    let s = model_agent(&gw, "sessions", "gpt", json!({"session_rpm_limit": 1})).await;
    let send = |ctx: &'static str| rpc_as(&gw, &s, &user, message("message/send", "hi", Some(ctx)));
    assert_eq!(send("a").await.status, 200);
    let r = send("a").await;
    assert_eq!(r.status, 429);
    let m = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(m.contains(&format!("agent_session: {s}:a")), "{m}");
    assert_eq!(send("b").await.status, 200);
    // streams count too
    let r = rpc_as(&gw, &s, &user, message("message/stream", "hi", Some("b"))).await;
    assert_eq!(r.status, 429);
}

#[tokio::test]
async fn the_callers_budget_applies() {
    let (_db, _up, gw) = model_gateway("").await;
    // every call costs 1 USD on top of its tokens
    let id = model_agent(
        &gw,
        "pricey",
        "gpt",
        json!({"litellm_params": {"model": "gpt", "cost_per_query": 1.0}}),
    )
    .await;
    let user = key(&gw, json!({"max_budget": 0.5})).await;
    let r = rpc_as(&gw, &id, &user, message("message/send", "hi", None)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = rpc_as(&gw, &id, &user, message("message/send", "hi", None)).await;
    assert!(r.status.is_client_error(), "{} {}", r.status, r.text());
    let m = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(m.contains("Budget has been exceeded"), "{m}");
    // chat on the same key is refused alike
    let chat = call(
        &gw,
        http::Method::POST,
        "/v1/chat/completions",
        &user,
        json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(chat.status, r.status);
}

/// SpendLogs rows of agent calls: (model, agent_id, call_type, status, tokens, spend).
async fn agent_rows(db: &TestDb) -> Vec<(String, String, String, String, i32, f64)> {
    let c = db.client().await;
    c.query(
        "SELECT model, agent_id, call_type, status, total_tokens, spend FROM \"TianjiLLM_SpendLogs\" WHERE agent_id IS NOT NULL ORDER BY \"startTime\"",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
    .collect()
}

fn remote_reply(r: &Recorded) -> Reply {
    let asked = r.json();
    Reply::status(
        200,
        json!({"jsonrpc": "2.0", "id": asked["id"], "result": {
        "kind": "message", "role": "agent", "messageId": "a1", "parts": [{"kind": "text", "text": "remote"}]}}),
    )
}

#[tokio::test]
async fn spend_rows_daily_table_and_activity() {
    let (db, _up, gw) = model_gateway("").await;
    let helper = model_agent(&gw, "helper", "gpt", json!({})).await;
    let remote_up = MockUpstream::with(Arc::new(remote_reply)).await;
    let url = format!("{}/agent", remote_up.base());
    let remote = create(
        &gw,
        "remote",
        json!({"agent_card_params": card("remote", &url),
               "litellm_params": {"api_key": AGENT_KEY, "cost_per_query": 0.5}}),
    )
    .await;
    let user = key(&gw, json!({})).await;
    let other = key(&gw, json!({})).await;

    ok(rpc_as(&gw, &helper, &user, message("message/send", "hi", None)).await);
    let r = rpc_as(&gw, &helper, &user, message("message/stream", "hi", None)).await;
    assert_eq!(events(&r).len(), 5);
    ok(rpc_as(&gw, &remote, &other, message("message/send", "hi", None)).await);

    assert!(
        eventually_async(Duration::from_secs(10), || async {
            agent_rows(&db).await.len() == 3
        })
        .await,
        "{:?}",
        agent_rows(&db).await
    );
    let rows = agent_rows(&db).await;
    for (model, agent, call_type, status, _, _) in &rows {
        assert_eq!(
            (call_type.as_str(), status.as_str()),
            ("asend_message", "success")
        );
        let want = if agent == &helper {
            "a2a_agent/helper"
        } else {
            "a2a_agent/remote"
        };
        assert_eq!(model, want);
    }
    let helper_rows: Vec<_> = rows.iter().filter(|r| r.1 == helper).collect();
    assert_eq!(helper_rows.len(), 2);
    assert_eq!(helper_rows[0].4, 12, "the model's tokens");
    assert!(helper_rows.iter().all(|r| r.4 > 0 && r.5 > 0.0), "{rows:?}");
    let remote_row = rows.iter().find(|r| r.1 == remote).unwrap();
    assert_eq!((remote_row.4, remote_row.5), (0, 0.5), "cost_per_query");

    // the daily table and the agents' spend
    let c = db.client().await;
    let daily: Vec<(String, i64, i64, String)> = c
        .query(
            "SELECT agent_id, api_requests, successful_requests, custom_llm_provider FROM \"TianjiLLM_DailyAgentSpend\" ORDER BY agent_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let reqs = |a: &str| daily.iter().filter(|d| d.0 == a).map(|d| d.1).sum::<i64>();
    assert_eq!((reqs(&helper), reqs(&remote)), (2, 1), "{daily:?}");
    assert!(daily.iter().all(|d| d.3 == "a2a_agent"));
    let spent: f64 = c
        .query_one(
            "SELECT spend FROM \"TianjiLLM_AgentsTable\" WHERE agent_id = $1",
            &[&remote],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(spent, 0.5);

    // /agent/daily/activity: totals, filters, and a non-admin sees its own key's calls
    let today = &tianji::util::clock::fmt_utc(tianji::util::clock::now_secs())[..10];
    let q =
        |extra: &str| format!("/agent/daily/activity?start_date={today}&end_date={today}{extra}");
    let v = ok(get(&gw, &q(""), MASTER_KEY).await);
    let m = &v["metadata"];
    assert_eq!(m["total_api_requests"], 3);
    assert_eq!(m["total_successful_requests"], 3);
    let total: f64 = rows.iter().map(|r| r.5).sum();
    assert!(
        (m["total_spend"].as_f64().unwrap() - total).abs() < 1e-9,
        "{m}"
    );
    assert_eq!(
        m["total_tokens"],
        rows.iter().map(|r| i64::from(r.4)).sum::<i64>()
    );
    assert_eq!(
        (m["page"].as_i64(), m["has_more"].as_bool()),
        (Some(1), Some(false))
    );
    let day = &v["results"][0];
    assert_eq!(day["date"], *today);
    assert_eq!(
        day["breakdown"]["entities"][&remote]["metrics"]["api_requests"],
        1
    );
    assert!(day["breakdown"]["models"]["a2a_agent/helper"].is_object());
    let only = ok(get(&gw, &q(&format!("&agent_ids={remote}")), MASTER_KEY).await);
    assert_eq!(only["metadata"]["total_api_requests"], 1);
    let without = ok(get(&gw, &q(&format!("&exclude_agent_ids={remote}")), MASTER_KEY).await);
    assert_eq!(without["metadata"]["total_api_requests"], 2);
    let model = ok(get(&gw, &q("&model=a2a_agent/remote"), MASTER_KEY).await);
    assert_eq!(model["metadata"]["total_api_requests"], 1);
    let mine = ok(get(&gw, &q(""), &user).await);
    assert_eq!(mine["metadata"]["total_api_requests"], 2);
    let theirs = ok(get(&gw, &q(""), &other).await);
    assert_eq!(theirs["metadata"]["total_api_requests"], 1);
    // a key limited to one agent may not ask about another
    let narrow = key(&gw, json!({"object_permission": {"agents": [helper]}})).await;
    let r = get(&gw, &q(&format!("&agent_ids={remote}")), &narrow).await;
    assert_eq!(r.status, 403, "{}", r.text());
    // bad input: a clear 4xx
    let r = get(
        &gw,
        "/agent/daily/activity?start_date=nope&end_date=x",
        MASTER_KEY,
    )
    .await;
    assert!(r.status.is_client_error(), "{}", r.status);
}

/// A call to an agent that is down is a `failure` row that costs nothing, though the agent has a
/// per-call price: only calls that worked are charged.
#[tokio::test]
async fn a_failed_agent_call_is_a_failure_row_costing_nothing() {
    let (db, _up, gw) = model_gateway("").await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // closed again: nothing listens there
    let url = format!("http://127.0.0.1:{port}/agent");
    let down = create(
        &gw,
        "down",
        json!({"agent_card_params": card("down", &url),
               "litellm_params": {"api_key": AGENT_KEY, "cost_per_query": 0.5}}),
    )
    .await;
    let user = key(&gw, json!({})).await;
    let r = rpc_as(&gw, &down, &user, message("message/send", "hi", None)).await;
    assert_eq!(r.json()["error"]["code"], -32603, "{}", r.text());
    assert!(
        eventually_async(Duration::from_secs(10), || async {
            agent_rows(&db).await.len() == 1
        })
        .await
    );
    let rows = agent_rows(&db).await;
    assert_eq!(
        (rows[0].1.as_str(), rows[0].3.as_str(), rows[0].5),
        (down.as_str(), "failure", 0.0),
        "{rows:?}"
    );
}
