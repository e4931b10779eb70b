//! MCP servers registered in the database (`/v1/mcp/server`, `TianjiLLM_MCPServerTable`):
//! CRUD with audit rows, credentials sealed at rest and hidden from non-admins, names unique
//! across config and database, stdio, private addresses and bad input refused;
//! `GET /v1/mcp/tools`; a server registered on one instance served by another (the official
//! SDK client through it) without a restart, and gone there once deleted.

use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use super::*;
use crate::common::db::TestDb;
use crate::common::eventually_async;
use crate::it::admin_keys::call;

/// The registered server's own credentials: never shown to non-admins, never in audit rows or
/// in the table in plain text.
const TOKEN: &str = "tok-db-server-4242";
const HEADER: &str = "hdr-db-value-7777";

fn config(db: &TestDb, extra: &str) -> String {
    format!(
        "general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n  store_audit_logs: true\n{extra}mcp_servers:\n  wiki:\n    url: http://127.0.0.1:9/mcp\n",
        u = db.url
    )
}

const ALLOW_PRIVATE: &str = "  mcp_allow_private_urls: true\n";

fn ok(r: Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// The body registering `name` at `url` (Streamable HTTP, a bearer token, a static header).
fn server_body(name: &str, url: &str) -> Value {
    json!({
        "server_name": name, "url": url, "transport": "http", "auth_type": "bearer_token",
        "credentials": {"auth_value": TOKEN}, "static_headers": {"x-static": HEADER},
        "description": "registered", "mcp_access_groups": ["dbgroup"],
        "mcp_info": {"mcp_server_cost_info": {"default_cost_per_query": 0.5}},
    })
}

async fn register(gw: &TestGateway, body: Value) -> String {
    let made = ok(call(gw, Method::POST, "/v1/mcp/server", MASTER_KEY, body).await);
    made["server_id"].as_str().unwrap().to_string()
}

fn names_of(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["server_name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_with_audit_rows_sealed_credentials_and_redaction() {
    let db = TestDb::create().await;
    let up = ToolServer::start("http").await;
    let gw = TestGateway::start(&config(&db, ALLOW_PRIVATE)).await;
    let id = register(&gw, server_body("dbwiki", &up.url())).await;

    // admins see the credentials; the table holds them sealed
    let path = format!("/v1/mcp/server/{id}");
    let got = ok(call(&gw, Method::GET, &path, MASTER_KEY, Value::Null).await);
    assert_eq!(got["server_name"], "dbwiki");
    assert_eq!(got["credentials"]["auth_value"], TOKEN);
    assert_eq!(got["static_headers"]["x-static"], HEADER);
    assert_eq!(got["transport"], "http");
    let raw = db
        .client()
        .await
        .query_one(
            "SELECT credentials::text, static_headers::text FROM \"TianjiLLM_MCPServerTable\"",
            &[],
        )
        .await
        .unwrap();
    let (c, h): (String, String) = (raw.get(0), raw.get(1));
    assert!(!c.contains(TOKEN) && c.contains("v3:gcm:"), "{c}");
    assert!(!h.contains(HEADER) && h.contains("v3:gcm:"), "{h}");

    // a key granted the server (by id) sees it, redacted; one granted another server does not
    let user = key(&gw, json!({"object_permission": {"mcp_servers": [id]}})).await;
    let other = key(&gw, json!({"object_permission": {"mcp_servers": ["wiki"]}})).await;
    let grouped = key(
        &gw,
        json!({"object_permission": {"mcp_access_groups": ["dbgroup"]}}),
    )
    .await;
    let list = call(&gw, Method::GET, "/v1/mcp/server", &user, Value::Null).await;
    assert!(
        !list.text().contains(TOKEN) && !list.text().contains(HEADER),
        "{}",
        list.text()
    );
    let list = ok(list);
    assert_eq!(names_of(&list), ["dbwiki"]);
    assert!(list[0]["credentials"].is_null());
    assert_eq!(list[0]["static_headers"]["x-static"], "REDACTED");
    let one = call(&gw, Method::GET, &path, &user, Value::Null).await;
    assert!(!one.text().contains(TOKEN));
    assert_eq!(ok(one)["server_id"], id.as_str());
    let list = ok(call(&gw, Method::GET, "/v1/mcp/server", &other, Value::Null).await);
    assert_eq!(names_of(&list), ["wiki"]);
    call(&gw, Method::GET, &path, &other, Value::Null)
        .await
        .assert_error(404);
    let list = ok(call(&gw, Method::GET, "/v1/mcp/server", &grouped, Value::Null).await);
    assert_eq!(names_of(&list), ["dbwiki"]);
    let list = ok(call(&gw, Method::GET, "/v1/mcp/server", MASTER_KEY, Value::Null).await);
    assert_eq!(names_of(&list), ["dbwiki", "wiki"]);

    // only admins write
    let body = server_body("x", &up.url());
    call(&gw, Method::POST, "/v1/mcp/server", &user, body)
        .await
        .assert_error(403);
    let change = json!({"description": "mine"});
    call(&gw, Method::PUT, &path, &user, change)
        .await
        .assert_error(403);
    call(&gw, Method::DELETE, &path, &user, Value::Null)
        .await
        .assert_error(403);

    // the tools the key may use, with their server
    let tools = ok(call(&gw, Method::GET, "/v1/mcp/tools", &user, Value::Null).await);
    let mut names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "dbwiki-add",
            "dbwiki-crash",
            "dbwiki-echo",
            "dbwiki-header",
            "dbwiki-secret",
            "dbwiki-slow"
        ]
    );
    assert_eq!(tools["tools"][0]["mcp_info"]["server_id"], id.as_str());
    assert_eq!(tools["tools"][0]["mcp_info"]["server_name"], "dbwiki");
    let q = format!("/v1/mcp/tools?server_id={id}");
    let one = ok(call(&gw, Method::GET, &q, &user, Value::Null).await);
    assert_eq!(one["tools"].as_array().unwrap().len(), 6);
    call(
        &gw,
        Method::GET,
        "/v1/mcp/tools?server_id=wiki",
        &user,
        Value::Null,
    )
    .await
    .assert_error(404);
    let none = ok(call(&gw, Method::GET, "/v1/mcp/tools", &other, Value::Null).await);
    // wiki (port 9) does not answer: left out, named in `error`
    assert_eq!(none["tools"], json!([]));
    assert!(none["error"].as_str().unwrap().contains("wiki"), "{none}");

    // PUT with server_id in the body, and on the path: the fields given change
    let by_body = json!({"server_id": id, "description": "changed", "allowed_tools": ["echo"]});
    let changed = ok(call(&gw, Method::PUT, "/v1/mcp/server", MASTER_KEY, by_body).await);
    assert_eq!(changed["description"], "changed");
    assert_eq!(changed["credentials"]["auth_value"], TOKEN);
    let renamed = json!({"server_name": "dbwiki2"});
    let changed = ok(call(&gw, Method::PUT, &path, MASTER_KEY, renamed).await);
    assert_eq!(changed["server_name"], "dbwiki2");
    assert_eq!(changed["allowed_tools"], json!(["echo"]));
    let tools = ok(call(&gw, Method::GET, &q, &user, Value::Null).await);
    assert_eq!(tools["tools"][0]["name"], "dbwiki2-echo");
    assert_eq!(tools["tools"].as_array().unwrap().len(), 1);

    let gone = ok(call(&gw, Method::DELETE, &path, MASTER_KEY, Value::Null).await);
    assert_eq!(
        gone["message"],
        format!("MCP server {id} deleted successfully")
    );
    call(&gw, Method::GET, &path, MASTER_KEY, Value::Null)
        .await
        .assert_error(404);
    call(&gw, Method::DELETE, &path, MASTER_KEY, Value::Null)
        .await
        .assert_error(404);
    call(&gw, Method::GET, &q, &user, Value::Null)
        .await
        .assert_error(404);

    // audit rows: created, updated twice, deleted; the secrets masked in every one
    let audit = call(
        &gw,
        Method::GET,
        &format!("/audit?table_name=mcp_servers&object_id={id}&page_size=50"),
        MASTER_KEY,
        Value::Null,
    )
    .await;
    assert!(
        !audit.text().contains(TOKEN) && !audit.text().contains(HEADER),
        "{}",
        audit.text()
    );
    let rows = ok(audit)["audit_logs"].as_array().unwrap().clone();
    let mut actions: Vec<&str> = rows.iter().map(|r| r["action"].as_str().unwrap()).collect();
    actions.sort();
    assert_eq!(actions, ["created", "deleted", "updated", "updated"]);
    for r in &rows {
        assert_eq!(r["table_name"], "TianjiLLM_MCPServerTable");
        assert_eq!(r["changed_by"], "alice@example.com");
    }
}

