//! Issue 25 item 5: MCP tools inside LLM requests. The official `openai` SDK
//! (`tests/python/mcp_llm_client.py`) sends `/v1/responses` and `/v1/chat/completions`
//! requests whose tools name the gateway's MCP servers; a mock model calls the `echo` tool
//! of a FastMCP server (`mcp_tool_server.py`) until it sees its result; the gateway runs the
//! tool and asks the model again. Checked: the final answers (whole and streamed), the
//! `mcp_list_tools` / `mcp_call` items, the function tools the model saw (`allowed_tools`,
//! `server_label`), SpendLogs rows (one per model round, one per tool call with its cost), a
//! forbidden server refused, a foreign server refused on chat, and the round bound.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::common::db::TestDb;
use crate::common::eventually_async;
use crate::common::mock_upstream::{MockUpstream, Recorded, Reply};

/// The names of the function tools a model request offered.
fn offered(body: &Value) -> Vec<String> {
    let mut v: Vec<String> = (body["tools"].as_array().into_iter().flatten())
        .filter_map(|t| {
            t["name"]
                .as_str()
                .or(t["function"]["name"].as_str())
                .map(str::to_string)
        })
        .collect();
    v.sort();
    v
}

/// A model that calls the offered `*-echo` tool until a tool result is in the request (a
/// `loopy` model calls it forever; an `adder` one calls `*-add` with a bad argument), then
/// answers with what the tool said.
fn model(r: &Recorded) -> Reply {
    let body = r.json();
    let loopy = body["model"].as_str().unwrap_or_default().contains("loopy");
    let adder = body["model"].as_str().unwrap_or_default().contains("adder");
    let (suffix, args) = if adder {
        ("-add", "{\"a\": \"x\", \"b\": 1}")
    } else {
        ("-echo", "{\"text\": \"ping\"}")
    };
    let echo = offered(&body).into_iter().find(|n| n.ends_with(suffix));
    let responses = r.path.ends_with("/responses");
    let result = if responses {
        (body["input"].as_array().into_iter().flatten())
            .rfind(|i| i["type"] == "function_call_output")
            .map(|i| i["output"].as_str().unwrap_or_default().to_string())
    } else {
        (body["messages"].as_array().into_iter().flatten())
            .rfind(|m| m["role"] == "tool")
            .map(|m| m["content"].as_str().unwrap_or_default().to_string())
    };
    let call = echo.filter(|_| loopy || result.is_none());
    let text = format!("tool said: {}", result.unwrap_or_default());
    let usage_chat = json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15});
    let usage_resp = json!({"input_tokens": 10, "output_tokens": 5, "total_tokens": 15});
    let reply = match (responses, call) {
        (true, Some(name)) => json!({"id": "resp_up1", "object": "response", "status": "completed",
            "model": "m", "created_at": 1, "usage": usage_resp,
            "output": [{"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": name,
                "arguments": args, "status": "completed"}]}),
        (true, None) => json!({"id": "resp_up1", "object": "response", "status": "completed",
            "model": "m", "created_at": 1, "usage": usage_resp,
            "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}]}]}),
        (false, Some(name)) => {
            json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1,
            "model": "m", "usage": usage_chat,
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
                "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": name, "arguments": args}}]}}]})
        }
        (false, None) => json!({"id": "chatcmpl-2", "object": "chat.completion", "created": 1,
            "model": "m", "usage": usage_chat,
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": text}}]}),
    };
    Reply::status(200, reply)
}

async fn sdk(base: &str, key: &str, ops: Value) -> Vec<Value> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/mcp_llm_client.py"
    );
    let mut cmd = Command::new(crate::it::sdk::python());
    cmd.arg(script).args([base, key, &ops.to_string()]);
    let out = crate::it::sdk::output_within(cmd, Duration::from_secs(120)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "mcp_llm_client.py failed:\n{stdout}\n{stderr}"
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str::<Value>(line)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
        .as_array()
        .cloned()
        .unwrap()
}

