//! Primitive readers and writers for the hand-written binary encoding.
//!
//! Every field is either fixed-size (a tag byte, a big-endian integer, a 16- or 32-byte id) or a
//! `u32` big-endian length followed by that many bytes. The reader checks each length against
//! the bytes actually present and against a caller-given cap before it allocates, and it reports
//! truncation, trailing bytes and oversize lengths as typed errors. It never panics.
//!
//! What it does not do: know about requests or frames; `message.rs` builds on it.

/// Why a frame body did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body ended before a field was complete.
    #[error("frame truncated")]
    Truncated,
    /// Bytes were left over after the last field.
    #[error("trailing bytes after frame")]
    TrailingBytes,
    /// A tag byte names no known message or variant.
    #[error("unknown tag {0:#04x}")]
    UnknownTag(u8),
    /// A length prefix exceeds the limit for that field.
    #[error("field of {len} bytes exceeds the limit of {max}")]
    TooLong {
        /// The length the peer announced.
        len: usize,
        /// The most the field may hold.
        max: usize,
    },
    /// A field holds a value outside its domain (a boolean other than 0 or 1, say).
    #[error("invalid field value")]
    InvalidValue,
}

/// Reads fields from a borrowed frame body.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidValue),
        }
    }

    /// A `u32`-length-prefixed byte string of at most `max` bytes, checked before allocating.
    pub(crate) fn bytes(&mut self, max: usize) -> Result<Vec<u8>, DecodeError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(DecodeError::TooLong { len, max });
        }
        Ok(self.take(len)?.to_vec())
    }

    /// Succeeds only if every byte was consumed.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

/// Appends fields to a frame body.
pub(crate) struct Writer<'a> {
    pub(crate) buf: &'a mut Vec<u8>,
}

impl Writer<'_> {
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    pub(crate) fn raw(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// Writes a `u32` length prefix and the bytes. Callers keep `v` within the protocol limits,
    /// which are far below `u32::MAX`; longer input is truncated to what the prefix can name.
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.u32(len);
        self.raw(&v[..len as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_checked_before_reading() {
        let mut body = Vec::new();
        Writer { buf: &mut body }.u32(u32::MAX);
        let err = Reader::new(&body).bytes(10).unwrap_err();
        assert_eq!(
            err,
            DecodeError::TooLong {
                len: u32::MAX as usize,
                max: 10
            }
        );
    }

    #[test]
    fn truncation_and_trailing_bytes_are_errors() {
        let mut body = Vec::new();
        Writer { buf: &mut body }.bytes(b"abc");
        assert_eq!(
            Reader::new(&body[..5]).bytes(10),
            Err(DecodeError::Truncated)
        );
        let mut r = Reader::new(&body);
        r.u8().unwrap();
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes));
        assert_eq!(Reader::new(&[2]).bool(), Err(DecodeError::InvalidValue));
    }
}
