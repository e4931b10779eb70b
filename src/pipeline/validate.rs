//! The request validator of the read stage: every LLM route's body is checked here, once, over
//! the parse it already has (no second parse, nothing copied or serialised).
//!
//! - The body as a whole: containers nested at most [`MAX_DEPTH`] deep (the body's own object
//!   counts as one) and no lone UTF-16 surrogate escape (`"\ud800"`) in any string. On the hot
//!   path simd-json enforces both (its depth limit is set to [`MAX_DEPTH`] and it refuses lone
//!   surrogates); bodies it refuses take the slow path, where [`scan`] checks them without
//!   recursion before serde_json reads them.
//! - The members the gateway reads or translates: the documented ranges of each route (OpenAI's;
//!   Anthropic's on `/v1/messages`; Gemini's `generationConfig`), one table per route, checked
//!   by [`validate`]. `null` is "not given". Members not in the tables pass untouched.
//!
//! A failure is a 400 naming the parameter: "Invalid parameter temperature: must be a number
//! between 0 and 2".

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::value::RawValue;
use simd_json::prelude::*;

use super::parse::{Expect, RequestError};

pub use crate::util::tape::MAX_DEPTH;

/// What the validator needs to know of a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    Null,
    Bool,
    Int(i128),
    /// A number with a fraction or an exponent, or an integer out of range (infinite when it
    /// overflows f64).
    Float(f64),
    Str,
    Array,
    Object,
}

/// A JSON value the validator can read: a simd-json tape value (hot path) or a serde_json raw
/// value (slow path).
pub trait Json: Copy {
    fn shape(self) -> Shape;
    /// Calls `f` on each member of an object (on nothing for other values).
    fn each_member<F>(self, f: F) -> Result<(), RequestError>
    where
        F: FnMut(&str, Self) -> Result<(), RequestError>;
}

impl Json for simd_json::tape::Value<'_, '_> {
    #[inline]
    fn shape(self) -> Shape {
        match self.value_type() {
            ValueType::Null => Shape::Null,
            ValueType::Bool => Shape::Bool,
            ValueType::I64 => self
                .as_i64()
                .map_or(Shape::Float(f64::NAN), |i| Shape::Int(i.into())),
            ValueType::U64 => self
                .as_u64()
                .map_or(Shape::Float(f64::NAN), |u| Shape::Int(u.into())),
            ValueType::String => Shape::Str,
            ValueType::Array => Shape::Array,
            ValueType::Object => Shape::Object,
            _ => self.as_f64().map_or(Shape::Float(f64::NAN), Shape::Float),
        }
    }

    fn each_member<F>(self, mut f: F) -> Result<(), RequestError>
    where
        F: FnMut(&str, Self) -> Result<(), RequestError>,
    {
        match self.as_object() {
            Some(o) => o.iter().try_for_each(|(k, v)| f(k, v)),
            None => Ok(()),
        }
    }
}

impl Json for &RawValue {
    fn shape(self) -> Shape {
        let s = self.get();
        match s.as_bytes().first() {
            Some(b'n') => Shape::Null,
            Some(b't' | b'f') => Shape::Bool,
            Some(b'"') => Shape::Str,
            Some(b'[') => Shape::Array,
            Some(b'{') => Shape::Object,
            _ => number(s),
        }
    }

    fn each_member<F>(self, mut f: F) -> Result<(), RequestError>
    where
        F: FnMut(&str, Self) -> Result<(), RequestError>,
    {
        if self.shape() != Shape::Object {
            return Ok(());
        }
        let members: Members<'_> =
            serde_json::from_str(self.get()).map_err(|e| RequestError::BadValue(e.to_string()))?;
        members.0.iter().try_for_each(|(k, v)| f(k, v))
    }
}

/// A JSON number literal: integers exactly (as far as i128 goes), others as f64 (1e999999 is
/// infinite).
fn number(s: &str) -> Shape {
    if !s.contains(['.', 'e', 'E'])
        && let Ok(i) = s.parse::<i128>()
    {
        return Shape::Int(i);
    }
    s.parse::<f64>()
        .map_or(Shape::Float(f64::NAN), Shape::Float)
}

/// The members of a JSON object, in order (duplicates kept), values unread: the slow path's view
/// of a body.
pub struct Members<'a>(pub Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Members<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some(m) = a.next_entry::<String, &'de RawValue>()? {
                    out.push(m);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Clone, Copy)]