fn mcp_tool(url: &str, extra: Value) -> Value {
    let mut t = json!({"type": "mcp", "server_url": url, "require_approval": "never"});
    if let (Some(t), Some(e)) = (t.as_object_mut(), extra.as_object()) {
        t.extend(e.clone());
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_tools_inside_responses_and_chat_requests() {
    let db = TestDb::create().await;
    let tools = ToolServer::start("http").await;
    let up = MockUpstream::with(Arc::new(model)).await;
    let yaml = format!(
        "model_list:\n  - model_name: gpt\n    tianji_params: {{model: openai/gpt-4o, api_base: \"{b}\", api_key: sk-up}}\n  - model_name: loopy\n    tianji_params: {{model: openai/loopy, api_base: \"{b}\", api_key: sk-up}}\n  - model_name: adder\n    tianji_params: {{model: openai/adder, api_base: \"{b}\", api_key: sk-up}}\ngeneral_settings:\n  master_key: {MASTER_KEY}\n  database_url: \"{u}\"\n  proxy_batch_write_at: 0.1\nmcp_settings:\n  max_tool_rounds: 2\nmcp_servers:\n  wiki:\n    url: {t}\n    mcp_info:\n      mcp_server_cost_info:\n        default_cost_per_query: 0.25\n  other:\n    url: {t}\n",
        b = up.base(),
        u = db.url,
        t = tools.url()
    );
    let gw = TestGateway::start(&yaml).await;
    let k = key(
        &gw,
        json!({"object_permission": {"mcp_servers": ["wiki"], "blocked_tools": ["wiki-secret"]}}),
    )
    .await;
    let base = gw.url("");
    let labelled = mcp_tool(
        "tianji_proxy/mcp/wiki",
        json!({"server_label": "kb", "allowed_tools": ["echo", "add", "secret"]}),
    );
    let litellm = mcp_tool("litellm_proxy/mcp/wiki", json!({}));
    let got = sdk(
        &base,
        &k,
        json!([
            {"api": "responses", "model": "gpt", "tools": [labelled]},
            {"api": "chat", "model": "gpt", "tools": [litellm]},
            {"api": "chat", "model": "gpt", "tools": [mcp_tool(&gw.url("/mcp/wiki"), json!({}))], "stream": true},
            {"api": "responses", "model": "gpt", "tools": [mcp_tool("/mcp", json!({}))], "stream": true},
            {"api": "responses", "model": "gpt", "tools": [mcp_tool("tianji_proxy/mcp/other", json!({}))]},
            {"api": "chat", "model": "gpt", "tools": [mcp_tool("https://mcp.example.com/mcp", json!({}))]},
            {"api": "responses", "model": "loopy", "tools": [litellm]},
            {"api": "responses", "model": "adder", "tools": [litellm]},
        ]),
    )
    .await;

    // responses: the tool ran (FastMCP's echo says `http:ping`), its items listed as OpenAI's
    let r = &got[0];
    assert_eq!(r["text"], "tool said: http:ping", "{r}");
    assert_eq!(r["types"], json!(["mcp_list_tools", "mcp_call", "message"]));
    let mut listed: Vec<&str> = (r["items"][0]["tools"].as_array().unwrap().iter())
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        ["add", "echo"],
        "allowed_tools, less the blocked tool"
    );
    assert_eq!(r["items"][0]["server_label"], "kb");
    let call = &r["items"][1];
    assert_eq!(
        (&call["server_label"], &call["name"], &call["output"]),
        (&json!("kb"), &json!("echo"), &json!("http:ping"))
    );
    // the model saw function tools named for the label, with the tools' schemas
    let first = up
        .requests()
        .into_iter()
        .find(|q| q.path.ends_with("/responses"))
        .unwrap()
        .json();
    assert_eq!(offered(&first), ["kb-add", "kb-echo"]);
    assert!(first.get("stream").is_none());
    let echo = (first["tools"].as_array().unwrap().iter())
        .find(|t| t["name"] == "kb-echo")
        .unwrap();
    assert_eq!(echo["parameters"]["properties"]["text"]["type"], "string");

    // chat, whole and streamed
    assert_eq!(
        got[1],
        json!({"text": "tool said: http:ping", "finish": "stop"})
    );
    assert_eq!(
        got[2],
        json!({"text": "tool said: http:ping", "finish": "stop"})
    );
    // responses streamed: the final answer as events
    let s = &got[3];
    assert_eq!(s["text"], "tool said: http:ping", "{s}");
    assert_eq!(s["final_text"], "tool said: http:ping");
    let events = s["events"].as_array().unwrap();
    assert_eq!(events.first().unwrap(), "response.created");
    assert_eq!(events.last().unwrap(), "response.completed");

    // a server the key may not use; a foreign server on chat; the round bound
    assert_eq!(got[4]["status"], 403, "{}", got[4]);
    assert!(got[4]["message"].as_str().unwrap().contains("other"));
    assert_eq!(got[5]["status"], 400, "{}", got[5]);
    assert!(
        got[5]["message"]
            .as_str()
            .unwrap()
            .contains("mcp.example.com")
    );
    assert_eq!(got[6]["status"], 400, "{}", got[6]);
    assert!(
        got[6]["message"]
            .as_str()
            .unwrap()
            .contains("max_tool_rounds"),
        "{}",
        got[6]
    );

    // a tool that fails: its error is the model's to read, and the mcp_call item's
    let t = &got[7];
    assert!(
        t["text"]
            .as_str()
            .unwrap()
            .starts_with("tool said: Error: "),
        "{t}"
    );
    let call = &t["items"][1];
    assert_eq!(call["type"], "mcp_call");
    assert!(call["output"].is_null() && call["error"].is_string(), "{t}");

    // SpendLogs: a row per model round (5 requests x 2 rounds, then 3 for the loop) and per
    // tool call (5, then 2), the tool's with its cost
    let sql = "SELECT call_type, count(*), sum(spend) FROM \"TianjiLLM_SpendLogs\" GROUP BY call_type ORDER BY call_type";
    let want =
        |rows: &[tokio_postgres::Row]| rows.iter().map(|r| r.get::<_, i64>(1)).sum::<i64>() >= 20;
    let done = eventually_async(Duration::from_secs(15), || async {
        want(&db.client().await.query(sql, &[]).await.unwrap())
    })
    .await;
    let rows = db.client().await.query(sql, &[]).await.unwrap();
    let seen: Vec<(String, i64, f64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(done, "{seen:?}");
    let tool_rows = seen.iter().find(|r| r.0 == "call_mcp_tool").cloned();
    assert_eq!(tool_rows.map(|r| (r.1, r.2)), Some((7, 1.75)), "{seen:?}");
    let model_rows: i64 = seen
        .iter()
        .filter(|r| r.0 != "call_mcp_tool")
        .map(|r| r.1)
        .sum();
    assert_eq!(model_rows, 13, "{seen:?}");
    // the model calls as the mock saw them
    assert_eq!(up.requests().len(), 13);
}
