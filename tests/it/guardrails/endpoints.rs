//! `GET /guardrails/list`, `GET /v2/guardrails/list` (secrets hidden), `POST
//! /guardrails/apply_guardrail`, and configs the gateway refuses.

use http::Method;
use serde_json::json;

use super::{gateway, post};
use crate::common::mock_upstream::MockUpstream;
use crate::common::{MASTER_KEY, send};

const GUARDRAILS: &str = r#"guardrails:
  - guardrail_name: lakera
    litellm_params: {guardrail: lakera_v2, mode: [pre_call, post_call], api_key: lk-very-secret, api_base: "http://127.0.0.1:9"}
    guardrail_info: {description: prompt injection}
  - guardrail_name: pii
    tianji_params:
      guardrail: litellm_content_filter
      mode: pre_call
      default_on: true
      patterns: [{pattern_type: prebuilt, pattern_name: email, action: MASK}]
      blocked_words: [{keyword: classified, action: BLOCK}]
litellm_settings:
  banned_keywords_list: [foo]
"#;

#[tokio::test]
async fn list_hides_secrets_and_apply_runs_one_guardrail() {
    let up = MockUpstream::start().await;
    let gw = gateway(&up, GUARDRAILS).await;
    let r = gw.get("/guardrails/list").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains("lk-very-secret"), "{}", r.text());
    let v = r.json();
    let names: Vec<&str> = (v["guardrails"].as_array().unwrap().iter())
        .map(|g| g["guardrail_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["banned_keywords", "lakera", "pii"]);
    let lakera = &v["guardrails"][1];
    assert_eq!(lakera["litellm_params"]["api_key"], "***");
    assert_eq!(lakera["litellm_params"]["guardrail"], "lakera_v2");
    assert_eq!(
        lakera["litellm_params"]["mode"],
        json!(["pre_call", "post_call"])
    );
    assert_eq!(lakera["guardrail_info"]["description"], "prompt injection");
    let v2 = gw.get("/v2/guardrails/list").await;
    assert_eq!(v2.status, 200);
    assert!(!v2.text().contains("lk-very-secret"));
    assert_eq!(v2.json()["guardrails"][2]["guardrail_id"], "pii");
    // no key: refused
    let anon = send(
        Method::GET,
        &gw.url("/guardrails/list"),
        &[],
        bytes::Bytes::new(),
    )
    .await;
    anon.assert_error(401);

    let apply =
        |body: serde_json::Value| post(&gw, "/guardrails/apply_guardrail", MASTER_KEY, body);
    let r = apply(json!({"guardrail_name": "pii", "text": "write to a@b.example"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["response_text"], "write to [EMAIL_REDACTED]");
    let e = apply(json!({"guardrail_name": "pii", "text": "classified stuff"})).await;
    e.assert_error(400);
    let e = apply(json!({"guardrail_name": "banned_keywords", "text": "FOO bar"})).await;
    assert_eq!(
        e.assert_error(403)["error"]["message"],
        "Keyword banned. Keyword=foo"
    );
    let e = apply(json!({"guardrail_name": "nope", "text": "x"})).await;
    e.assert_error(400);
    let e = apply(json!({"text": "x"})).await;
    e.assert_error(400);
}

#[tokio::test]
async fn configs_refused_at_startup() {
    let model = "model_list:\n  - model_name: m\n    tianji_params: {model: openai/m}\n";
    // an unimplemented kind, unless ignore_unknown_guardrails
    let y = format!(
        "{model}guardrails:\n  - guardrail_name: a\n    litellm_params: {{guardrail: aporia}}\n"
    );
    let e = tianji::Loaded::from_yaml(&y).unwrap_err().to_string();
    assert!(e.contains("guardrails[0]") && e.contains("aporia"), "{e}");
    let ok = format!("{y}litellm_settings: {{ignore_unknown_guardrails: true}}\n");
    let l = tianji::Loaded::from_yaml(&ok).unwrap();
    assert!(
        l.warnings.join("\n").contains("`guardrails[0]`"),
        "{:?}",
        l.warnings
    );
    // a bad pattern, an unknown mode, the banned_keywords callback without its list
    for bad in [
        "guardrails:\n  - guardrail_name: a\n    litellm_params: {guardrail: litellm_content_filter, patterns: [{pattern_type: prebuilt, pattern_name: nope, action: BLOCK}]}\n",
        "guardrails:\n  - guardrail_name: a\n    litellm_params: {guardrail: litellm_content_filter, mode: sometimes}\n",
        "litellm_settings: {callbacks: [banned_keywords]}\n",
    ] {
        let l = tianji::Loaded::from_yaml(&format!("{model}{bad}")).unwrap();
        let e = tianji::Gateway::start(&l, "127.0.0.1:0".parse().unwrap()).await;
        assert!(e.is_err(), "{bad}");
    }
}
