//! The parsing of stage `read`: read the body (bounded) and pick out the fields the gateway
//! needs, once.
//!
//! The body is validated and read with simd-json from one copy; the original bytes are kept for
//! pass-through. Fields the gateway does not read are never materialised. The request validator
//! ([`super::validate`]) checks every route's body over the same tape (or, for bodies simd-json
//! refuses, over serde_json's raw members).

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use serde::de::{self, IgnoredAny, Visitor};
use serde_json::Value;
use simd_json::prelude::*;

use super::controls::{self, CallControls, Scalar};
use super::validate;
use crate::request_body::RequestBody;
pub use crate::request_body::{RequestError, read_error};

/// Read a request body within `limit`, refusing at once a declared `Content-Length` over it.
pub async fn read_declared(
    headers: &http::HeaderMap,
    body: RequestBody,
    limit: usize,
) -> Result<Bytes, RequestError> {
    read_body(body, super::multipart::declared_length(headers), limit).await
}

/// Read a whole body, refusing more than `limit` bytes (413).
pub async fn read_body(
    body: RequestBody,
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
        Err(e) => Err(read_error(e)),
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

#[derive(Deserialize, Default, Clone, Copy)]
struct StreamOptions {
    include_usage: Option<bool>,
}

/// Which body shape the route expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Chat,
    Completion,
    Embedding,
    /// `/v1/responses` (create)
    Responses,
    /// `/v1/messages`: an Anthropic Messages request.
    Messages,
    /// `/v1beta/models/{model}:generateContent` (or `:streamGenerateContent`): a Gemini request.
    Gemini {
        stream: bool,
    },
    /// `/v1/images/generations`
    ImageGeneration,
    /// `/v1/audio/speech` (the answer is audio bytes, relayed as they come)
    Speech,
    /// `/v1/moderations`
    Moderation,
    /// `/v1/rerank` and `/v2/rerank` (Cohere's shape; Jina's and Voyage's translated)
    Rerank,
    /// `/v1/images/edits` (multipart upload)
    ImageEdit,
    /// `/v1/images/variations` (multipart upload)
    ImageVariation,
    /// `/v1/audio/transcriptions` (multipart upload)
    Transcription,
    /// `/v1/audio/translations` (multipart upload)
    Translation,
    /// `/v1/ocr`: Mistral's OCR request (JSON, or a multipart upload made into one)
    Ocr,
}

impl Expect {
    /// Uploads in `multipart/form-data`, read only up to their `model` field.
    pub fn is_multipart(self) -> bool {
        matches!(
            self,
            Expect::ImageEdit
                | Expect::ImageVariation
                | Expect::Transcription
                | Expect::Translation
        )
    }
}

impl ParsedRequest {
    /// The whole body as JSON (for the routes that rebuild it: translations, edits).
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, RequestError> {
        serde_json::from_slice(&self.raw).map_err(|e| RequestError::InvalidJson(e.to_string()))
    }

    /// A multipart upload: only its model is known (the body streams through unread).
    pub fn upload(model: String) -> Self {
        ParsedRequest {
            raw: Bytes::new(),
            model: Some(model),
            model_span: None,
            has_model_member: true,
            stream: false,
            include_usage: None,
            has_stream_options: false,
            mock_response: None,
            end_user: None,
            max_tokens: None,
            tags: Vec::new(),
            cache_controls: Vec::new(),
            canonical: None,
            controls: CallControls::default(),
            prompt_id: false,
        }
    }
}

/// What the gateway read from a request body.
#[derive(Debug, Clone, Default)]
pub struct ParsedRequest {
    /// The body exactly as received.
    pub raw: Bytes,
    pub model: Option<String>,
    /// Bytes of the `model` string literal (quotes included) in `raw`, when known for certain.
    pub model_span: Option<Range<usize>>,
    /// The body has a `model` member (possibly `null`).
    pub has_model_member: bool,
    pub stream: bool,
    /// The client's own `stream_options.include_usage`.
    pub include_usage: Option<bool>,
    /// The body has a `stream_options` member.
    pub has_stream_options: bool,
    pub mock_response: Option<String>,
    /// `user`: the end user the request is made for.
    pub end_user: Option<String>,
    /// `max_tokens` or `max_completion_tokens` (the smaller when both are set).
    pub max_tokens: Option<u64>,
    /// `tags` or `metadata.tags`: request tags for spend tracking.
    pub tags: Vec<String>,
    /// The keys of the `cache` object (per-request cache controls), when it is an object.
    pub cache_controls: Vec<String>,
    /// The body's canonical form for the response cache key (only when the cache is on).
    pub canonical: Option<Vec<u8>>,
    /// LiteLLM's per-request retry, timeout and testing controls.
    pub controls: CallControls,
    /// The body names a prompt template (`prompt_id`): the prompt stage rewrites it.
    pub prompt_id: bool,
}

