//! The AWS event-stream binary framing (`application/vnd.amazon.eventstream`), decoded
//! incrementally from bytes split anywhere.
//!
//! A message is a 12-byte prelude (total length, headers length, both u32 big-endian, and the
//! CRC32 of those 8 bytes), the headers, the payload, and the CRC32 of everything before it.
//! A header is a name (u8 length, UTF-8), a type byte and a value of that type
//! ([`HeaderValue`]).
//!
//! Untrusted lengths never size an allocation: the decoder only holds the bytes it was given,
//! checks the prelude CRC before waiting for a message body, and refuses messages over
//! [`MAX_MESSAGE`]. After an error the decoder stays failed.

use bytes::{Buf, Bytes, BytesMut};

/// The largest message accepted (16 MiB, as the AWS SDKs).
pub const MAX_MESSAGE: u32 = 16 * 1024 * 1024;
/// Prelude: total length, headers length, prelude CRC.
const PRELUDE: usize = 12;
/// The smallest message: a prelude and the message CRC.
const MIN_MESSAGE: u32 = 16;

/// Why the stream cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventStreamError {
    #[error(
        "event stream prelude checksum mismatch (sent {sent:#010x}, computed {computed:#010x})"
    )]
    PreludeCrc { sent: u32, computed: u32 },
    #[error(
        "event stream message checksum mismatch (sent {sent:#010x}, computed {computed:#010x})"
    )]
    MessageCrc { sent: u32, computed: u32 },
    #[error("event stream message of {0} bytes is over the {MAX_MESSAGE} byte limit")]
    TooLarge(u32),
    #[error("event stream message lengths are inconsistent (total {total}, headers {headers})")]
    Length { total: u32, headers: u32 },
    #[error("malformed event stream header: {0}")]
    Header(&'static str),
}

/// A header value, by its wire type (0..=9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Types 0 (true) and 1 (false).
    Bool(bool),
    /// Type 2.
    Byte(i8),
    /// Type 3.
    Short(i16),
    /// Type 4.
    Int(i32),
    /// Type 5.
    Long(i64),
    /// Type 6: u16 length, then the bytes.
    Bytes(Bytes),
    /// Type 7: u16 length, then UTF-8.
    String(String),
    /// Type 8: milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9: 16 bytes.
    Uuid([u8; 16]),
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Headers in wire order.
    pub headers: Vec<(String, HeaderValue)>,
    /// The payload (JSON for Bedrock events and exceptions).
    pub payload: Bytes,
}

impl Message {
    /// The value of string header `name` (e.g. `:event-type`), if present.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Incremental decoder: [`push`](Decoder::push) bytes, then take messages with
/// [`next_message`](Decoder::next_message) until it returns `None`.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: BytesMut,
    failed: bool,
}

fn be32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b.get(..4).unwrap_or(&[0; 4]));
    u32::from_be_bytes(a)
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add bytes (ignored once the decoder has failed).
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The next complete message, `None` when more bytes are needed. An error is returned
    /// once; the decoder then stays failed and returns `None`.
    pub fn next_message(&mut self) -> Option<Result<Message, EventStreamError>> {
        if self.failed {
            return None;
        }
        match self.decode() {
            Ok(None) => None,
            Ok(Some(m)) => Some(Ok(m)),
            Err(e) => {
                self.failed = true;
                self.buf = BytesMut::new();
                Some(Err(e))
            }
        }
    }

    /// Whether an error was returned: nothing more will be decoded.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// Bytes held of a message not complete yet (0 at a message boundary).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn decode(&mut self) -> Result<Option<Message>, EventStreamError> {
        let Some(prelude) = self.buf.get(..PRELUDE) else {
            return Ok(None);
        };
        let (total, headers_len) = (be32(prelude), be32(&prelude[4..]));
        let (sent, computed) = (be32(&prelude[8..]), crc32fast::hash(&prelude[..8]));
        if sent != computed {
            return Err(EventStreamError::PreludeCrc { sent, computed });
        }
        if total > MAX_MESSAGE {
            return Err(EventStreamError::TooLarge(total));
        }
        if total < MIN_MESSAGE || headers_len > total - MIN_MESSAGE {
            return Err(EventStreamError::Length {
                total,
                headers: headers_len,
            });
        }
        // both fit in usize: bounded by MAX_MESSAGE
        let (total, headers_len) = (total as usize, headers_len as usize);
        if self.buf.len() < total {
            return Ok(None);
        }
        let mut frame = self.buf.split_to(total).freeze();
        let body_end = total - 4;
        let (sent, computed) = (
            be32(&frame[body_end..]),
            crc32fast::hash(&frame[..body_end]),
        );
        if sent != computed {
            return Err(EventStreamError::MessageCrc { sent, computed });
        }
        frame.truncate(body_end);
        frame.advance(PRELUDE);
        let payload = frame.split_off(headers_len);
        Ok(Some(Message {
            headers: headers(frame)?,
            payload,
        }))
    }
}

