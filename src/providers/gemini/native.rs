//! A client speaking Gemini (our `/v1beta/models/{model}:generateContent`,
//! `:streamGenerateContent` and `:countTokens` routes), served by any deployment: Gemini
//! requests become OpenAI chat requests ([`to_chat`]), and chat answers become Gemini answers
//! ([`from_chat`], [`ChunkTranslator`] for streams, [`count_tokens_response`]).
//!
//! Choices worth knowing:
//! - Tool call ids: a `functionCall`'s own `id` when it has one, else `call_<n>` in request
//!   order; a `functionResponse` answers the earliest unanswered call of the same name (or the
//!   call with its `id`). A `thoughtSignature` rides in the id (see the module root).
//! - Gemini `parameters`/`responseSchema` (OpenAPI subset, `"type": "OBJECT"`) become JSON
//!   Schema (lowercase types, `nullable` as a `"null"` type); `parametersJsonSchema` and
//!   `responseJsonSchema` pass unchanged.
//! - Dropped, no OpenAI equivalent: `topK`, `safetySettings`, `cachedContent`, `labels`,
//!   logprobs settings, thought parts of earlier model turns. Non-function Gemini tools (e.g.
//!   `{"googleSearch": {}}`) are passed in `tools` as they are: a Gemini deployment gets them
//!   back, others refuse them.

use serde_json::{Map, Value, json};

use super::{
    THOUGHT_SEPARATOR, TranslateError, gemini_finish_reason, rpc_status, split_tool_call_id,
};
use super::{data_lines, sse};

fn invalid(m: impl Into<String>) -> TranslateError {
    TranslateError::InvalidGemini(m.into())
}

/// `{"totalTokens": n}`, the `countTokens` answer.
pub fn count_tokens_response(total: u64) -> Value {
    json!({"totalTokens": total})
}

