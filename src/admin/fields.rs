//! Request bodies described by a field table instead of one serde struct per entity: each field
//! has a kind (checked, with the field named in the error) and a destination (its own column or
//! the row's `metadata`, where LiteLLM keeps it). Unknown fields are refused.

use serde_json::{Map, Value, json};

use super::AdminError;
use crate::util::duration;

/// What a field must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    /// A list of strings.
    Strs,
    /// A number >= 0 (budgets, spend).
    Money,
    /// An integer >= 0 (limits).
    Count,
    Bool,
    Object,
    /// Any JSON value.
    Any,
    /// A duration such as `30d` (`budget_duration` also sets `budget_reset_at`).
    Duration,
    /// A timestamp (`YYYY-MM-DD[ HH:MM:SS]` or RFC 3339).
    Time,
}

/// Where a field is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// The column of the same name.
    Column,
    /// A member of the row's `metadata` column.
    Meta,
    /// Handled by the endpoint itself.
    Own,
}

/// One accepted field.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub dest: Dest,
}

/// A field table, one line per destination and kind: `column Strs: models tags;` is two
/// [`Dest::Column`] fields of [`Kind::Strs`] (destinations: `own`, `column`, `meta`).
macro_rules! spec {
    (@dest own) => { $crate::admin::fields::Dest::Own };
    (@dest column) => { $crate::admin::fields::Dest::Column };
    (@dest meta) => { $crate::admin::fields::Dest::Meta };
    ($($dest:ident $kind:ident: $($name:ident)+;)+) => {
        &[$($($crate::admin::fields::Field {
            name: stringify!($name),
            kind: $crate::admin::fields::Kind::$kind,
            dest: spec!(@dest $dest),
        },)+)+]
    };
}
pub(crate) use spec;

/// A checked body, split by destination.
#[derive(Debug, Default)]
pub struct Checked {
    /// Column -> value (explicit nulls already turned into each column's cleared value).
    pub columns: Map<String, Value>,
    /// Metadata members given (a JSON null means "remove").
    pub meta: Map<String, Value>,
    /// `Dest::Own` fields as given.
    pub own: Map<String, Value>,
}

impl Checked {
    /// 400 with `message` when the request gives `name` (an own field this call cannot set).
    pub fn refuse(&self, name: &str, message: &str) -> Result<(), AdminError> {
        match self.own.contains_key(name) {
            true => Err(AdminError::invalid(name, message)),
            false => Ok(()),
        }
    }

    /// The `metadata` column for a new row: the request's `metadata` plus the metadata fields.
    pub fn new_metadata(&mut self) -> Value {
        let mut m = match self.columns.remove("metadata") {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        for (k, v) in &self.meta {
            if !v.is_null() {
                m.insert(k.clone(), v.clone());
            }
        }
        Value::Object(m)
    }

    /// The `metadata` column after an update of `before` (only when something touched it).
    pub fn updated_metadata(&mut self, before: &Value) -> Option<Value> {
        let replaced = self.columns.remove("metadata");
        if replaced.is_none() && self.meta.is_empty() {
            return None;
        }
        let mut m = metadata_base(replaced, before);
        for (k, v) in &self.meta {
            if v.is_null() {
                m.remove(k);
            } else {
                m.insert(k.clone(), v.clone());
            }
        }
        Some(Value::Object(m))
    }
}

fn type_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Str => "a string",
        Kind::Strs => "a list of strings",
        Kind::Money => "a non-negative number",
        Kind::Count => "a non-negative integer",
        Kind::Bool => "a boolean",
        Kind::Object => "an object",
        Kind::Any => "a value",
        Kind::Duration => "a duration such as 30s, 10m, 24h, 7d, 2w, 1mo",
        Kind::Time => "a timestamp such as 2026-01-31 or 2026-01-31T12:00:00Z",
    }
}

fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    b.len() >= 10 && digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10)
}

fn valid(kind: Kind, v: &Value) -> bool {
    match kind {
        Kind::Str => v.is_string(),
        Kind::Strs => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        Kind::Money => v.as_f64().is_some_and(|x| x.is_finite() && x >= 0.0),
        Kind::Count => v.as_i64().is_some_and(|x| x >= 0) || v.as_u64().is_some(),
        Kind::Bool => v.is_boolean(),
        Kind::Object => v.is_object(),
        Kind::Any => true,
        Kind::Duration => v.as_str().and_then(duration::parse).is_some(),
        Kind::Time => v.as_str().is_some_and(is_time),
    }
}

