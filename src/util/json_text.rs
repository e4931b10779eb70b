//! JSON string literals written straight into a buffer when nothing in them needs escaping
//! (ids, tokens, aliases: nearly always), through serde_json otherwise.

/// Append `s` as a JSON string literal.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    // a branch-free pass the compiler vectorizes: quote, backslash or a control character
    let plain = !s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // (writing a `str` into a `Vec` cannot fail)
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte for byte what serde_json writes, with and without characters to escape.
    #[test]
    fn as_serde_writes() {
        for s in [
            "",
            "sk-team-alias",
            "a\"b",
            "back\\slash",
            "line\nbreak\t\u{1}",
            "ünïcödé ✓",
            "\u{7f}del",
            &"x".repeat(100),
        ] {
            let mut ours = Vec::new();
            write_str(&mut ours, s);
            assert_eq!(ours, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }
}