/// Gemini OpenAPI-subset schema -> JSON Schema.
pub fn to_json_schema(s: &Value) -> Value {
    match s {
        Value::Object(o) => {
            let mut out = Map::new();
            for (k, v) in o {
                let v = match k.as_str() {
                    "type" => match v.as_str() {
                        Some(t) => json!(t.to_ascii_lowercase()),
                        None => v.clone(),
                    },
                    "properties" => match v.as_object() {
                        Some(props) => Value::Object(
                            props
                                .iter()
                                .map(|(name, p)| (name.clone(), to_json_schema(p)))
                                .collect(),
                        ),
                        None => v.clone(),
                    },
                    "items" | "anyOf" | "prefixItems" | "additionalProperties" => to_json_schema(v),
                    "nullable" | "propertyOrdering" => continue,
                    _ => v.clone(),
                };
                out.insert(k.clone(), v);
            }
            if o.get("nullable") == Some(&Value::Bool(true))
                && let Some(t) = out.get("type").and_then(Value::as_str)
            {
                let t = t.to_string();
                out.insert("type".into(), json!([t, "null"]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(to_json_schema).collect()),
        _ => s.clone(),
    }
}

/// Text of the text parts of a `{parts: [...]}` (or a plain string).
fn text_of(c: &Value) -> String {
    if let Some(s) = c.as_str() {
        return s.to_string();
    }
    c.get("parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("thought") != Some(&Value::Bool(true)))
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A user part as an OpenAI content part.
fn user_part(p: &Value) -> Result<Value, TranslateError> {
    if let Some(t) = p.get("text").and_then(Value::as_str) {
        return Ok(json!({"type": "text", "text": t}));
    }
    if let Some(d) = p.get("inlineData") {
        let mime = d.get("mimeType").and_then(Value::as_str).unwrap_or("");
        let data = d
            .get("data")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("inlineData.data must be a string"))?;
        return Ok(match mime {
            m if m.starts_with("image/") => {
                json!({"type": "image_url", "image_url": {"url": format!("data:{m};base64,{data}")}})
            }
            "audio/wav" | "audio/x-wav" => {
                json!({"type": "input_audio", "input_audio": {"data": data, "format": "wav"}})
            }
            "audio/mpeg" | "audio/mp3" => {
                json!({"type": "input_audio", "input_audio": {"data": data, "format": "mp3"}})
            }
            m => json!({"type": "file", "file": {"file_data": format!("data:{m};base64,{data}")}}),
        });
    }
    if let Some(f) = p.get("fileData") {
        let mime = f.get("mimeType").and_then(Value::as_str).unwrap_or("");
        let uri = f
            .get("fileUri")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("fileData.fileUri must be a string"))?;
        return Ok(if mime.is_empty() || mime.starts_with("image/") {
            json!({"type": "image_url", "image_url": {"url": uri}})
        } else {
            json!({"type": "file", "file": {"file_id": uri, "format": mime}})
        });
    }
    let keys: Vec<&str> = p
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    Err(invalid(format!("part with {keys:?} is not supported here")))
}

/// A `functionResponse.response` as tool message text: a lone string field (`content`,
/// `output`, `result`…) as itself, anything else as JSON.
fn response_text(r: &Value) -> String {
    match r.as_object() {
        Some(o) if o.len() == 1 => match o.values().next() {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        },
        _ => match r {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            v => v.to_string(),
        },
    }
}

/// Translate a Gemini request for `model` into an OpenAI chat request; `stream` asks for a
/// stream with usage.
pub fn to_chat(req: &Value, model: &str, stream: bool) -> Result<Value, TranslateError> {
    let contents = req
        .get("contents")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("contents must be a list"))?;
    let mut messages = Vec::new();
    if let Some(si) = req.get("systemInstruction").filter(|v| !v.is_null()) {
        let text = text_of(si);
        if !text.is_empty() {
            messages.push(json!({"role": "system", "content": text}));
        }
    }
    let mut numbered = 0usize;
    // (name, id) of calls not answered yet
    let mut open: Vec<(String, String)> = Vec::new();
    for c in contents {
        let role = c.get("role").and_then(Value::as_str).unwrap_or("user");
        let parts = c
            .get("parts")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("each content needs a parts list"))?;
        match role {
            "model" => {
                let mut text = String::new();
                let mut calls = Vec::new();
                for p in parts {
                    if let Some(f) = p.get("functionCall") {
                        let name = f
                            .get("name")
                            .and_then(Value::as_str)
                            .ok_or_else(|| invalid("functionCall.name must be a string"))?;
                        let mut id = match f.get("id").and_then(Value::as_str) {
                            Some(id) if !id.is_empty() => id.to_string(),
                            _ => format!("call_{numbered}"),
                        };
                        numbered += 1;
                        if let Some(sig) = p.get("thoughtSignature").and_then(Value::as_str) {
                            id = format!("{id}{THOUGHT_SEPARATOR}{sig}");
                        }
                        open.push((name.to_string(), id.clone()));
                        let args = f.get("args").cloned().unwrap_or(json!({}));
                        calls.push(json!({"id": id, "type": "function",
                            "function": {"name": name, "arguments": args.to_string()}}));
                    } else if p.get("thought") == Some(&Value::Bool(true)) {
                        // earlier reasoning: not sent back
                    } else if let Some(t) = p.get("text").and_then(Value::as_str) {
                        text.push_str(t);
                    } else {
                        return Err(invalid("model turns can only hold text and function calls"));
                    }
                }
                if text.is_empty() && calls.is_empty() {
                    continue;
                }
                let mut m = json!({"role": "assistant",
                    "content": if text.is_empty() { Value::Null } else { json!(text) }});
                if !calls.is_empty() {
                    m["tool_calls"] = Value::Array(calls);
                }
                messages.push(m);
            }
            "user" | "function" => {
                let mut content = Vec::new();
                for p in parts {
                    if let Some(f) = p.get("functionResponse") {
                        let name = f
                            .get("name")
                            .and_then(Value::as_str)
                            .ok_or_else(|| invalid("functionResponse.name must be a string"))?;
                        let own = f
                            .get("id")
                            .and_then(Value::as_str)
                            .filter(|s| !s.is_empty());
                        let at = open.iter().position(|(n, id)| match own {
                            Some(own) => split_tool_call_id(id).0 == own,
                            None => n == name,
                        });
                        let id = match at {
                            Some(at) => open.remove(at).1,
                            None => {
                                return Err(invalid(format!(
                                    "functionResponse `{name}` answers no earlier functionCall"
                                )));
                            }
                        };
                        messages.push(json!({"role": "tool", "tool_call_id": id,
                            "content": response_text(f.get("response").unwrap_or(&Value::Null))}));
                    } else {
                        content.push(user_part(p)?);
                    }
                }
                match content.as_slice() {
                    [] => {}
                    [one] if one["type"] == "text" => {
                        messages.push(json!({"role": "user", "content": one["text"]}));
                    }
                    _ => messages.push(json!({"role": "user", "content": content})),
                }
            }
            other => return Err(invalid(format!("unknown role `{other}`"))),
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), Value::Array(messages));
    if let Some(g) = req.get("generationConfig").filter(|v| v.is_object()) {
        generation_config(g, &mut body);
    }
    if let Some(tools) = req.get("tools").and_then(Value::as_array) {
        let mut out = Vec::new();
        for t in tools {
            match t.get("functionDeclarations").and_then(Value::as_array) {
                Some(decls) => {
                    for d in decls {
                        let mut f = json!({"name": d.get("name").cloned().unwrap_or(Value::Null)});
                        if let Some(desc) = d.get("description") {
                            f["description"] = desc.clone();
                        }
                        if let Some(p) = d.get("parametersJsonSchema") {
                            f["parameters"] = p.clone();
                        } else if let Some(p) = d.get("parameters") {
                            f["parameters"] = to_json_schema(p);
                        }
                        out.push(json!({"type": "function", "function": f}));
                    }
                }
                None => out.push(t.clone()),
            }
        }
        if !out.is_empty() {
            body.insert("tools".into(), Value::Array(out));
        }
    }
    if let Some(fc) = req.pointer("/toolConfig/functionCallingConfig") {
        let names = fc.get("allowedFunctionNames").and_then(Value::as_array);
        let choice = match fc.get("mode").and_then(Value::as_str).unwrap_or("AUTO") {
            "NONE" => json!("none"),
            "ANY" => match names.map(Vec::as_slice) {
                Some([one]) => json!({"type": "function", "function": {"name": one}}),
                _ => json!("required"),
            },
            _ => json!("auto"),
        };
        body.insert("tool_choice".into(), choice);
    }
    if stream {
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(Value::Object(body))
}

fn generation_config(g: &Value, body: &mut Map<String, Value>) {
    for (from, to) in [
        ("temperature", "temperature"),
        ("topP", "top_p"),
        ("maxOutputTokens", "max_completion_tokens"),
        ("candidateCount", "n"),
        ("presencePenalty", "presence_penalty"),
        ("frequencyPenalty", "frequency_penalty"),
        ("seed", "seed"),
        ("stopSequences", "stop"),
    ] {
        if let Some(v) = g.get(from).filter(|v| !v.is_null()) {
            body.insert(to.into(), v.clone());
        }
    }
    let schema = g
        .get("responseJsonSchema")
        .cloned()
        .or_else(|| g.get("responseSchema").map(to_json_schema));
    match (g.get("responseMimeType").and_then(Value::as_str), schema) {
        (Some("application/json"), Some(schema)) | (None, Some(schema)) => {
            body.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}),
            );
        }
        (Some("application/json"), None) => {
            body.insert("response_format".into(), json!({"type": "json_object"}));
        }
        _ => {}
    }
    if let Some(t) = g.get("thinkingConfig") {
        let effort = match (
            t.get("thinkingLevel").and_then(Value::as_str),
            t.get("thinkingBudget").and_then(Value::as_i64),
        ) {
            (Some(level), _) => Some(level.to_ascii_lowercase()),
            (None, Some(0)) => Some("none".into()),
            (None, Some(b)) if b > 0 && b <= 1024 => Some("low".into()),
            (None, Some(b)) if b > 0 && b <= 2048 => Some("medium".into()),
            (None, Some(b)) if b > 0 => Some("high".into()),
            _ => None,
        };
        if let Some(e) = effort {
            body.insert("reasoning_effort".into(), json!(e));
        }
    }
}

