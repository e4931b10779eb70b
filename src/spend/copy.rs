//! Rows for `COPY ... FROM STDIN (FORMAT binary)`: the stream's header and trailer and each
//! row's framing (a field count, then each value after its length). The values themselves are
//! encoded by postgres-types (`ToSql::to_sql`); unlike tokio-postgres's `BinaryCopyInWriter`
//! this does not check each value's type against its column on every row (a dynamic call and a
//! type comparison per value: about a third of the writer's work per row), so the caller names
//! each column's type, and the spend tests store every column through it.

use bytes::{BufMut, Bytes, BytesMut};
use tokio_postgres::types::{IsNull, ToSql, Type};

/// The binary COPY signature, then flags and header extension length (both 0).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Bytes buffered before they are handed to the connection (as tokio-postgres's own writer:
/// larger pieces make its codec grow its buffer as it copies them in).
const CHUNK: usize = 4096;

/// A value postgres-types could not encode (its message).
#[derive(Debug, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct EncodeError {
    pub column: usize,
    pub message: String,
}

/// The COPY stream being written.
pub struct CopyRows {
    buf: BytesMut,
}

impl Default for CopyRows {
    fn default() -> Self {
        let mut buf = BytesMut::with_capacity(2 * CHUNK);
        buf.put_slice(HEADER);
        Self { buf }
    }
}

impl CopyRows {
    /// Start a row of `fields` values; write them with [`Row::value`], in column order.
    pub fn row(&mut self, fields: usize) -> Row<'_> {
        self.buf.put_i16(i16::try_from(fields).unwrap_or(i16::MAX));
        Row {
            buf: &mut self.buf,
            column: 0,
        }
    }

    /// The bytes written so far, once there are enough to send.
    pub fn full(&mut self) -> Option<Bytes> {
        if self.buf.len() < CHUNK {
            return None;
        }
        let chunk = self.buf.split().freeze();
        self.buf.reserve(2 * CHUNK);
        Some(chunk)
    }

    /// The rest of the stream, with its trailer.
    pub fn finish(mut self) -> Bytes {
        self.buf.put_i16(-1);
        self.buf.freeze()
    }
}

/// One row's values.
pub struct Row<'a> {
    buf: &'a mut BytesMut,
    column: usize,
}

impl Row<'_> {
    /// The next column's value as `text` (its binary form is its UTF-8 bytes; postgres-types
    /// would first compare the column's type name with three extension types' on every value).
    #[inline]
    pub fn text(&mut self, s: &str) -> Result<(), EncodeError> {
        let len = i32::try_from(s.len()).map_err(|_| self.too_long())?;
        self.buf.put_i32(len);
        self.buf.put_slice(s.as_bytes());
        self.column += 1;
        Ok(())
    }

    /// The next column's value as `text`, or NULL.
    #[inline]
    pub fn text_or_null(&mut self, s: Option<&str>) -> Result<(), EncodeError> {
        match s {
            Some(s) => self.text(s),
            None => {
                self.buf.put_i32(-1);
                self.column += 1;
                Ok(())
            }
        }
    }

    /// The next column's value as a `timestamp` (without time zone) from seconds since the Unix
    /// epoch: its binary form is the microseconds since 2000-01-01 (what postgres-types writes
    /// for a `SystemTime`, without going through one).
    #[inline]
    pub fn timestamp(&mut self, unix_secs: f64) {
        const UNIX_TO_2000_US: i64 = 946_684_800_000_000;
        let us = (unix_secs.max(0.0) * 1e6).floor() as i64;
        self.buf.put_i32(8);
        self.buf.put_i64(us - UNIX_TO_2000_US);
        self.column += 1;
    }

    /// [`Row::timestamp`], or NULL.
    #[inline]
    pub fn timestamp_or_null(&mut self, unix_secs: Option<f64>) {
        match unix_secs {
            Some(t) => self.timestamp(t),
            None => {
                self.buf.put_i32(-1);
                self.column += 1;
            }
        }
    }

    fn too_long(&self) -> EncodeError {
        EncodeError {
            column: self.column,
            message: "value longer than 2 GiB".into(),
        }
    }

    /// The next column's value, of type `ty` (`None` of an `Option` is NULL).
    #[inline]
    pub fn value<T: ToSql>(&mut self, ty: &Type, v: &T) -> Result<(), EncodeError> {
        let at = self.buf.len();
        self.buf.put_i32(0);
        let len = match v.to_sql(ty, self.buf) {
            Ok(IsNull::Yes) => -1,
            Ok(IsNull::No) => {
                i32::try_from(self.buf.len() - at - 4).map_err(|_| self.too_long())?
            }
            Err(e) => {
                return Err(EncodeError {
                    column: self.column,
                    message: e.to_string(),
                });
            }
        };
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        self.column += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// The framing PostgreSQL documents: signature, flags, extension length; per row a field
    /// count and each value after its big-endian length (-1 for NULL); a -1 count at the end.
    #[test]
    fn stream_layout() {
        let mut c = CopyRows::default();
        let mut r = c.row(4);
        r.text("ab").unwrap();
        r.value(&Type::INT4, &7i32).unwrap();
        r.text_or_null(None).unwrap();
        let t = UNIX_EPOCH + Duration::from_secs(946_684_800 + 1);
        r.value(&Type::TIMESTAMP, &t).unwrap();
        let got = c.finish();
        let mut want = HEADER.to_vec();
        want.extend_from_slice(&4i16.to_be_bytes());
        want.extend_from_slice(&2i32.to_be_bytes());
        want.extend_from_slice(b"ab");
        want.extend_from_slice(&4i32.to_be_bytes());
        want.extend_from_slice(&7i32.to_be_bytes());
        want.extend_from_slice(&(-1i32).to_be_bytes());
        // microseconds since 2000-01-01
        want.extend_from_slice(&8i32.to_be_bytes());
        want.extend_from_slice(&1_000_000i64.to_be_bytes());
        want.extend_from_slice(&(-1i16).to_be_bytes());
        assert_eq!(&got[..], &want[..]);
        assert_eq!(&HEADER[..11], b"PGCOPY\n\xff\r\n\0");

        // timestamps as postgres-types encodes a SystemTime
        for secs in [0.0, 946_684_800.0, 1_764_500_000.123_456, 1_764_500_000.5] {
            let mut c = CopyRows::default();
            let before = c.buf.len();
            c.row(1).timestamp(secs);
            let ours = c.buf[before + 2..].to_vec();
            let mut theirs = BytesMut::new();
            let t = UNIX_EPOCH + Duration::from_secs_f64(secs);
            t.to_sql(&Type::TIMESTAMP, &mut theirs).unwrap();
            assert_eq!(&ours[..4], &8i32.to_be_bytes());
            let (a, b) = (
                i64::from_be_bytes(ours[4..].try_into().unwrap()),
                i64::from_be_bytes(theirs[..].try_into().unwrap()),
            );
            assert!((a - b).abs() <= 1, "{secs}: {a} vs {b}");
        }
        assert_eq!(HEADER.len(), 19);
    }
}
