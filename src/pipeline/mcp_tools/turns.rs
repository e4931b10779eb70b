//! The two request formats a model is asked in (chat completions, Responses): function tools,
//! the function calls an answer makes, the results appended to the next request, and the
//! final answer (Responses: with `mcp_list_tools` and `mcp_call` items, as OpenAI gives them).

use bytes::Bytes;
use serde_json::{Map, Value, json};

/// The format of the client's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Chat,
    Responses,
}

/// A function call the model made.
#[derive(Debug, Clone)]
pub struct Asked {
    /// `tool_calls[].id` (chat) or `call_id` (Responses).
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them (JSON text).
    pub arguments: String,
}

/// What a tool call gave.
#[derive(Debug, Clone)]
pub struct Ran {
    pub asked: Asked,
    /// The server's label.
    pub label: String,
    /// The tool's own name.
    pub tool: String,
    /// The tool's output (text), or why there is none.
    pub output: Result<String, String>,
}

impl Ran {
    /// What the model reads as the call's result.
    fn fed_back(&self) -> String {
        match &self.output {
            Ok(o) => o.clone(),
            Err(e) => format!("Error: {e}"),
        }
    }
}

/// The text of an MCP `tools/call` result: its text parts (other parts as JSON), one a line;
/// `Err` when the tool says it failed (`isError`).
pub fn result_text(result: &Value) -> Result<String, String> {
    let parts: Vec<String> = match result.get("content").and_then(Value::as_array) {
        Some(c) if !c.is_empty() => c
            .iter()
            .map(
                |p| match (p.get("type").and_then(Value::as_str), p.get("text")) {
                    (Some("text"), Some(Value::String(t))) => t.clone(),
                    _ => p.to_string(),
                },
            )
            .collect(),
        _ => match result.get("structuredContent") {
            Some(s) => vec![s.to_string()],
            None => Vec::new(),
        },
    };
    let text = parts.join("\n");
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        Err(text)
    } else {
        Ok(text)
    }
}

impl Format {
    /// A function tool of this format.
    pub fn function(self, name: &str, description: &Value, parameters: &Value) -> Value {
        match self {
            Format::Chat => json!({"type": "function", "function": {
                "name": name, "description": description, "parameters": parameters}}),
            Format::Responses => json!({"type": "function", "name": name,
                "description": description, "parameters": parameters}),
        }
    }

    /// The function calls `answer` makes, when every one is to a tool in `ours` (`None`: it
    /// makes none, or calls a function of the client's own: the answer is the client's).
    pub fn calls(self, answer: &Value, ours: impl Fn(&str) -> bool) -> Option<Vec<Asked>> {
        let asked: Vec<Asked> = match self {
            Format::Chat => answer
                .pointer("/choices/0/message/tool_calls")?
                .as_array()?
                .iter()
                .map(|c| Asked {
                    id: str_of(c.get("id")),
                    name: str_of(c.pointer("/function/name")),
                    arguments: str_of(c.pointer("/function/arguments")),
                })
                .collect(),
            Format::Responses => answer
                .get("output")?
                .as_array()?
                .iter()
                .filter(|i| i.get("type").and_then(Value::as_str) == Some("function_call"))
                .map(|c| Asked {
                    id: str_of(c.get("call_id")),
                    name: str_of(c.get("name")),
                    arguments: str_of(c.get("arguments")),
                })
                .collect(),
        };
        (!asked.is_empty() && asked.iter().all(|a| ours(&a.name))).then_some(asked)
    }