#[tokio::test]
async fn bad_names_stdio_private_addresses_and_bad_input_are_400s() {
    let db = TestDb::create().await;
    let gw = TestGateway::start(&config(&db, "")).await;
    let post = |body: Value| call(&gw, Method::POST, "/v1/mcp/server", MASTER_KEY, body);
    let field = |r: Resp| r.assert_error(400)["error"]["param"].clone();

    // loopback and metadata addresses without mcp_allow_private_urls
    for url in [
        "http://127.0.0.1:8000/mcp",
        "http://169.254.169.254/mcp",
        "http://localhost/mcp",
    ] {
        let r = post(server_body("s1", url)).await;
        assert!(r.text().contains("mcp_allow_private_urls"), "{}", r.text());
        assert_eq!(field(r), "url");
    }
    let public = "https://mcp.example.com/mcp";
    // names: the config's, the separator, taken in the database
    assert_eq!(
        field(post(server_body("wiki", public)).await),
        "server_name"
    );
    assert_eq!(
        field(post(server_body("my-server", public)).await),
        "server_name"
    );
    assert_eq!(field(post(json!({"url": public})).await), "server_name");
    register(&gw, server_body("first", public)).await;
    assert_eq!(
        field(post(server_body("first", public)).await),
        "server_name"
    );
    // stdio, a bad transport, auth type, URL, header, unknown field, wrong type
    let stdio = json!({"server_name": "local", "transport": "stdio", "command": "python"});
    assert_eq!(field(post(stdio).await), "transport");
    let stdio = json!({"server_name": "local", "url": public, "command": "python", "args": ["x"]});
    assert_eq!(field(post(stdio).await), "transport");
    let mut b = server_body("s2", public);
    b["transport"] = json!("pigeon");
    assert_eq!(field(post(b).await), "transport");
    let mut b = server_body("s2", public);
    b["auth_type"] = json!("oauth9");
    assert_eq!(field(post(b).await), "auth_type");
    assert_eq!(field(post(server_body("s2", "ftp://x/")).await), "url");
    let mut b = server_body("s2", public);
    b["static_headers"] = json!({"x-a": 5});
    assert_eq!(field(post(b).await), "static_headers");
    let mut b = server_body("s2", public);
    b["surprise"] = json!(1);
    assert_eq!(field(post(b).await), "surprise");
    let mut b = server_body("s2", public);
    b["allowed_tools"] = json!("echo");
    assert_eq!(field(post(b).await), "allowed_tools");
    let r = call(&gw, Method::POST, "/v1/mcp/server", MASTER_KEY, Value::Null).await;
    r.assert_error(400);
    let r = send(
        Method::POST,
        &gw.url("/v1/mcp/server"),
        &[("authorization", &format!("Bearer {MASTER_KEY}"))],
        bytes::Bytes::from_static(b"{not json"),
    )
    .await;
    r.assert_error(400);
    // PUT without an id, an unknown id
    let r = call(
        &gw,
        Method::PUT,
        "/v1/mcp/server",
        MASTER_KEY,
        json!({"description": "x"}),
    )
    .await;
    assert_eq!(field(r), "server_id");
    call(
        &gw,
        Method::PUT,
        "/v1/mcp/server/nope",
        MASTER_KEY,
        json!({"description": "x"}),
    )
    .await
    .assert_error(404);
    // only the one good server was stored
    let list = ok(call(&gw, Method::GET, "/v1/mcp/server", MASTER_KEY, Value::Null).await);
    assert_eq!(names_of(&list), ["first", "wiki"]);
}

