//! The text parts a guardrail reads, found in a request or an answer body (every route's
//! format: chat `messages`, `prompt`, `input` (embeddings, Responses), Anthropic `system` and
//! content blocks, Gemini `contents`/`parts`; answers' `choices`, `content`, `output`,
//! `candidates`), and written back when a guardrail rewrites them. Both walks visit the same
//! strings in the same order, so a rewrite's texts line up with the texts read.

use serde_json::Value;

/// Which body the texts are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Request,
    Response,
}

impl Side {
    /// LiteLLM's `input_type`.
    pub fn input_type(self) -> &'static str {
        match self {
            Side::Request => "request",
            Side::Response => "response",
        }
    }
}

/// Top-level members holding text, in the order visited.
const REQUEST_TOP: &[&str] = &[
    "system",
    "instructions",
    "messages",
    "prompt",
    "input",
    "contents",
];
const RESPONSE_TOP: &[&str] = &["choices", "content", "output", "candidates"];
/// Members of an object inside them that hold text.
const REQUEST_INNER: &[&str] = &["content", "text", "parts"];
const RESPONSE_INNER: &[&str] = &["message", "delta", "content", "text", "parts"];

/// Call `f` on every text string of `body` (a JSON object), in order.
pub fn each(body: &mut Value, side: Side, f: &mut dyn FnMut(&mut String)) {
    let (top, inner) = match side {
        Side::Request => (REQUEST_TOP, REQUEST_INNER),
        Side::Response => (RESPONSE_TOP, RESPONSE_INNER),
    };
    let Value::Object(map) = body else {
        return;
    };
    for key in top {
        if let Some(v) = map.get_mut(*key) {
            walk(v, inner, f);
        }
    }
}

fn walk(v: &mut Value, inner: &[&str], f: &mut dyn FnMut(&mut String)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => {
            for item in items {
                walk(item, inner, f);
            }
        }
        Value::Object(map) => {
            // an answer's `choices[].text` (completions) and a block's `text`
            for key in inner {
                if let Some(x) = map.get_mut(*key) {
                    walk(x, inner, f);
                }
            }
        }
        _ => {}
    }
}

/// The texts of `body`.
pub fn collect(body: &mut Value, side: Side) -> Vec<String> {
    let mut out = Vec::new();
    each(body, side, &mut |s| out.push(s.clone()));
    out
}

/// Replace the texts of `body` by `texts` (in [`collect`]'s order).
pub fn replace(body: &mut Value, side: Side, texts: &[String]) {
    let mut i = 0;
    each(body, side, &mut |s| {
        if let Some(t) = texts.get(i) {
            t.clone_into(s);
        }
        i += 1;
    });
}

/// The assembled text of a stream's SSE `data:` payloads (chat and completion deltas,
/// Anthropic `content_block_delta`, Responses `response.output_text.delta`), appended to `out`.
pub fn stream_delta(data: &[u8], out: &mut String) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Some(choices) = v.get("choices").and_then(Value::as_array) {
        for c in choices {
            let d = c.get("delta").and_then(|d| d.get("content"));
            if let Some(s) = d.or_else(|| c.get("text")).and_then(Value::as_str) {
                out.push_str(s);
            }
        }
        return;
    }
    match v.get("type").and_then(Value::as_str) {
        Some("content_block_delta") => {
            if let Some(s) = v.pointer("/delta/text").and_then(Value::as_str) {
                out.push_str(s);
            }
        }
        Some("response.output_text.delta") => {
            if let Some(s) = v.get("delta").and_then(Value::as_str) {
                out.push_str(s);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_texts_of_each_format() {
        let mut chat = json!({"model": "m", "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "u"}}]}
        ]});
        assert_eq!(collect(&mut chat, Side::Request), ["sys", "hi"]);
        let mut emb = json!({"model": "m", "input": ["a", "b"]});
        assert_eq!(collect(&mut emb, Side::Request), ["a", "b"]);
        let mut tokens = json!({"model": "m", "input": [[1, 2]]});
        assert!(collect(&mut tokens, Side::Request).is_empty());
        let mut msgs = json!({"system": "s", "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]});
        assert_eq!(collect(&mut msgs, Side::Request), ["s", "x"]);
        let mut resp = json!({"input": [{"role": "user", "content": [{"type": "input_text", "text": "r"}]}], "instructions": "i"});
        assert_eq!(collect(&mut resp, Side::Request), ["i", "r"]);
        replace(&mut resp, Side::Request, &["I".into(), "R".into()]);
        assert_eq!(resp["input"][0]["content"][0]["text"], "R");
        assert_eq!(resp["instructions"], "I");
    }

    #[test]
    fn answer_texts() {
        let mut chat = json!({"choices": [{"message": {"role": "assistant", "content": "yo"}}]});
        assert_eq!(collect(&mut chat, Side::Response), ["yo"]);
        let mut anth = json!({"content": [{"type": "text", "text": "a"}]});
        assert_eq!(collect(&mut anth, Side::Response), ["a"]);
        let mut emb = json!({"data": [{"embedding": [0.1]}]});
        assert!(collect(&mut emb, Side::Response).is_empty());
        let mut s = String::new();
        stream_delta(br#"{"choices":[{"delta":{"content":"he"}}]}"#, &mut s);
        stream_delta(
            br#"{"type":"content_block_delta","delta":{"text":"llo"}}"#,
            &mut s,
        );
        assert_eq!(s, "hello");
    }
}
