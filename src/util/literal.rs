//! Looking for a literal in a body: [`holds!`](crate::holds) builds its searcher once (a
//! one-shot `memchr::memmem::find` builds one per call, which costs more than the search in a
//! request body of a few KiB).

/// Whether the bytes `$hay` hold the byte string literal `$needle`.
#[macro_export]
macro_rules! holds {
    ($hay:expr, $needle:literal) => {{
        static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new($needle));
        FINDER.find($hay).is_some()
    }};
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_literals() {
        let body: &[u8] = br#"{"model":"m","tools":[{"type":"mcp"}]}"#;
        assert!(crate::holds!(body, b"\"mcp\""));
        assert!(!crate::holds!(body, b"\"guardrails\""));
        assert!(!crate::holds!(&[], b"\"mcp\""));
    }
}
