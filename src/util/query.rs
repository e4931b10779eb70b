//! Query strings.

/// `name`'s value in a query string (as written, not percent-decoded).
pub fn query_param(q: Option<&str>, name: &str) -> Option<String> {
    q?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::query_param;

    #[test]
    fn finds_the_named_value() {
        let q = Some("a=1&key=sk-1&b=");
        assert_eq!(query_param(q, "key").as_deref(), Some("sk-1"));
        assert_eq!(query_param(q, "b").as_deref(), Some(""));
        assert_eq!(query_param(q, "c"), None);
        assert_eq!(query_param(None, "a"), None);
    }
}
