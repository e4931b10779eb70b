//! The JSON-RPC envelope of `POST /a2a/{agent_id}`: checked before anything is forwarded, with
//! LiteLLM's error codes and HTTP statuses (`-32700` not JSON, `-32600` not JSON-RPC 2.0,
//! `-32602` invalid params: 400; `-32601` unknown method: 404; `-32000` unknown agent: 404, no
//! URL: 500). A2A 1.0 method names (a2a-sdk 1.x) map to 0.3's for the gateway's own decisions;
//! the agent is asked with the name the client sent ([`Call::sent_method`]).

use http::StatusCode;
use serde_json::{Value, json};

/// A JSON-RPC error answered by the gateway itself.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub id: Value,
    pub code: i64,
    pub message: String,
    pub status: StatusCode,
}

impl RpcError {
    /// An error with the usual status of its code (`-32600`, `-32602`, `-32700`: 400;
    /// `-32601`: 404; others: 500).
    pub fn new(id: &Value, code: i64, message: impl Into<String>) -> Self {
        let status = match code {
            -32600 | -32602 | -32700 => StatusCode::BAD_REQUEST,
            -32601 => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self {
            id: id.clone(),
            code,
            message: message.into(),
            status,
        }
    }

    /// The same error answered with `status`.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// `{"jsonrpc": "2.0", "id", "error": {"code", "message"}}`
    pub fn body(&self) -> Value {
        json!({"jsonrpc": "2.0", "id": self.id, "error": {"code": self.code, "message": self.message}})
    }
}

/// 0.3 method names, and the 1.0 (PascalCase) names that map to them.
const METHODS: &[(&str, &str)] = &[
    ("message/send", "SendMessage"),
    ("message/stream", "SendStreamingMessage"),
    ("tasks/get", "GetTask"),
    ("tasks/list", "ListTasks"),
    ("tasks/cancel", "CancelTask"),
    ("tasks/resubscribe", "SubscribeToTask"),
    (
        "tasks/pushNotificationConfig/set",
        "CreateTaskPushNotificationConfig",
    ),
    (
        "tasks/pushNotificationConfig/get",
        "GetTaskPushNotificationConfig",
    ),
    (
        "tasks/pushNotificationConfig/list",
        "ListTaskPushNotificationConfigs",
    ),
    (
        "tasks/pushNotificationConfig/delete",
        "DeleteTaskPushNotificationConfig",
    ),
    ("agent/getAuthenticatedExtendedCard", "GetExtendedAgentCard"),
];

/// A checked request.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub id: Value,
    /// The 0.3 name.
    pub method: &'static str,
    /// Whether the client spoke 1.0 (PascalCase).
    pub v1: bool,
    pub params: Value,
}

impl Call {
    /// The method name as the client sent it (0.3's, or 1.0's PascalCase): what the agent is
    /// asked, so the params (whose shapes differ between the versions) match the method.
    pub fn sent_method(&self) -> &'static str {
        if !self.v1 {
            return self.method;
        }
        METHODS
            .iter()
            .find(|(old, _)| *old == self.method)
            .map_or(self.method, |(_, new)| *new)
    }

    /// Whether the answer is an event stream (`message/stream`, `tasks/resubscribe`).
    pub fn streams(&self) -> bool {
        matches!(self.method, "message/stream" | "tasks/resubscribe")
    }
}

/// Check a request body: JSON, `jsonrpc: "2.0"`, a known method, params an object (with a
/// `message` for `message/send` and `message/stream`).
pub fn parse(body: &[u8]) -> Result<Call, RpcError> {
    let null = Value::Null;
    let mut v: Value = serde_json::from_slice(body)
        .map_err(|e| RpcError::new(&null, -32700, format!("Parse error: {e}")))?;
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    if v.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(RpcError::new(
            &id,
            -32600,
            "Invalid Request: jsonrpc must be '2.0'",
        ));
    }
    let Some(asked) = v.get("method").and_then(Value::as_str) else {
        return Err(RpcError::new(
            &id,
            -32600,
            "Invalid Request: method is required",
        ));
    };
    let (method, v1) = METHODS
        .iter()
        .find_map(|(old, new)| {
            (asked == *old)
                .then_some((*old, false))
                .or((asked == *new).then_some((*old, true)))
        })
        .ok_or_else(|| RpcError::new(&id, -32601, format!("Method '{asked}' not found")))?;
    let params = (v.as_object_mut())
        .and_then(|o| o.remove("params"))
        .unwrap_or(Value::Null);
    if !params.is_object() {
        return Err(RpcError::new(
            &id,
            -32602,
            "Invalid params: params must be an object",
        ));
    }
    if method.starts_with("message/") && !params.get("message").is_some_and(Value::is_object) {
        return Err(RpcError::new(
            &id,
            -32602,
            "Invalid params: params.message is required",
        ));
    }
    Ok(Call {
        id,
        method,
        v1,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> RpcError {
        parse(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn checks_the_envelope() {
        let e = err(r#"{"jsonrpc": "1.0", "id": 3, "method": "message/send"}"#);
        assert_eq!((e.code, e.status.as_u16()), (-32600, 400));
        assert_eq!(e.body()["id"], 3);
        assert_eq!(e.message, "Invalid Request: jsonrpc must be '2.0'");
        assert_eq!(err("{nope").code, -32700);
        let e = err(r#"{"jsonrpc": "2.0", "id": 1, "method": "nope/x", "params": {}}"#);
        assert_eq!(
            (e.code, e.message.as_str()),
            (-32601, "Method 'nope/x' not found")
        );
        let e = err(r#"{"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {}}"#);
        assert_eq!((e.code, e.status.as_u16()), (-32602, 400));
        let e = err(r#"{"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": 5}"#);
        assert_eq!(e.code, -32602);
    }

    #[test]
    fn maps_pascal_case_names() {
        let c = parse(
            br#"{"jsonrpc": "2.0", "id": "a", "method": "SendMessage", "params": {"message": {}}}"#,
        )
        .unwrap();
        assert_eq!((c.method, c.v1), ("message/send", true));
        assert_eq!(c.sent_method(), "SendMessage");
        assert!(!c.streams());
        let c = parse(
            br#"{"jsonrpc": "2.0", "id": "a", "method": "tasks/get", "params": {"id": "t"}}"#,
        )
        .unwrap();
        assert_eq!((c.method, c.v1), ("tasks/get", false));
        assert_eq!(c.sent_method(), "tasks/get");
        let c = parse(br#"{"jsonrpc": "2.0", "id": 2, "method": "SubscribeToTask", "params": {}}"#)
            .unwrap();
        assert_eq!((c.sent_method(), c.streams()), ("SubscribeToTask", true));
    }

    #[test]
    fn a_call_sent_on_under_the_clients_name_reads_the_same() {
        for (old, new) in METHODS {
            for name in [old, new] {
                let params = json!({"message": {"parts": []}, "id": "t"});
                let body = json!({"jsonrpc": "2.0", "id": 1.5, "method": name, "params": params});
                let call = parse(body.to_string().as_bytes()).unwrap();
                assert_eq!(call.sent_method(), *name);
                let again = json!({"jsonrpc": "2.0", "id": call.id, "method": call.sent_method(),
                    "params": call.params});
                assert_eq!(parse(again.to_string().as_bytes()).unwrap(), call);
            }
        }
    }
}
