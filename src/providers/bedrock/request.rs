//! OpenAI chat completion request -> Bedrock Converse request body.
//!
//! The model goes in the path ([`super::model_path`]), not the body; streaming is chosen by the
//! operation (`converse` or `converse-stream`), so `stream` is not in the body either.
//!
//! Decisions:
//! - Converse wants user and assistant turns to alternate, so consecutive messages of the same
//!   role (tool results count as user turns) are merged into one message.
//! - Images must be inline: an `http(s)` image URL is refused, since a pure translation cannot
//!   fetch it.
//! - `tool_choice: "none"` drops `toolConfig` altogether (Converse has no "none").
//! - `response_format` (`json_object`, `json_schema`) becomes an instruction appended to the
//!   system prompt: it needs no state to undo in the response, and works the same streamed.
//! - `reasoning_effort` becomes `additionalModelRequestFields.thinking`, which Anthropic models on
//!   Bedrock understand; `maxTokens` is raised above the thinking budget when needed.
//! - `user` and the string values of `metadata` become `requestMetadata`.

use serde_json::{Map, Value, json};

use super::TranslateError;
use crate::providers::openai_chat::{self, ToolChoice};
use crate::providers::text_of;

/// Room for the answer beyond the thinking budget when the client sets no maximum.
const ANSWER_TOKENS: u64 = 4096;

fn invalid(m: impl Into<String>) -> TranslateError {
    TranslateError::Invalid(m.into())
}

fn cache_point() -> Value {
    json!({"cachePoint": {"type": "default"}})
}

/// Append the Converse blocks of one OpenAI content part (a cache point follows a part that
/// has `cache_control`).
fn push_part(blocks: &mut Vec<Value>, part: &Value) -> Result<(), TranslateError> {
    let kind = part.get("type").and_then(Value::as_str).unwrap_or("text");
    match kind {
        "text" => {
            let text = part
                .get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("a text content part needs a string `text`"))?;
            if !text.is_empty() {
                blocks.push(json!({"text": text}));
            }
        }
        "image_url" => {
            let url = openai_chat::image_url(part).map_err(invalid)?;
            blocks.push(image(url)?);
        }
        other => {
            return Err(invalid(format!(
                "content part type `{other}` is not supported"
            )));
        }
    }
    if part.get("cache_control").is_some_and(|c| !c.is_null()) {
        blocks.push(cache_point());
    }
    Ok(())
}

/// An image block from a base64 `data:` URL.
fn image(url: &str) -> Result<Value, TranslateError> {
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(invalid(
            "Bedrock needs images inline: send a base64 data: URL, not an http(s) image URL",
        ));
    };
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| invalid("malformed data: URL in image_url"))?;
    let media_type = meta
        .strip_suffix(";base64")
        .ok_or_else(|| invalid("image data: URLs must be base64 encoded"))?;
    let format = match media_type.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        other => {
            return Err(invalid(format!(
                "image type `{other}` is not supported (png, jpeg, gif, webp)"
            )));
        }
    };
    Ok(json!({"image": {"format": format, "source": {"bytes": data}}}))
}

/// A message `content` as Converse blocks.
fn blocks(c: &Value) -> Result<Vec<Value>, TranslateError> {
    let mut out = Vec::new();
    match c {
        Value::String(s) if s.is_empty() => {}
        Value::String(s) => out.push(json!({"text": s})),
        Value::Array(parts) => {
            for p in parts {
                push_part(&mut out, p)?;
            }
        }
        Value::Null => {}
        _ => {
            return Err(invalid(
                "message content must be a string or a list of parts",
            ));
        }
    }
    Ok(out)
}

/// `toolUse` blocks for an assistant message's `tool_calls`.
fn tool_uses(calls: &[Value]) -> Result<Vec<Value>, TranslateError> {
    calls
        .iter()
        .map(|call| {
            let f = call.get("function").unwrap_or(&Value::Null);
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("tool call without a function name"))?;
            let args = f.get("arguments").and_then(Value::as_str).unwrap_or("{}");
            let args = if args.trim().is_empty() { "{}" } else { args };
            let input: Value = serde_json::from_str(args)
                .map_err(|e| invalid(format!("tool call arguments are not JSON: {e}")))?;
            if !input.is_object() {
                return Err(invalid("tool call arguments must be a JSON object"));
            }
            Ok(json!({"toolUse": {"toolUseId": call.get("id").and_then(Value::as_str).unwrap_or(""),
                "name": name, "input": input}}))
        })
        .collect()
}