enum Rule {
    /// A number in `min..=max`.
    Number {
        min: f64,
        max: f64,
    },
    /// An integer (written without fraction or exponent) in `min..=max`.
    Int {
        min: i128,
        max: i128,
    },
    Bool,
    Str,
    /// An object whose members follow these rules.
    Object(&'static [Param]),
}

/// One member the gateway reads, its rule and what the 400 says when it is broken.
struct Param {
    key: &'static str,
    /// The name in the error (`generationConfig.temperature` for a nested one).
    name: &'static str,
    rule: Rule,
    message: &'static str,
}

const fn param(key: &'static str, rule: Rule, message: &'static str) -> Param {
    Param {
        key,
        name: key,
        rule,
        message,
    }
}

const fn num(min: f64, max: f64) -> Rule {
    Rule::Number { min, max }
}

const fn int(min: i128, max: i128) -> Rule {
    Rule::Int { min, max }
}

const ANY_INT: Rule = int(i64::MIN as i128, u64::MAX as i128);
const MANY: i128 = u64::MAX as i128;

/// Members of every JSON route, read by the parse stage itself.
const COMMON: &[Param] = &[
    param("model", Rule::Str, "must be a string"),
    param("stream", Rule::Bool, "must be a boolean"),
    param(
        "stream_options",
        Rule::Object(&[Param {
            key: "include_usage",
            name: "stream_options.include_usage",
            rule: Rule::Bool,
            message: "must be a boolean",
        }]),
        "must be an object",
    ),
    param("user", Rule::Str, "must be a string"),
    param("mock_response", Rule::Str, "must be a string"),
];

const TEMPERATURE: Param = param(
    "temperature",
    num(0.0, 2.0),
    "must be a number between 0 and 2",
);
const TOP_P: Param = param("top_p", num(0.0, 1.0), "must be a number between 0 and 1");
const N: Param = param("n", int(1, 128), "must be an integer between 1 and 128");
const PRESENCE: Param = param(
    "presence_penalty",
    num(-2.0, 2.0),
    "must be a number between -2 and 2",
);
const FREQUENCY: Param = param(
    "frequency_penalty",
    num(-2.0, 2.0),
    "must be a number between -2 and 2",
);
const SEED: Param = param("seed", ANY_INT, "must be an integer");
const TOP_LOGPROBS: Param = param(
    "top_logprobs",
    int(0, 20),
    "must be an integer between 0 and 20",
);

/// `/v1/chat/completions` (and its Azure alias).
const CHAT: &[Param] = &[
    TEMPERATURE,
    TOP_P,
    N,
    PRESENCE,
    FREQUENCY,
    param("max_tokens", int(1, MANY), "must be an integer >= 1"),
    param(
        "max_completion_tokens",
        int(1, MANY),
        "must be an integer >= 1",
    ),
    SEED,
    param("logprobs", Rule::Bool, "must be a boolean"),
    TOP_LOGPROBS,
];

/// `/v1/completions`: `max_tokens` may be 0 (with `echo`, to score a prompt), `logprobs` is a
/// count.
const COMPLETION: &[Param] = &[
    TEMPERATURE,
    TOP_P,
    N,
    PRESENCE,
    FREQUENCY,
    param("max_tokens", int(0, MANY), "must be an integer >= 0"),
    SEED,
    param("logprobs", int(0, MANY), "must be an integer >= 0"),
    param("echo", Rule::Bool, "must be a boolean"),
];

/// `/v1/responses`
const RESPONSES: &[Param] = &[
    TEMPERATURE,
    TOP_P,
    param("max_output_tokens", int(1, MANY), "must be an integer >= 1"),
    TOP_LOGPROBS,
];

/// `/v1/messages` (Anthropic's ranges).
const MESSAGES: &[Param] = &[
    param(
        "temperature",
        num(0.0, 1.0),
        "must be a number between 0 and 1",
    ),
    TOP_P,
    param("top_k", int(0, MANY), "must be an integer >= 0"),
    param("max_tokens", int(1, MANY), "must be an integer >= 1"),
];

/// `/v1/embeddings`
const EMBEDDING: &[Param] = &[param("dimensions", int(1, MANY), "must be an integer >= 1")];

const fn nested(key: &'static str, name: &'static str, rule: Rule, message: &'static str) -> Param {
    Param {
        key,
        name,
        rule,
        message,
    }
}

/// Gemini's `generateContent`: the sampling members of `generationConfig` (translated to
/// OpenAI's for other providers).
const GEMINI: &[Param] = &[param(
    "generationConfig",
    Rule::Object(&[
        nested(
            "temperature",
            "generationConfig.temperature",
            num(0.0, 2.0),
            "must be a number between 0 and 2",
        ),
        nested(
            "topP",
            "generationConfig.topP",
            num(0.0, 1.0),
            "must be a number between 0 and 1",
        ),
        nested(
            "topK",
            "generationConfig.topK",
            int(0, MANY),
            "must be an integer >= 0",
        ),
        nested(
            "candidateCount",
            "generationConfig.candidateCount",
            int(1, 128),
            "must be an integer between 1 and 128",
        ),
        nested(
            "maxOutputTokens",
            "generationConfig.maxOutputTokens",
            int(1, MANY),
            "must be an integer >= 1",
        ),
        nested(
            "seed",
            "generationConfig.seed",
            ANY_INT,
            "must be an integer",
        ),
    ]),
    "must be an object",
)];

fn table(expect: Expect) -> &'static [Param] {
    match expect {
        Expect::Chat => CHAT,
        Expect::Completion => COMPLETION,
        Expect::Responses => RESPONSES,
        Expect::Messages => MESSAGES,
        Expect::Embedding => EMBEDDING,
        Expect::Gemini { .. } => GEMINI,
        _ => &[],
    }
}

