//! Model-backed A2A agents: an agent whose `tianji_params` names a `model` answers
//! `message/send` and `message/stream` itself, with a chat completion of that model through
//! the gateway's own LLM path ([`crate::pipeline::agent::chat`]: the caller's blocks, budgets
//! and rate limits, the agent's limits, routing, retries, the response cache and guardrails;
//! one SpendLogs row, the agent's). The message's text is the user's message
//! ([`crate::agents::convert`]); the answer is the agent's Message, or streamed as A2A events
//! (task submitted, working, one artifact update per chunk, completed or failed), in the
//! protocol version the client speaks (1.0 for PascalCase methods or `a2a-version: 1.*`).
//! Such an agent keeps no tasks: `tasks/get`, `tasks/cancel` and `tasks/resubscribe` answer
//! `-32001` (task not found), `tasks/list` an empty list, push notification configs `-32003`
//! and the extended card `-32007`. An agent whose model no longer exists answers 404 naming
//! it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::BodyExt;
use serde_json::Value;

use super::agent_usage;
use crate::agents::Agent;
use crate::agents::card::Version;
use crate::agents::convert::{self, Task};
use crate::agents::rpc::{Call, RpcError};
use crate::auth::Principal;
use crate::body::{Body, BoxError};
use crate::error::json_response;
use crate::state::AppState;

/// The largest whole answer read back.
const MAX_ANSWER: usize = 16 << 20;

/// The model answering for `agent`, when it is model-backed.
pub fn model_of(agent: &Agent) -> Option<&str> {
    agent
        .row
        .get("tianji_params")?
        .get("model")?
        .as_str()
        .filter(|m| !m.is_empty())
}

fn answer(e: RpcError) -> Response<Body> {
    json_response(
        e.status,
        Bytes::from(serde_json::to_vec(&e.body()).unwrap_or_default()),
    )
}

/// The protocol version of the answer: 1.0 for a PascalCase method or `a2a-version: 1.*`.
fn version(call: &Call, parts: &Parts) -> Version {
    let asked = parts
        .headers
        .get("a2a-version")
        .and_then(|v| v.to_str().ok());
    if call.v1 {
        Version::V10
    } else {
        Version::of(asked)
    }
}

/// Answer `call` to model-backed `agent` (its `model`), for `principal`.
pub async fn serve(
    state: &AppState,
    principal: &Principal,
    mut parts: Parts,
    agent: &Agent,
    model: &str,
    call: Call,
) -> Response<Body> {
    let id = &call.id;
    let version = version(&call, &parts);
    match call.method {
        "message/send" | "message/stream" => {}
        "tasks/list" => {
            let t = Task::new(version, id, &Value::Null);
            let body = t.envelope(serde_json::json!({"tasks": []}));
            return json_response(
                StatusCode::OK,
                Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
            );
        }
        "tasks/get" | "tasks/cancel" | "tasks/resubscribe" => {
            let e = RpcError::new(id, -32001, "Task not found");
            return answer(e.with_status(StatusCode::NOT_FOUND));
        }
        "agent/getAuthenticatedExtendedCard" => {
            let e = RpcError::new(id, -32007, "Authenticated Extended Card is not configured");
            return answer(e.with_status(StatusCode::BAD_REQUEST));
        }
        _ => {
            let e = RpcError::new(id, -32003, "Push Notification is not supported");
            return answer(e.with_status(StatusCode::BAD_REQUEST));
        }
    }
    if state.models.load().resolve(model).is_err() {
        let e = RpcError::new(
            id,
            -32000,
            format!(
                "Agent '{}' is backed by model '{model}', which does not exist",
                agent.id
            ),
        );
        return answer(e.with_status(StatusCode::NOT_FOUND));
    }
    let message = &call.params["message"];
    let stream = call.method == "message/stream";
    let params = agent.row.get("tianji_params");
    let body = convert::chat_request(model, params, message, stream);
    let usage = agent_usage::agent_call(agent, &call.params);
    let task = Task::new(version, id, message);
    let peer = (parts.extensions.get::<SocketAddr>().copied())
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let headers = std::mem::take(&mut parts.headers);
    // boxed: the LLM stages' large future is placed once, not moved through every caller
    let resp = Box::pin(crate::pipeline::agent::chat(
        state,
        principal.clone(),
        headers,
        peer,
        Bytes::from(body),
        usage,
    ))
    .await;
    if !resp.status().is_success() {
        return agent_usage::as_rpc_error(id, resp).await;
    }
    let sse = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    match (stream, sse) {
        (false, _) => whole(task, resp).await,
        (true, true) => events(task, message, resp),
        // a streamed request answered whole (a cache hit, a mock): its events at once
        (true, false) => {
            let (parts, body) = resp.into_parts();
            let text = read_text(body).await;
            let mut t = task;
            let mut out = Vec::new();
            for e in [
                t.submitted(message),
                t.status("working", None, false),
                t.chunk(&text),
            ] {
                out.push(Bytes::from(t.sse(e)));
            }
            out.push(Bytes::from(t.sse(t.status("completed", None, true))));
            sse_response(parts, Body::chunks(out))
        }
    }
}

