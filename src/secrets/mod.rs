//! Secrets: the one place that hides them when shown and encrypts them when stored.
//!
//! - [`redact_url`] / [`redact_text`]: a URL (or any text with URLs in it) as it may be shown or
//!   logged: userinfo (`user:pass@`) becomes `***@`, and query parameters whose names look
//!   secret (`key`, `api_key`, `api-key`, `x-goog-api-key`, `token`, `access_token`, `sig`,
//!   `signature`, `password`, `secret`, `credential`, `auth`...) get the value `***`. Every place
//!   that shows or logs an `api_base` or upstream URL goes through these.
//! - [`redact_header`]: a request header as it may be shown (credential values hidden).
//! - [`at_rest`]: provider credentials of database models encrypted with the salt key
//!   (LiteLLM's `v3:gcm:` format).

pub mod at_rest;

use std::borrow::Cow;

pub use at_rest::{AtRest, SecretError};

/// Request headers that carry a client's credentials (every header the gateway reads its key
/// from, and cookies): never passed on to an upstream, even when a config names them among
/// the headers to forward.
pub const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "x-api-key",
    "api-key",
    "x-litellm-api-key",
    "x-tianji-api-key",
    "x-goog-api-key",
    "ocp-apim-subscription-key",
    "cookie",
];

/// What replaces a hidden part of a URL.
const HIDDEN: &str = "***";

/// Query parameter names containing one of these (lowercased) are secret.
const SECRET_QUERY_PARTS: &[&str] = &[
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "sig",
    "credential",
    "auth",
];

/// Whether a query parameter (or a metadata member) named `name` holds a secret.
pub fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_QUERY_PARTS.iter().any(|p| n.contains(p))
}

/// Whether a request header named `name` carries a credential: the client credential headers
/// above, and any whose name looks secret (`authorization`, `x-api-key`, `x-goog-api-key`,
/// `x-amz-security-token`, ...). AWS's signing headers other than `authorization` and the
/// security token (`x-amz-date`, `x-amz-content-sha256`) are not secret.
pub fn secret_header(name: &str) -> bool {
    CREDENTIAL_HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
        || secret_name(name)
}

/// A request header's value as it may be shown: a credential header's value hidden (an
/// `authorization` header's scheme kept: `Bearer ***`, `AWS4-HMAC-SHA256 ***`), any other as
/// it is.
pub fn redact_header<'a>(name: &str, value: &'a str) -> Cow<'a, str> {
    if !secret_header(name) {
        return Cow::Borrowed(value);
    }
    let authorization = name.to_ascii_lowercase().ends_with("authorization");
    match value.split_once(' ') {
        Some((scheme, _))
            if authorization
                && !scheme.is_empty()
                && scheme.len() <= 32
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
        {
            Cow::Owned(format!("{scheme} {HIDDEN}"))
        }
        _ => Cow::Borrowed(HIDDEN),
    }
}

/// Where a `scheme://` URL's authority (`user:pass@host:port`) starts and ends.
fn authority_span(url: &str) -> Option<(usize, usize)> {
    let host_start = url.find("://")? + 3;
    let host_end = url[host_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| host_start + i);
    Some((host_start, host_end))
}

/// `url` without credentials: userinfo replaced by `***`, secret query values by `***`.
/// Anything that is not a `scheme://` URL is returned unchanged.
pub fn redact_url(url: &str) -> Cow<'_, str> {
    let Some((host_start, host_end)) = authority_span(url) else {
        return Cow::Borrowed(url);
    };
    let authority = &url[host_start..host_end];
    let rest = &url[host_end..];
    let (before_fragment, fragment) = match rest.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (rest, None),
    };
    let (path, query) = match before_fragment.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (before_fragment, None),
    };
    let userinfo = authority.rfind('@');
    let secret_query = query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.split_once('=').is_some_and(|(n, _)| secret_name(n)))
    });
    if userinfo.is_none() && !secret_query {
        return Cow::Borrowed(url);
    }
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..host_start]);
    match userinfo {
        Some(at) => {
            out.push_str(HIDDEN);
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    out.push_str(path);
    if let Some(q) = query {
        out.push('?');
        for (i, pair) in q.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((name, _)) if secret_name(name) => {
                    out.push_str(name);
                    out.push('=');
                    out.push_str(HIDDEN);
                }
                _ => out.push_str(pair),
            }
        }
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    Cow::Owned(out)
}

/// `url` without its userinfo (`user:pass@`): the gateway never sends userinfo upstream (hyper
/// takes the host and port only), so it is dropped before a deployment's URLs are built and
/// stays out of request URIs, connection pool keys and their logs.
pub fn strip_userinfo(url: &str) -> Cow<'_, str> {
    let Some((host_start, host_end)) = authority_span(url) else {
        return Cow::Borrowed(url);
    };
    match url[host_start..host_end].rfind('@') {
        Some(at) => Cow::Owned(format!(
            "{}{}",
            &url[..host_start],
            &url[host_start + at + 1..]
        )),
        None => Cow::Borrowed(url),
    }
}

/// Characters that end a URL inside free text.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>')
}

/// `text` with every `scheme://...` URL in it passed through [`redact_url`].
pub fn redact_text(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    let mut search = 0;
    while let Some(i) = text[search..].find("://") {
        let sep = search + i;
        let start = text[..sep]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |j| j + 1)
            .max(done);
        let end = text[sep..].find(ends_url).map_or(text.len(), |j| sep + j);
        out.push_str(&text[done..start]);
        out.push_str(&redact_url(&text[start..end]));
        done = end;
        search = end.max(sep + 3);
    }
    out.push_str(&text[done..]);
    if out == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(out)
    }
}

