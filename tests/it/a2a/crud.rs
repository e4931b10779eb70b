//! `/v1/agents` round trip: create, read, change, replace, delete, with audit rows; redaction
//! for non-admins; only admins write; the private-URL guard; bad input is a 400 JSON error.

use http::Method;
use serde_json::{Value, json};

use super::*;
use crate::common::MASTER_KEY;
use crate::it::admin_keys::{call, setup_with};

#[tokio::test]
async fn crud_round_trip_with_audit_rows_and_redaction() {
    let (_db, _up, gw) = setup_with(true, ALLOW_LOOPBACK).await;
    let id = create(
        &gw,
        "helper",
        json!({"rpm_limit": 5, "agent_access_groups": ["g1"]}),
    )
    .await;

    // admins see the agent's credentials
    let got = ok(get(&gw, &format!("/v1/agents/{id}"), MASTER_KEY).await);
    assert_eq!(got["agent_name"], "helper");
    assert_eq!(got["litellm_params"]["api_key"], AGENT_KEY);
    assert_eq!(got["static_headers"]["x-agent-token"], AGENT_HEADER);
    assert_eq!(got["rpm_limit"], 5);
    assert_eq!(got["execution_mode"], "autonomous");
    assert_eq!(got["agent_card_params"]["url"], "http://127.0.0.1:9/agent");

    // a plain key sees it with its secrets redacted, on the list and alone
    let user = key(&gw, json!({})).await;
    let list = get(&gw, "/v1/agents", &user).await;
    assert!(!list.text().contains(AGENT_KEY) && !list.text().contains(AGENT_HEADER));
    let shown = &ok(list)[0];
    assert_eq!(shown["litellm_params"]["api_key"], "REDACTED_BY_LITELM");
    assert!(shown["static_headers"].is_null());
    let one = get(&gw, &format!("/v1/agents/{id}"), &user).await;
    assert!(!one.text().contains(AGENT_KEY));
    assert_eq!(ok(one)["agent_id"], id.as_str());

    // only admins write
    let body = json!({"agent_name": "x", "agent_card_params": card("x", "https://a.example.com")});
    post(&gw, "/v1/agents", &user, body).await.assert_error(403);
    let path = format!("/v1/agents/{id}");
    call(&gw, Method::PATCH, &path, &user, json!({"rpm_limit": 1}))
        .await
        .assert_error(403);
    call(&gw, Method::DELETE, &path, &user, Value::Null)
        .await
        .assert_error(403);

    // PATCH changes what it names
    let patched = ok(call(
        &gw,
        Method::PATCH,
        &path,
        MASTER_KEY,
        json!({"rpm_limit": 7, "tpm_limit": 70}),
    )
    .await);
    assert_eq!(patched["rpm_limit"], 7);
    assert_eq!(patched["tpm_limit"], 70);
    assert_eq!(patched["litellm_params"]["api_key"], AGENT_KEY);
    // PUT replaces: what it leaves out is reset; it needs the name and card
    call(
        &gw,
        Method::PUT,
        &path,
        MASTER_KEY,
        json!({"agent_name": "helper"}),
    )
    .await
    .assert_error(400);
    let put = json!({"agent_name": "helper2", "agent_card_params": card("helper2", "http://127.0.0.1:9/b")});
    let replaced = ok(call(&gw, Method::PUT, &path, MASTER_KEY, put).await);
    assert_eq!(replaced["agent_name"], "helper2");
    assert!(replaced["rpm_limit"].is_null() && replaced["litellm_params"].is_null());
    assert_eq!(replaced["agent_access_groups"], json!([]));

    // names are unique
    create(&gw, "other", json!({})).await;
    let dup = json!({"agent_name": "other"});
    call(&gw, Method::PATCH, &path, MASTER_KEY, dup)
        .await
        .assert_error(400);

    // public agents: one added, or the list set
    let public = ok(post(&gw, &format!("{path}/make_public"), MASTER_KEY, Value::Null).await);
    assert_eq!(
        public["message"],
        "Successfully updated public agent groups"
    );
    assert_eq!(public["public_agent_groups"], json!([id]));
    assert_eq!(public["updated_by"], "alice@example.com");
    let set = json!({"agent_ids": []});
    let public = ok(post(&gw, "/v1/agents/make_public", MASTER_KEY, set).await);
    assert_eq!(public["public_agent_groups"], json!([]));
    post(&gw, "/v1/agents/nope/make_public", MASTER_KEY, Value::Null)
        .await
        .assert_error(404);
    post(&gw, &format!("{path}/make_public"), &user, Value::Null)
        .await
        .assert_error(403);
    post(
        &gw,
        "/v1/agents/make_public",
        MASTER_KEY,
        json!({"agent_ids": "x"}),
    )
    .await
    .assert_error(400);

    let gone = ok(call(&gw, Method::DELETE, &path, MASTER_KEY, Value::Null).await);
    assert_eq!(gone["message"], format!("Agent {id} deleted successfully"));
    get(&gw, &path, MASTER_KEY).await.assert_error(404);
    call(&gw, Method::DELETE, &path, MASTER_KEY, Value::Null)
        .await
        .assert_error(404);

    // audit rows: created, updated (twice), deleted; the credentials masked in every one
    let audit = get(
        &gw,
        &format!("/audit?table_name=agents&object_id={id}&page_size=50"),
        MASTER_KEY,
    )
    .await;
    assert!(
        !audit.text().contains(AGENT_KEY) && !audit.text().contains(AGENT_HEADER),
        "{}",
        audit.text()
    );
    let rows = ok(audit)["audit_logs"].as_array().unwrap().clone();
    let mut actions: Vec<&str> = rows.iter().map(|r| r["action"].as_str().unwrap()).collect();
    actions.sort();
    assert_eq!(actions, ["created", "deleted", "updated", "updated"]);
    for r in &rows {
        assert_eq!(r["table_name"], "TianjiLLM_AgentsTable");
        assert_eq!(r["changed_by"], "alice@example.com");
    }
    let created = rows.iter().find(|r| r["action"] == "created").unwrap();
    assert_eq!(created["updated_values"]["agent_name"], "helper");
}

