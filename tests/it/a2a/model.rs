//! Model-backed agents (`tianji_params.model`): `message/send` and `message/stream` answered
//! by a chat completion through the gateway (both protocol versions), the task methods'
//! errors, and an agent whose model was deleted answering 404 naming it.

use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use super::*;
use crate::common::db::TestDb;
use crate::common::eventually_async;
use crate::common::mock_upstream::MockUpstream;
use crate::common::{MASTER_KEY, send};

/// A gateway with model `gpt` (openai/gpt-4o, priced) on a mock, a database, spend written
/// every 50 ms, and `extra` general settings.
pub(super) async fn model_gateway(extra: &str) -> (TestDb, MockUpstream, TestGateway) {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n  proxy_batch_write_at: 0.05\n  agent_allow_private_urls: true\n{extra}",
        b = up.base(),
        u = db.url
    );
    (db, up, TestGateway::start(&yaml).await)
}

/// A model-backed agent on `model`; its id.
pub(super) async fn model_agent(gw: &TestGateway, name: &str, model: &str, extra: Value) -> String {
    let mut body = json!({
        "agent_name": name,
        "agent_card_params": {"name": name, "description": "answers with a model",
            "capabilities": {"streaming": true}, "skills": []},
        "litellm_params": {"model": model},
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let made = ok(post(gw, "/v1/agents", MASTER_KEY, body).await);
    made["agent_id"].as_str().unwrap().to_string()
}

/// A JSON-RPC call `method` with the message `text` (in `context`, if given).
pub(super) fn message(method: &str, text: &str, context: Option<&str>) -> String {
    let mut m = json!({"kind": "message", "role": "user", "messageId": "m1",
        "parts": [{"kind": "text", "text": text}]});
    if let Some(c) = context {
        m["contextId"] = json!(c);
    }
    json!({"jsonrpc": "2.0", "id": "r1", "method": method, "params": {"message": m}}).to_string()
}

pub(super) async fn rpc_as(gw: &TestGateway, id: &str, key: &str, body: String) -> Resp {
    rpc_with(gw, id, key, body, &[]).await
}

async fn rpc_with(
    gw: &TestGateway,
    id: &str,
    key: &str,
    body: String,
    extra: &[(&str, &str)],
) -> Resp {
    let auth = format!("Bearer {key}");
    let mut h = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    h.extend_from_slice(extra);
    send(
        Method::POST,
        &gw.url(&format!("/a2a/{id}")),
        &h,
        bytes::Bytes::from(body),
    )
    .await
}

/// The JSON-RPC objects of an SSE answer.
pub(super) fn events(r: &Resp) -> Vec<Value> {
    r.text()
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data:"))
        .map(|e| serde_json::from_str(e.trim()).unwrap())
        .collect()
}

#[tokio::test]
async fn a_model_backed_agent_answers_send_and_stream() {
    let (_db, up, gw) = model_gateway("").await;
    let id = model_agent(&gw, "helper", "gpt", json!({})).await;
    let user = key(&gw, json!({"models": ["other-model"]})).await;

    // 0.3: the agent's Message, from the model's answer
    let r = rpc_as(
        &gw,
        &id,
        &user,
        message("message/send", "hi there", Some("ctx-9")),
    )
    .await;
    let v = ok(r);
    assert_eq!(v["id"], "r1");
    assert_eq!(v["result"]["kind"], "message");
    assert_eq!(v["result"]["role"], "agent");
    assert_eq!(v["result"]["contextId"], "ctx-9");
    assert_eq!(
        v["result"]["parts"][0],
        json!({"kind": "text", "text": "Hello from the mock"})
    );
    let asked = up.last().json();
    assert_eq!(asked["model"], "gpt-4o");
    assert_eq!(
        asked["messages"],
        json!([{"role": "user", "content": "hi there"}])
    );

    // 1.0 (PascalCase): {"message": ...} in proto JSON
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "SendMessage", "params": {"message": {
        "messageId": "m2", "role": "ROLE_USER", "parts": [{"text": "hello"}]}}});
    let v = ok(rpc_with(&gw, &id, &user, body.to_string(), &[("a2a-version", "1.0")]).await);
    assert_eq!(v["result"]["message"]["role"], "ROLE_AGENT");
    assert_eq!(
        v["result"]["message"]["parts"][0]["text"],
        "Hello from the mock"
    );

    // 0.3 stream: task, working, one artifact update per chunk, completed
    let r = rpc_as(&gw, &id, &user, message("message/stream", "hi", None)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let ev = events(&r);
    let kinds: Vec<&str> = ev
        .iter()
        .map(|e| e["result"]["kind"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        kinds,
        [
            "task",
            "status-update",
            "artifact-update",
            "artifact-update",
            "status-update"
        ]
    );
    let text: String = ev[2..4]
        .iter()
        .map(|e| {
            e["result"]["artifact"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(text, "Hello world");
    assert_eq!(ev[4]["result"]["status"]["state"], "completed");
    assert_eq!(ev[4]["result"]["final"], true);
    assert!(ev.iter().all(|e| e["id"] == "r1" && e["jsonrpc"] == "2.0"));
    assert_eq!(up.last().json()["stream"], true);

    // 1.0 stream
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "SendStreamingMessage", "params": {"message": {
        "messageId": "m3", "role": "ROLE_USER", "parts": [{"text": "hello"}]}}});
    let ev = events(&rpc_as(&gw, &id, &user, body.to_string()).await);
    assert!(ev[0]["result"]["task"].is_object());
    assert_eq!(
        ev[1]["result"]["statusUpdate"]["status"]["state"],
        "TASK_STATE_WORKING"
    );
    assert!(ev[2]["result"]["artifactUpdate"].is_object());
    assert_eq!(
        ev.last().unwrap()["result"]["statusUpdate"]["status"]["state"],
        "TASK_STATE_COMPLETED"
    );

    // no tasks are kept
    let get = json!({"jsonrpc": "2.0", "id": 4, "method": "tasks/get", "params": {"id": "t1"}});
    let r = rpc_as(&gw, &id, &user, get.to_string()).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], -32001);
    let list = json!({"jsonrpc": "2.0", "id": 5, "method": "ListTasks", "params": {}});
    assert_eq!(
        ok(rpc_as(&gw, &id, &user, list.to_string()).await)["result"]["tasks"],
        json!([])
    );
}

#[tokio::test]
async fn an_agent_whose_model_was_deleted_answers_404_naming_it() {
    let (_db, up, gw) = model_gateway("").await;
    let made = ok(call(
        &gw,
        Method::POST,
        "/model/new",
        MASTER_KEY,
        json!({"model_name": "dyn", "litellm_params": {"model": "openai/z", "api_base": up.base(), "api_key": "sk-x"}}),
    )
    .await);
    let model_id = made["model_info"]["id"].as_str().unwrap().to_string();
    let id = model_agent(&gw, "dyn-agent", "dyn", json!({})).await;
    let send = || rpc_as(&gw, &id, MASTER_KEY, message("message/send", "hi", None));
    assert_eq!(send().await.status, 200);
    ok(call(
        &gw,
        Method::POST,
        "/model/delete",
        MASTER_KEY,
        json!({"id": model_id}),
    )
    .await);
    assert!(
        eventually_async(Duration::from_secs(10), || async {
            send().await.status == 404
        })
        .await
    );
    let r = send().await;
    let e = &r.json()["error"];
    assert_eq!(e["code"], -32000);
    let m = e["message"].as_str().unwrap();
    assert!(m.contains("'dyn'") && m.contains("does not exist"), "{m}");
}