/// The fields the gateway reads, whichever parser found them.
#[derive(Default)]
struct Fields {
    model: Option<String>,
    model_span: Option<Range<usize>>,
    has_model_member: bool,
    stream: Option<bool>,
    include_usage: Option<bool>,
    has_stream_options: bool,
    messages: Option<Kind>,
    prompt: bool,
    input: bool,
    mock_response: Option<String>,
    user: Option<String>,
    max_tokens: Option<u64>,
    tags: Vec<String>,
    cache_controls: Vec<String>,
    controls: CallControls,
    prompt_id: bool,
}

impl Fields {
    fn max_tokens(&mut self, v: Option<u64>) {
        if let Some(v) = v {
            self.max_tokens = Some(self.max_tokens.map_or(v, |m| m.min(v)));
        }
    }
}

/// The members read: these, then [`controls::NAMES`] (from index [`CONTROLS_AT`]).
const READ: [&str; CONTROLS_AT] = [
    "model",
    "stream",
    "stream_options",
    "messages",
    "prompt",
    "input",
    "mock_response",
    "user",
    "max_tokens",
    "max_completion_tokens",
    "tags",
    "metadata",
    "cache",
    "prompt_id",
];
const CONTROLS_AT: usize = 14;
const TRACKED: [&str; CONTROLS_AT + controls::NAMES.len()] = joined(READ, controls::NAMES);