/// Gemini `usageMetadata` from an OpenAI `usage`.
pub fn usage_metadata(u: &Value) -> Value {
    let n = |p: &str| u.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let prompt = n("/prompt_tokens");
    let completion = n("/completion_tokens");
    let thoughts = n("/completion_tokens_details/reasoning_tokens").min(completion);
    let cached = match n("/prompt_tokens_details/cached_tokens") {
        0 => n("/cache_read_input_tokens"),
        c => c,
    };
    let mut m = json!({
        "promptTokenCount": prompt,
        "candidatesTokenCount": completion - thoughts,
        "totalTokenCount": n("/total_tokens").max(prompt + completion),
    });
    if thoughts > 0 {
        m["thoughtsTokenCount"] = json!(thoughts);
    }
    if cached > 0 {
        m["cachedContentTokenCount"] = json!(cached);
    }
    m
}

/// A `functionCall` part for an OpenAI tool call (arguments that are not JSON become `{}`).
fn call_part(id: &str, name: &Value, args: &str) -> Value {
    let args: Value = serde_json::from_str(args)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let mut p = json!({"functionCall": {"name": name, "args": args}});
    if let (_, Some(sig)) = split_tool_call_id(id) {
        p["thoughtSignature"] = json!(sig);
    }
    p
}

