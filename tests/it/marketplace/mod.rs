//! Issue 26, item 3: the Claude Code plugin marketplace. Spec US7 scenarios 1–4 (register, the
//! public catalogue, enable, disable, delete), the plugin CRUD with audit rows, bad input (400
//! with JSON bodies naming the field), `claude_code_marketplace_auth_required` (401 with
//! `WWW-Authenticate: Bearer`), keys and teams granted a disabled plugin through
//! `object_permission.skills`, and the catalogue validated with the `jsonschema` package against
//! the schema written from Claude Code's documentation (tests/python/).

use std::io::Write;
use std::process::{Command, Stdio};

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::common::{MASTER_KEY, Resp, TestGateway, send};
use crate::it::admin_keys::{call, setup, setup_with};

fn ok(r: Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

async fn post(gw: &TestGateway, path: &str, key: &str, body: Value) -> Resp {
    call(gw, Method::POST, path, key, body).await
}

/// `GET /claude-code/marketplace.json` with these headers (none: the public catalogue).
async fn catalogue_with(gw: &TestGateway, path: &str, headers: &[(&str, &str)]) -> Resp {
    send(Method::GET, &gw.url(path), headers, Bytes::new()).await
}

/// The plugin names of the public catalogue.
async fn public_names(gw: &TestGateway) -> Vec<String> {
    names(&ok(catalogue_with(
        gw,
        "/claude-code/marketplace.json",
        &[],
    )
    .await))
}

fn names(catalogue: &Value) -> Vec<String> {
    catalogue["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

async fn register(gw: &TestGateway, body: Value) -> Value {
    ok(post(gw, "/claude-code/plugins", MASTER_KEY, body).await)
}

async fn key(gw: &TestGateway, body: Value) -> String {
    let made = ok(post(gw, "/key/generate", MASTER_KEY, body).await);
    made["key"].as_str().unwrap().to_string()
}

/// Validate `catalogue` against the Claude Code marketplace schema (tests/python/).
fn assert_schema_valid(catalogue: &Value) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/marketplace_schema.py"
    );
    let mut child = Command::new(crate::it::sdk::python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    let text = catalogue.to_string();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "schema errors:\n{}{}\nfor {catalogue:#}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn us7_register_list_enable_disable_delete() {
    let (_db, _up, gw) = setup(true).await;
    // Scenario 1: a registered plugin is in the public catalogue (no key).
    let made = register(
        &gw,
        json!({
            "name": "code-review",
            "source": {"source": "github", "repo": "acme/code-review"},
            "version": "1.2.0",
            "description": "Reviews code",
            "author": {"name": "Acme", "email": "dev@acme.example"},
            "homepage": "https://acme.example/code-review",
            "keywords": ["review", "quality"],
            "category": "productivity",
            "installation_preference": "auto",
        }),
    )
    .await;
    assert_eq!(made["status"], "success");
    assert_eq!(made["action"], "created");
    assert_eq!(made["plugin"]["name"], "code-review");
    assert_eq!(made["plugin"]["enabled"], true);
    assert!(made["plugin"]["id"].is_string());
    register(
        &gw,
        json!({"name": "lint-rules", "source": {"source": "git-subdir", "url": "https://github.com/acme/mono.git", "path": "plugins/lint"}}),
    )
    .await;
    register(
        &gw,
        json!({"name": "docs-helper", "source": {"source": "url", "url": "https://git.acme.example/docs-helper.git"}}),
    )
    .await;

    let catalogue = ok(catalogue_with(&gw, "/claude-code/marketplace.json", &[]).await);
    assert_eq!(
        names(&catalogue),
        ["code-review", "docs-helper", "lint-rules"]
    );
    let entry = &catalogue["plugins"][0];
    assert_eq!(
        entry["source"],
        json!({"source": "github", "repo": "acme/code-review"})
    );
    assert_eq!(entry["version"], "1.2.0");
    assert_eq!(entry["author"]["name"], "Acme");
    assert_eq!(entry["keywords"], json!(["review", "quality"]));
    assert_eq!(entry["installationPreference"], "auto");
    assert_schema_valid(&catalogue);

    // The management list and one plugin.
    let list = ok(call(
        &gw,
        Method::GET,
        "/claude-code/plugins",
        MASTER_KEY,
        Value::Null,
    )
    .await);
    assert_eq!(list["count"], 3);
    let one = ok(call(
        &gw,
        Method::GET,
        "/claude-code/plugins/code-review",
        MASTER_KEY,
        Value::Null,
    )
    .await);
    assert_eq!(one["category"], "productivity");
    assert_eq!(one["source"]["repo"], "acme/code-review");

    // Scenario 3: disable takes it out of the catalogue.
    let off = ok(post(
        &gw,
        "/claude-code/plugins/code-review/disable",
        MASTER_KEY,
        Value::Null,
    )
    .await);
    assert_eq!(
        off,
        json!({"status": "success", "message": "Plugin 'code-review' disabled"})
    );
    assert_eq!(public_names(&gw).await, ["docs-helper", "lint-rules"]);
    let enabled_only = ok(call(
        &gw,
        Method::GET,
        "/claude-code/plugins?enabled_only=true",
        MASTER_KEY,
        Value::Null,
    )
    .await);
    assert_eq!(enabled_only["count"], 2);

    // Scenario 2: enable brings it back.
    let on = ok(post(
        &gw,
        "/claude-code/plugins/code-review/enable",
        MASTER_KEY,
        Value::Null,
    )
    .await);
    assert_eq!(on["message"], "Plugin 'code-review' enabled");
    assert_eq!(
        public_names(&gw).await,
        ["code-review", "docs-helper", "lint-rules"]
    );

    // PUT changes the given fields only.
    let put = ok(call(
        &gw,
        Method::PUT,
        "/claude-code/plugins/code-review",
        MASTER_KEY,
        json!({"version": "2.0.0", "keywords": ["review"]}),
    )
    .await);
    assert_eq!(put["action"], "updated");
    assert_eq!(put["plugin"]["version"], "2.0.0");
    assert_eq!(put["plugin"]["keywords"], json!(["review"]));
    assert_eq!(put["plugin"]["category"], "productivity");
    assert_eq!(put["plugin"]["description"], "Reviews code");

    // Scenario 4: delete removes it.
    let gone = ok(call(
        &gw,
        Method::DELETE,
        "/claude-code/plugins/code-review",
        MASTER_KEY,
        Value::Null,
    )
    .await);
    assert_eq!(
        gone,
        json!({"status": "success", "message": "Plugin 'code-review' deleted"})
    );
    assert_eq!(public_names(&gw).await, ["docs-helper", "lint-rules"]);
    let missing = call(
        &gw,
        Method::GET,
        "/claude-code/plugins/code-review",
        MASTER_KEY,
        Value::Null,
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json()["error"]["message"],
        "Plugin 'code-review' not found"
    );

    // Every change has its audit row.
    let audit = ok(call(
        &gw,
        Method::GET,
        "/audit?table_name=plugins",
        MASTER_KEY,
        Value::Null,
    )
    .await);
    let rows = audit["audit_logs"].as_array().unwrap();
    let mut actions: Vec<&str> = rows.iter().map(|r| r["action"].as_str().unwrap()).collect();
    actions.sort();
    assert_eq!(
        actions,
        [
            "created", "created", "created", "deleted", "updated", "updated", "updated"
        ]
    );
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field_and_writes_are_for_admins() {
    let (_db, _up, gw) = setup(false).await;
    let github = json!({"source": "github", "repo": "o/r"});
    let cases = [
        (json!({"name": "Bad_Name", "source": github}), "name"),
        (json!({"name": "a--b", "source": github}), "name"),
        (json!({"name": "p"}), "source"),
        (
            json!({"name": "p", "source": {"source": "ftp", "url": "ftp://x"}}),
            "source.source",
        ),
        (
            json!({"name": "p", "source": {"source": "github", "repo": "no-owner"}}),
            "source.repo",
        ),
        (
            json!({"name": "p", "source": {"source": "url"}}),
            "source.url",
        ),
        (
            json!({"name": "p", "source": {"source": "git-subdir", "url": "https://h/r.git", "path": "../up"}}),
            "source.path",
        ),
        (
            json!({"name": "p", "source": {"source": "archive", "url": "http://e.example/p.zip"}}),
            "source.url",
        ),
        (
            json!({"name": "p", "source": {"source": "archive", "url": "https://e.example/p.zip", "sha256": "abc"}}),
            "source.sha256",
        ),
        (
            json!({"name": "p", "source": github, "author": "just a string"}),
            "author",
        ),
        (
            json!({"name": "p", "source": github, "colour": "red"}),
            "colour",
        ),
        (
            json!({"name": "p", "source": github, "keywords": "one"}),
            "keywords",
        ),
    ];
    for (body, field) in cases {
        let r = post(&gw, "/claude-code/plugins", MASTER_KEY, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let err = r.json()["error"].clone();
        assert_eq!(err["param"], field, "{body}: {err}");
        assert_eq!(err["type"], "bad_request_error");
    }
    let r = post(
        &gw,
        "/claude-code/plugins",
        MASTER_KEY,
        json!({"name": "p", "source": {"source": "svn"}}),
    )
    .await;
    assert_eq!(
        r.json()["error"]["message"],
        "source.source: source.source must be 'github', 'url', 'git-subdir', or 'archive'"
    );
    // nothing was stored
    assert_eq!(public_names(&gw).await, Vec::<String>::new());

    // an archive with https and a sha256 is fine; the same name twice is not
    let archive =
        json!({"source": "archive", "url": "https://e.example/p.zip", "sha256": "ab".repeat(32)});
    register(&gw, json!({"name": "p", "source": archive})).await;
    let again = post(
        &gw,
        "/claude-code/plugins",
        MASTER_KEY,
        json!({"name": "p", "source": github}),
    )
    .await;
    assert_eq!(again.status, 400);
    assert_eq!(
        again.json()["error"]["message"],
        "name: Plugin 'p' already exists"
    );
    let renamed = call(
        &gw,
        Method::PUT,
        "/claude-code/plugins/p",
        MASTER_KEY,
        json!({"name": "q"}),
    )
    .await;
    assert_eq!(renamed.status, 400);
    for path in [
        "/claude-code/plugins/nope/enable",
        "/claude-code/plugins/nope/disable",
    ] {
        assert_eq!(post(&gw, path, MASTER_KEY, Value::Null).await.status, 404);
    }
    let del = call(
        &gw,
        Method::DELETE,
        "/claude-code/plugins/nope",
        MASTER_KEY,
        Value::Null,
    )
    .await;
    assert_eq!(del.status, 404);

    // a plain key may not register, change or delete
    let plain = key(&gw, json!({})).await;
    let body = json!({"name": "x", "source": github});
    assert_eq!(
        post(&gw, "/claude-code/plugins", &plain, body).await.status,
        403
    );
    assert_eq!(
        post(&gw, "/claude-code/plugins/p/disable", &plain, Value::Null)
            .await
            .status,
        403
    );
    let d = call(
        &gw,
        Method::DELETE,
        "/claude-code/plugins/p",
        &plain,
        Value::Null,
    )
    .await;
    assert_eq!(d.status, 403);
    assert_eq!(public_names(&gw).await, ["p"]);
}

#[tokio::test]
async fn auth_required_mode_asks_for_a_key() {
    let extra = "  claude_code_marketplace_auth_required: true\n";
    let (_db, _up, gw) = setup_with(false, extra).await;
    register(
        &gw,
        json!({"name": "p", "source": {"source": "github", "repo": "o/r"}}),
    )
    .await;
    let path = "/claude-code/marketplace.json";
    let none = catalogue_with(&gw, path, &[]).await;
    assert_eq!(none.status, 401, "{}", none.text());
    assert_eq!(none.headers["www-authenticate"], "Bearer");
    assert!(none.json()["error"]["message"].is_string());
    let bad = catalogue_with(&gw, path, &[("authorization", "Bearer sk-not-a-key")]).await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.headers["www-authenticate"], "Bearer");

    let k = key(&gw, json!({})).await;
    let bearer = format!("Bearer {k}");
    let with_key = ok(catalogue_with(&gw, path, &[("authorization", &bearer)]).await);
    assert_eq!(names(&with_key), ["p"]);
    let own_header = ok(catalogue_with(&gw, path, &[("x-tianji-api-key", &k)]).await);
    assert_eq!(names(&own_header), ["p"]);
    let in_query = ok(catalogue_with(&gw, &format!("{path}?key={k}"), &[]).await);
    assert_eq!(names(&in_query), ["p"]);
}

#[tokio::test]
async fn keys_and_teams_granted_a_disabled_plugin_see_it() {
    let (_db, _up, gw) = setup(false).await;
    for name in ["open", "hidden", "secret"] {
        let repo = format!("acme/{name}");
        register(
            &gw,
            json!({"name": name, "source": {"source": "github", "repo": repo}}),
        )
        .await;
    }
    for name in ["hidden", "secret"] {
        let path = format!("/claude-code/plugins/{name}/disable");
        ok(post(&gw, &path, MASTER_KEY, Value::Null).await);
    }
    let path = "/claude-code/marketplace.json";
    assert_eq!(public_names(&gw).await, ["open"]);

    let granted = key(&gw, json!({"object_permission": {"skills": ["hidden"]}})).await;
    let seen = ok(catalogue_with(
        &gw,
        path,
        &[("authorization", &format!("Bearer {granted}"))],
    )
    .await);
    assert_eq!(names(&seen), ["hidden", "open"]);
    assert_schema_valid(&seen);

    let other = key(&gw, json!({})).await;
    let seen = ok(catalogue_with(&gw, &format!("{path}?key={other}"), &[]).await);
    assert_eq!(names(&seen), ["open"]);

    let team = ok(post(
        &gw,
        "/team/new",
        MASTER_KEY,
        json!({"object_permission": {"skills": ["secret"]}}),
    )
    .await);
    let member = key(&gw, json!({"team_id": team["team_id"]})).await;
    let seen = ok(catalogue_with(&gw, &format!("{path}?key={member}"), &[]).await);
    assert_eq!(names(&seen), ["open", "secret"]);
}
