//! Per-request cache controls: the body's `cache` object (LiteLLM's `no-cache`, `no-store`,
//! `ttl`, `s-maxage`, `namespace`, `use-cache`) and the same controls as headers
//! (`Cache-Control: no-cache, no-store, s-maxage=N`, `x-tianji-cache-ttl`,
//! `x-tianji-cache-namespace`). The body wins where both say.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::request_body::RequestError;

/// What a request asks of the cache.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Controls {
    /// Do not answer from the cache (the answer is still stored).
    pub no_cache: bool,
    /// Do not store the answer.
    pub no_store: bool,
    /// Store the answer for this long instead of `cache_params.ttl`.
    pub ttl: Option<Duration>,
    /// Only accept a stored answer at most this old.
    pub s_maxage: Option<Duration>,
    pub namespace: Option<String>,
    /// Opt in under `mode: default_off`.
    pub use_cache: bool,
    /// The controls given as headers (for `allowed_cache_controls`).
    pub header_names: Vec<&'static str>,
}

#[derive(Deserialize)]
struct CacheMember {
    #[serde(default)]
    cache: Option<Value>,
}

fn bad(field: &'static str, message: &'static str) -> RequestError {
    RequestError::Invalid { field, message }
}

fn secs(v: &Value, field: &'static str) -> Result<Duration, RequestError> {
    v.as_f64()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or(bad(field, "must be a number of seconds, 0 or more"))
}

fn flag(v: &Value, field: &'static str) -> Result<bool, RequestError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        _ => Err(bad(field, "must be true or false")),
    }
}

/// A namespace: 1 to 128 of `A-Z a-z 0-9 _ - . :` (it becomes part of Redis keys).
fn namespace(v: &str, field: &'static str) -> Result<Option<String>, RequestError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let ok = v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if !ok {
        return Err(bad(
            field,
            "must be 1 to 128 letters, digits, '_', '-', '.' or ':'",
        ));
    }
    Ok(Some(v.to_string()))
}

fn header_secs(v: &str, field: &'static str) -> Result<Duration, RequestError> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or(bad(field, "must be a number of seconds, 0 or more"))
}

impl Controls {
    /// The controls of a request: `has_body_controls` says whether the body has a `cache`
    /// object (known from the parse stage, so bodies without one are not read again).
    pub fn of(
        raw: &[u8],
        has_body_controls: bool,
        headers: &http::HeaderMap,
    ) -> Result<Self, RequestError> {
        let mut c = Controls::default();
        c.read_headers(headers)?;
        if has_body_controls {
            let m: CacheMember = serde_json::from_slice(raw)
                .map_err(|e| RequestError::InvalidJson(e.to_string()))?;
            if let Some(Value::Object(o)) = m.cache {
                c.read_body(&o)?;
            }
        }
        Ok(c)
    }

    fn read_headers(&mut self, headers: &http::HeaderMap) -> Result<(), RequestError> {
        for v in headers.get_all(http::header::CACHE_CONTROL) {
            let v = v
                .to_str()
                .map_err(|_| bad("Cache-Control", "must be ASCII"))?;
            for d in v.split(',').map(str::trim) {
                let (name, arg) = d.split_once('=').unwrap_or((d, ""));
                match name.trim().to_ascii_lowercase().as_str() {
                    "no-cache" => {
                        self.no_cache = true;
                        self.header_names.push("no-cache");
                    }
                    "no-store" => {
                        self.no_store = true;
                        self.header_names.push("no-store");
                    }
                    "s-maxage" => {
                        self.s_maxage = Some(header_secs(arg, "Cache-Control s-maxage")?);
                        self.header_names.push("s-maxage");
                    }
                    _ => {}
                }
            }
        }
        if let Some(v) = headers.get("x-tianji-cache-ttl") {
            let v = v
                .to_str()
                .map_err(|_| bad("x-tianji-cache-ttl", "must be ASCII"))?;
            self.ttl = Some(header_secs(v, "x-tianji-cache-ttl")?);
            self.header_names.push("ttl");
        }
        if let Some(v) = headers.get("x-tianji-cache-namespace") {
            let v = v
                .to_str()
                .map_err(|_| bad("x-tianji-cache-namespace", "must be ASCII"))?;
            self.namespace = namespace(v, "x-tianji-cache-namespace")?;
            self.header_names.push("namespace");
        }
        Ok(())
    }

    fn read_body(&mut self, o: &serde_json::Map<String, Value>) -> Result<(), RequestError> {
        for (k, v) in o {
            match k.as_str() {
                "no-cache" => self.no_cache = flag(v, "cache.no-cache")?,
                "no-store" => self.no_store = flag(v, "cache.no-store")?,
                "use-cache" => self.use_cache = flag(v, "cache.use-cache")?,
                "ttl" => self.ttl = Some(secs(v, "cache.ttl")?),
                "s-maxage" => self.s_maxage = Some(secs(v, "cache.s-maxage")?),
                "namespace" => {
                    let n = v
                        .as_str()
                        .ok_or(bad("cache.namespace", "must be a string"))?;
                    self.namespace = namespace(n, "cache.namespace")?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn body_and_headers() {
        let none = Controls::of(b"{}", false, &http::HeaderMap::new()).unwrap();
        assert_eq!(none, Controls::default());

        let body = br#"{"model":"m","cache":{"no-cache":true,"ttl":30,"s-maxage":5,"namespace":"ns","use-cache":true,"other":1}}"#;
        let c = Controls::of(body, true, &http::HeaderMap::new()).unwrap();
        assert!(c.no_cache && !c.no_store && c.use_cache);
        assert_eq!(c.ttl, Some(Duration::from_secs(30)));
        assert_eq!(c.s_maxage, Some(Duration::from_secs(5)));
        assert_eq!(c.namespace.as_deref(), Some("ns"));
        assert!(c.header_names.is_empty());

        let h = headers(&[
            ("cache-control", "No-Store, s-maxage=7, max-age=1"),
            ("x-tianji-cache-ttl", "12.5"),
            ("x-tianji-cache-namespace", "hdr"),
        ]);
        let c = Controls::of(br#"{"cache":{"namespace":"body"}}"#, true, &h).unwrap();
        assert!(c.no_store && !c.no_cache);
        assert_eq!(c.s_maxage, Some(Duration::from_secs(7)));
        assert_eq!(c.ttl, Some(Duration::from_millis(12_500)));
        assert_eq!(c.namespace.as_deref(), Some("body"));
        assert_eq!(c.header_names, ["no-store", "s-maxage", "ttl", "namespace"]);
    }

    #[test]
    fn bad_values_are_400s() {
        let empty = http::HeaderMap::new();
        for body in [
            r#"{"cache":{"ttl":"soon"}}"#,
            r#"{"cache":{"ttl":-1}}"#,
            r#"{"cache":{"no-cache":"yes"}}"#,
            r#"{"cache":{"namespace":3}}"#,
            r#"{"cache":{"namespace":"a b"}}"#,
            r#"{"cache":{"namespace":"a\nb"}}"#,
        ] {
            assert!(
                Controls::of(body.as_bytes(), true, &empty).is_err(),
                "{body}"
            );
        }
        let h = headers(&[("cache-control", "s-maxage=abc")]);
        assert!(Controls::of(b"{}", false, &h).is_err());
        let h = headers(&[("x-tianji-cache-ttl", "-3")]);
        assert!(Controls::of(b"{}", false, &h).is_err());
    }
}
