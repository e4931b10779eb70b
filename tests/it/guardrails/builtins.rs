//! Spec US4 scenarios 1-2 (banned keywords and blocked users refused with 403 before the
//! provider is called), on every text route; the content filter's mask and block; which
//! guardrails run by request, key and team.

use std::io::Write;

use serde_json::json;

use super::{chat, chats, echo_upstream, gateway, post, says};
use crate::common::MASTER_KEY;
use crate::common::db::TestDb;
use crate::common::mock_upstream::MockUpstream;

/// US4 scenario 1, on chat, completions, embeddings, responses and /v1/messages.
#[tokio::test]
async fn banned_keywords_are_refused_with_403_before_the_provider() {
    let up = MockUpstream::start().await;
    let gw = gateway(
        &up,
        "litellm_settings:\n  callbacks: [banned_keywords]\n  banned_keywords_list: [\"credit card\", \"ssn\"]\n",
    )
    .await;
    let r = chat(&gw, says("what's your credit card")).await;
    let e = r.assert_error(403);
    assert_eq!(e["error"]["message"], "Keyword banned. Keyword=credit card");
    assert_eq!(e["error"]["param"], "banned_keywords");
    let asks = [
        (
            "/v1/completions",
            json!({"model": "m", "prompt": "my SSN is 1"}),
        ),
        (
            "/v1/embeddings",
            json!({"model": "m", "input": ["fine", "an ssn"]}),
        ),
        (
            "/v1/responses",
            json!({"model": "m", "input": "credit card please"}),
        ),
        (
            "/v1/messages",
            json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "text", "text": "Credit Card?"}]}]}),
        ),
    ];
    for (path, body) in asks {
        let r = post(&gw, path, MASTER_KEY, body).await;
        let e = r.assert_error(403);
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Keyword banned."),
            "{path}: {e}"
        );
    }
    assert!(up.requests().is_empty(), "{:?}", up.requests());
    // a clean request goes through unchanged
    let body = r#"{"model":"m",  "messages":[{"role":"user","content":"hello"}]}"#;
    let r = crate::common::send(
        http::Method::POST,
        &gw.url("/v1/chat/completions"),
        &[("authorization", &format!("Bearer {MASTER_KEY}"))],
        bytes::Bytes::from(body),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.requests().len(), 1);
    assert!(
        up.last().text().contains(r#"  "messages""#),
        "not re-serialized"
    );
}

/// US4 scenario 2: the end user in `user` (or the end-user header) is refused; the list
/// from a file.
#[tokio::test]
async fn blocked_users_are_refused_with_403() {
    let up = MockUpstream::start().await;
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "# blocked\nuser-123\nuser-456").unwrap();
    let gw = gateway(
        &up,
        &format!(
            "litellm_settings:\n  callbacks: [blocked_user_check]\n  blocked_user_list: \"{}\"\n",
            f.path().display()
        ),
    )
    .await;
    let mut body = says("hi");
    body["user"] = json!("user-123");
    let e = chat(&gw, body).await.assert_error(403);
    assert_eq!(
        e["error"]["message"],
        "User blocked from making LLM API Calls. User=user-123"
    );
    let r = crate::common::send(
        http::Method::POST,
        &gw.url("/v1/chat/completions"),
        &[
            ("authorization", &format!("Bearer {MASTER_KEY}")),
            ("x-tianji-end-user-id", "user-456"),
        ],
        bytes::Bytes::from(says("hi").to_string()),
    )
    .await;
    r.assert_error(403);
    assert!(up.requests().is_empty());
    let mut body = says("hi");
    body["user"] = json!("someone-else");
    assert_eq!(chat(&gw, body).await.status, 200);
}

