//! A stored answer and its encoding in Redis: one header line
//! (`TJC1 {stored_at_ms} {prompt_tokens} {completion_tokens} {total_tokens}\n`), then the answer
//! body as it was sent.

use bytes::Bytes;

use crate::spend::usage::Usage;

const MAGIC: &str = "TJC1";

/// An answer in the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The non-streamed JSON answer.
    pub body: Bytes,
    /// Unix milliseconds when it was stored (for `s-maxage`).
    pub stored_at_ms: u64,
    /// The usage of the original call (logged with cache hits, never charged).
    pub usage: Usage,
}

impl Entry {
    /// The Redis value.
    pub fn encode(&self) -> Vec<u8> {
        let u = &self.usage;
        let head = format!(
            "{MAGIC} {} {} {} {}\n",
            self.stored_at_ms, u.prompt_tokens, u.completion_tokens, u.total_tokens
        );
        [head.as_bytes(), &self.body].concat()
    }

    /// A Redis value back into an entry; None for anything `encode` did not write.
    pub fn decode(v: &[u8]) -> Option<Entry> {
        let nl = memchr::memchr(b'\n', v)?;
        let head = std::str::from_utf8(v.get(..nl)?).ok()?;
        let mut parts = head.split(' ');
        if parts.next()? != MAGIC {
            return None;
        }
        let mut num = || parts.next()?.parse::<u64>().ok();
        let (stored_at_ms, prompt, completion, total) = (num()?, num()?, num()?, num()?);
        if parts.next().is_some() {
            return None;
        }
        let body = Bytes::copy_from_slice(v.get(nl + 1..)?);
        if body.is_empty() {
            return None;
        }
        Some(Entry {
            body,
            stored_at_ms,
            usage: Usage {
                prompt_tokens: prompt,
                completion_tokens: completion,
                total_tokens: total,
                ..Usage::default()
            },
        })
    }

    /// Milliseconds since it was stored.
    pub fn age_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.stored_at_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let e = Entry {
            body: Bytes::from_static(br#"{"id":"x"}"#),
            stored_at_ms: 1_700_000_000_123,
            usage: Usage {
                prompt_tokens: 3,
                completion_tokens: 4,
                total_tokens: 7,
                ..Usage::default()
            },
        };
        assert_eq!(Entry::decode(&e.encode()), Some(e.clone()));
        assert_eq!(e.age_ms(1_700_000_001_123), 1000);
        let no_body: [&[u8]; 3] = [b"", b"TJC1 1 2 3 4", b"TJC1 1 2 3 4\n"];
        let bad_head = [
            "TJC2 1 2 3 4",
            "TJC1 1 2 3",
            "TJC1 1 2 3 4 5",
            "TJC1 a 2 3 4",
        ];
        let bad_head = bad_head.map(|h| format!("{h}\n{{}}").into_bytes());
        for bad in no_body
            .into_iter()
            .chain(bad_head.iter().map(Vec::as_slice))
        {
            assert!(Entry::decode(bad).is_none(), "{bad:?}");
        }
    }
}