#[tokio::test]
async fn private_urls_are_refused_without_the_allowance() {
    let (_db, _up, gw) = setup_with(false, "").await;
    for (field, body) in [
        (
            "agent_card_params.url",
            json!({"agent_name": "a", "agent_card_params": card("a", "http://127.0.0.1:8080/")}),
        ),
        (
            "agent_card_params.url",
            json!({"agent_name": "a", "agent_card_params": card("a", "http://localhost/")}),
        ),
        (
            "litellm_params.api_base",
            json!({"agent_name": "a", "agent_card_params": card("a", "https://a.example.com/"), "litellm_params": {"api_base": "http://169.254.169.254/latest"}}),
        ),
        (
            "agent_card_params.url",
            json!({"agent_name": "a", "agent_card_params": card("a", "http://10.0.0.5/")}),
        ),
    ] {
        let e = post(&gw, "/v1/agents", MASTER_KEY, body)
            .await
            .assert_error(400);
        assert_eq!(e["error"]["param"], field, "{e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("agent_allow_private_urls"),
            "{e}"
        );
    }
    let fine =
        json!({"agent_name": "a", "agent_card_params": card("a", "https://agents.example.com/a")});
    ok(post(&gw, "/v1/agents", MASTER_KEY, fine).await);
}

#[tokio::test]
async fn bad_input_is_a_400_json_error() {
    let (_db, _up, gw) = setup_with(false, ALLOW_LOOPBACK).await;
    let c = card("a", "https://agents.example.com/a");
    for (param, body) in [
        ("agent_name", json!({"agent_card_params": c})),
        (
            "agent_name",
            json!({"agent_name": "  ", "agent_card_params": c}),
        ),
        ("agent_card_params", json!({"agent_name": "a"})),
        (
            "agent_card_params",
            json!({"agent_name": "a", "agent_card_params": "x"}),
        ),
        (
            "tpm_limit",
            json!({"agent_name": "a", "agent_card_params": c, "tpm_limit": "many"}),
        ),
        (
            "rpm_limit",
            json!({"agent_name": "a", "agent_card_params": c, "rpm_limit": -1}),
        ),
        (
            "bogus",
            json!({"agent_name": "a", "agent_card_params": c, "bogus": 1}),
        ),
        (
            "static_headers.x",
            json!({"agent_name": "a", "agent_card_params": c, "static_headers": {"x": 1}}),
        ),
        (
            "agent_card_params.url",
            json!({"agent_name": "a", "agent_card_params": {"url": 5}}),
        ),
    ] {
        let e = post(&gw, "/v1/agents", MASTER_KEY, body)
            .await
            .assert_error(400);
        assert_eq!(e["error"]["param"], param, "{e}");
    }
    let raw = crate::common::send(
        Method::POST,
        &gw.url("/v1/agents"),
        &[("authorization", &format!("Bearer {MASTER_KEY}"))],
        bytes::Bytes::from_static(b"{not json"),
    )
    .await;
    raw.assert_error(400);
    get(&gw, "/v1/agents/nope", MASTER_KEY)
        .await
        .assert_error(404);
    call(
        &gw,
        Method::PATCH,
        "/v1/agents/nope",
        MASTER_KEY,
        json!({"rpm_limit": 1}),
    )
    .await
    .assert_error(404);
    // nothing was stored
    assert!(
        ok(get(&gw, "/v1/agents", MASTER_KEY).await)
            .as_array()
            .unwrap()
            .is_empty()
    );
}
