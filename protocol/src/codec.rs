//! The one bounded byte reader and writer behind every hand-written binary encoding in hush.
//!
//! Every field is fixed-size (a tag byte, a big-endian integer, a 16- or 32-byte id), a flag
//! byte (0 or 1, optionally followed by a value), or a length prefix (`u32`, or `u16` for the
//! short forms) followed by that many bytes. The [`Reader`] checks each length against a
//! caller-given cap and against the bytes actually present before it hands anything out, and it
//! returns borrowed slices, so it never allocates what a peer announced. Truncation, trailing
//! bytes, oversize lengths, bad flags and bad UTF-8 are typed [`DecodeError`]s; it never panics.
//!
//! Users: the relay protocol (`message/`), the client's wire messages, ratchet sessions,
//! invitations, conversation payloads and records, and the relay's blob headers. Each maps
//! [`DecodeError`] into its own error type.
//!
//! What it does not do: know about any message, record or version byte; the formats live with
//! their types.

/// Why bytes did not decode.
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
    /// A text field is not valid UTF-8.
    #[error("a text field is not valid UTF-8")]
    InvalidUtf8,
}

/// Reads fields from a borrowed byte slice, front to back. No `Debug`: it may hold secrets.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over all of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// The next `N` bytes, copied into an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A flag byte: 0 is `false`, 1 is `true`, anything else [`DecodeError::InvalidValue`].
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidValue),
        }
    }

    /// A flag byte, then the `u64` if the flag is 1.
    pub fn opt_u64(&mut self) -> Result<Option<u64>, DecodeError> {
        if self.bool()? {
            Ok(Some(self.u64()?))
        } else {
            Ok(None)
        }
    }

    /// A flag byte, then an `N`-byte array if the flag is 1.
    pub fn opt_array<const N: usize>(&mut self) -> Result<Option<[u8; N]>, DecodeError> {
        if self.bool()? {
            Ok(Some(self.array()?))
        } else {
            Ok(None)
        }
    }

    /// A `u32`-length-prefixed byte string of at most `max` bytes, checked before reading.
    pub fn bytes(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
        self.bounded(len, max)
    }

    /// A `u16`-length-prefixed byte string of at most `max` bytes, checked before reading.
    pub fn bytes16(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u16()?);
        self.bounded(len, max)
    }

    /// A `u32`-length-prefixed UTF-8 string of at most `max` bytes.
    pub fn str(&mut self, max: usize) -> Result<&'a str, DecodeError> {
        utf8(self.bytes(max)?)
    }

    /// A `u16`-length-prefixed UTF-8 string of at most `max` bytes.
    pub fn str16(&mut self, max: usize) -> Result<&'a str, DecodeError> {
        utf8(self.bytes16(max)?)
    }

    fn bounded(&mut self, len: usize, max: usize) -> Result<&'a [u8], DecodeError> {
        if len > max {
            return Err(DecodeError::TooLong { len, max });
        }
        self.take(len)
    }

    /// Everything not read yet; the reader is empty afterwards.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Succeeds only if every byte was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

fn utf8(raw: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)
}

/// Appends fields to a byte buffer: an owned `Vec<u8>` (the default), a `&mut Vec<u8>` that
/// already holds a frame's start, or a `Zeroizing<Vec<u8>>` for secrets. No `Debug`, for the
/// same reason.
pub struct Writer<B = Vec<u8>> {
    buf: B,
}

impl Writer<Vec<u8>> {
    /// A writer into a new buffer of `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }
}

impl<B: AsMut<Vec<u8>>> Writer<B> {
    /// A writer that appends to whatever `buf` already holds.
    pub fn new(buf: B) -> Self {
        Self { buf }
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.as_mut().push(v);
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self, v: u16) {
        self.raw(&v.to_be_bytes());
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.raw(&v.to_be_bytes());
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self, v: u64) {
        self.raw(&v.to_be_bytes());
    }

    /// A flag byte, 0 or 1.
    pub fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    /// A flag byte, then the value if there is one.
    pub fn opt_u64(&mut self, v: Option<u64>) {
        self.bool(v.is_some());
        if let Some(x) = v {
            self.u64(x);
        }
    }

    /// A flag byte, then the bytes if there are some (a fixed-size field: no length prefix).
    pub fn opt_raw(&mut self, v: Option<&[u8]>) {
        self.bool(v.is_some());
        if let Some(x) = v {
            self.raw(x);
        }
    }

    /// The bytes as they are, with no length prefix.
    pub fn raw(&mut self, v: &[u8]) {
        self.buf.as_mut().extend_from_slice(v);
    }

    /// Writes a `u32` length prefix and the bytes. Callers keep `v` within the protocol limits,
    /// which are far below `u32::MAX`; longer input is truncated to what the prefix can name.
    pub fn bytes(&mut self, v: &[u8]) {
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.u32(len);
        self.raw(v.get(..len as usize).unwrap_or(v));
    }

    /// Writes a `u16` length prefix and the bytes; longer input is truncated to `u16::MAX`.
    pub fn bytes16(&mut self, v: &[u8]) {
        let len = u16::try_from(v.len()).unwrap_or(u16::MAX);
        self.u16(len);
        self.raw(v.get(..usize::from(len)).unwrap_or(v));
    }

    /// The buffer, with everything written appended.
    pub fn finish(self) -> B {
        self.buf
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

    #[test]
    fn reader_reports_truncation_without_consuming_past_the_end() {
        let mut r = Reader::new(&[1, 0, 2, 0, 3]);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(2));
        assert_eq!(r.u64(), Err(DecodeError::Truncated));
        assert_eq!(r.u16(), Ok(3));
        assert!(r.is_empty());
        assert_eq!(r.u8(), Err(DecodeError::Truncated));
    }

    #[test]
    fn short_strings_options_and_utf8_round_trip_or_fail_typed() {
        let mut w = Writer::with_capacity(32);
        w.bytes16(b"hush");
        w.opt_u64(Some(7));
        w.opt_raw(None);
        w.bytes(&[0xff]);
        let body = w.finish();
        let mut r = Reader::new(&body);
        assert_eq!(r.remaining(), body.len());
        assert_eq!(r.str16(3), Err(DecodeError::TooLong { len: 4, max: 3 }));
        let mut r = Reader::new(&body);
        assert_eq!(r.str16(4), Ok("hush"));
        assert_eq!(r.opt_u64(), Ok(Some(7)));
        assert_eq!(r.opt_array::<2>(), Ok(None));
        assert_eq!(r.remaining(), 5);
        assert_eq!(r.str(1), Err(DecodeError::InvalidUtf8));
        assert!(r.rest().is_empty());
    }
}
