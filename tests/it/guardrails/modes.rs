//! Each mode: `during_call` (the provider is called, the answer withheld when the guardrail
//! blocks), `post_call` on a whole answer (rewritten or blocked) and on a stream (its end held,
//! an error event instead when blocked), `logging_only` (SpendLogs and callback payloads masked,
//! the provider's request not).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{chat, chats, echo_upstream, gateway, says};
use crate::common::db::TestDb;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};
use crate::common::{MASTER_KEY, eventually_async, stream};

/// A generic guardrail API answering BLOCKED for texts with "forbidden", after `delay`.
async fn slow_generic(delay: Duration) -> MockUpstream {
    MockUpstream::with(Arc::new(move |r: &Recorded| {
        let blocked = r.text().contains("forbidden");
        let body = if blocked {
            json!({"action": "BLOCKED", "blocked_reason": "forbidden topic"})
        } else {
            json!({"action": "NONE"})
        };
        Reply::Delay(delay, Box::new(Reply::status(200, body)))
    }))
    .await
}

#[tokio::test]
async fn during_call_holds_the_answer_until_the_guardrail_passes() {
    let up = echo_upstream().await;
    let guard = slow_generic(Duration::from_millis(200)).await;
    let gw = gateway(
        &up,
        &format!(
            "guardrails:\n  - guardrail_name: during\n    litellm_params: {{guardrail: generic_guardrail_api, mode: during_call, default_on: true, api_base: \"http://{}\"}}\n",
            guard.addr
        ),
    )
    .await;
    let r = chat(&gw, says("a forbidden question")).await;
    let e = r.assert_error(400);
    assert_eq!(e["error"]["message"], "forbidden topic");
    assert_eq!(e["error"]["param"], "during");
    // the provider was called (in parallel), its answer discarded
    assert_eq!(chats(&up).len(), 1);
    assert!(!r.text().contains("echo:"));
    let r = chat(&gw, says("a fine question")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "echo: a fine question"
    );
    // a stream is withheld too: the client gets the error, not the stream
    let mut body = says("forbidden stream");
    body["stream"] = json!(true);
    let s = stream(&gw.url("/v1/chat/completions"), &body.to_string()).await;
    assert_eq!(s.status, 400, "{}", s.text());
    assert!(!s.text().contains("echo"), "{}", s.text());
    let sent: Vec<String> = (guard.requests().iter())
        .map(|r| {
            r.json()["input_type"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert!(sent.iter().all(|t| t == "request"), "{sent:?}");
}

#[tokio::test]
async fn post_call_checks_whole_answers_and_streams() {
    let up = echo_upstream().await;
    let gw = gateway(
        &up,
        r#"guardrails:
  - guardrail_name: out-mask
    litellm_params:
      guardrail: litellm_content_filter
      mode: post_call
      default_on: true
      patterns: [{pattern_type: prebuilt, pattern_name: email, action: MASK}]
  - guardrail_name: out-block
    litellm_params:
      guardrail: litellm_content_filter
      mode: [post_call]
      blocked_words: [{keyword: dragons, action: BLOCK}]
"#,
    )
    .await;
    // the provider sees the email (post_call only), the client gets it masked
    let r = chat(&gw, says("write to ann@x.example")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(chats(&up).pop().unwrap().text().contains("ann@x.example"));
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "echo: write to [EMAIL_REDACTED]"
    );
    let mut body = says("here be dragons");
    body["guardrails"] = json!(["out-block"]);
    let e = chat(&gw, body.clone()).await.assert_error(400);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("dragons"),
        "{e}"
    );
    // streamed: chunks flow, the end is held and replaced by an error event
    body["stream"] = json!(true);
    let s = stream(&gw.url("/v1/chat/completions"), &body.to_string()).await;
    assert_eq!(s.status, 200);
    let text = s.text();
    assert!(text.contains("echo:"), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    assert!(
        text.contains("\"error\"") && text.contains("dragons"),
        "{text}"
    );
    // a stream that passes ends as usual
    let mut body = says("calm seas");
    body["stream"] = json!(true);
    body["guardrails"] = json!(["out-block"]);
    let s = stream(&gw.url("/v1/chat/completions"), &body.to_string()).await;
    let text = s.text();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(!text.contains("\"error\""), "{text}");
}

#[tokio::test]
async fn logging_only_masks_spend_logs_and_callbacks_not_the_provider() {
    let db = TestDb::create().await;
    let up = echo_upstream().await;
    let sink = MockUpstream::with(Arc::new(|_: &Recorded| Reply::status(200, json!({})))).await;
    let extra = format!(
        r#"guardrails:
  - guardrail_name: log-mask
    litellm_params:
      guardrail: litellm_content_filter
      mode: logging_only
      default_on: true
      patterns: [{{pattern_type: prebuilt, pattern_name: email, action: MASK}}]
litellm_settings:
  callbacks: [generic_api]
environment_variables:
  GENERIC_LOGGER_ENDPOINT: "http://{}/log"
general_settings:
  master_key: {MASTER_KEY}
  database_url: "{}"
  store_prompts_in_spend_logs: true
"#,
        sink.addr, db.url
    );
    let gw = gateway(&up, &extra).await;
    let r = chat(&gw, says("reach bob@corp.example")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // the provider and the client see it all
    assert!(
        chats(&up)
            .pop()
            .unwrap()
            .text()
            .contains("bob@corp.example")
    );
    assert!(r.text().contains("bob@corp.example"));
    let wait = Duration::from_secs(20);
    let events = || {
        (sink.requests().iter())
            .flat_map(|r| r.json().as_array().cloned().unwrap_or_default())
            .collect::<Vec<Value>>()
    };
    assert!(
        crate::common::eventually(wait, || !events().is_empty()).await,
        "no callback event"
    );
    let ev = events().remove(0);
    assert_eq!(
        ev["messages"][0]["content"], "reach [EMAIL_REDACTED]",
        "{ev}"
    );
    assert!(!ev.to_string().contains("bob@corp.example"), "{ev}");
    let c = db.client().await;
    let rows = || async {
        c.query(
            r#"SELECT "messages"::text, "response"::text FROM "TianjiLLM_SpendLogs""#,
            &[],
        )
        .await
        .unwrap()
    };
    assert!(eventually_async(wait, || async { !rows().await.is_empty() }).await);
    let row = &rows().await[0];
    let (messages, response): (String, Option<String>) = (row.get(0), row.get(1));
    let response = response.unwrap_or_default();
    assert!(messages.contains("[EMAIL_REDACTED]"), "{messages}");
    assert!(!messages.contains("bob@corp.example"), "{messages}");
    assert!(!response.contains("bob@corp.example"), "{response}");
}
