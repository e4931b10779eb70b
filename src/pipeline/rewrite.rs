//! The body of a call to an OpenAI-compatible upstream (compatible.rs): the body goes out as
//! received with only `model` replaced (plus the provider's declared renames, for streams
//! `stream_options`, and without the gateway's own controls, [`super::controls`]). The result is a list of slices of the original body and small new pieces: no
//! copy, no re-serialization.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::members::{self, Member, TopLevel};
use super::parse::{ParsedRequest, RequestError};
use crate::providers::ProviderSpec;

const INCLUDE_USAGE: &[u8] = br#"{"include_usage":true}"#;

/// The upstream request body.
#[derive(Debug, Clone)]
pub struct Rewritten {
    /// Pieces to send in order.
    pub parts: Vec<Bytes>,
    /// The gateway asked for usage the client did not: drop that chunk from the stream.
    pub drop_usage_chunk: bool,
}

impl Rewritten {
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// All pieces joined (tests, slow paths).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        for p in &self.parts {
            v.extend_from_slice(p);
        }
        v
    }
}

struct Edit {
    at: std::ops::Range<usize>,
    with: Bytes,
}

/// Build the upstream body for `req` sent to `spec` as `model_json` (a JSON string literal).
///
/// Fast path (the usual OpenAI-compatible call): the parser already proved where the `model`
/// literal is, so no scan at all. The top-level scanner runs only when a member has to be found
/// (provider renames, a client `stream_options`, an escaped `model`).
pub fn rewrite(
    req: &ParsedRequest,
    spec: &ProviderSpec,
    model_json: &Bytes,
) -> Result<Rewritten, RequestError> {
    let want_usage = req.stream && spec.stream_options && req.include_usage != Some(true);
    let mut raw = req.raw.clone();
    let mut model_span = req.model_span.clone();
    if spec.content_list_to_string {
        raw = canonical(&raw, true)?;
        model_span = None;
    }
    let renames: Vec<(&String, &String)> = spec
        .param_mappings
        .iter()
        .filter(|(from, _)| memchr::memmem::find(&raw, format!("\"{from}\"").as_bytes()).is_some())
        .collect();
    let has_stream_options =
        want_usage && (req.has_stream_options || crate::holds!(&raw, b"\"stream_options\""));
    let controls = req.controls.any();
    let need_scan = (req.has_model_member && model_span.is_none())
        || !renames.is_empty()
        || has_stream_options
        || controls;
    let mut top: Option<TopLevel> = None;
    if need_scan {
        let mut t = scan(&raw)?;
        // A key written with escapes cannot be found byte-wise: normalise once.
        let unfound = |t: &TopLevel, raw: &[u8]| {
            (req.has_model_member && t.get(raw, "model").is_none())
                || (controls && req.controls.names().any(|n| t.get(raw, n).is_none()))
        };
        if unfound(&t, &raw) {
            raw = canonical(&raw, false)?;
            t = scan(&raw)?;
        }
        model_span = t.get(&raw, "model").map(|m| m.value.clone());
        top = Some(t);
    }
    let open = first_non_ws(&raw).ok_or(RequestError::NotObject)?;
    let close = last_non_ws(&raw).ok_or(RequestError::NotObject)?;
    let mut empty_object = raw[open + 1..close].iter().all(|b| b.is_ascii_whitespace());

    let mut edits: Vec<Edit> = Vec::with_capacity(4);
    if let (Some(t), true) = (&top, controls) {
        let names: Vec<&str> = req.controls.names().collect();
        let (gone, emptied) = removals(t, |m| {
            names
                .iter()
                .any(|n| raw.get(m.key.clone()) == Some(n.as_bytes()))
        });
        edits.extend(gone);
        empty_object |= emptied;
    }
    edits.push(model_edit(model_span, model_json, open, empty_object));
    if let Some(t) = &top {
        for (from, to) in renames {
            if let Some(m) = t.get(&raw, from) {
                edits.push(Edit {
                    at: m.key.clone(),
                    with: Bytes::from(json_key_body(to)),
                });
            }
        }
    }
    if want_usage {
        let options = top.as_ref().and_then(|t| t.get(&raw, "stream_options"));
        edits.push(usage_edit(&raw, options.map(|m| m.value.clone()), close)?);
    }
    Ok(Rewritten {
        parts: apply(&raw, edits),
        drop_usage_chunk: want_usage,
    })
}

/// The edit that puts `model_json` in: over the `model` value at `span`, else as the first
/// member of the object opened at `open`.
fn model_edit(
    span: Option<std::ops::Range<usize>>,
    model_json: &Bytes,
    open: usize,
    empty_object: bool,
) -> Edit {
    match span {
        Some(span) => Edit {
            at: span,
            with: model_json.clone(),
        },
        None => {
            let mut v = Vec::with_capacity(model_json.len() + 10);
            v.extend_from_slice(b"\"model\":");
            v.extend_from_slice(model_json);
            if !empty_object {
                v.push(b',');
            }
            Edit {
                at: open + 1..open + 1,
                with: Bytes::from(v),
            }
        }
    }
}

