//! A model-backed agent's conversions (LiteLLM's completion bridge): an A2A message becomes the
//! chat completion request the agent's model answers (its text parts, one per line, as the
//! user's message); the answer becomes the JSON-RPC result (an agent Message) or, streamed, A2A
//! events: the task submitted, its status working, one artifact update per chunk of text, and
//! the status completed (or failed). Both protocol versions: 0.3 (camelCase with `kind`) and
//! 1.0 (proto JSON: `ROLE_AGENT`, `TASK_STATE_*`, `statusUpdate` / `artifactUpdate` wrappers).

use serde_json::{Value, json};
use uuid::Uuid;

use super::card::Version;

/// The text of an A2A message: its text parts (0.3 `{"kind": "text", "text"}`, 1.0
/// `{"text"}`), one per line.
pub fn text_of(message: &Value) -> String {
    let parts = message.get("parts").and_then(Value::as_array);
    let texts = parts.into_iter().flatten().filter_map(|p| {
        let kind = p.get("kind").and_then(Value::as_str);
        match kind {
            None | Some("" | "text") => p.get("text").and_then(Value::as_str),
            Some(_) => None,
        }
    });
    texts.collect::<Vec<_>>().join("\n")
}

/// The session a call belongs to (for session limits): `litellm_session_id` in the params,
/// else `metadata.session_id` (of the params, then of the message), else the message's
/// `contextId`.
pub fn session_of(params: &Value) -> Option<&str> {
    let message = params.get("message");
    fn meta(v: Option<&Value>) -> Option<&str> {
        v?.get("metadata")?.get("session_id")?.as_str()
    }
    params
        .get("litellm_session_id")
        .and_then(Value::as_str)
        .or_else(|| meta(Some(params)))
        .or_else(|| meta(message))
        .or_else(|| message?.get("contextId")?.as_str())
        .filter(|s| !s.is_empty())
}

/// The chat completion request for `message`, to `model` (with the sampling settings of
/// `params`, the agent's `tianji_params`: `temperature`, `max_tokens`, `top_p`).
pub fn chat_request(model: &str, params: Option<&Value>, message: &Value, stream: bool) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Said<'a> {
        role: &'static str,
        content: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Request<'a> {
        model: &'a str,
        messages: [Said<'a>; 1],
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        stream: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        temperature: Option<&'a Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        max_tokens: Option<&'a Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        top_p: Option<&'a Value>,
    }
    let number = |name: &str| params?.get(name).filter(|v| v.is_number());
    let text = text_of(message);
    let r = Request {
        model,
        messages: [Said {
            role: "user",
            content: &text,
        }],
        stream,
        temperature: number("temperature"),
        max_tokens: number("max_tokens"),
        top_p: number("top_p"),
    };
    serde_json::to_vec(&r).unwrap_or_default()
}

/// The text of a whole chat completion answer (`choices[0].message.content`; "" when it has
/// none or is not one). Read without building a tree.
pub fn answer_text(answer: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Answer<'a> {
        #[serde(borrow, default)]
        choices: Vec<Choice<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Choice<'a> {
        #[serde(borrow, default)]
        message: Option<Said<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Said<'a> {
        #[serde(borrow, default)]
        content: Option<std::borrow::Cow<'a, str>>,
    }
    let said = serde_json::from_slice::<Answer<'_>>(answer)
        .ok()
        .and_then(|a| {
            let first = a.choices.into_iter().next()?;
            first.message?.content
        });
    said.map(std::borrow::Cow::into_owned).unwrap_or_default()
}

