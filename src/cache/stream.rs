//! Streamed answers: assembled for storing, replayed from a stored answer.
//!
//! The response cache stores one shape of answer, the non-streamed JSON body. [`Assembler`]
//! turns an OpenAI SSE stream (`chat.completion.chunk` or `text_completion` chunks) into that
//! body once the stream is complete; [`replay`] turns a stored body back into SSE events.
//! `replay` only gives events that an `Assembler` accepts again.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use bytes::Bytes;
use serde_json::{Map, Value};

/// Most bytes an [`Assembler`] holds (unfinished line and event plus the answer so far).
const CAP: usize = 8 << 20;

/// Bytes counted for each new choice or tool call, so many tiny ones also reach [`CAP`].
const ENTRY_COST: usize = 64;

/// A stream or body that is not a clean answer.
#[derive(Debug)]
struct Bad;

/// Accumulates an OpenAI SSE stream (chat.completion.chunk or text_completion chunks) fed in
/// arbitrary byte splits.
#[derive(Debug, Default)]
pub struct Assembler {
    /// The unfinished line.
    line: Vec<u8>,
    /// The `data:` lines of the unfinished event, joined by `\n`.
    data: Vec<u8>,
    /// Whether the unfinished event has a `data:` line (it may be empty).
    has_data: bool,
    /// Bytes of the answer so far (see [`CAP`]).
    stored: usize,
    /// `data: [DONE]` seen: the rest is ignored.
    done: bool,
    /// Not a clean answer, or over [`CAP`]: the rest is ignored and `finish` gives `None`.
    failed: bool,
    answer: Answer,
}

impl Assembler {
    /// An assembler that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed raw SSE bytes as they come (any split, may cut lines / UTF-8 in the middle).
    /// `data:` lines are read, events end at blank lines, other lines (comments, `event:`) are
    /// ignored. Past 8 MiB held, the assembler gives up.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && !self.done && !self.failed {
            let (part, rest, ends) = match memchr::memchr(b'\n', bytes) {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            bytes = rest;
            if self.held() + part.len() > CAP {
                self.give_up();
                return;
            }
            if !ends {
                self.line.extend_from_slice(part);
            } else if self.line.is_empty() {
                self.on_line(part);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(part);
                self.on_line(&line);
                line.clear();
                self.line = line;
            }
            self.check_cap();
        }
    }

    /// The whole answer as a non-streamed JSON body, or `None` when the stream was not a
    /// complete, clean answer: no chunk parsed, an `{"error": ...}` event seen, a chunk that is
    /// not JSON (or of an unexpected shape), or a choice without a `finish_reason`.
    pub fn finish(mut self) -> Option<Vec<u8>> {
        if !self.done && !self.failed {
            // the last line and event, even without their line end and blank line
            let line = std::mem::take(&mut self.line);
            if !line.is_empty() {
                self.on_line(&line);
            }
            self.dispatch();
        }
        if self.failed {
            return None;
        }
        Some(self.answer.build()?.to_string().into_bytes())
    }

    /// One complete line, without its `\n`.
    fn on_line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.dispatch();
            return;
        }
        let value = match line.strip_prefix(b"data") {
            Some([]) => &[][..],
            Some([b':', rest @ ..]) => rest.strip_prefix(b" ").unwrap_or(rest),
            _ => return,
        };
        if self.has_data {
            self.data.push(b'\n');
        }
        self.data.extend_from_slice(value);
        self.has_data = true;
    }

    /// The end of an event: its data is a chunk or `[DONE]`.
    fn dispatch(&mut self) {
        if !std::mem::take(&mut self.has_data) || self.done || self.failed {
            self.data.clear();
            return;
        }
        let data = std::mem::take(&mut self.data);
        let payload = data.trim_ascii();
        if payload == b"[DONE]" {
            self.done = true;
        } else {
            let added = serde_json::from_slice(payload)
                .map_err(|_| Bad)
                .and_then(|v| self.answer.chunk(v));
            match added {
                Ok(n) => self.stored = self.stored.saturating_add(n),
                Err(Bad) => self.failed = true,
            }
        }
        self.data = data;
        self.data.clear();
    }

    /// Bytes held: the unfinished line and event, and the answer so far.
    fn held(&self) -> usize {
        self.line.len() + self.data.len() + self.stored
    }

    /// Give up when holding more than [`CAP`].
    fn check_cap(&mut self) {
        if self.held() > CAP {
            self.give_up();
        }
    }

    /// Not a clean answer: drop everything held.
    fn give_up(&mut self) {
        self.failed = true;
        self.line = Vec::new();
        self.data = Vec::new();
        self.answer = Answer::default();
    }
}

