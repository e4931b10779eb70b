//! Stage `parse`: read the body (bounded) and pick out the fields the gateway needs, once.
//!
//! The body is validated and read with simd-json from one copy; the original bytes are kept for
//! pass-through. Fields the gateway does not read are never materialised.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde::de::{self, IgnoredAny, Visitor};

/// Why a request body was refused.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(
        "Request body too large: the limit is {limit_mb} MB (general_settings.max_request_size_mb)"
    )]
    TooLarge { limit_mb: f64 },
    #[error("Could not read request body: {0}")]
    Read(String),
    #[error("Invalid JSON in request body: {0}")]
    InvalidJson(String),
    #[error("Invalid request body: {0}")]
    BadValue(String),
    #[error("Request body must be a JSON object")]
    NotObject,
    #[error("Missing required parameter: {0}")]
    Missing(&'static str),
    #[error("Invalid parameter {field}: {message}")]
    Invalid {
        field: &'static str,
        message: &'static str,
    },
}

impl RequestError {
    pub fn status(&self) -> StatusCode {
        match self {
            RequestError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
    pub fn param(&self) -> Option<&str> {
        match self {
            RequestError::Missing(f) => Some(f),
            RequestError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// Read a whole body, refusing more than `limit` bytes (413).
pub async fn read_body(
    body: Incoming,
    declared_len: Option<u64>,
    limit: usize,
) -> Result<Bytes, RequestError> {
    let limit_mb = limit as f64 / (1024.0 * 1024.0);
    if declared_len.is_some_and(|n| n > limit as u64) {
        return Err(RequestError::TooLarge { limit_mb });
    }
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(RequestError::TooLarge { limit_mb })
        }
        Err(e) => Err(RequestError::Read(e.to_string())),
    }
}

/// The shape of a JSON value whose contents the gateway does not need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Array(usize),
    Other,
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Kind;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Kind, A::Error> {
                let mut n = 0;
                while a.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Kind::Array(n))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Kind, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Kind::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Kind, E> {
                Ok(Kind::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Kind, E> {
                Ok(Kind::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Kind, E> {
                Ok(Kind::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Kind, E> {
                Ok(Kind::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Kind, E> {
                Ok(Kind::Other)
            }
            fn visit_unit<E>(self) -> Result<Kind, E> {
                Ok(Kind::Other)
            }
            fn visit_none<E>(self) -> Result<Kind, E> {
                Ok(Kind::Other)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize, Default)]
struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    messages: Option<Kind>,
    #[serde(default)]
    prompt: Option<Kind>,
    #[serde(default)]
    input: Option<Kind>,
    #[serde(borrow, default)]
    mock_response: Option<Cow<'a, str>>,
}

/// Which body shape the route expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Chat,
    Completion,
    Embedding,
}

/// What the gateway read from a request body.
#[derive(Debug, Clone)]
pub struct ParsedRequest {
    /// The body exactly as received.
    pub raw: Bytes,
    pub model: Option<String>,
    pub stream: bool,
    /// The client's own `stream_options.include_usage`.
    pub include_usage: Option<bool>,
    pub mock_response: Option<String>,
}

/// Parse and check a request body for `expect`.
pub fn parse(raw: Bytes, expect: Expect) -> Result<ParsedRequest, RequestError> {
    // simd-json does not check the bytes of strings it is not asked to read.
    if simdutf8::basic::from_utf8(&raw).is_err() {
        return Err(RequestError::InvalidJson("body is not valid UTF-8".into()));
    }
    let mut copy = raw.to_vec();
    let head: Head<'_> = match simd_json::serde::from_slice(&mut copy) {
        Ok(h) => h,
        // simd-json computes every number; serde_json only checks the syntax of fields it
        // skips, so values like 1e400 in fields the gateway ignores still pass through. It
        // also words errors with line and column.
        Err(_) => serde_json::from_slice(&raw).map_err(|e| {
            if raw.iter().all(|b| b.is_ascii_whitespace()) {
                RequestError::InvalidJson("empty body".into())
            } else if !first_non_ws_is(&raw, b'{') {
                RequestError::NotObject
            } else if e.is_data() {
                RequestError::BadValue(e.to_string())
            } else {
                RequestError::InvalidJson(e.to_string())
            }
        })?,
    };
    let model = head.model.map(Cow::into_owned);
    match expect {
        Expect::Chat => match head.messages {
            None => return Err(RequestError::Missing("messages")),
            Some(Kind::Other) => {
                return Err(RequestError::Invalid {
                    field: "messages",
                    message: "must be a list of messages",
                });
            }
            Some(Kind::Array(_)) => {}
        },
        Expect::Completion => {
            if head.prompt.is_none() {
                return Err(RequestError::Missing("prompt"));
            }
        }
        Expect::Embedding => {
            if head.input.is_none() {
                return Err(RequestError::Missing("input"));
            }
        }
    }
    let stream = head.stream.unwrap_or(false);
    let include_usage = head.stream_options.and_then(|s| s.include_usage);
    let mock_response = head.mock_response.map(Cow::into_owned);
    Ok(ParsedRequest {
        raw,
        model,
        stream,
        include_usage,
        mock_response,
    })
}

fn first_non_ws_is(b: &[u8], c: u8) -> bool {
    b.iter().find(|x| !x.is_ascii_whitespace()) == Some(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<ParsedRequest, RequestError> {
        parse(Bytes::from(s.to_string()), Expect::Chat)
    }

    #[test]
    fn reads_fields() {
        let r = p(r#"{"messages":[{"role":"user","content":"hi"}],"model":"gpt-4o","stream":true,"stream_options":{"include_usage":false},"x":{"y":1}}"#).unwrap();
        assert_eq!(r.model.as_deref(), Some("gpt-4o"));
        assert!(r.stream);
        assert_eq!(r.include_usage, Some(false));
    }

    #[test]
    fn rejects_bad_bodies() {
        assert!(matches!(p("{"), Err(RequestError::InvalidJson(_))));
        assert!(matches!(p(""), Err(RequestError::InvalidJson(_))));
        assert!(matches!(p("[1]"), Err(RequestError::NotObject)));
        assert!(matches!(
            p(r#"{"model":"a","messages":"hi"}"#),
            Err(RequestError::Invalid {
                field: "messages",
                ..
            })
        ));
        assert!(matches!(
            p(r#"{"model":"a"}"#),
            Err(RequestError::Missing("messages"))
        ));
        assert!(matches!(
            parse(Bytes::from_static(b"{\"model\":\"\xff\"}"), Expect::Chat),
            Err(RequestError::InvalidJson(_))
        ));
        assert!(matches!(
            parse(
                Bytes::from_static(b"{\"model\":\"a\",\"messages\":[\"\xff\"]}"),
                Expect::Chat
            ),
            Err(RequestError::InvalidJson(_))
        ));
        assert!(p(r#"{"model":"a","model":"b","messages":[]}"#).is_err());
        assert!(p(r#"{"model":5,"messages":[]}"#).is_err());
        assert!(p(r#"{"model":"a","messages":[],"x":[1e400,123456789012345678901234567890,-0.0e-999]}"#).is_ok());
    }

    #[test]
    fn model_is_optional_here() {
        assert!(p(r#"{"messages":[]}"#).unwrap().model.is_none());
    }
}
