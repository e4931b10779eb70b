//! Response-ID security (spec US1 scenario 6): Responses API ids are sealed with their owner;
//! other callers get 403 on get, delete, cancel, input items and `previous_response_id`;
//! admins pass; the setting turns it off. Against a mock Responses API upstream.

use std::sync::Arc;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::MockUpstream;
use crate::common::{MASTER_KEY, Resp, TestGateway, send, stream};

use super::admin_keys::call;

use crate::common::providers::{RESPONSE_ID as RAW, responses as reply};

async fn gateway(db: &TestDb, up: &MockUpstream, extra: &str) -> TestGateway {
    let yaml = format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n{extra}",
        b = up.base(),
        u = db.url
    );
    TestGateway::start(&yaml).await
}

async fn key_for(gw: &TestGateway, user: &str) -> String {
    let r = call(
        gw,
        Method::POST,
        "/key/generate",
        MASTER_KEY,
        json!({"user_id": user}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["key"].as_str().unwrap().to_string()
}

async fn as_key(
    gw: &TestGateway,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Resp {
    send(
        method,
        &gw.url(path),
        &[("authorization", &format!("Bearer {key}"))],
        body.map(|b| Bytes::from(b.to_string())).unwrap_or_default(),
    )
    .await
}

/// The four calls on a response by id.
fn by_id(id: &str) -> [(Method, String); 4] {
    [
        (Method::GET, format!("/v1/responses/{id}")),
        (Method::GET, format!("/v1/responses/{id}/input_items")),
        (Method::POST, format!("/v1/responses/{id}/cancel")),
        (Method::DELETE, format!("/v1/responses/{id}")),
    ]
}

fn create(previous: Option<&str>) -> Value {
    let mut v = json!({"model": "gpt", "input": "hello"});
    if let Some(p) = previous {
        v["previous_response_id"] = json!(p);
    }
    v
}

#[tokio::test]
async fn response_ids_belong_to_their_owner() {
    let db = TestDb::create().await;
    let up = MockUpstream::with(Arc::new(reply)).await;
    let gw = gateway(&db, &up, "").await;
    let alice = key_for(&gw, "alice").await;
    let bob = key_for(&gw, "bob").await;

    let r = as_key(
        &gw,
        &alice,
        Method::POST,
        "/v1/responses",
        Some(create(None)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("resp_v2:gcm:"), "{id}");
    assert!(!r.text().contains(RAW));

    // the owner can use it; the upstream sees the provider's id
    for (m, p) in by_id(&id) {
        let r = as_key(&gw, &alice, m.clone(), &p, None).await;
        assert_eq!(r.status, 200, "{m} {p}: {}", r.text());
        assert!(!r.text().contains(RAW), "{}", r.text());
        let last = up.last();
        assert_eq!(last.method, m);
        assert!(
            last.path.starts_with(&format!("/v1/responses/{RAW}")),
            "{}",
            last.path
        );
        assert_eq!(last.headers.get("authorization").unwrap(), "Bearer sk-up");
    }
    let r = as_key(
        &gw,
        &alice,
        Method::POST,
        "/v1/responses",
        Some(create(Some(&id))),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.last().json()["previous_response_id"], RAW);

    // another user cannot, whatever the call
    let before = up.requests().len();
    for (m, p) in by_id(&id) {
        let e = as_key(&gw, &bob, m, &p, None).await.assert_error(403);
        assert!(
            e["error"]["message"].as_str().unwrap().starts_with(
                "Forbidden. The response id is not associated with the user, who this key belongs to."
            ),
            "{e}"
        );
    }
    as_key(
        &gw,
        &bob,
        Method::POST,
        "/v1/responses",
        Some(create(Some(&id))),
    )
    .await
    .assert_error(403);
    assert_eq!(
        up.requests().len(),
        before,
        "a refused call reached the provider"
    );

    // ids the gateway did not issue: refused for keys, allowed for admins
    let e = as_key(
        &gw,
        &alice,
        Method::GET,
        "/v1/responses/resp_foreign?model=gpt",
        None,
    )
    .await
    .assert_error(403);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not issued by this proxy")
    );
    assert_eq!(gw.get(&format!("/v1/responses/{id}")).await.status, 200);
    assert_eq!(
        gw.get("/v1/responses/resp_foreign?model=gpt").await.status,
        200
    );
    assert_eq!(up.last().path, "/v1/responses/resp_foreign");

    // streamed: ids in the events are sealed too
    let s = stream(
        &gw.url("/v1/responses"),
        &json!({"model": "gpt", "input": "hi", "stream": true}).to_string(),
    )
    .await;
    assert_eq!(s.status, 200);
    let text = s.text();
    assert!(text.contains("resp_v2:gcm:"), "{text}");
    assert!(!text.contains(RAW), "{text}");
    assert!(text.contains("response.output_text.delta"));
    gw.gw.shutdown().await;
}

/// Keys of no user (nor team) do not share what they create, nor use what the master key made.
#[tokio::test]
async fn keys_without_users_own_their_ids() {
    let db = TestDb::create().await;
    let up = MockUpstream::with(Arc::new(reply)).await;
    let gw = gateway(&db, &up, "").await;
    let new_key = || async {
        let r = call(&gw, Method::POST, "/key/generate", MASTER_KEY, json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["key"].as_str().unwrap().to_string()
    };
    let (one, other) = (new_key().await, new_key().await);
    let made = |key: String| {
        let gw = &gw;
        async move {
            let r = as_key(gw, &key, Method::POST, "/v1/responses", Some(create(None))).await;
            assert_eq!(r.status, 200, "{}", r.text());
            r.json()["id"].as_str().unwrap().to_string()
        }
    };
    let mine = made(one.clone()).await;
    let admins = made(MASTER_KEY.to_string()).await;
    let get = |key: String, id: String| {
        let gw = &gw;
        async move {
            as_key(gw, &key, Method::GET, &format!("/v1/responses/{id}"), None)
                .await
                .status
        }
    };
    assert_eq!(get(one.clone(), mine.clone()).await, 200);
    assert_eq!(get(other.clone(), mine.clone()).await, 403);
    assert_eq!(get(one.clone(), admins.clone()).await, 403);
    assert_eq!(get(MASTER_KEY.to_string(), mine).await, 200);
}

#[tokio::test]
async fn response_id_security_can_be_turned_off() {
    let db = TestDb::create().await;
    let up = MockUpstream::with(Arc::new(reply)).await;
    let gw = gateway(&db, &up, "  disable_responses_id_security: true\n").await;
    let alice = key_for(&gw, "alice").await;
    let bob = key_for(&gw, "bob").await;
    let r = as_key(
        &gw,
        &alice,
        Method::POST,
        "/v1/responses",
        Some(create(None)),
    )
    .await;
    assert_eq!(r.json()["id"], RAW);
    let r = as_key(
        &gw,
        &bob,
        Method::GET,
        &format!("/v1/responses/{RAW}?model=gpt"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], RAW);
    // without a model the gateway cannot tell where the response lives
    as_key(
        &gw,
        &bob,
        Method::GET,
        &format!("/v1/responses/{RAW}"),
        None,
    )
    .await
    .assert_error(400);
    gw.gw.shutdown().await;
}