    /// Append the model's calls (from `answer`) and their results to the next request.
    pub fn append(self, body: &mut Map<String, Value>, answer: &Value, ran: &[Ran]) {
        match self {
            Format::Chat => {
                let mut said = match answer.pointer("/choices/0/message") {
                    Some(Value::Object(m)) => m.clone(),
                    _ => Map::new(),
                };
                said.insert("role".into(), json!("assistant"));
                let said = Value::Object(said);
                let results = ran.iter().map(|r| {
                    json!({"role": "tool", "tool_call_id": r.asked.id, "content": r.fed_back()})
                });
                extend(body, "messages", std::iter::once(said).chain(results));
            }
            Format::Responses => {
                if let Some(Value::String(text)) = body.get("input") {
                    let first = json!({"type": "message", "role": "user", "content": text});
                    body.insert("input".into(), json!([first]));
                }
                let items = ran.iter().flat_map(|r| {
                    [
                        json!({"type": "function_call", "call_id": r.asked.id,
                            "name": r.asked.name, "arguments": r.asked.arguments}),
                        json!({"type": "function_call_output", "call_id": r.asked.id,
                            "output": r.fed_back()}),
                    ]
                });
                extend(body, "input", items);
            }
        }
    }

    /// The final answer: Responses get the servers' `mcp_list_tools` and one `mcp_call` per
    /// call run before the model's own output; chat answers are the model's.
    pub fn finish(self, answer: &mut Value, listings: &[Value], ran: &[Ran]) {
        let (Format::Responses, Some(answer)) = (self, answer.as_object_mut()) else {
            return;
        };
        let mut items: Vec<Value> = listings.to_vec();
        items.extend(ran.iter().map(|r| {
            let (output, error) = match &r.output {
                Ok(o) => (json!(o), Value::Null),
                Err(e) => (Value::Null, json!(e)),
            };
            json!({"type": "mcp_call", "id": format!("mcp_{}", r.asked.id),
                "server_label": r.label, "name": r.tool, "arguments": r.asked.arguments,
                "output": output, "error": error, "approval_request_id": null,
                "status": if error.is_null() { "completed" } else { "failed" }})
        }));
        if let Some(Value::Array(out)) = answer.get_mut("output") {
            items.append(out);
        }
        answer.insert("output".into(), Value::Array(items));
    }

    /// The final answer as server-sent events: a chat answer replayed as chunks
    /// (`include_usage`: with the usage chunk); a Responses answer as `response.created`, each
    /// item added (a message's text as one delta) and done, then `response.completed`.
    pub fn events(self, answer: &Value, include_usage: bool) -> Option<Vec<Bytes>> {
        match self {
            Format::Chat => {
                let body = serde_json::to_vec(answer).ok()?;
                crate::cache::stream::replay(&body, include_usage)
            }
            Format::Responses => answer.as_object().map(response_events),
        }
    }
}

fn response_events(answer: &Map<String, Value>) -> Vec<Bytes> {
    let mut seq = 0u64;
    let mut out = Vec::new();
    let mut push = |kind: &str, mut v: Value| {
        v["type"] = json!(kind);
        v["sequence_number"] = json!(seq);
        seq += 1;
        out.push(Bytes::from(format!("event: {kind}\ndata: {v}\n\n")));
    };
    let mut head = answer.clone();
    head.insert("status".into(), json!("in_progress"));
    head.insert("output".into(), json!([]));
    push("response.created", json!({"response": head}));
    let items = answer.get("output").and_then(Value::as_array);
    for (i, item) in items.into_iter().flatten().enumerate() {
        push(
            "response.output_item.added",
            json!({"output_index": i, "item": item}),
        );
        let parts = item.get("content").and_then(Value::as_array);
        for (j, part) in parts.into_iter().flatten().enumerate() {
            if let Some(text) = part.get("text").and_then(Value::as_str) {
                let at = json!({"item_id": item.get("id"), "output_index": i, "content_index": j});
                let mut delta = at.clone();
                delta["delta"] = json!(text);
                push("response.output_text.delta", delta);
                let mut done = at;
                done["text"] = json!(text);
                push("response.output_text.done", done);
            }
        }
        push(
            "response.output_item.done",
            json!({"output_index": i, "item": item}),
        );
    }
    push("response.completed", json!({"response": answer}));
    out
}

