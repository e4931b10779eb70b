//! The `data:` payloads of an SSE byte stream that arrives in pieces of any size.

/// `v` as one SSE `data:` event.
pub(crate) fn data_event(v: &serde_json::Value) -> Vec<u8> {
    let mut out = b"data: ".to_vec();
    out.extend_from_slice(v.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
    out
}

/// One OpenAI chat completion chunk (choice 0 unless `index` says) as an SSE event.
pub(crate) fn chat_chunk(
    id: &str,
    created: u64,
    model: &str,
    index: u64,
    delta: serde_json::Value,
    finish: Option<&str>,
) -> Vec<u8> {
    data_event(
        &serde_json::json!({"id": id, "object": "chat.completion.chunk", "created": created,
        "model": model, "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}),
    )
}

/// Complete lines of an SSE byte stream fed in pieces; the unfinished line stays in `carry`.
/// Returns the `data:` payloads of the complete lines (one optional space after the colon
/// removed, `\r\n` line ends accepted).
pub(crate) fn data_lines(carry: &mut Vec<u8>, bytes: &[u8]) -> Vec<Vec<u8>> {
    carry.extend_from_slice(bytes);
    let Some(end) = carry.iter().rposition(|b| *b == b'\n') else {
        return Vec::new();
    };
    let rest = carry.split_off(end + 1);
    let lines = std::mem::replace(carry, rest);
    lines
        .split(|b| *b == b'\n')
        .filter_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let data = line.strip_prefix(b"data:")?;
            Some(data.strip_prefix(b" ").unwrap_or(data).to_vec())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_lines_keep_unfinished_lines() {
        let mut carry = Vec::new();
        assert!(data_lines(&mut carry, b"data: {\"a\"").is_empty());
        let got = data_lines(&mut carry, b":1}\r\n\r\nevent: x\ndata:x\n");
        assert_eq!(got, vec![b"{\"a\":1}".to_vec(), b"x".to_vec()]);
        assert!(carry.is_empty());
    }
}
