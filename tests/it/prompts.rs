//! Issue 29 item 3, prompt management: config prompts used by `prompt_id` (the mock upstream
//! receives the rendered messages, the template's model and parameters); stored prompts with
//! versions (`/prompts` CRUD, audit rows, a specific version used); `POST /prompts/test` (spec
//! US10 scenario 3, whole and streamed); a missing variable is a 400 naming it; key and team
//! `prompts` lists (403); non-admin writes refused; a template that would explode is refused
//! with a 400; a prompt stored on one instance used on another.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::MockUpstream;
use crate::common::{MASTER_KEY, Resp, TestGateway, eventually_async};
use crate::it::admin_keys::{call, setup_with};

fn ok(r: Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

async fn chat(gw: &TestGateway, key: &str, body: Value) -> Resp {
    call(gw, Method::POST, "/v1/chat/completions", key, body).await
}

/// A `.prompt` with a system and a user message, model `m`, temperature 0.3.
const GREETING: &str = "---\nmodel: m\ntemperature: 0.3\ninput:\n  schema:\n    name: string\n    mood?: string\n---\nSystem: You greet people{% if mood %} in a {{ mood }} mood{% endif %}.\nUser: Say hello to {{ name }}.\n";

/// A stored prompt body for `/prompts` with `text` as its template.
fn stored(id: &str, text: &str) -> Value {
    json!({
        "prompt_id": id,
        "litellm_params": {"prompt_id": id, "prompt_integration": "dotprompt", "dotprompt_content": text},
    })
}

/// The messages the mock's last chat request carried.
fn sent_messages(up: &MockUpstream) -> Value {
    up.last().json()["messages"].clone()
}

#[tokio::test]
async fn config_prompts_are_rendered_into_the_request() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("greeting.prompt"), GREETING).unwrap();
    std::fs::write(dir.path().join("other.prompt"), "User: {{ q }}").unwrap();
    let up = MockUpstream::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: m\n    tianji_params: {{model: openai/x, api_base: \"{b}\", api_key: sk-up}}\n  - model_name: m2\n    tianji_params: {{model: openai/y, api_base: \"{b}\", api_key: sk-up}}\nprompts:\n  - prompt_id: greeting\n    litellm_params:\n      prompt_id: greeting\n      prompt_integration: dotprompt\n      prompt_file: \"{f}\"\n  - prompt_id: other\n    litellm_params: {{prompt_integration: dotprompt, prompt_directory: \"{d}\"}}\n  - prompt_id: inline\n    tianji_params:\n      prompt_integration: dotprompt\n      dotprompt_content: \"---\\nmodel: m2\\nmax_tokens: 7\\n---\\nUser: inline {{{{ x }}}}\"\n  - prompt_id: elsewhere\n    litellm_params: {{prompt_integration: langfuse}}\n",
        b = up.base(),
        f = dir.path().join("greeting.prompt").display(),
        d = dir.path().display(),
    );
    let gw = TestGateway::start(&yaml).await;

    // the template's messages first, then the request's; its model and parameters win
    let r = chat(
        &gw,
        MASTER_KEY,
        json!({"model": "m2", "temperature": 1.5, "prompt_id": "greeting",
               "prompt_variables": {"name": "Ann", "mood": "sunny"},
               "messages": [{"role": "user", "content": "and be quick"}]}),
    )
    .await;
    assert_eq!(ok(r)["object"], "chat.completion");
    let sent = up.last().json();
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "system", "content": "You greet people in a sunny mood."},
            {"role": "user", "content": "Say hello to Ann."},
            {"role": "user", "content": "and be quick"},
        ])
    );
    assert_eq!(sent["model"], "x", "the template's model group m was used");
    assert_eq!(sent["temperature"], 0.3);
    for member in ["prompt_id", "prompt_variables", "prompt_version"] {
        assert!(sent.get(member).is_none(), "{member} went upstream: {sent}");
    }

    // no messages and no model in the request: the template gives both; optional vars may be left out
    let r = chat(
        &gw,
        MASTER_KEY,
        json!({"prompt_id": "greeting", "prompt_variables": {"name": "Bo"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(sent_messages(&up)[0]["content"], "You greet people.");

    // a prompt from a directory and an inline one (the request's model kept when the template has none)
    ok(chat(
        &gw,
        MASTER_KEY,
        json!({"model": "m2", "prompt_id": "other", "prompt_variables": {"q": "why?"}}),
    )
    .await);
    assert_eq!(
        sent_messages(&up),
        json!([{"role": "user", "content": "why?"}])
    );
    assert_eq!(up.last().json()["model"], "y");
    let r = chat(
        &gw,
        MASTER_KEY,
        json!({"prompt_id": "inline", "prompt_variables": {"x": 1}, "stream": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("data: [DONE]"));
    let sent = up.last().json();
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "inline 1"}])
    );
    assert_eq!(
        (sent["model"].clone(), sent["max_tokens"].clone()),
        (json!("y"), json!(7))
    );
    assert_eq!(sent["stream"], true);

    // a missing variable is a 400 naming it; so is one of the wrong type
    let n = up.requests().len();
    let e = chat(
        &gw,
        MASTER_KEY,
        json!({"prompt_id": "greeting", "prompt_variables": {}}),
    )
    .await
    .assert_error(400);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("'name'"),
        "{e}"
    );
    assert_eq!(e["error"]["param"], "prompt_variables");
    let e = chat(&gw, MASTER_KEY, json!({"prompt_id": "other", "model": "m"}))
        .await
        .assert_error(400);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("'q'"),
        "{e}"
    );
    let e = chat(
        &gw,
        MASTER_KEY,
        json!({"prompt_id": "greeting", "prompt_variables": {"name": 5}}),
    )
    .await
    .assert_error(400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expected string"),
        "{e}"
    );
    // unknown prompts, prompts of an integration not served, bad members
    chat(&gw, MASTER_KEY, json!({"prompt_id": "nope", "model": "m"}))
        .await
        .assert_error(404);
    chat(
        &gw,
        MASTER_KEY,
        json!({"prompt_id": "elsewhere", "model": "m"}),
    )
    .await
    .assert_error(404);
    chat(
        &gw,
        MASTER_KEY,
        json!({"prompt_id": "greeting", "prompt_variables": [1]}),
    )
    .await
    .assert_error(400);
    chat(
        &gw,
        MASTER_KEY,
        json!({"prompt_id": "greeting", "prompt_version": "x", "prompt_variables": {"name": "a"}}),
    )
    .await
    .assert_error(400);
    chat(
        &gw,
        MASTER_KEY,
        json!({"prompt_id": 3, "model": "m", "messages": []}),
    )
    .await
    .assert_error(400);
    assert_eq!(up.requests().len(), n, "nothing went upstream");

    // the listing and one prompt with its template
    let list = ok(gw.get("/prompts/list").await);
    let ids: Vec<&str> = list["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["prompt_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["greeting", "inline", "other"]);
    assert_eq!(list["prompts"][0]["prompt_info"]["prompt_type"], "config");
    let one = ok(gw.get("/prompts/greeting/info").await);
    assert_eq!(
        one["prompt_spec"]["litellm_params"]["prompt_integration"],
        "dotprompt"
    );
    assert_eq!(one["raw_prompt_template"]["metadata"]["model"], "m");
    assert!(
        one["raw_prompt_template"]["content"]
            .as_str()
            .unwrap()
            .starts_with("System: You greet")
    );
    assert_eq!(ok(gw.get("/prompts/greeting").await), one);
    gw.get("/prompts/nope").await.assert_error(404);
    // writes need the database
    gw.post("/prompts", &stored("x", "User: hi").to_string())
        .await
        .assert_error(503);
}

