//! The gateway's stores, files and file batches in OpenAI's shapes, and list pages.

use serde_json::{Value, json};

use crate::util::clock;

/// Files per status of a store (or a batch).
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub in_progress: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub usage_bytes: i64,
}

impl Counts {
    pub fn add(&mut self, status: &str, n: i64, bytes: i64) {
        match status {
            "in_progress" => self.in_progress += n,
            "completed" => {
                self.completed += n;
                self.usage_bytes += bytes;
            }
            "failed" => self.failed += n,
            "cancelled" => self.cancelled += n,
            _ => {}
        }
    }

    pub fn of_files<'a>(files: impl IntoIterator<Item = &'a Value>) -> Self {
        let mut c = Counts::default();
        for f in files {
            let status = f.get("status").and_then(Value::as_str).unwrap_or_default();
            let bytes = f.get("usage_bytes").and_then(Value::as_i64).unwrap_or(0);
            c.add(status, 1, bytes);
        }
        c
    }

    fn json(&self) -> Value {
        json!({
            "in_progress": self.in_progress,
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "total": self.in_progress + self.completed + self.failed + self.cancelled,
        })
    }
}

/// A timestamp column (`"2026-12-06T03:38:33.123"`, UTC) as Unix seconds.
pub fn epoch(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_str)
        .and_then(clock::parse_utc)
        .unwrap_or(0)
}

/// When the store `row` was last used (Unix seconds): its `updated_at`, moved on by searches
/// and ingests (at most once an hour, [`super::Cx::usable`]).
pub fn last_active(row: &Value) -> i64 {
    epoch(row.get("updated_at")).max(epoch(row.get("created_at")))
}

/// When the store `row` expires (`expires_after: {anchor: "last_active_at", days}`).
pub fn expires_at(row: &Value) -> Option<i64> {
    row.pointer("/resource_object/expires_after/days")
        .and_then(Value::as_i64)
        .map(|d| last_active(row) + d * 86_400)
}

/// Whether the store `row` has expired: it is shown, listed and deleted, but not used.
pub fn is_expired(row: &Value) -> bool {
    expires_at(row).is_some_and(|t| t <= clock::now_whole_secs() as i64)
}

/// A store row with its file counts as OpenAI's vector store object.
pub fn store(row: &Value, counts: &Counts) -> Value {
    let o = row.get("resource_object").cloned().unwrap_or(json!({}));
    let created = epoch(row.get("created_at"));
    let active = last_active(row);
    let expires_after = o.get("expires_after").cloned().unwrap_or(Value::Null);
    let expires_at = expires_at(row);
    let status = match expires_at {
        _ if is_expired(row) => "expired",
        _ if counts.in_progress > 0 => "in_progress",
        _ => "completed",
    };
    json!({
        "id": row.get("unified_resource_id"),
        "object": "vector_store",
        "created_at": created,
        "name": o.get("name").cloned().unwrap_or(Value::Null),
        "description": o.get("description").cloned().unwrap_or(Value::Null),
        "usage_bytes": counts.usage_bytes,
        "file_counts": counts.json(),
        "status": status,
        "expires_after": expires_after,
        "expires_at": expires_at,
        "last_active_at": active,
        "metadata": o.get("metadata").cloned().unwrap_or(json!({})),
    })
}

/// A file row as OpenAI's vector store file object.
pub fn file(row: &Value) -> Value {
    let s = |k: &str| row.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "id": s("file_id"),
        "object": "vector_store.file",
        "usage_bytes": row.get("usage_bytes").and_then(Value::as_i64).unwrap_or(0),
        "created_at": epoch(row.get("created_at")),
        "vector_store_id": s("vector_store_id"),
        "status": s("status"),
        "last_error": s("last_error"),
        "chunking_strategy": s("chunking_strategy"),
        "attributes": row.get("attributes").cloned().unwrap_or(json!({})),
    })
}

/// A batch row and its files as OpenAI's file batch object.
pub fn batch(row: &Value, files: &[Value]) -> Value {
    let counts = Counts::of_files(files);
    let stored = row
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let status = match stored {
        "cancelled" => "cancelled",
        _ if counts.in_progress > 0 => "in_progress",
        _ if counts.failed > 0 && counts.completed == 0 => "failed",
        _ => "completed",
    };
    json!({
        "id": row.get("batch_id"),
        "object": "vector_store.files_batch",
        "created_at": epoch(row.get("created_at")),
        "vector_store_id": row.get("vector_store_id"),
        "status": status,
        "file_counts": counts.json(),
    })
}

/// `limit`, `order`, `after`, `before` of a list call.
pub struct Page {
    pub limit: usize,
    pub desc: bool,
    pub after: Option<String>,
    pub before: Option<String>,
}

impl Page {
    pub fn of(query: Option<&str>) -> Result<Self, String> {
        let q = |n: &str| crate::util::query::query_param(query, n);
        let limit = match q("limit") {
            None => 20,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or("limit must be between 1 and 100")?,
        };
        let desc = match q("order").as_deref() {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(_) => return Err("order must be asc or desc".into()),
        };
        Ok(Page {
            limit,
            desc,
            after: q("after"),
            before: q("before"),
        })
    }

    /// One page of `items` (oldest first as given), each with its id.
    pub fn list(&self, mut items: Vec<Value>) -> Value {
        if self.desc {
            items.reverse();
        }
        let id = |v: &Value| v.get("id").and_then(Value::as_str).map(str::to_string);
        if let Some(a) = &self.after
            && let Some(i) = items.iter().position(|v| id(v).as_deref() == Some(a))
        {
            items.drain(..=i);
        }
        if let Some(b) = &self.before
            && let Some(i) = items.iter().position(|v| id(v).as_deref() == Some(b))
        {
            items.truncate(i);
        }
        let has_more = items.len() > self.limit;
        items.truncate(self.limit);
        json!({
            "object": "list",
            "first_id": items.first().and_then(id),
            "last_id": items.last().and_then(id),
            "has_more": has_more,
            "data": items,
        })
    }
}