/// The answer assembled from the chunks so far.
#[derive(Debug, Default)]
struct Answer {
    chunks: usize,
    /// From the first chunk with an `object`: `text_completion` or not.
    text: Option<bool>,
    id: Option<Value>,
    created: Option<Value>,
    model: Option<Value>,
    system_fingerprint: Option<Value>,
    usage: Option<Value>,
    choices: BTreeMap<u64, Choice>,
}

impl Answer {
    /// Add one chunk; returns the bytes it added to the answer.
    fn chunk(&mut self, v: Value) -> Result<usize, Bad> {
        let Value::Object(mut m) = v else {
            return Err(Bad);
        };
        if m.get("error").is_some_and(|e| !e.is_null()) {
            return Err(Bad);
        }
        self.chunks += 1;
        if self.text.is_none() {
            self.text = m
                .get("object")
                .and_then(Value::as_str)
                .map(|o| o == "text_completion");
        }
        for (name, slot) in [
            ("id", &mut self.id),
            ("created", &mut self.created),
            ("model", &mut self.model),
            ("system_fingerprint", &mut self.system_fingerprint),
        ] {
            match m.remove(name) {
                Some(v) if slot.is_none() && !v.is_null() => *slot = Some(v),
                _ => {}
            }
        }
        if let Some(u @ Value::Object(_)) = m.remove("usage") {
            self.usage = Some(u);
        }
        let choices = match m.remove("choices") {
            None | Some(Value::Null) => return Ok(0),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(Bad),
        };
        let mut added = 0;
        for (pos, c) in choices.into_iter().enumerate() {
            let Value::Object(c) = c else {
                return Err(Bad);
            };
            let choice = match self.choices.entry(index(c.get("index"), pos)?) {
                Entry::Vacant(e) => {
                    added += ENTRY_COST;
                    e.insert(Choice::default())
                }
                Entry::Occupied(e) => e.into_mut(),
            };
            added += choice.add(c)?;
        }
        Ok(added)
    }

    /// The non-streamed body, or `None` without chunks, choices or a `finish_reason` each.
    fn build(self) -> Option<Value> {
        if self.chunks == 0
            || self.choices.is_empty()
            || self.choices.values().any(|c| c.finish_reason.is_none())
        {
            return None;
        }
        let text = self.text == Some(true);
        let object = if text {
            "text_completion"
        } else {
            "chat.completion"
        };
        let mut out = Map::new();
        out.insert("id".into(), self.id.unwrap_or(Value::Null));
        out.insert("object".into(), object.into());
        out.insert("created".into(), self.created.unwrap_or(Value::Null));
        out.insert("model".into(), self.model.unwrap_or(Value::Null));
        if let Some(f) = self.system_fingerprint {
            out.insert("system_fingerprint".into(), f);
        }
        let choices = self.choices.into_iter();
        let choices = choices.map(|(i, c)| c.into_value(i, text)).collect();
        out.insert("choices".into(), Value::Array(choices));
        if let Some(u) = self.usage {
            out.insert("usage".into(), u);
        }
        Some(Value::Object(out))
    }
}

/// One choice assembled so far.
#[derive(Debug, Default)]
struct Choice {
    role: Option<String>,
    content: Option<String>,
    reasoning: Option<String>,
    refusal: Option<String>,
    tool_calls: BTreeMap<u64, ToolCall>,
    function_call: Option<Call>,
    /// `text` of text completions.
    text: Option<String>,
    logprobs: Option<Map<String, Value>>,
    finish_reason: Option<String>,
}

