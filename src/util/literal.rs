//! Looking for a literal in bytes: [`literal!`](crate::literal) gives a searcher built once per
//! literal (a one-shot `memchr::memmem::find` builds one per call, which costs more than the
//! search itself in a request body or a stream chunk); [`holds!`](crate::holds) asks whether
//! the literal is there.

/// The `memchr` searcher (`&'static memchr::memmem::Finder`) of the byte string literal
/// `$needle`, built on first use.
#[macro_export]
macro_rules! literal {
    ($needle:literal) => {{
        static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new($needle));
        &*FINDER
    }};
}

/// Whether the bytes `$hay` hold the byte string literal `$needle`.
#[macro_export]
macro_rules! holds {
    ($hay:expr, $needle:literal) => {
        $crate::literal!($needle).find($hay).is_some()
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_literals() {
        let body: &[u8] = br#"{"model":"m","tools":[{"type":"mcp"}]}"#;
        assert!(crate::holds!(body, b"\"mcp\""));
        assert!(!crate::holds!(body, b"\"guardrails\""));
        assert!(!crate::holds!(&[], b"\"mcp\""));
        assert_eq!(crate::literal!(b"\"model\"").find(body), Some(1));
    }
}