/// The edits that remove the members for which `gone` holds (with the commas that separated
/// them), and whether that leaves the object empty.
fn removals(t: &TopLevel, gone: impl Fn(&Member) -> bool) -> (Vec<Edit>, bool) {
    let ms = &t.members;
    let first_kept = ms.iter().position(|m| !gone(m));
    let mut edits = Vec::new();
    for (i, m) in ms.iter().enumerate().filter(|(_, m)| gone(m)) {
        let at = match (first_kept, i) {
            // the members before the first kept one go at once, up to its key
            (Some(k), 0) => m.key.start - 1..ms[k].key.start - 1,
            (Some(k), _) if i < k => continue,
            // any other goes with the comma before it
            (Some(_), _) => ms[i - 1].value.end..m.value.end,
            (None, 0) => m.key.start - 1..ms[ms.len() - 1].value.end,
            (None, _) => continue,
        };
        edits.push(Edit {
            at,
            with: Bytes::new(),
        });
    }
    (edits, first_kept.is_none() && !ms.is_empty())
}

/// The edit that asks for usage in the stream: `include_usage` set in the client's
/// `stream_options` (its value at `options`), else `stream_options` added before `close`.
fn usage_edit(
    raw: &[u8],
    options: Option<std::ops::Range<usize>>,
    close: usize,
) -> Result<Edit, RequestError> {
    Ok(match options {
        Some(at) => {
            let mut opts: Map<String, Value> =
                serde_json::from_slice(&raw[at.clone()]).unwrap_or_default();
            opts.insert("include_usage".into(), Value::Bool(true));
            let v =
                serde_json::to_vec(&opts).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
            Edit {
                at,
                with: Bytes::from(v),
            }
        }
        None => {
            let mut v = Vec::with_capacity(48);
            v.push(b',');
            v.extend_from_slice(b"\"stream_options\":");
            v.extend_from_slice(INCLUDE_USAGE);
            Edit {
                at: close..close,
                with: Bytes::from(v),
            }
        }
    })
}

/// `raw` with `edits` made: slices of it between the new pieces.
fn apply(raw: &Bytes, mut edits: Vec<Edit>) -> Vec<Bytes> {
    edits.sort_by_key(|e| e.at.start);
    let mut parts = Vec::with_capacity(edits.len() * 2 + 1);
    let mut pos = 0;
    for e in edits {
        if e.at.start > pos {
            parts.push(raw.slice(pos..e.at.start));
        }
        parts.push(e.with);
        pos = e.at.end.max(pos);
    }
    if pos < raw.len() {
        parts.push(raw.slice(pos..));
    }
    parts
}

fn first_non_ws(b: &[u8]) -> Option<usize> {
    b.iter()
        .position(|c| !c.is_ascii_whitespace())
        .filter(|&i| b[i] == b'{')
}

fn last_non_ws(b: &[u8]) -> Option<usize> {
    b.iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .filter(|&i| b[i] == b'}')
}

fn scan(raw: &[u8]) -> Result<TopLevel, RequestError> {
    members::scan(raw).ok_or(RequestError::NotObject)
}

/// A JSON key's string contents (without quotes), escaped.
fn json_key_body(k: &str) -> Vec<u8> {
    let mut v = serde_json::to_vec(k).unwrap_or_else(|_| b"\"\"".to_vec());
    v.remove(0);
    v.pop();
    v
}

/// Re-serialize the body (slow path), optionally flattening text-part lists in messages.
fn canonical(raw: &[u8], flatten_content: bool) -> Result<Bytes, RequestError> {
    let mut v: Value =
        serde_json::from_slice(raw).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    if flatten_content && let Some(Value::Array(msgs)) = v.get_mut("messages") {
        for m in msgs {
            flatten_text_parts(m);
        }
    }
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .map_err(|e| RequestError::InvalidJson(e.to_string()))
}

