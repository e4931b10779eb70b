//! A mock Anthropic account we own for message batches: batches kept in memory (create ->
//! `in_progress`; cancel -> `canceling`; `POST /_control/end` ends every batch, as Anthropic
//! does when processing finishes), results as JSONL with per-request usage (sent in small
//! pieces), delete of ended batches. Every request is recorded with its credential
//! (`MockUpstream::requests`). A request whose `custom_id` starts with `err` errors.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::{Value, json};

use super::mock_upstream::{MockUpstream, Recorded, Reply};

/// Input and output tokens of the `i`-th succeeded request.
pub fn usage_of(i: usize) -> (u64, u64) {
    (100 + i as u64, 20)
}

#[derive(Debug, Clone)]
pub struct Batch {
    pub id: String,
    pub status: &'static str,
    pub custom_ids: Vec<String>,
    pub canceled: bool,
    pub body: Value,
}

pub struct AnthropicAccount {
    pub up: MockUpstream,
    pub batches: Arc<Mutex<BTreeMap<String, Batch>>>,
}

impl AnthropicAccount {
    pub async fn start() -> Self {
        let batches: Arc<Mutex<BTreeMap<String, Batch>>> = Arc::default();
        let held = batches.clone();
        let up = MockUpstream::with(Arc::new(move |r: &Recorded| answer(&held, r))).await;
        Self { up, batches }
    }
}

fn object(b: &Batch) -> Value {
    let ended = b.status == "ended";
    let n = b.custom_ids.len();
    let errored = b.custom_ids.iter().filter(|c| c.starts_with("err")).count();
    let counts = match (ended, b.canceled) {
        (false, _) => {
            json!({"processing": n, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0})
        }
        (true, true) => {
            json!({"processing": 0, "succeeded": 0, "errored": 0, "canceled": n, "expired": 0})
        }
        (true, false) => {
            json!({"processing": 0, "succeeded": n - errored, "errored": errored, "canceled": 0, "expired": 0})
        }
    };
    json!({
        "id": b.id,
        "type": "message_batch",
        "processing_status": b.status,
        "request_counts": counts,
        "created_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-02T00:00:00Z",
        "ended_at": if ended { json!("2026-01-01T01:00:00Z") } else { Value::Null },
        "archived_at": null,
        "cancel_initiated_at": if b.canceled { json!("2026-01-01T00:30:00Z") } else { Value::Null },
        "results_url": if ended { json!(format!("https://api.anthropic.com/v1/messages/batches/{}/results", b.id)) } else { Value::Null },
    })
}

fn not_found() -> Reply {
    Reply::status(
        404,
        json!({"type": "error", "error": {"type": "not_found_error", "message": "no such batch"}}),
    )
}

fn answer(batches: &Mutex<BTreeMap<String, Batch>>, r: &Recorded) -> Reply {
    let mut all = batches.lock();
    if r.path == "/_control/end" {
        for b in all.values_mut() {
            b.status = "ended";
        }
        return Reply::status(200, json!({}));
    }
    let Some(rest) = r.path.strip_prefix("/v1/messages/batches") else {
        return not_found();
    };
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match (r.method.as_str(), segs.as_slice()) {
        ("POST", []) => {
            let body = r.json();
            let custom_ids = body["requests"]
                .as_array()
                .map(|rs| {
                    rs.iter()
                        .map(|q| q["custom_id"].as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default();
            let id = format!("msgbatch_mock{:04}", all.len() + 1);
            let b = Batch {
                id: id.clone(),
                status: "in_progress",
                custom_ids,
                canceled: false,
                body,
            };
            let out = object(&b);
            all.insert(id, b);
            Reply::status(200, out)
        }
        ("GET", []) => {
            let data: Vec<Value> = all.values().rev().map(object).collect();
            Reply::status(
                200,
                json!({"data": data, "has_more": false, "first_id": null, "last_id": null}),
            )
        }
        ("GET", [id]) => match all.get(*id) {
            Some(b) => Reply::status(200, object(b)),
            None => not_found(),
        },
        ("DELETE", [id]) => match all.get(*id) {
            Some(b) if b.status == "ended" => {
                all.remove(*id);
                Reply::status(200, json!({"id": id, "type": "message_batch_deleted"}))
            }
            Some(_) => Reply::status(
                400,
                json!({"type": "error", "error": {"type": "invalid_request_error", "message": "batch not ended"}}),
            ),
            None => not_found(),
        },
        ("POST", [id, "cancel"]) => match all.get_mut(*id) {
            Some(b) => {
                if b.status == "in_progress" {
                    b.status = "canceling";
                    b.canceled = true;
                }
                Reply::status(200, object(b))
            }
            None => not_found(),
        },
        ("GET", [id, "results"]) => match all.get(*id) {
            Some(b) if b.status == "ended" => {
                let mut lines = String::new();
                for (i, c) in b.custom_ids.iter().enumerate() {
                    let line = if b.canceled {
                        json!({"custom_id": c, "result": {"type": "canceled"}})
                    } else if c.starts_with("err") {
                        json!({"custom_id": c, "result": {"type": "errored", "error": {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}}})
                    } else {
                        let (input, output) = usage_of(i);
                        json!({"custom_id": c, "result": {"type": "succeeded", "message": {
                            "id": format!("msg_{i}"), "type": "message", "role": "assistant",
                            "model": "claude-haiku-4-5",
                            "content": [{"type": "text", "text": format!("answer {i}\n\"usage\": none")}],
                            "stop_reason": "end_turn", "stop_sequence": null,
                            "usage": {"input_tokens": input, "output_tokens": output}
                        }}})
                    };
                    lines.push_str(&line.to_string());
                    lines.push('\n');
                }
                // in small pieces, cutting lines
                let chunks = lines
                    .as_bytes()
                    .chunks(37)
                    .map(Bytes::copy_from_slice)
                    .collect();
                Reply::Raw {
                    status: 200,
                    content_type: "application/binary",
                    chunks,
                }
            }
            Some(_) => Reply::status(
                400,
                json!({"type": "error", "error": {"type": "invalid_request_error", "message": "batch not ended"}}),
            ),
            None => not_found(),
        },
        _ => not_found(),
    }
}