/// Text of a message `content` (a string or text parts).
fn content_text(c: &Value) -> String {
    match c {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// Translate an OpenAI `chat.completion` into a `GenerateContentResponse`.
pub fn from_chat(chat: &Value) -> Value {
    let mut candidates = Vec::new();
    for (i, c) in chat
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let m = c.get("message").unwrap_or(&Value::Null);
        let mut parts = Vec::new();
        if let Some(r) = m
            .get("reasoning_content")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            parts.push(json!({"text": r, "thought": true}));
        }
        let text = content_text(m.get("content").unwrap_or(&Value::Null));
        if !text.is_empty() {
            parts.push(json!({"text": text}));
        }
        for call in m
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let f = call.get("function").unwrap_or(&Value::Null);
            parts.push(call_part(
                call.get("id").and_then(Value::as_str).unwrap_or(""),
                f.get("name").unwrap_or(&Value::Null),
                f.get("arguments").and_then(Value::as_str).unwrap_or(""),
            ));
        }
        if parts.is_empty() {
            parts.push(json!({"text": ""}));
        }
        let reason = c
            .get("finish_reason")
            .and_then(Value::as_str)
            .unwrap_or("stop");
        candidates.push(json!({
            "content": {"role": "model", "parts": parts},
            "finishReason": gemini_finish_reason(reason),
            "index": c.get("index").and_then(Value::as_u64).unwrap_or(i as u64),
        }));
    }
    let mut out = json!({
        "candidates": candidates,
        "modelVersion": chat.get("model").cloned().unwrap_or(json!("")),
    });
    if let Some(u) = chat.get("usage").filter(|u| u.is_object()) {
        out["usageMetadata"] = usage_metadata(u);
    }
    if let Some(id) = chat.get("id").filter(|v| v.is_string()) {
        out["responseId"] = id.clone();
    }
    out
}

/// A tool call being streamed: arguments arrive in pieces.
#[derive(Debug)]
struct PendingCall {
    choice: u64,
    index: u64,
    id: String,
    name: Value,
    args: String,
}

