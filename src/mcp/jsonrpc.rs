//! The JSON-RPC 2.0 envelope of MCP messages, as the gateway reads a client's POST: a request
//! (`id` + `method`), a notification (`method`, no `id`) or a response to a server request
//! (`id` + `result`/`error`). `params` and `result` stay raw JSON: the gateway forwards tool
//! payloads and reads only the few members it acts on. Batches (allowed by 2025-03-26, removed
//! by 2025-06-18) are refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// JSON-RPC error codes.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// The gateway's own refusals (rate limits, budgets, keys): the server-error range.
pub const REFUSED: i64 = -32000;

/// A JSON-RPC error the gateway answers.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The request's id (`null` when it could not be read).
    pub id: Value,
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(id: &Value, code: i64, message: impl Into<String>) -> Self {
        Self {
            id: id.clone(),
            code,
            message: message.into(),
        }
    }

    /// `{"jsonrpc": "2.0", "id", "error": {"code", "message"}}`
    pub fn body(&self) -> Value {
        json!({"jsonrpc": "2.0", "id": self.id, "error": {"code": self.code, "message": self.message}})
    }
}

/// One message from a client.
#[derive(Debug)]
pub enum Incoming {
    Request {
        /// A string or a number.
        id: Value,
        method: String,
        params: Option<Box<RawValue>>,
    },
    Notification {
        method: String,
    },
    /// A client's answer to a server request (the gateway sends none; accepted and dropped).
    Response,
}

/// Some(value) when the member is present, even as `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct Envelope {
    jsonrpc: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    method: Option<Value>,
    params: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    error: Option<Value>,
}

/// Read one client message.
pub fn parse(body: &[u8]) -> Result<Incoming, RpcError> {
    let null = Value::Null;
    let trimmed = body.trim_ascii_start();
    if trimmed.first() == Some(&b'[') {
        // still JSON? then it is a batch, which the gateway does not take
        return Err(match serde_json::from_slice::<&RawValue>(trimmed) {
            Ok(_) => RpcError::new(
                &null,
                INVALID_REQUEST,
                "Invalid Request: batches are not supported",
            ),
            Err(e) => RpcError::new(&null, PARSE_ERROR, format!("Parse error: {e}")),
        });
    }
    let e: Envelope = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(err) if err.is_data() => {
            return Err(RpcError::new(
                &null,
                INVALID_REQUEST,
                "Invalid Request: expected a JSON-RPC 2.0 object",
            ));
        }
        Err(err) => {
            return Err(RpcError::new(
                &null,
                PARSE_ERROR,
                format!("Parse error: {err}"),
            ));
        }
    };
    let id = match &e.id {
        Some(v @ (Value::String(_) | Value::Number(_))) => Some(v.clone()),
        Some(_) => {
            return Err(RpcError::new(
                &null,
                INVALID_REQUEST,
                "Invalid Request: id must be a string or a number",
            ));
        }
        None => None,
    };
    let shown = id.clone().unwrap_or(Value::Null);
    if e.jsonrpc.as_ref().and_then(Value::as_str) != Some("2.0") {
        return Err(RpcError::new(
            &shown,
            INVALID_REQUEST,
            "Invalid Request: jsonrpc must be '2.0'",
        ));
    }
    match (e.method, id) {
        (Some(Value::String(method)), Some(id)) => Ok(Incoming::Request {
            id,
            method,
            params: e.params,
        }),
        (Some(Value::String(method)), None) => Ok(Incoming::Notification { method }),
        (Some(_), _) => Err(RpcError::new(
            &shown,
            INVALID_REQUEST,
            "Invalid Request: method must be a string",
        )),
        (None, Some(_)) if e.result.is_some() || e.error.is_some() => Ok(Incoming::Response),
        (None, _) => Err(RpcError::new(
            &shown,
            INVALID_REQUEST,
            "Invalid Request: method is required",
        )),
    }
}

/// `tools/call` params that are not an object.
pub const NOT_AN_OBJECT: &str = "Invalid params: expected an object with a name";

/// A `tools/call`'s params as the gateway reads them: the tool's name, and every member's
/// value as the client wrote it (`arguments` is never parsed, only checked to be JSON).
#[derive(Debug)]
pub struct ToolCallParams<'a> {
    pub name: String,
    /// Keys decoded; a key given twice keeps its last value (what is forwarded says the same).
    members: BTreeMap<String, &'a RawValue>,
}

