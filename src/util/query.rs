//! Query strings.

/// `name`'s value in a query string (as written, not percent-decoded).
pub fn query_param(q: Option<&str>, name: &str) -> Option<String> {
    q?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// `name`'s value in a query string, percent-decoded (`+` as a space); invalid escapes are
/// kept as written.
pub fn decoded_param(q: Option<&str>, name: &str) -> Option<String> {
    query_param(q, name).map(|v| percent_decoded(&v))
}

/// `s` with its `%XX` escapes and `+` decoded.
pub fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                if let Some(v) = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    out.push(v);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::{decoded_param, query_param};

    #[test]
    fn decodes_escapes() {
        let q = Some("after_id=msgbatch_v2%3Agcm%3Aab%3D%3D&x=a+b%2&y=%E2%9C%93");
        assert_eq!(
            decoded_param(q, "after_id").as_deref(),
            Some("msgbatch_v2:gcm:ab==")
        );
        assert_eq!(decoded_param(q, "x").as_deref(), Some("a b%2"));
        assert_eq!(decoded_param(q, "y").as_deref(), Some("\u{2713}"));
    }

    #[test]
    fn finds_the_named_value() {
        let q = Some("a=1&key=sk-1&b=");
        assert_eq!(query_param(q, "key").as_deref(), Some("sk-1"));
        assert_eq!(query_param(q, "b").as_deref(), Some(""));
        assert_eq!(query_param(q, "c"), None);
        assert_eq!(query_param(None, "a"), None);
    }
}