/// OpenAI chat completion chunks in, Gemini `streamGenerateContent?alt=sse` events out
/// (`data: {GenerateContentResponse}\r\n\r\n`, no `[DONE]`).
///
/// Text and thoughts go out as they arrive; tool calls are gathered and go out whole, with the
/// `finishReason` and `usageMetadata`, in the last event (at `[DONE]` or the end of input).
#[derive(Debug, Default)]
pub struct ChunkTranslator {
    carry: Vec<u8>,
    id: String,
    model: String,
    calls: Vec<PendingCall>,
    /// Choice index -> OpenAI finish reason.
    finishes: Vec<(u64, String)>,
    usage: Option<Value>,
    /// The last event is out.
    closed: bool,
}

impl ChunkTranslator {
    /// A translator for one stream.
    pub fn new() -> Self {
        Self::default()
    }

    fn event(&self, mut ev: Value) -> Vec<u8> {
        ev["modelVersion"] = json!(self.model);
        if !self.id.is_empty() {
            ev["responseId"] = json!(self.id);
        }
        sse(&ev, b"\r\n\r\n")
    }

    /// Translate the next chunk bytes.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for data in data_lines(&mut self.carry, bytes) {
            if data.trim_ascii() == b"[DONE]" {
                out.extend(self.close());
            } else if let Ok(chunk) = serde_json::from_slice::<Value>(&data) {
                out.extend(self.chunk(&chunk));
            }
        }
        out
    }

    /// The end of input: the last event, if `[DONE]` did not send it.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = self.feed(b"\n");
        out.extend(self.close());
        out
    }

    fn chunk(&mut self, chunk: &Value) -> Vec<u8> {
        if let Some(e) = chunk.get("error") {
            let code = e
                .get("code")
                .and_then(|c| c.as_u64().or_else(|| c.as_str()?.parse().ok()))
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(500);
            let ev = json!({"error": {"code": code,
                "message": e.get("message").cloned().unwrap_or(json!("upstream error")),
                "status": rpc_status(code)}});
            // an error ends the stream: no closing event invents a finish after it
            self.closed = true;
            return sse(&ev, b"\r\n\r\n");
        }
        for (k, field) in [("id", &mut self.id), ("model", &mut self.model)] {
            if let Some(v) = chunk
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                *field = v.to_string();
            }
        }
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        let mut candidates = Vec::new();
        for (i, c) in chunk
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let choice = c.get("index").and_then(Value::as_u64).unwrap_or(i as u64);
            let d = c.get("delta").unwrap_or(&Value::Null);
            let mut parts = Vec::new();
            if let Some(r) = d
                .get("reasoning_content")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                parts.push(json!({"text": r, "thought": true}));
            }
            if let Some(t) = d
                .get("content")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                parts.push(json!({"text": t}));
            }
            for tc in d
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                self.gather(choice, tc);
            }
            if !parts.is_empty() {
                candidates
                    .push(json!({"content": {"role": "model", "parts": parts}, "index": choice}));
            }
            if let Some(f) = c.get("finish_reason").and_then(Value::as_str) {
                self.finishes.retain(|(i, _)| *i != choice);
                self.finishes.push((choice, f.to_string()));
            }
        }
        if candidates.is_empty() {
            return Vec::new();
        }
        self.event(json!({"candidates": candidates}))
    }

    /// Add a tool call delta to the call it continues (or start one).
    fn gather(&mut self, choice: u64, tc: &Value) {
        let index = tc.get("index").and_then(Value::as_u64).unwrap_or(0);
        let f = tc.get("function").unwrap_or(&Value::Null);
        let piece = f.get("arguments").and_then(Value::as_str).unwrap_or("");
        let at = self
            .calls
            .iter()
            .position(|c| c.choice == choice && c.index == index);
        let call = match at {
            Some(at) => &mut self.calls[at],
            None => {
                self.calls.push(PendingCall {
                    choice,
                    index,
                    id: String::new(),
                    name: Value::Null,
                    args: String::new(),
                });
                let last = self.calls.len() - 1;
                &mut self.calls[last]
            }
        };
        if let Some(id) = tc
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            call.id = id.to_string();
        }
        if let Some(name) = f
            .get("name")
            .filter(|n| n.as_str().is_some_and(|s| !s.is_empty()))
        {
            call.name = name.clone();
        }
        call.args.push_str(piece);
    }

    /// The last event: gathered tool calls, finish reasons, usage.
    fn close(&mut self) -> Vec<u8> {
        if self.closed {
            return Vec::new();
        }
        self.closed = true;
        let mut indices: Vec<u64> = self
            .finishes
            .iter()
            .map(|(i, _)| *i)
            .chain(self.calls.iter().map(|c| c.choice))
            .collect();
        indices.sort_unstable();
        indices.dedup();
        if indices.is_empty() && self.usage.is_none() {
            return Vec::new();
        }
        let mut candidates = Vec::new();
        for i in indices {
            let mut parts: Vec<Value> = self
                .calls
                .iter()
                .filter(|c| c.choice == i)
                .map(|c| call_part(&c.id, &c.name, &c.args))
                .collect();
            if parts.is_empty() {
                parts.push(json!({"text": ""}));
            }
            let mut cand = json!({"content": {"role": "model", "parts": parts}, "index": i});
            if let Some((_, f)) = self.finishes.iter().find(|(j, _)| *j == i) {
                cand["finishReason"] = json!(gemini_finish_reason(f));
            }
            candidates.push(cand);
        }
        let mut ev = json!({});
        if !candidates.is_empty() {
            ev["candidates"] = Value::Array(candidates);
        }
        if let Some(u) = &self.usage {
            ev["usageMetadata"] = usage_metadata(u);
        }
        self.event(ev)
    }
}