impl<'a> ToolCallParams<'a> {
    /// Read the params; the error is the message of an invalid-params answer.
    pub fn read(params: &'a RawValue) -> Result<Self, &'static str> {
        let members: BTreeMap<String, &RawValue> =
            serde_json::from_str(params.get()).map_err(|_| NOT_AN_OBJECT)?;
        let name = members
            .get("name")
            .and_then(|n| serde_json::from_str::<String>(n.get()).ok())
            .ok_or("Invalid params: name is required")?;
        Ok(Self { name, members })
    }

    /// The params sent to the tool's server: these, with `name` set to `tool` (the server's
    /// own name of the tool) and the other members copied as they came.
    pub fn forwarded(&self, tool: &str) -> Option<Box<RawValue>> {
        let size: usize = (self.members.iter())
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum();
        let mut out = Vec::with_capacity(16 + tool.len() + size);
        out.extend_from_slice(br#"{"name":"#);
        serde_json::to_writer(&mut out, tool).ok()?;
        for (k, v) in self.members.iter().filter(|(k, _)| *k != "name") {
            out.push(b',');
            serde_json::to_writer(&mut out, k).ok()?;
            out.push(b':');
            out.extend_from_slice(v.get().as_bytes());
        }
        out.push(b'}');
        RawValue::from_string(String::from_utf8(out).ok()?).ok()
    }
}

/// An upstream server's answer to one of the gateway's requests: the response whose id is
/// `want`, or `None` when `msg` is something else (a notification, a server request, another
/// response).
pub fn reply_to(msg: &[u8], want: u64) -> Option<Result<Box<RawValue>, Value>> {
    #[derive(Deserialize)]
    struct Reply {
        id: Option<Value>,
        result: Option<Box<RawValue>>,
        error: Option<Value>,
    }
    let r: Reply = serde_json::from_slice(msg).ok()?;
    let id = r.id?;
    let same = match &id {
        Value::Number(n) => n.as_u64() == Some(want),
        // the gateway sends numbers; a server echoing it as a string is rare
        Value::String(s) => *s == want.to_string(),
        _ => false,
    };
    if !same {
        return None;
    }
    match (r.result, r.error) {
        (Some(res), _) => Some(Ok(res)),
        (None, Some(err)) => Some(Err(err)),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_requests_and_notifications() {
        match parse(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"a-b"}}"#)
            .unwrap()
        {
            Incoming::Request { id, method, params } => {
                assert_eq!(id, json!(7));
                assert_eq!(method, "tools/call");
                assert_eq!(params.unwrap().get(), r#"{"name":"a-b"}"#);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap(),
            Incoming::Notification { .. }
        ));
        assert!(matches!(
            parse(br#"{"jsonrpc":"2.0","id":"x","result":{}}"#).unwrap(),
            Incoming::Response
        ));
    }

    #[test]
    fn refuses_what_is_not_json_rpc() {
        let cases = [
            ("{nope", PARSE_ERROR),
            ("", PARSE_ERROR),
            ("[1,2]", INVALID_REQUEST),
            ("[1,", PARSE_ERROR),
            ("5", INVALID_REQUEST),
            (
                r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
                INVALID_REQUEST,
            ),
            (
                r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
                INVALID_REQUEST,
            ),
            (r#"{"jsonrpc":"2.0","id":1,"method":5}"#, INVALID_REQUEST),
            (r#"{"jsonrpc":"2.0","id":1}"#, INVALID_REQUEST),
        ];
        for (body, code) in cases {
            assert_eq!(parse(body.as_bytes()).unwrap_err().code, code, "{body}");
        }
        let e = parse(br#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#).unwrap_err();
        assert_eq!((e.code, e.id), (INVALID_REQUEST, json!(3)));
    }

    /// The fuzz target's properties (`fuzz/fuzz_targets/mcp_message.rs`) over mutations of a
    /// few messages.
    #[test]
    fn mutated_messages_never_panic_and_accepted_ones_are_json_rpc() {
        let seeds: [&[u8]; 5] = [
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"a-b"}}"#,
            br#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"a-b","arguments":{"q":"x\u00e9","n":[1,2.5]},"_meta":{}}}"#,
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            br#"{"jsonrpc":"2.0","id":"x","result":{}}"#,
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
        ];
        let mut rng = fastrand::Rng::with_seed(25);
        for _ in 0..20_000 {
            let mut m = seeds[rng.usize(..seeds.len())].to_vec();
            for _ in 0..rng.usize(1..4) {
                let i = rng.usize(..m.len());
                match rng.u8(..3) {
                    0 => m[i] = rng.u8(..),
                    1 => {
                        m.remove(i);
                    }
                    _ => m.insert(i, b"{}[]\",:0-"[rng.usize(..9)]),
                }
                if m.is_empty() {
                    m.push(b'{');
                }
            }
            // `params` stay raw: their strings' escapes are checked when they are read
            if let (Ok(msg), Ok(v)) = (parse(&m), serde_json::from_slice::<Value>(&m)) {
                assert_eq!(v["jsonrpc"], "2.0");
                if let Incoming::Request { id, method, params } = msg {
                    assert!(id.is_string() || id.is_number());
                    assert_eq!(v["method"], method.as_str());
                    if let Some(Ok(p)) = params.as_deref().map(ToolCallParams::read) {
                        let out = p.forwarded("t").unwrap();
                        let mut got: Value = serde_json::from_str(out.get()).unwrap();
                        let mut want = v["params"].clone();
                        assert_eq!((&got["name"], &want["name"]), (&json!("t"), &json!(p.name)));
                        got["name"] = Value::Null;
                        want["name"] = Value::Null;
                        assert_eq!(got, want);
                    }
                }
            }
            let _ = reply_to(&m, 7);
        }
    }

    #[test]
    fn tool_call_params_forward_everything_but_the_name_as_written() {
        let raw = RawValue::from_string(
            r#"{"_meta":{"progressToken":3},"name":"wiki-echo","arguments":{"text":"h\u00e9 \"x\"","n":1.50}}"#
                .to_string(),
        )
        .unwrap();
        let p = ToolCallParams::read(&raw).unwrap();
        assert_eq!(p.name, "wiki-echo");
        let out = p.forwarded("echo").unwrap();
        let v: Value = serde_json::from_str(out.get()).unwrap();
        assert_eq!(v["name"], "echo");
        assert_eq!(v["_meta"]["progressToken"], 3);
        // the arguments exactly as the client wrote them
        assert!(
            out.get()
                .contains(r#""arguments":{"text":"h\u00e9 \"x\"","n":1.50}"#)
        );
        assert_eq!(out.get().matches("\"name\"").count(), 1);
    }

    #[test]
    fn tool_call_params_are_read_once_whatever_the_keys_spelling() {
        // an escaped duplicate of `name`: the last one counts, and only it is forwarded
        let raw = RawValue::from_string(r#"{"name":"a-x","n\u0061me":"a-y"}"#.to_string()).unwrap();
        let p = ToolCallParams::read(&raw).unwrap();
        assert_eq!(p.name, "a-y");
        let v: Value = serde_json::from_str(p.forwarded("y").unwrap().get()).unwrap();
        assert_eq!(v, json!({"name": "y"}));
        for (bad, msg) in [
            ("[1]", NOT_AN_OBJECT),
            ("\"x\"", NOT_AN_OBJECT),
            ("{}", "Invalid params: name is required"),
            (r#"{"name":5}"#, "Invalid params: name is required"),
        ] {
            let raw = RawValue::from_string(bad.to_string()).unwrap();
            assert_eq!(ToolCallParams::read(&raw).unwrap_err(), msg, "{bad}");
        }
    }

    #[test]
    fn finds_the_reply_by_id() {
        let ok = reply_to(br#"{"jsonrpc":"2.0","id":4,"result":{"x":1}}"#, 4).unwrap();
        assert_eq!(ok.unwrap().get(), r#"{"x":1}"#);
        let e = reply_to(br#"{"jsonrpc":"2.0","id":"4","error":{"code":1}}"#, 4).unwrap();
        assert_eq!(e.unwrap_err()["code"], 1);
        assert!(reply_to(br#"{"jsonrpc":"2.0","id":5,"result":{}}"#, 4).is_none());
        assert!(reply_to(br#"{"jsonrpc":"2.0","method":"notifications/progress"}"#, 4).is_none());
        assert!(reply_to(b"garbage", 4).is_none());
    }
}
