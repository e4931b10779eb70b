//! Lower-case hex text of bytes (digests as keys and hashes are stored).

/// Lower-case hex of bytes.
pub fn hex(d: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = vec![0u8; d.len() * 2];
    for (pair, &b) in s.chunks_exact_mut(2).zip(d) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 15)];
    }
    // (every byte is an ASCII digit or letter)
    String::from_utf8(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn digits() {
        assert_eq!(super::hex(&[0, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(super::hex(&[]), "");
    }
}