/// The content filter: email and API keys masked before the provider sees them, a real card
/// number (Luhn) blocked, a number failing Luhn passed, a custom regex blocked; the
/// request's own `guardrails` member is not forwarded when the body is rewritten.
#[tokio::test]
async fn content_filter_masks_and_blocks() {
    let up = echo_upstream().await;
    let gw = gateway(
        &up,
        r#"guardrails:
  - guardrail_name: pii
    litellm_params:
      guardrail: litellm_content_filter
      mode: pre_call
      patterns:
        - {pattern_type: prebuilt, pattern_name: email, action: MASK}
        - {pattern_type: prebuilt, pattern_name: api_keys, action: MASK}
        - {pattern_type: prebuilt, pattern_name: credit_card, action: BLOCK}
        - {pattern_type: regex, pattern: 'PROJECT-\d{6}', name: project_code, action: BLOCK}
"#,
    )
    .await;
    let mut body =
        says("mail jane@corp.example with sk-abcdefghijklmnopqrstuvwx and AKIAABCDEFGHIJKLMNOP");
    body["guardrails"] = json!(["pii"]);
    let r = chat(&gw, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = chats(&up).pop().unwrap().json();
    assert_eq!(
        sent["messages"][0]["content"],
        "mail [EMAIL_REDACTED] with [OPENAI_API_KEY_REDACTED] and [AWS_ACCESS_KEY_REDACTED]"
    );
    assert!(sent.get("guardrails").is_none(), "{sent}");
    let mut body = says("card 4111 1111 1111 1111");
    body["guardrails"] = json!(["pii"]);
    let e = chat(&gw, body).await.assert_error(400);
    assert_eq!(
        e["error"]["message"],
        "Content blocked: credit_card pattern detected"
    );
    assert_eq!(e["error"]["param"], "pii");
    let mut body = says("see PROJECT-123456");
    body["metadata"] = json!({"guardrails": ["pii"]});
    chat(&gw, body).await.assert_error(400);
    let mut body = says("order 4111 1111 1111 1112");
    body["guardrails"] = json!(["pii"]);
    assert_eq!(chat(&gw, body).await.status, 200);
    let sent = chats(&up).pop().unwrap();
    assert_eq!(
        sent.json()["messages"][0]["content"],
        "order 4111 1111 1111 1112"
    );
    assert!(!sent.text().contains("guardrails"), "{}", sent.text());
    // not asked for: not run
    assert_eq!(
        chat(&gw, says("card 4111 1111 1111 1111")).await.status,
        200
    );
    assert_eq!(chats(&up).len(), 3);
    // an unknown name is a 400 naming it
    let mut body = says("hi");
    body["guardrails"] = json!(["nope"]);
    let e = chat(&gw, body).await.assert_error(400);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("'nope'"),
        "{e}"
    );
}

fn word_filter(name: &str, word: &str, default_on: bool, extra: &str) -> String {
    format!(
        "  - guardrail_name: {name}\n    litellm_params:\n      guardrail: litellm_content_filter\n      default_on: {default_on}\n{extra}      blocked_words: [{{keyword: {word}, action: BLOCK}}]\n"
    )
}

/// Which guardrails run: default_on ones, a key's and a team's `guardrails`, and their
/// `disable_global_guardrails` (except for a guardrail with `can_disable: false`).
#[tokio::test]
async fn selection_by_key_and_team_and_disable_global_guardrails() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let extra = format!(
        "guardrails:\n{}{}{}general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{}\"\n",
        word_filter("g-alpha", "alpha", false, ""),
        word_filter("g-beta", "beta", true, ""),
        word_filter("g-gamma", "gamma", true, "      can_disable: false\n"),
        db.url
    );
    let gw = gateway(&up, &extra).await;
    let key = |body: serde_json::Value| {
        let gw = &gw;
        async move {
            let r = post(gw, "/key/generate", MASTER_KEY, body).await;
            assert_eq!(r.status, 200, "{}", r.text());
            r.json()["key"].as_str().unwrap().to_string()
        }
    };
    let ask = |k: String, text: &'static str| {
        let gw = &gw;
        async move {
            post(gw, "/v1/chat/completions", &k, says(text))
                .await
                .status
                .as_u16()
        }
    };
    let plain = key(json!({})).await;
    assert_eq!(ask(plain.clone(), "alpha").await, 200);
    assert_eq!(ask(plain.clone(), "beta").await, 400);
    assert_eq!(ask(plain.clone(), "gamma").await, 400);
    let with_alpha = key(json!({"guardrails": ["g-alpha"]})).await;
    assert_eq!(ask(with_alpha, "alpha").await, 400);
    let no_globals = key(json!({"disable_global_guardrails": true})).await;
    assert_eq!(ask(no_globals.clone(), "beta").await, 200);
    assert_eq!(ask(no_globals, "gamma").await, 400, "can_disable: false");
    let team = post(
        &gw,
        "/team/new",
        MASTER_KEY,
        json!({"team_alias": "t", "guardrails": ["g-alpha"], "disable_global_guardrails": true}),
    )
    .await;
    assert_eq!(team.status, 200, "{}", team.text());
    let team_id = team.json()["team_id"].as_str().unwrap().to_string();
    let member = key(json!({"team_id": team_id})).await;
    assert_eq!(ask(member.clone(), "alpha").await, 400);
    assert_eq!(ask(member.clone(), "beta").await, 200);
    assert_eq!(ask(member, "gamma").await, 400);
}
