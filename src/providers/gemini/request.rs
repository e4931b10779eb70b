//! OpenAI chat completion request -> Gemini `generateContent` body (the model goes in the URL).
//!
//! Choices worth knowing:
//! - Tool parameters go out as `parametersJsonSchema` and `json_schema` response formats as
//!   `responseJsonSchema`: both take full JSON Schema (`additionalProperties`, `$ref`, `anyOf`…),
//!   so OpenAI schemas pass (less the `$schema` marker) instead of being cut down to Gemini's
//!   OpenAPI subset.
//! - A `role: tool` result becomes a `functionResponse` named after the earlier tool call with
//!   the same id; its content is `{"content": <text>}`, or the parsed value when the text is a
//!   JSON object or array.
//! - Tool objects that are not OpenAI functions (e.g. `{"googleSearch": {}}`) go out as Gemini
//!   tools unchanged.
//! - Dropped, Gemini has no field for them: `user`, `parallel_tool_calls`, `logprobs`,
//!   `metadata`, `store`, `stream`/`stream_options` (the URL decides streaming).

use serde_json::{Map, Value, json};

use super::{TranslateError, split_tool_call_id};
use crate::providers::openai_chat::{self, ToolChoice};
use crate::providers::text_of;

fn invalid(m: impl Into<String>) -> TranslateError {
    TranslateError::Invalid(m.into())
}

/// MIME type guessed from a URL's file extension (`image/jpeg` when unknown).
pub fn mime_from_url(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        _ => "image/jpeg",
    }
}

/// An `inlineData` part from a base64 `data:` URL, or a `fileData` part for any other URL.
fn media(url: &str) -> Result<Value, TranslateError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| invalid("malformed data: URL"))?;
        let mime = meta
            .strip_suffix(";base64")
            .ok_or_else(|| invalid("data: URLs must be base64-encoded"))?;
        let mime = if mime.is_empty() {
            "application/octet-stream"
        } else {
            mime
        };
        return Ok(json!({"inlineData": {"mimeType": mime, "data": data}}));
    }
    if url.is_empty() {
        return Err(invalid("empty media URL"));
    }
    Ok(json!({"fileData": {"mimeType": mime_from_url(url), "fileUri": url}}))
}

/// One OpenAI content part as a Gemini part (`None`: empty text, which Gemini rejects).
fn part(p: &Value) -> Result<Option<Value>, TranslateError> {
    let kind = p.get("type").and_then(Value::as_str).unwrap_or("text");
    match kind {
        "text" => Ok(text_part(
            p.get("text").and_then(Value::as_str).unwrap_or(""),
        )),
        "image_url" => {
            let url = openai_chat::image_url(p).map_err(invalid)?;
            media(url).map(Some)
        }
        "input_audio" => {
            let a = p.get("input_audio").unwrap_or(&Value::Null);
            let data = a
                .get("data")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("input_audio.data must be a string"))?;
            let format = a.get("format").and_then(Value::as_str).unwrap_or("wav");
            let mime = if format == "mp3" {
                "audio/mpeg".to_string()
            } else {
                format!("audio/{format}")
            };
            Ok(Some(
                json!({"inlineData": {"mimeType": mime, "data": data}}),
            ))
        }
        "file" => {
            let f = p.get("file").unwrap_or(&Value::Null);
            if let Some(data) = f.get("file_data").and_then(Value::as_str) {
                return media(data).map(Some);
            }
            let uri = f
                .get("file_id")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("file needs file_data or file_id"))?;
            let mime = f
                .get("format")
                .and_then(Value::as_str)
                .unwrap_or_else(|| mime_from_url(uri));
            Ok(Some(
                json!({"fileData": {"mimeType": mime, "fileUri": uri}}),
            ))
        }
        other => Err(invalid(format!(
            "content part type `{other}` is not supported"
        ))),
    }
}

fn text_part(s: &str) -> Option<Value> {
    (!s.is_empty()).then(|| json!({"text": s}))
}

/// A message `content` as Gemini parts.
fn parts(c: &Value) -> Result<Vec<Value>, TranslateError> {
    match c {
        Value::String(s) => Ok(text_part(s).into_iter().collect()),
        Value::Array(ps) => {
            let mut out = Vec::with_capacity(ps.len());
            for p in ps {
                out.extend(part(p)?);
            }
            Ok(out)
        }
        Value::Null => Ok(Vec::new()),
        _ => Err(invalid(
            "message content must be a string or a list of parts",
        )),
    }
}

/// `arguments` (a JSON string) as the `args` object.
fn args(f: &Value) -> Result<Value, TranslateError> {
    let a = f.get("arguments").and_then(Value::as_str).unwrap_or("");
    if a.trim().is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(a).map_err(|e| invalid(format!("tool call arguments are not JSON: {e}")))
}

