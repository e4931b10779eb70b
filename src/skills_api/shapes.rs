//! Answers in the Skills API's shapes. Both field names of each renamed field are given:
//! `display_title`/`latest_version` (LiteLLM, older SDKs) and `display_name`/`latest_version_id`
//! (newer SDKs).

use serde_json::{Value, json};

/// A stored timestamp (`2026-01-02T03:04:05.678`) as RFC 3339 in UTC.
fn time(v: Option<&Value>) -> Value {
    match v.and_then(Value::as_str) {
        Some(t) if !t.ends_with('Z') && !t.contains('+') => Value::String(format!("{t}Z")),
        Some(t) => Value::String(t.to_string()),
        None => Value::Null,
    }
}

/// A skill row as the API answers it.
pub fn skill(row: &Value) -> Value {
    let col = |c: &str| row.get(c).cloned().unwrap_or(Value::Null);
    json!({
        "id": col("skill_id"),
        "type": "skill",
        "display_title": col("display_title"),
        "display_name": col("display_title"),
        "description": col("description"),
        "latest_version": col("latest_version"),
        "latest_version_id": col("latest_version"),
        "source": col("source"),
        "created_at": time(row.get("created_at")),
        "updated_at": time(row.get("updated_at")),
    })
}

/// A version row as the API answers it.
pub fn version(row: &Value) -> Value {
    let col = |c: &str| row.get(c).cloned().unwrap_or(Value::Null);
    json!({
        "id": col("version"),
        "type": "skill_version",
        "skill_id": col("skill_id"),
        "version": col("version"),
        "name": col("name"),
        "description": col("description"),
        "directory": col("directory"),
        "created_at": time(row.get("created_at")),
    })
}
