//! One server's list (`tools/list`, `prompts/list`, ...) read page by page (`nextCursor`, at
//! most [`MAX_PAGES`]), items kept by the caller's filter and named `{server}-{name}`. Used
//! by the `/mcp` routes and by LLM requests naming MCP tools.

use std::future::Future;

use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::client::{Reply, UpstreamError, error_message};
use crate::config::mcp::TOOL_SEPARATOR;

/// Pages of one list read from one server.
pub const MAX_PAGES: usize = 20;

/// The items of `member` in the answers to `method`, asked through `send` (the params of each
/// page); those `keep` accepts (by their own name), renamed `{server}-{name}`.
pub async fn items<F, Fut>(
    server: &str,
    member: &str,
    keep: impl Fn(&str) -> bool,
    mut send: F,
) -> Result<Vec<Value>, UpstreamError>
where
    F: FnMut(Option<Box<RawValue>>) -> Fut,
    Fut: Future<Output = Result<Reply, UpstreamError>>,
{
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor
            .as_ref()
            .and_then(|c| RawValue::from_string(json!({"cursor": c}).to_string()).ok());
        let page: Value = match send(params).await? {
            Ok(r) => serde_json::from_str(r.get()).unwrap_or(Value::Null),
            Err(e) => return Err(UpstreamError::Protocol(error_message(&e))),
        };
        let list = page.get(member).and_then(Value::as_array);
        for item in list.into_iter().flatten() {
            let Some(name) = item.get("name").and_then(Value::as_str) else {
                continue;
            };
            if !keep(name) {
                continue;
            }
            let mut item = item.clone();
            item["name"] = json!(format!("{server}{TOOL_SEPARATOR}{name}"));
            out.push(item);
        }
        cursor = page
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    Ok(out)
}
