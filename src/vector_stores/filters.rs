//! Attribute filters of vector store searches, as OpenAI writes them: a comparison
//! `{"type": "eq"|"ne"|"gt"|"gte"|"lt"|"lte"|"in"|"nin", "key", "value"}` or a compound
//! `{"type": "and"|"or", "filters": [...]}`, matched against a file's `attributes`.

use serde_json::Value;

/// How deep compound filters may nest.
const MAX_DEPTH: usize = 16;

/// Why a filter cannot be read.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("filters: {0}")]
pub struct FilterError(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Nin,
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare { op: Op, key: String, value: Value },
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

impl Filter {
    /// Read a filter object.
    pub fn parse(v: &Value) -> Result<Self, FilterError> {
        parse_at(v, 0)
    }

    /// Whether `attributes` (a file's) pass.
    pub fn matches(&self, attributes: &Value) -> bool {
        match self {
            Filter::And(fs) => fs.iter().all(|f| f.matches(attributes)),
            Filter::Or(fs) => fs.iter().any(|f| f.matches(attributes)),
            Filter::Compare { op, key, value } => {
                let got = attributes.get(key);
                match op {
                    Op::Eq => got.is_some_and(|g| same(g, value)),
                    Op::Ne => !got.is_some_and(|g| same(g, value)),
                    Op::In => got.is_some_and(|g| listed(value).any(|v| same(g, v))),
                    Op::Nin => !got.is_some_and(|g| listed(value).any(|v| same(g, v))),
                    Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
                        let Some(ord) = got.and_then(|g| order(g, value)) else {
                            return false;
                        };
                        match op {
                            Op::Gt => ord.is_gt(),
                            Op::Gte => ord.is_ge(),
                            Op::Lt => ord.is_lt(),
                            _ => ord.is_le(),
                        }
                    }
                }
            }
        }
    }
}

fn parse_at(v: &Value, depth: usize) -> Result<Filter, FilterError> {
    if depth > MAX_DEPTH {
        return Err(FilterError(format!("nested more than {MAX_DEPTH} deep")));
    }
    let o = v
        .as_object()
        .ok_or_else(|| FilterError("a filter must be an object".into()))?;
    let kind = o
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| FilterError("a filter needs a `type`".into()))?;
    let op = match kind {
        "and" | "or" => {
            let list = o.get("filters").and_then(Value::as_array).ok_or_else(|| {
                FilterError(format!("an `{kind}` filter needs `filters` (a list)"))
            })?;
            let fs = list
                .iter()
                .map(|f| parse_at(f, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(if kind == "and" {
                Filter::And(fs)
            } else {
                Filter::Or(fs)
            });
        }
        "eq" => Op::Eq,
        "ne" => Op::Ne,
        "gt" => Op::Gt,
        "gte" => Op::Gte,
        "lt" => Op::Lt,
        "lte" => Op::Lte,
        "in" => Op::In,
        "nin" => Op::Nin,
        other => {
            return Err(FilterError(format!(
                "unknown filter type `{other}` (eq, ne, gt, gte, lt, lte, in, nin, and, or)"
            )));
        }
    };
    let key = o
        .get("key")
        .and_then(Value::as_str)
        .ok_or_else(|| FilterError(format!("a `{kind}` filter needs a `key`")))?
        .to_string();
    let value = o
        .get("value")
        .cloned()
        .ok_or_else(|| FilterError(format!("a `{kind}` filter needs a `value`")))?;
    let scalar = |v: &Value| v.is_string() || v.is_number() || v.is_boolean();
    let ok = match op {
        Op::In | Op::Nin => value.as_array().is_some_and(|a| a.iter().all(scalar)),
        _ => scalar(&value),
    };
    if !ok {
        return Err(FilterError(format!(
            "the `value` of a `{kind}` filter must be a {}",
            if matches!(op, Op::In | Op::Nin) {
                "list of strings, numbers or booleans"
            } else {
                "string, number or boolean"
            }
        )));
    }
    Ok(Filter::Compare { op, key, value })
}

fn listed(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn comparisons_and_compounds() {
        let attrs = json!({"team": "eng", "year": 2024, "public": true});
        let t = |f: Value| Filter::parse(&f).unwrap().matches(&attrs);
        assert!(t(json!({"type": "eq", "key": "team", "value": "eng"})));
        assert!(!t(json!({"type": "eq", "key": "team", "value": "ops"})));
        assert!(t(json!({"type": "ne", "key": "missing", "value": 1})));
        assert!(t(json!({"type": "gte", "key": "year", "value": 2024})));
        assert!(!t(json!({"type": "gt", "key": "year", "value": 2024.0})));
        assert!(t(
            json!({"type": "in", "key": "team", "value": ["ops", "eng"]})
        ));
        assert!(t(json!({"type": "nin", "key": "team", "value": ["ops"]})));
        assert!(!t(json!({"type": "lt", "key": "team", "value": 3})));
        assert!(t(json!({"type": "and", "filters": [
            {"type": "eq", "key": "public", "value": true},
            {"type": "or", "filters": [
                {"type": "eq", "key": "team", "value": "ops"},
                {"type": "lt", "key": "year", "value": 2030}
            ]}
        ]})));
    }

    #[test]
    fn bad_filters_say_what_is_wrong() {
        for (f, says) in [
            (
                json!({"type": "like", "key": "a", "value": 1}),
                "unknown filter type",
            ),
            (json!({"type": "eq", "value": 1}), "needs a `key`"),
            (
                json!({"type": "in", "key": "a", "value": 1}),
                "must be a list",
            ),
            (
                json!({"type": "eq", "key": "a", "value": {"x": 1}}),
                "must be a string",
            ),
            (json!({"type": "and"}), "needs `filters`"),
            (json!([1]), "must be an object"),
        ] {
            let e = Filter::parse(&f).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
        let mut deep = json!({"type": "eq", "key": "a", "value": 1});
        for _ in 0..20 {
            deep = json!({"type": "and", "filters": [deep]});
        }
        assert!(Filter::parse(&deep).is_err());
    }
}
