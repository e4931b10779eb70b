//! Issue 19, items 3 and 6: credentials in `api_base` never shown (answers, error messages,
//! stored health checks and spend rows, logs), and provider credentials of database models
//! encrypted at rest with the salt key.

use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use crate::common::db::TestDb;
use crate::common::mock_upstream::MockUpstream;
use crate::common::{MASTER_KEY, Resp, TestGateway, eventually, eventually_async};
use crate::it::admin_keys::call;

/// The password in `api_base` userinfo, and the secret in its query.
const PASSWORD: &str = "hunter2pw";
const QUERY_SECRET: &str = "sekrit42";

/// The first secret `text` shows, if any.
fn leak(text: &str) -> Option<&'static str> {
    [PASSWORD, QUERY_SECRET, "alice:"]
        .into_iter()
        .find(|s| text.contains(s))
}

fn assert_no_leak(what: &str, text: &str) {
    if let Some(s) = leak(text) {
        panic!("{what} shows `{s}`: {text}");
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn models_yaml(dead_port: u16, up: &MockUpstream) -> String {
    format!(
        "model_list:\n  - model_name: dead\n    tianji_params: {{model: openai/x, api_base: \"http://alice:{PASSWORD}@127.0.0.1:{dead_port}/v1?api_key={QUERY_SECRET}&v=1\", api_key: sk-dead, max_retries: 0}}\n  - model_name: live\n    tianji_params: {{model: openai/y, api_base: \"http://alice:{PASSWORD}@{addr}/v1\", api_key: sk-live}}\n",
        addr = up.addr
    )
}

async fn chat(gw: &TestGateway, key: &str, model: &str) -> Resp {
    call(
        gw,
        Method::POST,
        "/v1/chat/completions",
        key,
        json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
}

async fn get(gw: &TestGateway, path: &str) -> Resp {
    let r = call(gw, Method::GET, path, MASTER_KEY, Value::Null).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r
}

#[tokio::test]
async fn api_base_credentials_are_never_shown() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let dead = closed_port();
    let yaml = format!(
        "{}general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{}\"\n  proxy_batch_write_at: 0.1\n",
        models_yaml(dead, &up),
        db.url
    );
    let gw = TestGateway::start(&yaml).await;
    let key = call(&gw, Method::POST, "/key/generate", MASTER_KEY, json!({}))
        .await
        .json()["key"]
        .as_str()
        .unwrap()
        .to_string();

    // a virtual key sees no upstream address at all
    let r = chat(&gw, &key, "dead").await;
    assert_eq!(r.status, 502, "{}", r.text());
    let text = r.text();
    assert_no_leak("502 to a virtual key", &text);
    assert!(
        !text.contains("127.0.0.1") && !text.contains("http"),
        "502 to a virtual key names the upstream: {text}"
    );
    assert_eq!(r.json()["error"]["type"], "api_connection_error");

    // an admin sees where, redacted (userinfo is never sent upstream: it is not in the URL
    // called at all)
    let r = chat(&gw, MASTER_KEY, "dead").await;
    assert_eq!(r.status, 502, "{}", r.text());
    let text = r.text();
    assert_no_leak("502 to the master key", &text);
    assert!(
        text.contains(&format!("http://127.0.0.1:{dead}/v1?api_key=***&v=1")),
        "{text}"
    );

    // a deployment with userinfo still works; its api_base header shows no credentials
    let r = chat(&gw, &key, "live").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let shown = r.header("x-tianji-model-api-base").unwrap_or_default();
    assert_no_leak("x-tianji-model-api-base", shown);
    assert_eq!(shown, format!("http://{}/v1", up.addr));

    for path in ["/model/info", "/v1/model/info", "/model_group/info"] {
        assert_no_leak(path, &get(&gw, path).await.text());
    }
    assert!(get(&gw, "/model/info").await.text().contains("***@"));

    let health = get(&gw, "/health").await;
    assert_no_leak("/health", &health.text());
    let h = health.json();
    assert_eq!(h["unhealthy_count"], 1, "{h}");
    assert_eq!(h["healthy_count"], 1, "{h}");
    let history = get(&gw, "/health/history").await;
    assert_no_leak("/health/history", &history.text());
    assert_eq!(history.json()["total"], 2);
    let client = db.client().await;
    for table in ["TianjiLLM_HealthCheckTable", "TianjiLLM_SpendLogs"] {
        let sql =
            format!("SELECT coalesce(string_agg(to_jsonb(t)::text, ' '), '') FROM \"{table}\" t");
        let read = || async {
            client
                .query_one(&sql, &[])
                .await
                .unwrap()
                .get::<_, String>(0)
        };
        if table == "TianjiLLM_SpendLogs" {
            // spend rows are written in batches: wait for the three calls
            eventually_async(Duration::from_secs(10), || async {
                read().await.matches("\"request_id\"").count() >= 3
            })
            .await;
        }
        let stored = read().await;
        assert!(!stored.is_empty(), "{table} is empty");
        assert_no_leak(table, &stored);
    }
}

/// The gateway's own log (debug level) names no credential of an `api_base`.
#[tokio::test]
async fn api_base_credentials_are_never_logged() {
    use std::io::{Read, Seek, Write};
    let up = MockUpstream::start().await;
    let dead = closed_port();
    let yaml = format!(
        "{}general_settings:\n  master_key: {MASTER_KEY}\n",
        models_yaml(dead, &up)
    );
    let mut cfg = tempfile::NamedTempFile::new().unwrap();
    cfg.write_all(yaml.as_bytes()).unwrap();
    let mut log = tempfile::tempfile().unwrap();
    let port = closed_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tianji"))
        .args(["--config", cfg.path().to_str().unwrap()])
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .env("TIANJI_LOG", "debug")
        .stdout(std::process::Stdio::null())
        .stderr(log.try_clone().unwrap())
        .spawn()
        .unwrap();
    let ready = eventually(Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    assert!(ready, "gateway process did not start");
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let auth = format!("Bearer {MASTER_KEY}");
    let h = [("authorization", auth.as_str())];
    for model in ["dead", "live"] {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
        let r = crate::common::send(
            Method::POST,
            &url("/v1/chat/completions"),
            &h,
            body.to_string().into(),
        )
        .await;
        assert_eq!(
            r.status,
            if model == "dead" { 502 } else { 200 },
            "{}",
            r.text()
        );
    }
    let r = crate::common::send(Method::GET, &url("/health"), &h, Default::default()).await;
    assert_eq!(r.status, 200);
    let _ = child.kill();
    let _ = child.wait();
    let mut text = String::new();
    log.rewind().unwrap();
    log.read_to_string(&mut text).unwrap();
    assert!(
        text.contains("request failed"),
        "the 502 was not logged: {text}"
    );
    assert_no_leak("the log", &text);
}

const SALT: &str = "test-salt-issue-19";

fn salted_yaml(db: &TestDb, up: &MockUpstream) -> String {
    format!(
        "model_list:\n  - model_name: cfg\n    tianji_params: {{model: openai/c, api_base: \"{b}\", api_key: sk-cfg}}\nenvironment_variables:\n  TIANJI_SALT_KEY: {SALT}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n  store_audit_logs: true\n",
        b = up.base(),
        u = db.url
    )
}

/// The stored `tianji_params` of a database model.
async fn stored(db: &TestDb, id: &str) -> Value {
    db.client()
        .await
        .query_one(
            "SELECT tianji_params FROM \"TianjiLLM_ProxyModelTable\" WHERE model_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0)
}

fn assert_encrypted(v: &Value, plain: &str) {
    let s = v.as_str().unwrap_or_default();
    assert!(s.starts_with("v3:gcm:"), "not encrypted: {v}");
    let c = tianji::secrets::AtRest::new(SALT).unwrap();
    assert_eq!(c.decrypt(s, "test").unwrap(), plain);
}

fn header<'a>(r: &'a crate::common::mock_upstream::Recorded, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn database_model_credentials_are_encrypted_at_rest() {
    let db = TestDb::create().await;
    let up = MockUpstream::start().await;
    let yaml = salted_yaml(&db, &up);
    let first = TestGateway::start(&yaml).await;

    // a row written in plain text (an older version, or by hand) before the next start
    let legacy = json!({
        "model": "openai/legacy-up", "api_base": up.base(), "api_key": "sk-legacy-plain",
        "extra_headers": {"x-legacy": "hdr-legacy-plain"}, "rpm": 100,
    });
    db.client()
        .await
        .execute(
            "INSERT INTO \"TianjiLLM_ProxyModelTable\" (model_id, model_name, tianji_params, model_info, created_by, updated_by) VALUES ('legacy-1', 'legacy', $1, '{}', 'test', 'test')",
            &[&legacy],
        )
        .await
        .unwrap();
    first.gw.shutdown().await;
    let gw = TestGateway::start(&yaml).await;
    let row = stored(&db, "legacy-1").await;
    assert_eq!(row["model"], "openai/legacy-up");
    assert_eq!(row["rpm"], 100);
    assert_encrypted(&row["api_key"], "sk-legacy-plain");
    assert_encrypted(&row["extra_headers"]["x-legacy"], "hdr-legacy-plain");
    assert_encrypted(&row["api_base"], &up.base());
    let r = chat(&gw, MASTER_KEY, "legacy").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = up.last();
    assert_eq!(header(&seen, "authorization"), "Bearer sk-legacy-plain");
    assert_eq!(header(&seen, "x-legacy"), "hdr-legacy-plain");

    // created through the API: stored encrypted, never echoed
    let made = call(
        &gw,
        Method::POST,
        "/model/new",
        MASTER_KEY,
        json!({"model_name": "dbm", "tianji_params": {
            "model": "openai/dbm-up", "api_base": up.base(), "api_key": "sk-db-secret-1",
            "extra_headers": {"x-upstream-token": "hdr-secret-2"},
        }}),
    )
    .await;
    assert_eq!(made.status, 200, "{}", made.text());
    let text = made.text();
    for s in ["sk-db-secret-1", "hdr-secret-2", "v3:gcm:"] {
        assert!(!text.contains(s), "/model/new shows {s}: {text}");
    }
    let made = made.json();
    assert_eq!(made["tianji_params"]["api_key"], "********");
    assert_eq!(
        made["tianji_params"]["extra_headers"]["x-upstream-token"],
        "********"
    );
    assert_eq!(made["tianji_params"]["api_base"], up.base());
    let id = made["model_id"].as_str().unwrap().to_string();
    let row = stored(&db, &id).await;
    assert_encrypted(&row["api_key"], "sk-db-secret-1");
    assert_encrypted(&row["extra_headers"]["x-upstream-token"], "hdr-secret-2");
    let r = chat(&gw, MASTER_KEY, "dbm").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = up.last();
    assert_eq!(header(&seen, "authorization"), "Bearer sk-db-secret-1");
    assert_eq!(header(&seen, "x-upstream-token"), "hdr-secret-2");

    // an update merges into the decrypted parameters and stores them encrypted again
    let upd = call(
        &gw,
        Method::POST,
        "/model/update",
        MASTER_KEY,
        json!({"model_id": id, "tianji_params": {"extra_headers": {"x-upstream-token": "hdr-secret-3"}}}),
    )
    .await;
    assert_eq!(upd.status, 200, "{}", upd.text());
    for s in ["sk-db-secret-1", "hdr-secret-3", "v3:gcm:"] {
        assert!(!upd.text().contains(s), "/model/update shows {s}");
    }
    let row = stored(&db, &id).await;
    assert_encrypted(&row["api_key"], "sk-db-secret-1");
    assert_encrypted(&row["extra_headers"]["x-upstream-token"], "hdr-secret-3");
    let r = chat(&gw, MASTER_KEY, "dbm").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = up.last();
    assert_eq!(header(&seen, "authorization"), "Bearer sk-db-secret-1");
    assert_eq!(header(&seen, "x-upstream-token"), "hdr-secret-3");

    // nothing shows them: model info, the audit log
    let info = get(&gw, "/model/info").await.text();
    let audit: String = db
        .client()
        .await
        .query_one(
            "SELECT coalesce(string_agg(to_jsonb(a)::text, ' '), '') FROM \"TianjiLLM_AuditLog\" a",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(audit.contains(&id), "no audit rows: {audit}");
    for text in [info, audit] {
        for s in [
            "sk-db-secret-1",
            "hdr-secret-2",
            "hdr-secret-3",
            "sk-legacy-plain",
            "hdr-legacy-plain",
            "v3:gcm:",
        ] {
            assert!(!text.contains(s), "shows {s}: {text}");
        }
    }
}