/// A `functionCall` part for an OpenAI tool call, with its thought signature (from the id, or
/// the `extra_content.google.thought_signature` Google's own OpenAI endpoint uses).
fn function_call(call: &Value) -> Result<(String, Value), TranslateError> {
    let f = call.get("function").unwrap_or(&Value::Null);
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("tool call function.name must be a string"))?;
    let id = call.get("id").and_then(Value::as_str).unwrap_or("");
    let mut p = json!({"functionCall": {"name": name, "args": args(f)?}});
    let sig = split_tool_call_id(id).1.or_else(|| {
        call.pointer("/extra_content/google/thought_signature")
            .and_then(Value::as_str)
    });
    if let Some(sig) = sig {
        p["thoughtSignature"] = json!(sig);
    }
    Ok((id.to_string(), p))
}

/// A JSON Schema for Gemini: the `$schema` dialect marker is dropped, the rest passes.
fn schema(s: &Value) -> Value {
    let mut s = s.clone();
    if let Some(o) = s.as_object_mut() {
        o.remove("$schema");
    }
    s
}

/// A tool result as `functionResponse.response`.
fn tool_response(c: &Value) -> Value {
    let text = text_of(c);
    match serde_json::from_str::<Value>(&text) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => json!({"content": v}),
        _ => json!({"content": text}),
    }
}

/// Append `parts` as a turn of `role`, merged into the previous turn when it has the same role.
fn push(contents: &mut Vec<Value>, role: &str, parts: Vec<Value>) {
    if parts.is_empty() {
        return;
    }
    if let Some(last) = contents.last_mut()
        && last["role"] == role
        && let Some(a) = last["parts"].as_array_mut()
    {
        a.extend(parts);
        return;
    }
    contents.push(json!({"role": role, "parts": parts}));
}

/// Translate `chat` (an OpenAI chat body) into a `generateContent` body.
pub fn to_generate_content(chat: &Value) -> Result<Value, TranslateError> {
    let msgs = openai_chat::messages(chat).map_err(invalid)?;
    let mut system: Vec<Value> = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    // tool call id -> function name, for the results that follow
    let mut calls: Vec<(String, String)> = Vec::new();
    for m in msgs {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
        let c = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => system.extend(parts(c)?),
            "assistant" => {
                let mut ps = parts(c)?;
                for call in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let (id, p) = function_call(call)?;
                    calls.push((id, p["functionCall"]["name"].as_str().unwrap_or("").into()));
                    ps.push(p);
                }
                // the legacy single `function_call`
                if let Some(f) = m.get("function_call").filter(|f| f.is_object()) {
                    let (_, p) = function_call(&json!({"function": f}))?;
                    ps.push(p);
                }
                push(&mut contents, "model", ps);
            }
            "tool" => {
                let id = m.get("tool_call_id").and_then(Value::as_str).unwrap_or("");
                let name = calls
                    .iter()
                    .rev()
                    .find(|(i, _)| i == id)
                    .map(|(_, n)| n.as_str())
                    .or_else(|| m.get("name").and_then(Value::as_str))
                    .ok_or_else(|| {
                        invalid(format!("tool message `{id}` answers no earlier tool call"))
                    })?
                    .to_string();
                let p = json!({"functionResponse": {"name": name, "response": tool_response(c)}});
                push(&mut contents, "user", vec![p]);
            }
            "function" => {
                let name = m
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("function message needs a name"))?;
                let p = json!({"functionResponse": {"name": name, "response": tool_response(c)}});
                push(&mut contents, "user", vec![p]);
            }
            _ => push(&mut contents, "user", parts(c)?),
        }
    }
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system}));
    }
    let config = generation_config(chat)?;
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    if let Some(tools) = tools(chat)? {
        body.insert("tools".into(), tools);
    }
    if let Some(tc) = tool_config(chat)? {
        body.insert("toolConfig".into(), tc);
    }
    for (from, to) in [
        ("safety_settings", "safetySettings"),
        ("safetySettings", "safetySettings"),
        ("cached_content", "cachedContent"),
        ("cachedContent", "cachedContent"),
    ] {
        if let Some(v) = chat.get(from).filter(|v| !v.is_null()) {
            body.insert(to.into(), v.clone());
        }
    }
    Ok(Value::Object(body))
}

