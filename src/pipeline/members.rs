//! Byte positions of the top-level members of a JSON object, so single fields can be replaced
//! in place without re-serializing the body. Strings are skipped with `memchr`.
//!
//! The input is expected to be valid JSON (the parser validated it first); on anything else the
//! scanner returns `None` rather than guessing.

use std::ops::Range;

/// One `"key": value` pair of the top-level object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Raw key bytes between the quotes (escapes not decoded).
    pub key: Range<usize>,
    /// The value, from its first to its last byte.
    pub value: Range<usize>,
}

/// The top-level object's members and the position of its closing `}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopLevel {
    pub open: usize,
    pub members: Vec<Member>,
    pub close: usize,
}

impl TopLevel {
    /// The member whose raw key equals `key`.
    pub fn get(&self, body: &[u8], key: &str) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| body.get(m.key.clone()) == Some(key.as_bytes()))
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// `i` is at an opening quote; returns the index just past the closing quote.
fn skip_string(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        let k = j + memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
        if b[k] == b'\\' {
            j = k + 2;
        } else {
            return Some(k + 1);
        }
    }
}

/// `i` is at the first byte of a value; returns the index just past it.
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 1usize;
            let mut j = i + 1;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// Scan the top-level object of `body`.
pub fn scan(body: &[u8]) -> Option<TopLevel> {
    let open = skip_ws(body, 0);
    if body.get(open) != Some(&b'{') {
        return None;
    }
    let mut members = Vec::with_capacity(8);
    let mut i = skip_ws(body, open + 1);
    if body.get(i) == Some(&b'}') {
        return Some(TopLevel {
            open,
            members,
            close: i,
        });
    }
    loop {
        if body.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = skip_string(body, i)?;
        let key = i + 1..key_end - 1;
        i = skip_ws(body, key_end);
        if body.get(i) != Some(&b':') {
            return None;
        }
        let vstart = skip_ws(body, i + 1);
        let vend = skip_value(body, vstart)?;
        members.push(Member {
            key,
            value: vstart..vend,
        });
        i = skip_ws(body, vend);
        match body.get(i)? {
            b',' => i = skip_ws(body, i + 1),
            b'}' => {
                return Some(TopLevel {
                    open,
                    members,
                    close: i,
                });
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_members_after_nested_values() {
        let b = br#" {"messages":[{"role":"user","content":"a \"model\": {x}"}],"model" : "gpt-4o","n":1,"x":{"y":[1,2]}} "#;
        let t = scan(b).unwrap();
        assert_eq!(t.members.len(), 4);
        let m = t.get(b, "model").unwrap();
        assert_eq!(&b[m.value.clone()], br#""gpt-4o""#);
        assert_eq!(&b[t.get(b, "n").unwrap().value.clone()], b"1");
        assert_eq!(b[t.close], b'}');
    }

    #[test]
    fn empty_and_malformed() {
        assert_eq!(scan(b"{}").unwrap().members.len(), 0);
        assert!(scan(b"[]").is_none());
        assert!(scan(br#"{"a":"unterminated}"#).is_none());
        assert!(scan(br#"{"a" 1}"#).is_none());
    }
}
