//! Response cache keys: a hash over everything in a request that changes the answer (the model
//! group, messages, tools, every sampling parameter, `response_format`, `n`, ...), with object
//! members in a canonical order, plus the caller's scope and the namespace, so one tenant never
//! reads another's entries unless the scope is `global`. Members that do not change the answer
//! (`stream`, `stream_options`, `user`, `metadata`, `cache`, `tags`, the gateway's own controls)
//! are left out, so a streamed and a plain request share an entry.

use sha2::{Digest, Sha256};

/// Request members that never change the answer.
const IGNORED: &[&str] = &[
    "model",
    "stream",
    "stream_options",
    "user",
    "metadata",
    "cache",
    "tags",
    "mock_response",
    "timeout",
    "num_retries",
    "fallbacks",
    "litellm_metadata",
];

pub use crate::config::cache::Scope;

/// The caller, as far as the scope needs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller<'a> {
    /// sha256 hex of the key (the master key's for admins).
    pub key: &'a str,
    pub team: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the request body is not a JSON object")]
    NotAnObject,
}

/// Append `v` to `out` in a tagged, length-prefixed form (so distinct values never write the
/// same bytes) with object members sorted by name; arrays keep their order, which matters.
/// Strings are compared unescaped and numbers by value (`1.0` is `1`), so whitespace, escapes,
/// number spelling and member order do not change a key.
fn canonical(v: simd_json::tape::Value<'_, '_>, out: &mut Vec<u8>) {
    use simd_json::prelude::*;
    fn len(out: &mut Vec<u8>, n: usize) {
        out.extend_from_slice(&(n as u64).to_le_bytes());
    }
    fn string(out: &mut Vec<u8>, s: &str) {
        out.push(b's');
        len(out, s.len());
        out.extend_from_slice(s.as_bytes());
    }
    if let Some(o) = v.as_object() {
        object(&sorted(o.iter()), out);
    } else if let Some(a) = v.as_array() {
        out.push(b'[');
        len(out, a.len());
        for x in a.iter() {
            canonical(x, out);
        }
    } else if let Some(s) = v.as_str() {
        string(out, s);
    } else if let Some(b) = v.as_bool() {
        out.push(if b { b't' } else { b'f' });
    } else if let Some(u) = v.as_u64().filter(|_| v.value_type() == ValueType::U64) {
        integer(i128::from(u), out);
    } else if let Some(i) = v.as_i64().filter(|_| v.value_type() == ValueType::I64) {
        integer(i128::from(i), out);
    } else if let Some(f) = v.as_f64() {
        // numbers by value: 1.0 is 1, -0 is 0
        if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e18 {
            integer(f as i128, out);
        } else {
            out.push(b'd');
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
    } else {
        out.push(b'n');
    }
}

type Member<'t, 'i> = (&'i str, simd_json::tape::Value<'t, 'i>);

/// Members sorted by name; of a name given twice, the last (as JSON parsers that keep one
/// do, so a provider reads the same value).
fn sorted<'t, 'i>(members: impl Iterator<Item = Member<'t, 'i>>) -> Vec<Member<'t, 'i>> {
    let mut all: Vec<Member<'t, 'i>> = members.collect();
    // stable: members of one name stay in their order
    all.sort_by(|a, b| a.0.cmp(b.0));
    let mut out: Vec<Member<'t, 'i>> = Vec::with_capacity(all.len());
    for m in all {
        match out.last_mut() {
            Some(last) if last.0 == m.0 => *last = m,
            _ => out.push(m),
        }
    }
    out
}

/// An integer, however it was written.
fn integer(i: i128, out: &mut Vec<u8>) {
    out.push(b'#');
    out.extend_from_slice(&i.to_le_bytes());
}

/// Members already sorted by name.
fn object(members: &[(&str, simd_json::tape::Value<'_, '_>)], out: &mut Vec<u8>) {
    out.push(b'{');
    out.extend_from_slice(&(members.len() as u64).to_le_bytes());
    for (k, v) in members {
        out.push(b's');
        out.extend_from_slice(&(k.len() as u64).to_le_bytes());
        out.extend_from_slice(k.as_bytes());
        canonical(*v, out);
    }
}

/// The scope part of a key.
fn scope_of(scope: Scope, caller: Caller<'_>) -> String {
    match (scope, caller.team) {
        (Scope::Global, _) => "global".to_string(),
        (Scope::Team, Some(t)) => format!("team:{t}"),
        (Scope::Team | Scope::Key, _) => format!("key:{}", caller.key),
    }
}

/// The canonical form of a request body (an object) without the ignored members (and
/// `also_ignored`): what a key hashes.
pub fn canonical_body(
    root: simd_json::tape::Value<'_, '_>,
    also_ignored: &[&str],
) -> Option<Vec<u8>> {
    let o = root.as_object()?;
    let members = sorted(
        o.iter()
            .filter(|(k, _)| !IGNORED.contains(k) && !also_ignored.contains(k)),
    );
    let mut buf = Vec::with_capacity(256);
    object(&members, &mut buf);
    Some(buf)
}

/// What a cache key is made of besides the request body: the model group (with the call type),
/// the scope and its caller, and the namespace.
#[derive(Debug, Clone, Copy)]
pub struct KeyParts<'a> {
    pub group: &'a str,
    pub scope: Scope,
    pub caller: Caller<'a>,
    pub namespace: Option<&'a str>,
}

impl KeyParts<'_> {
    /// The cache key of a request with this `body`: `tianji:cache:{namespace}:{sha256 hex}`.
    pub fn key(&self, body: &[u8]) -> Result<String, KeyError> {
        Ok(self.key_of_canonical(&canonical_of(body, &[])?))
    }

    /// [`key`](Self::key) from the body's [`canonical_body`] (made by the parse stage, so the
    /// body is not read twice).
    pub fn key_of_canonical(&self, canonical: &[u8]) -> String {
        self.namespaced(&self.digest(canonical))
    }

    /// The semantic cache partition of a request: like its key, but without the prompt
    /// (`messages`, `prompt`), so requests that differ only in their prompt are compared by
    /// meaning: `tianji:cache:{namespace}:semantic:{sha256 hex}` (also the Redis hash holding
    /// the partition's vectors).
    pub fn partition(&self, body: &[u8]) -> Result<String, KeyError> {
        let canonical = canonical_of(body, &["messages", "prompt"])?;
        Ok(self.namespaced(&format!("semantic:{}", self.digest(&canonical))))
    }

    /// sha256 hex over the group, the scope and a canonical body.
    fn digest(&self, canonical: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(self.group.as_bytes());
        h.update([0]);
        h.update(scope_of(self.scope, self.caller).as_bytes());
        h.update([0]);
        h.update(canonical);
        crate::util::hex::hex(&h.finalize())
    }

    fn namespaced(&self, rest: &str) -> String {
        let namespace = self.namespace.filter(|n| !n.is_empty());
        format!("tianji:cache:{}:{rest}", namespace.unwrap_or("default"))
    }
}