impl Choice {
    /// Add one chunk's choice; returns the bytes added.
    fn add(&mut self, mut c: Map<String, Value>) -> Result<usize, Bad> {
        let mut added = append(&mut self.text, opt_str(c.get("text"))?);
        if let Some(d) = opt_obj(c.get("delta"))? {
            added += self.delta(d)?;
        }
        match c.remove("logprobs") {
            None | Some(Value::Null) => {}
            Some(Value::Object(l)) => {
                added += l.iter().map(|(k, v)| k.len() + weight(v)).sum::<usize>();
                merge_logprobs(self.logprobs.get_or_insert_default(), l);
            }
            Some(_) => return Err(Bad),
        }
        if let Some(f) = opt_str(c.get("finish_reason"))? {
            added += f.len();
            self.finish_reason = Some(f.to_owned());
        }
        Ok(added)
    }

    /// Add a chat chunk's `delta`; returns the bytes added.
    fn delta(&mut self, d: &Map<String, Value>) -> Result<usize, Bad> {
        let role = opt_str(d.get("role"))?;
        let mut added = 0;
        if self.role.is_none() {
            added += append(&mut self.role, role);
        }
        added += append(&mut self.content, opt_str(d.get("content"))?);
        added += append(&mut self.reasoning, opt_str(d.get("reasoning_content"))?);
        added += append(&mut self.refusal, opt_str(d.get("refusal"))?);
        match d.get("tool_calls") {
            None | Some(Value::Null) => {}
            Some(Value::Array(calls)) => {
                for (pos, t) in calls.iter().enumerate() {
                    let Value::Object(t) = t else {
                        return Err(Bad);
                    };
                    let call = match self.tool_calls.entry(index(t.get("index"), pos)?) {
                        Entry::Vacant(e) => {
                            added += ENTRY_COST;
                            e.insert(ToolCall::default())
                        }
                        Entry::Occupied(e) => e.into_mut(),
                    };
                    added += call.add(t)?;
                }
            }
            Some(_) => return Err(Bad),
        }
        if let Some(f) = opt_obj(d.get("function_call"))? {
            added += self.function_call.get_or_insert_default().add(f)?;
        }
        Ok(added)
    }

    /// The choice of the non-streamed body.
    fn into_value(self, index: u64, text: bool) -> Value {
        let mut out = Map::new();
        out.insert("index".into(), index.into());
        if text {
            out.insert("text".into(), self.text.unwrap_or_default().into());
        } else {
            out.insert("message".into(), self.message());
        }
        out.insert(
            "logprobs".into(),
            self.logprobs.map_or(Value::Null, Value::Object),
        );
        out.insert("finish_reason".into(), self.finish_reason.into());
        Value::Object(out)
    }

    /// The chat `message`.
    fn message(&self) -> Value {
        let mut m = Map::new();
        let role = self.role.as_deref().unwrap_or("assistant");
        m.insert("role".into(), role.into());
        m.insert("content".into(), self.content.clone().into());
        if let Some(r) = &self.reasoning {
            m.insert("reasoning_content".into(), r.as_str().into());
        }
        if let Some(r) = &self.refusal {
            m.insert("refusal".into(), r.as_str().into());
        }
        if !self.tool_calls.is_empty() {
            let calls = self.tool_calls.values().map(ToolCall::to_value).collect();
            m.insert("tool_calls".into(), Value::Array(calls));
        }
        if let Some(f) = &self.function_call {
            m.insert("function_call".into(), f.to_value());
        }
        Value::Object(m)
    }
}

/// One tool call assembled so far.
#[derive(Debug, Default)]
struct ToolCall {
    id: Option<String>,
    kind: Option<String>,
    function: Call,
}

impl ToolCall {
    /// Add one delta of this tool call; returns the bytes added.
    fn add(&mut self, t: &Map<String, Value>) -> Result<usize, Bad> {
        let mut added = 0;
        let id = opt_str(t.get("id"))?;
        if self.id.is_none() {
            added += append(&mut self.id, id);
        }
        let kind = opt_str(t.get("type"))?;
        if self.kind.is_none() {
            added += append(&mut self.kind, kind);
        }
        if let Some(f) = opt_obj(t.get("function"))? {
            added += self.function.add(f)?;
        }
        Ok(added)
    }