/// Every string in `v` passed through [`redact_text`] (for stored rows written before URLs were
/// redacted).
pub fn redact_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => {
            if let Cow::Owned(r) = redact_text(s) {
                *s = r;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(redact_json),
        _ => {}
    }
}

/// A config document as it may be shown: every text under a secret-looking name
/// ([`secret_name`]: `api_key`, `master_key`, `aws_secret_access_key`, `Authorization`, ...)
/// replaced by `***`, every other text through [`redact_text`] (URLs' userinfo and secret query
/// values).
pub fn redact_config(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (name, value) in map.iter_mut() {
                match value {
                    serde_json::Value::String(s) if secret_name(name) && !s.is_empty() => {
                        *s = HIDDEN.to_string();
                    }
                    _ => redact_config(value),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_config),
        serde_json::Value::String(s) => {
            if let Cow::Owned(r) = redact_text(s) {
                *s = r;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_documents_hide_their_secrets() {
        let mut v = serde_json::json!({
            "model_list": [{"model_name": "m", "tianji_params": {"model": "openai/x",
                "api_key": "sk-live", "api_base": "https://u:p@h.example/v1", "max_tokens": 5}}],
            "general_settings": {"master_key": "sk-master", "database_url": "postgres://a:b@db/x",
                "pass_through_endpoints": [{"headers": {"Authorization": "Bearer t"}, "auth": false}]},
        });
        redact_config(&mut v);
        let p = &v["model_list"][0]["tianji_params"];
        assert_eq!(p["api_key"], "***");
        assert_eq!(p["api_base"], "https://***@h.example/v1");
        assert_eq!(p["max_tokens"], 5);
        assert_eq!(p["model"], "openai/x");
        let g = &v["general_settings"];
        assert_eq!(g["master_key"], "***");
        assert_eq!(g["database_url"], "postgres://***@db/x");
        assert_eq!(
            g["pass_through_endpoints"][0]["headers"]["Authorization"],
            "***"
        );
        assert_eq!(g["pass_through_endpoints"][0]["auth"], false);
    }

    #[test]
    fn userinfo_and_secret_query_values_are_hidden() {
        assert_eq!(
            redact_url("http://user:pass@127.0.0.1:9/v1?api_key=sek&api-version=1"),
            "http://***@127.0.0.1:9/v1?api_key=***&api-version=1"
        );
        assert_eq!(
            redact_url("https://token@h.example/p#frag"),
            "https://***@h.example/p#frag"
        );
        for name in [
            "key",
            "api_key",
            "api-key",
            "x-goog-api-key",
            "token",
            "access_token",
            "sig",
            "X-Amz-Signature",
            "password",
            "client_secret",
        ] {
            let u = format!("https://h/x?a=1&{name}=s3cr3t");
            let r = redact_url(&u);
            assert!(!r.contains("s3cr3t"), "{name}: {r}");
            assert!(r.contains("a=1"), "{r}");
        }
        // nothing to hide: borrowed as is
        assert!(matches!(
            redact_url("https://api.openai.com/v1?api-version=2"),
            Cow::Borrowed(_)
        ));
        assert_eq!(redact_url("not a url"), "not a url");
        // an `@` in the path is not userinfo
        assert_eq!(redact_url("http://h/a@b"), "http://h/a@b");
        assert_eq!(
            strip_userinfo("http://u:p@h:1/v1?key=k"),
            "http://h:1/v1?key=k"
        );
        assert_eq!(strip_userinfo("http://h/a@b"), "http://h/a@b");
        assert!(matches!(strip_userinfo("https://h/v1"), Cow::Borrowed(_)));
    }

    #[test]
    fn credential_headers_are_hidden_with_their_scheme() {
        assert_eq!(redact_header("Authorization", "Bearer sk-1"), "Bearer ***");
        assert_eq!(
            redact_header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKID/x, SignedHeaders=host, Signature=ab"
            ),
            "AWS4-HMAC-SHA256 ***"
        );
        for name in [
            "api-key",
            "x-api-key",
            "x-goog-api-key",
            "x-amz-security-token",
        ] {
            assert_eq!(redact_header(name, "s3cr3t"), "***", "{name}");
        }
        assert_eq!(redact_header("x-api-key", "a b"), "***");
        for (name, value) in [
            ("anthropic-version", "2023-06-01"),
            ("x-amz-date", "20260101T000000Z"),
            ("x-amz-content-sha256", "e3b0"),
            ("content-type", "application/json"),
        ] {
            assert_eq!(redact_header(name, value), value, "{name}");
        }
    }

    #[test]
    fn urls_inside_text_are_redacted() {
        assert_eq!(
            redact_text("Connection error calling http://u:p@h:1/v1?key=k: refused"),
            "Connection error calling http://***@h:1/v1?key=*** refused"
        );
        assert_eq!(
            redact_text("a \"https://x:y@h\" and wss://z@g/ end"),
            "a \"https://***@h\" and wss://***@g/ end"
        );
        assert_eq!(redact_text("no urls here"), "no urls here");
        assert_eq!(redact_text("://"), "://");
        let mut v = serde_json::json!({"a": ["http://u:p@h"], "b": {"c": "x"}});
        redact_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"a": ["http://***@h"], "b": {"c": "x"}})
        );
    }
}