#[tokio::test]
async fn a_config_prompt_that_cannot_be_read_stops_startup() {
    let yaml = "model_list: []\nprompts:\n  - prompt_id: p\n    litellm_params: {prompt_integration: dotprompt, prompt_file: /nonexistent/p.prompt}\n";
    let loaded = tianji::Loaded::from_yaml(yaml).unwrap();
    let e = tianji::Gateway::start(&loaded, "127.0.0.1:0".parse().unwrap())
        .await
        .err()
        .expect("refused");
    assert!(e.to_string().contains("prompts[0] (p)"), "{e}");
    let yaml = "prompts:\n  - prompt_id: p\n    litellm_params: {prompt_integration: dotprompt, dotprompt_content: \"{% for %}\"}\n";
    let loaded = tianji::Loaded::from_yaml(yaml).unwrap();
    assert!(
        tianji::Gateway::start(&loaded, "127.0.0.1:0".parse().unwrap())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn stored_prompts_have_versions() {
    let (db, up, gw) = setup_with(true, "").await;
    let v = |n: u32| format!("---\nmodel: m\n---\nUser: version {n} for {{{{ who }}}}");
    let made = ok(gw
        .post("/prompts", &stored("story", &v(1)).to_string())
        .await);
    assert_eq!(
        (made["prompt_id"].clone(), made["version"].clone()),
        (json!("story"), json!(1))
    );
    assert_eq!(made["prompt_info"]["prompt_type"], "db");
    // creating it again, and replacing it, add versions
    assert_eq!(
        ok(gw
            .post("/prompts", &stored("story", &v(2)).to_string())
            .await)["version"],
        2
    );
    let put = call(
        &gw,
        Method::PUT,
        "/prompts/story",
        MASTER_KEY,
        stored("story", &v(3)),
    )
    .await;
    assert_eq!(ok(put)["version"], 3);
    let versions = ok(gw.get("/prompts/story/versions").await);
    let got: Vec<i64> = versions["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["version"].as_i64().unwrap())
        .collect();
    assert_eq!(got, [3, 2, 1]);

    // the latest by default; an older one by prompt_version or by the id's suffix
    let vars = json!({"who": "Cy"});
    ok(chat(
        &gw,
        MASTER_KEY,
        json!({"prompt_id": "story", "prompt_variables": vars}),
    )
    .await);
    assert_eq!(
        sent_messages(&up),
        json!([{"role": "user", "content": "version 3 for Cy"}])
    );
    ok(chat(
        &gw,
        MASTER_KEY,
        json!({"prompt_id": "story", "prompt_version": 1, "prompt_variables": vars}),
    )
    .await);
    assert_eq!(sent_messages(&up)[0]["content"], "version 1 for Cy");
    ok(chat(
        &gw,
        MASTER_KEY,
        json!({"prompt_id": "story.v2", "prompt_variables": vars}),
    )
    .await);
    assert_eq!(sent_messages(&up)[0]["content"], "version 2 for Cy");
    chat(
        &gw,
        MASTER_KEY,
        json!({"prompt_id": "story", "prompt_version": 9, "prompt_variables": vars}),
    )
    .await
    .assert_error(404);
    let info = ok(gw.get("/prompts/story.v1/info").await);
    assert_eq!(info["prompt_spec"]["version"], 1);

    // PATCH changes a version in place
    let patched = call(&gw, Method::PATCH, "/prompts/story", MASTER_KEY,
        json!({"litellm_params": {"prompt_integration": "dotprompt", "dotprompt_content": "---\nmodel: m\n---\nUser: patched {{ who }}"}})).await;
    assert_eq!(ok(patched)["version"], 3);
    ok(chat(
        &gw,
        MASTER_KEY,
        json!({"prompt_id": "story", "prompt_variables": vars}),
    )
    .await);
    assert_eq!(sent_messages(&up)[0]["content"], "patched Cy");
    assert_eq!(
        ok(gw.get("/prompts/list").await)["prompts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // non-admins change nothing
    let user = ok(gw.post("/key/generate", "{}").await)["key"]
        .as_str()
        .unwrap()
        .to_string();
    call(
        &gw,
        Method::POST,
        "/prompts",
        &user,
        stored("mine", "User: x"),
    )
    .await
    .assert_error(403);
    for m in [Method::PUT, Method::PATCH, Method::DELETE] {
        call(&gw, m, "/prompts/story", &user, stored("story", "User: x"))
            .await
            .assert_error(403);
    }
    call(
        &gw,
        Method::GET,
        "/prompts/story/versions",
        &user,
        Value::Null,
    )
    .await
    .assert_error(403);
    // ... and see none unless granted; they may still use an unrestricted prompt
    assert_eq!(
        ok(call(&gw, Method::GET, "/prompts/list", &user, Value::Null).await)["prompts"],
        json!([])
    );
    call(&gw, Method::GET, "/prompts/story", &user, Value::Null)
        .await
        .assert_error(403);
    ok(chat(
        &gw,
        &user,
        json!({"prompt_id": "story", "prompt_variables": vars}),
    )
    .await);

    // bad input
    for (body, field) in [
        (stored("", "User: x"), "prompt_id"),
        (stored("story.v4", "User: x"), "prompt_id"),
        (stored("bad", "{% for %}"), "litellm_params"),
        (stored("bad", "---\nmodel: [1]\n---\nx"), "litellm_params"),
        (
            json!({"prompt_id": "f", "litellm_params": {"prompt_integration": "dotprompt", "prompt_file": "/etc/passwd"}}),
            "litellm_params",
        ),
        (
            json!({"prompt_id": "f", "litellm_params": {"prompt_integration": "langfuse"}}),
            "litellm_params",
        ),
        (
            json!({"prompt_id": "f", "litellm_params": {}, "bogus": 1}),
            "bogus",
        ),
    ] {
        let e = gw
            .post("/prompts", &body.to_string())
            .await
            .assert_error(400);
        assert_eq!(e["error"]["param"], field, "{body}: {e}");
    }
    call(
        &gw,
        Method::PUT,
        "/prompts/nothing",
        MASTER_KEY,
        stored("nothing", "User: x"),
    )
    .await
    .assert_error(404);

    // DELETE removes every version; audit rows name each version
    let gone = ok(call(
        &gw,
        Method::DELETE,
        "/prompts/story",
        MASTER_KEY,
        Value::Null,
    )
    .await);
    assert_eq!(gone["message"], "Prompt story deleted successfully");
    chat(
        &gw,
        MASTER_KEY,
        json!({"prompt_id": "story", "prompt_variables": vars}),
    )
    .await
    .assert_error(404);
    call(
        &gw,
        Method::DELETE,
        "/prompts/story",
        MASTER_KEY,
        Value::Null,
    )
    .await
    .assert_error(404);
    let client = db.client().await;
    let rows = client
        .query("SELECT action, object_id FROM \"TianjiLLM_AuditLog\" WHERE table_name = 'TianjiLLM_PromptTable' ORDER BY updated_at, object_id", &[])
        .await
        .unwrap();
    let audit: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        audit,
        [
            ("created", "story.v1"),
            ("created", "story.v2"),
            ("created", "story.v3"),
            ("updated", "story.v3"),
            ("deleted", "story.v1"),
            ("deleted", "story.v2"),
            ("deleted", "story.v3"),
        ]
        .map(|(a, o)| (a.to_string(), o.to_string()))
    );
    let left: i64 = client
        .query_one("SELECT count(*) FROM \"TianjiLLM_PromptTable\"", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

#[tokio::test]
async fn key_and_team_prompt_lists_restrict_use() {
    let (_db, up, gw) = setup_with(false, "").await;
    for id in ["a", "b"] {
        ok(gw
            .post(
                "/prompts",
                &stored(id, &format!("---\nmodel: m\n---\nUser: prompt {id}")).to_string(),
            )
            .await);
    }
    let key_of = |r: Resp| ok(r)["key"].as_str().unwrap().to_string();
    let only_a = key_of(gw.post("/key/generate", r#"{"prompts": ["a"]}"#).await);
    ok(chat(&gw, &only_a, json!({"prompt_id": "a"})).await);
    assert_eq!(sent_messages(&up)[0]["content"], "prompt a");
    let e = chat(&gw, &only_a, json!({"prompt_id": "b"}))
        .await
        .assert_error(403);
    assert_eq!(e["error"]["param"], "prompt_id");
    // a granted prompt is listed and readable
    let list = ok(call(&gw, Method::GET, "/prompts/list", &only_a, Value::Null).await);
    assert_eq!(list["prompts"].as_array().unwrap().len(), 1);
    assert_eq!(list["prompts"][0]["prompt_id"], "a");
    ok(call(&gw, Method::GET, "/prompts/a", &only_a, Value::Null).await);
    call(&gw, Method::GET, "/prompts/b", &only_a, Value::Null)
        .await
        .assert_error(403);

    // a team's list intersects the key's
    ok(gw
        .post("/team/new", r#"{"team_id": "t1", "prompts": ["b"]}"#)
        .await);
    let in_team = key_of(gw.post("/key/generate", r#"{"team_id": "t1"}"#).await);
    ok(chat(&gw, &in_team, json!({"prompt_id": "b"})).await);
    chat(&gw, &in_team, json!({"prompt_id": "a"}))
        .await
        .assert_error(403);
    let both = key_of(
        gw.post("/key/generate", r#"{"team_id": "t1", "prompts": ["a"]}"#)
            .await,
    );
    chat(&gw, &both, json!({"prompt_id": "a"}))
        .await
        .assert_error(403);
    chat(&gw, &both, json!({"prompt_id": "b"}))
        .await
        .assert_error(403);

    // the template's model goes through the key's model access
    let no_m = key_of(gw.post("/key/generate", r#"{"models": ["m2"]}"#).await);
    let r = chat(&gw, &no_m, json!({"prompt_id": "a", "model": "m2"})).await;
    assert!(r.status.is_client_error(), "{}", r.text());
}

#[tokio::test]
async fn prompts_test_renders_and_calls_the_model() {
    let (_db, up, gw) = setup_with(false, "").await;
    let body = json!({"dotprompt_content": GREETING, "prompt_variables": {"name": "World"}});

    // spec US10 scenario 3: rendered, then an LLM call with the result (streamed, as LiteLLM)
    let r = gw.post("/prompts/test", &body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(
        r.text().contains("Hello") && r.text().trim_end().ends_with("data: [DONE]"),
        "{}",
        r.text()
    );
    let sent = up.last().json();
    assert_eq!(
        sent["messages"],
        json!([{"role": "system", "content": "You greet people."}, {"role": "user", "content": "Say hello to World."}])
    );
    assert_eq!(
        (
            sent["model"].clone(),
            sent["temperature"].clone(),
            sent["stream"].clone()
        ),
        (json!("x"), json!(0.3), json!(true))
    );

    // whole, with a conversation replacing the rendered user turn
    let mut whole = body.clone();
    whole["stream"] = json!(false);
    whole["conversation_history"] = json!([{"role": "user", "content": "hi again"}]);
    let r = ok(gw.post("/prompts/test", &whole.to_string()).await);
    assert_eq!(r["choices"][0]["message"]["content"], "Hello from the mock");
    assert_eq!(
        sent_messages(&up),
        json!([{"role": "system", "content": "You greet people."}, {"role": "user", "content": "hi again"}])
    );

    // the caller's model access applies
    let key = ok(gw.post("/key/generate", r#"{"models": ["m2"]}"#).await)["key"]
        .as_str()
        .unwrap()
        .to_string();
    let n = up.requests().len();
    let r = call(&gw, Method::POST, "/prompts/test", &key, body.clone()).await;
    assert!(r.status.is_client_error(), "{}", r.text());
    assert_eq!(up.requests().len(), n);

    // a missing variable is a 400 naming it; no model, no messages, no template: 400
    let e = gw
        .post(
            "/prompts/test",
            &json!({"dotprompt_content": GREETING}).to_string(),
        )
        .await
        .assert_error(400);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("'name'"),
        "{e}"
    );
    let e = gw
        .post(
            "/prompts/test",
            &json!({"dotprompt_content": "Hello {{ who }}", "prompt_variables": {}}).to_string(),
        )
        .await
        .assert_error(400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Model is required"),
        "{e}"
    );
    let e = gw
        .post(
            "/prompts/test",
            &json!({"dotprompt_content": "---\nmodel: m\n---\nHello {{ who }}"}).to_string(),
        )
        .await
        .assert_error(400);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("'who'"),
        "{e}"
    );
    gw.post(
        "/prompts/test",
        &json!({"dotprompt_content": "---\nmodel: m\n---\n{% if 0 %}x{% endif %}"}).to_string(),
    )
    .await
    .assert_error(400);
    gw.post("/prompts/test", "{}").await.assert_error(400);
    gw.post(
        "/prompts/test",
        &json!({"dotprompt_content": "---\nmodel: m\n---\n{{ x"}).to_string(),
    )
    .await
    .assert_error(400);
    assert_eq!(up.requests().len(), n);
}

#[tokio::test]
async fn templates_that_would_explode_are_refused() {
    let up = MockUpstream::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: m\n    tianji_params: {{model: openai/x, api_base: \"{}\", api_key: sk-up}}\nprompts:\n  - prompt_id: loop\n    litellm_params:\n      prompt_integration: dotprompt\n      dotprompt_content: \"---\\nmodel: m\\n---\\nUser: {{% for a in items %}}{{% for b in items %}}{{% for c in items %}}{{{{ a }}}}{{% endfor %}}{{% endfor %}}{{% endfor %}}\"\n",
        up.base()
    );
    let gw = TestGateway::start(&yaml).await;
    let items: Vec<u32> = (0..200).collect();
    let e = chat(
        &gw,
        MASTER_KEY,
        json!({"prompt_id": "loop", "prompt_variables": {"items": items}}),
    )
    .await
    .assert_error(400);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("work"),
        "{e}"
    );
    // a small input renders
    ok(chat(
        &gw,
        MASTER_KEY,
        json!({"prompt_id": "loop", "prompt_variables": {"items": [1, 2]}}),
    )
    .await);
    assert_eq!(sent_messages(&up)[0]["content"], "11112222");

    let doubling = format!(
        "---\nmodel: m\n---\n{{% set s = 'abcdefghijklmnop' %}}{}User: {{{{ s | length }}}}",
        "{% set s = s ~ s %}".repeat(40)
    );
    let n = up.requests().len();
    gw.post(
        "/prompts/test",
        &json!({"dotprompt_content": doubling}).to_string(),
    )
    .await
    .assert_error(400);
    let repeat = "---\nmodel: m\n---\nUser: {{ 'x' * 100000000 }}";
    gw.post(
        "/prompts/test",
        &json!({"dotprompt_content": repeat}).to_string(),
    )
    .await
    .assert_error(400);
    let long = json!({"dotprompt_content": "---\nmodel: m\n---\nUser: {{ d }}{{ d }}{{ d }}", "prompt_variables": {"d": "y".repeat(1024 * 1024)}});
    let e = gw
        .post("/prompts/test", &long.to_string())
        .await
        .assert_error(400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than"),
        "{e}"
    );
    // no code of the host is reachable: no macros, no includes, no imports
    for t in [
        "{% include '/etc/passwd' %}",
        "{% import 'x' as y %}",
        "{% macro m() %}{% endmacro %}",
    ] {
        let body = json!({"dotprompt_content": format!("---\nmodel: m\n---\nUser: {t}")});
        gw.post("/prompts/test", &body.to_string())
            .await
            .assert_error(400);
    }
    assert_eq!(up.requests().len(), n);
}

#[tokio::test]
async fn a_prompt_stored_on_one_instance_is_used_on_another() {
    let db = TestDb::create().await;
    let up = MockUpstream::with(Arc::new(crate::common::mock_upstream::default_reply)).await;
    let redis = std::env::var("TIANJI_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
    let yaml = format!(
        "model_list:\n  - model_name: m\n    tianji_params: {{model: openai/x, api_base: \"{b}\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\nrouter_settings:\n  redis_url: \"{redis}\"\n",
        b = up.base(),
        u = db.url
    );
    let a = TestGateway::start(&yaml).await;
    let b = TestGateway::start(&yaml).await;
    ok(a.post(
        "/prompts",
        &stored("shared", "---\nmodel: m\n---\nUser: shared one").to_string(),
    )
    .await);
    let used = eventually_async(Duration::from_secs(10), || async {
        chat(&b, MASTER_KEY, json!({"prompt_id": "shared"}))
            .await
            .status
            == 200
    })
    .await;
    assert!(used, "instance b never used the new prompt");
    assert_eq!(
        sent_messages(&up),
        json!([{"role": "user", "content": "shared one"}])
    );
    ok(call(
        &a,
        Method::DELETE,
        "/prompts/shared",
        MASTER_KEY,
        Value::Null,
    )
    .await);
    let gone = eventually_async(Duration::from_secs(10), || async {
        chat(&b, MASTER_KEY, json!({"prompt_id": "shared"}))
            .await
            .status
            == 404
    })
    .await;
    assert!(gone, "instance b still used the deleted prompt");
}

#[tokio::test]
async fn responses_requests_take_the_prompt_as_input() {
    let up = MockUpstream::with(Arc::new(crate::common::providers::responses)).await;
    let yaml = format!(
        "model_list:\n  - model_name: m\n    tianji_params: {{model: openai/x, api_base: \"{}\", api_key: sk-up}}\nprompts:\n  - prompt_id: sys\n    litellm_params: {{prompt_integration: dotprompt, dotprompt_content: \"System: answer in {{{{ lang }}}}\"}}\n",
        up.base()
    );
    let gw = TestGateway::start(&yaml).await;
    let r = call(&gw, Method::POST, "/v1/responses", MASTER_KEY,
        json!({"model": "m", "input": "hola", "prompt_id": "sys", "prompt_variables": {"lang": "Spanish"}})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = up.last().json();
    assert_eq!(
        sent["input"],
        json!([{"role": "system", "content": "answer in Spanish"}, {"role": "user", "content": "hola"}])
    );
    assert!(sent.get("prompt_id").is_none());
}