    /// `{"id","type","function":{"name","arguments"}}`; `id` null when never given.
    fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), self.id.clone().into());
        let kind = self.kind.as_deref().unwrap_or("function");
        m.insert("type".into(), kind.into());
        m.insert("function".into(), self.function.to_value());
        Value::Object(m)
    }
}

/// A function call (`name`, `arguments`) assembled so far.
#[derive(Debug, Default)]
struct Call {
    name: String,
    arguments: String,
}

impl Call {
    /// Add one delta: `arguments` are concatenated; `name` too, except that a piece equal to
    /// the whole name so far is a repeat (some providers send the name in every delta).
    fn add(&mut self, f: &Map<String, Value>) -> Result<usize, Bad> {
        let mut added = 0;
        if let Some(name) = opt_str(f.get("name"))?
            && name != self.name
        {
            self.name.push_str(name);
            added += name.len();
        }
        if let Some(args) = opt_str(f.get("arguments"))? {
            self.arguments.push_str(args);
            added += args.len();
        }
        Ok(added)
    }

    /// `{"name","arguments"}`.
    fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), self.name.as_str().into());
        m.insert("arguments".into(), self.arguments.as_str().into());
        Value::Object(m)
    }
}

/// Append `piece` (if any) to `slot`, which then is `Some`; returns the bytes added.
fn append(slot: &mut Option<String>, piece: Option<&str>) -> usize {
    let Some(piece) = piece else {
        return 0;
    };
    slot.get_or_insert_default().push_str(piece);
    piece.len()
}

/// Merge a chunk's `logprobs` into those so far: arrays (`content`, `tokens`, ...) are
/// concatenated, other non-null values replace earlier ones.
fn merge_logprobs(acc: &mut Map<String, Value>, chunk: Map<String, Value>) {
    for (k, v) in chunk {
        match (acc.get_mut(&k), v) {
            (Some(Value::Array(a)), Value::Array(b)) => a.extend(b),
            (Some(_), Value::Null) => {}
            (_, v) => {
                acc.insert(k, v);
            }
        }
    }
}

/// About the bytes `v` takes in memory (strings, plus a little for each value).
fn weight(v: &Value) -> usize {
    const NODE: usize = 16;
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => NODE,
        Value::String(s) => NODE + s.len(),
        Value::Array(a) => NODE + a.iter().map(weight).sum::<usize>(),
        Value::Object(m) => NODE + m.iter().map(|(k, v)| k.len() + weight(v)).sum::<usize>(),
    }
}

/// A string member: `None` when absent or null, [`Bad`] when of another type.
fn opt_str(v: Option<&Value>) -> Result<Option<&str>, Bad> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Bad),
    }
}

/// An object member: `None` when absent or null, [`Bad`] when of another type.
fn opt_obj(v: Option<&Value>) -> Result<Option<&Map<String, Value>>, Bad> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(Bad),
    }
}

/// An `index` member: a non-negative integer, or `pos` when absent or null.
fn index(v: Option<&Value>, pos: usize) -> Result<u64, Bad> {
    match v {
        None | Some(Value::Null) => Ok(pos as u64),
        Some(v) => v.as_u64().ok_or(Bad),
    }
}

/// The SSE events replaying a stored answer (a chat.completion or text_completion JSON body),
/// each a complete `data: ...\n\n` event, ending with `data: [DONE]\n\n`. None when `body` is
/// not such an answer (or has no choices, or a choice without a `finish_reason`).
pub fn replay(body: &[u8], include_usage: bool) -> Option<Vec<Bytes>> {
    let Ok(Value::Object(body)) = serde_json::from_slice(body) else {
        return None;
    };
    replay_events(&body, include_usage).ok()
}