/// The server names `key` lists on `gw`.
async fn listed(gw: &TestGateway, key: &str) -> Vec<String> {
    let r = call(gw, Method::GET, "/v1/mcp/server", key, Value::Null).await;
    names_of(&ok(r))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_registered_on_one_instance_is_served_by_another() {
    let db = TestDb::create().await;
    let up = ToolServer::start("http").await;
    let redis =
        std::env::var("TIANJI_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    // no mcp_servers at all: instance b starts without a server
    let yaml = format!(
        "general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n{ALLOW_PRIVATE}router_settings:\n  redis_url: \"{redis}\"\n",
        u = db.url
    );
    let a = TestGateway::start(&yaml).await;
    let b = TestGateway::start(&yaml).await;
    let user = key(
        &a,
        json!({"object_permission": {"mcp_servers": ["shared"]}}),
    )
    .await;
    let id = register(&a, server_body("shared", &up.url())).await;

    // b hears of it through the invalidation channel
    let seen = eventually_async(Duration::from_secs(10), || async {
        call(&b, Method::GET, "/v1/mcp/tools", &user, Value::Null)
            .await
            .json()["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    })
    .await;
    assert!(seen, "instance b never served the new server");
    assert_eq!(listed(&b, &user).await, ["shared"]);

    // the SDK client through b lists and calls its tools, with the stored credential sent
    let got = client(
        &b.url("/mcp"),
        &user,
        json!([
            {"op": "list"},
            {"op": "call", "name": "shared-echo", "args": {"text": "hi"}},
            {"op": "call", "name": "shared-header", "args": {"name": "authorization"}},
            {"op": "call", "name": "shared-header", "args": {"name": "x-static"}},
        ]),
    )
    .await;
    let tools: Vec<&str> = got[1]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        [
            "shared-add",
            "shared-crash",
            "shared-echo",
            "shared-header",
            "shared-secret",
            "shared-slow"
        ]
    );
    assert_eq!(got[2]["text"], "http:hi");
    assert_eq!(got[3]["text"], format!("Bearer {TOKEN}"));
    assert_eq!(got[4]["text"], HEADER);

    // deleted on a: gone on b
    let path = format!("/v1/mcp/server/{id}");
    ok(call(&a, Method::DELETE, &path, MASTER_KEY, Value::Null).await);
    let gone = eventually_async(Duration::from_secs(10), || async {
        listed(&b, &user).await.is_empty()
    })
    .await;
    assert!(gone, "instance b still serves the deleted server");
    let got = client(
        &b.url("/mcp"),
        &user,
        json!([{"op": "list"}, {"op": "call", "name": "shared-echo", "args": {"text": "hi"}}]),
    )
    .await;
    assert_eq!(got[1], json!([]));
    assert!(
        got[2].get("error").is_some() || got[2]["is_error"] == true,
        "{}",
        got[2]
    );
}

/// The text of a `tools/call` answer.
fn called(r: Resp) -> String {
    let v = ok(r);
    let text = &v["result"]["content"][0]["text"];
    text.as_str().unwrap_or_else(|| panic!("{v}")).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_or_deleted_server_ends_its_upstream_sessions() {
    let db = TestDb::create().await;
    let up = ToolServer::start("http").await;
    let gw = TestGateway::start(&config(&db, ALLOW_PRIVATE)).await;
    let id = register(&gw, server_body("live", &up.url())).await;
    let init = request(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    );
    let r = rpc(&gw, "/mcp", MASTER_KEY, &[], &init).await;
    let sid = r.header("mcp-session-id").unwrap().to_string();
    let session = [("mcp-session-id", sid.as_str())];
    let auth = request(
        2,
        "tools/call",
        json!({"name": "live-header", "arguments": {"name": "authorization"}}),
    );
    let r = rpc(&gw, "/mcp", MASTER_KEY, &session, &auth).await;
    assert_eq!(called(r), format!("Bearer {TOKEN}"));

    // a new credential: the session's upstream session with the old one is not reused
    let path = format!("/v1/mcp/server/{id}");
    let change = json!({"credentials": {"auth_value": "tok-new"}});
    ok(call(&gw, Method::PUT, &path, MASTER_KEY, change).await);
    let r = rpc(&gw, "/mcp", MASTER_KEY, &session, &auth).await;
    assert_eq!(called(r), "Bearer tok-new");

    // deleted: the session goes on without it
    ok(call(&gw, Method::DELETE, &path, MASTER_KEY, Value::Null).await);
    let r = rpc(&gw, "/mcp", MASTER_KEY, &session, &auth).await;
    let v = ok(r);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("live-header"),
        "{v}"
    );
    let list = request(3, "tools/list", json!({}));
    let v = ok(rpc(&gw, "/mcp", MASTER_KEY, &session, &list).await);
    assert_eq!(v["result"]["tools"], json!([]), "{v}");
}