/// Append a turn, merging it into the previous one when the role repeats.
fn push_turn(out: &mut Vec<Value>, role: &str, mut content: Vec<Value>) {
    if let Some(last) = out.last_mut()
        && last["role"] == role
        && let Some(prev) = last["content"].as_array_mut()
    {
        prev.append(&mut content);
        return;
    }
    out.push(json!({"role": role, "content": content}));
}

/// The instruction appended to the system prompt for a `response_format`, if any.
fn format_instruction(req: &Value) -> Option<String> {
    let rf = req.get("response_format")?;
    match rf.get("type").and_then(Value::as_str)? {
        "json_object" => Some("Respond only with a valid JSON object, and nothing else.".into()),
        "json_schema" => {
            let js = rf.get("json_schema").unwrap_or(&Value::Null);
            let schema = js.get("schema").unwrap_or(js);
            Some(format!(
                "Respond only with a JSON object that matches this JSON schema, and nothing else: {schema}"
            ))
        }
        _ => None,
    }
}

/// `inferenceConfig` from the sampling parameters (`None` when none is set).
fn inference_config(req: &Value) -> Result<Option<Map<String, Value>>, TranslateError> {
    let mut cfg = Map::new();
    if let Some(max) = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| req.get(*k).filter(|v| !v.is_null()))
    {
        let max = max
            .as_u64()
            .ok_or_else(|| invalid("max_tokens must be a positive integer"))?;
        cfg.insert("maxTokens".into(), json!(max));
    }
    for (from, to) in [("temperature", "temperature"), ("top_p", "topP")] {
        if let Some(v) = req.get(from).filter(|v| !v.is_null()) {
            if !v.is_number() {
                return Err(invalid(format!("{from} must be a number")));
            }
            cfg.insert(to.into(), v.clone());
        }
    }
    match req.get("stop") {
        Some(Value::String(s)) => {
            cfg.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            if !a.iter().all(Value::is_string) {
                return Err(invalid("stop must be a string or a list of strings"));
            }
            cfg.insert("stopSequences".into(), Value::Array(a.clone()));
        }
        Some(Value::Array(_) | Value::Null) | None => {}
        Some(_) => return Err(invalid("stop must be a string or a list of strings")),
    }
    Ok((!cfg.is_empty()).then_some(cfg))
}

/// `toolConfig` from `tools` and `tool_choice` (`None` without tools or with `"none"`).
fn tool_config(req: &Value) -> Result<Option<Value>, TranslateError> {
    let Some(tools) = req.get("tools").filter(|t| !t.is_null()) else {
        return Ok(None);
    };
    let tools = tools
        .as_array()
        .ok_or_else(|| invalid("tools must be a list"))?;
    if tools.is_empty() {
        return Ok(None);
    }
    let choice = match openai_chat::tool_choice(req).map_err(invalid)? {
        None => None,
        Some(ToolChoice::None) => return Ok(None),
        Some(ToolChoice::Auto) => Some(json!({"auto": {}})),
        Some(ToolChoice::Required) => Some(json!({"any": {}})),
        Some(ToolChoice::Named(name)) => Some(json!({"tool": {"name": name}})),
    };
    let mut specs = Vec::with_capacity(tools.len());
    for t in tools {
        if let Some(kind) = t.get("type").and_then(Value::as_str)
            && kind != "function"
        {
            return Err(invalid(format!("tool type `{kind}` is not supported")));
        }
        let f = t.get("function").unwrap_or(t);
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("each tool needs a function name"))?;
        let schema = f
            .get("parameters")
            .filter(|p| !p.is_null())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        let mut spec = json!({"name": name, "inputSchema": {"json": schema}});
        if let Some(d) = f.get("description").and_then(Value::as_str) {
            spec["description"] = json!(d);
        }
        specs.push(json!({"toolSpec": spec}));
        if t.get("cache_control").is_some_and(|c| !c.is_null()) {
            specs.push(cache_point());
        }
    }
    let mut cfg = json!({"tools": specs});
    if let Some(c) = choice {
        cfg["toolChoice"] = c;
    }
    Ok(Some(cfg))
}