/// The text a streamed chat chunk adds (`choices[0].delta.content`).
pub fn chunk_text(chunk: &Value) -> &str {
    chunk
        .pointer("/choices/0/delta/content")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The ids of one call's task: its own, the client's context (or a new one), and the
/// client's message (repeated in the task's history).
#[derive(Debug, Clone)]
pub struct Task {
    pub version: Version,
    pub rpc_id: Value,
    pub task_id: String,
    pub context_id: String,
    artifact_id: String,
    /// Artifact chunks sent so far.
    chunks: u32,
}

fn new_id() -> String {
    let mut buf = Uuid::encode_buffer();
    Uuid::now_v7()
        .hyphenated()
        .encode_lower(&mut buf)
        .to_string()
}

/// Now as RFC 3339 (`YYYY-MM-DDTHH:MM:SSZ`).
fn timestamp() -> String {
    let mut s = crate::util::clock::fmt_utc(crate::util::clock::now_secs());
    s.replace_range(10..11, "T");
    s.push('Z');
    s
}

impl Task {
    /// A task for JSON-RPC request `rpc_id` asking `message`.
    pub fn new(version: Version, rpc_id: &Value, message: &Value) -> Self {
        let context_id = message
            .get("contextId")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map_or_else(new_id, str::to_string);
        Self {
            version,
            rpc_id: rpc_id.clone(),
            task_id: new_id(),
            context_id,
            artifact_id: new_id(),
            chunks: 0,
        }
    }

    /// `{"jsonrpc": "2.0", "id", "result": result}`
    pub fn envelope(&self, result: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": self.rpc_id, "result": result})
    }

    fn role(&self) -> &'static str {
        match self.version {
            Version::V03 => "agent",
            Version::V10 => "ROLE_AGENT",
        }
    }

    fn parts(&self, text: &str) -> Value {
        match self.version {
            Version::V03 => json!([{"kind": "text", "text": text}]),
            Version::V10 => json!([{"text": text}]),
        }
    }

    fn state(&self, state: &str) -> String {
        match self.version {
            Version::V03 => state.to_string(),
            Version::V10 => format!("TASK_STATE_{}", state.to_ascii_uppercase()),
        }
    }

    /// The agent's message saying `text`.
    fn message(&self, text: &str, in_task: bool) -> Value {
        let mut m = json!({
            "messageId": new_id(), "contextId": self.context_id, "role": self.role(),
            "parts": self.parts(text),
        });
        if in_task {
            m["taskId"] = json!(self.task_id);
        }
        if self.version == Version::V03 {
            m["kind"] = json!("message");
        }
        m
    }

    /// The whole JSON-RPC answer to `message/send` (the envelope of [`Task::reply`]), written
    /// straight from typed values.
    pub fn answer(&self, text: &str) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct Part<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            kind: Option<&'static str>,
            text: &'a str,
        }
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Message<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            kind: Option<&'static str>,
            message_id: &'a str,
            context_id: &'a str,
            role: &'static str,
            parts: [Part<'a>; 1],
        }
        #[derive(serde::Serialize)]
        #[serde(untagged)]
        enum Result<'a> {
            V03(Message<'a>),
            V10 { message: Message<'a> },
        }
        #[derive(serde::Serialize)]
        struct Envelope<'a> {
            jsonrpc: &'static str,
            id: &'a Value,
            result: Result<'a>,
        }
        let v03 = self.version == Version::V03;
        let kind = |k: &'static str| v03.then_some(k);
        let id = new_id();
        let message = Message {
            kind: kind("message"),
            message_id: &id,
            context_id: &self.context_id,
            role: self.role(),
            parts: [Part {
                kind: kind("text"),
                text,
            }],
        };
        let result = if v03 {
            Result::V03(message)
        } else {
            Result::V10 { message }
        };
        let e = Envelope {
            jsonrpc: "2.0",
            id: &self.rpc_id,
            result,
        };
        serde_json::to_vec(&e).unwrap_or_default()
    }

    /// The result of `message/send`: the agent's message saying `text` (`{"message": ...}`
    /// in 1.0).
    pub fn reply(&self, text: &str) -> Value {
        let m = self.message(text, false);
        match self.version {
            Version::V03 => m,
            Version::V10 => json!({ "message": m }),
        }
    }

    /// An event of a stream: 0.3 events carry their `kind`, 1.0 ones are wrapped in the
    /// field naming their kind.
    fn event(&self, kind03: &str, kind10: &str, mut body: Value) -> Value {
        match self.version {
            Version::V03 => {
                body["kind"] = json!(kind03);
                body
            }
            Version::V10 => json!({ kind10: body }),
        }
    }

    /// The first event: the task, submitted, with the client's message `asked` as its history.
    pub fn submitted(&self, asked: &Value) -> Value {
        let mut asked = asked.clone();
        if let Some(m) = asked.as_object_mut() {
            m.insert("contextId".into(), json!(self.context_id));
            m.insert("taskId".into(), json!(self.task_id));
        }
        let body = json!({
            "id": self.task_id, "contextId": self.context_id,
            "status": {"state": self.state("submitted"), "timestamp": timestamp()},
            "history": [asked],
        });
        self.event("task", "task", body)
    }

    /// A status update to `state` (`working`, `completed`, `failed`), with the agent's
    /// message `text` if any; `last`: the stream's end.
    pub fn status(&self, state: &str, text: Option<&str>, last: bool) -> Value {
        let mut status = json!({"state": self.state(state), "timestamp": timestamp()});
        if let Some(t) = text {
            status["message"] = self.message(t, true);
        }
        let mut body =
            json!({"taskId": self.task_id, "contextId": self.context_id, "status": status});
        if self.version == Version::V03 {
            body["final"] = json!(last);
        }
        self.event("status-update", "statusUpdate", body)
    }

    /// The next chunk of the answer: an artifact update (one artifact, appended to after its
    /// first chunk).
    pub fn chunk(&mut self, text: &str) -> Value {
        let append = self.chunks > 0;
        self.chunks += 1;
        let body = json!({
            "taskId": self.task_id, "contextId": self.context_id,
            "artifact": {"artifactId": self.artifact_id, "name": "response", "parts": self.parts(text)},
            "append": append, "lastChunk": false,
        });
        self.event("artifact-update", "artifactUpdate", body)
    }

    /// `data: {envelope of result}\n\n`
    pub fn sse(&self, result: Value) -> Vec<u8> {
        let mut out = b"data: ".to_vec();
        out.extend_from_slice(self.envelope(result).to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
        out
    }

    /// A JSON-RPC error as an SSE event.
    pub fn sse_error(&self, code: i64, message: &str) -> Vec<u8> {
        let v = json!({"jsonrpc": "2.0", "id": self.rpc_id, "error": {"code": code, "message": message}});
        let mut out = b"data: ".to_vec();
        out.extend_from_slice(v.to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked() -> Value {
        json!({"kind": "message", "role": "user", "messageId": "m1", "contextId": "ctx-1",
               "parts": [{"kind": "text", "text": "hi"}, {"kind": "data", "data": {}}, {"text": "there"}]})
    }

    #[test]
    fn text_parts_become_the_user_message() {
        assert_eq!(text_of(&asked()), "hi\nthere");
        let params = json!({"temperature": 0.5, "api_key": "secret", "max_tokens": "x"});
        let body: Value =
            serde_json::from_slice(&chat_request("m", Some(&params), &asked(), true)).unwrap();
        assert_eq!(
            body,
            json!({"model": "m", "messages": [{"role": "user", "content": "hi\nthere"}],
                   "stream": true, "temperature": 0.5})
        );
    }

    #[test]
    fn sessions_from_the_reference_places() {
        let p = json!({"message": asked()});
        assert_eq!(session_of(&p), Some("ctx-1"));
        let p = json!({"message": asked(), "metadata": {"session_id": "s"}});
        assert_eq!(session_of(&p), Some("s"));
        let p = json!({"message": asked(), "litellm_session_id": "l"});
        assert_eq!(session_of(&p), Some("l"));
        assert_eq!(session_of(&json!({"message": {}})), None);
    }

    #[test]
    fn replies_in_both_versions() {
        let t = Task::new(Version::V03, &json!(7), &asked());
        let r = t.envelope(t.reply("hello"));
        // the typed answer says the same as the tree
        let mut typed: Value = serde_json::from_slice(&t.answer("hello")).unwrap();
        typed["result"]["messageId"] = r["result"]["messageId"].clone();
        assert_eq!(typed, r);
        let t10 = Task::new(Version::V10, &json!("x"), &asked());
        let r10 = t10.envelope(t10.reply("hi"));
        let mut typed: Value = serde_json::from_slice(&t10.answer("hi")).unwrap();
        typed["result"]["message"]["messageId"] = r10["result"]["message"]["messageId"].clone();
        assert_eq!(typed, r10);
        assert_eq!(r["id"], 7);
        assert_eq!(r["result"]["kind"], "message");
        assert_eq!(r["result"]["role"], "agent");
        assert_eq!(r["result"]["contextId"], "ctx-1");
        assert_eq!(
            r["result"]["parts"][0],
            json!({"kind": "text", "text": "hello"})
        );
        let t = Task::new(
            Version::V10,
            &json!("a"),
            &json!({"parts": [{"text": "q"}]}),
        );
        let r = t.reply("hello");
        assert_eq!(r["message"]["role"], "ROLE_AGENT");
        assert_eq!(r["message"]["parts"][0], json!({"text": "hello"}));
        assert!(r["message"].get("kind").is_none());
        assert!(!r["message"]["contextId"].as_str().unwrap().is_empty());
    }

    #[test]
    fn stream_events_in_both_versions() {
        let mut t = Task::new(Version::V03, &json!(1), &asked());
        assert_eq!(t.submitted(&asked())["kind"], "task");
        assert_eq!(t.submitted(&asked())["status"]["state"], "submitted");
        assert_eq!(
            t.submitted(&asked())["history"][0]["taskId"],
            t.task_id.as_str()
        );
        let w = t.status("working", None, false);
        assert_eq!(
            (w["kind"].as_str(), w["final"].as_bool()),
            (Some("status-update"), Some(false))
        );
        let a = t.chunk("he");
        let b = t.chunk("llo");
        assert_eq!(a["kind"], "artifact-update");
        assert_eq!(
            (a["append"].as_bool(), b["append"].as_bool()),
            (Some(false), Some(true))
        );
        assert_eq!(a["artifact"]["artifactId"], b["artifact"]["artifactId"]);
        let d = t.status("completed", Some("hello"), true);
        assert_eq!(d["final"], true);
        assert_eq!(d["status"]["message"]["parts"][0]["text"], "hello");
        let sse = String::from_utf8(t.sse(d)).unwrap();
        assert!(sse.starts_with("data: {") && sse.ends_with("}\n\n"));

        let mut t = Task::new(Version::V10, &json!(1), &asked());
        assert_eq!(
            t.submitted(&asked())["task"]["status"]["state"],
            "TASK_STATE_SUBMITTED"
        );
        let w = t.status("working", None, false);
        assert_eq!(w["statusUpdate"]["status"]["state"], "TASK_STATE_WORKING");
        assert!(w["statusUpdate"].get("final").is_none());
        assert_eq!(
            t.chunk("x")["artifactUpdate"]["artifact"]["parts"][0]["text"],
            "x"
        );
        let ts = t.status("completed", None, true)["statusUpdate"]["status"]["timestamp"].clone();
        let ts = ts.as_str().unwrap();
        assert_eq!((ts.len(), &ts[10..11], &ts[19..]), (20, "T", "Z"));
    }

    #[test]
    fn answers_read() {
        let a = br#"{"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "h\u00e9y"}}], "usage": {}}"#;
        assert_eq!(answer_text(a), "h\u{e9}y");
        assert_eq!(answer_text(b"{}"), "");
        assert_eq!(answer_text(b"nope"), "");
        assert_eq!(
            answer_text(br#"{"choices": [{"message": {"content": null}}]}"#),
            ""
        );
        let c = json!({"choices": [{"delta": {"content": "h"}}]});
        assert_eq!(chunk_text(&c), "h");
    }
}