/// A body's canonical form; bodies simd-json cannot read have none (they are not cached).
fn canonical_of(body: &[u8], also_ignored: &[&str]) -> Result<Vec<u8>, KeyError> {
    crate::util::tape::with_tape(body, |root| canonical_body(root, also_ignored))
        .flatten()
        .ok_or(KeyError::NotAnObject)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn key(
        group: &str,
        body: &[u8],
        scope: Scope,
        caller: Caller<'_>,
        namespace: Option<&str>,
    ) -> Result<String, KeyError> {
        let parts = KeyParts {
            group,
            scope,
            caller,
            namespace,
        };
        parts.key(body)
    }

    fn k(body: Value, scope: Scope, caller: Caller<'_>) -> String {
        key("g", body.to_string().as_bytes(), scope, caller, None).unwrap()
    }

    const ALICE: Caller<'static> = Caller {
        key: "a",
        team: Some("t1"),
    };
    const BOB: Caller<'static> = Caller {
        key: "b",
        team: Some("t1"),
    };
    const EVE: Caller<'static> = Caller {
        key: "e",
        team: Some("t2"),
    };
    const LONE: Caller<'static> = Caller {
        key: "l",
        team: None,
    };

    #[test]
    fn everything_that_changes_the_answer_is_in_the_key() {
        let base = json!({"model": "x", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2});
        let same = k(base.clone(), Scope::Team, ALICE);
        // member order, streaming, user and metadata do not matter
        let reordered = json!({"temperature": 0.2, "stream": true, "user": "u", "metadata": {"a": 1},
            "messages": [{"content": "hi", "role": "user"}], "model": "other-alias"});
        assert_eq!(k(reordered, Scope::Team, ALICE), same);
        // every parameter does
        for change in [
            json!({"temperature": 0.3}),
            json!({"n": 2}),
            json!({"tools": [{"type": "function", "function": {"name": "f"}}]}),
            json!({"response_format": {"type": "json_object"}}),
            json!({"top_p": 0.5}),
            json!({"messages": [{"role": "user", "content": "hello"}]}),
            json!({"messages": [{"role": "system", "content": "hi"}]}),
        ] {
            let mut b = base.clone();
            b.as_object_mut()
                .unwrap()
                .extend(change.as_object().unwrap().clone());
            assert_ne!(k(b, Scope::Team, ALICE), same, "{change}");
        }
        // whitespace, escapes and number spelling do not; a number's value does
        let spaced = r#"{ "messages" : [ {"content":"\u0068i", "role":"user"} ], "temperature": 0.2 , "model":"x"}"#;
        assert_eq!(
            key("g", spaced.as_bytes(), Scope::Team, ALICE, None).unwrap(),
            same
        );
        let int = k(json!({"messages": [], "n": 1}), Scope::Team, ALICE);
        assert_eq!(
            int,
            k(json!({"messages": [], "n": 1.0}), Scope::Team, ALICE)
        );
        assert_eq!(
            key(
                "g",
                br#"{"messages": [], "n": 1e0}"#,
                Scope::Team,
                ALICE,
                None
            )
            .unwrap(),
            int
        );
        assert_ne!(
            int,
            k(json!({"messages": [], "n": 1.5}), Scope::Team, ALICE)
        );
        assert_ne!(int, k(json!({"messages": [], "n": -1}), Scope::Team, ALICE));
        assert_ne!(
            int,
            k(json!({"messages": [], "n": "1"}), Scope::Team, ALICE)
        );
        assert_ne!(
            k(json!({"a": [null]}), Scope::Team, ALICE),
            k(json!({"a": [false]}), Scope::Team, ALICE)
        );
        assert_ne!(
            k(json!({"a": ["x", "y"]}), Scope::Team, ALICE),
            k(json!({"a": ["xy"]}), Scope::Team, ALICE)
        );
        // a member given twice counts once, with its last value
        let twice = key(
            "g",
            br#"{"a": 1, "b": {"c": 1, "c": 2}, "a": 3}"#,
            Scope::Team,
            ALICE,
            None,
        );
        let once = key("g", br#"{"a": 3, "b": {"c": 2}}"#, Scope::Team, ALICE, None);
        assert_eq!(twice.unwrap(), once.unwrap());
        // message order matters
        let two = json!({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]});
        let swapped = json!({"messages": [{"role": "user", "content": "b"}, {"role": "user", "content": "a"}]});
        assert_ne!(k(two, Scope::Team, ALICE), k(swapped, Scope::Team, ALICE));
        // the group and the namespace do
        let body = base.to_string();
        assert_ne!(
            key("g2", body.as_bytes(), Scope::Team, ALICE, None).unwrap(),
            same
        );
        let spaced = key("g", body.as_bytes(), Scope::Team, ALICE, Some("ns")).unwrap();
        assert!(spaced.starts_with("tianji:cache:ns:"), "{spaced}");
    }

    #[test]
    fn scopes_separate_tenants() {
        let b = json!({"messages": [{"role": "user", "content": "hi"}]});
        // team (default): one team shares, another does not, a key without a team is alone;
        // key: nobody shares; global: everybody
        for (scope, one, other, shared) in [
            (Scope::Team, ALICE, BOB, true),
            (Scope::Team, ALICE, EVE, false),
            (Scope::Team, LONE, ALICE, false),
            (Scope::Key, ALICE, BOB, false),
            (Scope::Global, ALICE, EVE, true),
        ] {
            let same = k(b.clone(), scope, one) == k(b.clone(), scope, other);
            assert_eq!(same, shared, "{} and {}", one.key, other.key);
        }
        assert!(key("g", b"[1]", Scope::Team, ALICE, None).is_err());
        // a partition leaves the prompt out, nothing else
        let p = |b: Value| {
            KeyParts {
                group: "g",
                scope: Scope::Team,
                caller: ALICE,
                namespace: None,
            }
            .partition(b.to_string().as_bytes())
            .unwrap()
        };
        let hi = json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 1});
        let yo = json!({"messages": [{"role": "user", "content": "yo"}], "temperature": 1});
        assert_eq!(p(hi.clone()), p(yo));
        assert_ne!(p(hi.clone()), p(json!({"messages": [], "temperature": 0})));
        assert!(p(hi).starts_with("tianji:cache:default:semantic:"));
        assert!(key("g", b"{", Scope::Team, ALICE, None).is_err());
    }
}
