//! Goal: what an LLM request naming MCP tools brings in never panics: a tool's `server_url`
//! (a server named by it has a plain name, no `/`), a model's answer read for its function
//! calls, appended to the next request, finished with MCP items and sent as events, and an MCP
//! tool result read as text.
//!
//! Run: `cargo fuzz run -s none mcp_llm_tools -- -max_total_time=60` (from the repo root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use tianji::pipeline::mcp_tools::{Asked, Format, Named, Ran, named, result_text};

fuzz_target!(|data: &[u8]| {
    if let Ok(url) = std::str::from_utf8(data) {
        if let Ok(Named::Own(Some(server))) = named(url, Some("gw.local:4000")) {
            assert!(!server.is_empty() && !server.contains('/'));
        }
    }
    let Ok(answer) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let _ = result_text(&answer);
    for format in [Format::Chat, Format::Responses] {
        let asked = format.calls(&answer, |n| !n.is_empty()).unwrap_or_default();
        assert!(asked.iter().all(|a| !a.name.is_empty()));
        let ran: Vec<Ran> = asked
            .into_iter()
            .chain([Asked {
                id: "c".into(),
                name: "s-t".into(),
                arguments: "{}".into(),
            }])
            .map(|asked| Ran {
                asked,
                label: "s".into(),
                tool: "t".into(),
                output: Err("e".into()),
            })
            .collect();
        let mut body = Map::new();
        body.insert("input".into(), json!("hi"));
        format.append(&mut body, &answer, &ran);
        let mut done = answer.clone();
        format.finish(&mut done, &[json!({"type": "mcp_list_tools"})], &ran);
        let _ = format.events(&done, true);
    }
});