fn flatten_text_parts(msg: &mut Value) {
    let Some(Value::Array(parts)) = msg.get("content") else {
        return;
    };
    let mut text = String::new();
    for p in parts {
        match (
            p.get("type").and_then(Value::as_str),
            p.get("text").and_then(Value::as_str),
        ) {
            (Some("text"), Some(t)) => {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(t);
            }
            _ => return, // images etc.: leave the list as is
        }
    }
    msg["content"] = Value::String(text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::parse::{Expect, parse};
    use crate::providers::Catalog;

    fn spec(name: &str) -> ProviderSpec {
        (*Catalog::builtin().unwrap().get(name).unwrap()).clone()
    }

    fn run(body: &str, provider: &str) -> (String, bool) {
        let req = parse(Bytes::from(body.to_string()), Expect::Chat).unwrap();
        let r = rewrite(&req, &spec(provider), &Bytes::from_static(b"\"up-model\"")).unwrap();
        (String::from_utf8(r.to_vec()).unwrap(), r.drop_usage_chunk)
    }

    #[test]
    fn replaces_only_the_model_value() {
        let body = r#"{"messages":[{"role":"user","content":"x"}], "model" : "alias", "weird_field": {"a": [1e400, "\u00e9"]},"temperature":0.70}"#;
        let (out, drop) = run(body, "openai");
        assert_eq!(out, body.replace(r#""alias""#, r#""up-model""#));
        assert!(!drop);
    }

    #[test]
    fn adds_stream_options_and_marks_chunk_for_dropping() {
        let (out, drop) = run(r#"{"model":"a","messages":[],"stream":true}"#, "openai");
        assert_eq!(
            out,
            r#"{"model":"up-model","messages":[],"stream":true,"stream_options":{"include_usage":true}}"#
        );
        assert!(drop);
        let (out, drop) = run(
            r#"{"model":"a","messages":[],"stream":true,"stream_options":{"include_usage":true}}"#,
            "openai",
        );
        assert!(out.contains(r#""stream_options":{"include_usage":true}"#));
        assert!(!drop);
        let (out, drop) = run(
            r#"{"model":"a","messages":[],"stream":true,"stream_options":{"include_usage":false,"x":1}}"#,
            "openai",
        );
        assert!(
            out.contains(r#""include_usage":true"#) && out.contains(r#""x":1"#),
            "{out}"
        );
        assert!(drop);
    }

    #[test]
    fn no_stream_options_for_providers_that_reject_them() {
        let (out, drop) = run(r#"{"model":"a","messages":[],"stream":true}"#, "mistral");
        assert!(!out.contains("stream_options"));
        assert!(!drop);
    }

    #[test]
    fn inserts_model_when_absent_and_renames_params() {
        let (out, _) = run(r#"{"messages":[],"max_completion_tokens":5}"#, "mistral");
        assert_eq!(out, r#"{"model":"up-model","messages":[],"max_tokens":5}"#);
    }

    #[test]
    fn null_model_is_replaced_not_duplicated() {
        let (out, _) = run(r#"{"messages":[],"model":null}"#, "openai");
        assert_eq!(out, r#"{"messages":[],"model":"up-model"}"#);
    }

    #[test]
    fn escaped_model_key_is_normalised() {
        let (out, _) = run(r#"{"mod\u0065l":"a","messages":[]}"#, "openai");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["model"], "up-model");
        assert_eq!(v.as_object().unwrap().len(), 2);
    }

    #[test]
    fn leaves_out_the_gateways_controls() {
        let (out, _) = run(
            r#"{"num_retries":2, "model":"a","messages":[],"mock_timeout":false,"timeout":1.5}"#,
            "openai",
        );
        assert_eq!(out, r#"{"model":"up-model","messages":[]}"#);
        let (out, _) = run(
            r#"{"model":"a","fastest_response":true,"messages":[],"stream":true}"#,
            "openai",
        );
        assert_eq!(
            out,
            r#"{"model":"up-model","messages":[],"stream":true,"stream_options":{"include_usage":true}}"#
        );
        let (out, _) = run(r#"{"time\u006fut":3,"messages":[]}"#, "openai");
        assert_eq!(out, r#"{"model":"up-model","messages":[]}"#);
        let (out, _) = run(r#"{"timeout":3,"messages":[]}"#, "openai");
        assert_eq!(out, r#"{"model":"up-model","messages":[]}"#);
        for body in [
            r#"{"messages":[],"timeout":1,"num_retries":2}"#,
            r#"{"timeout":1, "num_retries":2 ,"messages":[]}"#,
            r#"{"timeout":1,"messages":[],"num_retries":2,"mock_timeout":false}"#,
            r#"{"model":"a","timeout":1,"messages":[],"num_retries":2}"#,
        ] {
            let (out, _) = run(body, "openai");
            let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out}: {e}"));
            assert_eq!(
                v,
                serde_json::json!({"model": "up-model", "messages": []}),
                "{body}"
            );
        }
        // a body of controls only (no route needs one, but it stays JSON)
        let req = crate::pipeline::parse::parse(
            Bytes::from_static(br#"{"timeout":1,"num_retries":2}"#),
            crate::pipeline::parse::Expect::Rerank,
        );
        if let Ok(req) = req {
            let r = rewrite(&req, &spec("openai"), &Bytes::from_static(b"\"m\"")).unwrap();
            assert_eq!(r.to_vec(), br#"{"model":"m"}"#);
        }
    }

    #[test]
    fn flattens_text_parts_when_the_provider_needs_it() {
        let (out, _) = run(
            r#"{"model":"a","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}"#,
            "heroku",
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["messages"][0]["content"], "a\nb");
    }
}