fn generation_config(chat: &Value) -> Result<Map<String, Value>, TranslateError> {
    let mut g = Map::new();
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("n", "candidateCount"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("seed", "seed"),
    ] {
        if let Some(v) = chat.get(from).filter(|v| !v.is_null()) {
            g.insert(to.into(), v.clone());
        }
    }
    if let Some(max) = ["max_tokens", "max_completion_tokens"]
        .iter()
        .filter_map(|k| chat.get(*k).and_then(Value::as_u64))
        .min()
    {
        g.insert("maxOutputTokens".into(), json!(max));
    }
    match chat.get("stop") {
        Some(Value::String(s)) => {
            g.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            g.insert("stopSequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if let Some(rf) = chat.get("response_format").filter(|v| !v.is_null()) {
        match rf.get("type").and_then(Value::as_str) {
            Some("json_object") => {
                g.insert("responseMimeType".into(), json!("application/json"));
            }
            Some("json_schema") => {
                let schema = rf
                    .pointer("/json_schema/schema")
                    .ok_or_else(|| invalid("response_format.json_schema.schema is missing"))?;
                g.insert("responseMimeType".into(), json!("application/json"));
                g.insert("responseJsonSchema".into(), self::schema(schema));
            }
            Some("text") => {}
            _ => {
                return Err(invalid(
                    "response_format.type must be text, json_object or json_schema",
                ));
            }
        }
    }
    if let Some(effort) = chat.get("reasoning_effort").and_then(Value::as_str) {
        let thinking = match effort {
            "none" => json!({"thinkingBudget": 0}),
            "minimal" | "low" => json!({"thinkingBudget": 1024, "includeThoughts": true}),
            "medium" => json!({"thinkingBudget": 2048, "includeThoughts": true}),
            _ => json!({"thinkingBudget": 4096, "includeThoughts": true}),
        };
        g.insert("thinkingConfig".into(), thinking);
    }
    Ok(g)
}

fn tools(chat: &Value) -> Result<Option<Value>, TranslateError> {
    let Some(list) = chat.get("tools").and_then(Value::as_array) else {
        return Ok(None);
    };
    let mut decls = Vec::new();
    let mut others = Vec::new();
    for t in list {
        let is_function = t.get("type").and_then(Value::as_str) == Some("function");
        if !is_function {
            // a Gemini tool given as is, e.g. {"googleSearch": {}}
            if t.is_object() && t.get("type").is_none() {
                others.push(t.clone());
                continue;
            }
            return Err(invalid(format!(
                "tool type `{}` is not supported",
                t.get("type").and_then(Value::as_str).unwrap_or("?")
            )));
        }
        let f = t
            .get("function")
            .ok_or_else(|| invalid("function tools need a `function` object"))?;
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("tool function.name must be a string"))?;
        let mut d = json!({"name": name});
        if let Some(desc) = f.get("description").filter(|v| !v.is_null()) {
            d["description"] = desc.clone();
        }
        if let Some(p) = f.get("parameters").filter(|v| !v.is_null()) {
            d["parametersJsonSchema"] = schema(p);
        }
        decls.push(d);
    }
    let mut out = Vec::new();
    if !decls.is_empty() {
        out.push(json!({"functionDeclarations": decls}));
    }
    out.extend(others);
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

fn tool_config(chat: &Value) -> Result<Option<Value>, TranslateError> {
    let Some(tc) = openai_chat::tool_choice(chat).map_err(invalid)? else {
        return Ok(None);
    };
    let config = match tc {
        ToolChoice::Auto => json!({"mode": "AUTO"}),
        ToolChoice::None => json!({"mode": "NONE"}),
        ToolChoice::Required => json!({"mode": "ANY"}),
        ToolChoice::Named(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
    };
    Ok(Some(json!({"functionCallingConfig": config})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_types_from_extensions() {
        assert_eq!(mime_from_url("https://x/a.PNG?x=1"), "image/png");
        assert_eq!(mime_from_url("gs://b/doc.pdf"), "application/pdf");
        assert_eq!(mime_from_url("https://x/a"), "image/jpeg");
    }

    #[test]
    fn tool_results_are_json_when_they_parse_as_objects() {
        assert_eq!(
            tool_response(&json!("{\"a\":1}")),
            json!({"content": {"a": 1}})
        );
        assert_eq!(tool_response(&json!("42")), json!({"content": "42"}));
    }

    #[test]
    fn consecutive_turns_merge_and_empty_ones_vanish() {
        let chat = json!({"messages": [
            {"role": "user", "content": "a"}, {"role": "user", "content": "b"},
            {"role": "assistant", "content": ""}, {"role": "user", "content": "c"}]});
        let out = to_generate_content(&chat).unwrap();
        assert_eq!(
            out["contents"],
            json!([{"role": "user", "parts": [{"text": "a"}, {"text": "b"}, {"text": "c"}]}])
        );
    }

    #[test]
    fn signature_from_extra_content() {
        let chat = json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "x", "type": "function",
            "function": {"name": "f", "arguments": ""}, "extra_content": {"google": {"thought_signature": "s"}}}]}]});
        let out = to_generate_content(&chat).unwrap();
        assert_eq!(out["contents"][0]["parts"][0]["thoughtSignature"], "s");
        assert_eq!(
            out["contents"][0]["parts"][0]["functionCall"]["args"],
            json!({})
        );
    }
}