/// `requestMetadata` from `user` and the string values of `metadata`.
fn request_metadata(req: &Value) -> Option<Value> {
    let mut md = Map::new();
    if let Some(o) = req.get("metadata").and_then(Value::as_object) {
        for (k, v) in o {
            if let Some(s) = v.as_str() {
                md.insert(k.clone(), json!(s));
            }
        }
    }
    if let Some(user) = req.get("user").and_then(Value::as_str) {
        md.insert("user".into(), json!(user));
    }
    (!md.is_empty()).then_some(Value::Object(md))
}

/// Translate `chat` (an OpenAI chat body) into a Converse request body.
pub fn to_converse(chat: &Value) -> Result<Value, TranslateError> {
    let msgs = openai_chat::messages(chat).map_err(invalid)?;
    let mut system: Vec<Value> = Vec::new();
    let mut out: Vec<Value> = Vec::new();
    for m in msgs {
        if !m.is_object() {
            return Err(invalid("each message must be an object"));
        }
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let c = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => {
                for b in blocks(c)? {
                    if b.get("image").is_some() {
                        return Err(invalid("system messages can only hold text"));
                    }
                    system.push(b);
                }
            }
            "user" => push_turn(&mut out, "user", blocks(c)?),
            "assistant" => {
                let mut content = blocks(c)?;
                if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
                    content.extend(tool_uses(calls)?);
                }
                push_turn(&mut out, "assistant", content);
            }
            "tool" | "function" => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("a tool message needs a tool_call_id"))?;
                let result = json!({"toolResult": {"toolUseId": id,
                    "content": [{"text": text_of(c)}]}});
                push_turn(&mut out, "user", vec![result]);
            }
            other => return Err(invalid(format!("message role `{other}` is not supported"))),
        }
    }
    if let Some(instruction) = format_instruction(chat) {
        system.push(json!({"text": instruction}));
    }
    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(out));
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    let mut inference = inference_config(chat)?;
    let effort = chat
        .get("reasoning_effort")
        .and_then(Value::as_str)
        .filter(|e| *e != "none");
    if let Some(effort) = effort {
        let budget: u64 = match effort {
            "low" | "minimal" => 1024,
            "medium" => 2048,
            _ => 4096,
        };
        body.insert(
            "additionalModelRequestFields".into(),
            json!({"thinking": {"type": "enabled", "budget_tokens": budget}}),
        );
        // the answer needs room beyond the thinking budget
        let cfg = inference.get_or_insert_with(Map::new);
        let max = cfg.get("maxTokens").and_then(Value::as_u64);
        match max {
            Some(max) if max > budget => {}
            Some(max) => {
                cfg.insert("maxTokens".into(), json!(budget + max));
            }
            None => {
                cfg.insert("maxTokens".into(), json!(budget + ANSWER_TOKENS));
            }
        }
    }
    if let Some(cfg) = inference {
        body.insert("inferenceConfig".into(), Value::Object(cfg));
    }
    if let Some(tc) = tool_config(chat)? {
        body.insert("toolConfig".into(), tc);
    }
    if let Some(md) = request_metadata(chat) {
        body.insert("requestMetadata".into(), md);
    }
    Ok(Value::Object(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> Value {
        json!({"role": "user", "content": text})
    }

    #[test]
    fn minimal_request() {
        let out = to_converse(&json!({"model": "m", "messages": [user("hi")]})).unwrap();
        assert_eq!(
            out,
            json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
        );
    }

    #[test]
    fn same_role_turns_are_merged() {
        let out = to_converse(&json!({"messages": [user("a"), user("b"),
            {"role": "assistant", "content": "c"}, {"role": "assistant", "content": "d"}]}))
        .unwrap();
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": [{"text": "a"}, {"text": "b"}]},
                {"role": "assistant", "content": [{"text": "c"}, {"text": "d"}]},
            ])
        );
    }

    #[test]
    fn system_cache_control_adds_a_cache_point() {
        let out = to_converse(&json!({"messages": [
            {"role": "system", "content": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}]},
            user("hi")]}))
        .unwrap();
        assert_eq!(
            out["system"],
            json!([{"text": "S"}, {"cachePoint": {"type": "default"}}])
        );
    }

    #[test]
    fn tool_choice_forms() {
        let tools = json!([{"type": "function", "function": {"name": "f"}}]);
        let with = |choice: Value| {
            to_converse(&json!({"messages": [user("x")], "tools": tools, "tool_choice": choice}))
                .unwrap()
        };
        assert_eq!(
            with(json!("auto"))["toolConfig"]["toolChoice"],
            json!({"auto": {}})
        );
        assert_eq!(
            with(json!("required"))["toolConfig"]["toolChoice"],
            json!({"any": {}})
        );
        assert!(with(json!("none")).get("toolConfig").is_none());
        assert_eq!(
            with(json!({"type": "function", "function": {"name": "f"}}))["toolConfig"]["toolChoice"],
            json!({"tool": {"name": "f"}})
        );
        assert_eq!(
            with(Value::Null)["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"],
            json!({"type": "object", "properties": {}})
        );
    }

    #[test]
    fn reasoning_effort_sets_thinking_and_room_for_the_answer() {
        let out = to_converse(
            &json!({"messages": [user("x")], "reasoning_effort": "medium", "max_tokens": 100}),
        )
        .unwrap();
        assert_eq!(
            out["additionalModelRequestFields"],
            json!({"thinking": {"type": "enabled", "budget_tokens": 2048}})
        );
        assert_eq!(out["inferenceConfig"]["maxTokens"], 2148);
        let out =
            to_converse(&json!({"messages": [user("x")], "reasoning_effort": "high"})).unwrap();
        assert_eq!(out["inferenceConfig"]["maxTokens"], 4096 + ANSWER_TOKENS);
        let out = to_converse(&json!({"messages": [user("x")], "reasoning_effort": "low",
            "max_completion_tokens": 5000}))
        .unwrap();
        assert_eq!(out["inferenceConfig"]["maxTokens"], 5000);
    }

    #[test]
    fn response_format_becomes_an_instruction() {
        let out = to_converse(
            &json!({"messages": [user("x")], "response_format": {"type": "json_schema",
            "json_schema": {"name": "n", "schema": {"type": "object"}}}}),
        )
        .unwrap();
        let text = out["system"][0]["text"].as_str().unwrap();
        assert!(text.contains(r#"{"type":"object"}"#), "{text}");
        let out = to_converse(
            &json!({"messages": [user("x")], "response_format": {"type": "json_object"}}),
        )
        .unwrap();
        assert!(out["system"][0]["text"].as_str().unwrap().contains("JSON"));
        let out =
            to_converse(&json!({"messages": [user("x")], "response_format": {"type": "text"}}))
                .unwrap();
        assert!(out.get("system").is_none());
    }

    #[test]
    fn metadata_keeps_strings_only() {
        let out = to_converse(&json!({"messages": [user("x")], "user": "u1",
            "metadata": {"team": "a", "n": 3}}))
        .unwrap();
        assert_eq!(out["requestMetadata"], json!({"team": "a", "user": "u1"}));
    }

    #[test]
    fn stop_array_and_jpeg() {
        let out = to_converse(
            &json!({"stop": ["a", "b"], "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}}]}]}),
        )
        .unwrap();
        assert_eq!(out["inferenceConfig"]["stopSequences"], json!(["a", "b"]));
        assert_eq!(
            out["messages"][0]["content"][0],
            json!({"image": {"format": "jpeg", "source": {"bytes": "/9j/"}}})
        );
    }

    #[test]
    fn refusals() {
        let bad = [
            json!({"messages": "hi"}),
            json!({"messages": ["hi"]}),
            json!({"messages": [{"role": "robot", "content": "x"}]}),
            json!({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}),
            json!({"messages": [{"role": "user", "content": 3}]}),
            json!({"messages": [{"role": "user", "content": [{"type": "image_url",
                "image_url": {"url": "https://example.com/cat.jpg"}}]}]}),
            json!({"messages": [{"role": "user", "content": [{"type": "image_url",
                "image_url": {"url": "data:image/tiff;base64,AAAA"}}]}]}),
            json!({"messages": [{"role": "assistant", "tool_calls": [
                {"id": "t", "function": {"name": "f", "arguments": "{nope"}}]}]}),
            json!({"messages": [{"role": "assistant", "tool_calls": [
                {"id": "t", "function": {"name": "f", "arguments": "[1]"}}]}]}),
            json!({"messages": [{"role": "tool", "content": "x"}]}),
            json!({"messages": [user("x")], "stop": 3}),
            json!({"messages": [user("x")], "tools": [{"type": "function", "function": {"name": "f"}}],
                "tool_choice": "sometimes"}),
        ];
        for b in bad {
            assert!(to_converse(&b).is_err(), "{b}");
        }
    }
}