/// [`replay`] of a body that is a JSON object.
fn replay_events(body: &Map<String, Value>, include_usage: bool) -> Result<Vec<Bytes>, Bad> {
    let (text, object) = match body.get("object").and_then(Value::as_str) {
        Some("chat.completion") => (false, "chat.completion.chunk"),
        Some("text_completion") => (true, "text_completion"),
        _ => return Err(Bad),
    };
    let Some(Value::Array(choices)) = body.get("choices") else {
        return Err(Bad);
    };
    if choices.is_empty() {
        return Err(Bad);
    }
    let head = chunk_head(body, object);
    let mut opening = Vec::with_capacity(choices.len());
    let mut closing = Vec::with_capacity(choices.len());
    for (pos, c) in choices.iter().enumerate() {
        let Value::Object(c) = c else {
            return Err(Bad);
        };
        let (first, last) = replay_choice(c, pos, text)?;
        opening.push(event(with_choices(&head, vec![first])));
        closing.push(event(with_choices(&head, vec![last])));
    }
    let mut events = opening;
    events.append(&mut closing);
    if include_usage && let Some(u @ Value::Object(_)) = body.get("usage") {
        let mut chunk = with_choices(&head, Vec::new());
        chunk.insert("usage".into(), u.clone());
        events.push(event(chunk));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    Ok(events)
}

/// The members every replayed chunk has: `id`, `object`, `created`, `model` and
/// `system_fingerprint` (when the body has one).
fn chunk_head(body: &Map<String, Value>, object: &str) -> Map<String, Value> {
    let mut head = Map::new();
    for name in ["id", "created", "model"] {
        head.insert(name.into(), body.get(name).cloned().unwrap_or(Value::Null));
    }
    head.insert("object".into(), object.into());
    if let Some(f) = body.get("system_fingerprint").filter(|f| !f.is_null()) {
        head.insert("system_fingerprint".into(), f.clone());
    }
    head
}

/// A chunk: `head` with these `choices`.
fn with_choices(head: &Map<String, Value>, choices: Vec<Value>) -> Map<String, Value> {
    let mut chunk = head.clone();
    chunk.insert("choices".into(), Value::Array(choices));
    chunk
}

/// `data: <chunk>\n\n`.
fn event(chunk: Map<String, Value>) -> Bytes {
    let mut out = b"data: ".to_vec();
    // a Value always serializes
    out.extend_from_slice(Value::Object(chunk).to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// One stored choice as two chunk choices: all of its content, then its `finish_reason`.
fn replay_choice(c: &Map<String, Value>, pos: usize, text: bool) -> Result<(Value, Value), Bad> {
    let index = index(c.get("index"), pos)?;
    let finish_reason = opt_str(c.get("finish_reason"))?.ok_or(Bad)?;
    let logprobs = match c.get("logprobs") {
        None | Some(Value::Null) => Value::Null,
        Some(l @ Value::Object(_)) => l.clone(),
        Some(_) => return Err(Bad),
    };
    let (member, content, end) = if text {
        let t = opt_str(c.get("text"))?.unwrap_or_default();
        ("text", Value::from(t), Value::from(""))
    } else {
        let delta = replay_delta(opt_obj(c.get("message"))?)?;
        ("delta", Value::Object(delta), Value::Object(Map::new()))
    };
    let choice = |body: Value, logprobs: Value, finish_reason: Value| {
        let mut m = Map::new();
        m.insert("index".into(), index.into());
        m.insert(member.into(), body);
        m.insert("logprobs".into(), logprobs);
        m.insert("finish_reason".into(), finish_reason);
        Value::Object(m)
    };
    let first = choice(content, logprobs, Value::Null);
    let last = choice(end, Value::Null, finish_reason.into());
    Ok((first, last))
}

/// The `delta` carrying a whole stored chat `message`.
fn replay_delta(message: Option<&Map<String, Value>>) -> Result<Map<String, Value>, Bad> {
    let empty = Map::new();
    let message = message.unwrap_or(&empty);
    let mut d = Map::new();
    let role = opt_str(message.get("role"))?.unwrap_or("assistant");
    d.insert("role".into(), role.into());
    for name in ["content", "reasoning_content", "refusal"] {
        if let Some(s) = opt_str(message.get(name))? {
            d.insert(name.into(), s.into());
        }
    }
    match message.get("tool_calls") {
        None | Some(Value::Null) => {}
        Some(Value::Array(calls)) => {
            let calls = calls
                .iter()
                .enumerate()
                .map(|(i, t)| replay_tool_call(t, i));
            d.insert("tool_calls".into(), calls.collect::<Result<_, _>>()?);
        }
        Some(_) => return Err(Bad),
    }
    if let Some(f) = opt_obj(message.get("function_call"))? {
        d.insert("function_call".into(), replay_call(f)?.into());
    }
    Ok(d)
}

/// A stored tool call as a delta tool call at `index`.
fn replay_tool_call(t: &Value, index: usize) -> Result<Value, Bad> {
    let Value::Object(t) = t else {
        return Err(Bad);
    };
    let mut m = Map::new();
    m.insert("index".into(), index.into());
    for name in ["id", "type"] {
        if let Some(s) = opt_str(t.get(name))? {
            m.insert(name.into(), s.into());
        }
    }
    if let Some(f) = opt_obj(t.get("function"))? {
        m.insert("function".into(), replay_call(f)?.into());
    }
    Ok(Value::Object(m))
}

/// A stored function call's `name` and `arguments` (those that are strings).
fn replay_call(f: &Map<String, Value>) -> Result<Map<String, Value>, Bad> {
    let mut m = Map::new();
    for name in ["name", "arguments"] {
        if let Some(s) = opt_str(f.get(name))? {
            m.insert(name.into(), s.into());
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn assemble(events: &[Bytes]) -> Option<Value> {
        let mut a = Assembler::new();
        for e in events {
            a.feed(e);
        }
        a.finish().map(|b| serde_json::from_slice(&b).unwrap())
    }

    fn assemble_bytes(stream: &[u8]) -> Option<Value> {
        let mut a = Assembler::new();
        a.feed(stream);
        a.finish().map(|b| serde_json::from_slice(&b).unwrap())
    }

    /// replay, then assemble again: the same body, with usage or without.
    fn round_trip(body: &Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let events = replay(&bytes, true).unwrap();
        assert!(
            events
                .iter()
                .all(|e| e.starts_with(b"data: ") && e.ends_with(b"\n\n"))
        );
        assert_eq!(events.last().unwrap().as_ref(), b"data: [DONE]\n\n");
        assert_eq!(assemble(&events).unwrap(), *body);
        let events = replay(&bytes, false).unwrap();
        let mut without = body.clone();
        let had_usage = without.as_object_mut().unwrap().remove("usage").is_some();
        assert_eq!(assemble(&events).unwrap(), without);
        if had_usage {
            let last_chunk = &events[events.len() - 2];
            assert!(!last_chunk.windows(7).any(|w| w == b"\"usage\""));
        }
    }

    fn usage() -> Value {
        json!({"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21})
    }

    #[test]
    fn round_trip_chat_content() {
        let body = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000,
            "model": "gpt-4o-mini", "system_fingerprint": "fp_1",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Héllo, 中文!"},
                "logprobs": null, "finish_reason": "stop"}],
            "usage": usage()
        });
        round_trip(&body);
        let no_usage = json!({
            "id": "chatcmpl-2", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "",
                "reasoning_content": "thinking", "refusal": "no"},
                "logprobs": null, "finish_reason": "stop"}]
        });
        round_trip(&no_usage);
    }

    #[test]
    fn round_trip_chat_two_choices() {
        let body = json!({
            "id": "chatcmpl-3", "object": "chat.completion", "created": 2, "model": "m",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "one"},
                    "logprobs": null, "finish_reason": "stop"},
                {"index": 1, "message": {"role": "assistant", "content": "two"},
                    "logprobs": null, "finish_reason": "length"}
            ],
            "usage": usage()
        });
        round_trip(&body);
    }

    #[test]
    fn round_trip_logprobs_and_function_call() {
        let body = json!({
            "id": "chatcmpl-4", "object": "chat.completion", "created": 2, "model": "m",
            "choices": [{"index": 0,
                "message": {"role": "assistant", "content": null,
                    "function_call": {"name": "f", "arguments": "{}"}},
                "logprobs": {"content": [{"token": "a", "logprob": -0.5}], "refusal": null},
                "finish_reason": "function_call"}]
        });
        round_trip(&body);
    }

    #[test]
    fn tool_call_arguments_in_pieces() {
        let stream = concat!(
            "data: {\"id\":\"chatcmpl-5\",\"object\":\"chat.completion.chunk\",\"created\":3,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"chatcmpl-5\",\"object\":\"chat.completion.chunk\",\"created\":3,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"chatcmpl-5\",\"object\":\"chat.completion.chunk\",\"created\":3,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"chatcmpl-5\",\"object\":\"chat.completion.chunk\",\"created\":3,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_2\",\"function\":{\"name\":\"t\",\"arguments\":\"{}\"}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"chatcmpl-5\",\"object\":\"chat.completion.chunk\",\"created\":3,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: [DONE]\n\n",
        );
        let body = assemble_bytes(stream.as_bytes()).unwrap();
        let want = json!({
            "id": "chatcmpl-5", "object": "chat.completion", "created": 3, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
                "tool_calls": [
                    {"id": "call_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function",
                        "function": {"name": "t", "arguments": "{}"}}
                ]},
                "logprobs": null, "finish_reason": "tool_calls"}]
        });
        assert_eq!(body, want);
        round_trip(&body);
    }

    #[test]
    fn round_trip_text_completion() {
        let body = json!({
            "id": "cmpl-1", "object": "text_completion", "created": 4, "model": "gpt-3.5-turbo-instruct",
            "choices": [
                {"index": 0, "text": "Hello é", "logprobs": null, "finish_reason": "stop"},
                {"index": 1, "text": "", "logprobs": null, "finish_reason": "length"}
            ],
            "usage": usage()
        });
        round_trip(&body);
        let mut no_usage = body.clone();
        no_usage.as_object_mut().unwrap().remove("usage");
        round_trip(&no_usage);
    }

    /// A stream as OpenAI sends it, with `\r\n` line ends in places, a comment, an `event:`
    /// line, multi-byte characters and the usage chunk.
    const REALISTIC: &str = concat!(
        ": keep-alive\n\n",
        "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Café \"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\r\n\r\n",
        "event: message\n",
        "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"中文 ✓\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_abc\",\"choices\":[],\"usage\":{\"prompt_tokens\":8,\"completion_tokens\":5,\"total_tokens\":13}}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn realistic_stream() {
        let body = assemble_bytes(REALISTIC.as_bytes()).unwrap();
        let want = json!({
            "id": "chatcmpl-9", "object": "chat.completion", "created": 1718000000,
            "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_abc",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Café 中文 ✓"},
                "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 8, "completion_tokens": 5, "total_tokens": 13}
        });
        assert_eq!(body, want);
        round_trip(&body);
    }

    #[test]
    fn any_split_gives_the_same_answer() {
        let stream = REALISTIC.as_bytes();
        let whole = assemble_bytes(stream).unwrap();
        for at in 0..=stream.len() {
            let mut a = Assembler::new();
            a.feed(&stream[..at]);
            a.feed(&stream[at..]);
            let got: Value = serde_json::from_slice(&a.finish().unwrap()).unwrap();
            assert_eq!(got, whole, "split at {at}");
        }
        let mut a = Assembler::new();
        for b in stream {
            a.feed(std::slice::from_ref(b));
        }
        let got: Value = serde_json::from_slice(&a.finish().unwrap()).unwrap();
        assert_eq!(got, whole);
    }

    #[test]
    fn text_completion_stream() {
        let stream = concat!(
            "data: {\"id\":\"cmpl-2\",\"object\":\"text_completion\",\"created\":5,\"model\":\"m\",\"choices\":[{\"text\":\"Hel\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"cmpl-2\",\"object\":\"text_completion\",\"created\":5,\"model\":\"m\",\"choices\":[{\"text\":\"lo\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"length\"}]}\n\n",
            "data: [DONE]\n\n",
        );
        let want = json!({
            "id": "cmpl-2", "object": "text_completion", "created": 5, "model": "m",
            "choices": [{"index": 0, "text": "Hello", "logprobs": null, "finish_reason": "length"}]
        });
        assert_eq!(assemble_bytes(stream.as_bytes()).unwrap(), want);
    }

    #[test]
    fn error_event_gives_none() {
        let stream = concat!(
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n",
            "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n",
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            "data: [DONE]\n\n",
        );
        assert_eq!(assemble_bytes(stream.as_bytes()), None);
    }

    #[test]
    fn no_finish_reason_gives_none() {
        let stream = concat!(
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n",
            "data: [DONE]\n\n",
        );
        assert_eq!(assemble_bytes(stream.as_bytes()), None);
        // one of two choices unfinished
        let stream = concat!(
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\n",
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":1,\"delta\":{\"content\":\"h\"},\"finish_reason\":null}]}\n\n",
        );
        assert_eq!(assemble_bytes(stream.as_bytes()), None);
    }

    #[test]
    fn garbage_gives_none() {
        assert_eq!(assemble_bytes(b""), None);
        assert_eq!(assemble_bytes(b"hello world\n\n"), None);
        assert_eq!(assemble_bytes(b"data: {not json}\n\n"), None);
        assert_eq!(assemble_bytes(b"data: [1,2]\n\n"), None);
        assert_eq!(assemble_bytes(b"data: [DONE]\n\n"), None);
        assert_eq!(assemble_bytes(&[0xff, 0xfe, b'\n', 0x00]), None);
        // a chunk cut in the middle
        let cut = &REALISTIC.as_bytes()[..REALISTIC.len() / 2];
        let mut a = Assembler::new();
        a.feed(cut);
        assert_eq!(a.finish(), None);
        // a content of the wrong type
        let stream = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":5},\"finish_reason\":\"stop\"}]}\n\n";
        assert_eq!(assemble_bytes(stream), None);
    }

    #[test]
    fn over_the_cap_gives_none() {
        let mut a = Assembler::new();
        a.feed(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"");
        let piece = vec![b'a'; 1 << 20];
        for _ in 0..9 {
            a.feed(&piece);
        }
        a.feed(b"\"},\"finish_reason\":\"stop\"}]}\n\n");
        assert_eq!(a.finish(), None);
    }

    #[test]
    fn last_event_without_blank_line() {
        let stream = b"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}]}";
        let body = assemble_bytes(stream).unwrap();
        assert_eq!(body["choices"][0]["message"]["content"], "x");
        assert_eq!(body["object"], "chat.completion");
    }

    #[test]
    fn replay_of_non_answers_gives_none() {
        for body in [
            &b""[..],
            b"not json",
            b"[]",
            b"\"chat.completion\"",
            b"{}",
            b"{\"object\":\"chat.completion\"}",
            b"{\"object\":\"chat.completion\",\"choices\":{}}",
            b"{\"object\":\"chat.completion\",\"choices\":[]}",
            b"{\"object\":\"list\",\"choices\":[{\"index\":0,\"finish_reason\":\"stop\"}]}",
            b"{\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"content\":\"a\"},\"finish_reason\":null}]}",
            b"{\"object\":\"chat.completion\",\"choices\":[{\"index\":-1,\"message\":{},\"finish_reason\":\"stop\"}]}",
            b"{\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"content\":[1]},\"finish_reason\":\"stop\"}]}",
            b"{\"object\":\"chat.completion\",\"choices\":[1]}",
            b"{\"error\":{\"message\":\"x\"}}",
        ] {
            assert!(replay(body, true).is_none(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn replay_shape() {
        let body = br#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"logprobs":null,"finish_reason":"stop"}],"usage":{"total_tokens":3}}"#;
        let events = replay(body, true).unwrap();
        let chunks: Vec<Value> = events[..events.len() - 1]
            .iter()
            .map(|e| serde_json::from_slice(&e[6..]).unwrap())
            .collect();
        assert_eq!(
            chunks,
            vec![
                json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"m",
                    "choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"logprobs":null,"finish_reason":null}]}),
                json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"m",
                    "choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}),
                json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"m",
                    "choices":[],"usage":{"total_tokens":3}}),
            ]
        );
    }
}