/// Take `n` bytes from the front of `b`.
fn take(b: &mut Bytes, n: usize) -> Result<Bytes, EventStreamError> {
    if b.len() < n {
        return Err(EventStreamError::Header("value runs past the headers"));
    }
    Ok(b.split_to(n))
}

fn take_array<const N: usize>(b: &mut Bytes) -> Result<[u8; N], EventStreamError> {
    let t = take(b, N)?;
    let mut a = [0u8; N];
    a.copy_from_slice(&t);
    Ok(a)
}

fn headers(mut b: Bytes) -> Result<Vec<(String, HeaderValue)>, EventStreamError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let [name_len] = take_array::<1>(&mut b)?;
        if name_len == 0 {
            return Err(EventStreamError::Header("empty header name"));
        }
        let name = take(&mut b, usize::from(name_len))?;
        let name = std::str::from_utf8(&name)
            .map_err(|_| EventStreamError::Header("header name is not UTF-8"))?
            .to_string();
        let [kind] = take_array::<1>(&mut b)?;
        let value = match kind {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(take_array(&mut b)?)),
            3 => HeaderValue::Short(i16::from_be_bytes(take_array(&mut b)?)),
            4 => HeaderValue::Int(i32::from_be_bytes(take_array(&mut b)?)),
            5 => HeaderValue::Long(i64::from_be_bytes(take_array(&mut b)?)),
            6 | 7 => {
                let len = u16::from_be_bytes(take_array(&mut b)?);
                let v = take(&mut b, usize::from(len))?;
                if kind == 6 {
                    HeaderValue::Bytes(v)
                } else {
                    HeaderValue::String(
                        String::from_utf8(v.to_vec())
                            .map_err(|_| EventStreamError::Header("string value is not UTF-8"))?,
                    )
                }
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(take_array(&mut b)?)),
            9 => HeaderValue::Uuid(take_array(&mut b)?),
            _ => return Err(EventStreamError::Header("unknown value type")),
        };
        out.push((name, value));
    }
    Ok(out)
}

/// One message with string headers, as the AWS services send them (for tests and mock
/// upstreams). Names over 255 bytes and values over 65535 bytes are cut to fit.
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        let name = name.as_bytes();
        let name = name.get(..usize::from(u8::MAX)).unwrap_or(name);
        let value = value.as_bytes();
        let value = value.get(..usize::from(u16::MAX)).unwrap_or(value);
        h.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        h.extend_from_slice(name);
        h.push(7);
        h.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
        h.extend_from_slice(value);
    }
    frame(&h, payload)
}

