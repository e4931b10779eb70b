//! Keys listing and calling tools through the SDK client: permissions by server, access group,
//! tool list and blocked tool; both upstream transports with the configured credentials;
//! `/mcp/{server}` and `x-mcp-servers`; `mcp_rpm_limit`; SpendLogs rows with the tool's cost;
//! upstream servers that hang or die mid-call.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::common::db::TestDb;
use crate::common::eventually_async;

fn config(db: &TestDb, servers: &str) -> String {
    format!(
        "general_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n  proxy_batch_write_at: 0.1\nenvironment_variables:\n  WIKI_TOKEN: tok-upstream-7\nmcp_servers:\n{servers}",
        u = db.url
    )
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

fn tools(server: &str, list: &[&str]) -> Vec<String> {
    list.iter().map(|t| format!("{server}-{t}")).collect()
}

const ALL: &[&str] = &["add", "crash", "echo", "header", "secret", "slow"];

async fn spend_rows(db: &TestDb, n: usize) -> Vec<tokio_postgres::Row> {
    let sql = "SELECT mcp_namespaced_tool_name, spend, model, custom_llm_provider, status, api_key, call_type, metadata::text, model_group FROM \"TianjiLLM_SpendLogs\" ORDER BY \"startTime\"";
    let done = eventually_async(Duration::from_secs(15), || async {
        db.client().await.query(sql, &[]).await.unwrap().len() >= n
    })
    .await;
    let got = db.client().await.query(sql, &[]).await.unwrap();
    assert!(done, "SpendLogs has {} rows, wanted {n}", got.len());
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_see_and_call_their_tools_through_both_transports() {
    let db = TestDb::create().await;
    let (wiki, legacy) = (
        ToolServer::start("http").await,
        ToolServer::start("sse").await,
    );
    let servers = format!(
        "  wiki:\n    url: {w}\n    auth_type: bearer_token\n    auth_value: os.environ/WIKI_TOKEN\n    mcp_info:\n      mcp_server_cost_info:\n        default_cost_per_query: 0.25\n        tool_name_to_cost_per_query: {{add: 1.5}}\n  legacy:\n    url: {l}\n    transport: sse\n    static_headers: {{x-upstream: fixed-9}}\n    access_groups: [old]\n",
        w = wiki.url(),
        l = legacy.url()
    );
    let gw = TestGateway::start(&config(&db, &servers)).await;
    let a = key(
        &gw,
        json!({"user_id": "mcp-user", "object_permission": {"mcp_servers": ["wiki"], "blocked_tools": ["wiki-secret"]}}),
    )
    .await;
    let b = key(
        &gw,
        json!({"object_permission": {"mcp_servers": ["wiki"], "mcp_access_groups": ["old"],
            "mcp_tool_permissions": {"wiki": ["echo"]}}}),
    )
    .await;
    let url = gw.url("/mcp");

    let got = client(
        &url,
        &a,
        json!([
            {"op": "list"},
            {"op": "call", "name": "wiki-echo", "args": {"text": "hi"}},
            {"op": "call", "name": "wiki-header", "args": {"name": "authorization"}},
            {"op": "call", "name": "wiki-add", "args": {"a": 2, "b": 3}},
            {"op": "call", "name": "legacy-echo", "args": {"text": "no"}},
            {"op": "call", "name": "wiki-secret"},
            {"op": "call", "name": "nope-echo"},
            {"op": "prompts"},
            {"op": "prompt", "name": "wiki-greet", "args": {"who": "Ann"}},
            {"op": "resources"},
            {"op": "read", "uri": "notes://today"},
        ]),
    )
    .await;
    assert!(
        got[0]["session"].as_str().is_some_and(|s| !s.is_empty()),
        "{got:?}"
    );
    let mut want = tools("wiki", ALL);
    want.retain(|t| t != "wiki-secret");
    assert_eq!(names(&got[1]), want);
    assert_eq!(got[2], json!({"text": "http:hi", "is_error": false}));
    // the server's own credential, never the caller's gateway key
    assert_eq!(got[3]["text"], "Bearer tok-upstream-7");
    assert_eq!(got[4]["text"], "5");
    for (i, name) in [(5, "legacy-echo"), (6, "wiki-secret"), (7, "nope-echo")] {
        assert_eq!(got[i]["code"], -32602, "{name}: {}", got[i]);
        assert_eq!(got[i]["error"], format!("Unknown tool: {name}"));
    }

    // prompts and resources of the servers the key may use
    assert_eq!(names(&got[8]), ["wiki-greet"]);
    assert_eq!(got[9], "Hello Ann from http");
    assert_eq!(names(&got[10]), ["wiki-today notes://today"]);
    assert_eq!(got[11], "notes of http");

    let got = client(
        &url,
        &b,
        json!([
            {"op": "list"},
            {"op": "call", "name": "legacy-echo", "args": {"text": "yo"}},
            {"op": "call", "name": "legacy-header", "args": {"name": "x-upstream"}},
            {"op": "call", "name": "wiki-add", "args": {"a": 1, "b": 1}},
        ]),
    )
    .await;
    let mut want = tools("legacy", ALL);
    want.push("wiki-echo".into());
    assert_eq!(names(&got[1]), want);
    assert_eq!(got[2], json!({"text": "sse:yo", "is_error": false}));
    assert_eq!(got[3]["text"], "fixed-9");
    assert_eq!(got[4]["code"], -32602);

    // one server by path; the header narrows too
    let got = client(&gw.url("/mcp/legacy"), &b, json!([{"op": "list"}])).await;
    assert_eq!(names(&got[1]), tools("legacy", ALL));
    let narrowed = rpc(
        &gw,
        "/mcp",
        &b,
        &[("x-mcp-servers", "wiki")],
        &request(1, "tools/list", json!({})),
    )
    .await;
    assert_eq!(narrowed.status, 200, "{}", narrowed.text());
    let body = narrowed.json();
    let listed: Vec<&str> = body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["wiki-echo"]);

    // one row per call that ran, with the configured cost
    let rows = spend_rows(&db, 5).await;
    let seen: Vec<(String, f64, String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.get::<_, Option<String>>(0).unwrap_or_default(),
                r.get(1),
                r.get(2),
                r.get::<_, Option<String>>(3).unwrap_or_default(),
                r.get::<_, Option<String>>(4).unwrap_or_default(),
            )
        })
        .collect();
    let row = |tool: &str, cost: f64, model: &str, server: &str| {
        (
            tool.to_string(),
            cost,
            model.to_string(),
            server.to_string(),
            "success".to_string(),
        )
    };
    assert_eq!(
        seen,
        [
            row("wiki/echo", 0.25, "MCP: wiki-echo", "wiki"),
            row("wiki/header", 0.25, "MCP: wiki-header", "wiki"),
            row("wiki/add", 1.5, "MCP: wiki-add", "wiki"),
            row("legacy/echo", 0.0, "MCP: legacy-echo", "legacy"),
            row("legacy/header", 0.0, "MCP: legacy-header", "legacy"),
        ]
    );
    for r in &rows {
        assert_eq!(r.get::<_, String>(6), "call_mcp_tool");
        let meta: String = r.get(7);
        assert!(meta.contains("mcp_tool_call_metadata"), "{meta}");
        assert!(
            !meta.contains("tok-upstream-7") && !meta.contains("fixed-9"),
            "{meta}"
        );
    }
    // the daily table keeps tools apart
    let daily = "SELECT mcp_namespaced_tool_name, api_requests, spend FROM \"TianjiLLM_DailyUserSpend\" WHERE user_id = 'mcp-user' ORDER BY 1";
    let read = || async {
        let rows = db.client().await.query(daily, &[]).await.unwrap();
        rows.iter()
            .map(|r| {
                let tool: Option<String> = r.get(0);
                (
                    tool.unwrap_or_default(),
                    r.get::<_, i64>(1),
                    r.get::<_, f64>(2),
                )
            })
            .collect::<Vec<_>>()
    };
    let rolled = eventually_async(Duration::from_secs(15), || async {
        read().await.len() == 3
    })
    .await;
    let per_tool = read().await;
    assert!(rolled, "{per_tool:?}");
    assert_eq!(
        per_tool,
        [
            ("wiki/add".to_string(), 1, 1.5),
            ("wiki/echo".to_string(), 1, 0.25),
            ("wiki/header".to_string(), 1, 0.25)
        ]
    );
    let key_a_hash: String = rows[0].get(5);
    let key_b_hash: String = rows[3].get(5);
    assert!(!key_a_hash.is_empty() && key_a_hash != key_b_hash);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_servers_that_hang_or_die() {
    let db = TestDb::create().await;
    let (steady, fragile) = (
        ToolServer::start("http").await,
        ToolServer::start("http").await,
    );
    let brittle = ToolServer::start("sse").await;
    let servers = format!(
        "  steady:\n    url: {s}\n  slowpoke:\n    url: {s}\n    timeout: 1\n  fragile:\n    url: {f}\n  brittle:\n    url: {b}\n    transport: sse\n    timeout: 30\n",
        s = steady.url(),
        f = fragile.url(),
        b = brittle.url()
    );
    let gw = TestGateway::start(&config(&db, &servers)).await;
    let k = key(&gw, json!({"mcp_rpm_limit": {"steady": 2}})).await;
    let echo = json!({"op": "call", "name": "steady-echo", "args": {"text": "x"}});
    let got = client(
        &gw.url("/mcp"),
        &k,
        json!([
            echo, echo, echo,
            {"op": "call", "name": "slowpoke-echo", "args": {"text": "other server, no limit"}},
            {"op": "call", "name": "slowpoke-slow", "args": {"seconds": 10}},
            {"op": "call", "name": "fragile-crash"},
            {"op": "list"},
            {"op": "call", "name": "brittle-echo", "args": {"text": "still here"}},
            {"op": "call", "name": "brittle-crash"},
            {"op": "call", "name": "brittle-echo", "args": {"text": "gone"}},
        ]),
    )
    .await;
    assert_eq!(got[1]["text"], "http:x");
    assert_eq!(got[2]["text"], "http:x");
    assert_eq!(got[3]["code"], -32000, "{}", got[3]);
    assert!(
        got[3]["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("rate limit"),
        "{}",
        got[3]
    );
    assert_eq!(got[4]["text"], "http:other server, no limit");
    assert_eq!(got[5]["code"], -32603, "{}", got[5]);
    assert!(
        got[5]["error"].as_str().unwrap().contains("did not answer"),
        "{}",
        got[5]
    );
    assert_eq!(got[6]["code"], -32603, "{}", got[6]);
    assert!(
        got[6]["error"].as_str().unwrap().contains("fragile"),
        "{}",
        got[6]
    );
    // the dead server is left out of the list, the others still listed
    let listed = names(&got[7]);
    assert!(
        listed.contains(&"steady-echo".to_string())
            && listed.contains(&"slowpoke-echo".to_string())
    );
    assert!(
        !listed.iter().any(|t| t.starts_with("fragile-")),
        "{listed:?}"
    );

    // an SSE server dying mid-call fails that call and the next at once (no wait for the
    // 30 s timeout: the stream's end fails every request waiting on it)
    assert_eq!(got[8]["text"], "sse:still here");
    for i in [9, 10] {
        assert_eq!(got[i]["code"], -32603, "{}", got[i]);
        assert!(
            !got[i]["error"].as_str().unwrap().contains("did not answer"),
            "{}",
            got[i]
        );
    }

    // failures are logged too
    let rows = spend_rows(&db, 8).await;
    let status = |tool: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| r.get::<_, Option<String>>(0).as_deref() == Some(tool))
            .map(|r| r.get::<_, Option<String>>(4).unwrap_or_default())
            .collect()
    };
    assert_eq!(status("steady/echo"), ["success", "success"]);
    assert_eq!(status("slowpoke/slow"), ["failure"]);
    assert_eq!(status("fragile/crash"), ["failure"]);
    assert_eq!(status("brittle/echo"), ["success", "failure"]);
    assert_eq!(status("brittle/crash"), ["failure"]);
}