/// The text of a whole chat answer.
async fn read_text(body: Body) -> String {
    let bytes = http_body_util::Limited::new(body, MAX_ANSWER)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    convert::answer_text(&bytes)
}

/// `message/send`: the agent's message, with the chat answer's `x-tianji-*` headers.
async fn whole(task: Task, resp: Response<Body>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    let text = read_text(body).await;
    let out = task.answer(&text);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::full(out))
}

/// A response of A2A events (with the chat answer's headers).
fn sse_response(mut parts: http::response::Parts, body: Body) -> Response<Body> {
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    parts
        .headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Response::from_parts(parts, body)
}

/// `message/stream`: the chat stream's chunks as A2A events, as they come.
fn events(task: Task, asked: &Value, resp: Response<Body>) -> Response<Body> {
    let (parts, inner) = resp.into_parts();
    let mut pending = VecDeque::new();
    pending.push_back(Bytes::from(task.sse(task.submitted(asked))));
    pending.push_back(Bytes::from(task.sse(task.status("working", None, false))));
    let body = Events {
        inner: Some(inner),
        carry: Vec::new(),
        task,
        pending,
    };
    sse_response(parts, Body::Relay(Box::new(body)))
}

/// The A2A events of a streamed chat answer. The answer's record (spend, limits) lives in
/// `inner` and ends with it.
struct Events {
    inner: Option<Body>,
    carry: Vec<u8>,
    task: Task,
    pending: VecDeque<Bytes>,
}

impl Events {
    /// The events of a piece of the chat stream.
    fn feed(&mut self, bytes: &[u8]) {
        for data in crate::providers::sse_lines::data_lines(&mut self.carry, bytes) {
            if data.trim_ascii() == b"[DONE]" {
                continue;
            }
            let Ok(chunk) = serde_json::from_slice::<Value>(&data) else {
                continue;
            };
            if let Some(e) = chunk.get("error") {
                let message = e.get("message").and_then(Value::as_str).unwrap_or("error");
                self.end("failed", Some(message));
                return;
            }
            let text = convert::chunk_text(&chunk);
            if !text.is_empty() {
                let e = self.task.chunk(text);
                self.pending.push_back(Bytes::from(self.task.sse(e)));
            }
        }
    }

    /// The last event (`completed`, or `failed` saying why); the chat stream is dropped (its
    /// record finished).
    fn end(&mut self, state: &str, why: Option<&str>) {
        self.inner = None;
        let e = self.task.status(state, why, true);
        self.pending.push_back(Bytes::from(self.task.sse(e)));
    }
}

impl http_body::Body for Events {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(b))));
            }
            let Some(inner) = self.inner.as_mut() else {
                return Poll::Ready(None);
            };
            match Pin::new(inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.feed(&data);
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    let why = e.to_string();
                    self.end("failed", Some(&why));
                }
                Poll::Ready(None) => self.end("completed", None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_none() && self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_of(chat: &[&str]) -> Vec<Value> {
        let task = Task::new(Version::V03, &serde_json::json!(1), &serde_json::json!({}));
        let parts: Vec<Bytes> = chat.iter().map(|s| Bytes::from(s.to_string())).collect();
        let resp = Response::new(Body::chunks(parts));
        let body = events(task, &serde_json::json!({}), resp).into_body();
        let bytes = futures_executor(body);
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        text.split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .map(|e| serde_json::from_str(e).unwrap())
            .collect()
    }

    fn futures_executor(body: Body) -> Bytes {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async { body.collect().await.unwrap().to_bytes() })
    }

    #[test]
    fn chat_chunks_become_events() {
        let ev = events_of(&[
            "data: {\"choices\":[{\"delta\":{\"content\":\"he\"}}]}\n\ndata: {\"cho",
            "ices\":[{\"delta\":{\"content\":\"llo\"}}]}\n\n",
            "data: {\"choices\":[],\"usage\":{}}\n\ndata: [DONE]\n\n",
        ]);
        let kinds: Vec<&str> = ev
            .iter()
            .map(|e| e["result"]["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "task",
                "status-update",
                "artifact-update",
                "artifact-update",
                "status-update"
            ]
        );
        assert_eq!(ev[2]["result"]["artifact"]["parts"][0]["text"], "he");
        assert_eq!(ev[3]["result"]["artifact"]["parts"][0]["text"], "llo");
        assert_eq!(ev[4]["result"]["status"]["state"], "completed");
        assert_eq!(ev[4]["result"]["final"], true);
    }

    #[test]
    fn a_stream_error_fails_the_task() {
        let ev = events_of(&[
            "data: {\"choices\":[{\"delta\":{\"content\":\"he\"}}]}\n\n",
            "data: {\"error\":{\"message\":\"upstream broke\"}}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"never\"}}]}\n\n",
        ]);
        let last = ev.last().unwrap();
        assert_eq!(last["result"]["status"]["state"], "failed");
        assert_eq!(
            last["result"]["status"]["message"]["parts"][0]["text"],
            "upstream broke"
        );
        assert_eq!(ev.len(), 4);
    }
}