/// `a` then `b`.
const fn joined<const A: usize, const B: usize, const C: usize>(
    a: [&'static str; A],
    b: [&'static str; B],
) -> [&'static str; C] {
    let mut out = [""; C];
    let mut i = 0;
    while i < A + B {
        out[i] = if i < A { a[i] } else { b[i - A] };
        i += 1;
    }
    out
}

fn type_err(field: &'static str, message: &'static str) -> RequestError {
    RequestError::Invalid { field, message }
}

/// Read the tracked fields from a simd-json tape (no copy of anything but `model`).
fn from_tape(
    raw: &[u8],
    base: usize,
    tape: &simd_json::tape::Tape<'_>,
) -> Result<Fields, RequestError> {
    let root = tape.as_value();
    let obj = root.as_object().ok_or(RequestError::NotObject)?;
    let mut f = Fields::default();
    let mut seen = [false; TRACKED.len()];
    for (k, v) in obj.iter() {
        let Some(i) = TRACKED.iter().position(|t| *t == k) else {
            continue;
        };
        if std::mem::replace(&mut seen[i], true) {
            return Err(RequestError::BadValue(format!("duplicate field `{k}`")));
        }
        tape_field(&mut f, i, v, raw, base)?;
    }
    Ok(f)
}

/// Read the tracked field `TRACKED[i]` (its value `v`) into `f`.
#[inline]
fn tape_field(
    f: &mut Fields,
    i: usize,
    v: simd_json::tape::Value<'_, '_>,
    raw: &[u8],
    base: usize,
) -> Result<(), RequestError> {
    let null = v.is_null();
    match i {
        0 => {
            f.has_model_member = true;
            if !null {
                let m = v.as_str().ok_or(type_err("model", "must be a string"))?;
                f.model_span = span_in(raw, base, m);
                f.model = Some(m.to_string());
            }
        }
        1 => {
            if !null {
                f.stream = Some(v.as_bool().ok_or(type_err("stream", "must be a boolean"))?);
            }
        }
        2 => {
            f.has_stream_options = true;
            if !null {
                let o = v
                    .as_object()
                    .ok_or(type_err("stream_options", "must be an object"))?;
                if let Some(u) = o.get("include_usage").filter(|u| !u.is_null()) {
                    f.include_usage = Some(u.as_bool().ok_or(type_err(
                        "stream_options.include_usage",
                        "must be a boolean",
                    ))?);
                }
            }
        }
        3 => {
            if !null {
                f.messages = Some(match v.as_array() {
                    Some(a) => Kind::Array(a.len()),
                    None => Kind::Other,
                });
            }
        }
        4 => f.prompt = !null,
        5 => f.input = !null,
        7 if !null => f.user = Some(tape_string(v, "user")?),
        6 if !null => f.mock_response = Some(tape_string(v, "mock_response")?),
        6 | 7 => {}
        // Checked by the validator on the routes that use them; elsewhere read leniently.
        8 | 9 => f.max_tokens(v.as_u64()),
        10 => tape_tags(v, &mut f.tags),
        12 => {
            if let Some(o) = v.as_object() {
                f.cache_controls = o.iter().map(|(k, _)| k.to_string()).collect();
            }
        }
        13 => f.prompt_id = !null,
        CONTROLS_AT.. => f.controls.set(i - CONTROLS_AT, tape_scalar(v))?,
        _ => {
            if let Some(t) = v.as_object().and_then(|o| o.get("tags")) {
                tape_tags(t, &mut f.tags);
            }
        }
    }
    Ok(())
}

/// A string field's value.
fn tape_string(
    v: simd_json::tape::Value<'_, '_>,
    field: &'static str,
) -> Result<String, RequestError> {
    Ok(v.as_str()
        .ok_or(type_err(field, "must be a string"))?
        .to_string())
}

fn tape_scalar(v: simd_json::tape::Value<'_, '_>) -> Scalar {
    if v.is_null() {
        return Scalar::Null;
    }
    if let Some(b) = v.as_bool() {
        return Scalar::Bool(b);
    }
    match (v.value_type(), v.as_u64(), v.as_f64()) {
        (ValueType::U64 | ValueType::I64, Some(n), _) => Scalar::Count(n),
        (_, _, Some(f)) => Scalar::Number(f),
        _ => Scalar::Other,
    }
}

fn value_scalar(v: &Value) -> Scalar {
    match v {
        Value::Null => Scalar::Null,
        Value::Bool(b) => Scalar::Bool(*b),
        Value::Number(n) => n
            .as_u64()
            .map(Scalar::Count)
            .or(n.as_f64().map(Scalar::Number))
            .unwrap_or(Scalar::Other),
        _ => Scalar::Other,
    }
}

/// The slow path's controls, from the body's members.
fn serde_controls(members: &validate::Members<'_>) -> Result<CallControls, RequestError> {
    let mut c = CallControls::default();
    for (k, v) in &members.0 {
        if let Some(i) = controls::NAMES.iter().position(|n| n == k) {
            let value = serde_json::from_str::<Value>(v.get());
            c.set(i, value.map_or(Scalar::Other, |v| value_scalar(&v)))?;
        }
    }
    Ok(c)
}

fn tape_tags(v: simd_json::tape::Value<'_, '_>, out: &mut Vec<String>) {
    if let Some(a) = v.as_array() {
        for t in a.iter() {
            if let Some(s) = t.as_str()
                && !out.iter().any(|o| o == s)
            {
                out.push(s.to_string());
            }
        }
    }
}

/// Where `s` (a string simd-json left in place inside the copy of `raw` starting at address
/// `base`) sits in `raw`, as a literal with its quotes, if that can be proven: no escapes in it,
/// same bytes, quotes on both sides.
fn span_in(raw: &[u8], base: usize, s: &str) -> Option<Range<usize>> {
    let start = (s.as_ptr() as usize).checked_sub(base)?;
    let end = start + s.len();
    let clean = !s.bytes().any(|b| b == b'\\' || b == b'"');
    (clean
        && start >= 1
        && raw.get(start - 1) == Some(&b'"')
        && raw.get(start..end) == Some(s.as_bytes())
        && raw.get(end) == Some(&b'"'))
    .then_some(start - 1..end + 1)
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<Option<StreamOptions>>,
    #[serde(default)]
    messages: Option<Kind>,
    #[serde(default)]
    prompt: Option<Kind>,
    #[serde(default)]
    input: Option<Kind>,
    #[serde(borrow, default)]
    mock_response: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user: Option<Cow<'a, str>>,
    #[serde(default)]
    max_tokens: Option<Value>,
    #[serde(default)]
    max_completion_tokens: Option<Value>,
    #[serde(default)]
    tags: Option<Value>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    cache: Option<Value>,
    #[serde(default)]
    prompt_id: Option<Kind>,
}

fn value_tags(v: Option<&Value>, out: &mut Vec<String>) {
    if let Some(Value::Array(a)) = v {
        for t in a {
            if let Some(s) = t.as_str()
                && !out.iter().any(|o| o == s)
            {
                out.push(s.to_string());
            }
        }
    }
}

/// Slow path (serde_json): for bodies simd-json refuses, such as numbers out of f64 range in
/// fields the gateway never reads; also words syntax errors with line and column. The body's
/// nesting and strings are scanned first (without recursion), then its members validated like
/// the hot path's.
fn from_serde(raw: &[u8], expect: Expect) -> Result<Fields, RequestError> {
    let serde_err = |e: serde_json::Error| {
        if raw.iter().all(|b| b.is_ascii_whitespace()) {
            RequestError::InvalidJson("empty body".into())
        } else if !first_non_ws_is(raw, b'{') {
            RequestError::NotObject
        } else if e.is_data() {
            RequestError::BadValue(e.to_string())
        } else {
            RequestError::InvalidJson(e.to_string())
        }
    };
    validate::scan(raw)?;
    let members: validate::Members<'_> = serde_json::from_slice(raw).map_err(serde_err)?;
    validate::validate(expect, members.0.iter().map(|(k, v)| (k.as_str(), *v)))?;
    let controls = serde_controls(&members)?;
    let has_model_member = crate::holds!(raw, b"\"model\"");
    let head: Head<'_> = serde_json::from_slice(raw).map_err(serde_err)?;
    let mut tags = Vec::new();
    value_tags(head.tags.as_ref(), &mut tags);
    value_tags(
        head.metadata.as_ref().and_then(|m| m.get("tags")),
        &mut tags,
    );
    let mut f = Fields {
        tags,
        ..Fields::default()
    };
    f.max_tokens(head.max_tokens.as_ref().and_then(Value::as_u64));
    f.max_tokens(head.max_completion_tokens.as_ref().and_then(Value::as_u64));
    let cache_controls = match &head.cache {
        Some(Value::Object(o)) => o.keys().cloned().collect(),
        _ => Vec::new(),
    };
    Ok(Fields {
        cache_controls,
        controls,
        max_tokens: f.max_tokens,
        tags: f.tags,
        model: head.model.map(Cow::into_owned),
        model_span: None,
        has_model_member,
        stream: head.stream,
        include_usage: head
            .stream_options
            .as_ref()
            .and_then(|o| o.as_ref())
            .and_then(|o| o.include_usage),
        has_stream_options: head.stream_options.is_some(),
        messages: head.messages,
        prompt: head.prompt.is_some(),
        input: head.input.is_some(),
        mock_response: head.mock_response.map(Cow::into_owned),
        user: head.user.map(Cow::into_owned),
        prompt_id: head.prompt_id.is_some(),
    })
}

pub use crate::util::tape::with_tape;

/// Parse and check a request body for `expect`.
pub fn parse(raw: Bytes, expect: Expect) -> Result<ParsedRequest, RequestError> {
    parse_with(raw, expect, false)
}

/// [`parse`], also writing the body's canonical form for the response cache key when `keyed`
/// (from the same tape, so the body is read once).
pub fn parse_with(raw: Bytes, expect: Expect, keyed: bool) -> Result<ParsedRequest, RequestError> {
    // simd-json does not check the bytes of strings it is not asked to read.
    if simdutf8::basic::from_utf8(&raw).is_err() {
        return Err(RequestError::InvalidJson("body is not valid UTF-8".into()));
    }
    let mut copy = raw.to_vec();
    let base = copy.as_ptr() as usize;
    let run = |bufs: &mut simd_json::Buffers| match simd_json::to_tape_with_buffers(&mut copy, bufs)
    {
        Ok(tape) => {
            if let Err(e) = validate::validate_tape(expect, tape.as_value()) {
                return Some(Err(e));
            }
            let canonical = keyed
                .then(|| crate::cache::key::canonical_body(tape.as_value(), &[]))
                .flatten();
            Some(from_tape(&raw, base, &tape).map(|f| (f, canonical)))
        }
        Err(_) => None,
    };
    let parsed = crate::util::tape::with_buffers(raw.len(), run);
    let (fields, canonical) = match parsed {
        Some(r) => r?,
        None => (from_serde(&raw, expect)?, None),
    };
    match expect {
        // a prompt's messages come first, the request may add none
        Expect::Chat if fields.prompt_id && fields.messages.is_none() => {}
        Expect::Responses if fields.prompt_id && !fields.input => {}
        Expect::Chat | Expect::Messages => match fields.messages {
            None => return Err(RequestError::Missing("messages")),
            Some(Kind::Other) => {
                return Err(RequestError::Invalid {
                    field: "messages",
                    message: "must be a list of messages",
                });
            }
            Some(Kind::Array(_)) => {}
        },
        Expect::Completion if !fields.prompt => return Err(RequestError::Missing("prompt")),
        Expect::Gemini { .. } if fields.messages.is_some() => {
            return Err(RequestError::BadValue(
                "a Gemini request has `contents`, not `messages`".into(),
            ));
        }
        Expect::Embedding | Expect::Responses | Expect::Speech | Expect::Moderation
            if !fields.input =>
        {
            return Err(RequestError::Missing("input"));
        }
        Expect::ImageGeneration if !fields.prompt => {
            return Err(RequestError::Missing("prompt"));
        }
        _ => {}
    }
    Ok(ParsedRequest {
        raw,
        model: fields.model,
        model_span: fields.model_span,
        has_model_member: fields.has_model_member,
        stream: fields.stream.unwrap_or(false),
        include_usage: fields.include_usage,
        has_stream_options: fields.has_stream_options,
        mock_response: fields.mock_response,
        end_user: fields.user,
        max_tokens: fields.max_tokens,
        tags: fields.tags,
        cache_controls: fields.cache_controls,
        canonical,
        controls: fields.controls,
        prompt_id: fields.prompt_id,
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
        assert!(r.has_stream_options);
        let span = r.model_span.clone().unwrap();
        assert_eq!(&r.raw[span], br#""gpt-4o""#);
        let r = p(r#"{"model":"a\u0062c","messages":[]}"#).unwrap();
        assert_eq!(r.model.as_deref(), Some("abc"));
        assert!(r.model_span.is_none());
        let r = p(r#"{"model":"x","messages":[],"x":1e400}"#).unwrap();
        assert_eq!(r.model.as_deref(), Some("x"));
    }

    #[test]
    fn reads_max_tokens_and_tags_on_both_paths() {
        for extra in ["", r#","x":1e400"#] {
            let r = p(&format!(
                r#"{{"model":"m","messages":[],"max_tokens":50,"max_completion_tokens":20,"tags":["a",1,"b"],"metadata":{{"tags":["b","c"]}}{extra}}}"#
            ))
            .unwrap();
            assert_eq!(r.max_tokens, Some(20), "{extra}");
            assert_eq!(r.tags, ["a", "b", "c"], "{extra}");
            let r = p(&format!(
                r#"{{"model":"m","messages":[],"max_tokens":"x"{extra}}}"#
            ));
            assert_eq!(r.unwrap_err().param(), Some("max_tokens"), "{extra}");
            // a route that does not check it reads it leniently
            let r = parse(
                Bytes::from(format!(
                    r#"{{"model":"m","input":"a","max_tokens":"x"{extra}}}"#
                )),
                Expect::Embedding,
            )
            .unwrap();
            assert_eq!(r.max_tokens, None);
        }
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

    /// The body-wide limits hold on both paths (a member simd-json refuses forces the slow one).
    #[test]
    fn nesting_and_surrogates_on_both_paths() {
        use super::validate::MAX_DEPTH;
        let param = |r: Result<ParsedRequest, RequestError>| r.err().map(|e| e.to_string());
        // the body's object is level 1, `x`'s arrays the rest
        let nested = |levels: usize, extra: &str| {
            let n = levels - 1;
            format!(
                r#"{{"model":"m","messages":[]{extra},"x":{}1{}}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        for extra in ["", r#","y":1e400"#] {
            assert!(p(&nested(MAX_DEPTH, extra)).is_ok(), "{extra}");
            for levels in [MAX_DEPTH + 1, 1000, 100_000] {
                assert_eq!(
                    param(p(&nested(levels, extra))).as_deref(),
                    Some("Invalid parameter x: nested deeper than 64 levels"),
                    "{levels} {extra}"
                );
            }
            for s in [r#""\ud800""#, r#""a\udfff""#, r#""\ud800\u0041""#] {
                let body = format!(r#"{{"model":"m"{extra},"messages":[{{"content":{s}}}]}}"#);
                let e = p(&body).unwrap_err();
                assert_eq!(e.param(), Some("messages"), "{body}");
                assert!(e.to_string().contains("lone surrogate"), "{e}");
            }
            assert!(
                p(&format!(
                    r#"{{"model":"m"{extra},"messages":["\ud83d\ude00"]}}"#
                ))
                .is_ok()
            );
            let e = p(&format!(
                r#"{{"model":"m","messages":[],"temperature":1e999999{extra}}}"#
            ))
            .unwrap_err();
            assert_eq!(e.param(), Some("temperature"));
            assert_eq!(
                e.to_string(),
                "Invalid parameter temperature: must be a number between 0 and 2"
            );
        }
    }

    #[test]
    fn model_is_optional_here() {
        assert!(p(r#"{"messages":[]}"#).unwrap().model.is_none());
    }
}