fn str_of(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Append `items` to the array `body[name]` (made one when absent or not an array).
fn extend(body: &mut Map<String, Value>, name: &str, items: impl IntoIterator<Item = Value>) {
    let mut list = match body.remove(name) {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    list.extend(items);
    body.insert(name.to_string(), Value::Array(list));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(id: &str, output: Result<String, String>) -> Ran {
        Ran {
            asked: Asked {
                id: id.into(),
                name: "wiki-add".into(),
                arguments: r#"{"a":1}"#.into(),
            },
            label: "wiki".into(),
            tool: "add".into(),
            output,
        }
    }

    #[test]
    fn chat_calls_and_results() {
        let answer = json!({"choices": [{"message": {"content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "wiki-add", "arguments": "{\"a\":1}"}}]}}]});
        let asked = Format::Chat.calls(&answer, |n| n == "wiki-add").unwrap();
        assert_eq!(asked[0].id, "c1");
        assert!(Format::Chat.calls(&answer, |_| false).is_none());
        let mut body = json!({"messages": [{"role": "user", "content": "hi"}]})
            .as_object()
            .cloned()
            .unwrap();
        Format::Chat.append(&mut body, &answer, &[ran("c1", Ok("2".into()))]);
        let m = body["messages"].as_array().unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[1]["role"], "assistant");
        assert_eq!(
            m[2],
            json!({"role": "tool", "tool_call_id": "c1", "content": "2"})
        );
    }

    #[test]
    fn responses_calls_results_and_items() {
        let answer = json!({"output": [{"type": "function_call", "call_id": "k", "name": "wiki-add", "arguments": "{}"}]});
        let asked = Format::Responses.calls(&answer, |_| true).unwrap();
        let mut body = json!({"input": "hi"}).as_object().cloned().unwrap();
        let r = Ran {
            asked: asked[0].clone(),
            ..ran("k", Err("boom".into()))
        };
        Format::Responses.append(&mut body, &answer, std::slice::from_ref(&r));
        let input = body["input"].as_array().unwrap();
        assert_eq!(input[0]["content"], "hi");
        assert_eq!(input[2]["output"], "Error: boom");
        let mut fin = json!({"output": [{"type": "message", "content": [{"type": "output_text", "text": "done"}]}]});
        Format::Responses.finish(&mut fin, &[json!({"type": "mcp_list_tools"})], &[r]);
        let out = fin["output"].as_array().unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[1]["type"], "mcp_call");
        assert_eq!(out[1]["error"], "boom");
        let events = Format::Responses.events(&fin, false).unwrap();
        let text: String = events
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        assert!(text.starts_with("event: response.created"));
        assert!(text.contains("\"delta\":\"done\""));
        assert!(text.contains("event: response.completed"));
    }

    #[test]
    fn odd_answers_never_panic() {
        let odd = [
            json!(1),
            json!([]),
            json!(null),
            json!({"choices": [{"message": "x"}]}),
            json!({"choices": [{"message": {"tool_calls": [{"id": 1}]}}]}),
            json!({"output": 5}),
            json!({"output": [1, {"content": 3}, {"content": [{"text": 2}]}]}),
        ];
        for v in odd {
            for f in [Format::Chat, Format::Responses] {
                let _ = f.calls(&v, |_| true);
                let mut body = Map::new();
                body.insert("input".into(), json!(7));
                body.insert("messages".into(), json!("not a list"));
                f.append(&mut body, &v, &[ran("c", Ok("o".into()))]);
                let mut done = v.clone();
                f.finish(&mut done, &[], &[ran("c", Err("e".into()))]);
                let _ = f.events(&done, true);
                let _ = result_text(&v);
            }
        }
    }

    #[test]
    fn tool_results_as_text() {
        let ok = json!({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]});
        assert_eq!(result_text(&ok), Ok("a\nb".into()));
        let err = json!({"content": [{"type": "text", "text": "bad"}], "isError": true});
        assert_eq!(result_text(&err), Err("bad".into()));
        assert_eq!(
            result_text(&json!({"structuredContent": {"x": 1}})),
            Ok("{\"x\":1}".into())
        );
    }
}