/// A message around already encoded headers.
fn frame(headers: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = PRELUDE + headers.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(
        &u32::try_from(headers.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(headers);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> Vec<Result<Message, EventStreamError>> {
        let mut d = Decoder::new();
        d.push(bytes);
        std::iter::from_fn(|| d.next_message()).collect()
    }

    #[test]
    fn round_trip_in_every_split() {
        let mut wire = encode(&[(":event-type", "a"), (":content-type", "json")], b"{}");
        wire.extend(encode(&[], b""));
        wire.extend(encode(&[("x", "")], b"payload"));
        for split in 1..wire.len() {
            let mut d = Decoder::new();
            let mut got = Vec::new();
            for c in wire.chunks(split) {
                d.push(c);
                while let Some(m) = d.next_message() {
                    got.push(m.unwrap());
                }
            }
            assert_eq!(d.buffered(), 0);
            assert_eq!(got.len(), 3, "split {split}");
            assert_eq!(got[0].header_str(":event-type"), Some("a"));
            assert_eq!(got[0].header_str(":content-type"), Some("json"));
            assert_eq!(&got[0].payload[..], b"{}");
            assert!(got[1].headers.is_empty() && got[1].payload.is_empty());
            assert_eq!(got[2].header_str("x"), Some(""));
            assert_eq!(&got[2].payload[..], b"payload");
        }
    }

    #[test]
    fn every_header_type() {
        let mut h = Vec::new();
        let mut add = |name: &str, kind: u8, value: &[u8]| {
            h.push(name.len() as u8);
            h.extend_from_slice(name.as_bytes());
            h.push(kind);
            h.extend_from_slice(value);
        };
        add("t", 0, &[]);
        add("f", 1, &[]);
        add("b", 2, &[0xff]);
        add("s", 3, &(-2i16).to_be_bytes());
        add("i", 4, &70000i32.to_be_bytes());
        add("l", 5, &(-1i64 << 40).to_be_bytes());
        add("y", 6, &[0, 2, 0xde, 0xad]);
        add("str", 7, &[0, 3, b'a', b'b', b'c']);
        add("ts", 8, &1_700_000_000_000i64.to_be_bytes());
        add("u", 9, &[7; 16]);
        let m = decode_all(&frame(&h, b"p")).remove(0).unwrap();
        let want = vec![
            ("t", HeaderValue::Bool(true)),
            ("f", HeaderValue::Bool(false)),
            ("b", HeaderValue::Byte(-1)),
            ("s", HeaderValue::Short(-2)),
            ("i", HeaderValue::Int(70000)),
            ("l", HeaderValue::Long(-1 << 40)),
            ("y", HeaderValue::Bytes(Bytes::from_static(&[0xde, 0xad]))),
            ("str", HeaderValue::String("abc".into())),
            ("ts", HeaderValue::Timestamp(1_700_000_000_000)),
            ("u", HeaderValue::Uuid([7; 16])),
        ];
        let got: Vec<_> = m
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(m.header_str("str"), Some("abc"));
        assert_eq!(m.header_str("i"), None);
        assert_eq!(&m.payload[..], b"p");
    }

    #[test]
    fn malformed_headers() {
        for (h, why) in [
            (vec![0u8, 7, 0, 0], "empty header name"),
            (vec![1, b'a', 10], "unknown value type"),
            (vec![1, b'a', 7, 0, 9, b'x'], "value runs past the headers"),
            (vec![1, b'a', 4, 0, 0], "value runs past the headers"),
            (vec![1, 0xff, 0], "header name is not UTF-8"),
            (vec![1, b'a', 7, 0, 1, 0xff], "string value is not UTF-8"),
        ] {
            let got = decode_all(&frame(&h, b""));
            assert_eq!(got, vec![Err(EventStreamError::Header(why))], "{h:?}");
        }
    }

    #[test]
    fn a_failed_decoder_stays_failed() {
        let mut wire = encode(&[], b"x");
        wire[8] ^= 1;
        let mut d = Decoder::new();
        d.push(&wire);
        assert!(matches!(
            d.next_message(),
            Some(Err(EventStreamError::PreludeCrc { .. }))
        ));
        assert!(d.is_failed());
        d.push(&encode(&[], b"y"));
        assert_eq!(d.next_message(), None);
        assert_eq!(d.buffered(), 0);
    }
}