impl crate::providers::StreamTranslate for ChunkTranslator {
    fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        ChunkTranslator::feed(self, bytes)
    }
    fn finish(&mut self) -> Vec<u8> {
        ChunkTranslator::finish(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_schemas_become_json_schema() {
        let s = json!({"type": "OBJECT", "properties": {"a": {"type": "STRING", "nullable": true},
            "b": {"type": "ARRAY", "items": {"type": "INTEGER"}}}, "propertyOrdering": ["a", "b"]});
        assert_eq!(
            to_json_schema(&s),
            json!({"type": "object", "properties": {"a": {"type": ["string", "null"]},
                "b": {"type": "array", "items": {"type": "integer"}}}})
        );
    }

    #[test]
    fn responses_pair_with_calls_by_name_and_order() {
        let req = json!({"contents": [
            {"role": "user", "parts": [{"text": "go"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}},
                {"functionCall": {"name": "g", "args": {}}}, {"functionCall": {"name": "f", "args": {"x": 1}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"r": 1}}},
                {"functionResponse": {"name": "f", "response": {"r": 2}}},
                {"functionResponse": {"name": "g", "response": {"r": 3}}}]}]});
        let chat = to_chat(&req, "m", false).unwrap();
        let ids: Vec<&str> = chat["messages"].as_array().unwrap()[2..]
            .iter()
            .map(|m| m["tool_call_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["call_0", "call_2", "call_1"]);
        let orphan = json!({"contents": [{"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]});
        assert!(to_chat(&orphan, "m", false).is_err());
    }

    #[test]
    fn errors_become_gemini_errors() {
        let mut t = ChunkTranslator::new();
        let out = t.feed(b"data: {\"error\": {\"message\": \"nope\", \"code\": \"429\"}}\n\n");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "data: {\"error\":{\"code\":429,\"message\":\"nope\",\"status\":\"RESOURCE_EXHAUSTED\"}}\r\n\r\n"
        );
        assert!(t.finish().is_empty());
    }
}