/// What an explicit `null` becomes in a column of this kind.
fn cleared(kind: Kind) -> Value {
    match kind {
        Kind::Object => json!({}),
        Kind::Strs => json!([]),
        _ => Value::Null,
    }
}

/// Check `body` against `spec`. With `update`, an explicit null clears the field; on create a
/// null is the same as leaving the field out.
pub fn check(
    spec: &[Field],
    body: Map<String, Value>,
    update: bool,
) -> Result<Checked, AdminError> {
    let mut out = Checked::default();
    for (name, v) in body {
        let Some(field) = spec.iter().find(|f| f.name == name) else {
            return Err(AdminError::invalid(
                &name,
                format!("unknown field `{name}`"),
            ));
        };
        if v.is_null() {
            if !update {
                continue;
            }
            match field.dest {
                Dest::Column => {
                    out.columns.insert(name.clone(), cleared(field.kind));
                    if name == "budget_duration" {
                        out.columns.insert("budget_reset_at".into(), Value::Null);
                    }
                }
                Dest::Meta => {
                    out.meta.insert(name, Value::Null);
                }
                Dest::Own => {
                    out.own.insert(name, Value::Null);
                }
            }
            continue;
        }
        if !valid(field.kind, &v) {
            return Err(AdminError::invalid(
                &name,
                format!("must be {}, got {v}", type_name(field.kind)),
            ));
        }
        if field.kind == Kind::Duration && name == "budget_duration" {
            out.columns.insert("budget_reset_at".into(), reset_at(&v));
        }
        match field.dest {
            Dest::Column => {
                out.columns.insert(name, v);
            }
            Dest::Meta => {
                out.meta.insert(name, v);
            }
            Dest::Own => {
                out.own.insert(name, v);
            }
        }
    }
    Ok(out)
}

/// The `metadata` an update starts from: the one given (an object; anything else empties it),
/// else the row's as it was (`before`).
pub fn metadata_base(given: Option<Value>, before: &Value) -> Map<String, Value> {
    match given {
        Some(Value::Object(m)) => m,
        Some(_) => Map::new(),
        None => before
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
    }
}

/// When a budget of `duration` (such as `30d`) next resets, from now (`null` for no duration).
pub fn reset_at(duration: &Value) -> Value {
    let at = duration
        .as_str()
        .and_then(duration::parse)
        .map(|d| crate::util::clock::fmt_utc(crate::util::clock::now_secs() + d.as_secs_f64()));
    json!(at)
}

/// The id `own[name]` gives, or a new one.
pub fn id_or_new(own: &Map<String, Value>, name: &str) -> String {
    match own.get(name).and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => uuid::Uuid::now_v7().to_string(),
    }
}

/// A required string member of `own` (or a 400 naming it).
pub fn required_str(own: &Map<String, Value>, name: &str) -> Result<String, AdminError> {
    match own.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(AdminError::invalid(name, format!("`{name}` is required"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &[Field] = spec! {
        own Str: team_id;
        column Str: team_alias;
        column Money: max_budget;
        column Strs: models;
        column Duration: budget_duration;
        meta Strs: tags;
    };

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn names_the_bad_field() {
        for (b, field) in [
            (json!({"max_budget": -1}), "max_budget"),
            (json!({"max_budget": "x"}), "max_budget"),
            (json!({"models": [1]}), "models"),
            (json!({"budget_duration": "5x"}), "budget_duration"),
            (json!({"nope": 1}), "nope"),
        ] {
            let e = check(SPEC, body(b), false).unwrap_err();
            assert_eq!(e.param(), Some(field));
        }
    }

    #[test]
    fn splits_and_clears() {
        let mut c = check(
            SPEC,
            body(
                json!({"team_alias": "a", "tags": ["x"], "team_id": "t", "budget_duration": "1d"}),
            ),
            false,
        )
        .unwrap();
        assert_eq!(c.columns["team_alias"], "a");
        assert!(c.columns["budget_reset_at"].is_string());
        assert_eq!(c.own["team_id"], "t");
        assert_eq!(c.new_metadata(), json!({"tags": ["x"]}));
        let mut u = check(SPEC, body(json!({"models": null, "tags": null})), true).unwrap();
        assert_eq!(u.columns["models"], json!([]));
        assert_eq!(
            u.updated_metadata(&json!({"metadata": {"tags": ["x"], "k": 1}})),
            Some(json!({"k": 1}))
        );
        assert!(is_time("2026-01-31") && !is_time("tomorrow"));
    }
}
