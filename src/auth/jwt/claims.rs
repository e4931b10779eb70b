//! Reading a verified token's claims: values at dotted paths, scopes, role lists.

use serde_json::{Map, Value};

/// The value at `path` (`a.b.c` walks nested objects; a member whose own name has dots is
/// found first).
pub fn at<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut v = claims.get(parts.next()?)?;
    for p in parts {
        v = v.get(p)?;
    }
    Some(v)
}

/// The text at `path` (numbers are written out: some providers put numeric ids in tokens).
pub fn text(claims: &Map<String, Value>, path: Option<&str>) -> Option<String> {
    match at(claims, path?)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The list of texts at `path`: a list, or one text (space separated, as `scope`).
pub fn list(claims: &Map<String, Value>, path: Option<&str>) -> Vec<String> {
    match path.and_then(|p| at(claims, p)) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// The token's scopes: the space-separated `scope` claim and the `scp` list.
pub fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    let mut s = list(claims, Some("scope"));
    s.extend(list(claims, Some("scp")));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn paths_texts_lists_and_scopes() {
        let c = m(json!({
            "sub": "u1", "n": 42, "empty": " ",
            "realm_access": {"roles": ["admin", "dev"]},
            "a.b": "dotted",
            "scope": "openid tianji_proxy_admin", "scp": ["x"],
        }));
        assert_eq!(text(&c, Some("sub")).as_deref(), Some("u1"));
        assert_eq!(text(&c, Some("n")).as_deref(), Some("42"));
        assert_eq!(text(&c, Some("empty")), None);
        assert_eq!(text(&c, Some("missing")), None);
        assert_eq!(text(&c, None), None);
        assert_eq!(text(&c, Some("a.b")).as_deref(), Some("dotted"));
        assert_eq!(list(&c, Some("realm_access.roles")), vec!["admin", "dev"]);
        assert_eq!(list(&c, Some("sub")), vec!["u1"]);
        assert!(list(&c, Some("realm_access")).is_empty());
        assert_eq!(scopes(&c), vec!["openid", "tianji_proxy_admin", "x"]);
    }
}