/// Check the members of a request body for `expect`'s route.
#[inline]
pub fn validate<'k, J: Json>(
    expect: Expect,
    members: impl Iterator<Item = (&'k str, J)>,
) -> Result<(), RequestError> {
    let route = table(expect);
    for (k, v) in members {
        if let Some(p) = route.iter().chain(COMMON).find(|p| p.key == k) {
            check(p, v)?;
        }
    }
    Ok(())
}

/// [`validate`] over a simd-json tape (the hot path).
pub fn validate_tape(
    expect: Expect,
    root: simd_json::tape::Value<'_, '_>,
) -> Result<(), RequestError> {
    let o = root.as_object().ok_or(RequestError::NotObject)?;
    validate(expect, o.iter())
}

fn check<J: Json>(p: &Param, v: J) -> Result<(), RequestError> {
    let ok = match (p.rule, v.shape()) {
        (_, Shape::Null) => true,
        (Rule::Number { min, max }, Shape::Int(i)) => (min..=max).contains(&(i as f64)),
        (Rule::Number { min, max }, Shape::Float(x)) => (min..=max).contains(&x),
        (Rule::Int { min, max }, Shape::Int(i)) => (min..=max).contains(&i),
        (Rule::Bool, Shape::Bool) | (Rule::Str, Shape::Str) => true,
        (Rule::Object(sub), Shape::Object) => {
            return v.each_member(|k, v| match sub.iter().find(|p| p.key == k) {
                Some(p) => check(p, v),
                None => Ok(()),
            });
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(RequestError::Invalid {
            field: p.name,
            message: p.message,
        })
    }
}

const TOO_DEEP: &str = "nested deeper than 64 levels";
const LONE_SURROGATE: &str = "has a lone surrogate escape (\\uD800-\\uDFFF without its pair)";

/// The slow path's check of the body as a whole, before serde_json reads it, without recursion:
/// at most [`MAX_DEPTH`] nested containers and no lone surrogate escape in any string (what
/// simd-json enforces on the hot path). Names the top-level member where it fails. Other syntax
/// is left to serde_json.
pub fn scan(raw: &[u8]) -> Result<(), RequestError> {
    let mut depth = 0usize;
    let mut object_root = false;
    let mut want_key = false;
    // the last top-level member name, as a literal with its quotes
    let mut member: Option<Range<usize>> = None;
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match b {
            b'{' | b'[' => {
                if depth == 0 {
                    object_root = b == b'{';
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(structure(raw, member, TOO_DEEP));
                }
                want_key = depth == 1 && object_root;
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => want_key = object_root,
            b'"' => {
                let is_key = std::mem::take(&mut want_key) && depth == 1;
                let start = i;
                let Some(end) = string_end(raw, i + 1) else {
                    let at = if is_key { None } else { member };
                    return Err(structure(raw, at, LONE_SURROGATE));
                };
                if end >= raw.len() {
                    return Ok(()); // unterminated: serde_json says where
                }
                if is_key {
                    member = Some(start..end + 1);
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The index of the closing quote of the string whose contents start at `i` (`raw.len()` when
/// unterminated); None when it has a lone surrogate escape.
fn string_end(raw: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let rest = raw.get(i..).unwrap_or_default();
        let Some(at) = memchr::memchr2(b'"', b'\\', rest) else {
            return Some(raw.len());
        };
        i += at;
        if raw.get(i) == Some(&b'"') {
            return Some(i);
        }
        // an escape
        if raw.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        match hex4(raw, i + 2) {
            Some(0xD800..=0xDBFF) => {
                let paired = raw.get(i + 6) == Some(&b'\\')
                    && raw.get(i + 7) == Some(&b'u')
                    && matches!(hex4(raw, i + 8), Some(0xDC00..=0xDFFF));
                if !paired {
                    return None;
                }
                i += 12;
            }
            Some(0xDC00..=0xDFFF) => return None,
            Some(_) => i += 6,
            // bad hex: serde_json says where
            None => i += 2,
        }
    }
}

fn hex4(raw: &[u8], i: usize) -> Option<u32> {
    let h = raw.get(i..i + 4)?;
    let s = std::str::from_utf8(h).ok()?;
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// The error for a body-wide limit broken inside `member` (a top-level member name literal).
fn structure(raw: &[u8], member: Option<Range<usize>>, message: &'static str) -> RequestError {
    let field = member
        .and_then(|r| raw.get(r))
        .filter(|lit| lit.len() <= 66)
        .and_then(|lit| serde_json::from_slice::<Cow<'_, str>>(lit).ok())
        .map(Cow::into_owned);
    RequestError::Structure { field, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_tape(expect: Expect, body: &str) -> Option<Result<(), RequestError>> {
        super::super::parse::with_tape(body.as_bytes(), |root| validate_tape(expect, root))
    }

    fn on_raw(expect: Expect, body: &str) -> Result<(), RequestError> {
        let m: Members<'_> = serde_json::from_str(body).unwrap();
        validate(expect, m.0.iter().map(|(k, v)| (k.as_str(), *v)))
    }

    /// Both views of a body give the same answer.
    fn both(expect: Expect, body: &str) -> Result<(), Option<&'static str>> {
        let raw = on_raw(expect, body);
        let field = |r: Result<(), RequestError>| match r {
            Ok(()) => Ok(()),
            Err(RequestError::Invalid { field, .. }) => Err(Some(field)),
            Err(_) => Err(None),
        };
        if let Some(t) = on_tape(expect, body) {
            assert_eq!(field(t), field(on_raw(expect, body)), "{body}");
        }
        field(raw)
    }

    #[test]
    fn ranges_per_route() {
        let chat = |extra: &str| {
            both(
                Expect::Chat,
                &format!(r#"{{"model":"m","messages":[],{extra}}}"#),
            )
        };
        for ok in [
            r#""temperature":0"#,
            r#""temperature":2"#,
            r#""temperature":2.0"#,
            r#""temperature":null"#,
            r#""top_p":1"#,
            r#""n":1"#,
            r#""n":128"#,
            r#""presence_penalty":-2"#,
            r#""frequency_penalty":1.5"#,
            r#""max_tokens":1"#,
            r#""max_completion_tokens":18446744073709551615"#,
            r#""seed":-9223372036854775808"#,
            r#""logprobs":true,"top_logprobs":20"#,
            r#""stream":false,"x":"unknown members pass""#,
            r#""stream_options":{"include_usage":true,"other":1}"#,
        ] {
            assert_eq!(chat(ok), Ok(()), "{ok}");
        }
        for (bad, field) in [
            (r#""temperature":2.01"#, "temperature"),
            (r#""temperature":-0.1"#, "temperature"),
            (r#""temperature":"hot""#, "temperature"),
            (r#""top_p":1.5"#, "top_p"),
            (r#""n":0"#, "n"),
            (r#""n":129"#, "n"),
            (r#""n":1.0"#, "n"),
            (r#""presence_penalty":3"#, "presence_penalty"),
            (r#""frequency_penalty":-2.5"#, "frequency_penalty"),
            (r#""max_tokens":"lots""#, "max_tokens"),
            (r#""max_tokens":-5"#, "max_tokens"),
            (r#""max_tokens":0"#, "max_tokens"),
            (r#""max_tokens":5.5"#, "max_tokens"),
            (r#""max_completion_tokens":true"#, "max_completion_tokens"),
            (r#""seed":"7""#, "seed"),
            (r#""logprobs":1"#, "logprobs"),
            (r#""top_logprobs":21"#, "top_logprobs"),
            (r#""stream":"yes""#, "stream"),
            (r#""model":5"#, "model"),
            (r#""user":[]"#, "user"),
            (
                r#""stream_options":{"include_usage":1}"#,
                "stream_options.include_usage",
            ),
            (r#""stream_options":[]"#, "stream_options"),
        ] {
            assert_eq!(chat(bad), Err(Some(field)), "{bad}");
        }
        // the same member, other routes' ranges
        let on = |e: Expect, body: &str| both(e, body);
        assert_eq!(
            on(
                Expect::Completion,
                r#"{"max_tokens":0,"logprobs":5,"echo":true}"#
            ),
            Ok(())
        );
        assert_eq!(
            on(Expect::Completion, r#"{"logprobs":true}"#),
            Err(Some("logprobs"))
        );
        assert_eq!(
            on(
                Expect::Messages,
                r#"{"temperature":1,"top_k":5,"max_tokens":1}"#
            ),
            Ok(())
        );
        assert_eq!(
            on(Expect::Messages, r#"{"temperature":1.5}"#),
            Err(Some("temperature"))
        );
        assert_eq!(
            on(Expect::Messages, r#"{"max_tokens":0}"#),
            Err(Some("max_tokens"))
        );
        assert_eq!(
            on(Expect::Embedding, r#"{"dimensions":0}"#),
            Err(Some("dimensions"))
        );
        assert_eq!(on(Expect::Embedding, r#"{"temperature":9}"#), Ok(()));
        assert_eq!(
            on(Expect::Responses, r#"{"max_output_tokens":-1}"#),
            Err(Some("max_output_tokens"))
        );
        let gemini = Expect::Gemini { stream: false };
        assert_eq!(
            on(
                gemini,
                r#"{"generationConfig":{"temperature":1,"topP":0.5,"topK":40,"x":"y"}}"#
            ),
            Ok(())
        );
        assert_eq!(
            on(gemini, r#"{"generationConfig":{"temperature":3}}"#),
            Err(Some("generationConfig.temperature"))
        );
        assert_eq!(
            on(gemini, r#"{"generationConfig":{"maxOutputTokens":"many"}}"#),
            Err(Some("generationConfig.maxOutputTokens"))
        );
        assert_eq!(
            on(gemini, r#"{"generationConfig":5}"#),
            Err(Some("generationConfig"))
        );
        assert_eq!(
            on(Expect::Rerank, r#"{"temperature":9,"top_n":-1}"#),
            Ok(())
        );
    }

    #[test]
    fn numbers_out_of_range_on_the_slow_path() {
        // simd-json refuses these; the raw view reads them as infinite or as huge integers
        for (body, field) in [
            (r#"{"temperature":1e999999}"#, "temperature"),
            (r#"{"temperature":-1e999999}"#, "temperature"),
            (
                r#"{"max_tokens":123456789012345678901234567890123456789012345}"#,
                "max_tokens",
            ),
            (r#"{"seed":1e400}"#, "seed"),
        ] {
            assert_eq!(
                on_raw(Expect::Chat, body)
                    .err()
                    .and_then(|e| e.param().map(str::to_string)),
                Some(field.to_string()),
                "{body}"
            );
        }
        assert!(on_raw(Expect::Chat, r#"{"temperature":1e-999,"x":1e999999}"#).is_ok());
    }

    #[test]
    fn scan_finds_depth_and_lone_surrogates() {
        let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let deep = |n: usize| format!(r#"{{"a":1,"b\"c":{},"d":"\\"}}"#, nest(n));
        assert!(scan(deep(MAX_DEPTH - 1).as_bytes()).is_ok());
        match scan(deep(MAX_DEPTH).as_bytes()) {
            Err(RequestError::Structure { field, message }) => {
                assert_eq!(field.as_deref(), Some("b\"c"));
                assert_eq!(message, TOO_DEEP);
            }
            other => panic!("{other:?}"),
        }
        assert!(scan(nest(100_000).as_bytes()).is_err());
        assert!(TOO_DEEP.contains(&format!(" {MAX_DEPTH} ")));
        for ok in [
            r#"{"a":"\ud83d\ude00 \\ud800 \u0041 \""}"#,
            r#"{"a":"\uzzzz"}"#,
            r#"{"a":"x"#,
            r#"{"a":"\"#,
        ] {
            assert!(scan(ok.as_bytes()).is_ok(), "{ok}");
        }
        for (bad, field) in [
            (r#"{"a":1,"m":[{"c":"x\ud800"}]}"#, Some("m")),
            (r#"{"a":1,"m":"\udc00"}"#, Some("m")),
            (r#"{"m":"\ud800\u0041"}"#, Some("m")),
            (r#"{"m":"\ud800\\udc00"}"#, Some("m")),
            (r#"{"m":1,"\ud800":1}"#, None),
            (r#"["\ud800"]"#, None),
        ] {
            match scan(bad.as_bytes()) {
                Err(RequestError::Structure { field: f, message }) => {
                    assert_eq!(f.as_deref(), field, "{bad}");
                    assert_eq!(message, LONE_SURROGATE);
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
